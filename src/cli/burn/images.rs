//! The disc images of an OUT directory, in burn order.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `images/disc_NNNN.iso`, by disc number, then the parity discs.
pub(super) fn list_images(out: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let dir = out.join("images");
    let rd = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "{}: no images directory; pass the OUT directory of create (-i OUT)",
            dir.display()
        )
    })?;
    let mut v = Vec::new();
    let mut parity = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let num = name
            .strip_prefix("disc_")
            .and_then(|r| r.strip_suffix(".iso"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(n) = num {
            v.push((n, e.path()));
        } else if let Some(p) = parity_number(&name) {
            parity.push((p, e.path()));
        }
    }
    v.sort();
    // Parity discs (<NAME>-gen<GGGG>-parity<NNNN>.iso) are burned after the data discs.
    parity.sort();
    let after = v.last().map_or(0, |(n, _)| *n);
    v.extend(parity.into_iter().map(|(p, path)| (after + p, path)));
    if v.is_empty() {
        bail!(
            "{}: no disc images (disc_NNNN.iso); run create first",
            dir.display()
        );
    }
    Ok(v)
}

/// NNNN of `<NAME>-gen<GGGG>-parity<NNNN>.iso`.
fn parity_number(file: &str) -> Option<u32> {
    let stem = file.strip_suffix(".iso")?;
    let (_, n) = stem.rsplit_once("-parity")?;
    (n.len() == 4).then(|| n.parse().ok()).flatten()
}
