//! A chain continued from the Python tool (`create --base <seed catalogue>`): its dar
//! generations 1..N are restored from the seed discs first, then our generation on top; the
//! [`Prelude`] of `crate::restore::extract`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::legacy::SeedError;

use crate::format::catalog::Entry;
use crate::legacy::seed_chain::seed_chain_id;
use crate::legacy::seed_disc::{SeedChain, SeedOutcome, SliceState};
use crate::legacy::work_dir::WorkDir;
use crate::restore::extract::{Damage, Prelude};
use crate::restore::writer::Restorer;
use crate::restore::ExtractError;
use crate::util::progress::Progress;

/// The seed part of an `extract` whose sources mix seed discs with bd-archive discs of a chain
/// that continues the seed chain (`create --base <seed catalogue>`): dar generations 1..N are
/// replayed into OUT first, then the bd-archive generation is applied on top.
pub struct SeedPrelude {
    chain: SeedChain,
    work: WorkDir,
    outcome: Option<SeedOutcome>,
}

impl SeedPrelude {
    /// The prelude of an extract into `output` (work files under `workdir`, or OUT/.bd-archive-work).
    pub fn new(
        chain: SeedChain,
        output: &Path,
        workdir: Option<&PathBuf>,
    ) -> Result<Self, SeedError> {
        let default_parent = output.join(".bd-archive-work");
        let work = WorkDir::new(workdir, Some(&default_parent))?;
        Ok(SeedPrelude {
            chain,
            work,
            outcome: None,
        })
    }
}

impl Prelude for SeedPrelude {
    fn replay(
        &mut self,
        r: &mut Restorer,
        needed: u32,
        chain_id: Option<[u8; 16]>,
        progress: &dyn Progress,
    ) -> Result<(), ExtractError> {
        self.replay_seed(r, needed, chain_id, progress)
            .map_err(|e| ExtractError::Prelude(e.into()))
    }

    fn finish(&self, r: &mut Restorer, entries: &[Entry]) -> Result<Vec<Damage>, ExtractError> {
        self.finish_seed(r, entries)
            .map_err(|e| ExtractError::Prelude(e.into()))
    }
}

impl SeedPrelude {
    /// Checks that the seed discs hold dar generations 1..`needed` (the number the bd-archive
    /// catalog refers to), then restores them into OUT through `r`.
    fn replay_seed(
        &mut self,
        r: &mut Restorer,
        needed: u32,
        chain_id: Option<[u8; 16]>,
        progress: &dyn Progress,
    ) -> Result<(), SeedError> {
        if needed == 0 {
            progress.warn(&format!(
                "the seed (dar) discs of '{}' are not needed: this generation keeps nothing from the dar chain; they are ignored",
                self.chain.name
            ));
            return Ok(());
        }
        let have: Vec<u32> = self
            .chain
            .generations
            .iter()
            .map(|g| g.generation)
            .collect();
        progress.step(&format!(
            "Seed chain '{}' (dar + par2 discs): generation(s) {have:?} first, then the bd-archive generation on top",
            self.chain.name
        ));
        if let Some(g) = (1..=needed).find(|g| !have.contains(g)) {
            return Err(SeedError::MissingGeneration {
                generation: g,
                chain: self.chain.name.clone(),
                needed,
            });
        }
        let data_name = self
            .chain
            .open_catalogue(1)
            .and_then(|a| a.data_name().map_err(SeedError::from))
            .map_err(SeedError::of("dar generation 1"))?;
        if chain_id.is_some_and(|id| id != seed_chain_id(&self.chain.name, &data_name)) {
            return Err(SeedError::OtherChainId(self.chain.name.clone()));
        }
        if let Some(&g) = have.iter().find(|&&g| g > needed) {
            progress.warn(&format!(
                "dar generation {g} is newer than the {needed} generation(s) this chain continues; it is ignored"
            ));
        }
        let keep: Vec<_> = std::mem::take(&mut self.chain.generations)
            .into_iter()
            .filter(|g| g.generation <= needed)
            .collect();
        self.chain.generations = keep;
        let out = self
            .chain
            .extract_into(r, self.work.path(), |m| progress.result(m))?;
        for (p, why) in &out.report.skipped {
            progress.warn(&format!("{p}: {why}"));
        }
        self.outcome = Some(out);
        Ok(())
    }

    /// After the bd-archive generation: removes what dar restored and `entries` (the generation's
    /// complete tree) no longer has. Returns the damage found while replaying dar.
    fn finish_seed(&self, r: &mut Restorer, entries: &[Entry]) -> Result<Vec<Damage>, SeedError> {
        let Some(out) = &self.outcome else {
            return Ok(Vec::new());
        };
        let keep: HashSet<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
        let mut gone: Vec<&Vec<u8>> = out
            .paths
            .iter()
            .filter(|p| !keep.contains(p.as_slice()))
            .collect();
        gone.sort();
        gone.dedup();
        for p in gone {
            r.remove_restored(p)?;
        }
        let mut damaged: Vec<Damage> = out
            .report
            .bad_files
            .iter()
            .filter(|(p, _)| keep.contains(p.as_bytes()))
            .map(|(p, why)| Damage {
                path: p.as_bytes().to_vec(),
                ranges: Vec::new(),
                reason: format!("dar generation: {why}"),
            })
            .collect();
        damaged.extend(unrepairable_slices(&out.slices));
        Ok(damaged)
    }
}

/// One corrupted-files.txt line per slice that neither its sha512 nor par2 could vouch for.
pub(crate) fn unrepairable_slices(
    slices: &[(String, SliceState)],
) -> impl Iterator<Item = Damage> + '_ {
    slices.iter().filter_map(|(name, st)| match st {
        SliceState::Unrepairable(why) => Some(Damage {
            path: format!("(slice) {name}").into_bytes(),
            ranges: Vec::new(),
            reason: format!(
                "slice failed sha512 + par2 repair: {why}; files from it may be damaged"
            ),
        }),
        _ => None,
    })
}
