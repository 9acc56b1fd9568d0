//! The catalogue: a tree of entries dumped depth-first, each directory closed by an end-of-directory
//! entry. Parsed iteratively (no recursion), every length bounded.

use std::io::Read;

use super::{infinint_from, read_cstring, read_u8, Compression, DarError, Edition, Result};

/// Longest file name accepted (one path component).
const MAX_NAME: usize = 64 * 1024;
/// Longest symlink target accepted.
const MAX_TARGET: usize = 64 * 1024;
/// Widest CRC accepted.
const MAX_CRC: u64 = 4096;
/// Deepest directory nesting accepted.
const MAX_DEPTH: usize = 4096;

/// What the archive holds for an entry ("saved status").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedStatus {
    /// Data and metadata saved in this archive.
    Saved,
    /// Unchanged since the archive of reference: only the fact it exists is recorded.
    NotSaved,
    /// Only the inode's metadata changed; data is in an older archive.
    InodeOnly,
    /// Binary delta against the reference (dar --delta).
    Delta,
    /// Placeholder from an isolated catalogue of a merged archive.
    Fake,
}

/// Kind of entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DarKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (target when saved).
    Symlink,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Solaris door.
    Door,
    /// Recorded deletion: the path existed in the archive of reference and is gone now. The byte is
    /// dar's letter for the kind it had.
    Deleted(u8),
}

/// Where and how a saved file's data is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataInfo {
    /// Logical offset of the (escaped, compressed) data.
    pub offset: u64,
    /// Stored size as recorded.
    pub storage_size: u64,
    /// Compression of this file's data.
    pub compression: Compression,
    /// dar's XOR check of the uncompressed data.
    pub crc: Vec<u8>,
    /// Data holds sparse-file hole markers.
    pub sparse: bool,
    /// Data changed while dar read it ("dirty").
    pub dirty: bool,
    /// Data is a binary delta patch.
    pub delta: bool,
}

/// One catalogue entry, flattened with its full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DarEntry {
    /// Path relative to the archive root, components joined by '/'.
    pub path: Vec<u8>,
    /// Kind.
    pub kind: DarKind,
    /// Saved status (deleted entries report `Saved`).
    pub status: SavedStatus,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time (seconds, nanoseconds); for a deletion, when it was noticed.
    pub mtime: (u64, u32),
    /// Access time.
    pub atime: (u64, u32),
    /// File size (regular files).
    pub size: u64,
    /// Symlink target (when saved).
    pub link_target: Option<Vec<u8>>,
    /// Device major/minor (when saved).
    pub device: Option<(u16, u16)>,
    /// Hard link group ("etiquette"); all entries with the same value are one inode.
    pub hardlink: Option<u64>,
    /// Data location, for saved files.
    pub data: Option<DataInfo>,
    /// Extended attributes are recorded (they are not restored).
    pub has_ea: bool,
    /// Filesystem-specific attributes are recorded (they are not restored).
    pub has_fsa: bool,
}

impl DarEntry {
    /// Path for messages.
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// Whether this entry's data is present in this archive.
    pub fn data_present(&self) -> bool {
        self.data.is_some()
    }
}

fn status_of(sig: u8) -> Result<(u8, SavedStatus)> {
    let base = (sig & 0x1F) | 0x60;
    if !base.is_ascii_lowercase() {
        return Err(DarError::Format(format!("bad entry signature {sig:#04x}")));
    }
    let st = match sig >> 5 {
        1 => SavedStatus::Delta,
        2 => SavedStatus::NotSaved,
        3 => SavedStatus::Saved,
        4 => SavedStatus::InodeOnly,
        7 => SavedStatus::Fake,
        _ => return Err(DarError::Format(format!("bad entry status {sig:#04x}"))),
    };
    Ok((base, st))
}

