//! Container format v1: chunk framing of the tar stream, the disc header, and the record files
//! (catalog and per-disc index). FORMAT.md is the specification; this module is its implementation.
pub mod chunk;
pub mod disc_header;
pub mod records;
