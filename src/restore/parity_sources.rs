//! The sources of `extract` completed from the parity discs (FORMAT.md §10): when a generation's
//! parity discs are among the sources and one of its data discs is missing or damaged beyond its
//! own FEC, the data disc is rebuilt first ([`crate::restore::parity::rebuild`]), and extract then
//! reads the rebuilt image as if the disc had been given.
//!
//! ```text
//! complete_from_parity(sources):
//!     sets = the generations with a parity disc among the sources (their headers only)
//!     for each set:
//!         no data disc missing → nothing now: the set stands by (below); no disc is read twice
//!         data discs missing, no more than the parity discs at hand:
//!             rebuild them taking every disc at hand as intact (no check first): the SHA-256
//!             of each rebuilt image (manifest) proves what was read; a mismatch → as below
//!         else: each disc at hand checked against its own FEC (one read) → intact, repairable
//!               or broken; rebuild(set) into WORKDIR/rebuilt/genG (working copies in WORKDIR,
//!               bounded by --memory); a rebuilt image replaces the source it stands for, and
//!               so does a partial one of a disc that cannot be rebuilt whole
//!         the last data disc still lost → the catalog copy of a parity disc stands in for it
//! stand_by(discs opened):  every data disc of a set is told where to turn when its own FEC
//!     fails while it is read (Disc::set_replacement): its set is then checked and rebuilt
//!     (once), and the disc is read from its rebuilt image — so a disc is checked against its
//!     FEC only when reading it found damage (a chunk failing its checksum, an unreadable index)
//! ```
//! A data disc that cannot be rebuilt whole (more discs lost in some columns than P) is read
//! as far as both codes recovered it — a partial image in place of the disc given, every chunk
//! and file read from it checked as usual — and the files stored where nothing is known are
//! listed as not bit-exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::disc::reader::{expand_sources, find_disc_header, Disc, RepairSettings, Replacement};
use crate::fec;
use crate::format::catalog::Catalog;
use crate::restore::parity::{
    find_parity_sets, rebuild, rebuild_keeping_partial, DiscState, ParityError, ParitySet,
    RebuildOptions, RebuildReport,
};
use crate::restore::ExtractError;
use crate::sector::FileSectorSource;
use crate::util::progress::Progress;

/// Sub-directory of the work directory holding the rebuilt images (removed by
/// [`CompletedSources::remove_rebuilt`]).
pub const REBUILT_DIR: &str = "rebuilt";

/// The sources after the parity sets among them were completed.
#[derive(Debug, Default)]
pub struct CompletedSources {
    /// Image files and disc directories to open: the sources as given (expanded), with every
    /// rebuilt data disc's image in place of (or in addition to, when it was missing) its own.
    pub paths: Vec<PathBuf>,
    /// Catalog copies (from a parity disc) of the generations whose last data disc is still lost.
    pub catalogs: Vec<(u32, Catalog)>,
    /// Where rebuilt images were written (None: nothing was rebuilt).
    pub rebuilt_dir: Option<PathBuf>,
    /// Data discs rebuilt, as (generation, disc).
    pub rebuilt: Vec<(u32, u32)>,
    /// The parity sets, for [`CompletedSources::stand_by`]; rebuilt data discs count as given.
    sets: Vec<ParitySet>,
    /// Work dir and memory budget of the rebuilds.
    workdir: PathBuf,
    memory: u64,
    /// The sets standing by while the discs are read (after [`CompletedSources::stand_by`]).
    standby: Option<Arc<ParityStandby>>,
}

impl CompletedSources {
    /// Gives each generation whose catalog disc is lost the catalog copy of its parity disc: it
    /// goes to the first disc of that generation at hand (read as if that disc held it).
    pub fn lend_catalogs(&mut self, by_gen: &mut BTreeMap<u32, Vec<Disc>>) {
        for (g, cat) in self.catalogs.drain(..) {
            if let Some(discs) = by_gen.get_mut(&g) {
                if discs.iter().all(|d| d.catalog.is_none()) {
                    if let Some(first) = discs.first_mut() {
                        first.catalog = Some(cat);
                    }
                }
            }
        }
    }

