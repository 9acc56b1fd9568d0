//! ISO9660 + Joliet + Rock Ridge + UDF images: writer and in-process reader.
//! TEMPORARY STUB in main until the image branch lands (same API).
use crate::sector::SectorSource;

/// First LBA available to file data.
pub const FIRST_DATA_LBA: u64 = 1024;

/// A file whose data lies at `lba`.
#[derive(Clone, Debug)]
pub struct ImageFile {
    /// Path inside the image.
    pub path: String,
    /// First sector.
    pub lba: u64,
    /// Bytes.
    pub size: u64,
    /// mtime.
    pub mtime: i64,
}

/// Volume identity.
pub struct VolumeSpec {
    /// Label.
    pub volume_id: String,
    /// Publisher.
    pub publisher: String,
    /// Application.
    pub application: String,
    /// Time.
    pub created_unix: i64,
}

/// Errors.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Any.
    #[error("{0}")]
    Other(String),
}

/// Writes metadata.
pub fn write_filesystem(
    _out: &std::fs::File,
    _spec: &VolumeSpec,
    _files: &[ImageFile],
    _total: u64,
) -> Result<(), ImageError> {
    Ok(())
}

/// Label.
pub fn volume_label(name: &str, generation: u32, disc: u32) -> String {
    let suffix = format!("_G{generation:02}_{disc:04}");
    let mut n = name.to_string();
    while n.len() + suffix.len() > 32 {
        n.pop();
    }
    n + &suffix
}

/// Parsed fs.
pub struct DiscFilesystem {
    /// Label.
    pub volume_id: String,
    /// Size.
    pub volume_sectors: u64,
    /// Files.
    pub files: Vec<ImageFile>,
}

/// Reads fs.
pub fn read_filesystem(_src: &dyn SectorSource) -> Result<DiscFilesystem, ImageError> {
    Err(ImageError::Other("stub".into()))
}
