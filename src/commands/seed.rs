//! `extract`, `verify` and `list` on discs made by the Python bd-archive (dar + par2). Each
//! command calls the matching `try_*` first; it returns `None` when the sources are not seed discs.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::catalog::Entry;
use crate::cli::{ExtractArgs, ListArgs, VerifyArgs};
use crate::commands::extract::{finish_report, Damage};
use crate::commands::Ui;
use crate::compat::seed_chain::{seed_chain_id, seed_generations, split_sources};
use crate::compat::seed_disc::{detect, kind_letter, SeedChain, SeedOutcome, SliceState};
use crate::restore::{RestoreOptions, Restorer};

fn temp_work(base: Option<&PathBuf>) -> Result<tempfile_dir::Dir> {
    tempfile_dir::Dir::new(base, None)
}

/// Minimal self-removing work directory (no dev-dependency in the binary).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir {
        path: PathBuf,
        keep: bool,
        /// Parent created for it, removed too when left empty.
        parent: Option<PathBuf>,
    }

    impl Dir {
        /// `base`: kept user work directory; else a fresh one under `parent` (or the temp dir),
        /// removed on drop.
        pub fn new(base: Option<&PathBuf>, parent: Option<&Path>) -> anyhow::Result<Dir> {
            if let Some(b) = base {
                std::fs::create_dir_all(b)?;
                return Ok(Dir {
                    path: b.clone(),
                    keep: true,
                    parent: None,
                });
            }
            let root = parent
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir);
            let path = root.join(format!(
                "bd-archive-seed-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            std::fs::create_dir_all(&path)?;
            Ok(Dir {
                path,
                keep: false,
                parent: parent.map(Path::to_path_buf),
            })
        }
        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if !self.keep {
                let _ = std::fs::remove_dir_all(&self.path);
                if let Some(p) = &self.parent {
                    let _ = std::fs::remove_dir(p);
                }
            }
        }
    }
}

/// The seed part of an `extract` whose sources mix seed discs with bd-archive discs of a chain
/// that continues the seed chain (`create --base <seed catalogue>`): dar generations 1..N are
/// replayed into OUT first, then the bd-archive generation is applied on top.
pub struct SeedPrelude {
    chain: SeedChain,
    work: tempfile_dir::Dir,
    outcome: Option<SeedOutcome>,
}

/// Splits `sources` into a seed prelude (when seed discs are among them next to ours) and our
/// sources. Without seed discs: `(None, sources)`.
pub fn continuation(
    sources: &[PathBuf],
    output: &std::path::Path,
    workdir: Option<&PathBuf>,
) -> Result<(Option<SeedPrelude>, Vec<PathBuf>)> {
    let (seed, ours) = split_sources(sources);
    if seed.is_empty() || ours.is_empty() {
        return Ok((None, sources.to_vec()));
    }
    let Some(chain) = detect(&seed)? else {
        return Ok((None, sources.to_vec()));
    };
    let default_parent = output.join(".bd-archive-work");
    let work = tempfile_dir::Dir::new(workdir, Some(&default_parent))?;
    Ok((
        Some(SeedPrelude {
            chain,
            work,
            outcome: None,
        }),
        ours,
    ))
}

