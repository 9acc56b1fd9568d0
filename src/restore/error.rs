//! Why `extract`, `list` or `verify` stopped. Messages name files and discs; the command line
//! adds which flag answers them.

use std::path::PathBuf;

use thiserror::Error;

use crate::disc::reader::ReadError;
use crate::fec::FecError;
use crate::restore::writer::RestoreError;
use crate::util::interrupt::Interrupted;

/// Errors of [`crate::restore::sources::open_discs`] and [`crate::restore::extract::extract`].
#[derive(Debug, Error)]
pub enum ExtractError {
    /// No source was given.
    #[error("no source given")]
    NoSources,
    /// None of the sources could be read.
    #[error("none of the sources could be read")]
    NothingReadable,
    /// The sources hold discs of two chains.
    #[error("{path}: belongs to chain '{found}', but the other sources belong to '{first}'; extract one chain at a time")]
    MixedChains {
        /// The source of the other chain.
        path: PathBuf,
        /// Its chain.
        found: String,
        /// The chain of the sources before it.
        first: String,
    },
    /// The wanted generation is not among the sources.
    #[error("{wanted}: none of the sources holds that generation (found {found:?})")]
    GenerationMissing {
        /// The generation asked for.
        wanted: u32,
        /// The generations found.
        found: Vec<u32>,
    },
    /// No entry matches the paths asked for.
    #[error("no entry matches {0:?}")]
    NoMatch(Vec<String>),
    /// One generation is given as two or more different sets (separate create runs); the
    /// message names each set's id, creation time and images.
    #[error("{0}")]
    SetConflict(String),
    /// `--set ID` names no set among the sources.
    #[error("{0}: none of the sources belongs to a set with that id")]
    NoSuchSet(String),
    /// A file to restore already exists in OUT.
    #[error("{0} already exists; nothing was restored")]
    Exists(PathBuf),
    /// A disc cannot be read (or is not ours).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing into OUT failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Writing a restored file's content failed.
    #[error("writing restored file (disk full?)")]
    WriteFile(#[source] RestoreError),
    /// A file or directory of OUT could not be created, read or written ("creating X").
    #[error("{0}")]
    Output(String, #[source] std::io::Error),
    /// The thread reading the discs stopped before the writer was done.
    #[error("the reading thread stopped early")]
    ReaderStopped,
    /// The generations restored before ours (another format) failed.
    #[error(transparent)]
    Prelude(Box<dyn std::error::Error + Send + Sync>),
    /// Stopped by Ctrl+C.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// Errors of [`crate::restore::verify`].
#[derive(Debug, Error)]
pub enum VerifyError {
    /// The image cannot be opened.
    #[error("opening {0}")]
    Open(PathBuf, #[source] std::io::Error),
    /// No FEC data found: not our disc, or its FEC is destroyed.
    #[error("{0}: not a bd-archive disc, or its FEC data is destroyed")]
    NoFec(String, #[source] FecError),
    /// Scanning or repairing failed.
    #[error(transparent)]
    Fec(#[from] FecError),
    /// The repaired copy would replace an existing file.
    #[error("{0}: exists; choose a new file name (nothing was written)")]
    RepairTargetExists(PathBuf),
    /// A disc directory cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}
