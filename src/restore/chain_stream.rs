//! Reading byte ranges of a generation's tar stream from the discs at hand, decoding chunks in
//! parallel ahead of the reader, and reporting exactly which byte ranges could not be read.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Deref, Range};
use std::sync::{Arc, Condvar, Mutex};

use crate::disc::reader::GenerationSet;
use crate::format::catalog::Catalog;

/// Why a range of the stream is unavailable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// The disc holding it was not given.
    MissingDisc(u32),
    /// No chunk covers this range (the disc's index and the catalog are both missing).
    Unknown,
    /// The chunk is on a disc at hand but damaged beyond repair.
    Damaged(String),
    /// No disc of the generation holding the data was given.
    MissingGeneration(u32),
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::MissingDisc(n) => write!(f, "disc {n} not available"),
            Gap::Unknown => write!(f, "no disc at hand holds this data"),
            Gap::Damaged(m) => write!(f, "damaged: {m}"),
            Gap::MissingGeneration(g) => write!(f, "no disc of generation {g} given"),
        }
    }
}

type Decoded = Result<Arc<Vec<u8>>, Gap>;

/// A chunk of a chain: (generation, index in that generation's chunk table).
pub(crate) type ChunkKey = (u32, usize);

/// Bytes of one decoded chunk, shared rather than copied: handing a piece to another thread (the
/// one writing files) costs no copy, and the chunk's buffer is freed when its last piece is.
#[derive(Clone, Debug)]
pub(crate) struct Piece {
    /// The whole decoded chunk.
    chunk: Arc<Vec<u8>>,
    /// The bytes of it this piece is; always within `chunk`.
    range: Range<usize>,
}

impl Deref for Piece {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.chunk[self.range.clone()]
    }
}

/// Chunks decoded ahead of the reader by worker threads, in the order a plan says they will be read.
///
/// Bounded: a worker starts chunk `p` of the plan only when `p < taken + window`, so at most
/// `window` decoded chunks wait (each at most `MAX_CHUNK_SIZE`) however far the reader lags.
struct ReadAhead {
    /// Chunks in the order the reader will ask for them, no two neighbours equal.
    plan: Vec<ChunkKey>,
    /// Most chunks decoded (or decoding) and not yet taken.
    window: usize,
    state: Mutex<AheadState>,
    /// Signalled whenever a chunk is finished, taken, or the reading stops.
    changed: Condvar,
}

/// What the workers and the reader share.
struct AheadState {
    /// Next plan position a worker will start; ≤ `plan.len()`.
    next: usize,
    /// Plan positions below this have been taken by the reader (or skipped); ≤ `next` unless the
    /// reader ran ahead of the workers by decoding on its own.
    taken: usize,
    /// Results for plan positions `taken..`: `ready[k]` is position `taken + k` (None: not done).
    ready: VecDeque<Option<Decoded>>,
    /// The reader is done: workers stop.
    stop: bool,
    /// Workers still running (a worker that ended, even by panicking, can fill no more slots).
    workers: usize,
}

impl ReadAhead {
    fn new(plan: Vec<ChunkKey>, threads: usize, window: usize) -> Self {
        ReadAhead {
            plan,
            window: window.max(1),
            state: Mutex::new(AheadState {
                next: 0,
                taken: 0,
                ready: VecDeque::new(),
                stop: false,
                workers: threads.max(1),
            }),
            changed: Condvar::new(),
        }
    }

