//! `extract`, `verify` and `list` on discs made by the Python bd-archive (dar + par2). Each
//! command calls the matching `try_*` first; it returns `None` when the sources are not seed discs.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{ExtractArgs, ListArgs, VerifyArgs};
use crate::commands::extract::{finish_report, Damage};
use crate::commands::Ui;
use crate::compat::seed_disc::{detect, kind_letter, SliceState};
use crate::restore::RestoreOptions;

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

/// `extract` on seed discs: whole chain, generations ascending, corrupted-files.txt as for ours.
pub fn try_extract(args: &ExtractArgs, ui: &Ui) -> Result<Option<i32>> {
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
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
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
    for (name, st) in &out.slices {
        if let SliceState::Unrepairable(why) = st {
            damaged.push(Damage {
                path: format!("(slice) {name}").into_bytes(),
                ranges: Vec::new(),
                reason: format!(
                    "slice failed sha512 + par2 repair: {why}; files from it may be damaged"
                ),
            });
        }
    }
    finish_report(&args.output, &damaged, out.entries, ui).map(Some)
}

/// `verify` on seed discs: sha512 sidecars, then par2 (0 intact, 1 repairable, 2 not).
pub fn try_verify(args: &VerifyArgs, ui: &Ui) -> Result<Option<i32>> {
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
    for e in entries {
        let status = if e.data_present() { ' ' } else { '.' };
        println!(
            "{}{status} {:>12} {} {}",
            kind_letter(&e.kind),
            e.size,
            crate::commands::list::utc(i64::try_from(e.mtime.0).unwrap_or(i64::MAX)),
            crate::restore::escape_path(&e.path)
        );
    }
    Ok(Some(crate::exit::OK))
}
