//! `-D DEV` → a [`Drive`]: `/dev/...` nodes open the real drive through SG_IO ([`SgDrive`]);
//! `sim:DIR` names the simulated drive.

use std::path::Path;

use super::detect::{self, Busy, Roots};
use super::drive::Drive;
use super::sg::{Access, OpenError, SgDrive};
use super::sim::{SimDrive, SimError};

/// The prefix that selects the simulated drive (tests, demos): `-D sim:DIR`.
pub const SIM_PREFIX: &str = "sim:";

/// True when a TARGET/SOURCE names a drive (`/dev/srN`, `/dev/sgN`, `sim:DIR`) rather than an
/// image or a directory, so it is read through [`open_device`] and never probed as a file.
pub fn is_drive_path(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.starts_with(SIM_PREFIX) || s.starts_with("/dev/sr") || s.starts_with("/dev/sg")
}

/// Why `-D` could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("{path}: {busy}")]
    Busy { path: String, busy: Busy },
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Opens the drive `spec` names. For [`Access::Burn`] the drive must be free: not mounted,
/// not open in another process (said by pid and command), and the exclusive open must succeed.
pub fn open_device(spec: &Path, access: Access) -> Result<Box<dyn Drive>, DeviceError> {
    let text = spec.to_string_lossy();
    if let Some(dir) = text.strip_prefix(SIM_PREFIX) {
        return Ok(Box::new(SimDrive::open_dir(Path::new(dir))?));
    }
    let roots = Roots::system();
    let busy = |roots: &Roots| {
        detect::busy_check(roots, spec).map(|busy| DeviceError::Busy {
            path: text.to_string(),
            busy,
        })
    };
    if access == Access::Burn {
        if let Some(e) = busy(&roots) {
            return Err(e);
        }
    }
    // A refused exclusive open with no holder in /proc is usually a poller that opens the drive
    // exclusively for a moment (udisks does, so as not to disturb burners): try again a few
    // times, as libburn does, before giving up.
    let mut tries = 0;
    loop {
        match SgDrive::open(spec, access) {
            Ok(d) => return Ok(Box::new(d)),
            Err(OpenError::Busy { path }) => {
                if let Some(e) = busy(&roots) {
                    return Err(e);
                }
                tries += 1;
                if tries >= EXCLUSIVE_TRIES {
                    return Err(OpenError::Busy { path }.into());
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Attempts at the exclusive open before reporting the drive busy (one second apart).
const EXCLUSIVE_TRIES: u32 = 3;
