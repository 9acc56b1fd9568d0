//! The room each data disc leaves for a parity disc (`--parity-discs`): a true upper bound, so
//! `create` can never find after the data images that the parity disc does not fit.
//!
//! A parity disc holds the column parity — as many sectors as the largest data disc's protected
//! region, L — plus its own fixed files, the manifest (one record per data disc) and a copy of
//! the catalog. The data discs are planned `reserve` sectors smaller than the medium allows, so
//! L + (fixed files, manifest, catalog copy) fits whenever `reserve` bounds the latter three:
//!
//! ```text
//! stream   ≤ Σ (PAX + ustar headers at their longest, pax::headers_len_bound) + content (sizes
//!            as scanned; tar_stream never archives more) + end-of-archive
//! chunks   ≤ ⌈stream / CHUNK_SIZE⌉        stored ≤ stream + chunks × (frame + raw-block overhead)
//! discs    ≤ 2 + ⌈(stored + indexes) / (what a disc closed as full holds at least)⌉
//! catalog  ≤ record_size_bound(bincode bytes: fixed part + discs × disc record + parts × part
//!            record + chunks × chunk record + Σ entries, each exactly as the encoder sizes it)
//! reserve  = parity_overhead(discs, catalog)
//! ```
//! The discs bound depends on the reserve (a larger reserve leaves less data per disc), so the
//! reserve is iterated up from 0 until it covers itself. Everything is counted uncompressed
//! (zstd's bound, not a guess of the ratio), so the bound holds however badly the data compresses.

use crate::archive::disc_writer::{DiscSetConfig, PART_MAX_BYTES};
use crate::archive::parity_disc::parity_overhead_sectors;
use crate::archive::pax;
use crate::archive::scan::SourceEntry;
use crate::format::catalog::{
    Catalog, ChunkRecord, DataRef, DiscRecord, Entry, EntryKind, PartRecord,
};
use crate::format::chunk::{zstd_bound, CHUNK_FRAME_OVERHEAD, CHUNK_SIZE};
use crate::format::records::{encoded_len, record_size_bound};
use crate::image::FIRST_DATA_LBA;
use crate::sector::SECTOR_SIZE;

const SS: u64 = SECTOR_SIZE as u64;

/// What the bound needs to know about a generation's discs beyond its streamed entries.
pub struct DiscShape<'a> {
    /// The settings the discs will be written with (chain, FORMAT.md, binary, disc map).
    cfg: &'a DiscSetConfig,
    /// Sectors before a data disc's first data part (filesystem, README, FORMAT.md, binary), at
    /// least.
    data_disc_fixed: u64,
    /// bincode bytes of the catalog with no discs, parts, chunks or entries: chain, the lists'
    /// length prefixes, the carried disc map (FORMAT §6.1).
    catalog_base_raw: u64,
    /// bincode bytes of the entries reused from the base: in the catalog, never in the stream.
    reused_raw: u64,
}

impl<'a> DiscShape<'a> {
    /// The shape of the discs `cfg` describes, for a generation reusing `reused` from its base.
    pub fn new(cfg: &'a DiscSetConfig, reused: &[Entry]) -> Self {
        let sectors = |bytes: usize| (bytes as u64).div_ceil(SS);
        let readme = crate::format::readme::disc_readme(&cfg.chain, u32::MAX);
        let binary = cfg.binary.as_ref().map_or(0, Vec::len);
        DiscShape {
            cfg,
            data_disc_fixed: FIRST_DATA_LBA
                + sectors(readme.len())
                + sectors(cfg.format_md.len())
                + sectors(binary),
            catalog_base_raw: encoded_len(&Catalog {
                chain: cfg.chain.clone(),
                tar_len: 0,
                discs: Vec::new(),
                parts: Vec::new(),
                chunks: Vec::new(),
                entries: Vec::new(),
                disc_map: cfg.disc_map.clone(),
            }),
            reused_raw: reused.iter().map(encoded_len).sum(),
        }
    }

