//! What `create` leaves in OUT besides the images: the refusal to overwrite, files written
//! atomically, the source-problems and deferred-files lists.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::archive::error::CreateError;

use crate::archive::scan::SourceEntry;
use crate::archive::tar_stream::SourceProblem;
use crate::util::escape::escape_path;

/// Refuses an OUT that already holds images or this generation's catalog.
pub(crate) fn check_output(
    out: &Path,
    images_dir: &Path,
    catalog: &Path,
) -> Result<(), CreateError> {
    if out.join(crate::archive::resume::STATE_FILE).exists() {
        return Err(CreateError::UnfinishedCreate(out.to_path_buf()));
    }
    if out.exists() && !out.is_dir() {
        return Err(CreateError::OutputNotADirectory(out.to_path_buf()));
    }
    if catalog.exists() {
        return Err(CreateError::CatalogExists(catalog.to_path_buf()));
    }
    if let Ok(rd) = std::fs::read_dir(images_dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if crate::disc::image_name::parse_image_file_name(&n).is_some() {
                return Err(CreateError::ImagesExist {
                    dir: images_dir.to_path_buf(),
                    image: n.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename, so `path` is complete or absent.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CreateError> {
    let tmp = path.with_extension("partial");
    let failed = |what: &str| {
        let msg = format!("{what} {}", tmp.display());
        move |e| CreateError::Output(msg, e)
    };
    let mut f = std::fs::File::create(&tmp).map_err(failed("creating"))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(failed("writing"))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| CreateError::Output(format!("renaming {} into place", tmp.display()), e))?;
    Ok(())
}

/// Writes OUT/deferred-files.txt (one escaped path per line) when files were deferred.
pub(crate) fn write_deferred(out: &Path, deferred: &[SourceEntry]) -> Result<(), CreateError> {
    if deferred.is_empty() {
        return Ok(());
    }
    let mut text = String::from(
        "# bd-archive: files deferred by --min-last-disc-fill (not in this generation)\n",
    );
    for e in deferred {
        text.push_str(&escape_path(&e.rel_path));
        text.push('\n');
    }
    write_atomically(&out.join("deferred-files.txt"), text.as_bytes())
}

/// Writes OUT/<name>-gen<G>-source-problems.txt listing files that were not archived exactly;
/// returns its path (`None` when there were no problems).
pub(crate) fn write_problems(
    out: &Path,
    name: &str,
    generation: u32,
    problems: &[SourceProblem],
) -> Result<Option<PathBuf>, CreateError> {
    if problems.is_empty() {
        return Ok(None);
    }
    let path = out.join(format!("{name}-gen{generation}-source-problems.txt"));
    let mut text = String::from("# bd-archive: source files not archived exactly as they are now\n# path<TAB>what happened\n");
    for p in problems {
        text.push_str(&format!("{}\t{}\n", escape_path(&p.path), p.message));
    }
    write_atomically(&path, text.as_bytes())?;
    Ok(Some(path))
}
