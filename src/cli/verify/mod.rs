//! `verify`: read every sector of each image once, check it against the FEC checksum tables
//! (data and parity alike), and say: intact (0), damaged but repairable (1), not repairable (2).
//! `--repair -o` writes a repaired copy; the input is never modified.
//!
//! - `drive`: the disc in a drive, read defensively;
//! - `catalog`: a destroyed index's lost files named through a catalog;
//! - `render`: the verdicts and lost files printed, and the set-conflict message;
//! - `set`: generations with parity discs judged (and rebuilt) as sets.

mod catalog;
mod drive;
mod render;
mod set;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::args::VerifyArgs;
use crate::cli::{parse_memory, Ui};
use bd_archive::disc::reader::expand_sources;
use bd_archive::legacy::{self, Sources};
use bd_archive::restore::verify::{verify_disc_dir, verify_image, Health, RepairTarget};
use catalog::{apply_catalog, catalogs_for, catalogs_on_discs};
use drive::{collect_set, verify_drive};
use render::{print_lost, print_report, set_conflict};

/// Runs `verify`.
pub fn run(args: &VerifyArgs, ui: &Ui) -> Result<i32> {
    let targets = match legacy::classify_sources(&args.targets)? {
        Sources::Ours(targets) => targets,
        Sources::Seed(chain) => {
            let health = legacy::verify(&chain, ui)?;
            ui.say(match health {
                Health::Ok => "Verification passed",
                Health::Repairable => {
                    "Repair needed — can be fixed with PAR2 (extract repairs automatically)"
                }
                Health::Broken => "Verification FAILED",
            });
            return Ok(crate::cli::exit::of_health(health));
        }
        Sources::Continued { seed, ours } => {
            // A continued chain: the seed discs here, then ours by our verify.
            if args.json || args.repair {
                bail!("--json/--repair: pass the seed (dar) discs and the bd-archive discs to separate verify runs");
            }
            let a = legacy::verify(&seed, ui)?;
            let ours_args = VerifyArgs {
                targets: ours,
                device: None,
                map: None,
                retries: args.retries,
                read_speed: args.read_speed,
                repair: false,
                output: None,
                json: false,
                memory: args.memory.clone(),
                catalog: args.catalog.clone(),
                workdir: None,
            };
            let b = run(&ours_args, ui)?;
            return Ok(crate::cli::exit::of_health(a).max(b));
        }
    };
    verify_ours(args, &targets, ui)
}

/// Verifies our own discs: images and disc directories, then drives; a destroyed index is
/// mapped through a catalog once all reports are in.
fn verify_ours(args: &VerifyArgs, targets: &[PathBuf], ui: &Ui) -> Result<i32> {
    let memory = parse_memory(args.memory.as_deref())?;
    let (drives, files): (Vec<PathBuf>, Vec<PathBuf>) = targets
        .iter()
        .cloned()
        .partition(|p| bd_archive::optical::device::is_drive_path(p));
    let mut drives: Vec<Option<PathBuf>> = drives.into_iter().map(Some).collect();
    if args.device.is_some() || args.targets.is_empty() {
        drives.push(args.device.clone());
    }
    if args.map.is_some() && drives.len() != 1 {
        bail!("--map: give exactly one drive to read (the map describes one disc)");
    }
    let mut images = if files.is_empty() {
        Vec::new()
    } else {
        expand_sources(&files)?
    };
    // A mounted disc of a parity set is read through its device (the set needs raw sectors).
    let parity =
        |p: &PathBuf| bd_archive::restore::mounted::header_of(p).is_some_and(|h| h.is_parity());
    if images.iter().any(parity) {
        images = bd_archive::restore::mounted::dirs_as_devices(images, ui);
    }
    // A set through a drive: its discs are read into copies, then verified as images are.
    let mut set_copies = Vec::new();
    let mut single_drives = Vec::new();
    for dev in drives {
        match collect_set(dev.clone(), args, memory, ui)? {
            Some(c) => {
                images.extend(c.images.iter().cloned());
                set_copies.push(c);
            }
            None => single_drives.push(dev),
        }
    }
    let drives = single_drives;
    if args.repair && images.len() > 1 {
        if let Some(o) = &args.output {
            if !o.is_dir() {
                bail!(
                    "--repair -o {}: with several images, -o must be an existing directory",
                    o.display()
                );
            }
        }
    }
    let mut reports = Vec::new();
    // Into a directory only what needed repair is written; one named file always is.
    let into_dir = args.repair && args.output.as_deref().is_some_and(Path::is_dir);
    for img in &images {
        let out = args
            .output
            .as_ref()
            .filter(|_| args.repair)
            .map(|o| repair_target(o, img));
        let r = if img.is_dir() {
            if args.repair {
                bail!(
                    "--repair: {} is a disc directory; repair works on image files",
                    img.display()
                );
            }
            verify_disc_dir(img, memory).map_err(crate::cli::explain::verify)?
        } else {
            let target = out.as_deref().map(|path| RepairTarget {
                path,
                copy_intact: !into_dir,
            });
            verify_image(img, target, memory, ui).map_err(crate::cli::explain::verify)?
        };
        if !args.json {
            print_report(&r, ui);
            if into_dir && r.health == Health::Ok {
                ui.info("  intact: no copy written");
            }
            if !r.index_destroyed {
                print_lost(&r, ui);
            }
        }
        reports.push(r);
    }
    for dev in drives {
        let out = args.output.as_deref().filter(|_| args.repair);
        let r = verify_drive(dev, args, out, memory, ui)?;
        if !args.json {
            print_report(&r, ui);
        }
        reports.push(r);
    }
    let mut catalogs = Vec::new();
    if reports.iter().any(|r| r.index_destroyed) {
        catalogs = catalogs_for(args, &files, memory)?;
        if catalogs.is_empty() {
            catalogs = catalogs_on_discs(&images, &reports, memory);
        }
    }
    for r in reports.iter_mut().filter(|r| r.index_destroyed) {
        apply_catalog(r, &catalogs, args.catalog.is_some())?;
        if !args.json {
            print_lost(r, ui);
        }
    }
    if let Some(conflict) = set_conflict(&reports) {
        if args.json {
            ui.info(&render::json(&reports, &[])?);
        }
        bail!("{conflict}");
    }
    let repair_dir = args.output.as_deref().filter(|o| args.repair && o.is_dir());
    let out = set::SetOutput {
        ui,
        json: args.json,
    };
    let sets = set::verify_sets(&images, &reports, repair_dir, memory, out)?;
    if args.json {
        ui.info(&render::json(&reports, &sets)?);
    }
    // A set's verdict replaces its discs' own (a broken disc the set rebuilds is repairable).
    let covered = |r: &&bd_archive::restore::verify::VerifyReport| {
        sets.iter().any(|s| s.covered.contains(&r.image))
    };
    let worst = reports
        .iter()
        .filter(|r| !covered(r))
        .map(|r| r.health)
        .chain(sets.iter().map(|s| s.health))
        .max()
        .unwrap_or(Health::Ok);
    Ok(crate::cli::exit::of_health(worst))
}

fn repair_target(out: &Path, img: &Path) -> PathBuf {
    if out.is_dir() {
        out.join(img.file_name().unwrap_or_default())
    } else {
        out.to_path_buf()
    }
}