    /// Bytes of the static binary carried on every disc (0 with `--no-binary`).
    pub fn binary_bytes(&self) -> u64 {
        self.cfg.binary.as_ref().map_or(0, |b| b.len() as u64)
    }

    /// Sectors of a parity disc besides the column parity, for `n` data discs and a catalog of
    /// `catalog` bytes.
    fn parity_overhead(&self, n: u64, catalog: u64) -> u64 {
        parity_overhead_sectors(self.cfg, n.try_into().unwrap_or(usize::MAX), catalog)
    }
}

/// The reserve and the bounds it was made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveBound {
    /// Sectors each data disc leaves free for the parity disc.
    pub sectors: u64,
    /// Most data discs the generation can take.
    pub data_discs: u64,
    /// Most bytes its catalog record can have.
    pub catalog_bytes: u64,
}

/// bincode bytes of a catalog entry with an empty path and link target: every other field has a
/// fixed width, so an entry encodes to this plus its path and target bytes.
fn entry_base_raw() -> u64 {
    encoded_len(&Entry {
        path: Vec::new(),
        kind: EntryKind::File,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
        size: 0,
        link_target: Vec::new(),
        rdev: 0,
        sha256: [0; 32],
        data: DataRef::default(),
        stamp: Default::default(),
    })
}

/// bincode bytes of the catalog entry the stream makes of `e` (sockets too: they have no tar
/// record but are listed).
pub fn entry_raw(e: &SourceEntry) -> u64 {
    entry_base_raw() + e.rel_path.len() as u64 + e.link_target.len() as u64
}

/// bincode bytes of the longest disc record (volume labels are at most 32 bytes).
fn disc_record_raw() -> u64 {
    encoded_len(&DiscRecord {
        disc: 0,
        volume_label: "x".repeat(32),
        image_sectors: 0,
        capacity_sectors: 0,
        first_chunk: 0,
        chunk_count: 0,
        tar_start: 0,
        tar_end: 0,
    })
}

fn part_record_raw() -> u64 {
    encoded_len(&PartRecord {
        part: 0,
        disc: 0,
        lba: 0,
        bytes: 0,
    })
}

fn chunk_record_raw() -> u64 {
    encoded_len(&ChunkRecord {
        tar_offset: 0,
        tar_len: 0,
        stored_len: 0,
        disc: 0,
        part: 0,
        part_offset: 0,
        stored_crc: 0,
        content_crc: 0,
    })
}

/// Bytes of the largest chunk frame (a full chunk stored raw, with its header).
fn chunk_stored_max() -> u64 {
    (CHUNK_FRAME_OVERHEAD + zstd_bound(CHUNK_SIZE)) as u64
}

/// Most data parts `bytes` of chunk frames fill beyond one per disc: a part is closed only when
/// the next frame would take it past [`PART_MAX_BYTES`], so each closed part holds at least that
/// less one frame.
fn parts_for(bytes: u64) -> u64 {
    1 + bytes / (PART_MAX_BYTES - chunk_stored_max())
}

/// Bytes of the tar stream `entries` can make at most.
fn stream_bound(entries: &[SourceEntry]) -> u64 {
    let records: u64 = entries
        .iter()
        .filter(|e| e.kind != EntryKind::Socket)
        .map(|e| {
            let content = if e.kind == EntryKind::File {
                e.size.div_ceil(512) * 512
            } else {
                0
            };
            pax::headers_len_bound(e.rel_path.len(), e.link_target.len()) + content
        })
        .sum();
    records + 1024
}

/// The generation's streamed part, as far as the bound needs it.
struct StreamBound {
    chunks: u64,
    /// Chunk frames on the data discs, bytes.
    stored: u64,
    /// bincode bytes of the streamed entries.
    entries_raw: u64,
    /// bincode bytes of the largest streamed entry (an index may list one open entry twice).
    largest_entry: u64,
}

