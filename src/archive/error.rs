//! Why `create` stopped. Messages name files and say what is wrong; the command line adds which
//! flag answers it.

use std::path::PathBuf;

use thiserror::Error;

use crate::archive::disc_writer::WriteError;
use crate::archive::scan::ScanError;
use crate::disc::reader::ReadError;
use crate::image::ImageError;
use crate::util::interrupt::Interrupted;

/// A setting an interrupted create was started with, which a resumed one must repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeSetting {
    /// The chain name.
    Name,
    /// The source directory.
    Source,
    /// The disc capacity.
    Capacity,
    /// Compression and level.
    Compression,
    /// FEC redundancy.
    Redundancy,
    /// Parity filling the last disc.
    FillParity,
    /// The base generation.
    Base,
    /// The image packed onto.
    PackWith,
    /// The minimum fill of the last disc.
    MinLastDiscFill,
    /// Comparing files by content.
    Checksum,
    /// What the scan leaves out (patterns, caches, other filesystems).
    Exclusions,
    /// Parity discs per generation.
    ParityDiscs,
}

/// Errors of [`crate::archive::prepare`], [`crate::archive::create`] and
/// [`crate::archive::open_pack`].
#[derive(Debug, Error)]
pub enum CreateError {
    /// More parity discs than a reader accepts for the data discs (FORMAT.md §10.3).
    #[error("--parity-discs {parity}: a set of {data} data disc(s) takes at most {max} parity discs (more would only add copies); give at most {max}")]
    TooManyParityDiscs {
        /// P asked for.
        parity: u32,
        /// n (planned or written).
        data: u64,
        /// The most P for that n.
        max: u32,
    },
    /// OUT holds the state file of an interrupted create.
    #[error("{0} holds an interrupted create")]
    UnfinishedCreate(PathBuf),
    /// OUT exists and is a file.
    #[error("{0}: exists and is not a directory")]
    OutputNotADirectory(PathBuf),
    /// This generation's catalog is already in OUT.
    #[error("{0} already exists")]
    CatalogExists(PathBuf),
    /// OUT/images already holds disc images.
    #[error("{dir} already holds disc images ({image})")]
    ImagesExist {
        /// OUT/images.
        dir: PathBuf,
        /// The first image found.
        image: String,
    },
    /// The source holds nothing and empty generations were not allowed.
    #[error("{0}: the source directory is empty")]
    EmptySource(PathBuf),
    /// Scanning the source failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The given compression ratio is outside (0, 1.5].
    #[error("{0}: give compressed/original between 0 and 1 (e.g. 0.6)")]
    BadRatio(f64),
    /// The sample directory holds no readable content.
    #[error("{0}: holds no readable file content")]
    EmptySample(PathBuf),
    /// The chain id could not be drawn.
    #[error("reading /dev/urandom for the chain id")]
    Random(#[source] std::io::Error),
    /// The base and the packed image are of different generations.
    #[error("{image}: holds generation {packed} of its chain, but the base is generation {base}")]
    PackNotOnBase {
        /// The image packed onto.
        image: PathBuf,
        /// Its generation.
        packed: u32,
        /// The base's generation.
        base: u32,
    },
    /// No interrupted create to resume in OUT.
    #[error("{out} has no interrupted create to resume ({file} missing)")]
    NothingToResume {
        /// OUT.
        out: PathBuf,
        /// The state file's name.
        file: &'static str,
    },
    /// The state file of the interrupted create is damaged.
    #[error("{0} is damaged")]
    ResumeStateDamaged(PathBuf, #[source] serde_json::Error),
    /// The chain id in the state file is damaged.
    #[error("chain id in {0} is damaged")]
    ResumeChainIdDamaged(&'static str),
    /// A setting differs from the interrupted create's.
    #[error("{setting:?} differs from the interrupted create in {out}")]
    ResumeSettingDiffers {
        /// Which one.
        setting: ResumeSetting,
        /// OUT.
        out: PathBuf,
    },
    /// The interrupted create made another generation.
    #[error("the interrupted create made generation {made}, this one would be {would}")]
    ResumeGeneration {
        /// The interrupted create's generation.
        made: u32,
        /// This one's.
        would: u32,
    },
    /// A kept image cannot be read.
    #[error("reading {0}")]
    ResumeImageUnreadable(PathBuf, #[source] ReadError),
    /// A kept image holds no section of the generation being resumed.
    #[error("{0} is not an image of the interrupted create's chain and generation; remove it and the images after it, then resume")]
    ResumeImageForeign(PathBuf),
    /// A kept image is damaged.
    #[error("{0} is damaged; remove it and the images after it, then resume")]
    ResumeImageDamaged(PathBuf),
    /// The image to pack onto cannot be read.
    #[error("{0}")]
    PackUnreadable(PathBuf, #[source] ReadError),
    /// The image to pack onto is damaged.
    #[error("{0}: the image is damaged")]
    PackDamaged(PathBuf),
    /// The image to pack onto is of another chain.
    #[error("{image}: belongs to chain '{found}', not '{name}'")]
    PackOtherChain {
        /// The image.
        image: PathBuf,
        /// Its chain.
        found: String,
        /// The chain being written.
        name: String,
    },
    /// The image to pack onto is not the last disc of its generation.
    #[error("{image}: is disc {disc} of generation {generation} but not its last disc (no catalog); only the unburned last disc can be packed")]
    PackNotLastDisc {
        /// The image.
        image: PathBuf,
        /// Its disc number.
        disc: u32,
        /// Its generation.
        generation: u32,
    },
    /// The image to pack onto holds as many generations as a disc can.
    #[error("{0}: already holds {1} generations, the most one disc can")]
    PackFull(PathBuf, usize),
    /// The filesystem of the image to pack onto cannot be read.
    #[error("{0}: cannot read its filesystem: {1}")]
    PackFilesystem(PathBuf, ImageError),
    /// Parity discs and packing onto an earlier generation's disc were both asked for.
    #[error("parity discs cannot cover a disc packed with an earlier generation (its other generation's discs are not in this set)")]
    ParityWithPack,
    /// With parity discs, the room a parity disc needs beside the column parity (mostly the
    /// catalog copy, bounded from the scanned tree) leaves a data disc nothing.
    #[error("the catalog of this tree is too large for discs of {0} bytes with parity discs: a data disc would have to leave all its room for the parity disc's copy of it")]
    ParityCatalogTooLarge(u64),
    /// A data image could not be read back for the parity discs.
    #[error("{0}")]
    ParityInput(String),
    /// Writing the images failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A file in OUT could not be written ("creating X", "renaming X into place").
    #[error("{0}")]
    Output(String, #[source] std::io::Error),
    /// The resume state could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A compress worker failed.
    #[error("{0}")]
    Compress(String),
    /// The source reader thread panicked.
    #[error("the source reader thread panicked")]
    ReaderPanicked,
    /// Stopped by Ctrl+C.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}
