//! One disc burned: the image checked, a blank disc loaded and fit-checked, the image written and
//! the disc finalised with the tray locked, then read back and checked against the FEC.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::load::load_blank;
use super::readback::read_back;
use super::write::burn_locked;
use crate::cli::args::BurnArgs;
use crate::cli::Ui;
use bd_archive::disc::reader::find_disc_header;
use bd_archive::optical::burn::{check_blank_bd_r, set_write_speed, DriveLimits};
use bd_archive::optical::capacity::{fit_check, padded_sectors};
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::Mmc;
use bd_archive::restore::verify::Health;
use bd_archive::sector::{FileSectorSource, SECTOR_SIZE};
use bd_archive::util::capacity::human_bytes;

/// An image file about to be burned, checked to be one of ours.
struct Image {
    file: File,
    /// The file's length in bytes: a whole, non-zero number of sectors.
    len: u64,
    /// `len` in sectors.
    sectors: u64,
    /// The capacity the image was planned for (its disc header's), for the fit check.
    planned: u64,
}

/// Burns one disc; returns the read-back health (Ok with --no-verify). `wrote` is set once the
/// disc is about to be written (an error before that leaves the disc untouched).
#[allow(clippy::too_many_arguments)]
pub(super) fn burn_one(
    d: &mut dyn Drive,
    args: &BurnArgs,
    ui: &Ui,
    num: u32,
    last: u32,
    path: &Path,
    speed: Option<u32>,
    wrote: &mut bool,
) -> Result<Health> {
    let image = open_image(path)?;
    let image_sectors = image.sectors;
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
        fit_check(image_sectors, image.planned, free)
            .map_err(|e| anyhow!("the disc is too small: {e}"))?;
    }
    ui.say(&format!(
        "Disc {num}/{last}: {} ({}) onto {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        human_bytes(image.len),
        info.describe()
    ));
    if let Some(kbs) = speed {
        apply_speed(
            d,
            ui,
            kbs,
            free.unwrap_or_else(|| padded_sectors(image_sectors)),
            num,
            last,
        );
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
    let burned = burn_locked(d, ui, &image.file, image_sectors, num, last);
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

/// Opens the image at `path` and checks it is a bd-archive image (whole sectors, a disc header).
fn open_image(path: &Path) -> Result<Image> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    if len % SECTOR_SIZE as u64 != 0 || len == 0 {
        bail!(
            "{}: not a whole number of 2048-byte sectors; not a bd-archive image",
            path.display()
        );
    }
    let sectors = len / SECTOR_SIZE as u64;
    let src = FileSectorSource::from_file(
        file.try_clone()
            .with_context(|| format!("opening {}", path.display()))?,
        path,
    )?;
    let header = find_disc_header(&src)
        .ok_or_else(|| anyhow!("{}: no disc header; not a bd-archive image", path.display()))?;
    Ok(Image {
        file,
        len,
        sectors,
        planned: header.capacity_sectors,
    })
}

/// `-S`: asks the drive for `kbs` over the whole disc (`disc_end` sectors); a refusal is a warning.
fn apply_speed(d: &mut dyn Drive, ui: &Ui, kbs: u32, disc_end: u64, num: u32, last: u32) {
    // SET STREAMING covers the whole disc (libburn, growisofs), not just the image.
    let end = u32::try_from(disc_end.saturating_sub(1)).unwrap_or(u32::MAX);
    let choice = set_write_speed(d, kbs, end);
    if choice.refused.is_some() {
        ui.warn(&choice.describe());
    } else {
        ui.say(&format!("Disc {num}/{last}: {}", choice.describe()));
    }
}
