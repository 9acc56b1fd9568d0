//! The reader obligations of FORMAT.md §6 for entries, checked before anything is restored.
//!
//! A catalog (or the merged indexes) is untrusted: every checksum may be valid and the entries
//! still hostile. Each entry is checked against every rule FORMAT.md states; an entry that
//! breaks one is skipped (and reported with the rule), the others are restored. Cost: one pass,
//! O(total path bytes) time and one hash per file entry of memory. The disc map a catalog carries
//! for earlier generations has its own rule ([`disc_span_rule`]), applied per generation.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use super::{DiscSpan, Entry, EntryKind};

/// Longest path a reader accepts (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Longest path component a reader accepts (Linux `NAME_MAX`).
pub const MAX_COMPONENT: usize = 255;
/// Longest symlink or hard-link target a reader accepts.
pub const MAX_LINK_TARGET: usize = 4096;
/// Longest chain name (`-n`).
pub const MAX_CHAIN_NAME: usize = 64;

/// Where the entries come from: a catalog must give every file with data its SHA-256; a
/// per-disc index may leave it unknown (all zero) for a file that continues on the next disc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A generation's catalog.
    Catalog,
    /// Indexes of the discs at hand, merged.
    Indexes,
}

/// The FORMAT.md §6 rule each entry breaks, if any, in entry order: `result[i]` is `None` for a
/// good entry. `stream_len(g)` is the length of generation `g`'s tar stream when known (the
/// end of its chunk table), `None` when it is not (discs or generation missing).
///
/// Order and hard links are judged against the entries kept so far, so one bad entry never
/// makes its neighbours bad.
pub fn entry_violations(
    entries: &[Entry],
    source: Source,
    stream_len: &dyn Fn(u32) -> Option<u64>,
) -> Vec<Option<&'static str>> {
    let hasher = RandomState::new();
    let mut files: HashSet<u64> = HashSet::new();
    let mut last_kept: Option<&[u8]> = None;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let broken = path_rule(&e.path)
            .or_else(|| order_rule(last_kept, &e.path))
            .or_else(|| field_rule(e, source, stream_len))
            .or_else(|| link_rule(e, &files, &hasher));
        if broken.is_none() {
            last_kept = Some(&e.path);
            if e.kind == EntryKind::File {
                files.insert(hasher.hash_one(&e.path));
            }
        }
        out.push(broken);
    }
    out
}

/// Relative, '/'-separated, non-empty, no NUL, no `.`/`..`/empty component, within the limits.
pub fn path_rule(path: &[u8]) -> Option<&'static str> {
    path_fault(path, true).map(|f| match f {
        PathFault::Empty => "empty path",
        PathFault::TooLong => "path longer than 4096 bytes",
        PathFault::Absolute => "absolute path",
        PathFault::Nul => "NUL byte in path",
        PathFault::EmptyComponent => "empty path component",
        PathFault::Dot | PathFault::DotDot => "'.' or '..' path component",
        PathFault::ComponentTooLong => "path component longer than 255 bytes",
    })
}

/// What makes an archive path unsafe or unreadable; [`path_rule`] (the catalog's reader) and
/// the restore writer's check word it each their own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathFault {
    /// No bytes at all.
    Empty,
    /// Longer than [`MAX_PATH`] (checked only with limits).
    TooLong,
    /// Starts with '/'.
    Absolute,
    /// Holds a NUL byte.
    Nul,
    /// `a//b`, a leading or a trailing '/'.
    EmptyComponent,
    /// A `.` component.
    Dot,
    /// A `..` component.
    DotDot,
    /// A component longer than [`MAX_COMPONENT`] (checked only with limits).
    ComponentTooLong,
}

/// The first fault of `path` by FORMAT.md §6's lexical rules: relative, '/'-separated,
/// non-empty, no NUL, no `.`/`..`/empty component; with `limits`, also at most [`MAX_PATH`]
/// bytes and [`MAX_COMPONENT`] bytes a component. A path without fault can only name something
/// inside the directory it is resolved in, once no symlink is followed.
pub fn path_fault(path: &[u8], limits: bool) -> Option<PathFault> {
    if path.is_empty() {
        Some(PathFault::Empty)
    } else if limits && path.len() > MAX_PATH {
        Some(PathFault::TooLong)
    } else if path[0] == b'/' {
        Some(PathFault::Absolute)
    } else if path.contains(&0) {
        Some(PathFault::Nul)
    } else {
        path.split(|&b| b == b'/').find_map(|c| match c {
            b"" => Some(PathFault::EmptyComponent),
            b"." => Some(PathFault::Dot),
            b".." => Some(PathFault::DotDot),
            c if limits && c.len() > MAX_COMPONENT => Some(PathFault::ComponentTooLong),
            _ => None,
        })
    }
}

/// Tree order (components compared as byte strings) strictly increasing: paths are unique.
fn order_rule(last: Option<&[u8]>, path: &[u8]) -> Option<&'static str> {
    fn components(p: &[u8]) -> std::slice::Split<'_, u8, impl FnMut(&u8) -> bool> {
        p.split(|&b| b == b'/')
    }
    match last {
        Some(l) if components(l).cmp(components(path)).is_ge() => {
            Some("not in tree order (a duplicate path, or listed out of place)")
        }
        _ => None,
    }
}