fn read_time<R: Read + ?Sized>(r: &mut R) -> Result<(u64, u32)> {
    let unit = read_u8(r)?;
    let sec = infinint_from(r)?;
    let sub = match unit {
        b's' => 0,
        b'u' => infinint_from(r)?.saturating_mul(1000),
        b'n' => infinint_from(r)?,
        other => return Err(DarError::Format(format!("unknown time unit {other:#04x}"))),
    };
    if sub >= 1_000_000_000 {
        return Err(DarError::Format("sub-second field out of range".into()));
    }
    Ok((sec, sub as u32))
}

fn read_crc<R: Read + ?Sized>(r: &mut R) -> Result<Vec<u8>> {
    let w = infinint_from(r)?;
    if w > MAX_CRC {
        return Err(DarError::Format("CRC too wide".into()));
    }
    let mut v = vec![0u8; w as usize];
    r.read_exact(&mut v)
        .map_err(|_| DarError::Truncated("CRC"))?;
    Ok(v)
}

fn read_u16<R: Read + ?Sized>(r: &mut R) -> Result<u16> {
    Ok(u16::from_be_bytes([read_u8(r)?, read_u8(r)?]))
}

/// Inode part shared by every non-directory-end entry.
struct Inode {
    uid: u64,
    gid: u64,
    perm: u16,
    atime: (u64, u32),
    mtime: (u64, u32),
    ea: bool,
    fsa: bool,
}

fn read_inode<R: Read + ?Sized>(r: &mut R, ed: Edition) -> Result<Inode> {
    let flag = read_u8(r)?;
    let ea = match flag & 0x07 {
        0x01 => true,
        0x02..=0x05 => false,
        _ => return Err(DarError::Format("bad EA status".into())),
    };
    let uid = infinint_from(r)?;
    let gid = infinint_from(r)?;
    let perm = read_u16(r)? & 0o7777;
    let atime = read_time(r)?;
    let mtime = read_time(r)?;
    let _ctime = read_time(r)?;
    if ea {
        let _ea_size = infinint_from(r)?;
        let _ea_offset = infinint_from(r)?;
        let _ea_crc = read_crc(r)?;
    }
    let mut fsa = false;
    if ed.major >= 9 {
        match flag & 0x18 {
            0x00 => {}
            0x08 => {
                let _families = infinint_from(r)?;
            }
            0x10 => {
                fsa = true;
                let _families = infinint_from(r)?;
                let _size = infinint_from(r)?;
                let _offset = infinint_from(r)?;
                let _crc = read_crc(r)?;
            }
            _ => return Err(DarError::Format("bad FSA status".into())),
        }
    }
    Ok(Inode {
        uid,
        gid,
        perm,
        atime,
        mtime,
        ea,
        fsa,
    })
}

const FILE_DATA_WITH_HOLE: u8 = 0x01;
const FILE_DATA_IS_DIRTY: u8 = 0x02;
const FILE_DATA_HAS_DELTA_SIG: u8 = 0x04;

/// Parsed entry before it gets its path.
enum Raw {
    Eod,
    Entry(Box<DarEntry>),
    Dir(Box<DarEntry>),
}

fn blank(name: Vec<u8>, kind: DarKind, status: SavedStatus) -> DarEntry {
    DarEntry {
        path: name,
        kind,
        status,
        perm: 0,
        uid: 0,
        gid: 0,
        mtime: (0, 0),
        atime: (0, 0),
        size: 0,
        link_target: None,
        device: None,
        hardlink: None,
        data: None,
        has_ea: false,
        has_fsa: false,
    }
}

