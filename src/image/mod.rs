//! Disc-image filesystems: our own streaming ISO9660 (+ Joliet + Rock Ridge) and UDF 2.01 bridge
//! writer, and an in-process reader that needs no mounting and no external programs.
//!
//! Why our own writer: file data is generated while the image is written and goes straight into the
//! image file, exactly once. So the *caller* places each file's bytes at sector offsets of its
//! choosing (from [`FIRST_DATA_LBA`] on), and [`write_filesystem`] afterwards writes only the
//! metadata that describes those files, into the sectors this module owns:
//! LBA 16 .. [`FIRST_DATA_LBA`] and the last sector of the image (the second UDF anchor).
//! ISO9660 and UDF describe the *same* data extents. FORMAT.md §2 gives the exact sector map.
//!
//! The reader ([`read_filesystem`]) parses untrusted images: every length and offset is checked
//! before use, and directory sizes, depth, entry counts and total bytes read are capped
//! ([`ReadLimits`]), so it returns errors instead of panicking, allocating without bound or looping.

mod dir_guard;
mod iso_read;
mod iso_write;
mod tree;
mod udf_read;
mod udf_write;
mod util;

use crate::sector::{MemorySectorSource, SectorSource, SECTOR_SIZE};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// First LBA available for file data; LBA 16 up to here holds filesystem metadata (ours),
/// LBA 0..15 the caller's system area. Fixed so the caller can place data before writing metadata.
pub const FIRST_DATA_LBA: u64 = 1024;

/// First LBA the writer may write (LBA 0..15 are the caller's system area, holding the disc header).
pub const METADATA_START_LBA: u64 = 16;

/// Largest file size a single ISO9660 extent can describe; the caller splits bigger data.
pub const MAX_FILE_SIZE: u64 = u32::MAX as u64;

/// A file whose data the caller has already placed (or will place) at `lba`.
///
/// Why: the writer never sees file bytes; it only records where the caller put them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Full path, UTF-8, '/'-separated, no leading '/'; every component non-empty and not "." or "..".
    pub path: String,
    /// First sector of the data; the data is contiguous. For `size == 0` it is ignored by the
    /// writer and read back as 0.
    pub lba: u64,
    /// Size in bytes, < 4 GiB ([`MAX_FILE_SIZE`]).
    pub size: u64,
    /// Modification time, Unix seconds (UTC).
    pub mtime: i64,
    /// Executable (r-xr-xr-x instead of r--r--r--): the bd-archive binary carried on the disc.
    pub executable: bool,
}

/// Volume-level identification written into every volume descriptor.
///
/// Why: labels and dates are what a user (or `blkid`) sees first when a disc is inserted.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    /// Volume label, at most 32 bytes UTF-8 (see [`volume_label`]). Stored exactly in UDF and
    /// Joliet (first 16 UTF-16 units), upper-cased to d-characters in the ISO9660 PVD.
    pub volume_id: String,
    /// Publisher (ISO9660 a-characters after upper-casing; truncated to 128 bytes).
    pub publisher: String,
    /// Application that made the disc (truncated to 128 bytes).
    pub application: String,
    /// Volume creation time, Unix seconds (UTC); also the time of every directory.
    pub created_unix: i64,
}

/// What [`read_filesystem`] found on a disc.
///
/// Why: restore needs the files and where their data lies, without mounting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscFilesystem {
    /// Volume label (UDF logical volume id, else Joliet, else ISO9660 PVD volume id).
    pub volume_id: String,
    /// Size of the volume in sectors as the filesystem declares it (ISO9660 volume space size
    /// when a PVD exists, else the UDF extent covered by partition and anchors). For a truncated
    /// image this is larger than the sectors present.
    pub volume_sectors: u64,
    /// Regular files only (no directories, links or devices), full paths, sorted by path.
    pub files: Vec<ImageFile>,
}

/// Which filesystem of a hybrid image was used, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// UDF (our 2.01 bridge, or mkisofs/genisoimage 1.02).
    Udf,
    /// ISO9660 with Rock Ridge names.
    IsoRockRidge,
    /// ISO9660 Joliet supplementary tree.
    Joliet,
    /// Plain ISO9660 names (version suffix and trailing dot removed).
    Iso,
}

/// Caps applied while reading untrusted images. Why: a damaged or hostile image must not make
/// the reader allocate or loop without bound.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Largest directory (ISO extent or UDF directory data) read, in bytes.
    pub max_dir_bytes: u64,
    /// Total directory bytes read over the whole tree.
    pub max_total_dir_bytes: u64,
    /// Deepest directory nesting followed (root = 0).
    pub max_depth: usize,
    /// Most entries (files + directories) accepted.
    pub max_entries: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_dir_bytes: 16 << 20,
            max_total_dir_bytes: 256 << 20,
            max_depth: 64,
            max_entries: 2_000_000,
        }
    }
}

