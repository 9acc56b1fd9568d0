//! Incremental chains: loading the previous generation's catalog (`--base`) and deciding, entry by
//! entry, what the next generation must store and what it can reuse from earlier generations.
//!
//! Every generation's catalog describes the complete tree as of that generation; an entry whose
//! content did not change keeps pointing (`DataRef.generation`) at the generation that stored it.
//! Deleted paths are simply absent. A renamed or copied file whose content hash is already in the
//! chain is recorded as a reference, not stored again.
//!
//! "Unchanged" is decided as restic and borg do, and confirmed by content where they would
//! re-read: a file whose kind, size, mtime (and link target, device number) differ from the
//! base entry is changed. Otherwise, when its change stamp (ctime, device, inode) equals the
//! base entry's it is unchanged without being read; when the stamp differs (a chmod, an edit
//! with the mtime put back by `touch -r`, a tree restored or copied with `cp -a`) or the base
//! has none (a version-1 catalog), the file is hashed and stored only if its SHA-256 differs
//! from the base entry's. With `--checksum` every file is hashed. Every reused entry takes the
//! scanned metadata and stamp, so the next generation need not hash it again.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::Sha256;
use thiserror::Error;

use crate::archive::scan::SourceEntry;
use crate::format::catalog::{Catalog, Entry, EntryKind};
use crate::format::records::{self, decode_record};

/// Files at least this large are checked for being a rename/copy of a file already in the chain.
pub const RENAME_MIN_SIZE: u64 = 64 * 1024;

/// Errors loading or using a base catalog.
#[derive(Debug, Error)]
pub enum ChainError {
    /// Not found or unreadable.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// No catalog in the given directory.
    #[error("{0}: no <name>-gen<N>.catalog file for '{1}' in this directory")]
    NoCatalog(PathBuf, String),
    /// The file is not a valid catalog.
    #[error("{0}: {1} (the catalog is damaged or not a bd-archive catalog; use the copy on the generation's last disc)")]
    Damaged(PathBuf, records::RecordError),
    /// Another chain.
    #[error("{0}: belongs to chain '{1}', not '{2}'")]
    OtherChain(PathBuf, String, String),
}

/// Reads the catalog given with `--base`: a catalog file, or an output directory holding
/// `<name>-gen<N>.catalog` files (the newest is taken).
pub fn load_base(path: &Path, name: &str) -> Result<Catalog, ChainError> {
    let file = if path.is_dir() {
        newest_catalog_in(path, name)?
    } else {
        path.to_path_buf()
    };
    let raw = std::fs::read(&file).map_err(|e| ChainError::Io(file.clone(), e))?;
    let (_, catalog): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
        .map_err(|e| ChainError::Damaged(file.clone(), e))?;
    if catalog.chain.name != name {
        return Err(ChainError::OtherChain(
            file,
            catalog.chain.name,
            name.to_string(),
        ));
    }
    Ok(catalog)
}

fn newest_catalog_in(dir: &Path, name: &str) -> Result<PathBuf, ChainError> {
    let prefix = format!("{name}-gen");
    let rd = std::fs::read_dir(dir).map_err(|e| ChainError::Io(dir.to_path_buf(), e))?;
    rd.flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let g: u32 = n
                .strip_prefix(&prefix)?
                .strip_suffix(".catalog")?
                .parse()
                .ok()?;
            Some((g, e.path()))
        })
        .max_by_key(|(g, _)| *g)
        .map(|(_, p)| p)
        .ok_or_else(|| ChainError::NoCatalog(dir.to_path_buf(), name.to_string()))
}

/// What one generation does with one entry of the current tree.
#[derive(Debug)]
pub enum Planned {
    /// Store the entry (new or changed) in this generation's stream.
    Store(SourceEntry),
    /// Keep it: the catalog entry (with current metadata) points at data stored earlier.
    Reuse(Entry),
}

/// Counts shown in the overview.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DeltaStats {
    /// Paths not in the base.
    pub new: u64,
    /// Content or type changed.
    pub changed: u64,
    /// Only mode/owner changed: reused with new metadata.
    pub metadata_only: u64,
    /// Identical.
    pub unchanged: u64,
    /// New paths whose content already exists in the chain (renames, copies).
    pub renamed: u64,
    /// Base paths no longer present.
    pub deleted: u64,
    /// Files read to compare their content hash with the base (stamp changed or unknown,
    /// `--checksum`, possible renames); each is stored only if its content differs.
    pub hashed: u64,
    /// Bytes of file content to store.
    pub bytes_to_store: u64,
}

impl DeltaStats {
    /// Whether the new generation would record nothing at all.
    pub fn is_empty(&self) -> bool {
        self.new + self.changed + self.metadata_only + self.renamed + self.deleted == 0
    }
}

