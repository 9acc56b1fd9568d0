//! Walking the source tree for `create`: every object under the root, in a deterministic order, with
//! the metadata the catalog needs.
//!
//! The walk is iterative (an explicit stack of open directory listings), so a tree nested 100 000 levels
//! deep cannot overflow the thread's stack. Children are visited in the order of their raw name bytes, so
//! the same tree always produces the same entry list and therefore a reproducible archive. Nothing is
//! ever followed: symlinks are recorded with their target bytes, and only real directories (by `lstat`)
//! are descended into.
//!
//! Problems below the root (a directory that cannot be listed, an entry that vanished between listing and
//! `lstat`, a symlink whose target cannot be read) are reported through a callback and the walk goes on,
//! because one unreadable folder must not stop a multi-disc archive. A missing or unusable root is a
//! [`ScanError`], because then there is nothing meaningful to archive.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::format::catalog::{ChangeStamp, EntryKind};

/// One object found in the source tree, ready to become a catalog `Entry`.
///
/// Kept separate from `Entry` because it carries what only `create` needs (where to read the content,
/// the device/inode identity) and lacks what only exists after reading (hash, data location).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    /// Path relative to the scan root: '/'-separated raw name bytes (non-UTF-8 names kept verbatim),
    /// never empty, never with "." / ".." / empty components, never starting with '/'.
    pub rel_path: Vec<u8>,
    /// Kind of object, from `lstat` (a symlink is a `Symlink`, whatever it points at).
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky: `st_mode & 0o7777`.
    pub mode: u32,
    /// Numeric owner from `lstat`.
    pub uid: u32,
    /// Numeric group from `lstat`.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch (may be negative).
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time, always < 1_000_000_000.
    pub mtime_nsec: u32,
    /// Content length at scan time for `File`; 0 for every other kind (including `HardLink`).
    pub size: u64,
    /// `Symlink`: the target bytes exactly as `readlink` returned them. `HardLink`: the `rel_path` of the
    /// first name of the same inode in traversal order (always an earlier `File` entry). Empty otherwise.
    pub link_target: Vec<u8>,
    /// Device number (`st_rdev`) for character and block devices; 0 otherwise.
    pub rdev: u64,
    /// `st_dev`, `st_ino` and `st_ctime` of the object at scan time (change detection against
    /// the base; the catalog keeps it for the next generation).
    pub stamp: ChangeStamp,
}

impl SourceEntry {
    /// Where to read the object now: `root` (the scan root) joined with `rel_path`. Not stored in
    /// the entry: a second copy of every path would cost more memory than the rest of the entry.
    pub fn path_in(&self, root: &Path) -> PathBuf {
        join_rel(root, &self.rel_path)
    }
}

/// `root` joined with a '/'-separated relative path of raw name bytes.
pub fn join_rel(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(rel))
}

/// Something below the root that could not be read. Reported, and the scan continues without it (or,
/// for a directory that cannot be listed, with the directory but without its children).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanProblem {
    /// The object that could not be read.
    pub path: PathBuf,
    /// One line saying what went wrong (the OS error).
    pub message: String,
}

/// Configuration of one scan, fixed for its whole duration.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Paths that are neither recorded nor descended into (e.g. the output directory when it lies inside
    /// the source). Matched by identity (device + inode) when they exist at scan start, else by path
    /// equality with `root.join(rel_path)`; so give them in the same spelling as the root.
    pub exclude: Vec<PathBuf>,
    /// Do not descend into directories on another filesystem than the root (the mount point itself is
    /// recorded, as with `tar --one-file-system`), so `/proc`-like mounts and backup disks are skipped.
    pub one_file_system: bool,
    /// Shell patterns (`*`, `?`, `[…]`; `*` also crosses '/') of paths neither recorded nor
    /// descended into, as `tar --exclude`: one without '/' is tried on every name, one with '/'
    /// on the relative path and each of its tails that starts at a component.
    pub exclude_patterns: Vec<String>,
    /// Skip the contents of directories holding a valid CACHEDIR.TAG (the directory and the tag
    /// itself are kept, as `tar --exclude-caches`).
    pub exclude_caches: bool,
    /// Counts what the exclusions above (patterns, caches, other filesystems) left out.
    pub excluded: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The signature a CACHEDIR.TAG must start with (bford.info/cachedir).
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

