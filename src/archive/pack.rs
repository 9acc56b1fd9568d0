//! `create --pack-with`: a new generation added to the unburned last image of the previous one.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::archive::disc_writer::CarryIn;
use crate::disc::reader::{Disc, RepairSettings};
use crate::format::catalog::Catalog;

/// Opens the unburned image for `--pack-with`: it must be an intact last disc of its generation
/// (it holds the catalog, which becomes the base of the new generation).
pub fn open_pack(path: &Path, name: &str) -> Result<(CarryIn, Catalog)> {
    let discs = Disc::open_all(path, &RepairSettings::default())
        .with_context(|| format!("--pack-with {}", path.display()))?;
    let last = discs.last().expect("open_all returns at least one section");
    if last.repair_summary().is_some() || !last.problems.is_empty() {
        bail!(
            "--pack-with {}: the image is damaged; run `bd-archive verify --repair` first",
            path.display()
        );
    }
    if last.header.name != name {
        bail!(
            "--pack-with {}: belongs to chain '{}', not '{name}'",
            path.display(),
            last.header.name
        );
    }
    let Some(catalog) = last.catalog.clone() else {
        bail!(
            "--pack-with {}: is disc {} of generation {} but not its last disc (no catalog); only the unburned last disc can be packed",
            path.display(),
            last.number(),
            last.generation()
        );
    };
    if last.header.sections.len() >= crate::format::disc_header::MAX_SECTIONS {
        bail!(
            "--pack-with {}: already holds {} generations, the most one disc can",
            path.display(),
            last.header.sections.len()
        );
    }
    let fs = crate::image::read_filesystem(last.source().as_ref()).map_err(|e| {
        anyhow!(
            "--pack-with {}: cannot read its filesystem: {e}",
            path.display()
        )
    })?;
    let protected_end = last.header.fec_lba;
    let files = fs
        .files
        .into_iter()
        .filter(|f| f.size > 0 && f.lba >= crate::image::FIRST_DATA_LBA && f.lba < protected_end)
        .collect();
    let carry = CarryIn {
        image: path.to_path_buf(),
        files,
        protected_end,
        sections: last.header.sections.clone(),
    };
    Ok((carry, catalog))
}
