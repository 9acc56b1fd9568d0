//! bd-archive: archive a directory tree to Blu-ray discs and restore it, even from damaged discs.
//!
//! Layers: `commands` (user flow) → domain modules (`container`, `catalog`, `fec`, `image`, …) →
//! small utilities (`sector`). Lower layers never import higher ones.
pub mod archive_stream;
pub mod capacity;
pub mod catalog;
pub mod chain;
pub mod civil_time;
pub mod cli;
pub mod commands;
pub mod compat;
pub mod container;
pub mod digest_read;
pub mod disc_dir;
pub mod disc_reader;
pub mod disc_writer;
pub mod exit;
pub mod fec;
pub mod image;
pub mod interrupt;
pub mod optical;
pub mod plan;
pub mod positional_io;
pub mod readme;
pub mod restore;
pub mod scan;
pub mod sector;
pub mod self_binary;
pub mod stream_reader;
pub mod tarstream;
pub mod xorshift;

/// Version line for `--version`: tool version, format version and build target.
pub fn version_string() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (format 1)")
}
