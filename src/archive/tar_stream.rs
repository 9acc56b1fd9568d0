//! Turning scanned source entries into a generation's tar stream, cut into chunks.
//!
//! One thread reads files sequentially (large reads, straight into the chunk buffer), hashes them
//! with SHA-256 and emits ≈1 MiB [`StreamChunk`]s; compression and writing happen in other
//! threads. At most one entry can be in progress at a chunk boundary, which is what lets the disc
//! writer build exact per-disc indexes.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::archive::pax;
use crate::archive::scan::SourceEntry;
use crate::format::catalog::{DataRef, Entry, EntryKind};
use crate::format::chunk::CHUNK_SIZE;

/// A piece of the tar stream ready for compression.
pub struct StreamChunk {
    /// 0-based chunk number within the generation.
    pub seq: u64,
    /// Offset of `data[0]` in the tar stream.
    pub tar_offset: u64,
    /// Tar-stream bytes, `CHUNK_SIZE` except for the last chunk.
    pub data: Vec<u8>,
    /// Entries whose tar record ended inside this chunk, complete with hashes.
    pub completed: Vec<Entry>,
    /// Entry still being written at the end of this chunk (hash not yet known).
    pub open: Option<Entry>,
}

/// Something wrong with a source file; the archive stays consistent and the file is reported.
#[derive(Clone, Debug)]
pub struct SourceProblem {
    /// Relative path of the entry.
    pub path: Vec<u8>,
    /// What happened ("unreadable: …", "changed while being read").
    pub message: String,
    /// Whether the archived content is not what the file holds (vs. the entry was skipped).
    pub archived: bool,
}

/// Why the stream stopped early.
#[derive(Debug)]
pub enum StreamStop {
    /// The consumer went away (an error downstream, or Ctrl+C).
    Cancelled,
}

/// Builds the tar stream of `entries` for `generation`, calling `emit` with each chunk in order.
/// Returns the total stream length. Problems with single files are reported, never fatal.
pub struct TarStreamBuilder<'a> {
    generation: u32,
    content_path: &'a dyn Fn(&[u8]) -> PathBuf,
    emit: &'a mut dyn FnMut(StreamChunk) -> Result<(), StreamStop>,
    on_problem: &'a mut dyn FnMut(SourceProblem),
    on_bytes: &'a mut dyn FnMut(u64),
    buf: Vec<u8>,
    seq: u64,
    /// Stream offset of `buf[0]`.
    buf_offset: u64,
    completed: Vec<Entry>,
    current: Option<Entry>,
}

