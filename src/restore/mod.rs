//! The read pipeline: sources → discs → chain streams → writer.
//!
//! - [`sources`]: the SOURCE arguments opened as discs of one chain (images, directories of
//!   images, disc directories; `crate::disc` reads each disc);
//! - [`extract`]: one generation's state restored into OUT (its module doc gives the threads);
//!   [`chain_stream`] serves the tar-stream bytes of any generation, decoding chunks ahead;
//!   [`writer`] creates every entry inside OUT and nowhere else;
//! - [`verify`]: a disc checked against its FEC, and the health report;
//! - [`parity_sources`]: data discs missing or broken beyond their FEC rebuilt from the
//!   generation's parity discs before extract reads the sources ([`parity`] is the engine,
//!   [`parity_claims`] checks what the parity discs claim before the engine trusts it);
//! - [`drive`]: reading discs from a drive defensively (rescue copies, retries);
//! - [`mounted`]: a mounted disc directory read through the block device it is mounted from.
//!
//! This module never imports `crate::archive`, nor `crate::legacy` (which implements
//! [`extract::Prelude`] for chains continued from the Python tool).
pub(crate) mod chain_stream;
mod column_sweep;
pub mod drive;
mod error;
pub mod extract;
mod feed;
pub mod mounted;
pub mod parity;
pub mod parity_claims;
pub mod parity_sources;
pub mod sources;
pub mod verify;
pub mod writer;

pub use error::{ExtractError, VerifyError};