fn is_cache_dir(dir: &Path) -> bool {
    let mut head = [0u8; 43];
    fs::File::open(dir.join("CACHEDIR.TAG"))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == CACHEDIR_SIGNATURE
}

/// Whether `rel` (a '/'-separated relative path) is excluded by `pattern` (see
/// [`ScanOptions::exclude_patterns`]).
pub fn pattern_excludes(pattern: &str, rel: &[u8]) -> bool {
    let p = pattern
        .trim_start_matches("./")
        .trim_end_matches('/')
        .as_bytes();
    if p.is_empty() {
        return false;
    }
    if !p.contains(&b'/') {
        let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(rel);
        return crate::util::glob::glob_match(p, name);
    }
    let p = p.strip_prefix(b"/").unwrap_or(p);
    std::iter::once(0)
        .chain(
            rel.iter()
                .enumerate()
                .filter(|(_, &b)| b == b'/')
                .map(|(i, _)| i + 1),
        )
        .any(|start| crate::util::glob::glob_match(p, &rel[start..]))
}

/// Why a scan could not start: the root itself is unusable. Problems below the root are [`ScanProblem`]s.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The root does not exist or cannot be `stat`ed.
    #[error("source directory {}: {source}", path.display())]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The root exists but is not a directory (a symlink to a directory is followed for the root only).
    #[error("source {} is not a directory", path.display())]
    NotADirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// The root's own listing failed; without it there is nothing to archive.
    #[error("cannot list source directory {}: {source}", path.display())]
    RootUnreadable {
        /// The root as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// One directory whose children are being visited.
struct Frame {
    /// Absolute (root-joined) path of the directory.
    abs: PathBuf,
    /// `rel_path` of the directory; empty for the root.
    rel: Vec<u8>,
    /// Children not yet visited, sorted by name bytes *descending* so `pop` yields ascending order.
    pending: Vec<OsString>,
}

/// The state of one walk: the options with their exclusions resolved, and what was found.
struct Walk<'a> {
    opts: &'a ScanOptions,
    /// `st_dev` of the root (`--one-file-system`).
    root_dev: u64,
    /// (dev, ino) of the paths of `opts.exclude` that existed at scan start.
    excluded_ids: HashSet<(u64, u64)>,
    /// `opts.exclude` as given (for paths that did not exist at scan start).
    excluded_paths: HashSet<PathBuf>,
    /// Every object recorded so far, in walk order.
    out: Vec<SourceEntry>,
    /// (dev, ino) of files with nlink > 1 → index in `out` of their first name.
    first_names: HashMap<(u64, u64), usize>,
}

