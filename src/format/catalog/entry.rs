//! One entry of the archived tree, as the catalog and the per-disc index record it.

use serde::{Deserialize, Serialize};

/// What kind of filesystem object an entry is. The numeric values are part of the on-disc format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum EntryKind {
    /// Regular file with content in the data stream.
    File = 0,
    /// Directory (also empty ones).
    Dir = 1,
    /// Symbolic link; `link_target` holds the target bytes, never followed.
    Symlink = 2,
    /// Second or later name of a hard-linked file; `link_target` is the path of the entry holding the content.
    HardLink = 3,
    /// Named pipe; restored only with `--special-files`.
    Fifo = 4,
    /// Character device; restored only with `--special-files` (and as root).
    CharDevice = 5,
    /// Block device; restored only with `--special-files` (and as root).
    BlockDevice = 6,
    /// Unix socket; recorded for completeness, never recreated.
    Socket = 7,
}

/// Where an entry's bytes lie in a generation's tar stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// Generation whose data stream holds the content (equal to the catalog's generation unless the
    /// content is reused from an earlier generation, e.g. an unchanged or renamed file).
    pub generation: u32,
    /// Offset of the entry's first tar header block (its PAX header if any) in that generation's tar stream.
    pub header_offset: u64,
    /// Offset of the first content byte in that generation's tar stream (= end of the headers).
    pub content_offset: u64,
}

/// One archived filesystem object. Invariants hold for every entry a reader accepts:
/// `path` is relative, '/'-separated, non-empty, without "." or ".." components or NUL bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path bytes relative to the archive root, exactly as the source filesystem had them (may be non-UTF-8).
    /// At most 4096 bytes (a longer one makes the record undecodable).
    #[serde(deserialize_with = "super::bounded::bytes::<_, 4096>")]
    pub path: Vec<u8>,
    /// Kind of object.
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch (may be negative).
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time, < 1_000_000_000.
    pub mtime_nsec: u32,
    /// Content length in bytes (regular files only; 0 for every other kind).
    pub size: u64,
    /// Symlink target, or for `HardLink` the path of the entry that holds the content; empty otherwise.
    #[serde(deserialize_with = "super::bounded::bytes::<_, 4096>")]
    pub link_target: Vec<u8>,
    /// Device number for character/block devices (`libc::makedev` encoding); 0 otherwise.
    pub rdev: u64,
    /// SHA-256 of the content (regular files; all zero for other kinds).
    pub sha256: [u8; 32],
    /// Where the tar record of this entry lies.
    pub data: DataRef,
    /// The source object's identity and change time when it was archived (format version 2;
    /// all zero when unknown: read from a version-1 record, or never recorded). Only `create
    /// --base` uses it, to tell an untouched file from one edited with its mtime put back.
    pub stamp: ChangeStamp,
}

/// What, beyond size and mtime, says a source file is still the one archived: its inode
/// change time and identity (restic and borg decide "unchanged" from the same fields).
/// All zero means "not known" (see [`ChangeStamp::is_known`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeStamp {
    /// Inode change time (`st_ctime`), seconds since the epoch.
    pub ctime_sec: i64,
    /// Nanoseconds part of the change time, < 1_000_000_000.
    pub ctime_nsec: u32,
    /// `st_dev` of the file system holding the object when it was archived.
    pub dev: u64,
    /// `st_ino` of the object; never 0 on Linux file systems, so 0 marks an unknown stamp.
    pub ino: u64,
}

impl ChangeStamp {
    /// Whether the stamp was recorded (a version-1 entry, or one never scanned, has none).
    pub fn is_known(&self) -> bool {
        self.ino != 0
    }
}

impl EntryKind {
    /// Whether entries of this kind carry content bytes in the data stream.
    pub fn has_content(self) -> bool {
        matches!(self, EntryKind::File)
    }
}
