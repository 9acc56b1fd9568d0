//! What `create` leaves in OUT besides the images: the refusal to overwrite, files written
//! atomically, the source-problems and deferred-files lists.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::archive::scan::SourceEntry;
use crate::archive::tar_stream::SourceProblem;
use crate::util::escape::escape_path;

/// Refuses an OUT that already holds images or this generation's catalog.
pub(crate) fn check_output(out: &Path, images_dir: &Path, catalog: &Path) -> Result<()> {
    if out.join(crate::archive::resume::STATE_FILE).exists() {
        bail!(
            "{} holds an interrupted create; continue it with --resume (same options), or choose another -o (nothing was changed)",
            out.display()
        );
    }
    if out.exists() && !out.is_dir() {
        bail!("-o {}: exists and is not a directory", out.display());
    }
    if catalog.exists() {
        bail!(
            "{} already exists; choose another -o (nothing was changed)",
            catalog.display()
        );
    }
    if let Ok(rd) = std::fs::read_dir(images_dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("disc_") && n.ends_with(".iso") {
                bail!(
                    "{} already holds disc images ({n}); choose an empty -o or remove them (nothing was changed)",
                    images_dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename, so `path` is complete or absent.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// Writes OUT/deferred-files.txt (one escaped path per line) when files were deferred.
pub(crate) fn write_deferred(out: &Path, deferred: &[SourceEntry]) -> Result<()> {
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
) -> Result<Option<PathBuf>> {
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
