//! Writing archive entries into the output directory for `extract` — safely.
//!
//! The archive is untrusted input: a damaged or hostile disc may carry `../x`, `/etc/x`, a symlink
//! `a -> /tmp/x` followed by `a/file`, or a hard link to `/etc/shadow`. The guarantee of this module is
//! that **nothing is ever created, written, linked, chmod'ed, chown'ed or timestamped outside OUT**:
//!
//! * every path is checked lexically first ([`Restorer::check_path`]: relative, no `.`/`..`/empty
//!   components, no NUL);
//! * every parent component is opened with `openat(dirfd, comp, O_DIRECTORY|O_NOFOLLOW)`, starting from
//!   a descriptor of OUT opened once in [`Restorer::new`], so a symlink (planted by an earlier entry or by
//!   anyone else) is never traversed; missing parents are created with `mkdirat` (mode 0700 until
//!   [`Restorer::finish`]);
//! * the final component is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`,
//!   `linkat`, `mknodat` — none of which follow a final symlink), and metadata is applied through the new
//!   descriptor or with `AT_SYMLINK_NOFOLLOW`;
//! * an existing final component is never written through: without `overwrite` the entry fails with
//!   [`RestoreError::Exists`] and nothing changes; with `overwrite` it is unlinked first;
//! * hard links may only point at regular files this run restored, re-checked by device and inode just
//!   before `linkat`.
//!
//! Objects created earlier **in this same run** may be replaced even without `overwrite`, because
//! extract applies generations in order and the later one wins; `overwrite` is about what was in OUT
//! before the run. Existing directories are merged (as `tar` does), never replaced by a directory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::format::catalog::validate::{path_fault, PathFault};
use crate::format::catalog::{Entry, EntryKind};

use crate::util::escape::escape_path;

/// Why one entry (or the output directory) could not be restored. Every message is one line naming the
/// path (escaped with [`escape_path`]); the caller reports it and goes on with the next entry.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The entry's path (or hard-link target) could escape OUT or is malformed; refused before any I/O.
    #[error("refusing unsafe path {path}: {reason}")]
    UnsafePath {
        /// The offending path, escaped.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something already exists at the path and `overwrite` is off; nothing was changed.
    #[error("{path} already exists in the output directory (pass --overwrite to replace it)")]
    Exists {
        /// The entry's path, escaped.
        path: String,
    },
    /// A parent component is a symlink or not a directory; following it could leave OUT, so the entry
    /// is refused.
    #[error("{path}: parent {component} is a symlink or not a directory; entry refused")]
    NotADirectory {
        /// The entry's path, escaped.
        path: String,
        /// The parent prefix that is not a real directory, escaped.
        component: String,
    },
    /// A hard link names a target that this run did not restore as a regular file (or that has been
    /// replaced since), so linking could expose a file from outside the archive.
    #[error("{path}: hard link target {target} is not a regular file restored in this run; link refused")]
    HardLinkTarget {
        /// The link's path, escaped.
        path: String,
        /// The requested target, escaped.
        target: String,
    },
    /// With `overwrite`, a non-empty directory is in the way; it is never removed recursively.
    #[error("{path}: a non-empty directory is in the way (remove it or extract elsewhere)")]
    DirNotEmpty {
        /// The entry's path, escaped.
        path: String,
    },
    /// The entry was passed to the wrong method (e.g. a `Dir` to `create_file`) or carries invalid data.
    #[error("{path}: {reason}")]
    BadEntry {
        /// The entry's path, escaped.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A system call failed for this entry.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The entry's path, escaped.
        path: String,
        /// The operation that failed ("create", "write", "set mode", …).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The output directory itself cannot be created or opened.
    #[error("output directory {}: {source} (check -o)", path.display())]
    OutDir {
        /// OUT as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// How extraction treats existing objects, owners and special files. Fixed for a [`Restorer`]'s life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace objects that existed in OUT before this run (never a non-empty directory, never by writing
    /// through a symlink). Off: such entries fail with [`RestoreError::Exists`] and OUT is unchanged.
    pub overwrite: bool,
    /// `chown` every object to the archived uid/gid. Also the only way setuid/setgid bits are restored:
    /// without it they are dropped, so an extracted file can never become a setuid binary owned by the
    /// extracting user. Default: on when running as root (like `tar`).
    pub same_owner: bool,
    /// Create FIFOs and character/block devices. Off by default because a device node in OUT grants
    /// access to hardware; without it such entries are skipped with one notice. Sockets are never created.
    pub special_files: bool,
    /// A path inside OUT that no entry may name or lie under: extract's work directory, which holds
    /// the disc copies and repair spills the restore is reading (with `overwrite` an entry there
    /// could replace them). Such entries are refused as unsafe paths.
    pub reserved: Option<Vec<u8>>,
}

impl Default for RestoreOptions {
    /// `overwrite` off, `special_files` off, `same_owner` on exactly when the effective uid is 0.
    fn default() -> Self {
        RestoreOptions {
            overwrite: false,
            // SAFETY: geteuid has no preconditions and cannot fail.
            same_owner: nix::unistd::geteuid().is_root(),
            special_files: false,
            reserved: None,
        }
    }
}

/// A regular file being restored: positioned writes, so ranges that could not be read from the discs
/// stay zero (a hole) and all-zero blocks past everything written are left sparse.
#[derive(Debug)]
pub struct RestoreFile {
    /// The freshly created file (opened with `O_EXCL`, so every byte not written reads as zero).
    file: File,
    /// The entry's path, for messages.
    path: Vec<u8>,
    /// End offset of the furthest byte actually written. Blocks entirely at or beyond it are still zero
    /// in the file, so an all-zero block there need not be written (it stays a hole).
    high_water: u64,
    /// The final permission bits, when they were given at creation (no fchmod needed then).
    mode_at_create: Option<u32>,
}

/// Granularity of sparse detection: a filesystem block on every common filesystem.
const SPARSE_BLOCK: u64 = 4096;

impl RestoreFile {
    /// Writes `data` at `offset`. All-zero 4 KiB-aligned blocks beyond everything written so far are
    /// skipped (they already read as zero), so zero regions become holes; rewriting a range always works.
    /// An offset whose end does not fit in a `u64` (only possible with corrupt input) is an error.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), RestoreError> {
        if offset.checked_add(data.len() as u64).is_none() {
            return Err(RestoreError::BadEntry {
                path: escape_path(&self.path),
                reason: format!("write offset {offset} out of range"),
            });
        }
        let mut pos = 0usize;
        // Pending run of bytes to write: data[run_start..pos].
        let mut run_start = 0usize;
        while pos < data.len() {
            let file_off = offset + pos as u64;
            let to_boundary = (SPARSE_BLOCK - file_off % SPARSE_BLOCK) as usize;
            let end = (pos + to_boundary).min(data.len());
            let block = &data[pos..end];
            let skippable = file_off >= self.high_water && block.iter().all(|&b| b == 0);
            if skippable {
                self.flush_run(offset, data, run_start, pos)?;
                run_start = end;
            }
            pos = end;
        }
        self.flush_run(offset, data, run_start, data.len())
    }

    fn flush_run(
        &mut self,
        offset: u64,
        data: &[u8],
        start: usize,
        end: usize,
    ) -> Result<(), RestoreError> {
        if start >= end {
            return Ok(());
        }
        let at = offset + start as u64;
        self.file
            .write_all_at(&data[start..end], at)
            .map_err(|source| RestoreError::Io {
                path: escape_path(&self.path),
                op: "write",
                source,
            })?;
        self.high_water = self.high_water.max(at + (end - start) as u64);
        Ok(())
    }

    /// Sets the file length: extends with zeros (a hole) or truncates. [`Restorer::finish_file`] calls it
    /// with the entry's size, so a file whose tail could not be read still has the right length.
    pub fn set_len(&mut self, size: u64) -> Result<(), RestoreError> {
        self.file.set_len(size).map_err(|source| RestoreError::Io {
            path: escape_path(&self.path),
            op: "set length",
            source,
        })?;
        self.high_water = self.high_water.min(size);
        Ok(())
    }
}

/// Metadata of a directory, applied in [`Restorer::finish`] once all its children exist.
#[derive(Debug)]
struct DirMeta {
    /// Directory path inside OUT (passed `check_path`).
    path: Vec<u8>,
    /// `None`: a parent created implicitly for a child, with no entry of its own (gets 0777 & !umask).
    entry: Option<(u32, u32, u32, i64, u32)>,
}

/// What this run put at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Restored {
    /// A regular file with this (st_dev, st_ino): a valid hard-link target.
    File(u64, u64),
    /// Anything else (directory, symlink, special file).
    Other,
}

