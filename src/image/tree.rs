//! The writer's model: a validated directory tree built from the caller's file list, the
//! in-memory metadata region, and the sector allocator for LBA 16..FIRST_DATA_LBA.

use super::{ImageError, ImageFile, FIRST_DATA_LBA, MAX_FILE_SIZE, METADATA_START_LBA};
use crate::sector::SECTOR_SIZE;
use std::collections::HashMap;

/// First UDF anchor volume descriptor pointer (fixed by ECMA-167).
pub(crate) const AVDP_LBA: u64 = 256;
/// Main UDF volume descriptor sequence: 16 sectors from here.
pub(crate) const MAIN_VDS_LBA: u64 = 257;
/// Reserve UDF volume descriptor sequence: 16 sectors from here.
pub(crate) const RESERVE_VDS_LBA: u64 = 273;
/// Length of each VDS extent in sectors (ECMA-167 3/8.4.2 asks for at least 16).
pub(crate) const VDS_SECTORS: u64 = 16;
/// Logical volume integrity sequence: LVID then a terminating descriptor.
pub(crate) const LVID_LBA: u64 = 289;
/// Sectors of the integrity sequence extent.
pub(crate) const LVID_SECTORS: u64 = 2;
/// First LBA after the fixed UDF descriptor block 256..=290.
pub(crate) const FIXED_END_LBA: u64 = 291;
/// First sector of the dynamic area (after PVD, SVD, terminator, BEA01, NSR03, TEA01).
pub(crate) const DYNAMIC_START_LBA: u64 = 22;
/// Deepest directory level allowed (ISO9660 allows 8 levels including the root).
pub(crate) const MAX_DIR_DEPTH: usize = 7;
/// Longest path component in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 240;

/// One directory. `dirs[0]` is the root.
pub(crate) struct Dir {
    /// Real (UTF-8) name; empty for the root.
    pub name: String,
    /// Index of the parent in `Tree::dirs`; the root is its own parent.
    pub parent: usize,
    /// Child directories, sorted by real name.
    pub subdirs: Vec<usize>,
    /// Child files (indices into `Tree::files`), sorted by real name.
    pub files: Vec<usize>,
}

/// One file, validated.
pub(crate) struct FileEnt {
    /// Real (UTF-8) leaf name.
    pub name: String,
    /// Full path as given.
    pub path: String,
    /// First data sector: FIRST_DATA_LBA ≤ lba and lba + sectors ≤ total - 1; 0 when size is 0.
    pub lba: u64,
    /// Size in bytes, ≤ u32::MAX.
    pub size: u64,
    /// Mode r-xr-xr-x instead of r--r--r--.
    pub executable: bool,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

/// The validated tree.
pub(crate) struct Tree {
    /// Directories; index 0 is the root.
    pub dirs: Vec<Dir>,
    /// Files in the caller's order.
    pub files: Vec<FileEnt>,
}

fn invalid(path: &str, reason: &str) -> ImageError {
    ImageError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks one file of the caller's list: safe path components, depth, size, and an extent
/// within `FIRST_DATA_LBA..total_sectors - 1`. Returns the path's components.
fn check_file(f: &ImageFile, total_sectors: u64) -> Result<Vec<&str>, ImageError> {
    // The caller may also describe its own sector N-2 (the header copy) as a file.
    let data_end = total_sectors - 1;
    let comps: Vec<&str> = f.path.split('/').collect();
    for c in &comps {
        if c.is_empty() {
            return Err(invalid(
                &f.path,
                "empty path component (leading, trailing or double '/')",
            ));
        }
        if *c == "." || *c == ".." {
            return Err(invalid(&f.path, "'.' and '..' are not allowed"));
        }
        if c.contains('\0') {
            return Err(invalid(&f.path, "NUL byte in name"));
        }
        if c.len() > MAX_NAME_BYTES {
            return Err(invalid(&f.path, "a name is longer than 240 bytes"));
        }
    }
    if comps.len() > MAX_DIR_DEPTH + 1 {
        return Err(invalid(&f.path, "more than 7 directory levels"));
    }
    if f.size > MAX_FILE_SIZE {
        return Err(ImageError::FileTooLarge {
            path: f.path.clone(),
            size: f.size,
        });
    }
    let sectors = f.size.div_ceil(SECTOR_SIZE as u64);
    if f.size > 0
        && (f.lba < FIRST_DATA_LBA || f.lba.checked_add(sectors).is_none_or(|e| e > data_end))
    {
        return Err(ImageError::ExtentOutOfRange {
            path: f.path.clone(),
            lba: f.lba,
            sectors,
            first: FIRST_DATA_LBA,
            end: data_end,
            total: total_sectors,
        });
    }
    Ok(comps)
}

/// No two non-empty extents share a sector.
fn check_overlaps(out: &[FileEnt]) -> Result<(), ImageError> {
    let mut ext: Vec<(u64, u64, usize)> = out
        .iter()
        .enumerate()
        .filter(|(_, f)| f.size > 0)
        .map(|(i, f)| (f.lba, f.lba + f.size.div_ceil(SECTOR_SIZE as u64), i))
        .collect();
    ext.sort_unstable();
    for w in ext.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(ImageError::Overlap {
                a: out[w[0].2].path.clone(),
                b: out[w[1].2].path.clone(),
            });
        }
    }
    Ok(())
}

