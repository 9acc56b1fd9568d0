//! Optical drives: the only code that will talk to hardware (SCSI MMC-6 / SPC-4 over SG_IO).
//!
//! Layers, bottom up: `cdb`/`response`/`sense` (pure byte layouts, tested field by field against
//! the specifications, never panicking on any input) → [`drive::Drive`] (one command in, status
//! and sense out: SG_IO hardware or the simulated drive) → [`mmc::Mmc`] (typed MMC commands on
//! any drive) → capacity checks, burning and damaged-disc reading.
pub mod burn;
pub mod capacity;
pub mod cdb;
pub mod detect;
pub mod device;
pub mod disc_source;
pub mod drive;
pub mod medium;
pub mod mmc;
pub mod response;
pub mod sector_map;
pub mod sense;
pub mod sg;
pub mod sim;
pub mod trace;
pub mod transfer;
