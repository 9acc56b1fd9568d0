//! bd-archive: archive a directory tree to Blu-ray discs and restore it, even from damaged discs.
//!
//! Layers (lower never import higher; see docs/architecture.md):
//! - engines: [`archive`] (the write pipeline) and [`restore`] (the read pipeline); they never
//!   import each other. [`legacy`] reads the Python tool's dar + par2 discs.
//! - [`disc`]: finding and reading our discs (used by both engines and by `legacy`).
//! - [`format`] (the on-disc types), [`fec`], [`image`] (ISO9660/UDF), [`optical`] (drives).
//! - [`sector`] and [`util`]: small utilities.
//!
//! The command line (arguments, prompts, progress bars, exit codes) lives in the binary crate.
// The library never prints and never exits: the command line decides what the user sees.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]
#![warn(missing_docs)]
pub mod archive;
pub mod disc;
pub mod fec;
pub mod format;
pub mod image;
pub mod legacy;
#[allow(missing_docs)] // being rewritten (issue #18); documented there
pub mod optical;
pub mod restore;
pub mod sector;
pub mod util;

/// Version line for `--version`: tool version, format version and build target.
pub fn version_string() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (format 2)")
}