    /// Lets every opened data disc of a parity set turn to the set when its own FEC fails while
    /// it is read; a disc already known to be damaged beyond its FEC (its index or catalog
    /// needed a repair that fell short), or not opened at all, is rebuilt now and opened from
    /// its rebuilt image.
    pub fn stand_by(
        &mut self,
        by_gen: &mut BTreeMap<u32, Vec<Disc>>,
        settings: &RepairSettings,
        progress: Arc<dyn Progress + Send + Sync>,
    ) {
        if self.sets.is_empty() {
            return;
        }
        let standby = Arc::new(ParityStandby {
            sets: std::mem::take(&mut self.sets),
            workdir: self.workdir.clone(),
            memory: self.memory,
            progress,
            done: Mutex::new(BTreeMap::new()),
        });
        for set in &standby.sets {
            let discs = by_gen.entry(set.generation).or_default();
            for m in set.data.iter().filter(|m| m.path.is_some()) {
                let i = discs.iter().position(|d| d.number() == m.disc);
                let fell_short = i.is_none_or(|i| {
                    discs[i]
                        .repair_summary()
                        .is_some_and(|r| r.map_or(true, |r| r.unrepaired > 0))
                });
                let replaced = match fell_short {
                    true => standby.replacement(set.generation, m.disc),
                    false => None,
                };
                let reopened = replaced.and_then(|(p, _)| Disc::open_all(&p, settings).ok());
                match (reopened.and_then(|mut v| v.pop()), i) {
                    (Some(d), Some(i)) => discs[i] = d,
                    (Some(d), None) => discs.push(d),
                    (None, _) => {}
                }
            }
            let hook: Arc<dyn Replacement> = standby.clone();
            for d in discs.iter() {
                d.set_replacement(hook.clone());
            }
        }
        by_gen.retain(|_, v| !v.is_empty());
        self.standby = Some(standby);
    }

    /// Data discs rebuilt so far, by [`complete_from_parity`] and while the discs were read.
    pub fn rebuilt_count(&self) -> usize {
        let later = self.standby.as_ref().map_or(0, |s| s.rebuilt());
        self.rebuilt.len() + later
    }

    /// Removes the rebuilt images (the extract has read them; `verify --repair -o DIR` writes
    /// them to keep).
    pub fn remove_rebuilt(&self) {
        if let Some(dir) = &self.rebuilt_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if self.standby.is_some() {
            let _ = std::fs::remove_dir_all(self.workdir.join(REBUILT_DIR));
        }
    }
}

/// Completes `sources` from the parity discs among them: rebuilds every data disc that is
/// missing where the column code allows, under `workdir` and within `memory` bytes of buffers.
/// Discs at hand are not read here unless a rebuild needs them (see the module doc).
pub fn complete_from_parity(
    sources: &[PathBuf],
    workdir: &Path,
    memory: u64,
    progress: &dyn Progress,
) -> Result<CompletedSources, ExtractError> {
    let mut out = CompletedSources {
        paths: expand_sources(sources)?,
        workdir: workdir.to_path_buf(),
        memory,
        ..Default::default()
    };
    let parity = |p: &PathBuf| crate::restore::mounted::header_of(p).is_some_and(|h| h.is_parity());
    if !out.paths.iter().any(parity) {
        return Ok(out);
    }
    // Mounted discs count as present when their device can be read (raw sectors).
    out.paths = crate::restore::mounted::dirs_as_devices(std::mem::take(&mut out.paths), progress);
    let files: Vec<PathBuf> = out.paths.iter().filter(|p| !p.is_dir()).cloned().collect();
    // Taken as intact until a read says otherwise (checked before any rebuild relies on it).
    let sets = match find_parity_sets(&files, &|_| DiscState::Intact, memory) {
        Ok(s) => s,
        Err(e) => {
            progress.warn(&format!("{e}; restoring from the data discs alone"));
            return Ok(out);
        }
    };
    for mut set in sets {
        let who = format!("'{}' generation {}", set.name, set.generation);
        if set.data.iter().all(|m| m.path.is_none()) {
            continue; // parity discs alone: nothing of the set to restore
        }
        let missing = set.lost().filter(|m| m.disc <= set.data_discs()).count();
        if missing == 0 {
            progress.detail(&format!(
                "{who}: every data disc is at hand; the parity discs stand by in case one is damaged beyond its own FEC"
            ));
            out.sets.push(set);
            continue;
        }
        let at_hand = set.parity.iter().filter(|m| m.path.is_some()).count();
        let first = out.rebuilt.len();
        let rebuilt_whole = missing <= at_hand
            && rebuild_set(
                &set,
                &who,
                workdir,
                memory,
                Rebuild::Trusting,
                progress,
                &mut out,
            )?;
        if !rebuilt_whole {
            out.rebuilt.truncate(first);
            for m in set.data.iter_mut().chain(set.parity.iter_mut()) {
                if let Some(p) = &m.path {
                    m.state = disc_state(p, progress);
                }
            }
            rebuild_set(
                &set,
                &who,
                workdir,
                memory,
                Rebuild::Checked,
                progress,
                &mut out,
            )?;
        }
        // The standby rebuild (a disc found damaged later) starts from the rebuilt images.
        for (g, d) in &out.rebuilt[first..] {
            let image = out.rebuilt_dir.as_ref().map(|r| {
                r.join(format!("gen{g:04}"))
                    .join(data_image_name_of(&set, *d))
            });
            if let Some(m) = set.data.get_mut(*d as usize - 1) {
                m.path = image;
                m.state = DiscState::Intact;
            }
        }
        out.sets.push(set);
    }
    Ok(out)
}

