//! Small utilities shared by every layer.
pub mod capacity;
pub mod civil_time;
pub(crate) mod digest_read;
pub mod escape;
pub mod glob;
pub mod interrupt;
pub(crate) mod positional_io;
pub mod progress;
pub mod sector_ranges;
pub(crate) mod self_binary;
pub mod xorshift;
