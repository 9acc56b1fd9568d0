//! Sets with parity discs: after every image's own verdict, each generation that has a parity
//! disc among the targets is judged as a set — missing discs and discs broken beyond their own
//! FEC are rebuilt from the others (into a work dir; kept with `--repair -o DIR`, parity discs
//! too) — and its verdict replaces its discs' own: rebuildable = 1, not rebuildable = 2 with the
//! lost files. With `--json` the verdict is a `parity_set` object (docs/json.md) and the
//! messages go to stderr.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::cli::Ui;
use bd_archive::restore::parity::{
    find_parity_sets, rebuild, DiscState, ParitySet, RebuildOptions, RebuildReport, SetMember,
};
use bd_archive::restore::verify::{lost_entries_from_catalog, Health, VerifyReport};

/// The verdict of a parity set among the targets, and the images it covers (whose own verdicts
/// it replaces).
pub(super) struct SetVerdict {
    pub health: Health,
    pub covered: Vec<String>,
    /// What `--json` says of the set.
    pub json: SetJson,
}

/// A parity set's verdict in `verify --json` (docs/json.md, `parity_set`).
#[derive(Clone, Debug, Serialize)]
pub(super) struct SetJson {
    chain: String,
    generation: u32,
    /// The set id, 32 hex digits (as `set` of the disc objects).
    set: Option<String>,
    data_discs: u32,
    parity_discs: u32,
    discs: Vec<SetDiscJson>,
    /// Whether every lost or broken disc (data and parity) can be rebuilt.
    rebuildable: bool,
    /// Archived entries lost when not rebuildable (all of them, from the catalog).
    lost_files: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
struct SetDiscJson {
    /// Number in the set: data discs 1..=n, parity disc p is n + p.
    disc: u32,
    /// p for a parity disc, else null.
    parity_disc: Option<u32>,
    state: DiscState,
    image: Option<String>,
    /// Where `--repair -o DIR` wrote its rebuilt image.
    rebuilt_to: Option<String>,
}

/// Where the set's messages go: stdout, or stderr under `--json` (stdout holds the document).
#[derive(Clone, Copy)]
pub(super) struct SetOutput<'a> {
    pub ui: &'a Ui,
    pub json: bool,
}

impl SetOutput<'_> {
    fn line(&self, msg: &str) {
        if self.json {
            self.ui.say(msg);
        } else {
            self.ui.info(msg);
        }
    }
}

pub(super) fn verify_sets(
    images: &[PathBuf],
    reports: &[VerifyReport],
    repair_dir: Option<&Path>,
    memory: u64,
    out: SetOutput,
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
    let mut verdicts = Vec::new();
    // Parity discs given alone are verified as the ordinary discs they are.
    for set in sets
        .into_iter()
        .filter(|s| s.data.iter().any(|m| m.path.is_some()))
    {
        verdicts.push(verify_set(&set, reports, repair_dir, memory, out)?);
    }
    Ok(verdicts)
}

fn members(set: &ParitySet) -> impl Iterator<Item = &SetMember> {
    set.data.iter().chain(&set.parity)
}

fn verify_set(
    set: &ParitySet,
    reports: &[VerifyReport],
    repair_dir: Option<&Path>,
    memory: u64,
    out: SetOutput,
) -> Result<SetVerdict> {
    let (n, p) = (set.data_discs(), set.parity_discs());
    let who = format!("'{}' generation {}", set.name, set.generation);
    let covered: Vec<String> = members(set)
        .filter_map(|m| m.path.as_ref().map(|p| p.display().to_string()))
        .collect();
    let mut json = set_json(set, reports, &covered);
    let lost: Vec<u32> = set.lost().map(|m| m.disc).collect();
    let parity_lost = lost.iter().any(|&d| d > n);
    // A parity disc not given is not damage (it may be kept elsewhere): said, exit unchanged.
    let damaged = members(set)
        .any(|m| m.state != DiscState::Intact && !(m.disc > n && m.state == DiscState::Missing));
    let data_lost = lost.iter().any(|&d| d <= n);
    if !data_lost {
        let data_damaged = set.data.iter().any(|m| m.state != DiscState::Intact);
        out.line(&format!(
            "{who}: set of {n} data + {p} parity disc(s): every data disc present{}",
            if data_damaged {
                " (damaged ones repair with their own FEC)"
            } else {
                " and intact"
            }
        ));
    }
    let health = if damaged {
        Health::Repairable
    } else {
        Health::Ok
    };
    let rebuild_now = data_lost || (parity_lost && repair_dir.is_some());
    if !rebuild_now {
        report_lost_parity(set, &who, out);
        return Ok(SetVerdict {
            health,
            covered,
            json,
        });
    }
    let report = rebuild_in_workdir(set, &who, repair_dir, memory, out.ui)?;
    report_rebuilt(set, &who, &report, out, &mut json);
    if let Some(why) = &report.parity_refused {
        bail!("{who}: the lost parity disc image(s) are not written: {why}");
    }
    if report.lost.is_empty() {
        if report.parity_rebuilt.is_empty() {
            report_lost_parity(set, &who, out);
        }
        return Ok(SetVerdict {
            health: Health::Repairable,
            covered,
            json,
        });
    }
    let discs: Vec<String> = report
        .lost
        .iter()
        .map(|(d, _)| format!("{d} ({})", state_word(set, *d)))
        .collect();
    out.line(&format!(
        "{who}: {} disc(s) missing or broken, P = {p} — not rebuildable: disc(s) {}; without them these files cannot be restored:",
        lost.len(),
        discs.join(", ")
    ));
    json.rebuildable = false;
    json.lost_files = report_lost_files(set, &report, out);
    Ok(SetVerdict {
        health: Health::Broken,
        covered,
        json,
    })
}

