//! The disc map a catalog carries for earlier generations (format version 2, FORMAT.md §6.1):
//! for every disc of every earlier generation, the range of chunk sequence numbers it holds.
//!
//! An entry kept from generation 1 points into generation 1's stream (`DataRef`); which disc
//! of generation 1 holds those bytes is answered by generation 1's chunk table — in its own
//! catalog. The map carries that answer forward compactly (one span per disc, not per chunk
//! or entry), so the newest catalog alone says "g1:d2". Chunk k covers stream bytes from
//! k·2^20 (FORMAT §5), so a chunk range is also a byte range.
//!
//! The map is untrusted like the rest of a catalog: [`DiscMap::checked`] keeps only the
//! generations whose spans follow every rule, and names the rule each dropped one breaks.

use serde::{Deserialize, Serialize};

use super::{Catalog, Entry, CHUNK_BYTES};

/// Most spans a catalog's disc map may hold (32 bytes each: 32 MiB decoded); a longer list
/// makes the record undecodable. A chain of 10 000 generations of 100 discs stays below it.
pub const MAX_DISC_SPANS: usize = 1 << 20;

/// Bytes of one span in the record body (FORMAT §6): 4 + 4 + 8 + 8 + 8.
pub const DISC_SPAN_BYTES: usize = 32;

/// One disc of an earlier generation and the chunks of that generation's stream it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscSpan {
    /// Generation (≥ 1 and below the catalog's own).
    pub generation: u32,
    /// Disc number within that generation (≥ 1; strictly increasing within a generation).
    pub disc: u32,
    /// Sequence number of the disc's first chunk: 0 for the generation's first span, else the
    /// previous span's `first_chunk + chunk_count` (a generation's chunks are contiguous).
    pub first_chunk: u64,
    /// Chunks on the disc; 0 for a disc holding none (e.g. one opened for the catalog alone).
    pub chunk_count: u64,
    /// End of the stream bytes covered up to and including this disc. With chunks:
    /// (first_chunk + chunk_count − 1)·2^20 < `tar_end` ≤ (first_chunk + chunk_count)·2^20,
    /// and the previous span's `tar_end` (0 for the first) is first_chunk·2^20. Without
    /// chunks: equal to the previous span's `tar_end`. The last span's is the stream length.
    pub tar_end: u64,
}

/// The disc map of one catalog after its rules were checked: only whole, valid generations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscMap {
    /// Spans sorted by (generation, disc), every generation's spans following the rules.
    spans: Vec<DiscSpan>,
}

/// A generation whose spans break a rule of FORMAT §6.1 (its discs are then not named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapProblem {
    /// The generation the bad span claims.
    pub generation: u32,
    /// The rule broken.
    pub rule: &'static str,
}

impl DiscMap {
    /// Checks `raw` (the map of a catalog of generation `generation`): keeps every generation
    /// whose spans follow the rules, drops each other one with the rule it breaks. One pass.
    pub fn checked(raw: &[DiscSpan], generation: u32) -> (DiscMap, Vec<MapProblem>) {
        let mut spans = Vec::with_capacity(raw.len());
        let mut problems: Vec<MapProblem> = Vec::new();
        let mut rest = raw;
        let mut last_gen = 0u32;
        while let Some(first) = rest.first() {
            let g = first.generation;
            let n = rest.iter().take_while(|s| s.generation == g).count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let rule = if g <= last_gen {
                Some("generations not in increasing order")
            } else if g == 0 || g >= generation {
                Some("a generation that is not earlier than the catalog's own")
            } else {
                super::validate::disc_span_rule(group)
            };
            last_gen = last_gen.max(g);
            match rule {
                None => spans.extend_from_slice(group),
                Some(rule) => {
                    if problems.last().is_none_or(|p| p.generation != g) {
                        problems.push(MapProblem {
                            generation: g,
                            rule,
                        });
                    }
                }
            }
        }
        (DiscMap { spans }, problems)
    }

    /// The map a new generation carries: `base`'s own map (its valid generations) plus `base`'s
    /// own generation, taken from its disc and chunk tables; and the generations left out (a
    /// rule broken in `base`'s map, or its own tables inconsistent).
    pub fn carried_from(base: &Catalog) -> (Vec<DiscSpan>, Vec<MapProblem>) {
        let g = base.chain.generation;
        let (kept, mut problems) = DiscMap::checked(&base.disc_map, g);
        let mut spans = kept.spans;
        match spans_of_catalog(base) {
            Some(own) => spans.extend(own),
            None => problems.push(MapProblem {
                generation: g,
                rule: "its chunk table breaks FORMAT.md §5 or disagrees with its disc list",
            }),
        }
        (spans, problems)
    }

    /// The spans of generation `g` (empty when the map does not describe it).
    pub fn generation(&self, g: u32) -> &[DiscSpan] {
        let a = self.spans.partition_point(|s| s.generation < g);
        let b = self.spans.partition_point(|s| s.generation <= g);
        &self.spans[a..b]
    }

