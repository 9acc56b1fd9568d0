//! `create`: options → [`archive::prepare`] → overview and confirmation → [`archive::create`] →
//! summary. The pipeline itself is in the library (`bd_archive::archive`).
//!
//! - `options`: the flags checked and turned into the engine's `CreateJob`;
//! - `base`: `--base` resolved to the previous generation's catalog;
//! - `render`: the overview and the deferred files shown before anything is written;
//! - `binary_note`: the once-per-binary note that the binary is not carried on the discs.

mod base;
mod binary_note;
mod options;
mod render;

use anyhow::Result;

use crate::cli::args::CreateArgs;
use crate::cli::{confirm, Ui};
use bd_archive::archive::{self, Preparation};
use bd_archive::util::escape::escape_path;
use options::job;
use render::{print_overview, report_deferred};

/// Runs `create`.
pub fn run(args: &CreateArgs, ui: &Ui) -> Result<i32> {
    let job = job(args, ui)?;
    let prepared = match archive::prepare(&job, ui).map_err(crate::cli::explain::create)? {
        Preparation::Unchanged { base_generation } => {
            ui.info(&format!(
                "Nothing changed since generation {base_generation}; no new generation written (pass --allow-empty to write one anyway)."
            ));
            return Ok(crate::cli::exit::OK);
        }
        Preparation::Ready(p) => *p,
    };
    let (generation, deferred) = (prepared.generation, &prepared.deferred);
    let pct = args.min_last_disc_fill;
    report_deferred(ui, deferred, prepared.incremental, pct);
    if args.json && args.dry_run {
        let doc = serde_json::json!({ "generation": generation, "overview": prepared.overview, "changes": prepared.delta });
        ui.info(&serde_json::to_string_pretty(&doc)?);
        return Ok(crate::cli::exit::OK);
    }
    print_overview(
        ui,
        &prepared.overview,
        args,
        generation,
        prepared.delta.as_ref(),
    );
    report_deferred(ui, deferred, prepared.incremental, pct);
    if args.dry_run {
        return Ok(crate::cli::exit::OK);
    }
    if !args.yes && !confirm("Create the images?", "-y/--yes")? {
        ui.say("Cancelled; nothing written.");
        return Ok(crate::cli::exit::OK);
    }
    let report = archive::create(&job, prepared, ui).map_err(crate::cli::explain::create)?;
    if job.warn_binary_not_carried {
        binary_note::remember();
    }
    // The scan's problems were shown when met.
    for p in report.problems.iter().skip(report.scan_problems) {
        ui.warn(&format!("{}: {}", escape_path(&p.path), p.message));
    }
    if let Some(path) = &report.problems_file {
        ui.warn(&format!(
            "{} source problem(s) listed in {} (exit 1: finished with damage)",
            report.problems.len(),
            path.display()
        ));
    }
    if let (Some(p), Some(first)) = (&args.pack_with, report.images.first()) {
        ui.info(&format!(
            "{} now holds {} and generation {generation}: burn it instead of {} (which is left untouched)",
            first.display(),
            p.display(),
            p.display()
        ));
    }
    ui.say(&format!(
        "Done: {} image(s) in {}, catalog {}",
        report.images.len(),
        report.images_dir.display(),
        report.catalog.display()
    ));
    // As tar: files unreadable or changed while read make the run "finished with damage".
    Ok(if report.problems.is_empty() {
        crate::cli::exit::OK
    } else {
        crate::cli::exit::DAMAGED
    })
}
