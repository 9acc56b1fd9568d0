//! Pure-Rust reader for archives written by dar 2.7 (archive format 10/11), as the Python
//! bd-archive made them: sliced (`-s`), `--min-digits`, zstd, gzip, bzip2, xz/lzma, lz4 or no
//! compression, isolated catalogues
//! (`-C`) and differential archives (`-A`). Format notes: `docs/dar-format.md`.
//!
//! Reading model: the catalogue at the end of the archive is located through the terminator, parsed
//! completely ([`read_catalogue`]), and each saved file's data is then read at its recorded offset
//! through the escape layer and the per-file decompressor ([`DarArchive::copy_file_data`]).
//! Everything here treats the bytes as untrusted: no panics, allocations bounded by the input.

pub mod catalogue;
pub mod extract;
mod stream;

use std::io::{self, Read, Write};
use std::path::PathBuf;

pub use catalogue::{fuzz_catalogue, parse_catalogue, DarEntry, DarKind, DataInfo, SavedStatus};
use stream::{LogicalStream, Unescape};

/// Errors of the dar reader.
#[derive(Debug, thiserror::Error)]
pub enum DarError {
    /// I/O error while reading slices.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes do not follow the dar format.
    #[error("malformed dar archive: {0}")]
    Format(String),
    /// The data ended early.
    #[error("malformed dar archive: truncated {0}")]
    Truncated(&'static str),
    /// A valid dar feature this reader does not implement.
    #[error("unsupported dar feature: {0}")]
    Unsupported(String),
    /// A file's data does not match its recorded CRC.
    #[error("bad CRC for {0}")]
    BadCrc(String),
}

/// Result alias of the dar reader.
pub type Result<T> = std::result::Result<T, DarError>;

/// Largest infinint width accepted (bytes); values must fit in 64 bits.
const MAX_INFININT_BYTES: u64 = 64;

/// Reads one dar "infinint": `k` zero bytes, then a byte with exactly one bit set (bit 7 = 1 group),
/// giving `(k*8 + bit_index + 1) * 4` bytes of big-endian value.
pub fn infinint_from<R: Read + ?Sized>(r: &mut R) -> Result<u64> {
    let mut zeros = 0u64;
    let a = loop {
        let b = read_u8(r)?;
        if b != 0 {
            break b;
        }
        zeros += 1;
        if zeros > MAX_INFININT_BYTES {
            return Err(DarError::Format("infinint width field too long".into()));
        }
    };
    if a.count_ones() != 1 {
        return Err(DarError::Format("badly formed infinint".into()));
    }
    let groups = zeros * 8 + u64::from(a.leading_zeros()) + 1;
    let width = groups * 4;
    if width > MAX_INFININT_BYTES {
        return Err(DarError::Unsupported("integer wider than 64 bits".into()));
    }
    let mut v: u64 = 0;
    for _ in 0..width {
        let b = read_u8(r)?;
        if v >> 56 != 0 {
            return Err(DarError::Unsupported("integer wider than 64 bits".into()));
        }
        v = (v << 8) | u64::from(b);
    }
    Ok(v)
}

pub(crate) fn read_u8<R: Read + ?Sized>(r: &mut R) -> Result<u8> {
    let mut b = [0u8; 1];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(b[0]),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(DarError::Truncated("data")),
        Err(e) => Err(DarError::Io(e)),
    }
}

/// Compression algorithm, from its one-letter code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// 'n'
    None,
    /// 'd'
    Zstd,
    /// 'z'
    Gzip,
    /// 'y'
    Bzip2,
    /// 'x'
    Xz,
    /// 'q'
    Lz4,
    /// 'l', 'j', 'k'
    Lzo,
}

