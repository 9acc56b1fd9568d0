//! Finding and reading our discs (images, disc directories, drives): used by both engines.
pub mod dir;
pub mod reader;
