//! The sources of `extract` and `list`: every SOURCE opened as discs of one chain.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::disc::reader::{expand_sources, Disc, ReadError, RepairSettings};
use crate::util::progress::Progress;

/// Opens every source, keeping only discs of one chain; returns discs grouped by generation.
pub fn open_discs(
    sources: &[std::path::PathBuf],
    settings: &RepairSettings,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, Vec<Disc>>> {
    if sources.is_empty() {
        bail!("no SOURCE given: pass disc images or directories of images (reading from a drive is not available yet)");
    }
    let paths = expand_sources(sources)?;
    let mut by_gen: BTreeMap<u32, Vec<Disc>> = BTreeMap::new();
    let mut chain: Option<([u8; 16], String)> = None;
    for p in &paths {
        let discs = match Disc::open_all(p, settings) {
            Ok(d) => d,
            Err(e @ ReadError::NotOurs(_)) => return Err(e.into()),
            Err(e) => {
                progress.warn(&format!("{e}; this disc is skipped"));
                continue;
            }
        };
        if let Some(Ok(r)) = discs[0].repair_summary() {
            progress.warn(&format!(
                "{}: damaged ({} sectors lost), repaired with its FEC data",
                p.display(),
                r.lost_sectors
            ));
        }
        for disc in discs {
            for problem in &disc.problems {
                progress.warn(&format!("{}: {problem}", p.display()));
            }
            match &chain {
                None => chain = Some((disc.header.chain_id, disc.header.name.clone())),
                Some((id, name)) if *id != disc.header.chain_id => {
                    bail!(
                        "{}: belongs to chain '{}', but the other sources belong to '{name}'; extract one chain at a time",
                        p.display(),
                        disc.header.name
                    );
                }
                _ => {}
            }
            progress.detail(&format!(
                "{}: {} generation {} disc {}",
                p.display(),
                disc.header.name,
                disc.generation(),
                disc.number()
            ));
            by_gen.entry(disc.generation()).or_default().push(disc);
        }
    }
    if by_gen.is_empty() {
        bail!("none of the sources could be read");
    }
    Ok(by_gen)
}