fn read_entry<R: Read + ?Sized>(r: &mut R, ed: Edition, nested: bool) -> Result<Raw> {
    let sig = read_u8(r)?;
    let (base, status) = status_of(sig)?;
    if base == b'z' {
        return Ok(Raw::Eod);
    }
    let name = read_cstring(r, MAX_NAME)?;
    if !nested && (name.is_empty() || name == b"." || name == b".." || name.contains(&b'/')) {
        return Err(DarError::Format(format!(
            "unsafe entry name {:?}",
            String::from_utf8_lossy(&name)
        )));
    }
    match base {
        b'x' => {
            let was = read_u8(r)?;
            let mut e = blank(name, DarKind::Deleted(was), SavedStatus::Saved);
            e.mtime = read_time(r)?;
            return Ok(Raw::Entry(Box::new(e)));
        }
        b'm' => return read_hard_link(r, ed, name, status, nested),
        b'h' | b'e' => {
            return Err(DarError::Unsupported(
                "old-style hard link entry (archive format < 07)".into(),
            ))
        }
        _ => {}
    }
    let kind = kind_of(base)?;
    let ino = read_inode(r, ed)?;
    let mut e = blank(name, kind.clone(), status);
    e.uid = ino.uid;
    e.gid = ino.gid;
    e.perm = ino.perm;
    e.atime = ino.atime;
    e.mtime = ino.mtime;
    e.has_ea = ino.ea;
    e.has_fsa = ino.fsa;
    let saved = status == SavedStatus::Saved;
    match kind {
        DarKind::File | DarKind::Door => read_file_data(r, &mut e, status)?,
        DarKind::Symlink if saved => {
            e.link_target = Some(read_cstring(r, MAX_TARGET)?);
        }
        DarKind::CharDev | DarKind::BlockDev if saved => {
            e.device = Some((read_u16(r)?, read_u16(r)?));
        }
        DarKind::Dir => return Ok(Raw::Dir(Box::new(e))),
        _ => {}
    }
    Ok(Raw::Entry(Box::new(e)))
}

/// The rest of a hard-link entry ('m'): its tag, then either the first entry of the group
/// (`>`, read in full) or a marker (`X`) whose kind and data come from that first entry.
fn read_hard_link<R: Read + ?Sized>(
    r: &mut R,
    ed: Edition,
    name: Vec<u8>,
    status: SavedStatus,
    nested: bool,
) -> Result<Raw> {
    if nested {
        return Err(DarError::Format("hard link inside hard link".into()));
    }
    let tag = infinint_from(r)?;
    let flag = read_u8(r)?;
    let mut e = match flag {
        b'X' => blank(Vec::new(), DarKind::File, status),
        b'>' => match read_entry(r, ed, true)? {
            Raw::Entry(e) => *e,
            _ => return Err(DarError::Format("hard link to a directory".into())),
        },
        _ => return Err(DarError::Format("bad hard link flag".into())),
    };
    if flag == b'X' {
        // Marker: the kind and data come from the first entry with this tag.
        e.kind = DarKind::File;
        e.status = SavedStatus::Fake;
    }
    e.path = name;
    e.hardlink = Some(tag);
    Ok(Raw::Entry(Box::new(e)))
}

/// The kind of an entry from its signature's base letter.
fn kind_of(base: u8) -> Result<DarKind> {
    Ok(match base {
        b'f' => DarKind::File,
        b'd' => DarKind::Dir,
        b'l' => DarKind::Symlink,
        b'c' => DarKind::CharDev,
        b'b' => DarKind::BlockDev,
        b'p' => DarKind::Fifo,
        b's' => DarKind::Socket,
        b'o' => DarKind::Door,
        other => {
            return Err(DarError::Format(format!(
                "unknown entry type {:?}",
                other as char
            )))
        }
    })
}

