//! The catalog and the per-disc index: what a generation holds and where each byte lies.
//!
//! Both are serialised with bincode 2 in its "legacy" configuration (little-endian fixed-width
//! integers, u64 length prefixes, u32 enum variant indices) inside a record file (see
//! `container::records`). FORMAT.md §5 lists every field in order.

mod entry;
pub use entry::{DataRef, Entry, EntryKind};

use serde::{Deserialize, Serialize};

/// Identity of a chain and of one generation in it; repeated in every catalog and index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// Chain name given with `-n` (UTF-8, 1..=64 bytes, no '/', NUL or control characters).
    pub name: String,
    /// Random id chosen when generation 1 was created; equal on every disc of the chain.
    pub chain_id: [u8; 16],
    /// This generation's number (1 = full archive).
    pub generation: u32,
    /// Generation this one is based on (0 for a full archive).
    pub base_generation: u32,
    /// Creation time of this generation, seconds since the epoch.
    pub created_unix: i64,
    /// Version of the tool that wrote it (informational).
    pub tool_version: String,
    /// Compression setting used ("zstd-3", "none").
    pub compression: String,
    /// FEC redundancy in percent requested with `-r`.
    pub redundancy_pct: u32,
}

/// One chunk of a generation's tar stream and where it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// Offset of the chunk's first byte in the tar stream; chunks are contiguous and ordered.
    pub tar_offset: u64,
    /// Uncompressed bytes (1..=MAX_CHUNK_SIZE).
    pub tar_len: u32,
    /// Bytes of the zstd frame after the 80-byte skippable header frame.
    pub stored_len: u32,
    /// Disc number (1-based, within the generation) holding the chunk.
    pub disc: u32,
    /// Global data-part number (1-based, across the generation) holding the chunk.
    pub part: u32,
    /// Offset of the chunk's skippable header frame within its data part file.
    pub part_offset: u64,
    /// CRC32C of the stored zstd frame bytes.
    pub stored_crc: u32,
    /// CRC32C of the uncompressed bytes.
    pub content_crc: u32,
}

/// One data part file (`<name>-gen<G>.<PPPP>.tar.zst`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Global part number (1-based, across discs; orders the files by name).
    pub part: u32,
    /// Disc holding the part.
    pub disc: u32,
    /// First sector of the part on its disc.
    pub lba: u64,
    /// Length of the part file in bytes (< 4 GiB).
    pub bytes: u64,
}

/// One disc of a generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscRecord {
    /// Disc number within the generation (1-based).
    pub disc: u32,
    /// Volume label of the disc's filesystems.
    pub volume_label: String,
    /// Sectors in the image.
    pub image_sectors: u64,
    /// Sectors of the medium the image was planned for.
    pub capacity_sectors: u64,
    /// Index of the first chunk stored on the disc.
    pub first_chunk: u64,
    /// Number of chunks stored on the disc.
    pub chunk_count: u64,
    /// Tar-stream range `[tar_start, tar_end)` the disc's chunks cover.
    pub tar_start: u64,
    /// End of that range.
    pub tar_end: u64,
}

/// The full catalog of one generation: the complete tree state and the whole chunk table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Chain and generation identity.
    pub chain: ChainInfo,
    /// Total length of the generation's tar stream (incl. the end-of-archive blocks).
    pub tar_len: u64,
    /// All discs of the generation, by number.
    pub discs: Vec<DiscRecord>,
    /// All data parts, by number.
    pub parts: Vec<PartRecord>,
    /// All chunks, in stream order (index = chunk sequence number).
    pub chunks: Vec<ChunkRecord>,
    /// Every entry of the tree, in tar-stream order.
    pub entries: Vec<Entry>,
}

/// The per-disc index: what one disc holds, enough to restore its files without any other disc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscIndex {
    /// Chain and generation identity.
    pub chain: ChainInfo,
    /// This disc.
    pub disc: DiscRecord,
    /// Data parts on this disc.
    pub parts: Vec<PartRecord>,
    /// Chunks on this disc (sequence numbers `disc.first_chunk ..`).
    pub chunks: Vec<ChunkRecord>,
    /// Entries whose tar record (headers or content) overlaps this disc's tar range.
    pub entries: Vec<Entry>,
}

impl Catalog {
    /// Index of the chunk containing tar offset `off`, if any.
    pub fn chunk_at(chunks: &[ChunkRecord], off: u64) -> Option<usize> {
        let i = chunks.partition_point(|c| c.tar_offset <= off);
        if i == 0 {
            return None;
        }
        let c = &chunks[i - 1];
        (off < c.tar_offset + u64::from(c.tar_len)).then_some(i - 1)
    }

    /// Disc numbers holding any byte of the entry's tar record.
    pub fn discs_of(&self, e: &Entry) -> Vec<u32> {
        discs_of(&self.chunks, e)
    }
}

/// Disc numbers holding any byte of the entry's tar record, given a chunk table in stream order.
pub fn discs_of(chunks: &[ChunkRecord], e: &Entry) -> Vec<u32> {
    let start = e.data.header_offset;
    let end = e.data.content_offset + e.size;
    let mut discs = Vec::new();
    let Some(mut i) = Catalog::chunk_at(chunks, start) else {
        return discs;
    };
    while let Some(c) = chunks.get(i) {
        if c.tar_offset >= end.max(start + 1) {
            break;
        }
        if discs.last() != Some(&c.disc) {
            discs.push(c.disc);
        }
        i += 1;
    }
    discs
}

/// `DataRef.generation` of an entry whose content lives in the dar chain this chain continues.
pub const SEED_DATA_GENERATION: u32 = 0;

/// Whether an entry's content is held by the dar chain a migrated chain continues.
pub fn in_seed(e: &Entry) -> bool {
    e.data.generation == SEED_DATA_GENERATION && e.kind == EntryKind::File
}

/// Number of dar generations a catalog's seed-held entries refer to (0: none, a native chain).
pub fn seed_generations(entries: &[Entry]) -> u32 {
    entries
        .iter()
        .filter(|e| in_seed(e))
        .map(|e| u32::try_from(e.data.header_offset).unwrap_or(u32::MAX))
        .max()
        .unwrap_or(0)
}

/// Orders paths as the scanner walks them: component by component (a directory before its
/// children, siblings by name bytes). Catalog entries of every generation are in this order.
pub fn tree_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_is_preorder() {
        let mut v: Vec<&[u8]> = vec![b"a-c", b"a/b", b"a", b"b", b"a/b/c", b"a.txt"];
        v.sort_by(|x, y| tree_order(x, y));
        assert_eq!(v, vec![&b"a"[..], b"a/b", b"a/b/c", b"a-c", b"a.txt", b"b"]);
    }
}
