//! `drive`: what is in the optical drive (like dvd+rw-mediainfo), tray open/close, and a plain
//! whole-disc copy; plus the drive-sized capacity `create -D` uses.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::cli::args::DriveArgs;
use crate::cli::{progress_bar, Ui};
use bd_archive::optical::detect::{busy_check, select_drive, Roots};
use bd_archive::optical::device::open_device;
use bd_archive::optical::drive::Drive;
use bd_archive::optical::medium::{self, MediumReport};
use bd_archive::optical::mmc::{Mmc, LONG_TIMEOUT};
use bd_archive::optical::response::profile_name;
use bd_archive::optical::sg::{exclusive_open_possible, Access};
use bd_archive::optical::trace::Traced;
use bd_archive::sector::{CLUSTER_SECTORS, SECTOR_SIZE};
use bd_archive::util::capacity::{human_bytes, MIN_CAPACITY_BYTES};

/// How long a freshly closed tray may take to spin the disc up.
const SETTLE: Duration = Duration::from_secs(30);

/// Opens the drive for queries and reads; with `-v` every command is shown on stderr.
fn open_traced(dev: &Path, ui: &Ui) -> Result<Box<dyn Drive>> {
    let d = open_device(dev, Access::Read)?;
    Ok(if ui.verbose {
        Box::new(Traced::new(d, |line: &str| super::err_line(line)))
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

fn print_report(r: &MediumReport, ui: &Ui) {
    ui.info(&format!("drive:      {}", r.drive));
    if !r.inquiry.revision.is_empty() {
        ui.info(&format!("firmware:   {}", r.inquiry.revision));
    }
    if !r.medium_present {
        ui.info("medium:     none (tray open or empty)");
        return;
    }
    if let Some(p) = r.profile {
        ui.info(&format!(
            "medium:     {} (profile 0x{p:04X})",
            profile_name(p)
        ));
    }
    if let Some(d) = &r.disc {
        ui.info(&format!("disc:       {}", medium::status_text(d)));
    }
    if let Some((n, bl)) = r.readable {
        ui.info(&format!(
            "readable:   {n} sectors of {bl} bytes ({})",
            human_bytes(n.saturating_mul(u64::from(bl)))
        ));
    }
    if let Some(t) = &r.track {
        ui.info(&format!(
            "track:      start {}, next writable {}, free {} sectors",
            t.start,
            t.next_writable
                .map_or_else(|| "none".to_string(), |n| n.to_string()),
            t.free_blocks
        ));
    }
    if let Some(f) = r.formats.first() {
        ui.info(&format!(
            "format:     {} sectors (descriptor type {})",
            f.blocks,
            f.type_byte & 0x03
        ));
    }
    match medium::blank_bd_r_sectors(r) {
        Ok(free) => ui.info(&format!(
            "blank:      {free} sectors free ({}); `create -D` sizes discs to this",
            human_bytes(free * SECTOR_SIZE as u64)
        )),
        Err(_) if r.blank_free.is_some() => ui.info(&format!(
            "blank:      {} sectors free, but bd-archive burns only BD-R",
            r.blank_free.unwrap_or(0)
        )),
        Err(_) => {}
    }
    for n in &r.notes {
        ui.detail(&format!("note:       {n}"));
    }
}

fn json_report(r: &MediumReport) -> serde_json::Value {
    serde_json::json!({
        "drive": r.drive,
        "vendor": r.inquiry.vendor,
        "product": r.inquiry.product,
        "revision": r.inquiry.revision,
        "medium_present": r.medium_present,
        "profile": r.profile,
        "profile_name": r.profile.map(profile_name),
        "disc_status": r.disc.as_ref().map(medium::status_text),
        "readable_sectors": r.readable.map(|(n, _)| n),
        "block_length": r.readable.map(|(_, b)| b),
        "blank_free_sectors": r.blank_free,
        "burnable_blank_sectors": medium::blank_bd_r_sectors(r).ok(),
        "notes": r.notes,
    })
}

/// Copies sectors 0..READ CAPACITY to `out` with plain READ(12)s, printing size, speed, SHA-256.
fn read_whole_disc(
    drive: &mut Box<dyn Drive>,
    r: &MediumReport,
    out: &Path,
    ui: &Ui,
) -> Result<()> {
    let Some((sectors, block)) = r.readable else {
        bail!(
            "{}: the drive reports no readable sectors (blank or no disc)",
            r.drive
        );
    };
    if block as usize != SECTOR_SIZE {
        bail!(
            "{}: the disc has {block}-byte blocks; bd-archive reads 2048-byte data discs",
            r.drive
        );
    }
    let Ok(total) = u32::try_from(sectors) else {
        bail!("{}: implausible disc size of {sectors} sectors", r.drive);
    };
    let mut file = std::fs::File::create(out)
        .with_context(|| format!("--read-to {}: cannot create", out.display()))?;
    let mut hash = Sha256::new();
    // A plain copy: as many sectors per READ(12) as the kernel's limit for the drive allows.
    let per_read = bd_archive::optical::transfer::read_sectors(drive.max_transfer()) as u32;
    let mut buf = vec![0u8; per_read as usize * SECTOR_SIZE];
    let pb = progress_bar(ui, Some(u64::from(total) * SECTOR_SIZE as u64), "reading");
    let start = Instant::now();
    let mut lba = 0u32;
    while lba < total {
        if bd_archive::util::interrupt::requested() {
            return Err(bd_archive::util::interrupt::Interrupted(format!(
                ": stopped after {lba} of {total} sectors; {} is incomplete",
                out.display()
            ))
            .into());
        }
        let n = per_read.min(total - lba);
        let chunk = &mut buf[..n as usize * SECTOR_SIZE];
        drive.read_sectors(lba, chunk, LONG_TIMEOUT).with_context(|| {
            format!(
                "{}: reading sectors {lba}..{} (for damaged discs use `bd-archive verify`/`extract`, which retry and repair)",
                r.drive,
                lba + n
            )
        })?;
        hash.update(&*chunk);
        file.write_all(chunk)
            .with_context(|| format!("--read-to {}: write failed", out.display()))?;
        lba += n;
        pb.set_position(u64::from(lba) * SECTOR_SIZE as u64);
    }
    pb.finish_and_clear();
    file.sync_all()
        .with_context(|| format!("--read-to {}: write failed", out.display()))?;
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let bytes = u64::from(total) * SECTOR_SIZE as u64;
    ui.info(&format!(
        "read {total} sectors ({}) to {} in {secs:.1} s ({:.1} MB/s)",
        human_bytes(bytes),
        out.display(),
        bytes as f64 / secs / 1e6
    ));
    ui.info(&format!("sha256:     {:x}", hash.finalize()));
    Ok(())
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