    /// Worker loop: claims the next plan position within the window, decodes it, files the result.
    fn work(&self, decode: &dyn Fn(ChunkKey) -> Decoded) {
        struct Leave<'r>(&'r ReadAhead);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                lock(&self.0.state).workers -= 1;
                self.0.changed.notify_all();
            }
        }
        let _leave = Leave(self);
        let mut st = lock(&self.state);
        loop {
            if st.stop || st.next >= self.plan.len() {
                return;
            }
            if st.next < st.taken {
                st.next = st.taken;
                continue;
            }
            if st.next >= st.taken + self.window {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let pos = st.next;
            st.next += 1;
            drop(st);
            let decoded = decode(self.plan[pos]);
            st = lock(&self.state);
            if pos >= st.taken {
                let k = pos - st.taken;
                if st.ready.len() <= k {
                    st.ready.resize(k + 1, None);
                }
                st.ready[k] = Some(decoded);
                self.changed.notify_all();
            }
        }
    }

    /// The result for plan position `pos` (waiting for a worker if needed); positions before it
    /// are dropped. None if no worker will produce it (all ended).
    fn take(&self, pos: usize) -> Option<Decoded> {
        let mut st = lock(&self.state);
        while st.taken < pos {
            st.ready.pop_front();
            st.taken += 1;
        }
        loop {
            if let Some(Some(_)) = st.ready.front() {
                let d = st.ready.pop_front().flatten();
                st.taken += 1;
                self.changed.notify_all();
                return d;
            }
            // No worker left to produce it: the caller decodes it itself.
            if st.stop || st.workers == 0 {
                return None;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stop(&self) {
        lock(&self.state).stop = true;
        self.changed.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decodes chunk `i` of a generation set.
fn decode(set: &GenerationSet, i: usize) -> Decoded {
    let rec = &set.chunks[i];
    let disc = set.discs.get(&rec.disc).ok_or(Gap::MissingDisc(rec.disc))?;
    let part = set
        .parts
        .get(&rec.part)
        .ok_or_else(|| Gap::Damaged(format!("part {} unknown", rec.part)))?;
    let mut out = Vec::new();
    disc.read_chunk(set.chunk_seqs[i], rec, part.lba, &mut out)
        .map_err(|e| Gap::Damaged(e.to_string()))?;
    Ok(Arc::new(out))
}

/// Where `[start, start+len)` of a set's stream lies: for each piece, the chunk holding it (None:
/// no chunk record covers it) and the stream range.
fn pieces(
    set: &GenerationSet,
    start: u64,
    len: u64,
) -> impl Iterator<Item = (Option<usize>, u64, u64)> + '_ {
    let end = start.saturating_add(len);
    let mut pos = start;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let at = pos;
        match Catalog::chunk_at(&set.chunks, pos) {
            Some(i) => {
                let rec = set.chunks[i];
                pos = (rec.tar_offset + u64::from(rec.tar_len)).min(end);
                Some((Some(i), at, pos))
            }
            None => {
                // No chunk record covers pos: skip to the next known chunk.
                let next = set.chunks.partition_point(|c| c.tar_offset <= pos);
                pos = set
                    .chunks
                    .get(next)
                    .map(|c| c.tar_offset)
                    .unwrap_or(end)
                    .min(end);
                Some((None, at, pos))
            }
        }
    })
}

/// Serves tar-stream bytes of every generation at hand, so entries of a chain catalog can be read
/// from whichever generation stores their data. With [`ChainStreams::read_ahead`], chunks are
/// decoded by worker threads ahead of the reader; without, each chunk is decoded when first needed.
pub(crate) struct ChainStreams<'a> {
    sets: BTreeMap<u32, &'a GenerationSet>,
    /// The chunk served last: consecutive small files share it.
    current: Option<(ChunkKey, Decoded)>,
    /// Chunks being decoded ahead, while [`ChainStreams::read_ahead`] runs.
    ahead: Option<Arc<ReadAhead>>,
    /// Next position in the read-ahead plan the reader expects to ask for.
    cursor: usize,
}

impl<'a> ChainStreams<'a> {
    /// One stream per generation set.
    pub(crate) fn new(sets: &'a BTreeMap<u32, GenerationSet>) -> Self {
        ChainStreams {
            sets: sets.iter().map(|(&g, s)| (g, s)).collect(),
            current: None,
            ahead: None,
            cursor: 0,
        }
    }

    /// The chunks that reading `ranges` (generation, start, length) in this order needs, in order,
    /// each once per run of consecutive uses: the plan for [`ChainStreams::read_ahead`].
    pub(crate) fn plan(&self, ranges: impl IntoIterator<Item = (u32, u64, u64)>) -> Vec<ChunkKey> {
        let mut plan: Vec<ChunkKey> = Vec::new();
        for (g, start, len) in ranges {
            let Some(set) = self.sets.get(&g) else {
                continue;
            };
            for (i, _, _) in pieces(set, start, len) {
                if let Some(i) = i {
                    if plan.last() != Some(&(g, i)) {
                        plan.push((g, i));
                    }
                }
            }
        }
        plan
    }