impl SeedPrelude {
    /// Checks that the seed discs hold dar generations 1..`needed` (the number the bd-archive
    /// catalog refers to), then restores them into OUT through `r`.
    pub fn replay(
        &mut self,
        r: &mut Restorer,
        needed: u32,
        chain_id: Option<[u8; 16]>,
        ui: &Ui,
    ) -> Result<()> {
        if needed == 0 {
            ui.warn(&format!(
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
        ui.say(&format!(
            "Seed chain '{}' (dar + par2 discs): generation(s) {have:?} first, then the bd-archive generation on top",
            self.chain.name
        ));
        if let Some(g) = (1..=needed).find(|g| !have.contains(g)) {
            bail!(
                "dar generation {g} of seed chain '{}' is not among the sources: this chain continues dar generations 1..{needed}; pass all their discs",
                self.chain.name
            );
        }
        let data_name = self
            .chain
            .open_catalogue(1)
            .and_then(|a| a.data_name().map_err(anyhow::Error::from))
            .context("dar generation 1")?;
        if chain_id.is_some_and(|id| id != seed_chain_id(&self.chain.name, &data_name)) {
            bail!(
                "the seed (dar) discs given are of chain '{}', but not of the dar chain the bd-archive discs continue (chain id differs); pass the seed discs of that chain",
                self.chain.name
            );
        }
        if let Some(&g) = have.iter().find(|&&g| g > needed) {
            ui.warn(&format!(
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
            .extract_into(r, self.work.path(), |m| ui.info(m))?;
        for (p, why) in &out.report.skipped {
            ui.warn(&format!("{p}: {why}"));
        }
        self.outcome = Some(out);
        Ok(())
    }

    /// After the bd-archive generation: removes what dar restored and `entries` (the generation's
    /// complete tree) no longer has. Returns the damage found while replaying dar.
    pub fn finish(&self, r: &mut Restorer, entries: &[Entry]) -> Result<Vec<Damage>> {
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
fn unrepairable_slices(slices: &[(String, SliceState)]) -> impl Iterator<Item = Damage> + '_ {
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

/// `extract` of a file whose content a migrated chain left in its dar generations (restored by
/// [`SeedPrelude::replay`]): keep it, with this generation's metadata.
pub fn adopt(r: &mut Restorer, e: &Entry, replayed: bool) -> Result<Option<Damage>> {
    if replayed && r.adopt_restored_file(e)? {
        return Ok(None);
    }
    let n = seed_generations(std::slice::from_ref(e));
    Ok(Some(Damage {
        path: e.path.clone(),
        ranges: if e.size > 0 {
            vec![(0, e.size)]
        } else {
            Vec::new()
        },
        reason: if replayed {
            format!("its content is in dar generations 1..{n} of the seed chain, which did not restore it intact")
        } else {
            format!("its content is in dar generations 1..{n} of the seed chain this chain continues; pass their discs too")
        },
    }))
}

/// `extract` on seed discs: whole chain, generations ascending, corrupted-files.txt as for ours.
pub fn try_extract(args: &ExtractArgs, ui: &Ui) -> Result<Option<i32>> {
    let (_, ours) = split_sources(&args.sources);
    if !ours.is_empty() {
        return Ok(None); // bd-archive discs too: a continued chain (extract.rs).
    }
    let Some(chain) = detect(&args.sources)? else {
        return Ok(None);
    };
    ui.say(&format!(
        "Seed chain '{}' (dar + par2 discs), generation(s) {:?}",
        chain.name,
        chain
            .generations
            .iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>()
    ));
    // Staging (only damaged slices are copied) next to OUT by default, like our own extract.
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let default_parent = args.output.join(".bd-archive-work");
    let work = tempfile_dir::Dir::new(args.workdir.as_ref(), Some(&default_parent))?;
    let opts = RestoreOptions {
        overwrite: args.overwrite,
        same_owner: args.same_owner || RestoreOptions::default().same_owner,
        special_files: args.special_files,
        reserved: None,
    };
    let out = chain.extract(&args.output, work.path(), opts, |m| ui.info(m))?;
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
        ui.warn(&format!("{p}: {why}"));
    }
    damaged.extend(unrepairable_slices(&out.slices));
    finish_report(&args.output, &damaged, out.entries, ui).map(Some)
}

/// `verify` on seed discs: sha512 sidecars, then par2 (0 intact, 1 repairable, 2 not).
pub fn try_verify(args: &VerifyArgs, ui: &Ui) -> Result<Option<i32>> {
    let (seed, ours) = split_sources(&args.targets);
    if !ours.is_empty() {
        // A continued chain: the seed discs here, then ours by our verify.
        if seed.is_empty() {
            return Ok(None);
        }
        if args.json || args.repair {
            bail!("--json/--repair: pass the seed (dar) discs and the bd-archive discs to separate verify runs");
        }
        let Some(chain) = detect(&seed)? else {
            return Ok(None);
        };
        let work = temp_work(None)?;
        ui.say(&format!("Seed chain '{}' (dar + par2 discs)", chain.name));
        let a = chain.verify(work.path(), |m| ui.info(m))?;
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
        };
        let b = crate::commands::verify::run(&ours_args, ui)?;
        return Ok(Some(a.max(b)));
    }
    let Some(chain) = detect(&args.targets)? else {
        return Ok(None);
    };
    let work = temp_work(None)?;
    ui.say(&format!("Seed chain '{}' (dar + par2 discs)", chain.name));
    let code = chain.verify(work.path(), |m| ui.info(m))?;
    ui.say(match code {
        0 => "Verification passed",
        1 => "Repair needed — can be fixed with PAR2 (extract repairs automatically)",
        _ => "Verification FAILED",
    });
    Ok(Some(code))
}

/// `list` on seed discs: the newest generation's catalogue.
pub fn try_list(args: &ListArgs, ui: &Ui) -> Result<Option<i32>> {
    let (seed, ours) = split_sources(&args.sources);
    if !ours.is_empty() {
        if seed.is_empty() {
            return Ok(None);
        }
        // A continued chain: the bd-archive generation's catalog lists the whole tree.
        let ours_args = ListArgs {
            sources: ours,
            json: args.json,
            set: args.set,
        };
        return crate::commands::list::run(&ours_args, ui).map(Some);
    }
    let Some(chain) = detect(&args.sources)? else {
        return Ok(None);
    };
    let work = temp_work(None)?;
    let (generation, entries) = chain.list(work.path())?;
    ui.say(&format!(
        "Seed chain '{}', generation {generation}: {} entries",
        chain.name,
        entries.len()
    ));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in entries {
        let status = if e.data_present() { ' ' } else { '.' };
        writeln!(
            out,
            "{}{status} {:>12} {} {}",
            kind_letter(&e.kind),
            e.size,
            crate::commands::list::utc(i64::try_from(e.mtime.0).unwrap_or(i64::MAX)),
            crate::restore::escape_path(&e.path)
        )?;
    }
    out.flush()?;
    Ok(Some(crate::exit::OK))
}