/// How a rebuild takes the discs at hand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rebuild {
    /// As intact without checking them: only a rebuild of every lost disc whole counts (each
    /// proven by its SHA-256); anything short of that is undone and the discs are checked.
    Trusting,
    /// As checked against their own FEC (their states set): partial images are kept too.
    Checked,
}

/// Rebuilds the lost data discs of one set and puts the rebuilt images among the sources.
/// Returns whether every lost data disc was rebuilt whole; with [`Rebuild::Trusting`], false
/// leaves `out` as it was (nothing rebuilt is used).
fn rebuild_set(
    set: &ParitySet,
    who: &str,
    workdir: &Path,
    memory: u64,
    how: Rebuild,
    progress: &dyn Progress,
    out: &mut CompletedSources,
) -> Result<bool, ExtractError> {
    let lost: Vec<String> = set
        .data
        .iter()
        .filter(|m| m.state >= DiscState::Broken)
        .map(|m| format!("{} ({})", m.disc, state_word(m.state)))
        .collect();
    if lost.is_empty() {
        progress.detail(&format!(
            "{who}: every data disc is readable with its own FEC; the parity discs are not needed"
        ));
        return Ok(true);
    }
    progress.step(&format!(
        "{who}: data disc(s) {} — rebuilding from the {} parity disc(s) at hand",
        lost.join(", "),
        set.parity.iter().filter(|m| m.path.is_some()).count()
    ));
    let rebuilt_dir = workdir
        .join(REBUILT_DIR)
        .join(format!("gen{:04}", set.generation));
    std::fs::create_dir_all(&rebuilt_dir)
        .map_err(|e| ExtractError::Output(format!("creating {}", rebuilt_dir.display()), e))?;
    out.rebuilt_dir = Some(workdir.join(REBUILT_DIR));
    let opts = RebuildOptions {
        workdir: workdir.join(format!("parity-work-gen{:04}", set.generation)),
        out_dir: Some(rebuilt_dir),
        memory,
    };
    let report = match how {
        Rebuild::Trusting => rebuild(set, &opts, progress),
        Rebuild::Checked => rebuild_keeping_partial(set, &opts, progress),
    };
    let _ = std::fs::remove_dir_all(&opts.workdir);
    let report = match report {
        Err(ParityError::Interrupted(e)) => {
            let _ = std::fs::remove_dir_all(workdir.join(REBUILT_DIR));
            return Err(e.into());
        }
        r => r,
    };
    if how == Rebuild::Trusting && !report.as_ref().is_ok_and(|r| r.lost.is_empty()) {
        progress.detail(&format!(
            "{who}: the discs at hand did not all read as intact; checking each against its own FEC"
        ));
        return Ok(false);
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // Not fatal: the discs at hand are restored from as given, and whatever they lack
            // is listed as not bit-exact.
            progress.warn(&format!(
                "{who}: rebuilding from the parity discs failed: {e}; restoring from the discs as given"
            ));
            let lost = set.data.iter().filter(|m| m.state >= DiscState::Broken);
            RebuildReport {
                lost: lost.map(|m| (m.disc, Default::default())).collect(),
                ..Default::default()
            }
        }
    };
    for (disc, path) in &report.rebuilt {
        let Some(path) = path else { continue };
        let given = set.data[*disc as usize - 1].path.as_ref();
        out.paths.retain(|p| Some(p) != given);
        out.paths.push(path.clone());
        out.rebuilt.push((set.generation, *disc));
        progress.step(&format!(
            "{who}: disc {disc} rebuilt from the parity discs, bit-identical to the original"
        ));
    }
    for (disc, path) in &report.partial {
        // What both codes recovered of a disc they cannot rebuild whole: read instead of the
        // disc as given (every chunk and file read from it is checked as usual).
        let given = set.data[*disc as usize - 1].path.as_ref();
        out.paths.retain(|p| Some(p) != given);
        out.paths.push(path.clone());
    }
    for (disc, lbas) in &report.lost {
        if !lbas.is_empty() {
            progress.warn(&format!(
                "{who}: disc {disc} cannot be rebuilt ({} sector(s) unknown: more discs lost or broken than the {} parity disc(s) cover); files stored there are listed as not restored",
                lbas.len(),
                set.parity_discs()
            ));
        }
    }
    let last = set.data_discs();
    if report.lost.iter().any(|(d, _)| *d == last) {
        if let Some(cat) = &set.catalog {
            progress.step(&format!(
                "{who}: the catalog is read from a parity disc (its last data disc is lost)"
            ));
            out.catalogs.push((set.generation, cat.clone()));
        }
    }
    Ok(report.lost.is_empty())
}

