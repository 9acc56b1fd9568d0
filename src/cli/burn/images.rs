//! The disc images of an OUT directory, in burn order.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The images in `OUT/images`, in burn order (sorted by name: generation, data discs before
/// parity discs, number; see `bd_archive::disc::image_name`), each with its position in that
/// order, which is the disc number `--start` and the burn log use. Old `disc_NNNN.iso` names
/// keep their number.
pub(super) fn list_images(out: &Path) -> Result<Vec<(u32, PathBuf)>> {
    use bd_archive::disc::image_name::parse_image_path;
    let dir = out.join("images");
    let rd = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "{}: no images directory; pass the OUT directory of create (-i OUT)",
            dir.display()
        )
    })?;
    let mut named: Vec<_> = rd
        .flatten()
        .filter_map(|e| Some((parse_image_path(&e.path())?, e.path())))
        .collect();
    if named.is_empty() {
        bail!(
            "{}: no disc images (<name>-gen<GGGG>-disc<NNNN>.iso); run create first",
            dir.display()
        );
    }
    named.sort_by(|a, b| (a.0.burn_order(), &a.1).cmp(&(b.0.burn_order(), &b.1)));
    let all_old = named.iter().all(|(n, _)| n.generation.is_none());
    Ok(named
        .into_iter()
        .zip(1..)
        .map(|((name, path), position)| (if all_old { name.number } else { position }, path))
        .collect())
}
