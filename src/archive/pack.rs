//! `create --pack-with`: a new generation added to the unburned last image of the previous one.

use std::path::Path;

use crate::archive::error::CreateError;

use crate::archive::disc_writer::CarryIn;
use crate::disc::reader::{Disc, RepairSettings};
use crate::format::catalog::Catalog;

/// Opens the unburned image for `--pack-with`: it must be an intact last disc of its generation
/// (it holds the catalog, which becomes the base of the new generation). Public because the
/// command opens it before [`crate::archive::prepare`]: a refused image is reported before the
/// source is scanned, and its catalog is the job's base.
pub fn open_pack(path: &Path, name: &str) -> Result<(CarryIn, Catalog), CreateError> {
    let discs = Disc::open_all(path, &RepairSettings::default())
        .map_err(|e| CreateError::PackUnreadable(path.to_path_buf(), e))?;
    let last = discs.last().expect("open_all returns at least one section");
    if last.repair_summary().is_some() || !last.problems.is_empty() {
        return Err(CreateError::PackDamaged(path.to_path_buf()));
    }
    if last.header.name != name {
        return Err(CreateError::PackOtherChain {
            image: path.to_path_buf(),
            found: last.header.name.clone(),
            name: name.to_string(),
        });
    }
    let Some(catalog) = last.catalog.clone() else {
        return Err(CreateError::PackNotLastDisc {
            image: path.to_path_buf(),
            disc: last.number(),
            generation: last.generation(),
        });
    };
    if last.header.sections.len() >= crate::format::disc_header::MAX_SECTIONS {
        return Err(CreateError::PackFull(
            path.to_path_buf(),
            last.header.sections.len(),
        ));
    }
    let fs = crate::image::read_filesystem(last.source().as_ref())
        .map_err(|e| CreateError::PackFilesystem(path.to_path_buf(), e))?;
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
