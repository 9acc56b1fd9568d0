//! Which discs of the chain being restored from a drive were read, and which are still needed
//! (or can be rebuilt from the parity discs read, FORMAT.md §10).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bd_archive::disc::reader::{Disc, RepairSettings};
use bd_archive::format::catalog::DiscMap;
use bd_archive::format::disc_header::DiscHeader;

/// Per generation: what was read so far, and what the set holds once it is known.
#[derive(Default)]
struct GenerationProgress {
    /// Data disc numbers read.
    have: BTreeSet<u32>,
    /// Data discs read whose damage is beyond their own FEC.
    broken: BTreeSet<u32>,
    /// All data disc numbers: from the catalog (on the last disc), or 1..=n from a parity disc.
    all: Option<Vec<u32>>,
    /// Parity discs read (their index p).
    parity: BTreeSet<u32>,
    /// P, once a parity disc of the generation was read.
    parity_total: Option<u32>,
    /// The largest copy of a disc of the generation so far, in bytes (for the disk estimate).
    largest_copy: u64,
}

/// Per generation: the discs read so far. Filled once per disc copy, so asking what is still
/// missing never re-opens the copies already read.
#[derive(Default)]
pub(super) struct ChainProgress(BTreeMap<u32, GenerationProgress>);

impl ChainProgress {
    /// Takes note of the disc (every generation section of it) in the copy at `path`; `readable`
    /// is false when its damage is beyond its own FEC.
    pub(super) fn record(
        &mut self,
        path: &Path,
        header: &DiscHeader,
        readable: bool,
        settings: &RepairSettings,
    ) {
        if let Some(p) = header.parity() {
            // A parity disc (FORMAT.md §10) names n: the set's data discs are 1..=n.
            let g = self.0.entry(p.generation).or_default();
            g.parity.insert(p.index);
            g.parity_total = Some(p.parity_discs);
            g.all.get_or_insert_with(|| (1..=p.data_discs).collect());
            g.largest_copy = g.largest_copy.max(file_len(path));
            return;
        }
        let Ok(discs) = Disc::open_all(path, settings) else {
            return;
        };
        for d in discs {
            let g = self.0.entry(d.generation()).or_default();
            g.have.insert(d.number());
            g.largest_copy = g.largest_copy.max(file_len(path));
            if !readable {
                g.broken.insert(d.number());
            }
            if let Some(c) = &d.catalog {
                g.all = Some(c.discs.iter().map(|r| r.disc).collect());
                // Its disc map names the discs of earlier generations not read yet.
                let (map, _) = DiscMap::checked(&c.disc_map, d.generation());
                for e in 1..d.generation() {
                    let earlier = self.0.entry(e).or_default();
                    if earlier.all.is_none() && map.has(e) {
                        earlier.all = Some(map.discs(e));
                    }
                }
            }
        }
    }

    /// What is still missing, as readable phrases (empty: the chain is complete, or what lacks
    /// can be rebuilt from the parity discs read), and what the parity discs will rebuild.
    pub(super) fn still_needed(&self) -> (Vec<String>, Vec<String>) {
        let newest = self.0.keys().next_back().copied().unwrap_or(0);
        let mut needed = Vec::new();
        let mut rebuilt = Vec::new();
        for g in 1..=newest {
            let Some(p) = self.0.get(&g) else {
                needed.push(format!("generation {g} (no disc read yet)"));
                continue;
            };
            let Some(all) = &p.all else {
                needed.push(format!(
                    "generation {g}: its last disc (which holds the catalog) — read so far: disc(s) {}",
                    join(&p.have.iter().copied().collect::<Vec<_>>())
                ));
                continue;
            };
            let missing: Vec<u32> = all
                .iter()
                .copied()
                .filter(|n| !p.have.contains(n))
                .collect();
            let lost = missing.len() + p.broken.len();
            if lost == 0 {
                continue;
            }
            if lost <= p.parity.len() {
                let mut discs: Vec<u32> = missing.iter().chain(&p.broken).copied().collect();
                discs.sort_unstable();
                rebuilt.push(format!("generation {g} disc(s) {}", join(&discs)));
                continue;
            }
            // A parity disc is asked for only once the set is known to need one (a disc broken
            // beyond its FEC, or parity discs already read): a set without them cannot say so.
            let more = lost - p.parity.len();
            let parity_too = !p.broken.is_empty() || !p.parity.is_empty();
            let why = match p.broken.is_empty() {
                true => String::new(),
                false => format!(
                    "; disc(s) {} damaged beyond their own FEC",
                    join(&p.broken.iter().copied().collect::<Vec<_>>())
                ),
            };
            needed.push(match (missing.is_empty(), parity_too) {
                (false, false) => format!("generation {g} disc(s) {}", join(&missing)),
                (false, true) => format!(
                    "generation {g} disc(s) {}, or {more} more parity disc(s) if the set has them ({} read{why})",
                    join(&missing),
                    p.parity.len()
                ),
                (true, _) => format!(
                    "generation {g}: {more} more parity disc(s) if the set has them ({} read{why})",
                    p.parity.len()
                ),
            });
        }
        (needed, rebuilt)
    }
}

/// What a parity set (one generation, `verify -D`) still lacks.
pub(super) struct SetNeeds {
    /// Phrases naming the discs not read yet (empty: every disc of the set is read).
    pub missing: Vec<String>,
    /// Whether the discs read already suffice: every data disc read and readable, or the
    /// lost ones within what the parity discs read can rebuild.
    pub enough: bool,
    /// Discs in the set (n + P, P counted once a parity disc was read), when n is known.
    pub discs: Option<u32>,
    /// The largest copy so far, in bytes.
    pub largest_copy: u64,
}

impl ChainProgress {
    /// What generation `g`'s set still lacks: its data discs not read, and its parity discs not
    /// read once one of them told how many there are.
    pub(super) fn set_needs(&self, g: u32) -> SetNeeds {
        let empty = GenerationProgress::default();
        let p = self.0.get(&g).unwrap_or(&empty);
        let mut missing = Vec::new();
        let data_missing: Vec<u32> = match &p.all {
            Some(all) => all
                .iter()
                .copied()
                .filter(|d| !p.have.contains(d))
                .collect(),
            None => Vec::new(),
        };
        if p.all.is_none() {
            missing.push(format!(
                "— its last disc (it holds the catalog; read so far: disc(s) {})",
                join(&p.have.iter().copied().collect::<Vec<_>>())
            ));
        } else if !data_missing.is_empty() {
            missing.push(format!("disc(s) {}", join(&data_missing)));
        }
        let parity_missing: Vec<u32> = (1..=p.parity_total.unwrap_or(0))
            .filter(|q| !p.parity.contains(q))
            .collect();
        if !parity_missing.is_empty() {
            missing.push(format!("parity disc(s) {}", join(&parity_missing)));
        }
        let lost = data_missing.len() + p.broken.len();
        SetNeeds {
            missing,
            enough: p.all.is_some() && lost <= p.parity.len(),
            discs: p
                .all
                .as_ref()
                .map(|a| a.len() as u32 + p.parity_total.unwrap_or(0)),
            largest_copy: p.largest_copy,
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
