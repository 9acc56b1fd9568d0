//! `list CATALOG...`: catalog files read and checked to be of one chain and, per generation, one set.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

use bd_archive::format::catalog::Catalog;
use bd_archive::format::records::{self, decode_record};

/// Reads catalogs of one chain, oldest generation first; two of one generation must be the same
/// set (see `extract --set`).
pub(super) fn read_catalogs(paths: &[std::path::PathBuf]) -> Result<Vec<Catalog>> {
    let mut by_gen: BTreeMap<u32, (Catalog, &Path)> = BTreeMap::new();
    for p in paths {
        let raw = std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        let (_, c): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        if let Some((first, fp)) = by_gen.values().next() {
            if first.chain.chain_id != c.chain.chain_id {
                bail!(
                    "{}: belongs to chain '{}', but {} to '{}'; list one chain at a time",
                    p.display(),
                    c.chain.name,
                    fp.display(),
                    first.chain.name
                );
            }
        }
        if let Some((other, op)) = by_gen.get(&c.chain.generation) {
            if other.chain.created_unix != c.chain.created_unix {
                bail!(
                    "{} and {} are two different sets of generation {} (separate create runs); list them one at a time",
                    op.display(),
                    p.display(),
                    c.chain.generation
                );
            }
        }
        by_gen.insert(c.chain.generation, (c, p));
    }
    Ok(by_gen.into_values().map(|(c, _)| c).collect())
}

pub(super) fn is_catalog(p: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == records::CATALOG_MAGIC
}
