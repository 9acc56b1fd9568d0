//! Sector-addressed reading of discs and disc images.
//!
//! Everything on a disc is addressed in 2048-byte logical sectors (LBAs). Readers of images, block devices
//! and repaired overlays all implement [`SectorSource`], so the filesystem reader, the FEC and extract do not
//! care where sectors come from.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes in one logical sector of an optical disc (and of every image we write).
pub const SECTOR_SIZE: usize = 2048;

/// Sectors in one BD ECC cluster (64 KiB); image sizes are multiples of this so fit checks are exact.
pub const CLUSTER_SECTORS: u64 = 32;

/// A random-access source of 2048-byte sectors: an image file, a block device, or a repaired view.
pub trait SectorSource: Send + Sync {
    /// Number of sectors the source claims to hold (for a truncated image: what is physically there).
    fn sector_count(&self) -> u64;

    /// Reads `buf.len() / SECTOR_SIZE` whole sectors starting at `lba` into `buf`.
    ///
    /// `buf.len()` must be a multiple of [`SECTOR_SIZE`]. Returns an error if any sector of the range
    /// cannot be read (including sectors past the end); callers that need per-sector results retry
    /// the range sector by sector.
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Human-readable name for messages ("photos-gen0001-disc0001.iso", "/dev/sr0").
    fn describe(&self) -> String;

    /// Whether several threads may read different places at once without harm: true for files
    /// and memory; false for a disc in a drive, where out-of-order requests cost seeks.
    fn parallel_reads(&self) -> bool {
        true
    }
}

/// Validates a `read_sectors` request: whole sectors, all below `sectors`. Returns the count.
/// Every source checks the same way, so "past the end" means the same everywhere.
pub fn check_request(lba: u64, buf_len: usize, sectors: u64, name: &str) -> io::Result<u64> {
    if buf_len % SECTOR_SIZE != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "read length is not a whole number of sectors",
        ));
    }
    let count = (buf_len / SECTOR_SIZE) as u64;
    if lba.checked_add(count).is_none_or(|end| end > sectors) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "sectors {lba}..{} lie past the end of {name}",
                lba.saturating_add(count)
            ),
        ));
    }
    Ok(count)
}

/// A disc image in a regular file (or any seekable file, such as a block device opened read-only).
pub struct FileSectorSource {
    file: File,
    /// Whole sectors present in the file; a trailing partial sector is treated as unreadable.
    sectors: u64,
    path: PathBuf,
}

impl FileSectorSource {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file_len(&file)?;
        Ok(FileSectorSource {
            file,
            sectors: len / SECTOR_SIZE as u64,
            path: path.to_path_buf(),
        })
    }

    /// Wraps an already open file.
    pub fn from_file(file: File, path: &Path) -> io::Result<Self> {
        let len = file_len(&file)?;
        Ok(FileSectorSource {
            file,
            sectors: len / SECTOR_SIZE as u64,
            path: path.to_path_buf(),
        })
    }

    /// Path this source was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Length of a regular file or block device in bytes.
fn file_len(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    // Block devices report 0 in metadata; seeking to the end gives their size.
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::End(0))
}

impl SectorSource for FileSectorSource {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        check_request(
            lba,
            buf.len(),
            self.sectors,
            &self.path.display().to_string(),
        )?;
        self.file.read_exact_at(buf, lba * SECTOR_SIZE as u64)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// An in-memory image, used by tests and fuzz targets.
pub struct MemorySectorSource {
    /// Image bytes; only whole sectors are readable.
    pub data: Vec<u8>,
}

impl SectorSource for MemorySectorSource {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = (lba as usize).checked_mul(SECTOR_SIZE);
        let end = start.and_then(|s| s.checked_add(buf.len()));
        match (start, end) {
            (Some(s), Some(e))
                if e <= self.sector_count() as usize * SECTOR_SIZE
                    && buf.len() % SECTOR_SIZE == 0 =>
            {
                buf.copy_from_slice(&self.data[s..e]);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sectors past the end of the image",
            )),
        }
    }

    fn describe(&self) -> String {
        "memory image".to_string()
    }
}

impl<T: SectorSource + ?Sized> SectorSource for &T {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_sectors(lba, buf)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn parallel_reads(&self) -> bool {
        (**self).parallel_reads()
    }
}

impl<T: SectorSource + ?Sized> SectorSource for std::sync::Arc<T> {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_sectors(lba, buf)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn parallel_reads(&self) -> bool {
        (**self).parallel_reads()
    }
}
