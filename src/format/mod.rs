//! The on-disc format v1: chunk framing of the tar stream, the disc header, the record files
//! (catalog and per-disc index), the catalog's entry types and the disc README. FORMAT.md is the
//! specification; this module is its implementation.
pub mod catalog;
pub mod chunk;
pub mod disc_header;
pub mod parity_manifest;
pub(crate) mod readme;
pub mod records;
