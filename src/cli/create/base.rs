//! `create --base`: the previous generation's catalog, from a catalog file, an OUT directory, the
//! previous generation's images, or a seed (dar) chain that is continued in our format.

use std::path::Path;

use anyhow::{anyhow, Result};

use bd_archive::archive::delta::{load_base, ChainError};
use bd_archive::format::catalog::Catalog;
use bd_archive::legacy::{BaseProblem, SeedError};

/// `--base`: a seed chain's dar catalogue (or its discs) is continued in our format; otherwise a
/// catalog of ours, or an OUT directory holding one. The format is decided here, once.
pub(super) fn base_catalog(path: &Path, name: &str) -> Result<Catalog> {
    let seed = bd_archive::legacy::seed_chain::load_seed_base(path, name).map_err(|e| match e {
        SeedError::Base {
            problem: BaseProblem::OtherChain { ref found, .. },
            ..
        } => anyhow!("--base {e}; a continued chain keeps its name (-n {found})"),
        SeedError::Base { .. } => anyhow!("--base {e}"),
        e => anyhow::Error::new(e),
    })?;
    if let Some(c) = seed {
        return Ok(c);
    }
    match load_base(path, name) {
        Ok(c) => Ok(c),
        // The previous generation's last disc image (or a directory of its images) carries
        // the catalog too.
        Err(e) => match catalog_from_images(path, name)? {
            Some(c) => Ok(c),
            None => Err(match e {
                ChainError::OtherChain(..) => {
                    anyhow!("--base {e}; all generations of a chain must use the same -n")
                }
                e => anyhow!("--base {e}"),
            }),
        },
    }
}

/// The newest catalog of chain `name` on the images at `path` (an image, or a directory of
/// images or disc directories; every generation a disc holds); None when there is none.
fn catalog_from_images(path: &Path, name: &str) -> Result<Option<Catalog>> {
    use bd_archive::disc::reader::{catalogs_on, RepairSettings};
    Ok(catalogs_on(path, &RepairSettings::default())
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.chain.name == name)
        .max_by_key(|c| c.chain.generation))
}
