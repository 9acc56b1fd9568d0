//! `extract` from a drive: discs are inserted one at a time, in any order; each is read into a
//! rescue copy in the work directory (with a ddrescue mapfile, so a re-inserted disc — or the
//! same disc in another drive — only has its missing sectors read), checked against its FEC
//! (retrying only what the FEC cannot rebuild), and the user is told which discs are still needed.
//! The restore then runs over the copies exactly as over image files.
//!
//! - `chain_progress`: which discs were read and which are still needed;
//! - `next_disc`: the eject and the prompt for the next disc.

mod chain_progress;
mod next_disc;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::cli::{explain, Ui};
use bd_archive::disc::image_name::{image_file_name, ImageKind};
use bd_archive::disc::reader::RepairSettings;
use bd_archive::fec;
use bd_archive::format::disc_header::DiscHeader;
use bd_archive::optical::disc_source::DriveSectorSource;
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::Mmc;
use bd_archive::restore::drive::{
    self as drive_read, describe_reading, identify, open_source, read_disc, wait_for_disc,
    DriveReadOptions,
};
use bd_archive::sector::SectorSource;
use chain_progress::ChainProgress;
use next_disc::{next_disc, NextDisc};

/// Identity of a disc: chain id, generation, disc number.
type DiscKey = ([u8; 16], u32, u32);

/// Which discs [`collect_discs`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// `extract -D`: every disc the restore of the chain needs; stops asking once what is still
    /// missing can be rebuilt from the parity discs read.
    Chain,
    /// `verify -D`: every disc of the first disc's generation (its set), parity discs included;
    /// says when the discs read already suffice, and goes on until all are read or the user stops.
    Set,
}

/// Reads discs from the drive until the chain (or set) is complete or the user says so; returns
/// the rescue copies (image files under `workdir/discs`).
pub fn collect_discs(
    opts: &DriveReadOptions,
    workdir: &Path,
    settings: &RepairSettings,
    mode: Collect,
    ui: &Ui,
) -> Result<Vec<PathBuf>> {
    let dir = workdir.join("discs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut drive = drive_read::open_drive(opts).map_err(explain::drive_read)?;
    let name = drive.name();
    if !wait_for_disc(drive.as_mut()).map_err(explain::drive_read)? {
        let run = match mode {
            Collect::Chain => "extract",
            Collect::Set => "verify",
        };
        bail!("{name}: no disc in the drive; insert a disc of the archive (any one, in any order) and run {run} again");
    }
    ui.say(&format!(
        "Reading discs from {name}: insert them in any order; each is copied to {} and checked.",
        dir.display()
    ));
    let mut copies: BTreeMap<DiscKey, PathBuf> = BTreeMap::new();
    let mut progress = ChainProgress::default();
    let mut chain: Option<[u8; 16]> = None;
    // Set mode: the generation of the first disc read, and whether its disk need was said.
    let mut set: Option<u32> = None;
    let mut need_said = false;
    let mut seen_this_run: HashSet<DiscKey> = HashSet::new();
    loop {
        explain::apply_read_speed(drive.as_mut(), opts, ui);
        let (header, d) = identify(drive).map_err(explain::drive_read)?;
        drive = d;
        match header {
            None => ui.warn(&format!(
                "{name}: this disc has no bd-archive disc header (not ours, or LBA 0 and its copy are both unreadable); skipped"
            )),
            Some(h) if chain.is_some_and(|c| c != h.chain_id) => ui.warn(&format!(
                "{name}: this disc belongs to chain '{}', not to the chain being restored; skipped",
                h.name
            )),
            Some(h)
                if set.is_some_and(|g| h.sections.last().map(|s| s.generation) != Some(g)) =>
            {
                ui.warn(&format!(
                    "{name}: this disc is not of generation {} of '{}' (the set being verified); skipped",
                    set.unwrap_or_default(),
                    h.name
                ))
            }
            Some(h) => {
                // A --pack-with disc also holds the generation it was packed onto: it is known
                // by its own (newest) generation, so it is not taken for that older disc.
                let section = h.sections.last().context("disc header without sections")?;
                let key = (h.chain_id, section.generation, section.disc);
                if mode == Collect::Set {
                    set = Some(section.generation);
                }
                chain = Some(h.chain_id);
                if !seen_this_run.insert(key) && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    // An unattended drive gave us a disc we already have: nothing more will come.
                    break;
                }
                let (kind, number, file) = rescue_name(&h, section.generation, section.disc);
                let img = dir.join(&file);
                ui.say(&format!(
                    "{name}: '{}' generation {} {} {number}",
                    h.name,
                    section.generation,
                    if kind == "parity" { "parity disc" } else { "disc" }
                ));
                let (d, readable) = rescue_copy(drive, &img, opts, ui)?;
                drive = d;
                progress.record(&img, &h, readable, settings);
                copies.insert(key, img);
            }
        }
        if let (Collect::Set, Some(g)) = (mode, set) {
            let needs = progress.set_needs(g);
            if !need_said {
                need_said = say_disk_need(&needs, &dir, ui);
            }
            if needs.missing.is_empty() {
                ui.say("All discs of the set are read.");
                let _ = drive.tray(true);
                break;
            }
            let enough = match needs.enough {
                true => " — the discs read already suffice: the rest is rebuildable from the parity discs read (q = verify now)",
                false => "",
            };
            let ask = format!(
                "Still needed: generation {g} {}{enough}",
                needs.missing.join(", ")
            );
            if next_disc(drive.as_mut(), &ask, ui)? == NextDisc::Finish {
                ui.say(&format!(
                    "Stopped with generation {g} {} not read: the verdict covers the discs read.",
                    needs.missing.join(", ")
                ));
                break;
            }
            continue;
        }
        let (needed, rebuilt) = progress.still_needed();
        if needed.is_empty() {
            ui.say(&match rebuilt.is_empty() {
                true => "All discs of the chain are read.".to_string(),
                false => format!(
                    "All discs needed are read: {} will be rebuilt from the parity discs.",
                    rebuilt.join("; ")
                ),
            });
            let _ = drive.tray(true);
            break;
        }
        if next_disc(
            drive.as_mut(),
            &format!("Still needed: {}", needed.join("; ")),
            ui,
        )? == NextDisc::Finish
        {
            break;
        }
    }
    if copies.is_empty() {
        bail!("{name}: no disc of a bd-archive chain was read");
    }
    Ok(copies.into_values().collect())
}