/// The set as `--json` shows it before any rebuild: every disc's state, rebuildable until shown
/// otherwise.
fn set_json(set: &ParitySet, reports: &[VerifyReport], covered: &[String]) -> SetJson {
    let n = set.data_discs();
    let id = reports
        .iter()
        .filter(|r| covered.contains(&r.image) && r.generation == Some(set.generation))
        .find_map(|r| r.set.as_ref().map(|s| s.full()));
    SetJson {
        chain: set.name.clone(),
        generation: set.generation,
        set: id,
        data_discs: n,
        parity_discs: set.parity_discs(),
        discs: members(set)
            .map(|m| SetDiscJson {
                disc: m.disc,
                parity_disc: (m.disc > n).then(|| m.disc - n),
                state: m.state,
                image: m.path.as_ref().map(|p| p.display().to_string()),
                rebuilt_to: None,
            })
            .collect(),
        rebuildable: true,
        lost_files: Vec::new(),
    }
}

/// Lost parity discs whose images were not written (no `--repair -o DIR`): they can be. One not
/// given costs nothing now but lowers how many losses the set survives.
fn report_lost_parity(set: &ParitySet, who: &str, out: SetOutput) {
    let n = set.data_discs();
    for m in set.parity.iter().filter(|m| m.state >= DiscState::Broken) {
        let what = if m.state == DiscState::Missing {
            "not given (the set survives the loss of fewer discs without it)"
        } else {
            "broken beyond its own FEC"
        };
        out.line(&format!(
            "{who}: parity disc {} {what} — rebuildable from the data discs (`verify --repair -o DIR` writes its image)",
            m.disc - n,
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
fn report_rebuilt(
    set: &ParitySet,
    who: &str,
    report: &RebuildReport,
    out: SetOutput,
    json: &mut SetJson,
) {
    let mut written = |disc: u32, path: &Path| {
        if let Some(d) = json.discs.iter_mut().find(|d| d.disc == disc) {
            d.rebuilt_to = Some(path.display().to_string());
        }
    };
    for (d, kept) in &report.rebuilt {
        let how = state_word(set, *d);
        match kept {
            Some(path) => {
                written(*d, path);
                out.line(&format!(
                    "{who}: disc {d} {how} — rebuilt from the parity discs, bit-identical: {}",
                    path.display()
                ))
            }
            None => out.line(&format!(
                "{who}: disc {d} {how} — rebuildable from the parity discs (checked bit-identical; `verify --repair -o DIR` writes it)"
            )),
        }
    }
    let n = set.data_discs();
    for (p, path) in &report.parity_rebuilt {
        written(n + p, path);
        out.line(&format!(
            "{who}: parity disc {p} {} — rebuilt from the data discs: {}",
            state_word(set, n + p),
            path.display()
        ));
    }
}

/// The archived entries on the unrebuildable sectors, named from the catalog (first 50 shown;
/// all returned).
fn report_lost_files(set: &ParitySet, report: &RebuildReport, out: SetOutput) -> Vec<String> {
    let Some(cat) = &set.catalog else {
        out.line("  (no readable catalog among the discs to name them)");
        return Vec::new();
    };
    let mut names = Vec::new();
    for (d, lbas) in &report.lost {
        names.extend(lost_entries_from_catalog(cat, *d, lbas));
    }
    names.sort();
    names.dedup();
    for e in names.iter().take(50) {
        out.line(&format!("  lost: {e}"));
    }
    if names.len() > 50 {
        out.line(&format!(
            "  … and {} more archived entries lost",
            names.len() - 50
        ));
    }
    names
}

fn state_word(set: &ParitySet, disc: u32) -> &'static str {
    match members(set).find(|m| m.disc == disc).map(|m| m.state) {
        Some(DiscState::Missing) => "missing",
        Some(DiscState::Broken) => "broken beyond its own FEC",
        _ => "damaged",
    }
}