/// Everything that can go wrong writing or reading a disc filesystem; each message is one line
/// saying what is wrong.
#[derive(thiserror::Error, Debug)]
pub enum ImageError {
    /// Writing metadata to, or reading sectors from, the image failed.
    #[error("I/O error {what}: {source}")]
    Io {
        /// What was being done ("writing filesystem metadata at LBA 16").
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file path is not acceptable on a disc.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// Two files (or a file and a directory) have the same path.
    #[error("duplicate path {0:?} (a file or directory of that name already exists)")]
    DuplicatePath(String),
    /// A file is ≥ 4 GiB; the caller must split it.
    #[error("file {path:?} is {size} bytes; files must be smaller than 4 GiB (split the data)")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A file's data does not lie within the data area.
    #[error("file {path:?} at LBA {lba} ({sectors} sectors) is outside the data area LBA {first}..{end} of a {total}-sector image")]
    ExtentOutOfRange {
        /// The file.
        path: String,
        /// Its first sector.
        lba: u64,
        /// Its length in sectors.
        sectors: u64,
        /// First data LBA ([`FIRST_DATA_LBA`]).
        first: u64,
        /// End (exclusive) of the area files may describe: total - 1.
        end: u64,
        /// Image size in sectors.
        total: u64,
    },
    /// Two files' data extents overlap.
    #[error("files {a:?} and {b:?} have overlapping data extents")]
    Overlap {
        /// One file.
        a: String,
        /// The other.
        b: String,
    },
    /// The metadata does not fit below [`FIRST_DATA_LBA`].
    #[error("filesystem metadata for {files} files and {dirs} directories does not fit before LBA {limit}: use fewer files or directories")]
    MetadataTooLarge {
        /// Files requested.
        files: usize,
        /// Directories implied.
        dirs: usize,
        /// [`FIRST_DATA_LBA`].
        limit: u64,
    },
    /// The image size is unusable.
    #[error(
        "image size of {0} sectors is invalid: it must be at least 1056 and below 2^32 sectors"
    )]
    BadVolumeSize(u64),
    /// The volume label is too long.
    #[error("volume id {0:?} is longer than 32 bytes")]
    VolumeIdTooLong(String),
    /// No filesystem recognised.
    #[error("no ISO9660 or UDF filesystem found on {source_name}: {detail}")]
    NotAFilesystem {
        /// The sector source's description.
        source_name: String,
        /// What was looked for.
        detail: String,
    },
    /// A structure on the disc is damaged or not of a supported kind.
    #[error("corrupt or unsupported {fs} filesystem on {source_name}: {what}")]
    Corrupt {
        /// "ISO9660" or "UDF".
        fs: &'static str,
        /// The sector source's description.
        source_name: String,
        /// What is wrong, with the LBA where possible.
        what: String,
    },
    /// A [`ReadLimits`] cap was reached.
    #[error("{fs} filesystem on {source_name} exceeds the reader limit: {what}")]
    LimitExceeded {
        /// "ISO9660" or "UDF".
        fs: &'static str,
        /// The sector source's description.
        source_name: String,
        /// Which limit and its value.
        what: String,
    },
}

/// Builds the volume label for a disc: `"<name>_G<NN>_<NNNN>"` (generation at least 2 digits,
/// disc at least 4), with `name` truncated so the whole label is ≤ 32 bytes, never splitting a
/// UTF-8 character.
///
/// Why: labels must show chain, generation and disc within the 32-byte UDF/ISO label limit.
pub fn volume_label(name: &str, generation: u32, disc: u32) -> String {
    let suffix = format!("_G{generation:02}_{disc:04}");
    let room = 32usize.saturating_sub(suffix.len());
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &name[..cut], suffix)
}

/// Writes the filesystem metadata (ISO9660 + Joliet + Rock Ridge, and a UDF 2.01 bridge) for
/// `files`, whose data the caller has placed at their LBAs in `out`, an image of
/// `total_sectors` sectors.
///
/// Why: data is streamed into the image first; this then describes it. Only LBA
/// 16..[`FIRST_DATA_LBA`] and LBA `total_sectors - 1` are written (with positioned writes);
/// every other sector of `out` is left untouched. Fails (without writing) if a path is invalid
/// or duplicated, a file is ≥ 4 GiB, extents overlap or leave `FIRST_DATA_LBA .. total_sectors - 1`
/// (the data area plus the caller's sector N-2, which it may expose as a file), or the metadata
/// does not fit.
///
/// 7-Zip reports "Headers Error" / "data after the end of archive" on a UDF image whose sectors
/// between the end of the last file extent and the end anchor are not all zero; so non-zero
/// caller sectors there (FEC parity, the header copy at N-2) should be described as files.
pub fn write_filesystem(
    out: &File,
    spec: &VolumeSpec,
    files: &[ImageFile],
    total_sectors: u64,
) -> Result<(), ImageError> {
    let (region, last) = build_metadata(spec, files, total_sectors)?;
    out.write_all_at(&region, METADATA_START_LBA * SECTOR_SIZE as u64)
        .map_err(|source| ImageError::Io {
            what: format!("writing filesystem metadata at LBA {METADATA_START_LBA}"),
            source,
        })?;
    let last_lba = total_sectors - 1;
    out.write_all_at(&last, last_lba * SECTOR_SIZE as u64)
        .map_err(|source| ImageError::Io {
            what: format!("writing the UDF anchor at LBA {last_lba}"),
            source,
        })?;
    Ok(())
}

