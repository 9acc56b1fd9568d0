//! The image written to the disc and the disc finalised, with a progress bar showing the speed
//! as a multiple of BD 1x; a Ctrl+C meanwhile finishes the disc first.

use std::fs::File;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use crate::cli::{progress_bar, Ui};
use bd_archive::optical::burn::{finalize, write_image, BD_1X_KBS};
use bd_archive::optical::capacity::padded_sectors;
use bd_archive::optical::drive::Drive;
use bd_archive::sector::SECTOR_SIZE;
use bd_archive::util::capacity::human_bytes;

/// Writes and finalises; the tray is locked around this.
pub(super) fn burn_locked(
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
                crate::cli::err_line(&format!(
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
