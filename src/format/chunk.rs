//! Chunk framing: each ≈1 MiB piece of a generation's tar stream is stored as a zstd skippable frame
//! holding our [`ChunkHeader`], followed by one independent zstd frame with the piece's bytes.
//!
//! Concatenating a generation's data files therefore gives a valid zstd stream whose decompression
//! is the tar stream (standard `zstd -d` skips skippable frames), while our reader can find, check
//! and decode any chunk on its own.

use thiserror::Error;
use xxhash_rust::xxh64::xxh64;

/// Tar-stream bytes per chunk (the last chunk of a generation may be shorter).
pub const CHUNK_SIZE: usize = 1 << 20;

/// Largest uncompressed chunk a reader accepts; bounds the memory a hostile header can request.
pub const MAX_CHUNK_SIZE: usize = 4 << 20;

/// zstd skippable-frame magic used for our chunk headers (0x184D2A50..=0x184D2A5F are skippable).
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5B;

/// zstd frame magic.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Bytes of our header inside the skippable frame.
pub const CHUNK_HEADER_LEN: usize = 72;

/// Bytes of the whole skippable frame (4 magic + 4 size + header).
pub const CHUNK_FRAME_OVERHEAD: usize = 8 + CHUNK_HEADER_LEN;

const HEADER_MAGIC: &[u8; 4] = b"BDCH";

/// Flag bit: the zstd frame consists of raw (stored) blocks only.
pub const FLAG_RAW: u16 = 1;

/// Largest zstd block (128 KiB); raw frames are cut into blocks of at most this size.
const ZSTD_MAX_BLOCK: usize = 128 * 1024;

/// Errors while decoding a chunk read from a disc.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    /// The bytes do not start with our skippable frame.
    #[error("no chunk header here (bad magic)")]
    BadMagic,
    /// Header CRC mismatch.
    #[error("chunk header checksum mismatch")]
    HeaderChecksum,
    /// Header fields out of range.
    #[error("chunk header invalid: {0}")]
    Invalid(&'static str),
    /// Stored-frame CRC mismatch: the compressed bytes are damaged.
    #[error("chunk {0}: stored data checksum mismatch")]
    StoredChecksum(u64),
    /// zstd could not decode the frame.
    #[error("chunk {0}: zstd frame does not decode: {1}")]
    Decode(u64, String),
    /// Decoded bytes do not match the recorded CRC.
    #[error("chunk {0}: content checksum mismatch after decoding")]
    ContentChecksum(u64),
}

/// Our per-chunk header (72 bytes inside a skippable frame). Every field is checked by `crc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Format version of the header (1).
    pub version: u16,
    /// `FLAG_RAW` if the frame is stored.
    pub flags: u16,
    /// Random id of the chain this chunk belongs to.
    pub chain_id: [u8; 16],
    /// Generation whose tar stream this chunk is a piece of.
    pub generation: u32,
    /// 0-based sequence number of the chunk within its generation.
    pub seq: u64,
    /// Offset of the chunk's first byte in the generation's tar stream.
    pub tar_offset: u64,
    /// Uncompressed length, 1..=MAX_CHUNK_SIZE.
    pub tar_len: u32,
    /// Length of the zstd frame that follows the skippable frame.
    pub stored_len: u32,
    /// CRC32C of the uncompressed bytes.
    pub content_crc: u32,
    /// CRC32C of the stored zstd frame bytes.
    pub stored_crc: u32,
}