    /// Whether the map describes generation `g`.
    pub fn has(&self, g: u32) -> bool {
        !self.generation(g).is_empty()
    }

    /// Length of generation `g`'s stream, when the map describes it.
    pub fn stream_len(&self, g: u32) -> Option<u64> {
        self.generation(g).last().map(|s| s.tar_end)
    }

    /// Disc numbers of generation `g`, when the map describes it.
    pub fn discs(&self, g: u32) -> Vec<u32> {
        self.generation(g).iter().map(|s| s.disc).collect()
    }

    /// Discs of generation `g` holding any byte of the given entries that point into it,
    /// ascending (e.g. what to fetch of a missing generation).
    pub fn discs_holding<'e>(
        &self,
        entries: impl Iterator<Item = &'e Entry>,
        g: u32,
    ) -> std::collections::BTreeSet<u32> {
        if !self.has(g) {
            return Default::default();
        }
        entries
            .filter(|e| e.data.generation == g)
            .flat_map(|e| self.discs_of(e))
            .collect()
    }

    /// Discs of `e.data.generation` holding any byte of the entry's tar record (empty when the
    /// map does not describe that generation or the record lies past its stream). Binary
    /// search: O(log discs + discs of the entry).
    pub fn discs_of(&self, e: &Entry) -> Vec<u32> {
        let spans = self.generation(e.data.generation);
        let start = e.data.header_offset;
        let end = e
            .data
            .content_offset
            .saturating_add(e.size)
            .max(start.saturating_add(1));
        let Some(stream_end) = spans.last().map(|s| s.tar_end) else {
            return Vec::new();
        };
        if start >= stream_end {
            return Vec::new();
        }
        let (k0, k1) = (start / CHUNK_BYTES, (end.min(stream_end) - 1) / CHUNK_BYTES);
        let i = spans.partition_point(|s| s.first_chunk + s.chunk_count <= k0);
        spans[i..]
            .iter()
            .take_while(|s| s.first_chunk <= k1)
            .filter(|s| s.chunk_count > 0)
            .map(|s| s.disc)
            .collect()
    }
}

