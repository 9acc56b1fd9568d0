//! Sets with parity discs: after every image's own verdict, each generation that has a parity
//! disc among the targets is judged as a set — missing discs and discs broken beyond their own
//! FEC are rebuilt from the others (into a work dir; kept with `--repair -o DIR`) — and its
//! verdict replaces its discs' own: rebuildable = 1, not rebuildable = 2 with the lost files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::cli::Ui;
use bd_archive::restore::parity::{
    find_parity_sets, rebuild, DiscState, ParitySet, RebuildOptions, RebuildReport,
};
use bd_archive::restore::verify::{lost_entries_from_catalog, Health, VerifyReport};

/// The verdict of the parity sets among `images`, and the images they cover (whose own verdicts
/// it replaces).
pub(super) struct SetVerdict {
    pub health: Health,
    pub covered: Vec<String>,
}

pub(super) fn verify_sets(
    images: &[PathBuf],
    reports: &[VerifyReport],
    repair_dir: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<Vec<SetVerdict>> {
    let state_of = |p: &Path| {
        let name = p.display().to_string();
        match reports.iter().find(|r| r.image == name).map(|r| r.health) {
            Some(Health::Ok) => DiscState::Intact,
            Some(Health::Repairable) => DiscState::Repairable,
            _ => DiscState::Broken,
        }
    };
    let sets = find_parity_sets(images, &state_of, memory).map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    // Parity discs given alone are verified as the ordinary discs they are.
    for set in sets
        .into_iter()
        .filter(|s| s.data.iter().any(|m| m.path.is_some()))
    {
        out.push(verify_set(&set, repair_dir, memory, ui)?);
    }
    Ok(out)
}

fn verify_set(
    set: &ParitySet,
    repair_dir: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<SetVerdict> {
    let (n, p) = (set.data_discs(), set.parity_discs());
    let who = format!("'{}' generation {}", set.name, set.generation);
    let covered: Vec<String> = set
        .data
        .iter()
        .chain(&set.parity)
        .filter_map(|m| m.path.as_ref().map(|p| p.display().to_string()))
        .collect();
    let lost: Vec<u32> = set.lost().map(|m| m.disc).collect();
    let damaged = set
        .data
        .iter()
        .chain(&set.parity)
        .any(|m| m.state != DiscState::Intact);
    report_missing_parity(set, &who, ui);
    let data_lost: Vec<u32> = lost.iter().copied().filter(|&d| d <= n).collect();
    if data_lost.is_empty() {
        ui.info(&format!(
            "{who}: set of {n} data + {p} parity disc(s): every data disc present{}",
            if damaged {
                " (damaged ones repair with their own FEC)"
            } else {
                " and intact"
            }
        ));
        let health = if damaged {
            Health::Repairable
        } else {
            Health::Ok
        };
        return Ok(SetVerdict { health, covered });
    }
    let report = rebuild_in_workdir(set, &who, repair_dir, memory, ui)?;
    report_rebuilt(set, &who, &report, ui);
    if report.lost.is_empty() {
        return Ok(SetVerdict {
            health: Health::Repairable,
            covered,
        });
    }
    let discs: Vec<String> = report
        .lost
        .iter()
        .map(|(d, _)| format!("{d} ({})", state_word(set, *d)))
        .collect();
    ui.info(&format!(
        "{who}: {} disc(s) lost or broken, P = {p} — not rebuildable: disc(s) {}; these files are lost:",
        lost.len(),
        discs.join(", ")
    ));
    report_lost_files(set, &report, ui);
    Ok(SetVerdict {
        health: Health::Broken,
        covered,
    })
}

/// A missing parity disc costs nothing now but lowers how many losses the set survives: say so.
fn report_missing_parity(set: &ParitySet, who: &str, ui: &Ui) {
    let n = set.data_discs();
    let missing: Vec<u32> = set
        .parity
        .iter()
        .filter(|m| m.state == DiscState::Missing)
        .map(|m| m.disc - n)
        .collect();
    // One line per disc, but never thousands: P comes from a disc.
    for p in missing.iter().take(8) {
        ui.info(&format!(
            "{who}: parity disc {p} missing — the set now survives the loss of fewer discs"
        ));
    }
    if missing.len() > 8 {
        ui.info(&format!(
            "{who}: … and {} more parity discs missing",
            missing.len() - 8
        ));
    }
}

/// Rebuilds the lost discs in a scratch work dir (under `repair_dir`, else the temp dir), which
/// is removed afterwards whatever the outcome.
fn rebuild_in_workdir(
    set: &ParitySet,
    who: &str,
    repair_dir: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<RebuildReport> {
    let work = match repair_dir {
        Some(d) => d.join(".bd-archive-rebuild"),
        None => std::env::temp_dir().join(format!("bd-archive-rebuild-{}", std::process::id())),
    };
    let opts = RebuildOptions {
        workdir: work.clone(),
        out_dir: repair_dir.map(Path::to_path_buf),
        memory,
    };
    let started = std::time::Instant::now();
    let report = rebuild(set, &opts, ui);
    ui.detail(&format!(
        "{who}: set rebuild took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_dir_all(&work);
    report.map_err(|e| anyhow!("{who}: rebuilding from the parity discs: {e}"))
}

/// One line per rebuilt disc: where it was written, or that it checked out bit-identical.
fn report_rebuilt(set: &ParitySet, who: &str, report: &RebuildReport, ui: &Ui) {
    for (d, kept) in &report.rebuilt {
        let how = state_word(set, *d);
        match kept {
            Some(path) => ui.info(&format!(
                "{who}: disc {d} {how} — rebuilt from the parity discs, bit-identical: {}",
                path.display()
            )),
            None => ui.info(&format!(
                "{who}: disc {d} {how} — rebuildable from the parity discs (checked bit-identical; `verify --repair -o DIR` writes it)"
            )),
        }
    }
}

/// The archived entries on the unrebuildable sectors, named from the catalog (first 50).
fn report_lost_files(set: &ParitySet, report: &RebuildReport, ui: &Ui) {
    match &set.catalog {
        Some(cat) => {
            let mut names = Vec::new();
            for (d, lbas) in &report.lost {
                names.extend(lost_entries_from_catalog(cat, *d, lbas));
            }
            names.sort();
            names.dedup();
            for e in names.iter().take(50) {
                ui.info(&format!("  lost: {e}"));
            }
            if names.len() > 50 {
                ui.info(&format!(
                    "  … and {} more archived entries lost",
                    names.len() - 50
                ));
            }
        }
        None => ui.info("  (no readable catalog among the discs to name them)"),
    }
}

fn state_word(set: &ParitySet, disc: u32) -> &'static str {
    match set.data.get(disc as usize - 1).map(|m| m.state) {
        Some(DiscState::Missing) => "missing",
        Some(DiscState::Broken) => "broken beyond its own FEC",
        _ => "damaged",
    }
}
