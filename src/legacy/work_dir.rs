//! A work directory for the seed formats (damaged slices are copied there for par2 repair),
//! removed when dropped unless the user gave it (`-w`).

use std::path::{Path, PathBuf};

/// The directory, and whether it is ours to remove.
pub(super) struct WorkDir {
    path: PathBuf,
    keep: bool,
    /// Parent created for it, removed too when left empty.
    parent: Option<PathBuf>,
}

impl WorkDir {
    /// `base`: kept user work directory; else a fresh one under `parent` (or the temp dir),
    /// removed on drop.
    pub(super) fn new(base: Option<&PathBuf>, parent: Option<&Path>) -> std::io::Result<WorkDir> {
        if let Some(b) = base {
            std::fs::create_dir_all(b)?;
            return Ok(WorkDir {
                path: b.clone(),
                keep: true,
                parent: None,
            });
        }
        let root = parent
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let path = root.join(format!(
            "bd-archive-seed-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir {
            path,
            keep: false,
            parent: parent.map(Path::to_path_buf),
        })
    }
    /// Its path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
            if let Some(p) = &self.parent {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}