/// A file's size and, when its data is saved (or a delta), where the data is and how it is
/// stored; a delta signature is refused.
fn read_file_data<R: Read + ?Sized>(
    r: &mut R,
    e: &mut DarEntry,
    status: SavedStatus,
) -> Result<()> {
    let saved = status == SavedStatus::Saved;
    e.size = infinint_from(r)?;
    if saved || status == SavedStatus::Delta {
        let offset = infinint_from(r)?;
        let storage_size = infinint_from(r)?;
        let flags = read_u8(r)?;
        let compression = Compression::from_char(read_u8(r)?)?;
        if flags & FILE_DATA_HAS_DELTA_SIG != 0 {
            return Err(DarError::Unsupported(format!(
                "delta signature (dar --delta sig) on {}",
                e.path_lossy()
            )));
        }
        let crc = read_crc(r)?;
        e.data = Some(DataInfo {
            offset,
            storage_size,
            compression,
            crc,
            sparse: flags & FILE_DATA_WITH_HOLE != 0,
            dirty: flags & FILE_DATA_IS_DIRTY != 0,
            delta: status == SavedStatus::Delta,
        });
    } else {
        let flags = read_u8(r)?;
        if flags & FILE_DATA_HAS_DELTA_SIG != 0 {
            return Err(DarError::Unsupported(format!(
                "delta signature (dar --delta sig) on {}",
                e.path_lossy()
            )));
        }
    }
    Ok(())
}

/// Parses a catalogue from its first byte (after the 'C' mark, decompressed and unescaped).
/// Returns entries in archive order (directories before their content), root excluded.
/// Hard-link entries after the first of their group carry `status == Fake` and the group's tag.
pub fn parse_catalogue<R: Read + ?Sized>(r: &mut R, ed: Edition) -> Result<Vec<DarEntry>> {
    let mut label = [0u8; 10];
    r.read_exact(&mut label)
        .map_err(|_| DarError::Truncated("catalogue"))?;
    if ed >= (Edition { major: 11, fix: 1 }) {
        let _in_place = read_cstring(r, MAX_TARGET)?;
    }
    let root = match read_entry(r, ed, true)? {
        Raw::Dir(d) => d,
        _ => return Err(DarError::Format("catalogue root is not a directory".into())),
    };
    drop(root);
    let mut out: Vec<DarEntry> = Vec::new();
    let mut stack: Vec<Vec<u8>> = Vec::new(); // path of each open directory below the root
    let mut first_of_tag: std::collections::HashMap<u64, usize> = Default::default();
    loop {
        let raw = read_entry(r, ed, false)?;
        let parent: &[u8] = stack.last().map(|v| v.as_slice()).unwrap_or(b"");
        let join = |name: &[u8]| -> Vec<u8> {
            if parent.is_empty() {
                name.to_vec()
            } else {
                let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
                p.extend_from_slice(parent);
                p.push(b'/');
                p.extend_from_slice(name);
                p
            }
        };
        match raw {
            Raw::Eod => {
                if stack.pop().is_none() {
                    break; // end of the root directory
                }
            }
            Raw::Dir(mut d) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DarError::Format("directory tree too deep".into()));
                }
                d.path = join(&d.path);
                stack.push(d.path.clone());
                out.push(*d);
            }
            Raw::Entry(mut e) => {
                e.path = join(&e.path);
                if let Some(tag) = e.hardlink {
                    match first_of_tag.get(&tag) {
                        Some(&i) => {
                            // Later link of a group: same inode as the first.
                            let first = &out[i];
                            let path = std::mem::take(&mut e.path);
                            let mut c = first.clone();
                            c.path = path;
                            c.status = SavedStatus::Fake;
                            c.data = None;
                            *e = c;
                        }
                        None => {
                            if e.status == SavedStatus::Fake && e.kind == DarKind::File {
                                return Err(DarError::Format(
                                    "hard link refers to an unknown inode".into(),
                                ));
                            }
                            first_of_tag.insert(tag, out.len());
                        }
                    }
                }
                out.push(*e);
            }
        }
    }
    Ok(out)
}

/// Fuzz entry point: parses `data` as a decompressed catalogue of format 11.1. Never panics;
/// allocations are bounded by the input size (strings, CRCs and depth are capped).
pub fn fuzz_catalogue(data: &[u8]) {
    let mut r = data;
    let _ = parse_catalogue(&mut r, Edition { major: 11, fix: 1 });
}
