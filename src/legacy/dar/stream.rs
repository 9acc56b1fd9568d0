//! Byte sources below the catalogue: the slice set seen as one logical stream, and the escape layer.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{infinint_from, DarError, Result};

/// Magic number at the start of every slice (big-endian u32).
pub(super) const SLICE_MAGIC: u32 = 123;
/// The five fixed bytes that start every escape mark; a sixth byte gives the mark type.
pub(super) const ESCAPE_PREFIX: [u8; 5] = [0xAD, 0xFD, 0xEA, 0x77, 0x21];
/// Sixth byte meaning "the five bytes before me are data, not a mark".
pub(super) const ESCAPE_DATA: u8 = b'X';

/// Where one slice's bytes come from.
#[derive(Debug)]
enum SliceData {
    File(File),
    /// `len` bytes at `base` inside a file (a slice inside a disc image).
    Range(File, u64, u64),
    Mem(Vec<u8>),
}

impl SliceData {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        match self {
            SliceData::File(f) => f.read_at(buf, off),
            SliceData::Range(f, base, len) => {
                if off >= *len {
                    return Ok(0);
                }
                let n = (buf.len() as u64).min(len - off) as usize;
                f.read_at(&mut buf[..n], base + off)
            }
            SliceData::Mem(v) => {
                let len = v.len() as u64;
                if off >= len {
                    return Ok(0);
                }
                let start = off as usize;
                let n = buf.len().min(v.len() - start);
                buf[..n].copy_from_slice(&v[start..start + n]);
                Ok(n)
            }
        }
    }
}

/// Parsed slice header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceHeader {
    /// Internal name (10-byte label), identical in every slice of one archive.
    pub internal_name: [u8; 10],
    /// Data name (10-byte label) from the TLV list.
    pub data_name: Option<[u8; 10]>,
    /// Flag byte: 'T' last slice, 'N' not last, 'E' look at the slice's last byte.
    pub flag: u8,
    /// Size of every slice but the first (TLV 1), if recorded.
    pub slice_size: Option<u64>,
    /// Size of the first slice (TLV 2), if recorded.
    pub first_size: Option<u64>,
    /// Length of the header in bytes.
    pub header_len: u64,
}

/// Parses a slice header from the start of `data`.
pub(super) fn parse_slice_header(data: &[u8]) -> Result<SliceHeader> {
    let mut r = data;
    let mut magic = [0u8; 4];
    read_exact(&mut r, &mut magic)?;
    if u32::from_be_bytes(magic) != SLICE_MAGIC {
        return Err(DarError::Format(
            "not a dar slice (wrong magic number)".into(),
        ));
    }
    let mut internal_name = [0u8; 10];
    read_exact(&mut r, &mut internal_name)?;
    let mut fe = [0u8; 2];
    read_exact(&mut r, &mut fe)?;
    let (flag, ext) = (fe[0], fe[1]);
    if !matches!(flag, b'T' | b'N' | b'E') {
        return Err(DarError::Format(format!("unknown slice flag {flag:#04x}")));
    }
    let mut h = SliceHeader {
        internal_name,
        data_name: None,
        flag,
        slice_size: None,
        first_size: None,
        header_len: 0,
    };
    match ext {
        b'T' => {
            let count = infinint_from(&mut r)?;
            if count > 64 {
                return Err(DarError::Format(
                    "implausible slice header TLV count".into(),
                ));
            }
            for _ in 0..count {
                let mut t = [0u8; 2];
                read_exact(&mut r, &mut t)?;
                let len = infinint_from(&mut r)?;
                if len > r.len() as u64 {
                    return Err(DarError::Truncated("slice header"));
                }
                let (val, rest) = r.split_at(len as usize);
                r = rest;
                match u16::from_be_bytes(t) {
                    1 => h.slice_size = Some(infinint_from(&mut &val[..])?),
                    2 => h.first_size = Some(infinint_from(&mut &val[..])?),
                    3 if val.len() == 10 => {
                        let mut l = [0u8; 10];
                        l.copy_from_slice(val);
                        h.data_name = Some(l);
                    }
                    _ => {} // header size (4) and future TLVs: not needed to read
                }
            }
        }
        b'N' | b'S' => {
            return Err(DarError::Unsupported(
                "slice header of archive format 07 or older (dar < 2.4)".into(),
            ))
        }
        other => {
            return Err(DarError::Format(format!(
                "unknown slice header extension {other:#04x}"
            )))
        }
    }
    h.header_len = (data.len() - r.len()) as u64;
    Ok(h)
}