impl StreamBound {
    fn of(entries: &[SourceEntry]) -> Self {
        let stream = stream_bound(entries);
        let chunks = stream.div_ceil(CHUNK_SIZE as u64);
        let per_chunk = (CHUNK_FRAME_OVERHEAD + zstd_bound(CHUNK_SIZE) - CHUNK_SIZE) as u64;
        let raws = entries.iter().map(entry_raw);
        StreamBound {
            chunks,
            stored: stream + chunks * per_chunk,
            entries_raw: raws.clone().sum(),
            largest_entry: raws.max().unwrap_or(0),
        }
    }

    /// Most data discs when each holds at most `budget` protected sectors (None: a disc cannot
    /// hold a chunk). A disc closes as full only when the next chunk, its part's sector rounding
    /// and the index grown by it do not fit; so each full disc holds data of at least `budget`
    /// less its fixed files, one chunk, its part roundings and its index. The last data disc may
    /// be nearly empty and the catalog may take a disc of its own: two more.
    fn data_discs(&self, budget: u64, shape: &DiscShape) -> Option<u64> {
        let chunk_sectors = chunk_stored_max().div_ceil(SS);
        let parts_per_disc = parts_for(budget * SS);
        // Per full disc, bytes of its index that do not scale with the data: the index's fixed
        // part, the open entry listed at both ends, the chunk refused (its record and entries
        // counted in the projection too), zstd's and the record header's overhead, the rounding.
        let index_fixed = shape.catalog_base_raw
            + disc_record_raw()
            + 3 * self.largest_entry
            + 2 * (chunk_record_raw() + 32)
            + 64;
        let per_disc_index = record_size_bound(index_fixed) + 2 * SS;
        let lost = (shape.data_disc_fixed + chunk_sectors + parts_per_disc + 1) * SS;
        let holds = (budget * SS).checked_sub(lost + per_disc_index)?.max(1);
        // Indexes of all discs together, beyond the per-disc part: every entry at most twice
        // (the refused chunk's entries are counted on the disc it was refused by), every chunk
        // record with the 32 bytes the writer's projection adds.
        let scaled = zstd_bound(
            (2 * self.entries_raw + self.chunks * (chunk_record_raw() + 32))
                .try_into()
                .ok()?,
        ) as u64;
        Some(2 + (self.stored + scaled).div_ceil(holds))
    }

    /// Most bytes of the catalog record with `discs` data discs.
    fn catalog_bytes(&self, discs: u64, shape: &DiscShape) -> u64 {
        let parts = discs + parts_for(self.stored);
        let raw = shape.catalog_base_raw
            + discs * disc_record_raw()
            + parts * part_record_raw()
            + self.chunks * chunk_record_raw()
            + self.entries_raw
            + shape.reused_raw;
        record_size_bound(raw)
    }
}