impl Compression {
    /// From dar's letter; upper case letters mean block compression (`-zalgo:level:blocksize`).
    pub fn from_char(c: u8) -> Result<Compression> {
        Ok(match c {
            b'n' => Compression::None,
            b'd' => Compression::Zstd,
            b'z' => Compression::Gzip,
            b'y' => Compression::Bzip2,
            b'x' => Compression::Xz,
            b'q' => Compression::Lz4,
            b'l' | b'j' | b'k' => Compression::Lzo,
            b'N' | b'D' | b'Z' | b'Y' | b'X' | b'Q' | b'L' | b'J' | b'K' => {
                return Err(DarError::Unsupported(
                    "block compression mode (dar -z<algo>:<level>:<block size>)".into(),
                ))
            }
            other => {
                return Err(DarError::Format(format!(
                    "unknown compression code {other:#04x}"
                )))
            }
        })
    }

    /// Lower-case name as dar prints it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
            Compression::Lzo => "lzo",
        }
    }
}

/// Archive format version ("edition"): major and fix, e.g. 11.1 for dar 2.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edition {
    /// Major format number.
    pub major: u16,
    /// Fix level (0 before format 8).
    pub fix: u8,
}

/// The archive header (header_version) fields this reader needs.
#[derive(Clone, Debug)]
pub struct ArchiveHeader {
    /// Archive format version.
    pub edition: Edition,
    /// Default compression.
    pub compression: Compression,
    /// Command line recorded by dar ("N/A" by default).
    pub cmd_line: String,
    /// Header flag bits.
    pub flags: u64,
}

const FLAG_SCRAMBLED: u64 = 0x20;
const FLAG_SEQUENCE_MARK: u64 = 0x10;
const FLAG_HAS_CRYPTED_KEY: u64 = 0x04;
const FLAG_HAS_REF_SLICING: u64 = 0x02;
const FLAG_HAS_REF_HEADER: u64 = 0x8000;
const FLAG_ARCHIVE_IS_SIGNED: u64 = 0x0200;
const FLAG_HAS_COMPRESS_BS: u64 = 0x0800;

/// Reads a NUL-terminated string of at most `max` bytes.
pub(crate) fn read_cstring<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    loop {
        let b = read_u8(r)?;
        if b == 0 {
            return Ok(v);
        }
        if v.len() >= max {
            return Err(DarError::Format("string too long".into()));
        }
        v.push(b);
    }
}

/// Parses the archive header at the start of the logical stream (also repeated near its end).
pub fn parse_archive_header<R: Read + ?Sized>(r: &mut R) -> Result<ArchiveHeader> {
    let mut ed = [0u8; 3];
    for b in &mut ed {
        *b = read_u8(r)?;
    }
    let digit = |c: u8| -> Result<u8> {
        c.checked_sub(b'0')
            .ok_or_else(|| DarError::Format("bad archive version".into()))
    };
    let major = u16::from(digit(ed[0])?) * 256 + u16::from(digit(ed[1])?);
    if major < 8 {
        return Err(DarError::Unsupported(format!(
            "archive format {major:02} (dar older than 2.4); this reader handles formats 10 and later"
        )));
    }
    let fix = digit(ed[2])?;
    if read_u8(r)? != 0 {
        return Err(DarError::Format("bad archive version terminator".into()));
    }
    let edition = Edition { major, fix };
    if major < 10 {
        return Err(DarError::Unsupported(format!(
            "archive format {major:02} (dar older than 2.5); this reader handles formats 10 and later"
        )));
    }
    let compression = Compression::from_char(read_u8(r)?)?;
    let cmd_line = String::from_utf8_lossy(&read_cstring(r, 65536)?).into_owned();
    let mut flags = 0u64;
    loop {
        let a = read_u8(r)?;
        if flags >> 48 != 0 {
            return Err(DarError::Format("header flag field too long".into()));
        }
        flags = (flags << 8) | u64::from(a & 0xFE);
        if a & 1 == 0 {
            break;
        }
    }
    if flags & (FLAG_SCRAMBLED | FLAG_HAS_CRYPTED_KEY) != 0 {
        return Err(DarError::Unsupported(
            "encrypted archive (dar -K / --key); decrypt it with dar first".into(),
        ));
    }
    if flags & FLAG_ARCHIVE_IS_SIGNED != 0 {
        return Err(DarError::Unsupported("signed archive (gpg)".into()));
    }
    if flags & FLAG_HAS_COMPRESS_BS != 0 {
        return Err(DarError::Unsupported(format!(
            "block compression mode ({} with dar -z<algo>:<level>:<block size>)",
            compression.name()
        )));
    }
    Ok(ArchiveHeader {
        edition,
        compression,
        cmd_line,
        flags,
    })
}