/// `catalog`'s own generation as spans, from its disc list and chunk table; `None` when the
/// two disagree or the chunk table breaks FORMAT §5 (then no map can describe it).
pub fn spans_of_catalog(catalog: &Catalog) -> Option<Vec<DiscSpan>> {
    let chunks = &catalog.chunks;
    // Sorted by disc, or the binary searches below would not find each disc's range.
    if chunks.windows(2).any(|w| w[1].disc < w[0].disc) {
        return None;
    }
    let mut spans = Vec::with_capacity(catalog.discs.len());
    let mut prev_end = 0u64;
    for d in &catalog.discs {
        let a = chunks.partition_point(|c| c.disc < d.disc);
        let b = chunks.partition_point(|c| c.disc <= d.disc);
        let tar_end = match chunks[a..b].last() {
            Some(c) => c.tar_offset.checked_add(u64::from(c.tar_len))?,
            None => prev_end,
        };
        spans.push(DiscSpan {
            generation: catalog.chain.generation,
            disc: d.disc,
            first_chunk: a as u64,
            chunk_count: (b - a) as u64,
            tar_end,
        });
        prev_end = tar_end;
    }
    let covered: u64 = spans.iter().map(|s| s.chunk_count).sum();
    let offsets_ok = chunks
        .iter()
        .enumerate()
        .all(|(k, c)| c.tar_offset == k as u64 * CHUNK_BYTES);
    (covered == chunks.len() as u64
        && offsets_ok
        && super::validate::disc_span_rule(&spans).is_none())
    .then_some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::catalog::{DataRef, EntryKind};

    fn span(generation: u32, disc: u32, first: u64, count: u64, end: u64) -> DiscSpan {
        DiscSpan {
            generation,
            disc,
            first_chunk: first,
            chunk_count: count,
            tar_end: end,
        }
    }

    const M: u64 = CHUNK_BYTES;

    fn good() -> Vec<DiscSpan> {
        vec![
            span(1, 1, 0, 3, 3 * M),
            span(1, 2, 3, 2, 4 * M + 100),
            span(1, 3, 5, 0, 4 * M + 100),
            span(2, 1, 0, 1, 512),
        ]
    }

    fn entry(generation: u32, header: u64, size: u64) -> Entry {
        Entry {
            path: b"f".to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            size,
            link_target: Vec::new(),
            rdev: 0,
            sha256: [1; 32],
            data: DataRef {
                generation,
                header_offset: header,
                content_offset: header + 512,
            },
            stamp: Default::default(),
        }
    }

    #[test]
    fn entries_are_mapped_to_the_discs_holding_their_bytes() {
        let (map, problems) = DiscMap::checked(&good(), 3);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(map.discs_of(&entry(1, 0, 10)), [1]);
        assert_eq!(map.discs_of(&entry(1, 3 * M - 600, 2000)), [1, 2]);
        assert_eq!(map.discs_of(&entry(1, 4 * M, 50)), [2]);
        assert_eq!(map.discs_of(&entry(1, 5 * M, 50)), Vec::<u32>::new());
        assert_eq!(map.discs_of(&entry(2, 0, 0)), [1]);
        assert_eq!(map.discs_of(&entry(4, 0, 0)), Vec::<u32>::new());
        assert_eq!(map.stream_len(1), Some(4 * M + 100));
        assert_eq!(map.discs(1), [1, 2, 3]);
    }

    fn catalog(generation: u32, discs: &[(u32, u64)], last_len: u32) -> Catalog {
        use crate::format::catalog::{ChainInfo, ChunkRecord, DiscRecord};
        let mut chunks = Vec::new();
        let mut records = Vec::new();
        for &(disc, n) in discs {
            records.push(DiscRecord {
                disc,
                volume_label: String::new(),
                image_sectors: 0,
                capacity_sectors: 0,
                first_chunk: chunks.len() as u64,
                chunk_count: n,
                tar_start: 0,
                tar_end: 0,
            });
            for _ in 0..n {
                chunks.push(ChunkRecord {
                    tar_offset: chunks.len() as u64 * M,
                    tar_len: 1 << 20,
                    stored_len: 1,
                    disc,
                    part: 1,
                    part_offset: 0,
                    stored_crc: 0,
                    content_crc: 0,
                });
            }
        }
        if let Some(c) = chunks.last_mut() {
            c.tar_len = last_len;
        }
        Catalog {
            chain: ChainInfo {
                name: "t".into(),
                chain_id: [0; 16],
                generation,
                base_generation: generation - 1,
                created_unix: 0,
                tool_version: String::new(),
                compression: String::new(),
                redundancy_pct: 10,
            },
            tar_len: 0,
            discs: records,
            parts: Vec::new(),
            chunks,
            entries: Vec::new(),
            disc_map: Vec::new(),
        }
    }

    #[test]
    fn the_map_carried_forward_describes_the_base_and_what_it_carried() {
        let mut base = catalog(2, &[(1, 3), (2, 2), (3, 0)], 100);
        base.disc_map = vec![span(1, 1, 0, 1, 512)];
        let (carried, problems) = DiscMap::carried_from(&base);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            carried,
            vec![
                span(1, 1, 0, 1, 512),
                span(2, 1, 0, 3, 3 * M),
                span(2, 2, 3, 2, 4 * M + 100),
                span(2, 3, 5, 0, 4 * M + 100),
            ]
        );
        let (_, problems) = DiscMap::checked(&carried, 3);
        assert!(problems.is_empty(), "{problems:?}");
        // A chunk table that disagrees with the disc list describes nothing.
        let mut bad = catalog(2, &[(1, 2), (2, 1)], 100);
        bad.chunks[1].disc = 2;
        bad.chunks[2].disc = 1;
        assert_eq!(spans_of_catalog(&bad), None);
        let (carried, problems) = DiscMap::carried_from(&bad);
        assert_eq!((carried, problems[0].generation), (vec![], 2));
    }

    #[test]
    fn a_generation_breaking_a_rule_is_dropped_and_named() {
        let cases: Vec<(Vec<DiscSpan>, u32)> = vec![
            // gap in the chunk ranges
            (
                vec![span(1, 1, 0, 3, 3 * M), span(1, 2, 4, 1, 4 * M + 1)],
                1,
            ),
            // tar_end beyond its chunks
            (vec![span(1, 1, 0, 3, 3 * M + 1)], 1),
            // a short chunk followed by more chunks
            (
                vec![span(1, 1, 0, 3, 3 * M - 1), span(1, 2, 3, 1, 4 * M)],
                1,
            ),
            // disc numbers repeat
            (vec![span(1, 2, 0, 1, M), span(1, 2, 1, 1, 2 * M)], 1),
            // the catalog's own generation, or a later one
            (vec![span(3, 1, 0, 1, M)], 3),
            // generation 0 (the dar seed has no chunks)
            (vec![span(0, 1, 0, 1, M)], 0),
            // overflowing ranges
            (vec![span(1, 1, 0, u64::MAX, M)], 1),
        ];
        for (raw, bad_gen) in cases {
            let mut raw = raw;
            raw.push(span(2, 1, 0, 1, 512));
            raw.sort_by_key(|s| s.generation);
            let (map, problems) = DiscMap::checked(&raw, 3);
            assert_eq!(problems.len(), 1, "{raw:?}");
            assert_eq!(problems[0].generation, bad_gen);
            assert!(!map.has(bad_gen) || bad_gen == 2);
            assert!(map.has(2), "a good generation is kept: {raw:?}");
        }
        // Out of order generations.
        let raw = vec![span(2, 1, 0, 1, 512), span(1, 1, 0, 1, 512)];
        let (map, problems) = DiscMap::checked(&raw, 3);
        assert_eq!(problems[0].generation, 1);
        assert!(map.has(2) && !map.has(1));
    }
}
