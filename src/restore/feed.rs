//! The reading side of `extract`: every regular file's content from the stream of its
//! generation, decoded ahead by worker threads, hashed, and handed to the writer in batches.

use sha2::{Digest, Sha256};

use crate::format::catalog::{Entry, EntryKind};
use crate::restore::chain_stream::{ChainStreams, Gap, Piece};
use crate::restore::ExtractError;

/// What the reading thread sends for each regular file, in order: pieces and gaps, then its hash.
pub(crate) enum Feed {
    /// Bytes at `off` within the file (shared with the decoded chunk, not copied).
    Piece(u64, Piece),
    /// Bytes `[off, off+len)` that could not be read, and why.
    Gap(u64, u64, Gap),
    /// The file is complete; SHA-256 of the pieces (gaps not hashed).
    End([u8; 32]),
}

/// Batches queued between the reading thread and the writer.
pub(crate) const FEED_BATCHES: usize = 4;

/// Feed messages travel in batches: one channel hand-over (and thread wake-up) per batch instead
/// of two per file, which dominated restoring many small files.
const BATCH_BYTES: usize = 1 << 20;

const BATCH_MESSAGES: usize = 4096;

/// Collects feed messages and sends them in batches.
struct Batcher {
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
    batch: Vec<(usize, Feed)>,
    bytes: usize,
}

impl Batcher {
    fn push(&mut self, i: usize, msg: Feed) -> std::io::Result<()> {
        if let Feed::Piece(_, b) = &msg {
            self.bytes += b.len();
        }
        self.batch.push((i, msg));
        if self.bytes >= BATCH_BYTES || self.batch.len() >= BATCH_MESSAGES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        self.tx
            .send(batch)
            .map_err(|_| std::io::Error::other("stopped"))
    }
}

/// The restoring side of the feed: hands out the messages of the batches one at a time.
pub(crate) struct FeedRx {
    rx: std::sync::mpsc::Receiver<Vec<(usize, Feed)>>,
    pending: std::collections::VecDeque<(usize, Feed)>,
}

impl FeedRx {
    pub(crate) fn new(rx: std::sync::mpsc::Receiver<Vec<(usize, Feed)>>) -> Self {
        FeedRx {
            rx,
            pending: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn recv(&mut self) -> Result<(usize, Feed), std::sync::mpsc::RecvError> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Ok(m);
            }
            self.pending = self.rx.recv()?.into();
        }
    }
}

/// Reading thread: every regular file's content from the stream of its generation, in entry order.
pub(crate) fn feed_contents(
    entries: &[&Entry],
    mut streams: ChainStreams<'_>,
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
) {
    let files = || {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EntryKind::File && !crate::format::catalog::in_seed(e))
    };
    // Every chunk the files need is known now: workers decode them in that order, ahead of the
    // hashing here, so decoding, hashing and writing the files all overlap.
    let plan =
        streams.plan(files().map(|(_, e)| (e.data.generation, e.data.content_offset, e.size)));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    streams.read_ahead(plan, threads, READ_AHEAD_CHUNKS, |streams| {
        feed_files(files(), streams, tx)
    });
}

/// Chunks decoded ahead of the hashing (each normally 1 MiB): enough to keep every core busy
/// through a run of small files, little enough to bound memory whatever the data.
const READ_AHEAD_CHUNKS: usize = 16;

/// Hashes every file's pieces in order and sends them, with any gaps and the hash, to the writer.
fn feed_files<'e>(
    files: impl Iterator<Item = (usize, &'e &'e Entry)>,
    streams: &mut ChainStreams<'_>,
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
) {
    let out = std::cell::RefCell::new(Batcher {
        tx,
        batch: Vec::new(),
        bytes: 0,
    });
    for (i, e) in files {
        let mut h = Sha256::new();
        let gaps: std::cell::RefCell<Vec<(u64, (u64, Gap))>> = std::cell::RefCell::new(Vec::new());
        let r = streams.read_range(
            e.data.generation,
            e.data.content_offset,
            e.size,
            &mut |off, bytes| {
                h.update(&*bytes);
                let mut out = out.borrow_mut();
                for (o, (l, w)) in gaps.borrow_mut().drain(..) {
                    out.push(i, Feed::Gap(o, l, w))?;
                }
                out.push(i, Feed::Piece(off, bytes))
            },
            &mut |off, len, why| gaps.borrow_mut().push((off, (len, why))),
        );
        if r.is_err() {
            return;
        }
        let mut out = out.borrow_mut();
        for (off, (len, why)) in gaps.into_inner() {
            if out.push(i, Feed::Gap(off, len, why)).is_err() {
                return;
            }
        }
        if out.push(i, Feed::End(h.finalize().into())).is_err() {
            return;
        }
    }
    let _ = out.borrow_mut().flush();
}

/// Skips the feed of entry `i` (a file kept by --resume).
pub(crate) fn drain(rx: &mut FeedRx, i: usize, e: &Entry) -> Result<(), ExtractError> {
    if e.kind != EntryKind::File {
        return Ok(());
    }
    loop {
        match rx.recv() {
            Ok((j, Feed::End(_))) if j == i => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(ExtractError::ReaderStopped),
        }
    }
}