fn read_exact(r: &mut &[u8], buf: &mut [u8]) -> Result<()> {
    if r.len() < buf.len() {
        return Err(DarError::Truncated("slice header"));
    }
    buf.copy_from_slice(&r[..buf.len()]);
    *r = &r[buf.len()..];
    Ok(())
}

/// One slice's contribution to the logical stream.
#[derive(Debug)]
struct Part {
    data: SliceData,
    /// First archive byte in the slice (= header length).
    start: u64,
    /// Archive bytes in this slice (slice minus header minus trailing flag byte).
    len: u64,
    /// Logical offset of this part's first byte.
    logical: u64,
}

/// The archive as dar's upper layers see it: all slices concatenated, without slice headers and
/// the one-byte end-of-slice flag.
#[derive(Debug)]
pub struct LogicalStream {
    parts: Vec<Part>,
    total: u64,
    /// Header of the first slice.
    pub header: SliceHeader,
    /// Slices that were absent (numbered from 1): their bytes read as errors.
    pub missing: Vec<u32>,
}

impl LogicalStream {
    /// Opens slice files given in order (slice 1 first). `None` marks a missing slice: it must not be
    /// the last one, and its size is derived from the slice size recorded in the header.
    pub fn open_files(slices: &[Option<PathBuf>]) -> Result<LogicalStream> {
        let mut datas = Vec::with_capacity(slices.len());
        for s in slices {
            match s {
                Some(p) => datas.push(Some(SliceData::File(open(p)?))),
                None => datas.push(None),
            }
        }
        Self::build(datas)
    }

    /// Opens slices that are byte ranges of files (`(path, offset, length)`; e.g. inside disc
    /// images, read in place without staging). `None` marks a missing slice.
    pub fn open_ranges(slices: &[Option<(PathBuf, u64, u64)>]) -> Result<LogicalStream> {
        let mut datas = Vec::with_capacity(slices.len());
        for s in slices {
            match s {
                Some((p, off, len)) => datas.push(Some(SliceData::Range(open(p)?, *off, *len))),
                None => datas.push(None),
            }
        }
        Self::build(datas)
    }

    /// Builds a stream from in-memory slices (tests, fuzzing).
    pub fn from_memory(slices: Vec<Vec<u8>>) -> Result<LogicalStream> {
        Self::build(
            slices
                .into_iter()
                .map(|v| Some(SliceData::Mem(v)))
                .collect(),
        )
    }

    fn build(datas: Vec<Option<SliceData>>) -> Result<LogicalStream> {
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        let mut first: Option<SliceHeader> = None;
        let mut logical = 0u64;
        let n = datas.len();
        for (i, d) in datas.into_iter().enumerate() {
            let Some(d) = d else {
                missing.push(i as u32 + 1);
                let h = first
                    .as_ref()
                    .ok_or_else(|| DarError::Format("first slice is missing".into()))?;
                let size = h.slice_size.ok_or_else(|| {
                    DarError::Format("missing slice and no slice size recorded".into())
                })?;
                if i + 1 == n {
                    return Err(DarError::Format("the last slice is missing".into()));
                }
                let len = size.saturating_sub(h.header_len + 1);
                parts.push(Part {
                    data: SliceData::Mem(Vec::new()),
                    start: u64::MAX,
                    len,
                    logical,
                });
                logical += len;
                continue;
            };
            let size = match &d {
                SliceData::File(f) => f.metadata().map_err(DarError::Io)?.len(),
                SliceData::Range(_, _, len) => *len,
                SliceData::Mem(v) => v.len() as u64,
            };
            let mut head = vec![0u8; size.min(4096) as usize];
            let got = d.read_at(&mut head, 0).map_err(DarError::Io)?;
            head.truncate(got);
            let h = parse_slice_header(&head)?;
            if let Some(f) = &first {
                if f.internal_name != h.internal_name {
                    return Err(DarError::Format(format!(
                        "slice {} belongs to another archive (internal name differs)",
                        i + 1
                    )));
                }
            }
            if size < h.header_len + 1 {
                return Err(DarError::Truncated("slice"));
            }
            let len = size - h.header_len - 1;
            parts.push(Part {
                data: d,
                start: h.header_len,
                len,
                logical,
            });
            logical += len;
            if first.is_none() {
                first = Some(h);
            }
        }
        let header = first.ok_or_else(|| DarError::Format("no slice given".into()))?;
        Ok(LogicalStream {
            parts,
            total: logical,
            header,
            missing,
        })
    }