/// Restores entries into one output directory without ever touching anything outside it.
/// Public because every format restores through it — ours and the seed's dar generations
/// (`crate::legacy`) — so the guarantees of this module hold for both.
///
/// Use: [`Restorer::new`], then one `create_*` call per entry in archive order (directories before
/// their children), then [`Restorer::finish`] to apply directory metadata and collect notices.
#[derive(Debug)]
pub struct Restorer {
    /// OUT, opened once with `O_DIRECTORY`; every path is resolved relative to it, never by name.
    root: Arc<OwnedFd>,
    /// Fixed options.
    opts: RestoreOptions,
    /// Every path created (or merged, for directories) in this run; files with their inode
    /// identity (see [`Restorer::note`] for what is left out once the link targets are known).
    restored: HashMap<Vec<u8>, Restored>,
    /// Directories whose mode/owner/mtime is applied in `finish`, in creation order (later wins).
    dirs: Vec<DirMeta>,
    /// Process umask, for implicitly created parents.
    umask: u32,
    /// Keys of notices already issued (each notice is given once).
    notice_keys: HashSet<&'static str>,
    /// One-line notices for the user, in the order they arose.
    notices: Vec<String>,
    /// The last parent directory walked to: its path, and the descriptors of every directory on
    /// the way (`[i]` is the directory ending at byte `.0` of the path, the last one the parent
    /// itself). Entries come in tree order, so siblings reuse the parent at no system call, and
    /// cousins walk only from the deepest directory they share. Dropped whenever anything is
    /// removed or replaced (the only way a component of the cached chain could change).
    parent_cache: Option<(Vec<u8>, DirChain)>,
    /// When set, only these paths (the hard-link targets the caller will restore) need their inode
    /// identity recorded, which saves an `fstat` per file; any other path stays an invalid target.
    link_targets: Option<HashSet<Vec<u8>>>,
}

/// Open directories along a path: `(end, fd)` is the directory named by the path's first `end` bytes.
type DirChain = Vec<(usize, Arc<OwnedFd>)>;

// The system calls below are nix's safe wrappers of the `*at` calls (a name with a NUL byte is
// EINVAL, as before). The one `unsafe` left per open is taking ownership of the descriptor nix
// 0.29 returns as a `RawFd`.

/// Flags for walking through a parent directory: never follow a symlink, need no read permission.
fn walk_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// `openat(dir, name, flags, mode)`, the new descriptor owned.
fn openat(dir: RawFd, name: &[u8], flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir), name, flags, Mode::from_bits_truncate(mode))?;
    // SAFETY: `fd` was just returned by openat and is not owned by anything else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The status of `dir/name` itself (`AT_SYMLINK_NOFOLLOW`: a symlink is not followed).
fn fstatat(dir: RawFd, name: &[u8]) -> io::Result<FileStat> {
    Ok(nix::sys::stat::fstatat(
        Some(dir),
        name,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

fn fstat(fd: RawFd) -> io::Result<FileStat> {
    Ok(nix::sys::stat::fstat(fd)?)
}

/// mkdirat(dir, name, mode); never follows a final symlink.
fn mkdirat(dir: RawFd, name: &[u8], mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(
        Some(dir),
        name,
        Mode::from_bits_truncate(mode),
    )?)
}

/// The times for futimens/utimensat: atime left as it is, mtime set.
fn mtime_spec(sec: i64, nsec: u32) -> (TimeSpec, TimeSpec) {
    (TimeSpec::UTIME_OMIT, TimeSpec::new(sec as _, nsec as _))
}

/// fchown(fd, uid, gid) through the descriptor.
fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    Ok(nix::unistd::fchown(
        fd,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )?)
}

/// fchmod(fd, mode) through the descriptor.
fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))?)
}

