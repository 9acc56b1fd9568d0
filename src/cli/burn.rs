//! `burn`: write the images of OUT/images to blank BD-R discs, one disc at a time, each checked
//! by reading it back through the drive (FEC checksums, as `verify` checks an image).
//!
//! Per disc: ask for a blank disc (tray opened, closed, wait until ready), identify it (refuse a
//! non-blank BD-R, saying what is on it, and BD-RE/DVD), fit check against the drive-reported
//! free blocks, burn ([`bd_archive::optical::burn`]), read back, eject. OUT/burn-log.json records which
//! discs were burned and verified, so the `--start N` hint is right after a failure or Ctrl+C.

use std::fs::File;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::args::BurnArgs;
use crate::cli::{progress_bar, Ui};
use bd_archive::disc::reader::find_disc_header;
use bd_archive::fec;
use bd_archive::optical::burn::{
    check_blank_bd_r, finalize, identify, parse_speed, set_write_speed, write_image, BurnReadback,
    DriveLimits, MediumInfo, BD_1X_KBS,
};
use bd_archive::optical::capacity::{fit_check, padded_sectors};
use bd_archive::optical::device::open_device;
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::{Mmc, Readiness};
use bd_archive::restore::verify::Health;
use bd_archive::sector::{FileSectorSource, SectorSource, SECTOR_SIZE};
use bd_archive::util::capacity::human_bytes;

/// Name of the burn log in OUT.
pub const BURN_LOG: &str = "burn-log.json";
/// How long to wait for a loaded disc to become ready.
const LOAD_WAIT: Duration = Duration::from_secs(120);

/// One disc's last burn attempt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiscRecord {
    pub disc: u32,
    pub image: String,
    /// "ok", "repairable" (burned, read-back found repairable damage), "failed" (the disc was
    /// written and is unusable), "refused" (nothing written: wrong medium, too small, no disc),
    /// "cancelled".
    pub status: String,
    pub drive: String,
    pub finished_unix: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// OUT/burn-log.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BurnLog {
    pub discs: Vec<DiscRecord>,
}

