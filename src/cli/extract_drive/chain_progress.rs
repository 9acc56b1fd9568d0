//! Which discs of the chain being restored from a drive were read, and which are still needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bd_archive::disc::reader::{Disc, RepairSettings};
use bd_archive::format::catalog::DiscMap;

/// Per generation: the disc numbers read so far and, once the disc holding the generation's
/// catalog was read, the numbers of all its discs. Filled once per disc copy, so asking what is
/// still missing never re-opens the copies already read.
#[derive(Default)]
pub(super) struct ChainProgress(BTreeMap<u32, (BTreeSet<u32>, Option<Vec<u32>>)>);

impl ChainProgress {
    /// Takes note of the disc (every generation section of it) in the copy at `path`.
    pub(super) fn record(&mut self, path: &Path, settings: &RepairSettings) {
        let Ok(discs) = Disc::open_all(path, settings) else {
            return;
        };
        for d in discs {
            let (have, all) = self.0.entry(d.generation()).or_default();
            have.insert(d.number());
            if let Some(c) = &d.catalog {
                *all = Some(c.discs.iter().map(|r| r.disc).collect());
                // Its disc map names the discs of earlier generations not read yet.
                let (map, _) = DiscMap::checked(&c.disc_map, d.generation());
                for g in 1..d.generation() {
                    let (_, all) = self.0.entry(g).or_default();
                    if all.is_none() && map.has(g) {
                        *all = Some(map.discs(g));
                    }
                }
            }
        }
    }

    /// What is still missing, as readable phrases (empty: the chain is complete).
    pub(super) fn still_needed(&self) -> Vec<String> {
        let newest = self.0.keys().next_back().copied().unwrap_or(0);
        let mut needed = Vec::new();
        for g in 1..=newest {
            match self.0.get(&g) {
                None => needed.push(format!("generation {g} (no disc read yet)")),
                Some((have, Some(all))) => {
                    let missing: Vec<u32> =
                        all.iter().copied().filter(|n| !have.contains(n)).collect();
                    if !missing.is_empty() {
                        needed.push(format!("generation {g} disc(s) {}", join(&missing)));
                    }
                }
                Some((have, None)) => needed.push(format!(
                    "generation {g}: its last disc (which holds the catalog) — read so far: disc(s) {}",
                    join(&have.iter().copied().collect::<Vec<_>>())
                )),
            }
        }
        needed
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