    /// Maps a byte range of slice `slice` (1-based, offsets within the slice file) to the logical
    /// range it holds (header and end flag excluded). None if nothing of it is archive data.
    pub fn slice_range_to_logical(&self, slice: u32, start: u64, end: u64) -> Option<(u64, u64)> {
        let p = self.parts.get((slice as usize).checked_sub(1)?)?;
        if p.start == u64::MAX {
            return None;
        }
        let a = start.max(p.start);
        let b = end.min(p.start + p.len);
        (a < b).then(|| (p.logical + a - p.start, p.logical + b - p.start))
    }

    /// Total logical length.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Reads at a logical offset; returns 0 at the end. A missing slice is an error.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        if off >= self.total || buf.is_empty() {
            return Ok(0);
        }
        let idx = self.parts.partition_point(|p| p.logical + p.len <= off);
        let Some(p) = self.parts.get(idx) else {
            return Ok(0);
        };
        if p.start == u64::MAX {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("slice {} is missing", idx + 1),
            ));
        }
        let within = off - p.logical;
        let n = (buf.len() as u64).min(p.len - within) as usize;
        let got = p.data.read_at(&mut buf[..n], p.start + within)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "slice shorter than expected",
            ));
        }
        Ok(got)
    }

    /// A reader from logical offset `off`.
    pub fn reader_at(&self, off: u64) -> RawReader<'_> {
        RawReader { s: self, pos: off }
    }

    /// The last byte of the last slice (its end flag), for sanity checks.
    pub fn tail(&self, len: usize) -> io::Result<Vec<u8>> {
        let n = (len as u64).min(self.total);
        let mut v = vec![0u8; n as usize];
        let mut done = 0;
        while done < v.len() {
            let got = self.read_at(&mut v[done..], self.total - n + done as u64)?;
            if got == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            done += got;
        }
        Ok(v)
    }
}

fn open(p: &Path) -> Result<File> {
    File::open(p)
        .map_err(|e| DarError::Io(io::Error::new(e.kind(), format!("{}: {e}", p.display()))))
}

/// Sequential reader over the logical stream.
pub struct RawReader<'a> {
    s: &'a LogicalStream,
    pos: u64,
}

impl Read for RawReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.s.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Removes dar's escaping: `prefix + 'X'` becomes the five prefix bytes; any other mark ends the
/// stream (its type byte is kept in [`Unescape::mark`]).
pub(super) struct Unescape<R> {
    inner: R,
    /// First byte of the mark prefix: 0xAD for the archive layer, 0xAE inside sparse file data.
    first: u8,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// The mark that ended the stream, if one did.
    pub mark: Option<u8>,
}

const UNESCAPE_BUF: usize = 64 * 1024;

impl<R: Read> Unescape<R> {
    /// Wraps `inner`.
    pub(super) fn new(inner: R) -> Self {
        Self::with_first(inner, ESCAPE_PREFIX[0])
    }

    /// Wraps `inner`, with a mark prefix starting with `first` instead of 0xAD.
    pub(super) fn with_first(inner: R, first: u8) -> Self {
        Unescape {
            inner,
            first,
            buf: Vec::with_capacity(UNESCAPE_BUF),
            pos: 0,
            eof: false,
            mark: None,
        }
    }

    /// Ensures at least `want` unread bytes are buffered unless the input ends first.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.buf.len() - self.pos >= want || self.eof {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        while self.buf.len() < want && !self.eof {
            let old = self.buf.len();
            self.buf.resize(UNESCAPE_BUF.max(want), 0);
            match self.inner.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Unescape<R> {
    /// Steps over the mark that ended the stream, so reading goes on after it.
    pub(super) fn consume_mark(&mut self) {
        if self.mark.take().is_some() {
            self.pos += ESCAPE_PREFIX.len() + 1;
        }
    }

    /// One raw (not unescaped) byte, for fields that follow a mark.
    pub(super) fn raw_byte(&mut self) -> io::Result<Option<u8>> {
        self.fill(1)?;
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
}

/// Expands dar's sparse-file encoding: data escaped with the 0xAE prefix, and each hole written as
/// mark `F` followed by an infinint count of zero bytes.
pub(super) struct SparseExpand<R> {
    u: Unescape<R>,
    zeros: u64,
}

impl<R: Read> SparseExpand<R> {
    /// Wraps the decompressed data of a file saved with hole detection.
    pub(super) fn new(inner: R) -> Self {
        SparseExpand {
            u: Unescape::with_first(inner, 0xAE),
            zeros: 0,
        }
    }
}

struct RawBytes<'a, R>(&'a mut Unescape<R>);

impl<R: Read> Read for RawBytes<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.0.raw_byte()? {
            Some(b) => {
                buf[0] = b;
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

impl<R: Read> Read for SparseExpand<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.zeros > 0 {
                let n = (out.len() as u64).min(self.zeros) as usize;
                out[..n].fill(0);
                self.zeros -= n as u64;
                return Ok(n);
            }
            let n = self.u.read(out)?;
            if n > 0 {
                return Ok(n);
            }
            match self.u.mark {
                None => return Ok(0),
                Some(b'F') => {
                    self.u.consume_mark();
                    self.zeros = infinint_from(&mut RawBytes(&mut self.u))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                }
                Some(_) => return Ok(0),
            }
        }
    }
}