    /// Runs `f` while `threads` workers decode the chunks of `plan` ahead of it, at most `window`
    /// chunks ahead. Reads in `f` that follow the plan get chunks decoded in parallel and
    /// overlapped with whatever `f` does; any other read still works (it decodes on its own).
    pub(crate) fn read_ahead<R>(
        &mut self,
        plan: Vec<ChunkKey>,
        threads: usize,
        window: usize,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        // More workers than the window could never all be busy.
        let threads = threads.clamp(1, window.max(1));
        let ahead = Arc::new(ReadAhead::new(plan, threads, window));
        let sets = self.sets.clone();
        let decode_key = |(g, i): ChunkKey| match sets.get(&g) {
            Some(set) => decode(set, i),
            None => Err(Gap::MissingGeneration(g)),
        };
        std::thread::scope(|s| {
            for _ in 0..threads {
                let ahead = Arc::clone(&ahead);
                let decode_key = &decode_key;
                s.spawn(move || ahead.work(decode_key));
            }
            self.ahead = Some(Arc::clone(&ahead));
            self.cursor = 0;
            // Workers must stop even if `f` panics, or the scope would wait for them forever.
            struct StopOnDrop<'r>(&'r ReadAhead);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.stop();
                }
            }
            let _stop = StopOnDrop(&ahead);
            let r = f(self);
            self.ahead = None;
            r
        })
    }

    /// Decoded chunk `key`: the current one, the next one of the read-ahead plan, or decoded now.
    fn chunk(&mut self, set: &GenerationSet, key: ChunkKey) -> Decoded {
        if let Some((k, d)) = &self.current {
            if *k == key {
                return d.clone();
            }
        }
        let mut got = None;
        if let Some(ahead) = &self.ahead {
            if ahead.plan.get(self.cursor) == Some(&key) {
                got = ahead.take(self.cursor);
                self.cursor += 1;
            }
        }
        let d = got.unwrap_or_else(|| decode(set, key.1));
        self.current = Some((key, d.clone()));
        d
    }

    /// Reads `[start, start+len)` of the stream of `generation`, calling `sink(offset_in_range,
    /// piece)` for every piece that is available and `gap(offset_in_range, len, why)` for every
    /// piece that is not.
    pub(crate) fn read_range(
        &mut self,
        generation: u32,
        start: u64,
        len: u64,
        sink: &mut dyn FnMut(u64, Piece) -> std::io::Result<()>,
        gap: &mut dyn FnMut(u64, u64, Gap),
    ) -> std::io::Result<()> {
        let Some(&set) = self.sets.get(&generation) else {
            if len > 0 {
                gap(0, len, Gap::MissingGeneration(generation));
            }
            return Ok(());
        };
        for (i, a, b) in pieces(set, start, len) {
            let Some(i) = i else {
                gap(a - start, b - a, Gap::Unknown);
                continue;
            };
            match self.chunk(set, (generation, i)) {
                // A chunk whose own header claims another length than the table is damaged.
                Ok(chunk) if (b - set.chunks[i].tar_offset) as usize <= chunk.len() => {
                    let off = set.chunks[i].tar_offset;
                    let range = (a - off) as usize..(b - off) as usize;
                    sink(a - start, Piece { chunk, range })?;
                }
                Ok(_) => gap(
                    a - start,
                    b - a,
                    Gap::Damaged("chunk shorter than its record".into()),
                ),
                Err(why) => gap(a - start, b - a, why),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A chunk whose content names its key, so order mistakes show.
    fn fake(key: ChunkKey) -> Decoded {
        if key.1 % 7 == 3 {
            return Err(Gap::Damaged(format!("chunk {}", key.1)));
        }
        Ok(Arc::new(format!("{}:{}", key.0, key.1).into_bytes()))
    }

    /// Runs `threads` workers over `plan` while `reader` takes positions; returns the most
    /// chunks ever decoded and not yet taken.
    fn run(
        plan: Vec<ChunkKey>,
        threads: usize,
        window: usize,
        reader: impl FnOnce(&ReadAhead),
    ) -> usize {
        let ahead = ReadAhead::new(plan, threads, window);
        let started = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let decode = |k: ChunkKey| {
            let taken = lock(&ahead.state).taken;
            let n = started.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n.saturating_sub(taken), Ordering::SeqCst);
            fake(k)
        };
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| ahead.work(&decode));
            }
            reader(&ahead);
            ahead.stop();
        });
        most.into_inner()
    }

    #[test]
    fn chunks_come_in_plan_order_and_within_the_window() {
        let plan: Vec<ChunkKey> = (0..200).map(|i| (1 + (i / 50) as u32, i)).collect();
        let most = run(plan.clone(), 3, 5, |a| {
            for (pos, &key) in plan.iter().enumerate() {
                if pos % 13 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                assert_eq!(a.take(pos), Some(fake(key)), "position {pos}");
            }
        });
        assert!(most <= 5, "{most} chunks decoded ahead, window 5");
    }

    #[test]
    fn skipped_positions_are_dropped_and_stopping_ends_workers() {
        let plan: Vec<ChunkKey> = (0..100).map(|i| (1, i)).collect();
        run(plan.clone(), 2, 4, |a| {
            assert_eq!(a.take(0), Some(fake(plan[0])));
            assert_eq!(a.take(40), Some(fake(plan[40])));
            assert_eq!(a.take(41), Some(fake(plan[41])));
            // The reader stops early: the workers must end (the scope would hang otherwise).
        });
    }

    #[test]
    fn without_workers_the_reader_is_told_to_decode_itself() {
        let ahead = ReadAhead::new(vec![(1, 0), (1, 1)], 1, 4);
        std::thread::scope(|s| {
            let worker = s.spawn(|| ahead.work(&|_| panic!("worker dies")));
            assert!(worker.join().is_err());
        });
        assert_eq!(lock(&ahead.state).workers, 0);
        assert_eq!(ahead.take(0), None);
    }
}
