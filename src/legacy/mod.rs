//! Reading archives written by the Python bd-archive ("seed" discs): dar slices (+ par2, sha512),
//! behind the same reports as our own discs (`crate::restore`).
//!
//! Pure Rust: no `dar` or `par2` program is needed at restore time. See `docs/dar-format.md`.
//! A command decides once which format its sources hold ([`classify_sources`]) and then calls
//! either `crate::restore` or the functions here; a chain continued from a seed chain restores
//! through `crate::restore::extract` with a [`continued::SeedPrelude`].
pub mod continued;
pub mod dar;
mod error;
pub mod par2;
pub mod seed_chain;
pub mod seed_disc;
mod work_dir;

pub use error::{BaseProblem, SeedError};

use std::path::PathBuf;

use crate::legacy::continued::unrepairable_slices;
use crate::legacy::dar::DarEntry;
use crate::legacy::seed_chain::split_sources;
use crate::legacy::seed_disc::{detect, SeedChain};
use crate::legacy::work_dir::WorkDir;
use crate::restore::extract::{Damage, ExtractOptions, ExtractReport};
use crate::restore::verify::Health;
use crate::restore::writer::RestoreOptions;
use crate::util::progress::Progress;

/// What the sources of a command hold, decided once.
pub enum Sources {
    /// Discs of ours only (or nothing a seed reader recognises: our reader says what is wrong).
    Ours(Vec<PathBuf>),
    /// Seed (dar) discs only.
    Seed(SeedChain),
    /// Seed discs of a chain and bd-archive discs that continue it.
    Continued {
        /// The seed chain on the seed discs.
        seed: SeedChain,
        /// Our discs (expanded).
        ours: Vec<PathBuf>,
    },
}

/// Sorts the SOURCE arguments of `extract`, `verify` or `list` into the formats they hold.
pub fn classify_sources(sources: &[PathBuf]) -> Result<Sources, SeedError> {
    let (seed, ours) = split_sources(sources);
    if ours.is_empty() {
        return Ok(match detect(sources)? {
            Some(chain) => Sources::Seed(chain),
            None => Sources::Ours(sources.to_vec()),
        });
    }
    if seed.is_empty() {
        return Ok(Sources::Ours(sources.to_vec()));
    }
    Ok(match detect(&seed)? {
        Some(chain) => Sources::Continued { seed: chain, ours },
        None => Sources::Ours(sources.to_vec()),
    })
}

/// `extract` of a seed chain: every generation ascending into OUT, damage as for ours.
pub fn extract(
    chain: &SeedChain,
    opts: &ExtractOptions,
    workdir: Option<&PathBuf>,
    progress: &dyn Progress,
) -> Result<ExtractReport, SeedError> {
    progress.step(&format!(
        "Seed chain '{}' (dar + par2 discs), generation(s) {:?}",
        chain.name,
        chain
            .generations
            .iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>()
    ));
    // Staging (only damaged slices are copied) next to OUT by default, like our own extract.
    std::fs::create_dir_all(&opts.output)
        .map_err(|e| SeedError::Output(format!("creating {}", opts.output.display()), e))?;
    let default_parent = opts.output.join(".bd-archive-work");
    let work = WorkDir::new(workdir, Some(&default_parent))?;
    let ropts = RestoreOptions {
        overwrite: opts.overwrite,
        same_owner: opts.same_owner || RestoreOptions::default().same_owner,
        special_files: opts.special_files,
        reserved: None,
    };
    let out = chain.extract(&opts.output, work.path(), ropts, |m| progress.result(m))?;
    let mut damaged: Vec<Damage> = out
        .report
        .bad_files
        .iter()
        .map(|(p, why)| Damage {
            path: p.as_bytes().to_vec(),
            ranges: Vec::new(),
            reason: why.clone(),
        })
        .collect();
    for (p, why) in &out.report.skipped {
        progress.warn(&format!("{p}: {why}"));
    }
    damaged.extend(unrepairable_slices(&out.slices));
    Ok(ExtractReport {
        output: opts.output.clone(),
        entries: out.entries,
        damaged,
        notes: Vec::new(),
    })
}

/// `verify` of seed discs: sha512 sidecars, then par2; one line per slice.
pub fn verify(chain: &SeedChain, progress: &dyn Progress) -> Result<Health, SeedError> {
    let work = WorkDir::new(None, None)?;
    progress.step(&format!("Seed chain '{}' (dar + par2 discs)", chain.name));
    chain.verify(work.path(), |m| progress.result(m))
}

/// `list` of seed discs: the newest generation's number and catalogue.
pub fn list(chain: &SeedChain) -> Result<(u32, Vec<DarEntry>), SeedError> {
    let work = WorkDir::new(None, None)?;
    chain.list(work.path())
}