/// The reserve for `entries` (the streamed entries) on discs of `max_protected` sectors:
/// iterated from 0 until it covers the parity disc its own data discs imply. When no reserve
/// leaves room for data and the catalog, the whole disc is returned (the writer then refuses
/// the capacity before writing anything).
pub fn parity_reserve(
    entries: &[SourceEntry],
    shape: &DiscShape,
    max_protected: u64,
) -> ReserveBound {
    let stream = StreamBound::of(entries);
    let mut reserve = 0u64;
    // Each round the reserve grows (the data discs shrink, so more of them); 64 rounds is far
    // more than any real set needs (it settles in 2 or 3).
    for _ in 0..64 {
        let budget = max_protected.saturating_sub(reserve);
        let Some(discs) = stream.data_discs(budget, shape) else {
            break;
        };
        let catalog = stream.catalog_bytes(discs, shape);
        // The catalog must fit a data disc too (one of its own if need be: its fixed files, an
        // index of no entries, the catalog), or that disc would be larger than the others.
        let empty_index = record_size_bound(shape.catalog_base_raw + disc_record_raw());
        if shape.data_disc_fixed + (empty_index + catalog).div_ceil(SS) + 2 > budget {
            break;
        }
        let needed = shape.parity_overhead(discs, catalog);
        if needed <= reserve {
            return ReserveBound {
                sectors: reserve,
                data_discs: discs,
                catalog_bytes: catalog,
            };
        }
        reserve = needed;
    }
    ReserveBound {
        sectors: max_protected,
        data_discs: u64::MAX,
        catalog_bytes: u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::disc_writer::TRAILER_SECTORS;
    use crate::fec;
    use crate::format::catalog::{ChainInfo, DiscSpan};
    use crate::sector::CLUSTER_SECTORS;
    use crate::util::xorshift::noise;

    fn config(disc_map: Vec<DiscSpan>) -> DiscSetConfig {
        DiscSetConfig {
            images_dir: "/nonexistent".into(),
            chain: ChainInfo {
                name: "bound".into(),
                chain_id: [9; 16],
                generation: 3,
                base_generation: 2,
                created_unix: 1_700_000_000,
                tool_version: "0.1.0".into(),
                compression: "zstd-3".into(),
                redundancy_pct: 10,
            },
            set_id: [1; 16],
            capacity_sectors: 16_384,
            redundancy_pct: 10,
            fill_parity: false,
            memory_budget: 64 << 20,
            parity_discs: 1,
            format_md: vec![b'#'; 80_000],
            first_image_number: 1,
            carry_in: None,
            binary: None,
            parity_reserve_sectors: 0,
            disc_map,
        }
    }

    /// Printable bytes that do not compress (6 random bits each).
    fn random_text(len: usize, seed: u64) -> Vec<u8> {
        noise(len, seed).iter().map(|b| b'0' + (b & 63)).collect()
    }

    /// A catalog that cannot fit one disc beside the rest: no reserve works, the whole disc is
    /// returned (and create refuses the capacity before writing anything).
    #[test]
    fn a_catalog_larger_than_a_disc_leaves_no_room() {
        let scanned: Vec<SourceEntry> = (0..12_000u64)
            .map(|i| SourceEntry {
                rel_path: format!("l{i}").into_bytes(),
                kind: EntryKind::Symlink,
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime_sec: 0,
                mtime_nsec: 0,
                size: 0,
                link_target: vec![b't'; 4000],
                rdev: 0,
                stamp: Default::default(),
            })
            .collect();
        let cfg = config(Vec::new());
        let shape = DiscShape::new(&cfg, &[]);
        let max = fec::max_protected_for_loss(16_384 - TRAILER_SECTORS, 10);
        assert_eq!(parity_reserve(&scanned, &shape, max).sectors, max);
        assert!(parity_reserve(&scanned[..1000], &shape, max).sectors < max / 2);
    }

    /// A catalog as incompressible as catalogs get — every entry's name, target and hash random,
    /// every number at its widest, the most discs, parts and chunks the bound allows — encodes
    /// within the bound: the bound counts what the encoder writes.
    #[test]
    fn the_catalog_bound_covers_the_catalog_the_encoder_writes() {
        let scanned: Vec<SourceEntry> = (0..400u64)
            .map(|i| SourceEntry {
                rel_path: random_text(30 + (i as usize * 7) % 300, i),
                kind: [EntryKind::File, EntryKind::Symlink, EntryKind::HardLink][i as usize % 3],
                mode: 0o7777,
                uid: u32::MAX,
                gid: u32::MAX,
                mtime_sec: i64::MIN,
                mtime_nsec: 999_999_999,
                size: if i % 3 == 0 { 3 << 20 } else { 0 },
                link_target: random_text((i as usize * 13) % 900, 1000 + i),
                rdev: u64::MAX,
                stamp: Default::default(),
            })
            .collect();
        let entry = |e: &SourceEntry, seed: u64| Entry {
            path: e.rel_path.clone(),
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime_sec: e.mtime_sec,
            mtime_nsec: e.mtime_nsec,
            size: u64::MAX,
            link_target: e.link_target.clone(),
            rdev: u64::MAX,
            sha256: noise(32, seed).try_into().unwrap(),
            data: DataRef {
                generation: u32::MAX,
                header_offset: u64::MAX,
                content_offset: u64::MAX,
            },
            stamp: Default::default(),
        };
        let (reused, streamed) = scanned.split_at(100);
        let span = DiscSpan {
            generation: 1,
            disc: 1,
            first_chunk: 0,
            chunk_count: u64::MAX,
            tar_end: u64::MAX,
        };
        let cfg = config(vec![span; 50]);
        let reused: Vec<Entry> = reused.iter().map(|e| entry(e, 7)).collect();
        let shape = DiscShape::new(&cfg, &reused);
        let max = fec::max_protected_for_loss(16_384 - TRAILER_SECTORS, 10);
        let bound = parity_reserve(streamed, &shape, max);
        assert!(bound.sectors < max, "{bound:?}");
        let stream = StreamBound::of(streamed);
        let discs = bound.data_discs;
        let catalog = Catalog {
            chain: cfg.chain.clone(),
            tar_len: u64::MAX,
            discs: (0..discs)
                .map(|d| DiscRecord {
                    disc: d as u32,
                    volume_label: "V".repeat(32),
                    image_sectors: u64::MAX,
                    capacity_sectors: u64::MAX,
                    first_chunk: u64::MAX,
                    chunk_count: u64::MAX,
                    tar_start: u64::MAX,
                    tar_end: u64::MAX,
                })
                .collect(),
            parts: (0..discs + parts_for(stream.stored))
                .map(|p| PartRecord {
                    part: p as u32,
                    disc: u32::MAX,
                    lba: u64::MAX,
                    bytes: u64::MAX,
                })
                .collect(),
            chunks: (0..stream.chunks)
                .map(|c| ChunkRecord {
                    tar_offset: c.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    tar_len: u32::MAX,
                    stored_len: u32::MAX,
                    disc: u32::MAX,
                    part: u32::MAX,
                    part_offset: u64::MAX,
                    stored_crc: c as u32 ^ 0x5555_5555,
                    content_crc: (c as u32).wrapping_mul(2_654_435_761),
                })
                .collect(),
            entries: (streamed.iter().enumerate())
                .map(|(i, e)| entry(e, i as u64))
                .chain(reused)
                .collect(),
            disc_map: cfg.disc_map.clone(),
        };
        let real = crate::format::records::record_len(&catalog).unwrap();
        assert!(real <= bound.catalog_bytes, "{real} > {bound:?}");
        // The raw count is exact: only the compressor's slack lies between the two.
        let raw = encoded_len(&catalog);
        assert!(
            record_size_bound(raw) <= bound.catalog_bytes,
            "{raw}: {bound:?}"
        );
        assert!(raw + 64 * 1024 > bound.catalog_bytes, "{raw}: {bound:?}");
    }

    /// The reserve only guarantees that the parity disc's protected region is at most the data
    /// discs' largest; that is enough only if every smaller region also fits the medium with
    /// its FEC (no bump in the FEC's size below the largest region that fits).
    #[test]
    fn every_protected_region_up_to_the_largest_fits_the_medium() {
        for capacity in [16_384u64, 65_536, 12_219_392] {
            for pct in [3, 10, 20] {
                let budget = capacity - TRAILER_SECTORS;
                let max = fec::max_protected_for_loss(budget, pct);
                // Every region near the largest, then a sample of the 40 000 below.
                let near = max.saturating_sub(300).max(1)..=max;
                let below = (max.saturating_sub(40_000).max(1)..=max).step_by(40);
                for d in near.chain(below) {
                    let l = fec::plan_for_loss(d, pct).unwrap();
                    let total = (d + l.region_sectors() + TRAILER_SECTORS)
                        .div_ceil(CLUSTER_SECTORS)
                        * CLUSTER_SECTORS;
                    assert!(total <= capacity, "{capacity} sectors, -r {pct}: D {d}");
                }
            }
        }
    }
}
