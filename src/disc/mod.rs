//! Finding and reading our discs (images, disc directories, drives): used by both engines.
pub(crate) mod dir;
pub mod image_name;
pub mod reader;
