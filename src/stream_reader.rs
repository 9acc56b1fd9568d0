//! Reading byte ranges of a generation's tar stream from the discs at hand, decoding chunks in
//! parallel ahead of the reader, and reporting exactly which byte ranges could not be read.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::catalog::Catalog;
use crate::disc_reader::GenerationSet;

/// Why a range of the stream is unavailable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
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

/// Serves tar-stream bytes of one generation.
pub struct StreamReader<'a> {
    set: &'a GenerationSet,
    cache: HashMap<usize, Decoded>,
    window: usize,
}

impl<'a> StreamReader<'a> {
    /// Creates a reader over the set's chunk table.
    pub fn new(set: &'a GenerationSet) -> Self {
        let threads = rayon::current_num_threads();
        StreamReader {
            set,
            cache: HashMap::new(),
            window: (threads * 4).max(8),
        }
    }

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

    /// Decoded chunk `i`, decoding a window of following chunks in parallel on a miss.
    fn chunk(&mut self, i: usize) -> Decoded {
        if let Some(c) = self.cache.get(&i) {
            return c.clone();
        }
        self.cache.retain(|&k, _| k > i.saturating_sub(2));
        let end = (i + self.window).min(self.set.chunks.len());
        let set = self.set;
        let todo: Vec<usize> = (i..end).filter(|k| !self.cache.contains_key(k)).collect();
        let decoded: Vec<(usize, Decoded)> = todo
            .into_par_iter()
            .map(|k| (k, Self::decode(set, k)))
            .collect();
        self.cache.extend(decoded);
        self.cache.get(&i).cloned().unwrap_or(Err(Gap::Unknown))
    }

    /// Reads `[start, start+len)` of the stream, calling `sink(offset_in_range, bytes)` for every
    /// piece that is available and `gap(offset_in_range, len, why)` for every piece that is not.
    pub fn read_range(
        &mut self,
        start: u64,
        len: u64,
        sink: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
        gap: &mut dyn FnMut(u64, u64, Gap),
    ) -> std::io::Result<()> {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            let Some(i) = Catalog::chunk_at(&self.set.chunks, pos) else {
                // No chunk record covers pos: skip to the next known chunk.
                let next = self.set.chunks.partition_point(|c| c.tar_offset <= pos);
                let stop = self
                    .set
                    .chunks
                    .get(next)
                    .map(|c| c.tar_offset)
                    .unwrap_or(end)
                    .min(end);
                gap(pos - start, stop - pos, Gap::Unknown);
                pos = stop;
                continue;
            };
            let rec = self.set.chunks[i];
            let c_end = (rec.tar_offset + u64::from(rec.tar_len)).min(end);
            match self.chunk(i) {
                Ok(data) => {
                    let a = (pos - rec.tar_offset) as usize;
                    let b = (c_end - rec.tar_offset) as usize;
                    sink(pos - start, &data[a..b])?;
                }
                Err(why) => gap(pos - start, c_end - pos, why),
            }
            pos = c_end;
        }
        Ok(())
    }
}

/// Stream readers for every generation at hand, so entries of a chain catalog can be read from
/// whichever generation stores their data.
pub struct ChainStreams<'a> {
    readers: std::collections::BTreeMap<u32, StreamReader<'a>>,
}

impl<'a> ChainStreams<'a> {
    /// One reader per generation set.
    pub fn new(sets: &'a std::collections::BTreeMap<u32, GenerationSet>) -> Self {
        ChainStreams {
            readers: sets
                .iter()
                .map(|(&g, s)| (g, StreamReader::new(s)))
                .collect(),
        }
    }

    /// Like [`StreamReader::read_range`] on the stream of `generation`.
    pub fn read_range(
        &mut self,
        generation: u32,
        start: u64,
        len: u64,
        sink: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
        gap: &mut dyn FnMut(u64, u64, Gap),
    ) -> std::io::Result<()> {
        match self.readers.get_mut(&generation) {
            Some(r) => r.read_range(start, len, sink, gap),
            None => {
                if len > 0 {
                    gap(0, len, Gap::MissingGeneration(generation));
                }
                Ok(())
            }
        }
    }
}
