//! bd-archive: archive a directory tree to Blu-ray discs and restore it, even from damaged discs.
//!
//! Layers: `commands` (user flow) → domain modules (`container`, `catalog`, `fec`, `image`, …) →
//! small utilities (`sector`). Lower layers never import higher ones.
pub mod catalog;
pub mod container;
pub mod fec;
pub mod image;
pub mod restore;
pub mod scan;
pub mod sector;
pub mod tarstream;
