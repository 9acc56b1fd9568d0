//! Parity-set helpers shared by the parity test modules.

use std::fs;
use std::path::{Path, PathBuf};

use super::images;

/// The images of OUT split into (data, parity), each in name (= disc) order.
pub fn data_and_parity(out: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (parity, data) = images(out)
        .into_iter()
        .partition(|i| i.to_string_lossy().contains("-parity"));
    (data, parity)
}

/// Copies `keep` into a fresh directory T/`name` (the discs as the user has them).
pub fn set_of(t: &tempfile::TempDir, name: &str, keep: &[&PathBuf]) -> PathBuf {
    let dir = t.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    for img in keep {
        fs::copy(img, dir.join(img.file_name().unwrap())).unwrap();
    }
    dir
}
