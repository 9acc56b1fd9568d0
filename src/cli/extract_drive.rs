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
use bd_archive::disc::reader::{Disc, RepairSettings};
use bd_archive::fec;
use bd_archive::format::catalog::DiscMap;
use bd_archive::format::disc_header::DiscHeader;
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
                let section = h.sections.first().context("disc header without sections")?;
                let key = (h.chain_id, section.generation, section.disc);
                chain = Some(h.chain_id);
                if !seen_this_run.insert(key) && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    // An unattended drive gave us a disc we already have: nothing more will come.
                    break;
                }
                // A parity disc is disc n + p of its set: named as such.
                let (kind, number) = match h.parity() {
                    Some(p) => ("parity", p.index),
                    None => ("disc", section.disc),
                };
                let stem = format!(
                    "{}-gen{}-{kind}{number:04}",
                    sanitize(&h.name),
                    section.generation,
                );
                let (img, map) = (dir.join(format!("{stem}.iso")), dir.join(format!("{stem}.map")));
                ui.say(&format!(
                    "{name}: '{}' generation {} {} {number}",
                    h.name,
                    section.generation,
                    if kind == "parity" { "parity disc" } else { "disc" }
                ));
                let src = open_source(drive, Some((&img, &map)))?;
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
                drive = Arc::into_inner(src)
                    .context("internal: the disc source is still shared")?
                    .into_drive();
                progress.record(&img, &h, readable, settings);
                copies.insert(key, img);
            }
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

/// Per generation: what was read so far, and what the set holds once it is known.
#[derive(Default)]
struct GenerationProgress {
    /// Data disc numbers read.
    have: BTreeSet<u32>,
    /// Data discs read whose damage is beyond their own FEC.
    broken: BTreeSet<u32>,
    /// All data disc numbers: from the catalog (on the last disc), or 1..=n from a parity disc.
    all: Option<Vec<u32>>,
    /// Parity discs read (their index p).
    parity: BTreeSet<u32>,
}

/// Per generation: the discs read so far. Filled once per disc copy, so asking what is still
/// missing never re-opens the copies already read.
#[derive(Default)]
struct ChainProgress(BTreeMap<u32, GenerationProgress>);

impl ChainProgress {
    /// Takes note of the disc (every generation section of it) in the copy at `path`; `readable`
    /// is false when its damage is beyond its own FEC.
    fn record(
        &mut self,
        path: &Path,
        header: &DiscHeader,
        readable: bool,
        settings: &RepairSettings,
    ) {
        if let Some(p) = header.parity() {
            // A parity disc (FORMAT.md §10) names n: the set's data discs are 1..=n.
            let g = self.0.entry(p.generation).or_default();
            g.parity.insert(p.index);
            g.all.get_or_insert_with(|| (1..=p.data_discs).collect());
            return;
        }
        let Ok(discs) = Disc::open_all(path, settings) else {
            return;
        };
        for d in discs {
            let g = self.0.entry(d.generation()).or_default();
            g.have.insert(d.number());
            if !readable {
                g.broken.insert(d.number());
            }
            if let Some(c) = &d.catalog {
                g.all = Some(c.discs.iter().map(|r| r.disc).collect());
                // Its disc map names the discs of earlier generations not read yet.
                let (map, _) = DiscMap::checked(&c.disc_map, d.generation());
                for e in 1..d.generation() {
                    let earlier = self.0.entry(e).or_default();
                    if earlier.all.is_none() && map.has(e) {
                        earlier.all = Some(map.discs(e));
                    }
                }
            }
        }
    }

    /// What is still missing, as readable phrases (empty: the chain is complete, or what lacks
    /// can be rebuilt from the parity discs read), and what the parity discs will rebuild.
    fn still_needed(&self) -> (Vec<String>, Vec<String>) {
        let newest = self.0.keys().next_back().copied().unwrap_or(0);
        let mut needed = Vec::new();
        let mut rebuilt = Vec::new();
        for g in 1..=newest {
            let Some(p) = self.0.get(&g) else {
                needed.push(format!("generation {g} (no disc read yet)"));
                continue;
            };
            let Some(all) = &p.all else {
                needed.push(format!(
                    "generation {g}: its last disc (which holds the catalog) — read so far: disc(s) {}",
                    join(&p.have.iter().copied().collect::<Vec<_>>())
                ));
                continue;
            };
            let missing: Vec<u32> = all
                .iter()
                .copied()
                .filter(|n| !p.have.contains(n))
                .collect();
            let lost = missing.len() + p.broken.len();
            if lost == 0 {
                continue;
            }
            if lost <= p.parity.len() {
                let mut discs: Vec<u32> = missing.iter().chain(&p.broken).copied().collect();
                discs.sort_unstable();
                rebuilt.push(format!("generation {g} disc(s) {}", join(&discs)));
                continue;
            }
            // A parity disc is asked for only once the set is known to need one (a disc broken
            // beyond its FEC, or parity discs already read): a set without them cannot say so.
            let more = lost - p.parity.len();
            let parity_too = !p.broken.is_empty() || !p.parity.is_empty();
            let why = match p.broken.is_empty() {
                true => String::new(),
                false => format!(
                    "; disc(s) {} damaged beyond their own FEC",
                    join(&p.broken.iter().copied().collect::<Vec<_>>())
                ),
            };
            needed.push(match (missing.is_empty(), parity_too) {
                (false, false) => format!("generation {g} disc(s) {}", join(&missing)),
                (false, true) => format!(
                    "generation {g} disc(s) {}, or {more} more parity disc(s) if the set has them ({} read{why})",
                    join(&missing),
                    p.parity.len()
                ),
                (true, _) => format!(
                    "generation {g}: {more} more parity disc(s) if the set has them ({} read{why})",
                    p.parity.len()
                ),
            });
        }
        (needed, rebuilt)
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