impl Tree {
    /// Validates `files` and builds the directory tree (every parent directory is created).
    pub fn build(files: &[ImageFile], total_sectors: u64) -> Result<Tree, ImageError> {
        let mut dirs = vec![Dir {
            name: String::new(),
            parent: 0,
            subdirs: Vec::new(),
            files: Vec::new(),
        }];
        // (parent dir, name) -> Ok(dir index) for directories, Err(file index) for files.
        let mut names: HashMap<(usize, String), Result<usize, usize>> = HashMap::new();
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let comps = check_file(f, total_sectors)?;
            let mut cur = 0usize;
            for c in &comps[..comps.len() - 1] {
                let key = (cur, c.to_string());
                cur = match names.get(&key) {
                    Some(Ok(d)) => *d,
                    Some(Err(_)) => return Err(ImageError::DuplicatePath(f.path.clone())),
                    None => {
                        let d = dirs.len();
                        dirs.push(Dir {
                            name: c.to_string(),
                            parent: cur,
                            subdirs: Vec::new(),
                            files: Vec::new(),
                        });
                        dirs[cur].subdirs.push(d);
                        names.insert(key, Ok(d));
                        d
                    }
                };
            }
            let leaf = comps[comps.len() - 1];
            let key = (cur, leaf.to_string());
            if names.contains_key(&key) {
                return Err(ImageError::DuplicatePath(f.path.clone()));
            }
            let idx = out.len();
            names.insert(key, Err(idx));
            dirs[cur].files.push(idx);
            out.push(FileEnt {
                name: leaf.to_string(),
                path: f.path.clone(),
                lba: if f.size == 0 { 0 } else { f.lba },
                size: f.size,
                mtime: f.mtime,
                executable: f.executable,
            });
        }
        check_overlaps(&out)?;
        let mut tree = Tree { dirs, files: out };
        tree.sort_children();
        Ok(tree)
    }

    /// Sorts every directory's children by real name, for deterministic output.
    fn sort_children(&mut self) {
        for d in 0..self.dirs.len() {
            let mut sd = std::mem::take(&mut self.dirs[d].subdirs);
            sd.sort_by(|a, b| self.dirs[*a].name.cmp(&self.dirs[*b].name));
            let mut fs = std::mem::take(&mut self.dirs[d].files);
            fs.sort_by(|a, b| self.files[*a].name.cmp(&self.files[*b].name));
            self.dirs[d].subdirs = sd;
            self.dirs[d].files = fs;
        }
    }

    /// Directories in breadth-first order with children visited in the order `key` sorts them.
    /// This is the ISO9660 path table order when `key` is the on-disc identifier.
    pub fn bfs_by<K: Ord>(&self, key: impl Fn(usize) -> K) -> Vec<usize> {
        let mut order = vec![0usize];
        let mut i = 0;
        while i < order.len() {
            let mut kids = self.dirs[order[i]].subdirs.clone();
            kids.sort_by_key(|d| key(*d));
            order.extend(kids);
            i += 1;
        }
        order
    }

    /// Error for metadata that does not fit.
    pub fn too_large(&self) -> ImageError {
        ImageError::MetadataTooLarge {
            files: self.files.len(),
            dirs: self.dirs.len(),
            limit: FIRST_DATA_LBA,
        }
    }
}

/// The metadata region LBA 16..FIRST_DATA_LBA being assembled in memory (about 2 MiB).
pub(crate) struct Region {
    /// Bytes of LBA METADATA_START_LBA.. FIRST_DATA_LBA; always exactly that many sectors.
    bytes: Vec<u8>,
}

impl Region {
    /// An all-zero region.
    pub fn new() -> Region {
        Region {
            bytes: vec![0; ((FIRST_DATA_LBA - METADATA_START_LBA) as usize) * SECTOR_SIZE],
        }
    }

    /// Copies `data` to LBA `lba` (may span sectors). `None` if it would leave the region.
    pub fn put(&mut self, lba: u64, data: &[u8]) -> Option<()> {
        let start = (lba.checked_sub(METADATA_START_LBA)? as usize).checked_mul(SECTOR_SIZE)?;
        let end = start.checked_add(data.len())?;
        self.bytes.get_mut(start..end)?.copy_from_slice(data);
        Some(())
    }

    /// The finished region.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Bump allocator over LBA 22..FIRST_DATA_LBA that never hands out the fixed UDF block 256..=290.
pub(crate) struct Alloc {
    /// Next free LBA; DYNAMIC_START_LBA ≤ next ≤ FIRST_DATA_LBA.
    next: u64,
}

impl Alloc {
    /// Starts after the volume descriptors and the volume recognition sequence.
    pub fn new() -> Alloc {
        Alloc {
            next: DYNAMIC_START_LBA,
        }
    }

    /// Moves the cursor past the fixed UDF block (so the UDF partition starts after it).
    pub fn skip_fixed(&mut self) {
        self.next = self.next.max(FIXED_END_LBA);
    }

    /// Allocates `n` contiguous sectors; `None` if they do not fit before FIRST_DATA_LBA.
    pub fn take(&mut self, n: u64) -> Option<u64> {
        if self.next < FIXED_END_LBA && self.next + n > AVDP_LBA {
            self.next = FIXED_END_LBA;
        }
        let at = self.next;
        let end = at.checked_add(n)?;
        if end > FIRST_DATA_LBA {
            return None;
        }
        self.next = end;
        Some(at)
    }
}