/// The file name a rebuilt data disc gets (as [`crate::restore::parity`] names it).
fn data_image_name_of(set: &ParitySet, disc: u32) -> String {
    crate::restore::parity::data_image_name(set, disc)
}

/// An image read in place of a data disc, and whether it is the whole disc bit-identical.
type Stand = (PathBuf, bool);

/// The parity sets standing by while their data discs are read: a disc whose own FEC fails is
/// rebuilt (its whole set checked and rebuilt once) and read from its rebuilt image.
struct ParityStandby {
    sets: Vec<ParitySet>,
    workdir: PathBuf,
    memory: u64,
    progress: Arc<dyn Progress + Send + Sync>,
    /// (generation, data disc) → the image read in its place (whole or partial), or None; an
    /// entry for every data disc of a set once the set was rebuilt.
    done: Mutex<BTreeMap<(u32, u32), Option<Stand>>>,
}

impl std::fmt::Debug for ParityStandby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParityStandby")
            .field("sets", &self.sets.len())
            .finish()
    }
}

impl ParityStandby {
    /// Data discs rebuilt whole while the discs were read.
    fn rebuilt(&self) -> usize {
        let done = self.done.lock().map(|d| d.clone()).unwrap_or_default();
        done.values()
            .filter(|r| r.as_ref().is_some_and(|(_, whole)| *whole))
            .count()
    }
}

impl Replacement for ParityStandby {
    fn replacement(&self, generation: u32, disc: u32) -> Option<(PathBuf, bool)> {
        let mut done = self.done.lock().ok()?;
        if let Some(r) = done.get(&(generation, disc)) {
            return r.clone();
        }
        let mut set = self
            .sets
            .iter()
            .find(|s| s.generation == generation && disc as usize <= s.data.len())?
            .clone();
        let progress = self.progress.as_ref();
        let who = format!("'{}' generation {}", set.name, set.generation);
        progress.warn(&format!(
            "{who}: disc {disc} is damaged beyond its own FEC; checking the other discs of its set"
        ));
        for m in set.data.iter_mut().chain(set.parity.iter_mut()) {
            if let Some(p) = &m.path {
                m.state = match m.disc == disc {
                    true => DiscState::Broken,
                    false => disc_state(p, progress),
                };
            }
        }
        let mut out = CompletedSources::default();
        let made = rebuild_set(
            &set,
            &who,
            &self.workdir,
            self.memory,
            Rebuild::Checked,
            progress,
            &mut out,
        );
        if let Err(e) = made {
            progress.warn(&format!("{who}: {e}"));
        }
        let dir = self
            .workdir
            .join(REBUILT_DIR)
            .join(format!("gen{generation:04}"));
        for m in &set.data {
            let name = dir.join(data_image_name_of(&set, m.disc));
            let whole = out.rebuilt.contains(&(generation, m.disc));
            let kept = out.paths.contains(&name).then_some((name, whole));
            done.insert(
                (generation, m.disc),
                kept.filter(|_| m.state >= DiscState::Broken),
            );
        }
        done.get(&(generation, disc)).cloned().flatten()
    }
}

fn state_word(s: DiscState) -> &'static str {
    match s {
        DiscState::Missing => "missing",
        DiscState::Broken => "damaged beyond its own FEC",
        DiscState::Repairable => "damaged",
        DiscState::Intact => "intact",
    }
}

/// A disc's state from one read against its own FEC: intact, repairable by it, or broken (also
/// when its FEC data cannot be found).
fn disc_state(p: &Path, progress: &dyn Progress) -> DiscState {
    let Ok(src) = FileSectorSource::open(p) else {
        return DiscState::Broken;
    };
    let hint = find_disc_header(&src).map(|h| h.fec_lba);
    let state = match fec::locate(&src, hint).and_then(|l| fec::scan(&src, &l, &|_| {})) {
        Ok(scan) if scan.is_clean() => DiscState::Intact,
        Ok(scan) if scan.is_repairable() => DiscState::Repairable,
        _ => DiscState::Broken,
    };
    progress.detail(&format!("{}: {}", p.display(), state_word(state)));
    state
}
