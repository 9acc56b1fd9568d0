//! `verify` of a disc whose index is destroyed: its lost files are named through the catalog of
//! its generation (`--catalog`, an OUT dir's catalog, or the catalog disc among the targets).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::args::VerifyArgs;
use bd_archive::disc::reader::{catalogs_on, RepairSettings};
use bd_archive::format::catalog::Catalog;
use bd_archive::format::records::{self, decode_record};
use bd_archive::restore::verify::{
    entries_on_disc_from_map, lost_entries_from_catalog, VerifyReport,
};
use bd_archive::util::escape::terminal_text;

/// The catalogs to map destroyed indexes through: `--catalog CAT` (a catalog file, the disc
/// image holding it — the generation's last disc —, or a directory of images or an OUT dir), else
/// every `<NAME>-gen<G>.catalog` beside the images/ directory of an OUT dir given as a target.
pub(super) fn catalogs_for(
    args: &VerifyArgs,
    files: &[PathBuf],
    memory: u64,
) -> Result<Vec<(PathBuf, Catalog)>> {
    let Some(given) = &args.catalog else {
        // Catalogs found by themselves: an unreadable one is no reason to fail the verify.
        return Ok(files
            .iter()
            .filter(|f| f.join("images").is_dir())
            .flat_map(|f| catalog_files_in(f))
            .filter_map(|p| read_catalog_file(&p).ok().flatten().map(|c| (p, c)))
            .collect());
    };
    if !given.is_dir() {
        if let Some(c) = read_catalog_file(given)? {
            return Ok(vec![(given.clone(), c)]);
        }
    }
    let mut found: Vec<(PathBuf, Catalog)> = catalog_files_in(given)
        .into_iter()
        .filter_map(|p| read_catalog_file(&p).ok().flatten().map(|c| (p, c)))
        .collect();
    found.extend(catalogs_on(given, &settings(memory)));
    if found.is_empty() {
        bail!(
            "--catalog {}: holds no bd-archive catalog; give the <NAME>-gen<G>.catalog file of the disc's generation, that generation's last disc (image), or a directory of its images",
            given.display()
        );
    }
    Ok(found)
}

/// The `*.catalog` files directly in `dir` (none when it is not a directory).
fn catalog_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "catalog") && p.is_file())
        .collect()
}

/// A catalog record file at `p`; None when `p` is not one (e.g. a disc image).
fn read_catalog_file(p: &Path) -> Result<Option<Catalog>> {
    let mut head = [0u8; 8];
    let is_catalog = std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|_| &head == records::CATALOG_MAGIC);
    match is_catalog {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => bail!("--catalog {}: {e}", p.display()),
    }
    let raw = std::fs::read(p).map_err(|e| anyhow!("--catalog {}: {e}", p.display()))?;
    let (_, c): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
        .map_err(|e| anyhow!("--catalog {}: the catalog is damaged ({e}); give another copy: that generation's last disc (image), or a directory of its images", p.display()))?;
    Ok(Some(c))
}

fn settings(memory: u64) -> RepairSettings {
    RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    }
}

/// The catalogs held by the other discs given (the catalog disc of a set among the targets, in
/// every generation section it has), when neither --catalog nor an OUT dir's catalog is there;
/// discs that cannot be read are skipped.
pub(super) fn catalogs_on_discs(
    images: &[PathBuf],
    reports: &[VerifyReport],
    memory: u64,
) -> Vec<(PathBuf, Catalog)> {
    images
        .iter()
        .zip(reports)
        .filter(|(img, r)| !r.index_destroyed && img.is_file())
        .flat_map(|(img, _)| catalogs_on(img, &settings(memory)))
        .collect()
}

/// Lists a destroyed-index disc's lost files from the catalog of its chain and generation, else
/// the files a later generation's catalog places on it (its disc map); a catalog given with
/// --catalog (`explicit`) that is of another chain or an earlier generation is refused;
/// catalogs found by themselves that do not fit leave the hint in place.
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
    // Every generation the disc holds (a --pack-with disc holds several) is looked up.
    let fitting: Vec<(&Catalog, u32)> = r
        .sections
        .iter()
        .filter_map(|s| {
            let (_, c) = catalogs
                .iter()
                .find(|(_, c)| c.chain.chain_id == id && c.chain.generation == s.generation)?;
            Some((c, s.disc))
        })
        .collect();
    if fitting.is_empty() {
        // A later generation's catalog maps the disc (its disc map), but not its sectors.
        let later = catalogs
            .iter()
            .filter(|(_, c)| c.chain.chain_id == id && c.chain.generation > generation)
            .find_map(|(_, c)| Some((c, entries_on_disc_from_map(c, generation, disc)?)));
        if let Some((c, files)) = later {
            r.lost_entries = std::iter::once(format!(
                "(generation {}'s catalog places these files of its tree on this disc; generation {generation}'s own catalog names exactly the lost ones)",
                c.chain.generation
            ))
            .chain(files)
            .collect();
            return Ok(());
        }
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
    }
    r.lost_entries = fitting
        .into_iter()
        .flat_map(|(c, disc)| lost_entries_from_catalog(c, disc, &r.unrepaired_lbas))
        .collect();
    Ok(())
}