/// Walks `root` and returns every object below it, directory before its children, siblings in raw
/// name-byte order. The root itself is not an entry.
///
/// `on_problem` receives every unreadable object below the root; `on_progress` is called after each
/// recorded entry with the count so far (keep it cheap; throttle display in the callback).
/// Symlinks are never followed, except that `root` itself may be a symlink to a directory (the user named it).
///
/// Memory: the result vector, one small map entry per multiply-linked file, and the sorted name lists
/// of the directories on the current path.
pub fn scan_tree(
    root: &Path,
    opts: &ScanOptions,
    on_problem: &mut dyn FnMut(ScanProblem),
    on_progress: &mut dyn FnMut(u64),
) -> Result<Vec<SourceEntry>, ScanError> {
    let root_meta = fs::metadata(root).map_err(|source| ScanError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    if !root_meta.is_dir() {
        return Err(ScanError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let root_children = list_dir(root).map_err(|source| ScanError::RootUnreadable {
        path: root.to_path_buf(),
        source,
    })?;
    let mut walk = Walk::new(opts, root_meta.dev());
    let mut stack = vec![Frame {
        abs: root.to_path_buf(),
        rel: Vec::new(),
        pending: root_children,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.pending.pop() else {
            stack.pop();
            continue;
        };
        let abs = frame.abs.join(&name);
        let rel = child_rel(&frame.rel, &name);
        if let Some(descend) = walk.visit(&abs, &rel, on_problem) {
            on_progress(walk.out.len() as u64);
            if let Some(cache) = descend {
                match list_dir(&abs) {
                    Ok(pending) => stack.push(Frame {
                        abs,
                        rel,
                        pending: keep_tag_if(cache, pending),
                    }),
                    Err(e) => on_problem(problem(&abs, "cannot list directory", &e)),
                }
            }
        }
    }
    // The list is held through the whole create: no doubling slack.
    walk.out.shrink_to_fit();
    Ok(walk.out)
}

/// `parent/name` as a relative path of raw bytes (`name` alone below the root).
fn child_rel(parent: &[u8], name: &OsString) -> Vec<u8> {
    let mut rel = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        rel.extend_from_slice(parent);
        rel.push(b'/');
    }
    rel.extend_from_slice(name.as_bytes());
    rel
}

/// The children to visit of a directory: all, or of a cache directory only its tag
/// (tar --exclude-caches keeps the directory and CACHEDIR.TAG).
fn keep_tag_if(cache: bool, children: Vec<OsString>) -> Vec<OsString> {
    if !cache {
        return children;
    }
    children
        .into_iter()
        .filter(|n| n.as_bytes() == b"CACHEDIR.TAG")
        .collect()
}

impl<'a> Walk<'a> {
    fn new(opts: &'a ScanOptions, root_dev: u64) -> Self {
        let mut excluded_ids = HashSet::new();
        let mut excluded_paths = HashSet::new();
        for p in &opts.exclude {
            if let Ok(m) = fs::symlink_metadata(p) {
                excluded_ids.insert((m.dev(), m.ino()));
            }
            excluded_paths.insert(p.clone());
        }
        Walk {
            opts,
            root_dev,
            excluded_ids,
            excluded_paths,
            out: Vec::new(),
            first_names: HashMap::new(),
        }
    }

    /// Records the object at `abs` unless it is excluded or unreadable. Returns `None` when
    /// nothing was recorded, `Some(None)` for a recorded object not to descend into, and
    /// `Some(Some(cache))` for a directory to descend into (`cache`: keep only its tag).
    fn visit(
        &mut self,
        abs: &Path,
        rel: &[u8],
        on_problem: &mut dyn FnMut(ScanProblem),
    ) -> Option<Option<bool>> {
        let meta = match fs::symlink_metadata(abs) {
            Ok(m) => m,
            Err(e) => {
                on_problem(problem(abs, "cannot stat", &e));
                return None;
            }
        };
        if self.excluded_ids.contains(&(meta.dev(), meta.ino()))
            || self.excluded_paths.contains(abs)
        {
            return None;
        }
        if self
            .opts
            .exclude_patterns
            .iter()
            .any(|p| pattern_excludes(p, rel))
        {
            self.count_excluded();
            return None;
        }
        let entry = self.entry(abs, rel, &meta, on_problem)?;
        let descend = if entry.kind == EntryKind::Dir {
            let other_fs = self.opts.one_file_system && meta.dev() != self.root_dev;
            let cache = self.opts.exclude_caches && is_cache_dir(abs);
            if other_fs || cache {
                self.count_excluded();
            }
            (!other_fs).then_some(cache)
        } else {
            None
        };
        if entry.kind == EntryKind::File && meta.nlink() > 1 {
            self.first_names
                .insert((meta.dev(), meta.ino()), self.out.len());
        }
        self.out.push(entry);
        Some(descend)
    }

    fn count_excluded(&self) {
        self.opts
            .excluded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entry for an object of `lstat` metadata `meta`; `None` (reported) when its kind is
    /// unknown or its symlink target cannot be read.
    fn entry(
        &self,
        abs: &Path,
        rel: &[u8],
        meta: &fs::Metadata,
        on_problem: &mut dyn FnMut(ScanProblem),
    ) -> Option<SourceEntry> {
        let ft = meta.file_type();
        let mut size = 0;
        let mut link_target = Vec::new();
        let mut rdev = 0;
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            if let Some(first) = self.first_name_of(meta) {
                link_target = first.to_vec();
                EntryKind::HardLink
            } else {
                size = meta.size();
                EntryKind::File
            }
        } else if ft.is_symlink() {
            match fs::read_link(abs) {
                Ok(t) => link_target = t.into_os_string().into_vec(),
                Err(e) => {
                    on_problem(problem(abs, "cannot read symlink", &e));
                    return None;
                }
            }
            EntryKind::Symlink
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else if ft.is_char_device() || ft.is_block_device() {
            rdev = meta.rdev();
            if ft.is_char_device() {
                EntryKind::CharDevice
            } else {
                EntryKind::BlockDevice
            }
        } else if ft.is_socket() {
            EntryKind::Socket
        } else {
            on_problem(ScanProblem {
                path: abs.to_path_buf(),
                message: "unknown file type, skipped".to_string(),
            });
            return None;
        };
        Some(SourceEntry {
            rel_path: rel.to_vec(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime_sec: meta.mtime(),
            mtime_nsec: nsec(meta.mtime_nsec()),
            size,
            link_target,
            rdev,
            stamp: stamp_of(meta),
        })
    }

    /// The path of the first name of a multiply-linked regular file seen before, if any.
    fn first_name_of(&self, meta: &fs::Metadata) -> Option<&[u8]> {
        if meta.nlink() <= 1 {
            return None;
        }
        let &i = self.first_names.get(&(meta.dev(), meta.ino()))?;
        Some(&self.out[i].rel_path)
    }
}

/// st_*_nsec is in [0, 1e9) on Linux; clamped defensively so the Entry invariant always holds.
fn nsec(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0).min(999_999_999)
}

/// The change stamp (ctime, device, inode) of an object's metadata.
pub fn stamp_of(meta: &fs::Metadata) -> ChangeStamp {
    ChangeStamp {
        ctime_sec: meta.ctime(),
        ctime_nsec: nsec(meta.ctime_nsec()),
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Names in `dir`, sorted by raw bytes descending (so popping from the end gives ascending order).
fn list_dir(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for ent in fs::read_dir(dir)? {
        names.push(ent?.file_name());
    }
    names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    Ok(names)
}

fn problem(path: &Path, what: &str, e: &io::Error) -> ScanProblem {
    ScanProblem {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_tree_does_not_overflow_the_stack() {
        let tmp = tempfile::tempdir().unwrap();
        // Deep enough to overflow a recursive walk on a small thread stack; use short names and
        // relative creation (chdir-free) via a growing path.
        let mut p = tmp.path().to_path_buf();
        let depth = 1500;
        for _ in 0..depth {
            p.push("d");
        }
        fs::create_dir_all(&p).unwrap();
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn({
                let root = tmp.path().to_path_buf();
                move || scan_tree(&root, &ScanOptions::default(), &mut |_| {}, &mut |_| {})
            })
            .unwrap();
        let v = handle.join().unwrap().unwrap();
        assert_eq!(v.len(), depth);
        assert_eq!(v.last().unwrap().rel_path.len(), depth * 2 - 1);
    }

    #[test]
    fn progress_counts_every_entry() {
        let tmp = tempfile::tempdir().unwrap();
        for n in ["a", "b", "c"] {
            fs::write(tmp.path().join(n), b"x").unwrap();
        }
        let mut last = 0;
        let v = scan_tree(tmp.path(), &ScanOptions::default(), &mut |_| {}, &mut |n| {
            assert_eq!(n, last + 1);
            last = n;
        })
        .unwrap();
        assert_eq!(last, v.len() as u64);
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn patterns_match_as_tar_excludes() {
        assert!(pattern_excludes("*.o", b"src/a.o"));
        assert!(!pattern_excludes("*.o", b"src/a.oo"));
        assert!(pattern_excludes("build", b"a/build"));
        assert!(pattern_excludes("./build/", b"build"));
        assert!(pattern_excludes("a/b", b"x/a/b"));
        assert!(!pattern_excludes("a/b", b"xa/b"));
        assert!(pattern_excludes("photos/*/raw", b"photos/2024/raw"));
        assert!(pattern_excludes("f[0-9]?", b"f1x"));
        assert!(!pattern_excludes("f[!0-9]", b"f1"));
        assert!(pattern_excludes("*", b"anything"));
        assert!(!pattern_excludes("", b"x"));
    }
}