impl ChunkHeader {
    /// Serialises the whole skippable frame (magic, size, header) into `CHUNK_FRAME_OVERHEAD` bytes.
    pub fn encode(&self) -> [u8; CHUNK_FRAME_OVERHEAD] {
        let mut b = [0u8; CHUNK_FRAME_OVERHEAD];
        b[0..4].copy_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&(CHUNK_HEADER_LEN as u32).to_le_bytes());
        let h = &mut b[8..];
        h[0..4].copy_from_slice(HEADER_MAGIC);
        h[4..6].copy_from_slice(&self.version.to_le_bytes());
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..24].copy_from_slice(&self.chain_id);
        h[24..28].copy_from_slice(&self.generation.to_le_bytes());
        // 28..32 reserved, zero
        h[32..40].copy_from_slice(&self.seq.to_le_bytes());
        h[40..48].copy_from_slice(&self.tar_offset.to_le_bytes());
        h[48..52].copy_from_slice(&self.tar_len.to_le_bytes());
        h[52..56].copy_from_slice(&self.stored_len.to_le_bytes());
        h[56..60].copy_from_slice(&self.content_crc.to_le_bytes());
        h[60..64].copy_from_slice(&self.stored_crc.to_le_bytes());
        // 64..68 reserved, zero
        let crc = crc32c::crc32c(&h[0..68]);
        h[68..72].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a skippable frame at the start of `b`.
    pub fn decode(b: &[u8]) -> Result<ChunkHeader, ChunkError> {
        if b.len() < CHUNK_FRAME_OVERHEAD
            || le32(b, 0) != SKIPPABLE_MAGIC
            || le32(b, 4) != CHUNK_HEADER_LEN as u32
            || &b[8..12] != HEADER_MAGIC
        {
            return Err(ChunkError::BadMagic);
        }
        let h = &b[8..8 + CHUNK_HEADER_LEN];
        if crc32c::crc32c(&h[0..68]) != le32(h, 68) {
            return Err(ChunkError::HeaderChecksum);
        }
        let header = ChunkHeader {
            version: u16::from_le_bytes([h[4], h[5]]),
            flags: u16::from_le_bytes([h[6], h[7]]),
            chain_id: h[8..24].try_into().map_err(|_| ChunkError::BadMagic)?,
            generation: le32(h, 24),
            seq: le64(h, 32),
            tar_offset: le64(h, 40),
            tar_len: le32(h, 48),
            stored_len: le32(h, 52),
            content_crc: le32(h, 56),
            stored_crc: le32(h, 60),
        };
        if header.version != 1 {
            return Err(ChunkError::Invalid("unknown chunk header version"));
        }
        if header.tar_len == 0 || header.tar_len as usize > MAX_CHUNK_SIZE {
            return Err(ChunkError::Invalid("chunk length out of range"));
        }
        if header.stored_len as usize > zstd_bound(MAX_CHUNK_SIZE) {
            return Err(ChunkError::Invalid("stored length out of range"));
        }
        Ok(header)
    }
}

/// Reads a little-endian u32 at `off` (caller guarantees bounds).
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads a little-endian u64 at `off` (caller guarantees bounds).
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Upper bound of a zstd frame for `n` input bytes (ZSTD_compressBound plus our raw-frame overhead).
pub fn zstd_bound(n: usize) -> usize {
    n + (n >> 8) + 64 + 3 * n.div_ceil(ZSTD_MAX_BLOCK) + 16
}

/// Builds a zstd frame that stores `data` in raw blocks, with frame content size and checksum.
///
/// Used for `-c none` and whenever compression would not shrink a chunk, so the stream stays
/// valid zstd at a cost of 3 bytes per 128 KiB plus 13 bytes per frame.
pub fn raw_frame(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
    // Frame_Header_Descriptor: FCS field 4 bytes (0b10), Single_Segment 1, Content_Checksum 1.
    out.push(0b1010_0100);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut blocks = data.chunks(ZSTD_MAX_BLOCK).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last raw block
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none() as u32;
        let hdr = last | ((block.len() as u32) << 3); // Block_Type 0 = Raw
        out.extend_from_slice(&hdr.to_le_bytes()[0..3]);
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&(xxh64(data, 0) as u32).to_le_bytes());
}

/// Compression setting for chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Store every chunk raw (still as zstd frames).
    None,
    /// zstd at the given level (1..=22); chunks that do not shrink are stored raw.
    Zstd(i32),
}

/// A chunk ready to be written: the skippable header frame and the zstd frame.
pub struct EncodedChunk {
    /// Header (also returned separately for the catalog's chunk table).
    pub header: ChunkHeader,
    /// Skippable frame followed by the zstd frame; written verbatim to the data file.
    pub bytes: Vec<u8>,
}

/// Compresses one chunk. `compressor` is a per-thread zstd context configured by [`new_compressor`].
pub fn encode_chunk(
    data: &[u8],
    compression: Compression,
    compressor: Option<&mut zstd::bulk::Compressor<'static>>,
    chain_id: [u8; 16],
    generation: u32,
    seq: u64,
    tar_offset: u64,
) -> std::io::Result<EncodedChunk> {
    let mut bytes = Vec::with_capacity(CHUNK_FRAME_OVERHEAD + zstd_bound(data.len()));
    bytes.resize(CHUNK_FRAME_OVERHEAD, 0);
    let mut flags = FLAG_RAW;
    if let (Compression::Zstd(_), Some(c)) = (compression, compressor) {
        let compressed = c.compress(data)?;
        // Keep the compressed frame only when it is smaller than the raw frame would be.
        if compressed.len() < data.len() + 7 + 3 * data.len().div_ceil(ZSTD_MAX_BLOCK).max(1) + 4 {
            bytes.extend_from_slice(&compressed);
            flags = 0;
        }
    }
    if flags == FLAG_RAW {
        raw_frame(data, &mut bytes);
    }
    let stored = &bytes[CHUNK_FRAME_OVERHEAD..];
    let header = ChunkHeader {
        version: 1,
        flags,
        chain_id,
        generation,
        seq,
        tar_offset,
        tar_len: data.len() as u32,
        stored_len: stored.len() as u32,
        content_crc: crc32c::crc32c(data),
        stored_crc: crc32c::crc32c(stored),
    };
    bytes[..CHUNK_FRAME_OVERHEAD].copy_from_slice(&header.encode());
    Ok(EncodedChunk { header, bytes })
}

