//! Optical drives: the only code that will talk to hardware (SCSI MMC-6 / SPC-4 over SG_IO).
//!
//! This first slice holds the pure, hardware-free parts: command descriptor block (CDB) builders
//! and sense-data decoding. Both are tested byte by byte against the specification's field
//! layout; neither can panic on any input.
pub mod capacity;
pub mod cdb;
pub mod response;
pub mod sense;
