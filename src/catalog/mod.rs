//! The catalog: every entry of a generation with its metadata, content hash and data location.
pub mod entry;
pub use entry::{DataRef, Entry, EntryKind};