/// Reads a terminator that ends right before logical offset `end` and returns the position it
/// stores. The terminator's last bytes encode, as a run of one-bits read backwards, how many 4-byte
/// blocks before them the position (an infinint) starts.
pub fn read_terminator(s: &LogicalStream, end: u64) -> Result<u64> {
    let look = end.min(4096);
    let tail = read_range(s, end - look, look as usize)?;
    let mut i = tail.len();
    let mut ones: u64 = 0;
    let a = loop {
        if i == 0 {
            return Err(DarError::Format("terminator not found".into()));
        }
        i -= 1;
        let b = tail[i];
        if b == 0xFF {
            ones += 8;
        } else {
            break b;
        }
    };
    let mut a = a;
    while a != 0 {
        if a & 0x80 == 0 {
            return Err(DarError::Format("badly formatted terminator".into()));
        }
        ones += 1;
        a <<= 1;
    }
    let back = ones * 4;
    if back as usize > i {
        return Err(DarError::Format(
            "terminator points outside the archive".into(),
        ));
    }
    let mut r = &tail[i - back as usize..i];
    infinint_from(&mut r)
}

fn read_range(s: &LogicalStream, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = s.read_at(&mut v[done..], off + done as u64)?;
        if n == 0 {
            return Err(DarError::Truncated("archive"));
        }
        done += n;
    }
    Ok(v)
}

/// An opened dar archive (a complete slice set, or an isolated catalogue).
#[derive(Debug)]
pub struct DarArchive {
    stream: LogicalStream,
    /// Header at the start of the archive.
    pub header: ArchiveHeader,
    /// Logical offset of the catalogue.
    pub catalogue_offset: u64,
    /// Logical byte ranges known to be damaged (from par2), `[start, end)`.
    damaged: Vec<(u64, u64)>,
}

/// Decoder memory accepted for one xz block (KiB): `xz -9` (dar's highest level) uses a 64 MiB
/// dictionary; a malformed header asking for more is refused before allocating.
const XZ_MEM_LIMIT_KB: u32 = 80 * 1024;

/// Decompressing reader of one compression algorithm.
fn decoder<'a, R: Read + 'a>(algo: Compression, r: R) -> Result<Box<dyn Read + 'a>> {
    match algo {
        Compression::None => Ok(Box::new(r)),
        Compression::Zstd => Ok(Box::new(
            zstd::stream::read::Decoder::new(r).map_err(DarError::Io)?,
        )),
        Compression::Gzip => Ok(Box::new(flate2::read::ZlibDecoder::new(r))),
        Compression::Bzip2 => Ok(Box::new(bzip2::read::BzDecoder::new(r))),
        // dar's "xz" and "lzma" are the same thing: an xz container (liblzma easy encoder, CRC32
        // check), read by lzma_auto_decoder. The memory limit bounds the dictionary a malformed
        // header could ask for (xz -9 needs 64 MiB).
        Compression::Xz => Ok(Box::new(lzma_rust2::XzReader::new_mem_limit(
            io::BufReader::new(r),
            false,
            XZ_MEM_LIMIT_KB,
        ))),
        Compression::Lz4 => Ok(Box::new(stream::Lz4Blocks::new(io::BufReader::new(r)))),
        Compression::Lzo => Err(DarError::Unsupported(
            "lzo compression (this build reads zstd, gzip, bzip2, xz/lzma, lz4 and uncompressed \
             dar archives)"
                .into(),
        )),
    }
}

