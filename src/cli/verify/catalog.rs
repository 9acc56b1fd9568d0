//! `verify` of a disc whose index is destroyed: its lost files are named through the catalog of
//! its generation (`--catalog`, an OUT dir's catalog, or the catalog disc among the targets).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use crate::cli::args::VerifyArgs;
use bd_archive::format::catalog::Catalog;
use bd_archive::format::records::{self, decode_record};
use bd_archive::restore::verify::{lost_entries_from_catalog, VerifyReport};
use bd_archive::util::escape::terminal_text;

/// The catalogs to map destroyed indexes through: `--catalog CAT`, else every
/// `<NAME>-gen<G>.catalog` beside the images/ directory of an OUT dir given as a target.
pub(super) fn catalogs_for(
    args: &VerifyArgs,
    files: &[PathBuf],
) -> Result<Vec<(PathBuf, Catalog)>> {
    let paths: Vec<PathBuf> = match &args.catalog {
        Some(c) => vec![c.clone()],
        None => files
            .iter()
            .filter(|f| f.join("images").is_dir())
            .filter_map(|f| std::fs::read_dir(f).ok())
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "catalog") && p.is_file())
            .collect(),
    };
    let read = |p: PathBuf| -> Result<(PathBuf, Catalog)> {
        let raw = std::fs::read(&p).map_err(|e| anyhow!("--catalog {}: {e}", p.display()))?;
        let (_, c): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
            .map_err(|e| anyhow!("--catalog {}: not a bd-archive catalog ({e}); give the <NAME>-gen<G>.catalog file of the disc's generation", p.display()))?;
        Ok((p, c))
    };
    if args.catalog.is_some() {
        paths.into_iter().map(read).collect()
    } else {
        // Catalogs found by themselves: an unreadable one is no reason to fail the verify.
        Ok(paths.into_iter().filter_map(|p| read(p).ok()).collect())
    }
}

/// The catalogs held by the other discs given (the catalog disc of a set among the targets),
/// when neither --catalog nor an OUT dir's catalog is there; discs that cannot be read are skipped.
pub(super) fn catalogs_on_discs(
    images: &[PathBuf],
    reports: &[VerifyReport],
    memory: u64,
) -> Vec<(PathBuf, Catalog)> {
    use bd_archive::disc::reader::{Disc, RepairSettings};
    let settings = RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    };
    images
        .iter()
        .zip(reports)
        .filter(|(img, r)| !r.index_destroyed && img.is_file())
        .filter_map(|(img, _)| {
            Disc::open_path(img, &settings)
                .ok()?
                .catalog
                .map(|c| (img.clone(), c))
        })
        .collect()
}

/// Lists a destroyed-index disc's lost files from the catalog of its chain and generation;
/// a catalog given with --catalog (`explicit`) that is of another chain or generation is
/// refused; catalogs found by themselves that do not fit leave the hint in place.
pub(super) fn apply_catalog(
    r: &mut VerifyReport,
    catalogs: &[(PathBuf, Catalog)],
    explicit: bool,
) -> Result<()> {
    if catalogs.is_empty() {
        return Ok(());
    }
    let (Some(id), Some(generation), Some(disc)) = (r.chain_id, r.generation, r.disc) else {
        r.lost_entries = vec![
            "(the disc index and header are destroyed: the catalog cannot be matched to the disc)"
                .into(),
        ];
        return Ok(());
    };
    let fitting = catalogs
        .iter()
        .find(|(_, c)| c.chain.chain_id == id && c.chain.generation == generation);
    let Some((_, cat)) = fitting else {
        if !explicit {
            return Ok(());
        }
        let (p, c) = &catalogs[0];
        bail!(
            "--catalog {}: it is the catalog of '{}' generation {}, but {} is a disc of '{}' generation {}; give that generation's catalog",
            p.display(),
            terminal_text(&c.chain.name),
            c.chain.generation,
            r.image,
            terminal_text(r.chain.as_deref().unwrap_or("?")),
            generation
        );
    };
    r.lost_entries = lost_entries_from_catalog(cat, disc, &r.unrepaired_lbas);
    Ok(())
}