/// Says once, when the set's size is known, how much room its copies take (at most its number of
/// discs × the largest copy so far) and how much `dir` has; true once said.
fn say_disk_need(needs: &chain_progress::SetNeeds, dir: &Path, ui: &Ui) -> bool {
    use bd_archive::util::capacity::human_bytes;
    let Some(discs) = needs.discs else {
        return false;
    };
    let need = u64::from(discs) * needs.largest_copy;
    let free = nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .ok();
    let room = match free {
        Some(f) if f < need => format!(
            "; only {} free there — pass -w DIR on a larger disk",
            human_bytes(f)
        ),
        Some(f) => format!(" ({} free)", human_bytes(f)),
        None => String::new(),
    };
    ui.say(&format!(
        "The set has {discs} discs: their copies need up to {} in {}{room}.",
        human_bytes(need),
        dir.display()
    ));
    true
}

/// The rescue copy's kind, number and file name: a parity disc is disc n + p of its set, named
/// as such.
fn rescue_name(h: &DiscHeader, generation: u32, disc: u32) -> (&'static str, u32, String) {
    let (kind, number) = match h.parity() {
        Some(p) => ("parity", p.index),
        None => ("disc", disc),
    };
    let file = image_file_name(
        &sanitize(&h.name),
        generation,
        if kind == "parity" {
            ImageKind::Parity
        } else {
            ImageKind::Data
        },
        number,
    );
    (kind, number, file)
}

/// Reads the disc in the drive into its rescue copy `img` (only what its mapfile lacks) and checks
/// it with the FEC; gives the drive back, and whether the copy is readable.
fn rescue_copy(
    drive: Box<dyn Drive>,
    img: &Path,
    opts: &DriveReadOptions,
    ui: &Ui,
) -> Result<(Box<dyn Drive>, bool)> {
    let map = img.with_extension("map");
    let src = open_source(drive, Some((img, &map))).map_err(explain::drive_read)?;
    let readable = if src.map().is_complete() {
        ui.say("  already read completely in an earlier pass");
        true
    } else {
        read_disc(&src, ui);
        let readable = check_with_fec(&src, opts.retries, ui)?;
        src.save_map()?;
        ui.say(&format!("  {}", describe_reading(&src)));
        readable
    };
    let drive = Arc::into_inner(src)
        .context("internal: the disc source is still shared")?
        .into_drive();
    Ok((drive, readable))
}

/// Scans the copy against the disc's FEC and re-reads (through the drive) the unreadable
/// sectors of stripes the FEC cannot rebuild; false when the damage stays beyond the FEC.
fn check_with_fec(src: &Arc<DriveSectorSource>, retries: u32, ui: &Ui) -> Result<bool> {
    let header = bd_archive::disc::reader::find_disc_header(src.as_ref());
    let Ok(located) = fec::locate(src.as_ref(), header.map(|h| h.fec_lba)) else {
        ui.warn(&format!(
            "{}: the FEC data of this disc cannot be located; whatever was read is used as is",
            src.describe()
        ));
        return Ok(false);
    };
    let scan = fec::scan(src.as_ref(), &located, &|_| {})?;
    if scan.is_repairable() {
        if !scan.is_clean() {
            ui.say(&format!(
                "  damaged: {} data sector(s) lost, all rebuildable from the FEC (worst stripe {} of {})",
                scan.lost_data_sectors(),
                scan.max_stripe_loss(),
                scan.parity_per_stripe()
            ));
        }
        return Ok(true);
    }
    let retry = drive_read::fec_retry(src, retries, ui);
    if retry(&scan) {
        let again = fec::scan(src.as_ref(), &located, &|_| {})?;
        if again.is_repairable() {
            ui.say("  the retries recovered enough: the FEC can now rebuild the rest");
            return Ok(true);
        }
    }
    ui.warn(&format!(
        "{}: more is lost than the FEC can rebuild; files on the lost sectors will be listed in corrupted-files.txt unless the generation's parity discs rebuild it (another drive may read more: re-insert the disc there, the map continues)",
        src.describe()
    ));
    Ok(false)
}

/// A chain name as a file name component.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
