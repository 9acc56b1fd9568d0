//! Small utilities shared by every layer.
pub mod capacity;
pub mod civil_time;
pub mod digest_read;
pub mod escape;
pub mod glob;
pub mod interrupt;
pub mod positional_io;
pub mod progress;
pub mod self_binary;
pub mod xorshift;
