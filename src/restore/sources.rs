//! The sources of `extract` and `list`: every SOURCE opened as discs of one chain.

use std::collections::BTreeMap;

use crate::restore::ExtractError;

use crate::disc::reader::{expand_sources, Disc, ReadError, RepairSettings};
use crate::util::progress::Progress;

/// Opens every source, keeping only discs of one chain; returns discs grouped by generation.
/// The one place where SOURCE arguments become discs, shared by `extract`, `list` and the
/// fuzz round trip, so all of them accept the same sources and refuse the same mixes.
/// Two different sets claiming one generation (two `create --base GEN1` runs) are refused,
/// naming both, unless `pick` (`--set ID`) chooses one: a mix is never restored by guess.
pub fn open_discs(
    sources: &[std::path::PathBuf],
    settings: &RepairSettings,
    pick: Option<i64>,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, Vec<Disc>>, ExtractError> {
    if sources.is_empty() {
        return Err(ExtractError::NoSources);
    }
    let paths = expand_sources(sources)?;
    let mut by_gen: BTreeMap<u32, Vec<Disc>> = BTreeMap::new();
    let mut chain: Option<([u8; 16], String)> = None;
    for p in &paths {
        let discs = match Disc::open_all(p, settings) {
            Ok(d) => d,
            Err(e @ ReadError::NotOurs(_)) => return Err(e.into()),
            Err(e @ ReadError::ParityDisc(..)) => {
                progress.detail(&format!(
                    "{e}; not needed while the data discs are readable"
                ));
                continue;
            }
            Err(e) => {
                progress.warn(&format!("{e}; this disc is skipped"));
                continue;
            }
        };
        if let Some(Ok(r)) = discs[0].repair_summary() {
            progress.warn(&match r.unrepaired {
                0 => format!(
                    "{}: damaged ({} sectors lost), repaired with its FEC data",
                    p.display(),
                    r.lost_sectors
                ),
                n => format!(
                    "{}: damaged ({} sectors lost, {n} of them beyond what its FEC data can rebuild)",
                    p.display(),
                    r.lost_sectors
                ),
            });
        }
        for disc in discs {
            for problem in &disc.problems {
                progress.warn(&format!("{}: {problem}", p.display()));
            }
            match &chain {
                None => chain = Some((disc.header.chain_id, disc.header.name.clone())),
                Some((id, name)) if *id != disc.header.chain_id => {
                    return Err(ExtractError::MixedChains {
                        path: p.clone(),
                        found: disc.header.name.clone(),
                        first: name.clone(),
                    });
                }
                _ => {}
            }
            progress.detail(&format!(
                "{}: {} generation {} disc {} (set {})",
                p.display(),
                disc.header.name,
                disc.generation(),
                disc.number(),
                set_id(&disc).map_or_else(|| "unknown".into(), |s| s.to_string())
            ));
            by_gen.entry(disc.generation()).or_default().push(disc);
        }
    }
    if by_gen.is_empty() {
        return Err(ExtractError::NothingReadable);
    }
    resolve_sets(by_gen, pick, progress)
}

/// Which set of its generation a disc belongs to: the creation time of that generation (seconds
/// since 1970), the same on every disc one `create` run wrote. From the disc's index or catalog
/// (per generation, also on a packed disc), else from the header when this is the header's own
/// (newest) section; None when neither is readable.
pub fn set_id(d: &Disc) -> Option<i64> {
    d.index
        .as_ref()
        .map(|i| i.chain.created_unix)
        .or_else(|| d.catalog.as_ref().map(|c| c.chain.created_unix))
        .or_else(|| (d.section + 1 == d.header.sections.len()).then_some(d.header.created_unix))
}

/// Refuses a generation given as two different sets, or keeps the one `pick` names.
fn resolve_sets(
    by_gen: BTreeMap<u32, Vec<Disc>>,
    pick: Option<i64>,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, Vec<Disc>>, ExtractError> {
    let mut picked = false;
    let mut out = BTreeMap::new();
    for (g, discs) in by_gen {
        let mut sets: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for d in &discs {
            if let Some(id) = set_id(d) {
                sets.entry(id).or_default().push(d.name.clone());
            }
        }
        if sets.len() < 2 {
            picked |= pick.is_some_and(|p| sets.contains_key(&p));
            out.insert(g, discs);
            continue;
        }
        let Some(p) = pick.filter(|p| sets.contains_key(p)) else {
            return Err(ExtractError::SetConflict(describe_conflict(
                &discs[0].header.name,
                g,
                &sets,
            )));
        };
        picked = true;
        let (keep, drop): (Vec<Disc>, Vec<Disc>) =
            discs.into_iter().partition(|d| set_id(d) == Some(p));
        for d in drop {
            progress.step(&format!("{}: not of set {p} (--set); left out", d.name));
        }
        out.insert(g, keep);
    }
    if let (Some(p), false) = (pick, picked) {
        return Err(ExtractError::NoSuchSet(p));
    }
    Ok(out)
}

/// The refusal of a generation given as several sets: each set's id, creation time and images.
pub fn describe_conflict(
    chain: &str,
    generation: u32,
    sets: &BTreeMap<i64, Vec<String>>,
) -> String {
    let described: Vec<String> = sets
        .iter()
        .map(|(id, names)| {
            let (y, m, d, hh, mm, ss) = crate::util::civil_time::civil_from_unix(*id);
            format!(
                "set {id} (created {y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC): {}",
                names.join(", ")
            )
        })
        .collect();
    let picks: Vec<String> = sets.keys().map(|id| format!("--set {id}")).collect();
    format!(
        "generation {generation} of chain '{chain}' is given as {} different sets (separate create runs): {}; pass {} to choose one, or give the images of one set only",
        sets.len(),
        described.join("; "),
        picks.join(" or ")
    )
}