/// Compares the scanned tree with the base catalog (the rule is in the module doc). With
/// `checksum`, every file whose size and mtime say "unchanged" is hashed.
pub fn plan_delta(
    base: &Catalog,
    scanned: Vec<SourceEntry>,
    root: &Path,
    checksum: bool,
) -> (Vec<Planned>, DeltaStats) {
    let by_path: HashMap<&[u8], &Entry> = base
        .entries
        .iter()
        .map(|e| (e.path.as_slice(), e))
        .collect();
    let mut by_hash: HashMap<[u8; 32], &Entry> = HashMap::new();
    for e in &base.entries {
        if e.kind == EntryKind::File && e.size >= RENAME_MIN_SIZE && e.sha256 != [0; 32] {
            by_hash.entry(e.sha256).or_insert(e);
        }
    }
    let sizes: std::collections::HashSet<u64> = by_hash.values().map(|e| e.size).collect();
    let mut stats = DeltaStats::default();
    let mut seen = 0u64;
    // Decide cheaply first; hashing (renames, --checksum) happens in parallel afterwards.
    let decisions: Vec<(SourceEntry, Decision)> = scanned
        .into_iter()
        .map(|s| {
            let d = match by_path.get(s.rel_path.as_slice()) {
                Some(b) => {
                    seen += 1;
                    compare(&s, b, checksum)
                }
                None if s.kind == EntryKind::File
                    && s.size >= RENAME_MIN_SIZE
                    && sizes.contains(&s.size) =>
                {
                    Decision::HashForRename
                }
                None => Decision::New,
            };
            (s, d)
        })
        .collect();
    stats.deleted = base.entries.len() as u64 - seen;
    stats.hashed = decisions
        .iter()
        .filter(|(_, d)| matches!(d, Decision::HashForRename | Decision::HashToConfirm(_)))
        .count() as u64;
    let hashed: Vec<Option<[u8; 32]>> = decisions
        .par_iter()
        .map(|(s, d)| match d {
            Decision::HashForRename | Decision::HashToConfirm(_) => hash_file(&s.path_in(root)),
            _ => None,
        })
        .collect();
    let planned = decisions
        .into_iter()
        .zip(hashed)
        .map(|((s, d), h)| resolve(s, d, h, &by_hash, &mut stats))
        .collect();
    (planned, stats)
}

/// First-pass verdict on one scanned entry.
enum Decision<'a> {
    New,
    Changed,
    Unchanged(&'a Entry),
    MetadataOnly(&'a Entry),
    HashToConfirm(&'a Entry),
    HashForRename,
}

fn compare<'a>(s: &SourceEntry, b: &'a Entry, checksum: bool) -> Decision<'a> {
    let same_content = s.kind == b.kind
        && s.size == b.size
        && s.mtime_sec == b.mtime_sec
        && s.mtime_nsec == b.mtime_nsec
        && s.link_target == b.link_target
        && s.rdev == b.rdev;
    if !same_content {
        return Decision::Changed;
    }
    if s.kind == EntryKind::File && s.size > 0 {
        let has_hash = b.sha256 != [0; 32];
        let same_stamp = b.stamp.is_known() && s.stamp == b.stamp;
        if checksum || (!same_stamp && has_hash) {
            return Decision::HashToConfirm(b);
        }
        // No hash to confirm with (content held by a dar seed generation): a changed stamp
        // means changed; an unknown one leaves size and mtime to decide, as version 1 did.
        if !same_stamp && b.stamp.is_known() {
            return Decision::Changed;
        }
    }
    if s.mode != b.mode || s.uid != b.uid || s.gid != b.gid {
        return Decision::MetadataOnly(b);
    }
    Decision::Unchanged(b)
}

fn resolve(
    s: SourceEntry,
    d: Decision<'_>,
    hash: Option<[u8; 32]>,
    by_hash: &HashMap<[u8; 32], &Entry>,
    stats: &mut DeltaStats,
) -> Planned {
    let store = |s: SourceEntry, stats: &mut DeltaStats| {
        stats.bytes_to_store += s.size;
        Planned::Store(s)
    };
    match d {
        Decision::New => {
            stats.new += 1;
            store(s, stats)
        }
        Decision::Changed => {
            stats.changed += 1;
            store(s, stats)
        }
        Decision::Unchanged(b) => {
            stats.unchanged += 1;
            Planned::Reuse(with_metadata(b, &s))
        }
        Decision::MetadataOnly(b) => {
            stats.metadata_only += 1;
            Planned::Reuse(with_metadata(b, &s))
        }
        Decision::HashToConfirm(b) => {
            if hash == Some(b.sha256) {
                if s.mode != b.mode || s.uid != b.uid || s.gid != b.gid {
                    stats.metadata_only += 1;
                    Planned::Reuse(with_metadata(b, &s))
                } else {
                    stats.unchanged += 1;
                    Planned::Reuse(with_metadata(b, &s))
                }
            } else {
                stats.changed += 1;
                store(s, stats)
            }
        }
        Decision::HashForRename => match hash.and_then(|h| by_hash.get(&h)) {
            Some(b) if b.size == s.size => {
                stats.renamed += 1;
                let mut e = with_metadata(b, &s);
                e.path = s.rel_path.clone();
                e.mtime_sec = s.mtime_sec;
                e.mtime_nsec = s.mtime_nsec;
                Planned::Reuse(e)
            }
            _ => {
                stats.new += 1;
                store(s, stats)
            }
        },
    }
}

/// A base entry with the scanned entry's mode, owner and change stamp (content and data
/// location unchanged).
fn with_metadata(b: &Entry, s: &SourceEntry) -> Entry {
    let mut e = b.clone();
    e.mode = s.mode;
    e.uid = s.uid;
    e.gid = s.gid;
    e.stamp = s.stamp;
    e
}

/// SHA-256 of a file's content; None if it cannot be read (it is then stored and reported normally).
fn hash_file(path: &Path) -> Option<[u8; 32]> {
    let f = File::open(path).ok()?;
    crate::util::digest_read::digest_reader::<Sha256>(f)
        .ok()
        .map(Into::into)
}