/// Mode, time, size and hash fields.
fn field_rule(
    e: &Entry,
    source: Source,
    stream_len: &dyn Fn(u32) -> Option<u64>,
) -> Option<&'static str> {
    if e.mode > 0o7777 {
        return Some("mode has bits beyond 0o7777");
    }
    if e.mtime_nsec >= 1_000_000_000 {
        return Some("mtime_nsec is not below 10^9");
    }
    if e.stamp.ctime_nsec >= 1_000_000_000 {
        return Some("ctime_nsec is not below 10^9");
    }
    if e.kind != EntryKind::File {
        return (e.size != 0).then_some("a non-file entry with a size");
    }
    // Seed-held files (FORMAT §6.2) have no bytes in any of our streams and no hash.
    if e.data.generation == 0 {
        return None;
    }
    if e.data.content_offset < e.data.header_offset {
        return Some("content starts before its tar header");
    }
    let Some(end) = e.data.content_offset.checked_add(e.size) else {
        return Some("size beyond any stream");
    };
    if stream_len(e.data.generation).is_some_and(|len| end > len) {
        return Some("content extends past the end of its generation's stream");
    }
    let no_hash = e.sha256 == [0; 32];
    (source == Source::Catalog && e.size > 0 && no_hash)
        .then_some("a file with data but no SHA-256 in the catalog")
}

/// Link targets: symlinks have a sane target; a hard link names an earlier file entry.
fn link_rule(e: &Entry, files: &HashSet<u64>, hasher: &RandomState) -> Option<&'static str> {
    match e.kind {
        EntryKind::Symlink | EntryKind::HardLink if e.link_target.len() > MAX_LINK_TARGET => {
            Some("link target longer than 4096 bytes")
        }
        EntryKind::Symlink if e.link_target.is_empty() || e.link_target.contains(&0) => {
            Some("symlink target empty or with a NUL byte")
        }
        EntryKind::HardLink if !files.contains(&hasher.hash_one(&e.link_target)) => {
            Some("hard link to a path that is not an earlier file entry")
        }
        _ => None,
    }
}

/// The first FORMAT.md §6.1 rule the disc-map spans of one generation (in list order) break:
/// disc numbers increasing, chunk ranges contiguous from 0, each `tar_end` within its chunks.
/// [`super::DiscMap::checked`] applies it to every generation of a catalog's map.
pub fn disc_span_rule(group: &[DiscSpan]) -> Option<&'static str> {
    let mut next_chunk = 0u64;
    let mut prev_end = 0u64;
    let mut prev_disc = 0u32;
    for s in group {
        if s.disc <= prev_disc {
            return Some("disc numbers not increasing within a generation");
        }
        if s.first_chunk != next_chunk {
            return Some("chunk ranges of a generation not contiguous from 0");
        }
        let Some(end_chunk) = s.first_chunk.checked_add(s.chunk_count) else {
            return Some("chunk range beyond any stream");
        };
        let Some(limit) = end_chunk.checked_mul(super::CHUNK_BYTES) else {
            return Some("chunk range beyond any stream");
        };
        let fits = if s.chunk_count == 0 {
            s.tar_end == prev_end
        } else {
            prev_end == s.first_chunk * super::CHUNK_BYTES
                && s.tar_end > limit - super::CHUNK_BYTES
                && s.tar_end <= limit
        };
        if !fits {
            return Some("tar_end does not match the disc's chunks");
        }
        prev_disc = s.disc;
        next_chunk = end_chunk;
        prev_end = s.tar_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::catalog::DataRef;

    fn entry(path: &[u8], kind: EntryKind) -> Entry {
        Entry {
            path: path.to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            size: 0,
            link_target: Vec::new(),
            rdev: 0,
            sha256: [0; 32],
            data: DataRef {
                generation: 1,
                header_offset: 0,
                content_offset: 512,
            },
            stamp: Default::default(),
        }
    }

    fn file(path: &[u8], size: u64) -> Entry {
        let mut e = entry(path, EntryKind::File);
        e.size = size;
        e.sha256 = [1; 32];
        e
    }

    #[test]
    fn each_rule_skips_only_the_entry_that_breaks_it() {
        let mut nsec = file(b"b", 1);
        nsec.mtime_nsec = 1_000_000_000;
        let mut huge = file(b"c", u64::MAX);
        huge.data.content_offset = 1;
        let mut past = file(b"d", 2000);
        past.data.content_offset = 0;
        let mut nohash = file(b"e", 5);
        nohash.sha256 = [0; 32];
        let mut link_ok = entry(b"f", EntryKind::HardLink);
        link_ok.link_target = b"a".to_vec();
        let mut link_bad = entry(b"g", EntryKind::HardLink);
        link_bad.link_target = b"b".to_vec(); // b was skipped
        let mut dir_sized = entry(b"h", EntryKind::Dir);
        dir_sized.size = 1;
        let entries = vec![
            file(b"a", 1),
            nsec,
            huge,
            past,
            nohash,
            link_ok,
            link_bad,
            dir_sized,
            entry(b"a", EntryKind::Dir), // duplicate of a, out of order
            entry(&[b'x'; 256], EntryKind::Dir),
            entry(b"z", EntryKind::Dir),
        ];
        let v = entry_violations(&entries, Source::Catalog, &|_| Some(1024));
        let bad: Vec<bool> = v.iter().map(Option::is_some).collect();
        assert_eq!(
            bad,
            [false, true, true, true, true, false, true, true, true, true, false]
        );
        // From indexes, an unknown hash is allowed.
        let v = entry_violations(&entries[4..5], Source::Indexes, &|_| None);
        assert_eq!(v, [None]);
    }
}