/// Creates a zstd context that writes content size and checksum into every frame.
pub fn new_compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(true)?;
    c.include_contentsize(true)?;
    Ok(c)
}

/// Checks and decodes the zstd frame of a chunk whose header has been parsed. `stored` must be
/// exactly `header.stored_len` bytes. Returns the tar-stream bytes.
pub fn decode_chunk(
    header: &ChunkHeader,
    stored: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    if stored.len() != header.stored_len as usize {
        return Err(ChunkError::Invalid("stored length does not match header"));
    }
    if crc32c::crc32c(stored) != header.stored_crc {
        return Err(ChunkError::StoredChecksum(header.seq));
    }
    out.clear();
    out.reserve(header.tar_len as usize);
    // One decompression context per thread: creating one per chunk allocated and initialised
    // about 100 KiB every MiB decoded.
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let n = DCTX
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            match d.as_mut() {
                Some(d) => d.decompress_to_buffer(stored, out),
                None => Err(std::io::Error::other("no zstd context")),
            }
        })
        .map_err(|e| ChunkError::Decode(header.seq, e.to_string()))?;
    if n != header.tar_len as usize || crc32c::crc32c(out) != header.content_crc {
        return Err(ChunkError::ContentChecksum(header.seq));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8], compression: Compression) -> EncodedChunk {
        let mut c = new_compressor(3).unwrap();
        let chunk = encode_chunk(data, compression, Some(&mut c), [7; 16], 2, 5, 1234).unwrap();
        let h = ChunkHeader::decode(&chunk.bytes).unwrap();
        assert_eq!(h, chunk.header);
        let mut out = Vec::new();
        decode_chunk(&h, &chunk.bytes[CHUNK_FRAME_OVERHEAD..], &mut out).unwrap();
        assert_eq!(out, data);
        // The whole thing is a valid zstd stream for the reference decoder too.
        let std = zstd::stream::decode_all(&chunk.bytes[..]).unwrap();
        assert_eq!(std, data);
        chunk
    }

    #[test]
    fn compressible_chunk_is_compressed() {
        let data = b"hello world ".repeat(50_000);
        let c = roundtrip(&data, Compression::Zstd(3));
        assert_eq!(c.header.flags, 0);
        assert!(c.bytes.len() < data.len() / 10);
    }

    #[test]
    fn incompressible_chunk_is_stored_raw() {
        let mut rng = crate::util::xorshift::Xorshift64::new(0x1234_5678_9abc_def0);
        let data: Vec<u8> = (0..CHUNK_SIZE).map(|_| rng.next_u64() as u8).collect();
        let c = roundtrip(&data, Compression::Zstd(3));
        assert_eq!(c.header.flags, FLAG_RAW);
        assert!(c.bytes.len() <= data.len() + CHUNK_FRAME_OVERHEAD + 13 + 3 * 8);
        let n = roundtrip(&data, Compression::None);
        assert_eq!(n.bytes, c.bytes);
    }

    #[test]
    fn small_and_odd_sizes_roundtrip() {
        for len in [1usize, 2, 511, 512, 131_071, 131_072, 131_073, 262_144] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            roundtrip(&data, Compression::None);
            roundtrip(&data, Compression::Zstd(1));
        }
    }

    #[test]
    fn zip_bomb_chunk_is_rejected_without_allocating_its_claim() {
        // 64 MiB of zeros compresses to a few KiB; a header honest about the frame but claiming a
        // 1 MiB content must make decoding fail instead of inflating 64 MiB.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
        assert!(bomb.len() < 64 << 10);
        let header = ChunkHeader {
            version: 1,
            flags: 0,
            chain_id: [0; 16],
            generation: 1,
            seq: 0,
            tar_offset: 0,
            tar_len: CHUNK_SIZE as u32,
            stored_len: bomb.len() as u32,
            content_crc: 0,
            stored_crc: crc32c::crc32c(&bomb),
        };
        let mut out = Vec::new();
        assert!(decode_chunk(&header, &bomb, &mut out).is_err());
        assert!(
            out.capacity() <= MAX_CHUNK_SIZE,
            "decoder grew past the bound: {}",
            out.capacity()
        );
    }

    #[test]
    fn damage_is_detected() {
        let data = b"abc".repeat(1000);
        let mut c = new_compressor(3).unwrap();
        let chunk =
            encode_chunk(&data, Compression::Zstd(3), Some(&mut c), [1; 16], 1, 0, 0).unwrap();
        let mut bad = chunk.bytes.clone();
        bad[20] ^= 1;
        assert_eq!(ChunkHeader::decode(&bad), Err(ChunkError::HeaderChecksum));
        let mut bad = chunk.bytes.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        let mut out = Vec::new();
        assert!(decode_chunk(&chunk.header, &bad[CHUNK_FRAME_OVERHEAD..], &mut out).is_err());
    }
}
