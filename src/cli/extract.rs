//! `extract`: sources → options → [`restore::extract::extract`] (or the seed format's
//! extract) → OUT/corrupted-files.txt and the exit code.

use bd_archive::restore::extract::WORKDIR_NAME;
use bd_archive::restore::writer::OutDir;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cli::args::ExtractArgs;
use crate::cli::parse_memory;
use crate::cli::Ui;
use bd_archive::disc::reader::RepairSettings;
use bd_archive::legacy::continued::SeedPrelude;
use bd_archive::legacy::{self, Sources};
use bd_archive::restore::extract::{self, ExtractOptions, ExtractReport, Prelude};
use bd_archive::restore::parity_sources::complete_from_parity;
use bd_archive::restore::sources::open_discs;

/// Runs `extract`.
pub fn run(args: &ExtractArgs, ui: &Ui) -> Result<i32> {
    let opts = options(args);
    let (seed, sources) = match legacy::classify_sources(&args.sources)? {
        Sources::Seed(chain) => {
            let report = legacy::extract(&chain, &opts, args.workdir.as_ref(), ui)?;
            return finish_report(&report, ui);
        }
        Sources::Continued { seed, ours } => (Some(seed), ours),
        Sources::Ours(sources) => (None, sources),
    };
    let workdir = &opts.workdir;
    // -w where the user said; by default OUT/.bd-archive-work, created through OUT's
    // descriptor and refused if a symlink is in its place (never followed).
    let made = match &args.workdir {
        Some(w) => std::fs::create_dir_all(w).map(|()| w.clone()),
        None => OutDir::open(&args.output)
            .and_then(|out| out.create_own_dir(std::path::Path::new(WORKDIR_NAME))),
    };
    made.with_context(|| {
        format!(
            "creating work directory {} (check -o / -w)",
            workdir.display()
        )
    })?;
    let settings = RepairSettings {
        memory_budget: parse_memory(args.memory.as_deref())?,
        spill_dir: Some(workdir.clone()),
    };
    let from_drive = args.device.is_some()
        || args.sources.is_empty()
        || args
            .sources
            .iter()
            .any(|p| bd_archive::optical::device::is_drive_path(p));
    let result = if from_drive {
        extract_from_drive(args, &opts, &settings, ui)
    } else {
        // Seed (dar) discs next to ours: a chain continued with `create --base <seed catalogue>`.
        let mut prelude = match seed {
            Some(chain) => Some(SeedPrelude::new(
                chain,
                &args.output,
                args.workdir.as_ref(),
            )?),
            None => None,
        };
        let prelude = prelude.as_mut().map(|p| p as &mut dyn Prelude);
        extract_with(&sources, prelude, &opts, &settings, args.set.as_deref(), ui)
    };
    if args.workdir.is_none() {
        let _ = std::fs::remove_dir(workdir);
    }
    result
}

/// The engine's options from the flags.
fn options(args: &ExtractArgs) -> ExtractOptions {
    ExtractOptions {
        output: args.output.clone(),
        workdir: args
            .workdir
            .clone()
            .unwrap_or_else(|| args.output.join(WORKDIR_NAME)),
        only: args.only.clone(),
        generation: args.generation,
        overwrite: args.overwrite,
        resume: args.resume,
        same_owner: args.same_owner,
        special_files: args.special_files,
    }
}

/// Opens the discs and restores from them.
fn extract_with(
    sources: &[PathBuf],
    prelude: Option<&mut dyn Prelude>,
    opts: &ExtractOptions,
    settings: &RepairSettings,
    pick: Option<&str>,
    ui: &Ui,
) -> Result<i32> {
    // Data discs missing or broken beyond their own FEC are first rebuilt from the parity discs
    // among the sources (into the work dir), then read like the others.
    let mut completed = complete_from_parity(sources, &opts.workdir, settings.memory_budget, ui)
        .map_err(crate::cli::explain::extract)?;
    let result = open_discs(&completed.paths, settings, pick, ui).and_then(|mut by_gen| {
        // Discs damaged beyond their FEC at opening are replaced first, then catalogs lent.
        completed.stand_by(&mut by_gen, settings, std::sync::Arc::new(*ui));
        completed.lend_catalogs(&mut by_gen);
        extract::extract(by_gen, prelude, opts, ui)
    });
    completed.remove_rebuilt();
    let report = result.map_err(crate::cli::explain::extract)?;
    if completed.rebuilt_count() > 0 {
        ui.say(&format!(
            "{} data disc(s) were rebuilt from the parity discs to restore; `bd-archive verify --repair -o DIR` writes their images to burn again.",
            completed.rebuilt_count()
        ));
    }
    finish_report(&report, ui)
}

/// Reads the discs through the drive into rescue copies, restores from them, and removes the
/// copies once everything was restored bit-exact (kept otherwise, to run again without the discs).
fn extract_from_drive(
    args: &ExtractArgs,
    opts: &ExtractOptions,
    settings: &RepairSettings,
    ui: &Ui,
) -> Result<i32> {
    let mut device = args.device.clone();
    if let Some(p) = args
        .sources
        .iter()
        .find(|p| bd_archive::optical::device::is_drive_path(p))
    {
        device.get_or_insert_with(|| p.clone());
    }
    if let Some(other) = args
        .sources
        .iter()
        .find(|p| !bd_archive::optical::device::is_drive_path(p))
    {
        bail!(
            "{}: combine image files and a drive in one extract is not supported; copy the discs first (`bd-archive verify --map` keeps a copy) or pass only images",
            other.display()
        );
    }
    let drive_opts = bd_archive::restore::drive::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let copies = super::extract_drive::collect_discs(
        &drive_opts,
        &opts.workdir,
        settings,
        super::extract_drive::Collect::Chain,
        ui,
    )?;
    let code = extract_with(&copies, None, opts, settings, args.set.as_deref(), ui)?;
    let discs = opts.workdir.join("discs");
    if code == crate::cli::exit::OK {
        let _ = std::fs::remove_dir_all(&discs);
    } else {
        ui.say(&format!(
            "The copies of the discs read are kept in {} (restore again from them without the discs; the .map files let a later pass read only what is missing)",
            discs.display()
        ));
    }
    Ok(code)
}

/// Writes OUT/corrupted-files.txt (if needed), says how it went and returns the exit code.
pub fn finish_report(report: &ExtractReport, ui: &Ui) -> Result<i32> {
    let total = report.entries;
    if report.is_bit_exact() {
        ui.say(&format!(
            "Restored {total} entries into {}; every file checked bit-exact.",
            report.output.display()
        ));
        return Ok(crate::cli::exit::OK);
    }
    for n in &report.notes {
        ui.warn(n);
    }
    if let Some(path) = report
        .write_corrupted_files()
        .map_err(crate::cli::explain::extract)?
    {
        ui.warn(&format!(
            "{} of {total} entries not restored bit-exact; listed in {}",
            report.damaged.len(),
            path.display()
        ));
    }
    Ok(crate::cli::exit::DAMAGED)
}