impl DarArchive {
    /// Opens the slices of one archive, in order (slice 1 first; `None` = missing slice).
    pub fn open(slices: &[Option<PathBuf>]) -> Result<DarArchive> {
        Self::from_stream(LogicalStream::open_files(slices)?)
    }

    /// Opens slices given as byte ranges of files (`(path, offset, length)`), e.g. inside images.
    pub fn open_ranges(slices: &[Option<(PathBuf, u64, u64)>]) -> Result<DarArchive> {
        Self::from_stream(LogicalStream::open_ranges(slices)?)
    }

    /// Opens an archive held in memory.
    pub fn from_memory(slices: Vec<Vec<u8>>) -> Result<DarArchive> {
        Self::from_stream(LogicalStream::from_memory(slices)?)
    }

    fn from_stream(stream: LogicalStream) -> Result<DarArchive> {
        let mut r = io::BufReader::new(stream.reader_at(0));
        let header = parse_archive_header(&mut r)?;
        if header.flags & FLAG_SEQUENCE_MARK == 0 {
            return Err(DarError::Unsupported(
                "archive without sequential-read marks (dar --no-sequence-marks / -at)".into(),
            ));
        }
        // Format >= 10: [catalogue][terminator][header copy][terminator -> header copy].
        let header_copy = read_terminator(&stream, stream.len())?;
        if header_copy >= stream.len() {
            return Err(DarError::Format(
                "trailing header offset out of range".into(),
            ));
        }
        let catalogue_offset = read_terminator(&stream, header_copy)?;
        if catalogue_offset >= header_copy {
            return Err(DarError::Format("catalogue offset out of range".into()));
        }
        Ok(DarArchive {
            stream,
            header,
            catalogue_offset,
            damaged: Vec::new(),
        })
    }

    /// Parses the catalogue: every entry with its path.
    pub fn catalogue(&self) -> Result<Vec<DarEntry>> {
        let raw = Unescape::new(self.stream.reader_at(self.catalogue_offset));
        let dec = decoder(self.header.compression, raw)?;
        let mut r = io::BufReader::new(dec);
        parse_catalogue(&mut r, self.header.edition)
    }

    /// Whether this is an isolated catalogue (`dar -C`): entries only, data lives in the archive of
    /// reference.
    pub fn is_isolated(&self) -> bool {
        self.header.flags & (FLAG_HAS_REF_SLICING | FLAG_HAS_REF_HEADER) != 0
    }

    /// Records damaged byte ranges of slice `slice` (1-based, offsets within the slice file), e.g.
    /// blocks par2 could not repair: files whose data touches them are reported damaged even when
    /// dar's weak check value happens to match.
    pub fn mark_damaged(&mut self, slice: u32, ranges: &[(u64, u64)]) {
        for &(a, b) in ranges {
            if let Some(r) = self.stream.slice_range_to_logical(slice, a, b) {
                self.damaged.push(r);
            }
        }
    }

    /// The archive's data name: the 10-byte label that starts the catalogue. dar gives it to an
    /// archive when making it and keeps it in the isolated catalogue made from it (`dar -C`), so
    /// both carry the same one. (The data name in the slice headers of an isolated catalogue is
    /// the catalogue's own, not this.)
    pub fn data_name(&self) -> Result<[u8; 10]> {
        let raw = Unescape::new(self.stream.reader_at(self.catalogue_offset));
        let mut r = io::BufReader::new(decoder(self.header.compression, raw)?);
        let mut label = [0u8; 10];
        r.read_exact(&mut label)
            .map_err(|_| DarError::Truncated("catalogue"))?;
        Ok(label)
    }

    /// Slices that were missing when the archive was opened.
    pub fn missing_slices(&self) -> &[u32] {
        &self.stream.missing
    }

