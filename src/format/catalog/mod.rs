//! The catalog and the per-disc index: what a generation holds and where each byte lies.
//!
//! Both are serialised with bincode 2 in its "legacy" configuration (little-endian fixed-width
//! integers, u64 length prefixes, u32 enum variant indices) inside a record file (see
//! `container::records`). FORMAT.md §5 lists every field in order.

pub(crate) mod bounded;
pub mod disc_map;
mod entry;
pub mod v1;
pub mod validate;
pub use disc_map::{DiscMap, DiscSpan};
pub use entry::{ChangeStamp, DataRef, Entry, EntryKind};

use serde::{Deserialize, Serialize};

/// Identity of a chain and of one generation in it; repeated in every catalog and index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// Chain name given with `-n` (UTF-8, 1..=64 bytes, no '/', NUL or control characters).
    #[serde(deserialize_with = "bounded::string::<_, 64>")]
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
    #[serde(deserialize_with = "bounded::string::<_, 255>")]
    pub tool_version: String,
    /// Compression setting used ("zstd-3", "none").
    #[serde(deserialize_with = "bounded::string::<_, 255>")]
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
    #[serde(deserialize_with = "bounded::string::<_, 255>")]
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
    /// Which disc of each earlier generation holds which chunks of its stream (format version
    /// 2, FORMAT §6.1; empty in a version-1 catalog). Check it with [`DiscMap::checked`].
    #[serde(deserialize_with = "bounded::list::<_, DiscSpan, { disc_map::MAX_DISC_SPANS }>")]
    pub disc_map: Vec<DiscSpan>,
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
///
/// Costs O(discs × log chunks), not O(chunks of the entry): disc numbers never decrease along
/// a table that follows FORMAT §5 ([`retain_valid_chunks`]), so each next disc is found by
/// binary search. On a table that does not, the answer is a subset, found just as fast.
pub fn discs_of(chunks: &[ChunkRecord], e: &Entry) -> Vec<u32> {
    let start = e.data.header_offset;
    let end = e
        .data
        .content_offset
        .saturating_add(e.size)
        .max(start.saturating_add(1));
    let mut discs = Vec::new();
    let Some(mut i) = Catalog::chunk_at(chunks, start) else {
        return discs;
    };
    let stop = chunks.partition_point(|c| c.tar_offset < end);
    while i < stop {
        let d = chunks[i].disc;
        discs.push(d);
        i += chunks[i..stop].partition_point(|c| c.disc <= d).max(1);
    }
    discs
}

/// Keeps only the chunk records that follow FORMAT §5 (chunk k covers stream bytes from
/// k·2^20, exactly 1 MiB long except the stream's last chunk, disc numbers never decreasing)
/// and returns how many were dropped. `seqs[i]` is the sequence number of `chunks[i]` (sorted).
///
/// This bounds every table by the stream it describes (one record per MiB), so no reader
/// loop over a file's chunks can be made long with tiny chunk records. A record that is not
/// kept makes its bytes a gap (reported as not restored), never an error.
pub fn retain_valid_chunks(chunks: &mut Vec<ChunkRecord>, seqs: &mut Vec<u64>) -> usize {
    let before = chunks.len();
    let last = chunks.len().saturating_sub(1);
    let mut keep = Vec::with_capacity(chunks.len());
    let mut disc = 0u32;
    let mut prev_seq: Option<u64> = None;
    for (i, (c, &seq)) in chunks.iter().zip(seqs.iter()).enumerate() {
        let full = u64::from(c.tar_len) == CHUNK_BYTES;
        let ok = seq.checked_mul(CHUNK_BYTES) == Some(c.tar_offset)
            && c.tar_len > 0
            && (full || (i == last && u64::from(c.tar_len) < CHUNK_BYTES))
            && prev_seq.is_none_or(|p| p < seq)
            && c.disc >= disc;
        keep.push(ok);
        if ok {
            disc = c.disc;
            prev_seq = Some(seq);
        }
    }
    let mut k = keep.iter();
    chunks.retain(|_| *k.next().expect("one flag per chunk"));
    let mut k = keep.iter();
    seqs.retain(|_| *k.next().expect("one flag per chunk"));
    before - chunks.len()
}

/// Length of every chunk of a stream but the last (FORMAT §5).
const CHUNK_BYTES: u64 = 1 << 20;
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
