//! Opening a drive from a `-D` argument.
//!
//! - `sim:DIR`: the file-backed simulated drive described by `DIR/drive.json` ([`super::sim`]).
//! - `/dev/srN`, `/dev/sgN`: real hardware through SG_IO (`SgDrive`, see `super::sg`).

use std::path::Path;

use super::drive::Drive;
use super::sim::{SimDrive, SimError};

/// Why a `-D` device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("{0}: cannot open this device: {1}")]
    Unsupported(String, String),
}

/// The prefix that selects the simulated drive.
pub const SIM_PREFIX: &str = "sim:";

/// Whether `spec` names a simulated drive.
pub fn is_sim(spec: &str) -> bool {
    spec.starts_with(SIM_PREFIX)
}

/// Opens the drive named by `spec` (a `-D` value).
pub fn open_device(spec: &str) -> Result<Box<dyn Drive>, DeviceError> {
    if let Some(dir) = spec.strip_prefix(SIM_PREFIX) {
        return Ok(Box::new(SimDrive::open_dir(Path::new(dir))?));
    }
    // Real drives (/dev/srN, /dev/sgN) → SgDrive: added by the SG_IO branch.
    Err(DeviceError::Unsupported(
        spec.to_string(),
        "only simulated drives (sim:DIR) are supported by this build".into(),
    ))
}
