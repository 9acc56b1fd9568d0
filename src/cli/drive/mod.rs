//! `drive`: what is in the optical drive (like dvd+rw-mediainfo), tray open/close, and a plain
//! whole-disc copy; plus the drive-sized capacity `create -D` uses.
//!
//! - `render`: the report printed; `read_to`: `--read-to`'s whole-disc copy.

mod read_to;
mod render;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::args::DriveArgs;
use crate::cli::Ui;
use bd_archive::optical::detect::{busy_check, select_drive, Roots};
use bd_archive::optical::device::open_device;
use bd_archive::optical::drive::Drive;
use bd_archive::optical::medium;
use bd_archive::optical::mmc::Mmc;
use bd_archive::optical::response::profile_name;
use bd_archive::optical::sg::{exclusive_open_possible, Access};
use bd_archive::optical::trace::Traced;
use bd_archive::sector::{CLUSTER_SECTORS, SECTOR_SIZE};
use bd_archive::util::capacity::{human_bytes, MIN_CAPACITY_BYTES};
use read_to::read_whole_disc;
use render::{json_report, print_report};

/// How long a freshly closed tray may take to spin the disc up.
const SETTLE: Duration = Duration::from_secs(30);

/// Opens the drive for queries and reads; with `-v` every command is shown on stderr.
fn open_traced(dev: &Path, ui: &Ui) -> Result<Box<dyn Drive>> {
    let d = open_device(dev, Access::Read)?;
    Ok(if ui.verbose {
        Box::new(Traced::new(d, |line: &str| crate::cli::err_line(line)))
    } else {
        d
    })
}

/// Runs `drive`.
pub fn run(args: &DriveArgs, ui: &Ui) -> Result<i32> {
    let dev = select_drive(args.device.as_deref())?;
    let mut drive = open_traced(&dev, ui)?;
    if args.eject {
        drive
            .tray(true)
            .with_context(|| format!("{}: opening the tray", drive.name()))?;
        ui.say(&format!("{}: tray opened", drive.name()));
        return Ok(crate::cli::exit::OK);
    }
    if args.load {
        drive
            .tray(false)
            .with_context(|| format!("{}: closing the tray", drive.name()))?;
        ui.say(&format!("{}: tray closed", drive.name()));
    }
    let report = medium::probe(&mut drive, SETTLE)
        .with_context(|| format!("{}: querying the drive", drive.name()))?;
    // What burning would run into: mounts and other holders (/proc), and whether the kernel
    // grants the exclusive open (a plain reader does not block it; a mount or a burner does).
    let busy = busy_check(&Roots::system(), &dev).map(|b| b.to_string());
    let exclusive = exclusive_open_possible(&dev).ok();
    let in_use = match (busy, exclusive) {
        (Some(b), Some(false)) => Some(format!("{b} (the kernel also refuses an exclusive open)")),
        (Some(b), _) => Some(b),
        (None, Some(false)) => Some(
            "another program holds the drive exclusively (the kernel refuses an exclusive open); burning must wait until it is done"
                .to_string(),
        ),
        (None, _) => None,
    };
    if args.json {
        let mut j = json_report(&report);
        j["in_use"] = in_use.into();
        j["exclusive_open"] = exclusive.into();
        j["max_transfer"] = drive.max_transfer().into();
        ui.info(&serde_json::to_string_pretty(&j)?);
    } else {
        print_report(&report, ui);
        ui.info(&format!(
            "transfer:   {} per command (the kernel's limit for this drive)",
            bd_archive::optical::transfer::describe_limit(drive.max_transfer())
        ));
        if let Some(b) = &in_use {
            ui.info(&format!("in use:     {b}"));
        }
    }
    if let Some(out) = &args.read_to {
        read_whole_disc(&mut drive, &report, out, ui)?;
    }
    Ok(crate::cli::exit::OK)
}

/// `create -D DEV` without `-b`: the free sectors of the blank BD-R in the drive, rounded down
/// to whole 64 KiB clusters like `-b`. Prints what it detected.
pub fn capacity_from_drive(dev: &Path, ui: &Ui) -> Result<u64> {
    let mut drive = open_traced(dev, ui)?;
    let report = medium::probe(&mut drive, SETTLE)
        .with_context(|| format!("-D {}: querying the drive", dev.display()))?;
    let free = medium::blank_bd_r_sectors(&report)?;
    let sectors = free / CLUSTER_SECTORS * CLUSTER_SECTORS;
    if sectors * (SECTOR_SIZE as u64) < MIN_CAPACITY_BYTES {
        bail!(
            "{}: the blank disc holds only {free} sectors, less than the 32M minimum",
            report.drive
        );
    }
    let profile = report.profile.map(profile_name).unwrap_or("BD-R");
    ui.info(&format!(
        "Drive {}: blank {profile}, {free} free sectors; discs sized to {sectors} sectors ({})",
        report.drive,
        human_bytes(sectors * SECTOR_SIZE as u64)
    ));
    Ok(sectors)
}
