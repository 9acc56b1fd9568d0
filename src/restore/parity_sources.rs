//! The sources of `extract` completed from the parity discs (FORMAT.md §10): when a generation's
//! parity discs are among the sources and one of its data discs is missing or damaged beyond its
//! own FEC, the data disc is rebuilt first ([`crate::restore::parity::rebuild`]), and extract then
//! reads the rebuilt image as if the disc had been given.
//!
//! ```text
//! complete_from_parity(sources):
//!     sets = the generations with a parity disc among the sources
//!     for each set:
//!         each data disc at hand: one read against its own FEC (as verify) → intact,
//!                                 repairable or broken; not at hand → missing
//!         none missing or broken → nothing to do (the parity discs are not read)
//!         else: the parity discs checked the same way; rebuild(set) into WORKDIR/rebuilt/genG
//!               (working copies in WORKDIR, bounded by --memory; each rebuilt image checked
//!               against the manifest's SHA-256); a rebuilt image replaces the source it stands
//!               for, and so does a partial one of a disc that cannot be rebuilt whole
//!         the last data disc still lost → the catalog copy of a parity disc stands in for it
//! ```
//! A data disc that cannot be rebuilt whole (more discs lost in some columns than P) is read
//! as far as both codes recovered it — a partial image in place of the disc given, every chunk
//! and file read from it checked as usual — and the files stored where nothing is known are
//! listed as not bit-exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::disc::reader::{expand_sources, find_disc_header, Disc};
use crate::fec;
use crate::format::catalog::Catalog;
use crate::restore::parity::{
    find_parity_sets, rebuild_keeping_partial, DiscState, ParityError, ParitySet, RebuildOptions,
    RebuildReport,
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

    /// Removes the rebuilt images (the extract has read them; `verify --repair -o DIR` writes
    /// them to keep).
    pub fn remove_rebuilt(&self) {
        if let Some(dir) = &self.rebuilt_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Completes `sources` from the parity discs among them: rebuilds every data disc that is
/// missing or damaged beyond its own FEC where the column code allows, under `workdir` and
/// within `memory` bytes of buffers.
pub fn complete_from_parity(
    sources: &[PathBuf],
    workdir: &Path,
    memory: u64,
    progress: &dyn Progress,
) -> Result<CompletedSources, ExtractError> {
    let mut out = CompletedSources {
        paths: expand_sources(sources)?,
        ..Default::default()
    };
    // Parity discs are judged only when a rebuild needs them; data discs now.
    let state_of = |p: &Path| match is_parity_image(p) {
        true => DiscState::Intact,
        false => disc_state(p, progress),
    };
    let files: Vec<PathBuf> = out.paths.iter().filter(|p| p.is_file()).cloned().collect();
    if !files.iter().any(|p| is_parity_image(p)) {
        return Ok(out);
    }
    let sets = match find_parity_sets(&files, &state_of, memory) {
        Ok(s) => s,
        Err(e) => {
            progress.warn(&format!("{e}; restoring from the data discs alone"));
            return Ok(out);
        }
    };
    for mut set in sets {
        let who = format!("'{}' generation {}", set.name, set.generation);
        let needs: Vec<u32> = set
            .data
            .iter()
            .filter(|m| m.state >= DiscState::Broken)
            .map(|m| m.disc)
            .collect();
        if needs.is_empty() {
            progress.detail(&format!(
                "{who}: every data disc is at hand and readable with its own FEC; the parity discs are not needed"
            ));
            continue;
        }
        if set.data.iter().all(|m| m.path.is_none()) {
            continue; // parity discs alone: nothing of the set to restore
        }
        for m in set.parity.iter_mut() {
            if let Some(p) = &m.path {
                m.state = disc_state(p, progress);
            }
        }
        rebuild_set(&set, &who, workdir, memory, progress, &mut out)?;
    }
    Ok(out)
}

/// Rebuilds the lost data discs of one set and puts the rebuilt images among the sources.
fn rebuild_set(
    set: &ParitySet,
    who: &str,
    workdir: &Path,
    memory: u64,
    progress: &dyn Progress,
    out: &mut CompletedSources,
) -> Result<(), ExtractError> {
    let lost: Vec<String> = set
        .data
        .iter()
        .filter(|m| m.state >= DiscState::Broken)
        .map(|m| format!("{} ({})", m.disc, state_word(m.state)))
        .collect();
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
    let report = rebuild_keeping_partial(set, &opts, progress);
    let _ = std::fs::remove_dir_all(&opts.workdir);
    let report = match report {
        Ok(r) => r,
        Err(ParityError::Interrupted(e)) => {
            let _ = std::fs::remove_dir_all(workdir.join(REBUILT_DIR));
            return Err(e.into());
        }
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
    Ok(())
}

fn state_word(s: DiscState) -> &'static str {
    match s {
        DiscState::Missing => "missing",
        DiscState::Broken => "damaged beyond its own FEC",
        DiscState::Repairable => "damaged",
        DiscState::Intact => "intact",
    }
}

/// Whether an image's disc header says it is a parity disc.
fn is_parity_image(p: &Path) -> bool {
    FileSectorSource::open(p)
        .ok()
        .and_then(|s| find_disc_header(&s))
        .is_some_and(|h| h.is_parity())
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
