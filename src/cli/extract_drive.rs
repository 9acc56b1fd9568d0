//! `extract` from a drive: discs are inserted one at a time, in any order; each is read into a
//! rescue copy in the work directory (with a ddrescue mapfile, so a re-inserted disc — or the
//! same disc in another drive — only has its missing sectors read), checked against its FEC
//! (retrying only what the FEC cannot rebuild), and the user is told which discs are still needed.
//! The restore then runs over the copies exactly as over image files.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::Ui;
use bd_archive::disc::image_name::{image_file_name, ImageKind};
use bd_archive::disc::reader::{Disc, RepairSettings};
use bd_archive::fec;
use bd_archive::format::catalog::DiscMap;
use bd_archive::optical::disc_source::DriveSectorSource;
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::Mmc;
use bd_archive::restore::drive::{
    self as drive_read, describe_reading, identify, open_source, read_disc, wait_for_disc,
    DriveReadOptions,
};
use bd_archive::sector::SectorSource;

/// Identity of a disc: chain id, generation, disc number.
type DiscKey = ([u8; 16], u32, u32);

/// Reads discs from the drive until the chain is complete or the user says so; returns the
/// rescue copies (image files under `workdir/discs`).
pub fn collect_discs(
    opts: &DriveReadOptions,
    workdir: &Path,
    settings: &RepairSettings,
    ui: &Ui,
) -> Result<Vec<PathBuf>> {
    let dir = workdir.join("discs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut drive = drive_read::open_drive(opts)?;
    let name = drive.name();
    if !wait_for_disc(drive.as_mut())? {
        bail!("{name}: no disc in the drive; insert a disc of the archive (any one, in any order) and run extract again");
    }
    ui.say(&format!(
        "Reading discs from {name}: insert them in any order; each is copied to {} and checked.",
        dir.display()
    ));
    let mut copies: BTreeMap<DiscKey, PathBuf> = BTreeMap::new();
    let mut progress = ChainProgress::default();
    let mut chain: Option<[u8; 16]> = None;
    let mut seen_this_run: HashSet<DiscKey> = HashSet::new();
    loop {
        drive_read::apply_read_speed(drive.as_mut(), opts, ui);
        let (header, d) = identify(drive)?;
        drive = d;
        match header {
            None => ui.warn(&format!(
                "{name}: this disc has no bd-archive disc header (not ours, or LBA 0 and its copy are both unreadable); skipped"
            )),
            Some(h) if chain.is_some_and(|c| c != h.chain_id) => ui.warn(&format!(
                "{name}: this disc belongs to chain '{}', not to the chain being restored; skipped",
                h.name
            )),
            Some(h) => {
                // A --pack-with disc also holds the generation it was packed onto: it is known
                // by its own (newest) generation, so it is not taken for that older disc.
                let section = h.sections.last().context("disc header without sections")?;
                let key = (h.chain_id, section.generation, section.disc);
                chain = Some(h.chain_id);
                if !seen_this_run.insert(key) && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    // An unattended drive gave us a disc we already have: nothing more will come.
                    break;
                }
                let file = image_file_name(
                    &sanitize(&h.name),
                    section.generation,
                    ImageKind::Data,
                    section.disc,
                );
                let img = dir.join(&file);
                let map = img.with_extension("map");
                ui.say(&format!(
                    "{name}: '{}' generation {} disc {}",
                    h.name, section.generation, section.disc
                ));
                let src = open_source(drive, Some((&img, &map)))?;
                if src.map().is_complete() {
                    ui.say("  already read completely in an earlier pass");
                } else {
                    read_disc(&src, ui);
                    check_with_fec(&src, opts.retries, ui)?;
                    src.save_map()?;
                    ui.say(&format!("  {}", describe_reading(&src)));
                }
                drive = Arc::into_inner(src)
                    .context("internal: the disc source is still shared")?
                    .into_drive();
                progress.record(&img, settings);
                copies.insert(key, img);
            }
        }
        let needed = progress.still_needed();
        if needed.is_empty() {
            ui.say("All discs of the chain are read.");
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

/// Scans the copy against the disc's FEC and re-reads (through the drive) the unreadable
/// sectors of stripes the FEC cannot rebuild.
fn check_with_fec(src: &Arc<DriveSectorSource>, retries: u32, ui: &Ui) -> Result<()> {
    let header = bd_archive::disc::reader::find_disc_header(src.as_ref());
    let Ok(located) = fec::locate(src.as_ref(), header.map(|h| h.fec_lba)) else {
        ui.warn(&format!(
            "{}: the FEC data of this disc cannot be located; whatever was read is used as is",
            src.describe()
        ));
        return Ok(());
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
        return Ok(());
    }
    let retry = drive_read::fec_retry(src, retries, ui);
    if retry(&scan) {
        let again = fec::scan(src.as_ref(), &located, &|_| {})?;
        if again.is_repairable() {
            ui.say("  the retries recovered enough: the FEC can now rebuild the rest");
            return Ok(());
        }
    }
    ui.warn(&format!(
        "{}: more is lost than the FEC can rebuild; files on the lost sectors will be listed in corrupted-files.txt (another drive may read more: re-insert the disc there, the map continues)",
        src.describe()
    ));
    Ok(())
}

/// Per generation: the disc numbers read so far and, once the disc holding the generation's
/// catalog was read, the numbers of all its discs. Filled once per disc copy, so asking what is
/// still missing never re-opens the copies already read.
#[derive(Default)]
struct ChainProgress(BTreeMap<u32, (BTreeSet<u32>, Option<Vec<u32>>)>);

impl ChainProgress {
    /// Takes note of the disc (every generation section of it) in the copy at `path`.
    fn record(&mut self, path: &Path, settings: &RepairSettings) {
        let Ok(discs) = Disc::open_all(path, settings) else {
            return;
        };
        for d in discs {
            let (have, all) = self.0.entry(d.generation()).or_default();
            have.insert(d.number());
            if let Some(c) = &d.catalog {
                *all = Some(c.discs.iter().map(|r| r.disc).collect());
                // Its disc map names the discs of earlier generations not read yet.
                let (map, _) = DiscMap::checked(&c.disc_map, d.generation());
                for g in 1..d.generation() {
                    let (_, all) = self.0.entry(g).or_default();
                    if all.is_none() && map.has(g) {
                        *all = Some(map.discs(g));
                    }
                }
            }
        }
    }

    /// What is still missing, as readable phrases (empty: the chain is complete).
    fn still_needed(&self) -> Vec<String> {
        let newest = self.0.keys().next_back().copied().unwrap_or(0);
        let mut needed = Vec::new();
        for g in 1..=newest {
            match self.0.get(&g) {
                None => needed.push(format!("generation {g} (no disc read yet)")),
                Some((have, Some(all))) => {
                    let missing: Vec<u32> =
                        all.iter().copied().filter(|n| !have.contains(n)).collect();
                    if !missing.is_empty() {
                        needed.push(format!("generation {g} disc(s) {}", join(&missing)));
                    }
                }
                Some((have, None)) => needed.push(format!(
                    "generation {g}: its last disc (which holds the catalog) — read so far: disc(s) {}",
                    join(&have.iter().copied().collect::<Vec<_>>())
                )),
            }
        }
        needed
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
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

/// What the user wants next while collecting discs.
#[derive(Debug, PartialEq, Eq)]
pub enum NextDisc {
    /// A disc is in the drive (the user inserted one, or an autoloader did).
    Inserted,
    /// Stop collecting and restore what we have.
    Finish,
}

/// Ejects the disc and waits for the next one. On a terminal: asks (Enter = inserted, `e` =
/// restore now). Without one: closes the tray again (an autoloader or the simulated drive brings
/// the next disc) and reports whether a disc came back.
pub fn next_disc(drive: &mut dyn Drive, still_needed: &str, ui: &Ui) -> Result<NextDisc> {
    let name = drive.name();
    let _ = drive.lock_tray(false);
    drive
        .tray(true)
        .with_context(|| format!("{name}: ejecting the disc"))?;
    if std::io::stdin().is_terminal() {
        eprint!(
            "{}\nInsert the next disc and press Enter (e = restore now with the discs read so far): ",
            bd_archive::util::escape::terminal_text(still_needed)
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0
            || line.trim().eq_ignore_ascii_case("e")
        {
            return Ok(NextDisc::Finish);
        }
    } else {
        ui.say(&format!(
            "{still_needed} (no terminal: loading whatever disc the drive holds next)"
        ));
    }
    if let Err(e) = drive.tray(false) {
        // Slot-loading and laptop drives cannot pull the tray in: the user pushes it.
        ui.detail(&format!("{name}: closing the tray: {e}"));
    }
    Ok(if wait_for_disc(drive)? {
        NextDisc::Inserted
    } else {
        NextDisc::Finish
    })
}
