//! `verify` of the disc in a drive (`-D`, `/dev/srN`, `--map`, `--retries`, `--read-speed`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::args::VerifyArgs;
use crate::cli::{explain, Ui};
use bd_archive::restore::verify::{verify_source, VerifyReport};
use bd_archive::sector::SectorSource;

/// Verifies the disc in a drive: reads it defensively (trimming and skipping unreadable areas),
/// checks it against its FEC, and retries only the sectors the FEC cannot rebuild.
pub(super) fn verify_drive(
    device: Option<PathBuf>,
    args: &VerifyArgs,
    repair_to: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<VerifyReport> {
    use bd_archive::restore::drive as dr;
    let opts = dr::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let mut drive = dr::open_drive(&opts).map_err(explain::drive_read)?;
    if !dr::wait_for_disc(drive.as_mut()).map_err(explain::drive_read)? {
        bail!(
            "{}: no disc in the drive; insert the disc to verify and run again",
            drive.name()
        );
    }
    explain::apply_read_speed(drive.as_mut(), &opts, ui);
    let rescue = args
        .map
        .as_deref()
        .map(dr::rescue_paths)
        .transpose()
        .map_err(explain::drive_read)?;
    let src = dr::open_source(
        drive,
        rescue.as_ref().map(|(i, m)| (i.as_path(), m.as_path())),
    )
    .map_err(explain::drive_read)?;
    if rescue.is_some() {
        // A rescue copy is a whole image (like ddrescue's): read everything once into it, then
        // check the copy; the drive is asked again only for what is missing.
        dr::read_disc(&src, ui);
    }
    let name = src.describe();
    let retry = dr::fec_retry(&src, opts.retries, ui);
    let result = verify_source(&name, src.clone(), repair_to, memory, ui, Some(&retry))
        .map_err(explain::verify);
    if let Err(e) = src.save_map() {
        ui.warn(&e.to_string());
    }
    ui.say(&dr::describe_reading(&src));
    result
}