impl BurnLog {
    fn load(out: &Path) -> BurnLog {
        std::fs::read_to_string(out.join(BURN_LOG))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, out: &Path) -> Result<()> {
        let path = out.join(BURN_LOG);
        let tmp = out.join(format!("{BURN_LOG}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    fn record(&mut self, r: DiscRecord) {
        self.discs.retain(|d| d.disc != r.disc);
        self.discs.push(r);
        self.discs.sort_by_key(|d| d.disc);
    }

    fn done(&self, disc: u32) -> bool {
        self.discs
            .iter()
            .any(|d| d.disc == disc && (d.status == "ok" || d.status == "repairable"))
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The images in `OUT/images`, in burn order (sorted by name: generation, data discs before
/// parity discs, number; see `bd_archive::disc::image_name`), each with its position in that
/// order, which is the disc number `--start` and the burn log use. Old `disc_NNNN.iso` names
/// keep their number.
fn list_images(out: &Path) -> Result<Vec<(u32, PathBuf)>> {
    use bd_archive::disc::image_name::parse_image_path;
    let dir = out.join("images");
    let rd = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "{}: no images directory; pass the OUT directory of create (-i OUT)",
            dir.display()
        )
    })?;
    let mut named: Vec<_> = rd
        .flatten()
        .filter_map(|e| Some((parse_image_path(&e.path())?, e.path())))
        .collect();
    if named.is_empty() {
        bail!(
            "{}: no disc images (<name>-gen<GGGG>-disc<NNNN>.iso); run create first",
            dir.display()
        );
    }
    named.sort_by(|a, b| (a.0.burn_order(), &a.1).cmp(&(b.0.burn_order(), &b.1)));
    let all_old = named.iter().all(|(n, _)| n.generation.is_none());
    Ok(named
        .into_iter()
        .zip(1..)
        .map(|((name, path), position)| (if all_old { name.number } else { position }, path))
        .collect())
}

fn resume_hint(out: &Path, disc: u32) -> String {
    format!("bd-archive burn -i {} --start {disc}", out.display())
}

/// Runs `burn`.
pub fn run(args: &BurnArgs, ui: &Ui) -> Result<i32> {
    let out = &args.input;
    let images = list_images(out)?;
    let total = images.len();
    let last = images.last().map(|i| i.0).unwrap_or(0);
    if !images.iter().any(|(n, _)| *n == args.start) {
        bail!(
            "--start {}: there is no disc {} in {} (discs 1..{last})",
            args.start,
            args.start,
            out.join("images").display()
        );
    }
    let speed = match &args.speed {
        Some(s) => Some(parse_speed(s).ok_or_else(|| {
            anyhow!("-S {s}: not a speed; use a multiple of BD 1x like 2, 4x or 6")
        })?),
        None => None,
    };
    let mut log = BurnLog::load(out);
    if args.start == 1 {
        match images.iter().map(|i| i.0).find(|&n| !log.done(n)) {
            Some(first_todo) if first_todo > 1 => ui.warn(&format!(
                "{BURN_LOG} says discs 1..{} were already burned; to burn only the rest: {}",
                first_todo - 1,
                resume_hint(out, first_todo)
            )),
            None => ui.warn(&format!(
                "{BURN_LOG} says all {total} discs were already burned; burning another copy"
            )),
            _ => {}
        }
    }
    let dev = bd_archive::optical::detect::select_drive(args.device.as_deref())?;
    let mut drive = open_device(&dev, bd_archive::optical::sg::Access::Burn)?;
    let drive_name = drive.name();
    ui.say(&format!(
        "Burning {} disc(s) of {} with {drive_name}{}",
        images.iter().filter(|i| i.0 >= args.start).count(),
        out.display(),
        if args.start > 1 {
            format!(", resuming from disc {}", args.start)
        } else {
            String::new()
        }
    ));
    let mut worst = Health::Ok;
    for (num, path) in images.iter().filter(|i| i.0 >= args.start) {
        let num = *num;
        if bd_archive::util::interrupt::requested() {
            return Err(bd_archive::util::interrupt::Interrupted(format!(
                " before disc {num}/{last}; resume with: {}",
                resume_hint(out, num)
            ))
            .into());
        }
        let mut wrote = false;
        let result = burn_one(drive.as_mut(), args, ui, num, last, path, speed, &mut wrote);
        let (status, message) = match &result {
            Ok(Health::Ok) => ("ok", None),
            Ok(Health::Repairable) => ("repairable", None),
            Ok(Health::Broken) => ("failed", Some("read-back check: not repairable".into())),
            Err(e)
                if e.downcast_ref::<Cancelled>().is_some()
                    || e.downcast_ref::<bd_archive::util::interrupt::Interrupted>()
                        .is_some() =>
            {
                ("cancelled", None)
            }
            // Refused before anything was written (wrong medium, too small, no disc).
            Err(e) if !wrote => ("refused", Some(format!("{e:#}"))),
            Err(e) => ("failed", Some(format!("{e:#}"))),
        };
        // An attempt that wrote nothing does not hide an earlier good burn of the same disc.
        if wrote || !log.done(num) {
            log.record(DiscRecord {
                disc: num,
                image: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                status: status.into(),
                drive: drive_name.clone(),
                finished_unix: now_unix(),
                message,
            });
            if let Err(e) = log.save(out) {
                ui.warn(&format!("{e:#}"));
            }
        }
        match result {
            Ok(Health::Broken) => {
                ui.info(&format!(
                    "Disc {num}/{last}: the burned disc failed its read-back check (not repairable); burn it again on a new blank BD-R: {}",
                    resume_hint(out, num)
                ));
                return Ok(crate::cli::exit::BROKEN);
            }
            Ok(h) => worst = worst.max(h),
            Err(e) => {
                if e.downcast_ref::<Cancelled>().is_some() {
                    ui.info(&format!(
                        "Cancelled. Resume with: {}",
                        resume_hint(out, num)
                    ));
                    return Ok(crate::cli::exit::OK);
                }
                if e.downcast_ref::<bd_archive::util::interrupt::Interrupted>()
                    .is_some()
                {
                    return Err(bd_archive::util::interrupt::Interrupted(format!(
                        " before disc {num}/{last} was written; resume with: {}",
                        resume_hint(out, num)
                    ))
                    .into());
                }
                return Err(anyhow!(
                    "disc {num}/{last} ({}): {e:#}; resume with: {}",
                    path.display(),
                    resume_hint(out, num)
                ));
            }
        }
        ui.info(&format!("Disc {num}/{last} done."));
        let remaining = images.iter().filter(|i| i.0 > num).count();
        if remaining > 0 {
            let next = images
                .iter()
                .find(|i| i.0 > num)
                .map(|i| i.0)
                .unwrap_or(num + 1);
            if bd_archive::util::interrupt::requested() {
                return Err(bd_archive::util::interrupt::Interrupted(format!(
                    " after disc {num}/{last}; resume with: {}",
                    resume_hint(out, next)
                ))
                .into());
            }
            ui.say(&format!(
                "{remaining} disc(s) remaining. Resume: {}",
                resume_hint(out, next)
            ));
        }
    }
    ui.info(&format!("All discs burned ({total} in {}).", out.display()));
    Ok(match worst {
        Health::Ok => crate::cli::exit::OK,
        Health::Repairable => crate::cli::exit::DAMAGED,
        Health::Broken => crate::cli::exit::BROKEN,
    })
}

/// The user pressed `q` at a prompt.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
struct Cancelled;

/// Burns one disc; returns the read-back health (Ok with --no-verify). `wrote` is set once the
/// disc is about to be written (an error before that leaves the disc untouched).
#[allow(clippy::too_many_arguments)]
fn burn_one(
    d: &mut dyn Drive,
    args: &BurnArgs,
    ui: &Ui,
    num: u32,
    last: u32,
    path: &Path,
    speed: Option<u32>,
    wrote: &mut bool,
) -> Result<Health> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    if len % SECTOR_SIZE as u64 != 0 || len == 0 {
        bail!(
            "{}: not a whole number of 2048-byte sectors; not a bd-archive image",
            path.display()
        );
    }
    let image_sectors = len / SECTOR_SIZE as u64;
    let src = FileSectorSource::from_file(
        file.try_clone()
            .with_context(|| format!("opening {}", path.display()))?,
        path,
    )?;
    let header = find_disc_header(&src)
        .ok_or_else(|| anyhow!("{}: no disc header; not a bd-archive image", path.display()))?;
    let planned = header.capacity_sectors;

    let info = load_blank(d, args, ui, num, last)?;
    let free = check_blank_bd_r(&info)?;
    if args.skip_fit_check {
        ui.detail("fit check skipped (--skip-fit-check)");
    } else {
        let Some(free) = free else {
            bail!(
                "the drive did not report the free space of the disc ({}); pass --skip-fit-check to burn anyway",
                info.describe()
            );
        };
        fit_check(image_sectors, planned, free)
            .map_err(|e| anyhow!("the disc is too small: {e}"))?;
    }
    ui.say(&format!(
        "Disc {num}/{last}: {} ({}) onto {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        human_bytes(len),
        info.describe()
    ));
    if let Some(kbs) = speed {
        // SET STREAMING covers the whole disc (libburn, growisofs), not just the image.
        let disc_end = free.unwrap_or_else(|| padded_sectors(image_sectors));
        let end = u32::try_from(disc_end.saturating_sub(1)).unwrap_or(u32::MAX);
        let choice = set_write_speed(d, kbs, end);
        if choice.refused.is_some() {
            ui.warn(&choice.describe());
        } else {
            ui.say(&format!("Disc {num}/{last}: {}", choice.describe()));
        }
    }
    ui.say(&format!(
        "Disc {num}/{last}: drive {}",
        DriveLimits::query(d).describe()
    ));
    if bd_archive::util::interrupt::requested() {
        return Err(bd_archive::util::interrupt::Interrupted(String::new()).into());
    }
    *wrote = true;
    if let Err(e) = d.lock_tray(true) {
        ui.warn(&format!("could not lock the tray: {e}"));
    }
    let burned = burn_locked(d, ui, &file, image_sectors, num, last);
    if let Err(e) = d.lock_tray(false) {
        ui.warn(&format!("could not unlock the tray: {e}"));
    }
    if let Err(e) = burned {
        let _ = d.tray(true);
        return Err(e);
    }
    let health = if args.no_verify {
        Health::Ok
    } else {
        let h = read_back(d, ui, image_sectors, num, last)?;
        match h {
            Health::Ok => ui.info(&format!(
                "Disc {num}/{last}: read back OK, every sector matches its checksum"
            )),
            Health::Repairable => ui.info(&format!(
                "Disc {num}/{last}: read back DAMAGED, REPAIRABLE — the FEC can rebuild it, but consider burning it again"
            )),
            Health::Broken => ui.info(&format!("Disc {num}/{last}: read back BROKEN")),
        }
        h
    };
    if let Err(e) = d.tray(true) {
        ui.warn(&format!("could not eject the disc: {e}"));
    }
    Ok(health)
}

/// Writes and finalises; the tray is locked around this.
fn burn_locked(
    d: &mut dyn Drive,
    ui: &Ui,
    file: &File,
    image_sectors: u64,
    num: u32,
    last: u32,
) -> Result<()> {
    let total_bytes = padded_sectors(image_sectors) * SECTOR_SIZE as u64;
    let pb = progress_bar(ui, Some(total_bytes), &format!("disc {num}/{last}"));
    let start = Instant::now();
    let mut warned = false;
    let mut progress = |sectors: u64| {
        let bytes = sectors * SECTOR_SIZE as u64;
        pb.set_position(bytes);
        let secs = start.elapsed().as_secs_f64();
        if secs > 0.5 {
            let x = bytes as f64 / secs / (f64::from(BD_1X_KBS) * 1000.0);
            pb.set_message(format!("{x:.1}x"));
        }
        if !warned && bd_archive::util::interrupt::requested() {
            warned = true;
            pb.suspend(|| {
                super::err_line(&format!(
                    "Ctrl+C: finishing disc {num}/{last} first (stopping now would ruin it); press Ctrl+C again to abort at once"
                ))
            });
        }
    };
    let stats =
        write_image(d, file, image_sectors, &mut progress).map_err(|e| write_failure(e, num))?;
    if stats.repeated > 0 {
        ui.warn(&format!(
            "disc {num}/{last}: {} WRITE(s) sent again after a drive reset or timeout (the drive had not recorded them)",
            stats.repeated
        ));
    }
    if stats.buffer_full > 0 {
        ui.detail(&format!(
            "disc {num}/{last}: the drive's buffer was full {} time(s) (2/04/08); those WRITEs were sent again",
            stats.buffer_full
        ));
    }
    pb.set_message("finalising");
    finalize(d, &mut |step, fraction| match fraction {
        Some(f) => pb.set_message(format!("finalising: {} {:.0} %", step.name(), f * 100.0)),
        None => pb.set_message(format!("finalising: {}", step.name())),
    })
    .context("finalising the disc (SYNCHRONIZE CACHE / CLOSE TRACK / CLOSE SESSION)")?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    ui.detail(&format!(
        "disc {num}/{last}: {} written in {secs:.1} s ({:.1} MB/s)",
        human_bytes(total_bytes),
        total_bytes as f64 / secs / 1e6
    ));
    Ok(())
}

fn write_failure(e: bd_archive::optical::burn::BurnError, num: u32) -> anyhow::Error {
    match e {
        bd_archive::optical::burn::BurnError::Write { lba, source } => anyhow!(
            "writing failed at LBA {lba}: {source}; this BD-R cannot be used again, burn disc {num} on a new blank one"
        ),
        other => anyhow!(other),
    }
}

/// Reads the burned image back through the drive and checks every sector against the FEC
/// checksum tables (the same check as `verify IMAGE`).
fn read_back(d: &mut dyn Drive, ui: &Ui, sectors: u64, num: u32, last: u32) -> Result<Health> {
    let rb = BurnReadback::new(d, sectors);
    let header = find_disc_header(&rb);
    let Ok(located) = fec::locate(&rb, header.as_ref().map(|h| h.fec_lba)) else {
        return Ok(Health::Broken);
    };
    let total = located.layout.protected_sectors() + located.layout.region_sectors();
    let pb = progress_bar(
        ui,
        Some(total * SECTOR_SIZE as u64),
        &format!("checking disc {num}/{last}"),
    );
    let scan = fec::scan(&rb as &dyn SectorSource, &located, &|n| {
        pb.set_position(n * SECTOR_SIZE as u64)
    });
    pb.finish_and_clear();
    let Ok(scan) = scan else {
        return Ok(Health::Broken);
    };
    Ok(if scan.is_clean() {
        Health::Ok
    } else if scan.is_repairable() {
        ui.detail(&format!(
            "disc {num}: {} data and {} parity sector(s) bad",
            scan.lost_data_sectors(),
            scan.lost_parity_sectors()
        ));
        Health::Repairable
    } else {
        Health::Broken
    })
}

/// Gets a blank disc into the drive and identifies it.
fn load_blank(
    d: &mut dyn Drive,
    args: &BurnArgs,
    ui: &Ui,
    num: u32,
    last: u32,
) -> Result<MediumInfo> {
    let interactive = std::io::stdin().is_terminal();
    if args.yes && medium_ready(d)? {
        return Ok(identify(d)?);
    }
    if !interactive {
        if !args.yes {
            bail!(
                "disc {num}/{last}: inserting a disc needs a prompt but there is no terminal; put a blank BD-R in the drive and pass -y"
            );
        }
        // -y without a terminal: close the tray (it may hold the disc) and wait for it.
        let _ = d.tray(false);
        if !d.wait_ready(LOAD_WAIT)? {
            bail!(
                "disc {num}/{last}: no disc in {} (insert a blank BD-R)",
                d.name()
            );
        }
        return Ok(identify(d)?);
    }
    loop {
        let _ = d.tray(true);
        eprint!(
            "Insert a blank BD-R for disc {num}/{last} into {} and press Enter (q = cancel): ",
            d.name()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(Cancelled.into());
        }
        if line.trim().eq_ignore_ascii_case("q") {
            return Err(Cancelled.into());
        }
        let _ = d.tray(false);
        if !d.wait_ready(LOAD_WAIT)? {
            ui.warn("no disc detected");
            continue;
        }
        let info = identify(d)?;
        match check_blank_bd_r(&info) {
            Ok(_) => return Ok(info),
            Err(e) => ui.warn(&format!("{e}")),
        }
    }
}

/// Whether a medium is loaded and ready (waits while it is becoming ready).
fn medium_ready(d: &mut dyn Drive) -> Result<bool> {
    Ok(match d.readiness()? {
        Readiness::Ready => true,
        Readiness::NoMedium => false,
        Readiness::NotYet => d.wait_ready(LOAD_WAIT)?,
    })
}
