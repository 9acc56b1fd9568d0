//! The read pipeline: sources → discs → chain streams → writer.
pub mod chain_stream;
pub mod verify;
pub mod writer;