/// Builds the metadata without writing: the bytes of LBA 16..FIRST_DATA_LBA and of the last
/// sector. Why separate: unit tests and fuzzing work on memory.
pub(crate) fn build_metadata(
    spec: &VolumeSpec,
    files: &[ImageFile],
    total_sectors: u64,
) -> Result<(Vec<u8>, Vec<u8>), ImageError> {
    if total_sectors < FIRST_DATA_LBA + 32 || total_sectors > u32::MAX as u64 {
        return Err(ImageError::BadVolumeSize(total_sectors));
    }
    if spec.volume_id.len() > 32 {
        return Err(ImageError::VolumeIdTooLong(spec.volume_id.clone()));
    }
    let tree = tree::Tree::build(files, total_sectors)?;
    let mut region = tree::Region::new();
    let mut alloc = tree::Alloc::new();
    iso_write::write(&tree, spec, total_sectors, &mut region, &mut alloc)?;
    let last = udf_write::write(&tree, spec, total_sectors, &mut region, &mut alloc)?;
    Ok((region.into_bytes(), last))
}

/// Reads the file list of a disc or image without mounting: UDF first, else ISO9660 with Rock
/// Ridge names, else Joliet, else plain ISO9660 names.
///
/// Why: verify/extract must work without root, mounts or external programs, and on damaged
/// discs (if UDF is damaged, the ISO9660 trees are tried).
pub fn read_filesystem(src: &dyn SectorSource) -> Result<DiscFilesystem, ImageError> {
    read_filesystem_with(src, &ReadLimits::default()).map(|(fs, _)| fs)
}

/// [`read_filesystem`] with explicit limits, also saying which filesystem was used.
///
/// Why: tests and diagnostics want to know whether UDF or an ISO9660 tree answered.
pub fn read_filesystem_with(
    src: &dyn SectorSource,
    limits: &ReadLimits,
) -> Result<(DiscFilesystem, FsKind), ImageError> {
    let udf = udf_read::read(src, limits);
    let udf_err = match udf {
        Ok(Some(mut fs)) => {
            if let Some(n) = iso_read::pvd_volume_sectors(src) {
                fs.volume_sectors = n;
            }
            return Ok((fs, FsKind::Udf));
        }
        Ok(None) => None,
        Err(e) => Some(e),
    };
    match iso_read::read(src, limits, None) {
        Ok(r) => Ok(r),
        Err(iso_err) => Err(match (udf_err, &iso_err) {
            (Some(u), ImageError::NotAFilesystem { .. }) => u,
            _ => iso_err,
        }),
    }
}

/// Reads only the ISO9660 side, using the tree `tree` selects (Rock Ridge, Joliet or plain names).
///
/// Why: diagnostics and tests compare the three name spaces of a hybrid disc; `read_filesystem`
/// picks one automatically. Errors if the requested tree is absent.
pub fn read_iso9660(
    src: &dyn SectorSource,
    limits: &ReadLimits,
    tree: FsKind,
) -> Result<(DiscFilesystem, FsKind), ImageError> {
    iso_read::read(src, limits, Some(tree))
}

/// The checksum byte of a UDF descriptor tag (ECMA-167 3/7.2.3) over its first 16 bytes.
///
/// Why: a parity set without its manifest checks a data disc's trailing UDF anchor, which its
/// own FEC does not cover, before trusting a repaired copy of it.
pub fn udf_tag_checksum(tag: &[u8]) -> u8 {
    udf_write::tag_checksum(tag)
}

/// Entry point for a cargo-fuzz target: runs [`read_filesystem`] on `data` as an in-memory image.
///
/// Why: the reader parses untrusted bytes and must never panic on them.
pub fn fuzz_read(data: &[u8]) {
    let src = MemorySectorSource {
        data: data.to_vec(),
    };
    let _ = read_filesystem(&src);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rule() {
        assert_eq!(volume_label("photos", 1, 1), "photos_G01_0001");
        assert_eq!(volume_label("photos", 123, 45678), "photos_G123_45678");
        let long = "a".repeat(40);
        let l = volume_label(&long, 2, 3);
        assert_eq!(l.len(), 32);
        assert!(l.ends_with("_G02_0003"));
        // 'é' is 2 bytes: 22 of them = 44 bytes, room is 23 bytes -> 11 chars.
        let l = volume_label(&"é".repeat(22), 1, 1);
        assert!(l.len() <= 32);
        assert_eq!(l, format!("{}_G01_0001", "é".repeat(11)));
    }
}