    /// Writes a saved file's content to `out`, checking length and CRC. Returns bytes written.
    pub fn copy_file_data(&self, e: &DarEntry, out: &mut dyn Write) -> Result<u64> {
        if self.is_isolated() {
            return Err(DarError::Format(
                "an isolated catalogue holds no file data".into(),
            ));
        }
        let Some(d) = &e.data else {
            return Err(DarError::Format(format!(
                "{}: no data saved",
                e.path_lossy()
            )));
        };
        if d.delta {
            return Err(DarError::Unsupported(format!(
                "binary delta (dar --delta sig) in {}",
                e.path_lossy()
            )));
        }
        let raw = Unescape::new(self.stream.reader_at(d.offset));
        let dec = decoder(d.compression, raw)?;
        let dec: Box<dyn Read + '_> = if d.sparse {
            Box::new(stream::SparseExpand::new(dec))
        } else {
            dec
        };
        let mut limited = dec.take(e.size);
        let mut crc = DarCrc::new(d.crc.len());
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(DarError::Format(format!("{}: {err}", e.path_lossy())));
                }
            };
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        if total != e.size {
            return Err(DarError::Format(format!(
                "{}: data ends after {total} of {} bytes",
                e.path_lossy(),
                e.size
            )));
        }
        // Stored data spans at least storage_size bytes (plus a little escaping).
        let end = d
            .offset
            .saturating_add(d.storage_size)
            .saturating_add(d.storage_size / 1000 + 64);
        if let Some(&(a, b)) = self.damaged.iter().find(|&&(a, b)| a < end && d.offset < b) {
            return Err(DarError::Format(format!(
                "{}: data lies in damaged archive bytes {a}-{b}",
                e.path_lossy()
            )));
        }
        if !d.crc.is_empty() && crc.value() != d.crc.as_slice() {
            return Err(DarError::BadCrc(e.path_lossy()));
        }
        Ok(total)
    }
}

/// dar's data check value: the data XOR-folded onto a `width`-byte buffer (byte `i` into `i % width`).
#[derive(Clone, Debug)]
pub struct DarCrc {
    v: Vec<u8>,
    pos: usize,
}

impl DarCrc {
    /// A zeroed check value of `width` bytes.
    pub fn new(width: usize) -> DarCrc {
        DarCrc {
            v: vec![0; width],
            pos: 0,
        }
    }

    /// Folds in more data.
    pub fn update(&mut self, data: &[u8]) {
        if self.v.is_empty() {
            return;
        }
        for &b in data {
            self.v[self.pos] ^= b;
            self.pos += 1;
            if self.pos == self.v.len() {
                self.pos = 0;
            }
        }
    }

    /// Current value.
    pub fn value(&self) -> &[u8] {
        &self.v
    }
}

/// Reads an archive's (or an isolated catalogue's) entries from its slice files, given in order.
/// For the chain work: `create --base <name>-catalog.0001.dar`.
pub fn read_dar_catalog(slices: &[PathBuf]) -> Result<Vec<DarEntry>> {
    let s: Vec<Option<PathBuf>> = slices.iter().cloned().map(Some).collect();
    DarArchive::open(&s)?.catalogue()
}

/// Fuzz entry point for everything reachable from a single-slice archive's bytes: slice header,
/// archive header, terminators, catalogue. Never panics; allocations are bounded by input size.
pub fn fuzz_archive(data: &[u8]) {
    if let Ok(a) = DarArchive::from_memory(vec![data.to_vec()]) {
        if let Ok(entries) = a.catalogue() {
            for e in entries.iter().take(16) {
                // Bound the work: output at most ~64x the input (zstd RLE could expand far more).
                if e.data.is_some() && e.size <= 64 * data.len() as u64 + (1 << 20) {
                    let _ = a.copy_file_data(e, &mut io::sink());
                }
            }
        }
    }
}