/// Sets the mtime (nanoseconds included) through the descriptor; the atime is left alone.
fn futimens(fd: RawFd, sec: i64, nsec: u32) -> io::Result<()> {
    let (atime, mtime) = mtime_spec(sec, nsec);
    Ok(nix::sys::stat::futimens(fd, &atime, &mtime)?)
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

/// (device, inode): what identifies a restored file for hard links.
#[allow(clippy::unnecessary_cast)] // dev_t and ino_t are not u64 on every target
fn file_id(st: &FileStat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

fn is_reg(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
}

/// `e` is the system error `errno`.
fn is_errno(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno as i32)
}

/// The process umask without changing it (read from /proc; 022 if unavailable).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

impl Restorer {
    /// Creates OUT (and its parents) if missing and opens it; everything later is relative to this
    /// descriptor, so renaming OUT's ancestors during the run cannot redirect writes. OUT itself may be a
    /// symlink: the user named it.
    pub fn new(out_dir: &Path, opts: RestoreOptions) -> Result<Self, RestoreError> {
        let out_err = |source| RestoreError::OutDir {
            path: out_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(out_dir).map_err(out_err)?;
        let fd = nix::fcntl::open(
            out_dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| out_err(io::Error::from(e)))?;
        // SAFETY: fresh fd from open.
        let root = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Restorer {
            root,
            opts,
            restored: HashMap::new(),
            dirs: Vec::new(),
            umask: current_umask(),
            notice_keys: HashSet::new(),
            notices: Vec::new(),
            parent_cache: None,
            link_targets: None,
        })
    }

    /// Declares every path a later hard link may point at (the `link_target` of each `HardLink`
    /// entry to come). Regular files not in the set are then created without recording their
    /// inode (one system call less per file) and can never become a hard-link target.
    pub fn set_link_targets(&mut self, targets: HashSet<Vec<u8>>) {
        self.link_targets = Some(targets);
    }

    /// Records what this run put at `path`. Once the caller has declared the hard-link targets
    /// ([`Restorer::set_link_targets`]) and may replace what is in OUT anyway (`overwrite`), only
    /// those targets are ever asked about again, so only they are kept: a record of every path
    /// restored was the largest memory cost of extracting a large tree after the catalog itself.
    fn note(&mut self, path: &[u8], what: Restored) {
        let asked_later = match &self.link_targets {
            None => true,
            Some(targets) => !self.opts.overwrite || targets.contains(path),
        };
        if asked_later {
            self.restored.insert(path.to_vec(), what);
        }
    }

    /// Lexical check of an archive path, before any I/O: refuses empty paths, absolute paths, `.`, `..`
    /// and empty components (`a//b`, trailing `/`), and NUL bytes. Paths that pass can only name
    /// something inside OUT once resolved with no symlinks — which the `create_*` methods enforce.
    pub fn check_path(path: &[u8]) -> Result<(), RestoreError> {
        // The catalog's lexical rules without its length limits (a longer path fails at the
        // file system, if at all: it is walked one component at a time); worded for extract.
        let reason = path_fault(path, false).map(|f| match f {
            PathFault::Empty => "empty path",
            PathFault::Absolute => "absolute path",
            PathFault::Nul => "NUL byte in path",
            PathFault::EmptyComponent => "empty component",
            PathFault::Dot => "'.' component",
            PathFault::DotDot => "'..' component",
            PathFault::TooLong | PathFault::ComponentTooLong => "too long",
        });
        match reason {
            Some(reason) => Err(RestoreError::UnsafePath {
                path: escape_path(path),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Refuses `path` when it is the reserved path (the work directory) or lies under it.
    fn check_not_reserved(&self, path: &[u8]) -> Result<(), RestoreError> {
        let top = path.split(|&b| b == b'/').next().unwrap_or_default();
        if RESERVED_NAMES.contains(&top) {
            return Err(RestoreError::UnsafePath {
                path: escape_path(path),
                reason: "the name is reserved for extract's own report and work directory",
            });
        }
        match &self.opts.reserved {
            Some(r) if path.starts_with(r) && (path.len() == r.len() || path[r.len()] == b'/') => {
                Err(RestoreError::UnsafePath {
                    path: escape_path(path),
                    reason: "inside extract's work directory",
                })
            }
            _ => Ok(()),
        }
    }

    fn notice(&mut self, key: &'static str, text: &str) {
        if self.notice_keys.insert(key) {
            self.notices.push(text.to_string());
        }
    }

    fn io_err<'a>(path: &'a [u8], op: &'static str) -> impl FnOnce(io::Error) -> RestoreError + 'a {
        move |source| RestoreError::Io {
            path: escape_path(path),
            op,
            source,
        }
    }

    /// Opens the directory that holds `path`'s last component, walking from OUT one component at a time
    /// with `O_NOFOLLOW`; with `create`, missing parents are made (0700). Returns the parent and the name.
    fn open_parent<'p>(
        &mut self,
        path: &'p [u8],
        create: bool,
    ) -> Result<(Arc<OwnedFd>, &'p [u8]), RestoreError> {
        Self::check_path(path)?;
        self.check_not_reserved(path)?;
        let (name, parents) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[i + 1..], &path[..i]),
            None => (path, &path[..0]),
        };
        if parents.is_empty() {
            return Ok((Arc::clone(&self.root), name));
        }
        if let Some((cached, chain)) = &self.parent_cache {
            if cached.as_slice() == parents {
                if let Some((_, fd)) = chain.last() {
                    return Ok((Arc::clone(fd), name));
                }
            }
        }
        // Start from the deepest cached directory that is also an ancestor of (or is) the parent.
        let mut chain: DirChain = Vec::new();
        if let Some((cached, old)) = self.parent_cache.take() {
            for (e, fd) in old {
                let shared = e <= parents.len()
                    && cached[..e] == parents[..e]
                    && (e == parents.len() || parents[e] == b'/');
                if !shared {
                    break;
                }
                chain.push((e, fd));
            }
        }
        let (mut cur, mut end) = match chain.last() {
            Some((e, fd)) => (Arc::clone(fd), *e),
            None => (Arc::clone(&self.root), 0),
        };
        while end < parents.len() {
            if end > 0 {
                end += 1; // the '/' before this component
            }
            let comp_end = parents[end..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(parents.len(), |i| end + i);
            let comp = &parents[end..comp_end];
            end = comp_end;
            let prefix = &parents[..end];
            let not_dir = || RestoreError::NotADirectory {
                path: escape_path(path),
                component: escape_path(prefix),
            };
            let next = match openat(cur.as_raw_fd(), comp, walk_flags(), 0) {
                Ok(fd) => fd,
                Err(e) if is_errno(&e, Errno::ENOENT) && create => {
                    // mkdirat never follows a symlink in the last component.
                    match mkdirat(cur.as_raw_fd(), comp, 0o700) {
                        Ok(_) => {
                            self.note(prefix, Restored::Other);
                            self.dirs.push(DirMeta {
                                path: prefix.to_vec(),
                                entry: None,
                            });
                        }
                        Err(e) if is_errno(&e, Errno::EEXIST) => {}
                        Err(e) => return Err(Self::io_err(path, "create parent")(e)),
                    }
                    match openat(cur.as_raw_fd(), comp, walk_flags(), 0) {
                        Ok(fd) => fd,
                        Err(e) if is_errno(&e, Errno::ELOOP) || is_errno(&e, Errno::ENOTDIR) => {
                            return Err(not_dir())
                        }
                        Err(e) => return Err(Self::io_err(path, "open parent")(e)),
                    }
                }
                Err(e) if is_errno(&e, Errno::ELOOP) || is_errno(&e, Errno::ENOTDIR) => {
                    return Err(not_dir())
                }
                Err(e) => return Err(Self::io_err(path, "open parent")(e)),
            };
            cur = Arc::new(next);
            chain.push((end, Arc::clone(&cur)));
        }
        self.parent_cache = Some((parents.to_vec(), chain));
        Ok((cur, name))
    }

    /// Something exists at `parent/name`: refuse (`Exists`) or, if allowed, remove it so the caller can
    /// create afresh. Never removes a non-empty directory, never follows a symlink.
    fn clear_existing(
        &mut self,
        parent: RawFd,
        name: &[u8],
        path: &[u8],
    ) -> Result<(), RestoreError> {
        if !(self.opts.overwrite || self.restored.contains_key(path)) {
            return Err(RestoreError::Exists {
                path: escape_path(path),
            });
        }
        self.parent_cache = None;
        let st = fstatat(parent, name).map_err(Self::io_err(path, "inspect existing"))?;
        let flags = if is_dir(&st) {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        // unlinkat removes the name itself, never a symlink's target.
        match nix::unistd::unlinkat(Some(parent), name, flags).map_err(io::Error::from) {
            Ok(_) => {
                self.restored.remove(path);
                Ok(())
            }
            Err(e) if is_errno(&e, Errno::ENOTEMPTY) || is_errno(&e, Errno::EEXIST) => {
                Err(RestoreError::DirNotEmpty {
                    path: escape_path(path),
                })
            }
            Err(e) => Err(Self::io_err(path, "remove existing")(e)),
        }
    }

    /// Runs `make` (an exclusive create of `parent/name`); on `EEXIST` clears the way once and retries.
    fn create_excl<T>(
        &mut self,
        parent: RawFd,
        name: &[u8],
        path: &[u8],
        op: &'static str,
        mut make: impl FnMut() -> io::Result<T>,
    ) -> Result<T, RestoreError> {
        match make() {
            Ok(v) => Ok(v),
            Err(e) if is_errno(&e, Errno::EEXIST) => {
                self.clear_existing(parent, name, path)?;
                make().map_err(Self::io_err(path, op))
            }
            Err(e) => Err(Self::io_err(path, op)(e)),
        }
    }

    fn expect_kind(e: &Entry, kinds: &[EntryKind]) -> Result<(), RestoreError> {
        if kinds.contains(&e.kind) {
            Ok(())
        } else {
            Err(RestoreError::BadEntry {
                path: escape_path(&e.path),
                reason: format!(
                    "entry of kind {:?} passed to the wrong restore step",
                    e.kind
                ),
            })
        }
    }

    /// Permission bits to apply: setuid/setgid dropped unless owners are restored too (a setuid file
    /// owned by the extracting user is a privilege hazard, and chown would clear them anyway).
    fn effective_mode(&self, mode: u32) -> u32 {
        if self.opts.same_owner {
            mode & 0o7777
        } else {
            mode & 0o1777
        }
    }

    /// Decides whether to chown, issuing the "owners not restored" notice once when we cannot.
    fn want_chown(&mut self) -> bool {
        if self.opts.same_owner {
            return true;
        }
        if !nix::unistd::geteuid().is_root() {
            self.notice(
                "owners",
                "owners not restored: run as root or pass --same-owner",
            );
        }
        false
    }

    /// Interprets a chown failure: EPERM (not root) becomes one notice, anything else an error.
    fn chown_result(&mut self, r: io::Result<()>, path: &[u8]) -> Result<(), RestoreError> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, Errno::EPERM) => {
                self.notice(
                    "chown-eperm",
                    "some owners could not be restored: permission denied (run as root)",
                );
                Ok(())
            }
            Err(e) => Err(Self::io_err(path, "set owner")(e)),
        }
    }

    /// Removes `path` and, for a directory, everything below it — but only objects this run restored
    /// (a later generation recorded their deletion). Anything else is left alone; returns whether
    /// something was removed.
    pub fn remove_restored(&mut self, path: &[u8]) -> Result<bool, RestoreError> {
        self.parent_cache = None;
        Self::check_path(path)?;
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let mut victims: Vec<Vec<u8>> = self
            .restored
            .keys()
            .filter(|k| k.as_slice() == path || k.starts_with(&prefix))
            .cloned()
            .collect();
        victims.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut any = false;
        for v in victims {
            let (parent, name) = match self.open_parent(&v, false) {
                Ok(x) => x,
                Err(_) => continue,
            };
            if fstatat(parent.as_raw_fd(), name).is_err() {
                self.restored.remove(&v);
                continue;
            }
            self.clear_existing(parent.as_raw_fd(), name, &v)?;
            any = true;
        }
        self.dirs
            .retain(|d| !(d.path.as_slice() == path || d.path.starts_with(&prefix)));
        Ok(any)
    }

    /// Creates (or merges into an existing) directory. Its mode, owner and mtime are applied in
    /// [`Restorer::finish`], deepest first, so creating children does not disturb the mtime and a
    /// read-only directory mode does not block its own children. Until then it is 0700.
    pub fn create_dir(&mut self, e: &Entry) -> Result<(), RestoreError> {
        Self::expect_kind(e, &[EntryKind::Dir])?;
        let (parent, name) = self.open_parent(&e.path, true)?;
        let pfd = parent.as_raw_fd();
        // mkdirat does not follow a final symlink.
        let mk = || mkdirat(pfd, name, 0o700);
        match mk() {
            Ok(()) => {}
            Err(err) if is_errno(&err, Errno::EEXIST) => {
                let st = fstatat(pfd, name).map_err(Self::io_err(&e.path, "inspect existing"))?;
                if !is_dir(&st) {
                    self.clear_existing(pfd, name, &e.path)?;
                    mk().map_err(Self::io_err(&e.path, "create directory"))?;
                }
                // An existing real directory is merged; its metadata is set in finish().
            }
            Err(err) => return Err(Self::io_err(&e.path, "create directory")(err)),
        }
        self.note(&e.path, Restored::Other);
        self.dirs.push(DirMeta {
            path: e.path.clone(),
            entry: Some((e.mode, e.uid, e.gid, e.mtime_sec, e.mtime_nsec)),
        });
        Ok(())
    }

    /// Creates a new, empty regular file for `e` and returns it for positioned writes. Its mode is
    /// 0600 until [`Restorer::finish_file`], or the final plain permission bits at once when the
    /// umask keeps them and no owner is restored. The file is always new (`O_EXCL`), so unwritten
    /// ranges read as zero.
    pub fn create_file(&mut self, e: &Entry) -> Result<RestoreFile, RestoreError> {
        Self::expect_kind(e, &[EntryKind::File])?;
        let (parent, name) = self.open_parent(&e.path, true)?;
        let pfd = parent.as_raw_fd();
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Plain permission bits the umask leaves intact are given at creation, which saves the
        // fchmod later; anything else (setuid/setgid/sticky, bits the umask would strip, or
        // owners to restore, since chown may clear bits) starts at 0600 and is set in finish_file.
        // (A chown by root clears only setuid/setgid, which such a mode does not have, so
        // restoring owners needs no chmod after it either.)
        let mode = self.effective_mode(e.mode);
        let final_at_create = mode & !0o777 == 0 && mode & self.umask == 0;
        let create_mode = if final_at_create { mode } else { 0o600 };
        let fd = self.create_excl(pfd, name, &e.path, "create file", || {
            openat(pfd, name, flags, create_mode)
        })?;
        let needs_identity = self
            .link_targets
            .as_ref()
            .is_none_or(|t| t.contains(&e.path));
        let restored = if needs_identity {
            let st = fstat(fd.as_raw_fd()).map_err(Self::io_err(&e.path, "stat new file"))?;
            let (dev, ino) = file_id(&st);
            Restored::File(dev, ino)
        } else {
            Restored::Other
        };
        self.note(&e.path, restored);
        Ok(RestoreFile {
            file: File::from(fd),
            path: e.path.clone(),
            high_water: 0,
            mode_at_create: final_at_create.then_some(mode),
        })
    }

    /// `extract --resume`: when regular file `e` already exists in OUT with its size, mtime and
    /// SHA-256 (restored by an earlier, interrupted run), keeps it — it then counts as restored in
    /// this run and is a valid hard-link target — and returns true. Anything else returns false
    /// and the caller restores the entry anew.
    pub fn keep_if_intact(&mut self, e: &Entry) -> Result<bool, RestoreError> {
        if e.kind != EntryKind::File {
            return Ok(false);
        }
        let Some((fd, st)) = self.open_existing(&e.path)? else {
            return Ok(false);
        };
        let same_meta = is_reg(&st)
            && st.st_size as u64 == e.size
            && st.st_mtime == e.mtime_sec
            && st.st_mtime_nsec as u32 == e.mtime_nsec;
        if !same_meta {
            return Ok(false);
        }
        let sha = crate::util::digest_read::digest_reader::<sha2::Sha256>(File::from(fd))
            .map_err(Self::io_err(&e.path, "read existing file"))?;
        if sha.as_slice() != e.sha256 {
            return Ok(false);
        }
        let (dev, ino) = file_id(&st);
        self.note(&e.path, Restored::File(dev, ino));
        Ok(true)
    }

    /// A regular file this run already restored by other means (a dar generation of the seed chain
    /// a migrated chain continues): if it is a regular file of `e.size` bytes, applies `e`'s
    /// owner, mode and mtime through its descriptor and returns true. Anything else: false,
    /// nothing changed.
    pub fn adopt_restored_file(&mut self, e: &Entry) -> Result<bool, RestoreError> {
        if e.kind != EntryKind::File || !self.restored.contains_key(&e.path) {
            return Ok(false);
        }
        let Some((fd, st)) = self.open_existing(&e.path)? else {
            return Ok(false);
        };
        if !is_reg(&st) || st.st_size as u64 != e.size {
            return Ok(false);
        }
        self.apply_file_metadata(fd.as_raw_fd(), e, None)?;
        Ok(true)
    }

    /// Completes a file: length `e.size` (a short or holed content stays zero-filled), owner (if
    /// `same_owner`), mode (setuid/setgid only with `same_owner`) and mtime with nanoseconds — all
    /// through the open descriptor, so nothing can be redirected. No fsync: the caller decides.
    pub fn finish_file(&mut self, mut f: RestoreFile, e: &Entry) -> Result<(), RestoreError> {
        // The file is new (O_EXCL), so its length is exactly the furthest byte written.
        if f.high_water != e.size {
            f.set_len(e.size)?;
        }
        self.apply_file_metadata(f.file.as_raw_fd(), e, f.mode_at_create)
    }

    /// Owner (if `same_owner`), mode and mtime of regular file `e` through its descriptor `fd`;
    /// the chmod is skipped when the file was created with exactly that mode already.
    fn apply_file_metadata(
        &mut self,
        fd: RawFd,
        e: &Entry,
        mode_at_create: Option<u32>,
    ) -> Result<(), RestoreError> {
        if self.want_chown() {
            let r = fchown(fd, e.uid, e.gid);
            self.chown_result(r, &e.path)?;
        }
        let mode = self.effective_mode(e.mode);
        if mode_at_create != Some(mode) {
            // chmod after chown, because chown clears setuid/setgid.
            fchmod(fd, mode).map_err(Self::io_err(&e.path, "set mode"))?;
        }
        futimens(fd, e.mtime_sec, e.mtime_nsec).map_err(Self::io_err(&e.path, "set mtime"))?;
        Ok(())
    }

    /// Opens an existing entry of OUT read-only without following a final symlink, with its
    /// status; `None` when it is missing or cannot be opened (the caller restores it anew).
    fn open_existing(&mut self, path: &[u8]) -> Result<Option<(OwnedFd, FileStat)>, RestoreError> {
        let Ok((parent, name)) = self.open_parent(path, false) else {
            return Ok(None);
        };
        let Ok(fd) = openat(
            parent.as_raw_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            0,
        ) else {
            return Ok(None);
        };
        let st = fstat(fd.as_raw_fd()).map_err(Self::io_err(path, "stat existing file"))?;
        Ok(Some((fd, st)))
    }

    /// Creates a symlink with the archived target bytes verbatim (absolute or `..` targets are fine:
    /// the link is never followed by this module). Owner and mtime are set on the link itself.
    pub fn create_symlink(&mut self, e: &Entry) -> Result<(), RestoreError> {
        Self::expect_kind(e, &[EntryKind::Symlink])?;
        if e.link_target.is_empty() || e.link_target.contains(&0) {
            return Err(RestoreError::BadEntry {
                path: escape_path(&e.path),
                reason: "symlink target is empty or contains NUL".to_string(),
            });
        }
        let (parent, name) = self.open_parent(&e.path, true)?;
        let pfd = parent.as_raw_fd();
        let target = e.link_target.as_slice();
        self.create_excl(pfd, name, &e.path, "create symlink", || {
            Ok(nix::unistd::symlinkat(target, Some(pfd), name)?)
        })?;
        self.note(&e.path, Restored::Other);
        self.apply_meta_at(pfd, name, e, false)
    }

    /// Owner and mtime (and, unless it is a symlink, mode) of `parent/name` without following symlinks.
    fn apply_meta_at(
        &mut self,
        pfd: RawFd,
        name: &[u8],
        e: &Entry,
        chmod: bool,
    ) -> Result<(), RestoreError> {
        if self.want_chown() {
            // AT_SYMLINK_NOFOLLOW changes the link itself.
            let r = nix::unistd::fchownat(
                Some(pfd),
                name,
                Some(Uid::from_raw(e.uid)),
                Some(Gid::from_raw(e.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(io::Error::from);
            self.chown_result(r, &e.path)?;
        }
        if chmod {
            // Only for special files just created by mknodat (never a symlink: Linux cannot chmod
            // a link with AT_SYMLINK_NOFOLLOW, and a link's mode is meaningless).
            let mode = self.effective_mode(e.mode);
            // Flags 0 (FollowSymlink), as the file is the special file just made.
            nix::sys::stat::fchmodat(
                Some(pfd),
                name,
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|err| Self::io_err(&e.path, "set mode")(err.into()))?;
        }
        let (atime, mtime) = mtime_spec(e.mtime_sec, e.mtime_nsec);
        nix::sys::stat::utimensat(
            Some(pfd),
            name,
            &atime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|err| Self::io_err(&e.path, "set mtime")(err.into()))?;
        Ok(())
    }

    /// Creates a second name for a file restored earlier in this run. The target must be a regular file
    /// this run created, still the same inode; anything else (a path outside OUT, a symlink, a file that
    /// was already in OUT) is refused, so a link can never expose or alias a file from outside.
    pub fn create_hardlink(&mut self, e: &Entry) -> Result<(), RestoreError> {
        Self::expect_kind(e, &[EntryKind::HardLink])?;
        let refused = || RestoreError::HardLinkTarget {
            path: escape_path(&e.path),
            target: escape_path(&e.link_target),
        };
        Self::check_path(&e.link_target).map_err(|_| refused())?;
        let Some(&Restored::File(dev, ino)) = self.restored.get(&e.link_target) else {
            return Err(refused());
        };
        Self::check_path(&e.path)?;
        let (tparent, tname) = self
            .open_parent(&e.link_target, false)
            .map_err(|_| refused())?;
        let st = fstatat(tparent.as_raw_fd(), tname).map_err(|_| refused())?;
        if !is_reg(&st) || file_id(&st) != (dev, ino) {
            return Err(refused());
        }
        let (parent, name) = self.open_parent(&e.path, true)?;
        let pfd = parent.as_raw_fd();
        let tfd = tparent.as_raw_fd();
        self.create_excl(pfd, name, &e.path, "create hard link", || {
            // No AT_SYMLINK_FOLLOW: a symlink at the target name is not followed.
            Ok(nix::unistd::linkat(
                Some(tfd),
                tname,
                Some(pfd),
                name,
                AtFlags::empty(),
            )?)
        })?;
        self.note(&e.path, Restored::File(dev, ino));
        Ok(())
    }

    /// Creates a FIFO or character/block device, only when `special_files` is on; otherwise (and always
    /// for sockets, which cannot be meaningfully recreated) returns `Ok(false)` with one notice per kind.
    pub fn create_special(&mut self, e: &Entry) -> Result<bool, RestoreError> {
        Self::expect_kind(
            e,
            &[
                EntryKind::Fifo,
                EntryKind::CharDevice,
                EntryKind::BlockDevice,
                EntryKind::Socket,
            ],
        )?;
        if e.kind == EntryKind::Socket {
            self.notice("sockets", "sockets are recorded but never recreated");
            return Ok(false);
        }
        if !self.opts.special_files {
            self.notice(
                "special",
                "special files (FIFOs, devices) not restored: pass --special-files to create them",
            );
            return Ok(false);
        }
        let (fmt, rdev) = match e.kind {
            EntryKind::Fifo => (SFlag::S_IFIFO, 0),
            EntryKind::CharDevice => (SFlag::S_IFCHR, e.rdev),
            _ => (SFlag::S_IFBLK, e.rdev),
        };
        let (parent, name) = self.open_parent(&e.path, true)?;
        let pfd = parent.as_raw_fd();
        self.create_excl(pfd, name, &e.path, "create special file", || {
            // mknodat does not follow a final symlink. Mode 0600 until set below.
            Ok(nix::sys::stat::mknodat(
                Some(pfd),
                name,
                fmt,
                Mode::from_bits_truncate(0o600),
                rdev as _,
            )?)
        })?;
        self.note(&e.path, Restored::Other);
        self.apply_meta_at(pfd, name, e, true)?;
        Ok(true)
    }

    /// Applies directory metadata deepest first (so setting a child's mtime cannot change a parent's
    /// after it was set, and a read-only parent is made read-only last) and returns the notices.
    ///
    /// A directory that has since been replaced by something else (e.g. by a later entry) is skipped:
    /// it is opened with `O_NOFOLLOW`, so a symlink now in its place is never chmod'ed through.
    /// Failures here do not lose the restored data, so they are returned as notices, not as an error.
    pub fn finish(mut self) -> Result<Vec<String>, RestoreError> {
        let dirs = std::mem::take(&mut self.dirs);
        // An implicit parent that later got an entry of its own takes the entry's metadata.
        let explicit: HashSet<&[u8]> = dirs
            .iter()
            .filter(|d| d.entry.is_some())
            .map(|d| d.path.as_slice())
            .collect();
        let mut order: Vec<&DirMeta> = dirs
            .iter()
            .filter(|d| d.entry.is_some() || !explicit.contains(d.path.as_slice()))
            .collect();
        let depth = |p: &[u8]| p.iter().filter(|&&b| b == b'/').count();
        // Stable: among equal depth, creation order is kept, so a later entry for the same path wins.
        order.sort_by_key(|d| std::cmp::Reverse(depth(&d.path)));
        let mut failures = Vec::new();
        for d in order {
            if let Err(err) = self.apply_dir_meta(d) {
                failures.push(format!("warning: directory metadata not restored: {err}"));
            }
        }
        self.notices.extend(failures);
        Ok(self.notices)
    }

    fn apply_dir_meta(&mut self, d: &DirMeta) -> Result<(), RestoreError> {
        let (parent, name) = match self.open_parent(&d.path, false) {
            Ok(v) => v,
            // A parent was replaced by a non-directory later in this run: nothing to do.
            Err(RestoreError::NotADirectory { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(parent.as_raw_fd(), name, flags, 0) {
            Ok(fd) => fd,
            Err(e)
                if [Errno::ELOOP, Errno::ENOTDIR, Errno::ENOENT]
                    .into_iter()
                    .any(|n| is_errno(&e, n)) =>
            {
                return Ok(());
            }
            Err(e) => return Err(Self::io_err(&d.path, "open directory")(e)),
        };
        let fd = fd.as_raw_fd();
        match d.entry {
            None => {
                let mode = 0o777 & !self.umask;
                fchmod(fd, mode).map_err(Self::io_err(&d.path, "set mode"))?;
            }
            Some((mode, uid, gid, sec, nsec)) => {
                if self.want_chown() {
                    let r = fchown(fd, uid, gid);
                    self.chown_result(r, &d.path)?;
                }
                let mode = self.effective_mode(mode);
                fchmod(fd, mode).map_err(Self::io_err(&d.path, "set mode"))?;
                futimens(fd, sec, nsec).map_err(Self::io_err(&d.path, "set mtime"))?;
            }
        }
        Ok(())
    }
}

/// Names at the top of OUT that belong to extract itself: its damage report (and the temporary
/// name it is written under) and its default work directory. An archive entry there is refused
/// (listed in the report), so a disc can never pre-empt them — e.g. plant a symlink named
/// `corrupted-files.txt` for the report to be written through.
pub const RESERVED_NAMES: [&[u8]; 3] = [
    b"corrupted-files.txt",
    b".corrupted-files.txt.tmp",
    b".bd-archive-work",
];

/// OUT, opened once by descriptor: the only way the tool creates files of its own there (the
/// damage report, the work directory and what goes into it).
///
/// Every name is resolved relative to the descriptor one component at a time with `O_NOFOLLOW`, the
/// final file is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), and replacing a file is an
/// exclusive create under a temporary name followed by `renameat`, which replaces whatever is at
/// the name (a symlink included) without ever following it. So nothing the archive restored and
/// nothing already in OUT (with or without `--overwrite`) can redirect the tool's own writes.
#[derive(Clone, Debug)]
pub struct OutDir {
    /// OUT opened with `O_DIRECTORY`; OUT itself may be a symlink (the user named it).
    fd: Arc<OwnedFd>,
    /// OUT as given, for messages only.
    path: PathBuf,
}

impl OutDir {
    /// Creates OUT (and its parents) if missing and opens it.
    pub fn open(path: &Path) -> io::Result<OutDir> {
        std::fs::create_dir_all(path)?;
        let fd = nix::fcntl::openat(
            None,
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: `fd` was just returned by open and is owned by nothing else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(OutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// OUT as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the directory holding `rel`'s last component (every parent must be a real directory
    /// of OUT, never a symlink) and returns it with that component.
    fn parent_of<'r>(&self, rel: &'r [u8]) -> io::Result<(Arc<OwnedFd>, &'r [u8])> {
        Restorer::check_path(rel).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        let name = comps.pop().unwrap_or_default();
        let mut cur = Arc::clone(&self.fd);
        for c in comps {
            let fd = nix::fcntl::openat(
                Some(cur.as_raw_fd()),
                c,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            // SAFETY: fresh descriptor from openat.
            cur = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok((cur, name))
    }

    /// **The** function that opens a file the tool writes in OUT: creates `rel` (relative to OUT,
    /// parents real directories) as a new file, mode 0600, read-write. Fails with `AlreadyExists`
    /// if anything — a file, a directory, a symlink — is at the name; never follows a symlink.
    pub fn create_own_file(&self, rel: &Path) -> io::Result<File> {
        let (parent, name) = self.parent_of(rel.as_os_str().as_encoded_bytes())?;
        let fd = nix::fcntl::openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        // SAFETY: fresh descriptor from openat.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Writes `contents` as `rel` atomically: an exclusive create of `.<name>.tmp` next to it (a
    /// stale one from an interrupted run is unlinked first, never followed), then `renameat` over
    /// `rel`, which replaces a file or symlink there without following it (a directory there is
    /// an error). Made to be read by the user afterwards: mode 0644 minus nothing secret.
    pub fn replace_own_file(&self, rel: &Path, contents: &[u8]) -> io::Result<()> {
        let bytes = rel.as_os_str().as_encoded_bytes();
        let (parent, name) = self.parent_of(bytes)?;
        let mut tmp_name = b".".to_vec();
        tmp_name.extend_from_slice(name);
        tmp_name.extend_from_slice(b".tmp");
        let pfd = parent.as_raw_fd();
        match nix::unistd::unlinkat(Some(pfd), tmp_name.as_slice(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let tmp_rel = match bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => [&bytes[..=i], tmp_name.as_slice()].concat(),
            None => tmp_name.clone(),
        };
        let mut f = self.create_own_file(Path::new(std::ffi::OsStr::from_bytes(&tmp_rel)))?;
        let written = f
            .write_all(contents)
            .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(0o644)));
        if let Err(e) = written {
            let _ =
                nix::unistd::unlinkat(Some(pfd), tmp_name.as_slice(), UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        nix::fcntl::renameat(Some(pfd), tmp_name.as_slice(), Some(pfd), name).map_err(|e| {
            let _ =
                nix::unistd::unlinkat(Some(pfd), tmp_name.as_slice(), UnlinkatFlags::NoRemoveDir);
            io::Error::from(e)
        })
    }

    /// Creates directory `rel` (mode 0700) if missing and checks that it is a real directory of
    /// OUT, not a symlink (refused with `NotADirectory`-like errors, never followed). Returns its
    /// path for code that works by path below it: only this user can create names in a 0700
    /// directory, and every file the tool creates there is an exclusive create.
    pub fn create_own_dir(&self, rel: &Path) -> io::Result<PathBuf> {
        let (parent, name) = self.parent_of(rel.as_os_str().as_encoded_bytes())?;
        let pfd = parent.as_raw_fd();
        match nix::sys::stat::mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(Some(pfd), name, flags, Mode::empty()) {
            // SAFETY: fresh descriptor from openat; dropped at once.
            Ok(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a symlink or a non-directory is in the way; remove it (it is never followed)",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.path.join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_path_shows_non_utf8_and_backslash() {
        assert_eq!(escape_path(b"caf\xe9"), "caf\\xe9");
        assert_eq!(escape_path(b"a\\b"), "a\\\\b");
        assert_eq!(escape_path("café/ü".as_bytes()), "café/ü");
        assert_eq!(escape_path(b"a\nb\x1b"), "a\\x0ab\\x1b");
        assert_eq!(escape_path(b""), "");
    }

    #[test]
    fn check_path_rejects_escapes_and_malformed() {
        for bad in [
            &b""[..],
            b"/etc/x",
            b"..",
            b"../x",
            b"a/../../x",
            b"a/..",
            b".",
            b"./a",
            b"a/./b",
            b"a//b",
            b"a/",
            b"a\0b",
        ] {
            assert!(
                matches!(
                    Restorer::check_path(bad),
                    Err(RestoreError::UnsafePath { .. })
                ),
                "{}",
                escape_path(bad)
            );
        }
        for good in [
            &b"a"[..],
            b"a/b/c",
            b"..a",
            b"a..",
            b".hidden/x",
            b"caf\xe9",
        ] {
            Restorer::check_path(good).unwrap();
        }
    }

    #[test]
    fn zero_blocks_past_high_water_are_skipped_but_rewrites_work() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let file = File::create(&path).unwrap();
        let mut f = RestoreFile {
            file,
            path: b"f".to_vec(),
            high_water: 0,
            mode_at_create: None,
        };
        let mut buf = vec![0u8; 3 * 4096];
        buf[4096] = 7;
        f.write_at(0, &buf).unwrap();
        assert_eq!(f.high_water, 8192);
        // Rewriting the non-zero block with zeros (below high water) must really write.
        f.write_at(4096, &[0u8; 4096]).unwrap();
        f.set_len(3 * 4096).unwrap();
        assert!(f.write_at(u64::MAX - 1, b"xy").is_err());
        let got = std::fs::read(&path).unwrap();
        assert!(got.iter().all(|&b| b == 0));
        assert_eq!(got.len(), 3 * 4096);
    }

    #[test]
    fn error_messages_are_one_line_and_escaped() {
        let e = Restorer::check_path(b"/x\n\xff").unwrap_err().to_string();
        assert!(!e.contains('\n'));
        assert!(e.contains("\\x0a\\xff"), "{e}");
    }
}