impl<R: Read> Read for Unescape<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.mark.is_some() {
            return Ok(0);
        }
        self.fill(ESCAPE_PREFIX.len() + 1)?;
        let avail = &self.buf[self.pos..];
        if avail.is_empty() {
            return Ok(0);
        }
        if avail[0] == self.first {
            if avail.len() >= 6 && avail[1..5] == ESCAPE_PREFIX[1..] {
                if avail[5] == ESCAPE_DATA {
                    if out.len() < 5 {
                        // Every caller reads through a BufReader or a decoder with larger buffers.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "read buffer smaller than 5 bytes",
                        ));
                    }
                    out[..5].copy_from_slice(&avail[..5]);
                    self.pos += 6;
                    return Ok(5);
                }
                self.mark = Some(avail[5]);
                return Ok(0);
            }
            out[0] = avail[0];
            self.pos += 1;
            return Ok(1);
        }
        let stop = avail[1..]
            .iter()
            .position(|&b| b == self.first)
            .map(|p| p + 1)
            .unwrap_or(avail.len());
        let n = stop.min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Uncompressed size of one lz4 block in dar's streaming mode (`PRE_2_7_0_LZO_BLOCK_SIZE`).
pub(super) const LZ4_BLOCK_SIZE: usize = 246_660;
/// Largest compressed block: LZ4_compressBound of a full block.
const LZ4_MAX_COMPRESSED: usize = LZ4_BLOCK_SIZE + LZ4_BLOCK_SIZE / 255 + 16;
const LZ4_H_DATA: u8 = 1;
const LZ4_H_EOF: u8 = 2;

/// dar's lz4 framing (libdar `block_compressor`, also used for `-zlz4` without a block size):
/// a sequence of blocks `[type byte][infinint size][size bytes]`, type 1 = one raw LZ4 block
/// (`LZ4_compress_default` of at most 246 660 bytes), type 2 = end of stream (size 0). Not the
/// LZ4 frame format.
pub(super) struct Lz4Blocks<R> {
    inner: R,
    zipped: Vec<u8>,
    clear: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Lz4Blocks<R> {
    /// Wraps the (unescaped) compressed stream.
    pub(super) fn new(inner: R) -> Self {
        Lz4Blocks {
            inner,
            zipped: Vec::new(),
            clear: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    fn next_block(&mut self) -> io::Result<()> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("lz4: {m}"));
        let mut t = [0u8; 1];
        if self.inner.read(&mut t)? == 0 {
            // dar stops reading at the end of the underlying data too.
            self.eof = true;
            return Ok(());
        }
        let size = infinint_from(&mut self.inner).map_err(|e| bad(&e.to_string()))?;
        match t[0] {
            LZ4_H_EOF => {
                self.eof = true;
                Ok(())
            }
            LZ4_H_DATA => {
                if size == 0 || size > LZ4_MAX_COMPRESSED as u64 {
                    return Err(bad("incoherent compressed block size"));
                }
                self.zipped.resize(size as usize, 0);
                self.inner.read_exact(&mut self.zipped)?;
                self.clear.resize(LZ4_BLOCK_SIZE, 0);
                let n = lz4_flex::block::decompress_into(&self.zipped, &mut self.clear)
                    .map_err(|e| bad(&format!("corrupted compressed data ({e})")))?;
                self.clear.truncate(n);
                self.pos = 0;
                Ok(())
            }
            other => Err(bad(&format!("unknown block type {other}"))),
        }
    }
}

impl<R: Read> Read for Lz4Blocks<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.clear.len() {
            if self.eof || out.is_empty() {
                return Ok(0);
            }
            self.next_block()?;
        }
        let n = out.len().min(self.clear.len() - self.pos);
        out[..n].copy_from_slice(&self.clear[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
