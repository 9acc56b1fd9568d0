//! Why reading seed (dar + par2) discs failed. Messages name the files; the command line adds
//! which flag answers them.

use std::path::PathBuf;

use thiserror::Error;

use crate::legacy::dar::DarError;
use crate::legacy::par2::Par2Error;
use crate::restore::writer::RestoreError;

/// Errors of the seed formats.
#[derive(Debug, Error)]
pub enum SeedError {
    /// Reading a seed file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A dar archive or catalogue is malformed or unsupported.
    #[error(transparent)]
    Dar(#[from] DarError),
    /// A par2 set is malformed or cannot be used.
    #[error(transparent)]
    Par2(#[from] Par2Error),
    /// Writing into OUT failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The sources hold discs of several seed chains.
    #[error("the sources hold several seed chains ({0}); pass the discs of one chain only")]
    SeveralChains(String),
    /// Something of `what` (a slice, a generation) failed.
    #[error("{what}: {cause}")]
    In {
        /// The slice or generation.
        what: String,
        /// What went wrong with it.
        cause: Box<SeedError>,
    },
    /// A generation is not among the seed files.
    #[error("generation {0} is not among the seed files")]
    NoGeneration(u32),
    /// No generation at all.
    #[error("no generation found")]
    NoGenerations,
    /// A generation a continued chain needs is not among the sources.
    #[error("dar generation {generation} of seed chain '{chain}' is not among the sources: this chain continues dar generations 1..{needed}; pass all their discs")]
    MissingGeneration {
        /// The generation missing.
        generation: u32,
        /// The seed chain.
        chain: String,
        /// The generations the chain continues.
        needed: u32,
    },
    /// The seed discs are of another dar chain than the one continued.
    #[error("the seed (dar) discs given are of chain '{0}', but not of the dar chain the bd-archive discs continue (chain id differs); pass the seed discs of that chain")]
    OtherChainId(String),
    /// A file or directory of OUT could not be created ("creating X").
    #[error("{0}")]
    Output(String, #[source] std::io::Error),
    /// A base (a seed catalogue or seed discs to continue) cannot be used.
    #[error("{path}: {problem}")]
    Base {
        /// The base as given.
        path: PathBuf,
        /// Why not.
        problem: BaseProblem,
    },
}

impl SeedError {
    /// `cause`, said of `what`.
    pub(crate) fn of(what: impl Into<String>) -> impl FnOnce(SeedError) -> SeedError {
        let what = what.into();
        move |cause| SeedError::In {
            what,
            cause: Box::new(cause),
        }
    }
}

/// Why a seed base cannot be continued.
#[derive(Debug, Error)]
pub enum BaseProblem {
    /// No dar files of the chain there.
    #[error("no dar files of the seed chain found there")]
    NotFound,
    /// Another chain.
    #[error("belongs to seed chain '{found}', not '{name}'")]
    OtherChain {
        /// The chain found.
        found: String,
        /// The chain being continued.
        name: String,
    },
    /// Not a seed file name.
    #[error("not a seed file name (<name>[-gen<N>]-catalog.NNNN.dar)")]
    NotASeedName,
    /// A data slice instead of the isolated catalogue.
    #[error("this is a data slice; pass the isolated catalogue {chain}-gen{generation}-catalog.0001.dar, or the directory of seed discs")]
    DataSlice {
        /// Its chain.
        chain: String,
        /// Its generation.
        generation: u32,
    },
    /// Generation 1 (needed for the chain id) is not there.
    #[error("generation 1 of seed chain '{0}' ({0}-gen1-catalog.0001.dar or {0}-catalog.0001.dar, or its slices) is needed to derive the chain id; put it beside the catalogue, or pass the directory holding all generations' catalogues")]
    NoGeneration1(String),
    /// The seed files cannot be listed.
    #[error("{0}")]
    Unreadable(std::io::Error),
    /// A generation's catalogue cannot be read.
    #[error("generation {0}: {1}")]
    Generation(u32, Box<SeedError>),
}
