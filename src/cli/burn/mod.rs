//! `burn`: write the images of OUT/images to blank BD-R discs, one disc at a time, each checked
//! by reading it back through the drive (FEC checksums, as `verify` checks an image).
//!
//! Per disc: ask for a blank disc (tray opened, closed, wait until ready), identify it (refuse a
//! non-blank BD-R, saying what is on it, and BD-RE/DVD), fit check against the drive-reported
//! free blocks, burn ([`bd_archive::optical::burn`]), read back, eject. OUT/burn-log.json records which
//! discs were burned and verified, so the `--start N` hint is right after a failure or Ctrl+C.
//!
//! - `images`: the images of OUT in burn order; `log`: OUT/burn-log.json;
//! - `disc`: one disc, from the image check to the eject, with `load` (the blank disc),
//!   `write` (write and finalise) and `readback` (the FEC check through the drive).

mod disc;
mod images;
mod load;
mod log;
mod readback;
mod write;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::args::BurnArgs;
use crate::cli::Ui;
use bd_archive::optical::burn::parse_speed;
use bd_archive::optical::device::open_device;
use bd_archive::restore::verify::Health;
use bd_archive::util::interrupt::{self, Interrupted};
use disc::burn_one;
use images::list_images;
use load::Cancelled;
pub use log::BURN_LOG;
use log::{attempt_of, BurnLog};

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
        warn_already_burned(&log, &images, out, ui);
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
        if interrupt::requested() {
            return Err(Interrupted(format!(
                " before disc {num}/{last}; resume with: {}",
                resume_hint(out, num)
            ))
            .into());
        }
        let mut wrote = false;
        let result = burn_one(drive.as_mut(), args, ui, num, last, path, speed, &mut wrote);
        let attempt = attempt_of(&result, wrote, num, path, &drive_name);
        // An attempt that wrote nothing does not hide an earlier good burn of the same disc.
        if wrote || !log.done(num) {
            log.record(attempt);
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
            Err(e) => return stopped(e, num, last, path, out, ui),
        }
        ui.info(&format!("Disc {num}/{last} done."));
        next_disc_hint(&images, num, last, out, ui)?;
    }
    ui.info(&format!("All discs burned ({total} in {}).", out.display()));
    Ok(match worst {
        Health::Ok => crate::cli::exit::OK,
        Health::Repairable => crate::cli::exit::DAMAGED,
        Health::Broken => crate::cli::exit::BROKEN,
    })
}

/// `burn` without `--start` when the log says the first discs (or all) were burned already.
fn warn_already_burned(log: &BurnLog, images: &[(u32, PathBuf)], out: &Path, ui: &Ui) {
    match images.iter().map(|i| i.0).find(|&n| !log.done(n)) {
        Some(first_todo) if first_todo > 1 => ui.warn(&format!(
            "{BURN_LOG} says discs 1..{} were already burned; to burn only the rest: {}",
            first_todo - 1,
            resume_hint(out, first_todo)
        )),
        None => ui.warn(&format!(
            "{BURN_LOG} says all {} discs were already burned; burning another copy",
            images.len()
        )),
        _ => {}
    }
}

/// The outcome of a run that stopped at disc `num` with `e`: `q` at the prompt ends it normally;
/// Ctrl+C and failures are errors that say how to resume.
fn stopped(e: anyhow::Error, num: u32, last: u32, path: &Path, out: &Path, ui: &Ui) -> Result<i32> {
    if e.downcast_ref::<Cancelled>().is_some() {
        ui.info(&format!(
            "Cancelled. Resume with: {}",
            resume_hint(out, num)
        ));
        return Ok(crate::cli::exit::OK);
    }
    if e.downcast_ref::<Interrupted>().is_some() {
        return Err(Interrupted(format!(
            " before disc {num}/{last} was written; resume with: {}",
            resume_hint(out, num)
        ))
        .into());
    }
    Err(anyhow!(
        "disc {num}/{last} ({}): {e:#}; resume with: {}",
        path.display(),
        resume_hint(out, num)
    ))
}

/// After disc `num`: how many remain and how to resume from the next one; a Ctrl+C during the
/// disc stops here.
fn next_disc_hint(
    images: &[(u32, PathBuf)],
    num: u32,
    last: u32,
    out: &Path,
    ui: &Ui,
) -> Result<()> {
    let remaining = images.iter().filter(|i| i.0 > num).count();
    if remaining == 0 {
        return Ok(());
    }
    let next = images
        .iter()
        .find(|i| i.0 > num)
        .map(|i| i.0)
        .unwrap_or(num + 1);
    if interrupt::requested() {
        return Err(Interrupted(format!(
            " after disc {num}/{last}; resume with: {}",
            resume_hint(out, next)
        ))
        .into());
    }
    ui.say(&format!(
        "{remaining} disc(s) remaining. Resume: {}",
        resume_hint(out, next)
    ));
    Ok(())
}
