//! Restores dar archives (one generation after the other) into OUT through [`crate::restore::writer::Restorer`],
//! so nothing is ever written outside OUT.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{DarArchive, DarEntry, DarError, DarKind, SavedStatus};
use crate::format::catalog::{DataRef, Entry, EntryKind};
use crate::restore::writer::{RestoreFile, Restorer};

/// Outcome of restoring one or more archives.
#[derive(Debug, Default)]
pub struct DarRestoreReport {
    /// Files present in OUT whose bytes could not be validated (path, reason).
    pub bad_files: Vec<(String, String)>,
    /// Entries skipped for a reason the user should know (path, reason).
    pub skipped: Vec<(String, String)>,
    /// Files whose content was written.
    pub files: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Deletions applied.
    pub deleted: u64,
}

/// Our catalog entry for dar entry `e` as `kind` (no hash, no data reference yet).
pub(crate) fn to_entry(e: &DarEntry, kind: EntryKind) -> Entry {
    Entry {
        path: e.path.clone(),
        kind,
        mode: u32::from(e.perm),
        uid: u32::try_from(e.uid).unwrap_or(u32::MAX),
        gid: u32::try_from(e.gid).unwrap_or(u32::MAX),
        mtime_sec: i64::try_from(e.mtime.0).unwrap_or(i64::MAX),
        mtime_nsec: e.mtime.1,
        size: if kind == EntryKind::File { e.size } else { 0 },
        link_target: e.link_target.clone().unwrap_or_default(),
        rdev: e
            .device
            .map(|(ma, mi)| libc::makedev(u32::from(ma), u32::from(mi)))
            .unwrap_or(0),
        sha256: [0; 32],
        data: DataRef::default(),
        stamp: Default::default(),
    }
}

/// Adapter: sequential writes into a [`RestoreFile`].
struct FileWriter<'a> {
    f: &'a mut RestoreFile,
    pos: u64,
}

impl Write for FileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.f
            .write_at(self.pos, buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Restores one saved file and its data; false when it could not be created (listed as
/// skipped). Data that cannot be read is listed as a bad file; the file is finished either way.
fn restore_file(
    archive: &DarArchive,
    e: &DarEntry,
    r: &mut Restorer,
    report: &mut DarRestoreReport,
) -> Result<bool, DarError> {
    let p = e.path_lossy();
    let ent = to_entry(e, EntryKind::File);
    let mut f = match r.create_file(&ent) {
        Ok(f) => f,
        Err(err) => {
            report.skipped.push((p, err.to_string()));
            return Ok(false);
        }
    };
    let res = archive.copy_file_data(e, &mut FileWriter { f: &mut f, pos: 0 });
    match res {
        Ok(n) => {
            report.files += 1;
            report.bytes += n;
        }
        Err(err) => report.bad_files.push((p, err.to_string())),
    }
    r.finish_file(f, &ent)
        .map_err(|e| DarError::Io(io::Error::other(e.to_string())))?;
    Ok(true)
}

/// Our entry kind for a dar special file (fifo, device, socket).
fn special_kind(kind: &DarKind) -> EntryKind {
    match kind {
        DarKind::Fifo => EntryKind::Fifo,
        DarKind::CharDev => EntryKind::CharDevice,
        DarKind::BlockDev => EntryKind::BlockDevice,
        _ => EntryKind::Socket,
    }
}

/// Restores `archive` on top of what `r` restored so far (earlier generations): saved entries are
/// (re)written, "not saved" entries are left as the earlier generation restored them, recorded
/// deletions remove what this run restored. Per-file problems go into `report`; only errors that
/// make OUT unusable (or an isolated catalogue given as data) are returned.
pub fn restore_archive(
    archive: &DarArchive,
    r: &mut Restorer,
    report: &mut DarRestoreReport,
) -> Result<(), DarError> {
    if archive.is_isolated() {
        return Err(DarError::Format(
            "this is an isolated catalogue: it holds no file data".into(),
        ));
    }
    let entries = archive.catalogue()?;
    let mut first_link: HashMap<u64, Vec<u8>> = HashMap::new();
    let restore_err =
        |e: crate::restore::writer::RestoreError| DarError::Io(io::Error::other(e.to_string()));
    for e in &entries {
        let p = e.path_lossy();
        if e.has_ea && e.status == SavedStatus::Saved {
            report
                .skipped
                .push((p.clone(), "extended attributes not restored".into()));
        }
        match (&e.kind, e.status) {
            (DarKind::Deleted(_), _) => {
                let removed = r.remove_restored(&e.path).map_err(restore_err)?;
                report.deleted += u64::from(removed);
            }
            (DarKind::Dir, _) => r
                .create_dir(&to_entry(e, EntryKind::Dir))
                .map_err(restore_err)?,
            (DarKind::File, SavedStatus::Fake) if e.hardlink.is_some() => {
                let tag = e.hardlink.unwrap_or_default();
                if let Some(target) = first_link.get(&tag) {
                    let mut h = to_entry(e, EntryKind::HardLink);
                    h.link_target = target.clone();
                    if let Err(err) = r.create_hardlink(&h) {
                        report.skipped.push((p, err.to_string()));
                    }
                }
                // Group not written in this generation: the link exists from an earlier one.
            }
            (DarKind::File, SavedStatus::Saved) => {
                let written = restore_file(archive, e, r, report)?;
                if let (true, Some(tag)) = (written, e.hardlink) {
                    first_link.insert(tag, e.path.clone());
                }
            }
            (DarKind::Symlink, SavedStatus::Saved) => {
                if let Err(err) = r.create_symlink(&to_entry(e, EntryKind::Symlink)) {
                    report.skipped.push((p, err.to_string()));
                }
            }
            (
                DarKind::Fifo | DarKind::CharDev | DarKind::BlockDev | DarKind::Socket,
                SavedStatus::Saved,
            ) => {
                if let Err(err) = r.create_special(&to_entry(e, special_kind(&e.kind))) {
                    report.skipped.push((p, err.to_string()));
                }
            }
            (DarKind::Door, SavedStatus::Saved) => {
                report.skipped.push((p, "Solaris door not restored".into()));
            }
            (_, SavedStatus::InodeOnly) => {
                report.skipped.push((
                    p,
                    "only metadata changed in this generation; metadata update not applied".into(),
                ));
            }
            (_, SavedStatus::Delta) => {
                report.bad_files.push((
                    p,
                    "unsupported dar feature: binary delta (dar --delta sig)".into(),
                ));
            }
            _ => {} // not saved in this generation: an earlier one restored it
        }
    }
    Ok(())
}
