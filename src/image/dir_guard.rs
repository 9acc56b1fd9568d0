//! The guard both filesystem readers (ISO9660 and UDF) keep on their directory walk, so a
//! hostile image can neither nest directories without end nor make the walk go round a loop.

use std::collections::HashSet;

use crate::image::ImageError;
use crate::sector::SectorSource;

/// Directories entered so far in one walk, and how deep a walk may go.
pub(super) struct DirWalkGuard {
    /// Filesystem named in errors ("ISO9660", "UDF").
    fs: &'static str,
    /// What a directory's location is called in errors ("LBA", "block").
    unit: &'static str,
    /// Deepest directory level accepted (the root is level 0).
    max_depth: usize,
    /// Locations of every directory entered: a second visit is a loop.
    visited: HashSet<u64>,
}

impl DirWalkGuard {
    pub(super) fn new(fs: &'static str, unit: &'static str, max_depth: usize) -> Self {
        DirWalkGuard {
            fs,
            unit,
            max_depth,
            visited: HashSet::new(),
        }
    }

    /// Entering the directory `path` at location `at`, `depth` levels below the root: refused
    /// past the depth limit (a limit error) or when it was entered before (a corrupt image).
    pub(super) fn enter(
        &mut self,
        src: &dyn SectorSource,
        at: u64,
        path: &str,
        depth: usize,
    ) -> Result<(), ImageError> {
        if depth > self.max_depth {
            return Err(ImageError::LimitExceeded {
                fs: self.fs,
                source_name: src.describe(),
                what: format!(
                    "directory {path:?} is nested deeper than {}",
                    self.max_depth
                ),
            });
        }
        if !self.visited.insert(at) {
            return Err(ImageError::Corrupt {
                fs: self.fs,
                source_name: src.describe(),
                what: format!(
                    "directory loop: {} {at} ({path:?}) is reached twice",
                    self.unit
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sector::MemorySectorSource;

    #[test]
    fn refuses_a_second_visit_and_a_walk_too_deep() {
        let src = MemorySectorSource { data: Vec::new() };
        let mut g = DirWalkGuard::new("UDF", "block", 2);
        g.enter(&src, 7, "", 0).unwrap();
        g.enter(&src, 8, "a/b", 2).unwrap();
        let err = g.enter(&src, 7, "a/b/c", 2).unwrap_err().to_string();
        assert!(err.contains("directory loop: block 7"), "{err}");
        assert!(matches!(
            g.enter(&src, 9, "a/b/c", 3),
            Err(ImageError::LimitExceeded { fs: "UDF", .. })
        ));
    }
}