impl<'a> TarStreamBuilder<'a> {
    /// Creates a builder; call [`TarStreamBuilder::run`]. `content_path` gives the file to read
    /// for an entry's `rel_path` (for `create`: the source root joined with it; the entries do not
    /// carry it, so the scan list holds each path once).
    pub fn new(
        generation: u32,
        content_path: &'a dyn Fn(&[u8]) -> PathBuf,
        emit: &'a mut dyn FnMut(StreamChunk) -> Result<(), StreamStop>,
        on_problem: &'a mut dyn FnMut(SourceProblem),
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> Self {
        TarStreamBuilder {
            generation,
            content_path,
            emit,
            on_problem,
            on_bytes,
            buf: Vec::with_capacity(CHUNK_SIZE),
            seq: 0,
            buf_offset: 0,
            completed: Vec::new(),
            current: None,
        }
    }

    fn offset(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    fn flush(&mut self) -> Result<(), StreamStop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let len = data.len() as u64;
        let chunk = StreamChunk {
            seq: self.seq,
            tar_offset: self.buf_offset,
            data,
            completed: std::mem::take(&mut self.completed),
            open: self.current.clone(),
        };
        self.seq += 1;
        self.buf_offset += len;
        (self.emit)(chunk)
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), StreamStop> {
        while !bytes.is_empty() {
            let n = (CHUNK_SIZE - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == CHUNK_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Streams every entry, then the end-of-archive blocks. Returns (stream length, entries that
    /// have no tar record, such as sockets).
    pub fn run(mut self, entries: &[SourceEntry]) -> Result<u64, StreamStop> {
        for se in entries {
            self.entry(se)?;
        }
        self.push(&pax::END_OF_ARCHIVE)?;
        let len = self.offset();
        self.flush()?;
        Ok(len)
    }

    /// Like [`TarStreamBuilder::run`], consuming the list: each scanned entry is freed once
    /// streamed (its path moves into the catalog entry) and the list shrinks as it goes, so the
    /// scan result and the catalog are not both held in full.
    pub fn run_owned(mut self, mut entries: Vec<SourceEntry>) -> Result<u64, StreamStop> {
        entries.reverse();
        while let Some(mut se) = entries.pop() {
            let path = std::mem::take(&mut se.rel_path);
            self.entry_with_path(&se, path)?;
            // Give back every eighth of the list as it is consumed (realloc shrinks in place).
            if entries.capacity() > 4096
                && entries.len() < entries.capacity() - entries.capacity() / 8
            {
                entries.shrink_to_fit();
            }
        }
        drop(entries);
        self.push(&pax::END_OF_ARCHIVE)?;
        let len = self.offset();
        self.flush()?;
        Ok(len)
    }

    fn entry(&mut self, se: &SourceEntry) -> Result<(), StreamStop> {
        self.entry_with_path(se, se.rel_path.clone())
    }

    /// `path` is `se.rel_path` (which may have been moved out of `se`).
    fn entry_with_path(&mut self, se: &SourceEntry, path: Vec<u8>) -> Result<(), StreamStop> {
        let mut e = Entry {
            path,
            kind: se.kind,
            mode: se.mode,
            uid: se.uid,
            gid: se.gid,
            mtime_sec: se.mtime_sec,
            mtime_nsec: se.mtime_nsec,
            size: 0,
            link_target: se.link_target.clone(),
            rdev: se.rdev,
            sha256: [0; 32],
            data: DataRef {
                generation: self.generation,
                header_offset: 0,
                content_offset: 0,
            },
            stamp: se.stamp,
        };
        let mut file = None;
        if se.kind == EntryKind::File {
            match open_regular(&(self.content_path)(&e.path)) {
                Ok((f, meta)) => {
                    // Never more than the scan saw: the discs (and the parity discs' room for the
                    // catalog copy) were planned from it. A file grown since is archived as far as
                    // the scan saw it and reported as changed while read (the probe after it).
                    e.size = meta.len().min(se.size);
                    e.mode = meta.mode() & 0o7777;
                    e.mtime_sec = meta.mtime();
                    e.mtime_nsec = meta.mtime_nsec() as u32;
                    // As opened, before reading: a change while reading moves ctime past it.
                    e.stamp = crate::archive::scan::stamp_of(&meta);
                    file = Some((f, meta));
                }
                Err(msg) => {
                    (self.on_problem)(SourceProblem {
                        path: e.path.clone(),
                        message: msg,
                        archived: false,
                    });
                    return Ok(());
                }
            }
        }
        e.data.header_offset = self.offset();
        let mut hdr = Vec::with_capacity(1536);
        if !pax::write_headers(&e, &mut hdr) {
            e.data.content_offset = e.data.header_offset;
            self.completed.push(e);
            return Ok(());
        }
        e.data.content_offset = e.data.header_offset + hdr.len() as u64;
        self.current = Some(e.clone());
        self.push(&hdr)?;
        if let Some((f, meta)) = file {
            e.sha256 = self.content(&e.path, f, &meta, e.size)?;
            self.push(&vec![0u8; pax::padding(e.size)])?;
        }
        self.current = None;
        self.completed.push(e);
        Ok(())
    }

    /// Streams `size` bytes of `f`, zero-filling if the file shrinks or fails; returns the SHA-256
    /// of what was stored.
    fn content(
        &mut self,
        path: &[u8],
        mut f: File,
        before: &std::fs::Metadata,
        size: u64,
    ) -> Result<[u8; 32], StreamStop> {
        let mut hasher = Sha256::new();
        let mut remaining = size;
        let mut failure: Option<String> = None;
        while remaining > 0 {
            let start = self.buf.len();
            let n = ((CHUNK_SIZE - start) as u64).min(remaining) as usize;
            self.buf.resize(start + n, 0);
            if failure.is_none() {
                if let Err(msg) = read_full(&mut f, &mut self.buf[start..start + n]) {
                    failure = Some(msg);
                }
            }
            hasher.update(&self.buf[start..start + n]);
            remaining -= n as u64;
            (self.on_bytes)(n as u64);
            if self.buf.len() == CHUNK_SIZE {
                self.flush()?;
            }
        }
        if failure.is_none() {
            let mut probe = [0u8; 1];
            let grew = matches!(f.read(&mut probe), Ok(1));
            let after = f.metadata().ok();
            let changed = grew
                || after.is_none_or(|a| {
                    a.len() != before.len()
                        || a.mtime() != before.mtime()
                        || a.mtime_nsec() != before.mtime_nsec()
                });
            if changed {
                failure =
                    Some("changed while being read; the archived copy may be inconsistent".into());
            }
        }
        if let Some(message) = failure {
            (self.on_problem)(SourceProblem {
                path: path.to_vec(),
                message,
                archived: true,
            });
        }
        Ok(hasher.finalize().into())
    }
}

/// Opens a source file without following symlinks and checks it is still a regular file.
fn open_regular(path: &std::path::Path) -> Result<(File, std::fs::Metadata), String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("unreadable, not archived: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("unreadable, not archived: {e}"))?;
    if !meta.is_file() {
        return Err("no longer a regular file, not archived".into());
    }
    Ok((f, meta))
}

/// Fills `buf` from `f`; on a short file or an error, zero-fills the rest and says why.
fn read_full(f: &mut File, buf: &mut [u8]) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        match f.read(&mut buf[done..]) {
            Ok(0) => {
                buf[done..].fill(0);
                return Err("shrank while being read; missing bytes archived as zeros".into());
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf[done..].fill(0);
                return Err(format!(
                    "read error ({e}); unreadable bytes archived as zeros"
                ));
            }
        }
    }
    Ok(())
}
