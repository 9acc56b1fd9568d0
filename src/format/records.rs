//! Record files: the catalog (`.catalog`) and per-disc index (`.idx`) share one framing — a
//! 128-byte header followed by a zstd frame holding the bincode-encoded body.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::chunk::{le32, le64};

/// Length of the record-file header.
pub const RECORD_HEADER_LEN: usize = 128;

/// Largest decoded body a reader accepts (4 GiB): bounds allocations driven by a damaged header.
pub const MAX_BODY_LEN: u64 = 4 << 30;

/// Record version this build writes (FORMAT.md §6, §8): 2 adds the entries' change stamps and
/// the catalog's disc map. Version 1 records are still read.
pub const RECORD_VERSION: u16 = 2;

/// A record body, and the body format version 1 wrote (decoded, then converted).
pub trait RecordBody: DeserializeOwned {
    /// The same record as format version 1 laid it out.
    type V1: DeserializeOwned + Into<Self>;
}

/// Magic of a catalog file.
pub const CATALOG_MAGIC: &[u8; 8] = b"BDARCATL";
/// Magic of a per-disc index file.
pub const INDEX_MAGIC: &[u8; 8] = b"BDARINDX";

/// Errors reading a record file.
#[derive(Debug, Error)]
pub enum RecordError {
    /// Wrong magic: not this kind of file.
    #[error("not a bd-archive {0} file (bad magic)")]
    BadMagic(&'static str),
    /// Header CRC mismatch.
    #[error("{0} header is damaged (checksum mismatch)")]
    HeaderChecksum(&'static str),
    /// Format version this reader does not know.
    #[error("{0} has format version {1}, this bd-archive reads versions 1 and 2; use a newer bd-archive")]
    Version(&'static str, u16),
    /// File shorter than its header says.
    #[error("{0} is truncated ({1} of {2} bytes)")]
    Truncated(&'static str, u64, u64),
    /// SHA-256 of the body mismatch.
    #[error("{0} body is damaged (SHA-256 mismatch)")]
    BodyChecksum(&'static str),
    /// The record could not be read (I/O error below it).
    #[error("{0} could not be read: {1}")]
    Read(&'static str, std::io::Error),
    /// Body length out of range or does not decode.
    #[error("{0} body does not decode: {1}")]
    Decode(&'static str, String),
    /// Decoding it would pass the memory budget for everything decoded from discs.
    #[error("{0} would decode to {1} bytes, past the memory budget for catalogs and indexes ({2} bytes held at most); if the disc is genuine, pass --memory with a larger size")]
    Budget(&'static str, u64, u64),
}

/// Default of the one memory budget for record bodies decoded from discs (catalogs and
/// indexes), held at once by the whole process: with the in-memory overhead of decoded entries
/// (~1.3× the encoded size) this keeps `list`/`verify`/`extract` of any crafted image below
/// 1 GiB, whatever its headers claim. A genuine catalog of more than ~3 million entries needs
/// `--memory`.
pub const DEFAULT_DECODE_BUDGET: u64 = 512 << 20;

/// Most decoded bytes per stored (compressed) byte of a record larger than the decode budget,
/// beyond a 1 MiB allowance (a record within the budget may have any ratio). Our catalogs
/// compress ~5–30:1; the most compressible tree measured (200 000 empty directories with
/// 3 000-byte common prefixes) 421:1.
pub const MAX_RATIO: u64 = 512;

static DECODE_BUDGET: AtomicU64 = AtomicU64::new(DEFAULT_DECODE_BUDGET);
static DECODE_HELD: AtomicU64 = AtomicU64::new(0);

/// Sets the decode budget (`--memory`); never below the default.
pub fn set_decode_budget(bytes: u64) {
    DECODE_BUDGET.store(bytes.max(DEFAULT_DECODE_BUDGET), Ordering::Relaxed);
}

/// A share of the decode budget for one decoded record; given back when dropped, so the
/// budget bounds what is held at once (several generation sections, many discs), not what was
/// ever decoded.
#[derive(Debug)]
pub struct BudgetClaim(u64);

impl Drop for BudgetClaim {
    fn drop(&mut self) {
        DECODE_HELD.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Claims `raw_len` bytes of the decode budget for a record of kind `what`.
pub fn claim_decode(what: &'static str, raw_len: u64) -> Result<BudgetClaim, RecordError> {
    let budget = DECODE_BUDGET.load(Ordering::Relaxed);
    DECODE_HELD
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            held.checked_add(raw_len).filter(|&n| n <= budget)
        })
        .map_err(|_| RecordError::Budget(what, raw_len, budget))?;
    Ok(BudgetClaim(raw_len))
}

/// bincode configuration used for every record body (documented in FORMAT.md).
pub fn bincode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<{ MAX_BODY_LEN as usize }>,
> {
    bincode::config::legacy().with_limit::<{ MAX_BODY_LEN as usize }>()
}

/// Identity fields repeated in the record header so a file can be recognised without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordIdentity {
    /// Chain id.
    pub chain_id: [u8; 16],
    /// Generation.
    pub generation: u32,
    /// Disc number (index files) or 0 (catalog).
    pub disc: u32,
    /// Which create run wrote the generation: random, chosen once per run (kept by `--resume`),
    /// the same in the generation's catalog and in every disc index of that run, so two sets
    /// claiming one generation are told apart. All zero in records of format version 1.
    pub set_id: [u8; 16],
}

/// Encodes `body` as a record file with the given magic.
pub fn encode_record<T: Serialize>(
    magic: &[u8; 8],
    id: RecordIdentity,
    body: &T,
) -> std::io::Result<Vec<u8>> {
    // The zstd frame is written straight after room for the header, so the record is never
    // held twice (a catalog of a million entries is tens of MB even compressed).
    let (mut out, raw_len) = write_body(vec![0u8; RECORD_HEADER_LEN], body)?;
    let stored_len = (out.len() - RECORD_HEADER_LEN) as u64;
    let sha: [u8; 32] = Sha256::digest(&out[RECORD_HEADER_LEN..]).into();
    out[..RECORD_HEADER_LEN].copy_from_slice(&header_bytes(magic, id, stored_len, raw_len, &sha));
    Ok(out)
}

/// Writes `body` as a record file into `file` at byte `offset`, streaming: neither the bincode
/// body nor its compressed form is held in memory whole. Returns the record's length in bytes.
pub fn write_record_at<T: Serialize>(
    file: &std::fs::File,
    offset: u64,
    magic: &[u8; 8],
    id: RecordIdentity,
    body: &T,
) -> std::io::Result<u64> {
    let sink = HashingFileWriter {
        file,
        pos: offset + RECORD_HEADER_LEN as u64,
        hasher: Sha256::new(),
    };
    let (sink, raw_len) = write_body(sink, body)?;
    let stored_len = sink.pos - offset - RECORD_HEADER_LEN as u64;
    let sha: [u8; 32] = sink.hasher.finalize().into();
    let header = header_bytes(magic, id, stored_len, raw_len, &sha);
    std::os::unix::fs::FileExt::write_all_at(file, &header, offset)?;
    Ok(RECORD_HEADER_LEN as u64 + stored_len)
}

/// Length in bytes of the record file `body` would make, found by compressing into a counter
/// (for deciding whether it fits before writing it anywhere).
pub fn record_len<T: Serialize>(body: &T) -> std::io::Result<u64> {
    let (sink, _) = write_body(CountingSink(0), body)?;
    Ok(RECORD_HEADER_LEN as u64 + sink.0)
}

/// Writes the zstd frame of `body`'s bincode encoding into `w`; returns `w` and the raw length.
fn write_body<T: Serialize, W: std::io::Write>(w: W, body: &T) -> std::io::Result<(W, u64)> {
    // Encoded twice, streaming: once to count the bytes (the frame header records the content
    // size), once straight into the compressor. The bincode body is never held in memory whole.
    let encode = |w: &mut dyn std::io::Write| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
        bincode::serde::encode_into_std_write(body, &mut w, bincode_config())
            .map_err(|e| std::io::Error::other(format!("cannot encode record: {e}")))?;
        std::io::Write::flush(&mut w)
    };
    let mut counter = CountingSink(0);
    encode(&mut counter)?;
    let raw_len = counter.0;
    let mut enc = zstd::stream::Encoder::new(w, 3)?;
    enc.include_contentsize(true)?;
    enc.set_pledged_src_size(Some(raw_len))?;
    encode(&mut enc)?;
    Ok((enc.finish()?, raw_len))
}

/// The 128-byte record header (FORMAT.md §5).
fn header_bytes(
    magic: &[u8; 8],
    id: RecordIdentity,
    stored_len: u64,
    raw_len: u64,
    sha: &[u8; 32],
) -> [u8; RECORD_HEADER_LEN] {
    let mut out = [0u8; RECORD_HEADER_LEN];
    out[0..8].copy_from_slice(magic);
    out[8..10].copy_from_slice(&RECORD_VERSION.to_le_bytes());
    out[16..32].copy_from_slice(&id.chain_id);
    out[32..36].copy_from_slice(&id.generation.to_le_bytes());
    out[36..40].copy_from_slice(&id.disc.to_le_bytes());
    out[40..48].copy_from_slice(&stored_len.to_le_bytes());
    out[48..56].copy_from_slice(&raw_len.to_le_bytes());
    out[56..88].copy_from_slice(sha);
    out[88..104].copy_from_slice(&id.set_id);
    let crc = crc32c::crc32c(&out[0..124]);
    out[124..128].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Positioned writes into a file, hashing what passes (the zstd frame of a record).
struct HashingFileWriter<'a> {
    file: &'a std::fs::File,
    pos: u64,
    hasher: Sha256,
}

impl std::io::Write for HashingFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::write_all_at(self.file, buf, self.pos)?;
        self.hasher.update(buf);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts bytes written and discards them.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Upper bound of the record file size for a body whose bincode encoding has `raw_len` bytes.
pub fn record_size_bound(raw_len: u64) -> u64 {
    RECORD_HEADER_LEN as u64 + super::chunk::zstd_bound(raw_len as usize) as u64
}

/// Parsed record header.
#[derive(Clone, Copy, Debug)]
pub struct RecordHeader {
    /// Format version of the body (1 or [`RECORD_VERSION`]).
    pub version: u16,
    /// Identity fields.
    pub id: RecordIdentity,
    /// Bytes of the zstd frame after the header.
    pub stored_len: u64,
    /// Bytes of the decoded bincode body.
    pub raw_len: u64,
}

/// Parses a record header; `what` names the file kind in errors.
pub fn decode_header(
    magic: &[u8; 8],
    what: &'static str,
    b: &[u8],
) -> Result<RecordHeader, RecordError> {
    if b.len() < RECORD_HEADER_LEN || &b[0..8] != magic {
        return Err(RecordError::BadMagic(what));
    }
    if crc32c::crc32c(&b[0..124]) != le32(b, 124) {
        return Err(RecordError::HeaderChecksum(what));
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if !(1..=RECORD_VERSION).contains(&version) {
        return Err(RecordError::Version(what, version));
    }
    let h = RecordHeader {
        version,
        id: RecordIdentity {
            chain_id: b[16..32]
                .try_into()
                .map_err(|_| RecordError::BadMagic(what))?,
            generation: le32(b, 32),
            disc: le32(b, 36),
            set_id: b[88..104]
                .try_into()
                .map_err(|_| RecordError::BadMagic(what))?,
        },
        stored_len: le64(b, 40),
        raw_len: le64(b, 48),
    };
    // A body up to the decode budget is bounded by the budget itself, whatever its compression
    // ratio: genuine catalogs can compress past 400:1 (empty directories under long common
    // prefixes), so a ratio cap alone would refuse them. Past the budget (only a catalog file
    // given to list or --base gets there; records on a disc are claimed against the budget) a
    // body must also be plausible, at most MAX_RATIO × its stored length, refused before anything
    // is allocated. (The stored length is real: the frame's SHA-256 is checked before decoding.)
    let plausible = h.raw_len <= DECODE_BUDGET.load(Ordering::Relaxed)
        || h.raw_len
            <= h.stored_len
                .saturating_mul(MAX_RATIO)
                .saturating_add(1 << 20);
    if h.raw_len > MAX_BODY_LEN || h.stored_len > record_size_bound(h.raw_len) || !plausible {
        return Err(RecordError::Decode(
            what,
            "length fields out of range".into(),
        ));
    }
    Ok(h)
}

/// Decodes a whole record file held in `b`.
pub fn decode_record<T: RecordBody>(
    magic: &[u8; 8],
    what: &'static str,
    b: &[u8],
) -> Result<(RecordHeader, T), RecordError> {
    let h = decode_header(magic, what, b)?;
    let total = RECORD_HEADER_LEN as u64 + h.stored_len;
    if (b.len() as u64) < total {
        return Err(RecordError::Truncated(what, b.len() as u64, total));
    }
    let stored = &b[RECORD_HEADER_LEN..total as usize];
    if Sha256::digest(stored).as_slice() != &b[56..88] {
        return Err(RecordError::BodyChecksum(what));
    }
    // Decoded straight from the decompressor: the bincode body (over 100 bytes per catalog
    // entry) is never held in memory whole next to the values it decodes into.
    let decoder = zstd::stream::read::Decoder::with_buffer(stored)
        .map_err(|e| RecordError::Decode(what, e.to_string()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, decoder.take(h.raw_len));
    let decode_err = |e: bincode::error::DecodeError| RecordError::Decode(what, e.to_string());
    let body: T = if h.version == 1 {
        bincode::serde::decode_from_std_read::<T::V1, _, _>(&mut reader, bincode_config())
            .map_err(decode_err)?
            .into()
    } else {
        bincode::serde::decode_from_std_read(&mut reader, bincode_config()).map_err(decode_err)?
    };
    if !reader.buffer().is_empty() || reader.get_ref().limit() != 0 {
        return Err(RecordError::Decode(
            what,
            "trailing bytes after body".into(),
        ));
    }
    let mut probe = [0u8; 1];
    match reader.into_inner().into_inner().read(&mut probe) {
        Ok(0) => {}
        _ => {
            return Err(RecordError::Decode(
                what,
                "decoded length differs from header".into(),
            ))
        }
    }
    Ok((h, body))
}

/// Decodes a record file read from `r` (positioned at its first byte). The stored zstd frame is
/// read whole (as far as `r` has it: a header claiming more costs nothing) and its SHA-256 checked
/// *before* anything is decoded, as [`decode_record`] does; the bincode body is then decoded
/// straight from the decompressor, never held whole. (Decoding before the checksum let a damaged
/// or crafted frame claim a 4 GiB byte string: the records fuzz target found it.)
pub fn decode_record_from<T: RecordBody, R: Read>(
    magic: &[u8; 8],
    what: &'static str,
    mut r: R,
) -> Result<(RecordHeader, T), RecordError> {
    let mut bytes = vec![0u8; RECORD_HEADER_LEN];
    r.read_exact(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RecordError::BadMagic(what),
        _ => RecordError::Read(what, e),
    })?;
    let h = decode_header(magic, what, &bytes)?;
    r.take(h.stored_len)
        .read_to_end(&mut bytes)
        .map_err(|e| RecordError::Read(what, e))?;
    decode_record(magic, what, &bytes)
}

/// Exact bincode size of a value (used to reserve index/catalog space while streaming).
pub fn encoded_len<T: Serialize>(v: &T) -> u64 {
    struct Counter(u64);
    impl bincode::enc::write::Writer for Counter {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0 += bytes.len() as u64;
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = bincode::serde::encode_into_writer(v, &mut c, bincode_config());
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> RecordIdentity {
        RecordIdentity {
            chain_id: [3; 16],
            generation: 2,
            disc: 1,
            set_id: [4; 16],
        }
    }

    type Body = Vec<(u64, Vec<u8>)>;

    impl RecordBody for Body {
        type V1 = Body;
    }

    fn body() -> Body {
        (0..5000u64)
            .map(|i| (i, i.to_le_bytes().repeat(3)))
            .collect()
    }

    #[test]
    fn streamed_writes_and_reads_match_the_in_memory_ones() {
        let bytes = encode_record(INDEX_MAGIC, id(), &body()).unwrap();
        assert_eq!(record_len(&body()).unwrap(), bytes.len() as u64);
        let f = tempfile::tempfile().unwrap();
        let len = write_record_at(&f, 100, INDEX_MAGIC, id(), &body()).unwrap();
        let mut on_file = vec![0u8; len as usize];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut on_file, 100).unwrap();
        assert_eq!(on_file, bytes);
        let (h, a): (_, Body) = decode_record(INDEX_MAGIC, "x", &bytes).unwrap();
        let (_, b): (_, Body) = decode_record_from(INDEX_MAGIC, "x", &bytes[..]).unwrap();
        assert_eq!((h.id, &a), (id(), &body()));
        assert_eq!(b, body());
    }

    #[test]
    fn streamed_read_refuses_damage_and_truncation() {
        let bytes = encode_record(INDEX_MAGIC, id(), &body()).unwrap();
        let mut bad = bytes.clone();
        let mid = RECORD_HEADER_LEN + (bytes.len() - RECORD_HEADER_LEN) / 2;
        bad[mid] ^= 0x40;
        let r: Result<(_, Body), _> = decode_record_from(INDEX_MAGIC, "x", &bad[..]);
        assert!(matches!(r, Err(RecordError::BodyChecksum(_))), "{r:?}");
        let short = &bytes[..bytes.len() - 10];
        let r: Result<(_, Body), _> = decode_record_from(INDEX_MAGIC, "x", short);
        assert!(matches!(r, Err(RecordError::Truncated(..))), "{r:?}");
    }

    /// Issue #16 item 3: within the decode budget a body may have any ratio (genuine catalogs
    /// reach 1 000:1); past the budget only a plausible one (≤ MAX_RATIO:1) is decoded.
    #[test]
    fn the_ratio_cap_applies_only_past_the_decode_budget() {
        let header =
            |stored: u64, raw: u64| header_bytes(CATALOG_MAGIC, id(), stored, raw, &[0; 32]);
        let budget = DEFAULT_DECODE_BUDGET;
        for (stored, raw, ok) in [
            (1000, budget, true),             // 536 871:1, within the budget
            (100_000, 116_582_037, true),     // the 1 149:1 catalog of hostile_discs
            (1000, budget + 1, false),        // past the budget and implausible
            (budget / 256, budget * 2, true), // past the budget at 512:1
            (budget / 1024, budget * 2 + (2 << 20), false),
        ] {
            let r = decode_header(CATALOG_MAGIC, "catalog", &header(stored, raw));
            assert_eq!(r.is_ok(), ok, "{stored} -> {raw}: {r:?}");
        }
    }
}
