//! The write pipeline: scan → delta (against the `--base` generation) → plan → tar stream →
//! compress → disc writer.
pub mod delta;
pub mod disc_writer;
pub mod pax;
pub mod plan;
pub mod scan;
pub mod tar_stream;
