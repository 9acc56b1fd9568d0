//! Bounded ISO9660 reader: Rock Ridge names when the root carries a SUSP "SP" entry, else the
//! Joliet tree, else primary names. Never trusts a length or offset before checking it.

use super::dir_guard::DirWalkGuard;
use super::util::*;
use super::{DiscFilesystem, FsKind, ImageError, ImageFile, ReadLimits};
use crate::sector::{SectorSource, SECTOR_SIZE};

const FS: &str = "ISO9660";
/// Volume descriptors scanned from LBA 16 before giving up on a terminator.
const MAX_VDS: u64 = 64;
/// Continuation-area hops followed per directory record.
const MAX_CE_HOPS: usize = 8;

struct Reader<'a> {
    src: &'a dyn SectorSource,
    limits: &'a ReadLimits,
    /// Directory bytes read so far (≤ limits.max_total_dir_bytes).
    total_dir_bytes: u64,
    /// Entries accepted so far (≤ limits.max_entries).
    entries: usize,
    /// Depth limit and loop detection of the walk.
    guard: DirWalkGuard,
    /// Rock Ridge in use, with the SUSP skip length from the SP entry.
    rr_skip: Option<usize>,
    joliet: bool,
    files: Vec<ImageFile>,
}

fn corrupt(src: &dyn SectorSource, what: String) -> ImageError {
    ImageError::Corrupt {
        fs: FS,
        source_name: src.describe(),
        what,
    }
}

fn read_sectors(src: &dyn SectorSource, lba: u64, n: u64) -> Result<Vec<u8>, ImageError> {
    if lba.checked_add(n).is_none_or(|e| e > src.sector_count()) {
        return Err(corrupt(
            src,
            format!(
                "sectors {lba}..{} lie past the end ({} sectors)",
                lba.saturating_add(n),
                src.sector_count()
            ),
        ));
    }
    let mut buf = vec![0u8; n as usize * SECTOR_SIZE];
    src.read_sectors(lba, &mut buf)
        .map_err(|source| ImageError::Io {
            what: format!("reading LBA {lba} of {}", src.describe()),
            source,
        })?;
    Ok(buf)
}

/// A parsed directory record.
struct Rec {
    lba: u64,
    len: u64,
    flags: u8,
    id: Vec<u8>,
    date: [u8; 7],
    /// System use area.
    su: Vec<u8>,
}

fn parse_record(b: &[u8]) -> Option<Rec> {
    let n = *b.first()? as usize;
    if n < 34 || n > b.len() {
        return None;
    }
    let idlen = *b.get(32)? as usize;
    let id_end = 33 + idlen;
    if id_end > n {
        return None;
    }
    let su_start = (id_end + usize::from(idlen % 2 == 0)).min(n);
    let mut date = [0u8; 7];
    date.copy_from_slice(b.get(18..25)?);
    Some(Rec {
        lba: get_u32(b, 2)? as u64,
        len: get_u32(b, 10)? as u64,
        flags: *b.get(25)?,
        id: b.get(33..id_end)?.to_vec(),
        date,
        su: b.get(su_start..n)?.to_vec(),
    })
}

fn date7_unix(d: &[u8; 7]) -> i64 {
    let t = unix_from_civil(
        1900 + d[0] as i64,
        d[1] as u32,
        d[2] as u32,
        d[3] as u32,
        d[4] as u32,
        d[5] as u32,
    );
    t - (d[6] as i8) as i64 * 15 * 60
}

fn date17_unix(d: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(d.get(..14)?).ok()?;
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let t = unix_from_civil(
        n(0..4)? as i64,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    Some(t - (*d.get(16)? as i8) as i64 * 15 * 60)
}

/// Rock Ridge facts gathered from one record's system use entries.
#[derive(Default)]
struct RrInfo {
    name: Option<Vec<u8>>,
    mode: Option<u32>,
    mtime: Option<i64>,
    /// RE: relocated directory, listed elsewhere via CL.
    relocated: bool,
    /// CL: this entry stands for the directory at that LBA.
    child_link: Option<u64>,
}

impl Reader<'_> {
    fn limit(&self, what: String) -> ImageError {
        ImageError::LimitExceeded {
            fs: FS,
            source_name: self.src.describe(),
            what,
        }
    }

    fn rock_ridge(&self, su: &[u8], skip: usize) -> Result<RrInfo, ImageError> {
        let mut info = RrInfo::default();
        let mut area = su.get(skip..).unwrap_or(&[]).to_vec();
        let mut name = Vec::new();
        let mut have_name = false;
        for _hop in 0..=MAX_CE_HOPS {
            let mut next_ce = None;
            let mut off = 0usize;
            while off + 4 <= area.len() {
                let sig = [area[off], area[off + 1]];
                let len = area[off + 2] as usize;
                if len < 4 || off + len > area.len() {
                    break;
                }
                let e = &area[off..off + len];
                match &sig {
                    b"NM" if len >= 5 => {
                        let flags = e[4];
                        if flags & 0x06 == 0 {
                            name.extend_from_slice(&e[5..]);
                            have_name = true;
                        }
                    }
                    b"PX" if len >= 12 => info.mode = get_u32(e, 4),
                    b"TF" if len >= 5 => {
                        let flags = e[4];
                        let long = flags & 0x80 != 0;
                        let sz = if long { 17 } else { 7 };
                        // Order: creation, modify, access, attributes, ...
                        let mut p = 5;
                        if flags & 1 != 0 {
                            p += sz;
                        }
                        if flags & 2 != 0 {
                            if let Some(d) = e.get(p..p + sz) {
                                info.mtime = if long {
                                    date17_unix(d)
                                } else {
                                    let mut a = [0u8; 7];
                                    a.copy_from_slice(d);
                                    Some(date7_unix(&a))
                                };
                            }
                        }
                    }
                    b"RE" => info.relocated = true,
                    b"CL" if len >= 12 => info.child_link = get_u32(e, 4).map(u64::from),
                    b"CE" if len >= 28 => {
                        if let (Some(l), Some(o), Some(n)) =
                            (get_u32(e, 4), get_u32(e, 12), get_u32(e, 20))
                        {
                            next_ce = Some((l as u64, o as usize, n as usize));
                        }
                    }
                    b"ST" => break,
                    _ => {}
                }
                off += len;
            }
            match next_ce {
                None => break,
                Some((lba, o, n)) => {
                    if n == 0 || o.checked_add(n).is_none_or(|e| e > 4 * SECTOR_SIZE) {
                        return Err(corrupt(
                            self.src,
                            format!("Rock Ridge continuation area at LBA {lba} is out of bounds"),
                        ));
                    }
                    let sectors = (o + n).div_ceil(SECTOR_SIZE) as u64;
                    let buf = read_sectors(self.src, lba, sectors)?;
                    area = buf[o..o + n].to_vec();
                }
            }
        }
        if have_name {
            info.name = Some(name);
        }
        Ok(info)
    }

    /// Reads one directory extent and its subtree.
    fn walk(&mut self, lba: u64, len: u64, path: &str, depth: usize) -> Result<(), ImageError> {
        self.enter_dir(lba, len, path, depth)?;
        let sectors = len.div_ceil(SECTOR_SIZE as u64);
        let buf = read_sectors(self.src, lba, sectors)?;
        let data = &buf[..len as usize];
        let mut off = 0usize;
        let mut pending: Option<PendingExtents> = None;
        while off < data.len() {
            let n = data[off] as usize;
            if n == 0 {
                // Rest of this sector is padding.
                off = (off / SECTOR_SIZE + 1) * SECTOR_SIZE;
                continue;
            }
            let rec = self.record_at(data, off, n, lba)?;
            off += n;
            if rec.id == [0] || rec.id == [1] {
                continue;
            }
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(self.limit(format!("more than {} entries", self.limits.max_entries)));
            }
            let rr = match self.rr_skip {
                Some(skip) => self.rock_ridge(&rec.su, skip)?,
                None => RrInfo::default(),
            };
            if rr.relocated || rec.flags & 0x04 != 0 {
                continue; // relocated directory or associated file
            }
            let name = self.name_of(&rec, &rr)?;
            let full = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            if full.len() > 4096 {
                return Err(self.limit(format!("path longer than 4096 bytes under {path:?}")));
            }
            let is_dir = rec.flags & 0x02 != 0 || rr.child_link.is_some();
            if is_dir {
                let (dlba, dlen) = self.dir_extent(&rec, &rr)?;
                self.walk(dlba, dlen, &full, depth + 1)?;
                continue;
            }
            if let Some(mode) = rr.mode {
                if mode & 0o170000 != 0o100000 {
                    continue; // symlink, device, fifo, socket
                }
            }
            let mtime = rr.mtime.unwrap_or_else(|| date7_unix(&rec.date));
            let executable = rr.mode.is_some_and(|m| m & 0o111 != 0);
            pending = self.add_extent(pending, full, &rec, mtime, executable)?;
        }
        if let Some(p) = pending {
            return Err(corrupt(
                self.src,
                format!("multi-extent file {:?} has no final extent", p.name),
            ));
        }
        Ok(())
    }

    /// Checks a directory before it is read: depth, size, loops, and the total of all directories.
    fn enter_dir(
        &mut self,
        lba: u64,
        len: u64,
        path: &str,
        depth: usize,
    ) -> Result<(), ImageError> {
        self.guard.enter(self.src, lba, path, depth)?;
        if len > self.limits.max_dir_bytes {
            return Err(self.limit(format!(
                "directory {path:?} is {len} bytes (limit {})",
                self.limits.max_dir_bytes
            )));
        }
        self.total_dir_bytes += len;
        if self.total_dir_bytes > self.limits.max_total_dir_bytes {
            return Err(self.limit(format!(
                "directories total more than {} bytes",
                self.limits.max_total_dir_bytes
            )));
        }
        Ok(())
    }

    /// The `n`-byte directory record at `off` of the directory extent at `lba`; a record never
    /// crosses a sector boundary or the extent's end.
    fn record_at(&self, data: &[u8], off: usize, n: usize, lba: u64) -> Result<Rec, ImageError> {
        let sector_end = (off / SECTOR_SIZE + 1) * SECTOR_SIZE;
        if off + n > sector_end.min(data.len()) {
            return Err(corrupt(
                self.src,
                format!(
                    "directory record at LBA {} offset {} crosses a sector or the extent end",
                    lba + (off / SECTOR_SIZE) as u64,
                    off % SECTOR_SIZE
                ),
            ));
        }
        parse_record(&data[off..off + n]).ok_or_else(|| {
            corrupt(
                self.src,
                format!(
                    "malformed directory record at LBA {} offset {}",
                    lba + (off / SECTOR_SIZE) as u64,
                    off % SECTOR_SIZE
                ),
            )
        })
    }

    /// A subdirectory's extent: its own, or (Rock Ridge CL) that of the relocated directory,
    /// whose length is in its '.' record.
    fn dir_extent(&self, rec: &Rec, rr: &RrInfo) -> Result<(u64, u64), ImageError> {
        Ok(match rr.child_link {
            Some(cl) => {
                let s = read_sectors(self.src, cl, 1)?;
                let dot = parse_record(&s).ok_or_else(|| {
                    corrupt(
                        self.src,
                        format!("no '.' record at relocated directory LBA {cl}"),
                    )
                })?;
                (cl, dot.len)
            }
            None => (rec.lba, rec.len),
        })
    }

    /// Adds a file's extent: a file of one extent at once; the extents of a multi-extent file
    /// (contiguous, in consecutive records) are collected in the returned pending state until
    /// its final extent.
    fn add_extent(
        &mut self,
        pending: Option<PendingExtents>,
        full: String,
        rec: &Rec,
        mtime: i64,
        executable: bool,
    ) -> Result<Option<PendingExtents>, ImageError> {
        let multi = rec.flags & 0x80 != 0;
        let sectors = rec.len.div_ceil(SECTOR_SIZE as u64);
        match pending {
            Some(p) if p.name == full => {
                if rec.len > 0 && rec.lba != p.next_lba {
                    return Err(corrupt(
                        self.src,
                        format!("multi-extent file {full:?} is not contiguous"),
                    ));
                }
                let size = p.size + rec.len;
                if multi {
                    return Ok(Some(PendingExtents {
                        size,
                        next_lba: rec.lba + sectors,
                        ..p
                    }));
                }
                self.push(full, p.lba, size, p.mtime, executable);
            }
            Some(_) => {
                return Err(corrupt(
                    self.src,
                    format!("multi-extent file before {full:?} has no final extent"),
                ))
            }
            None => {
                if multi {
                    return Ok(Some(PendingExtents {
                        name: full,
                        lba: rec.lba,
                        size: rec.len,
                        next_lba: rec.lba + sectors,
                        mtime,
                    }));
                }
                self.push(full, rec.lba, rec.len, mtime, executable);
            }
        }
        Ok(None)
    }

    fn push(&mut self, path: String, lba: u64, size: u64, mtime: i64, executable: bool) {
        let lba = if size == 0 { 0 } else { lba };
        self.files.push(ImageFile {
            path,
            lba,
            size,
            mtime,
            executable,
        });
    }

    fn name_of(&self, rec: &Rec, rr: &RrInfo) -> Result<String, ImageError> {
        let name = if let Some(n) = &rr.name {
            String::from_utf8_lossy(n).into_owned()
        } else if self.joliet {
            if rec.id.len() % 2 != 0 {
                return Err(corrupt(self.src, "Joliet name of odd length".into()));
            }
            let units: Vec<u16> = rec
                .id
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let s = String::from_utf16_lossy(&units);
            strip_version(&s, rec.flags & 0x02 != 0)
        } else {
            let s = String::from_utf8_lossy(&rec.id).into_owned();
            strip_version(&s, rec.flags & 0x02 != 0)
        };
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\0')
        {
            return Err(corrupt(
                self.src,
                format!("unsafe or empty file name {name:?}"),
            ));
        }
        Ok(name)
    }
}

/// A multi-extent file whose final extent is still to come.
struct PendingExtents {
    /// The file's path; its next extent is in the next record of the same name.
    name: String,
    /// Its first extent's LBA.
    lba: u64,
    /// Bytes in its extents so far.
    size: u64,
    /// Where its next extent must start (the extents are contiguous).
    next_lba: u64,
    mtime: i64,
}

/// Removes ";1" and a trailing '.' from a file identifier.
fn strip_version(s: &str, dir: bool) -> String {
    if dir {
        return s.to_string();
    }
    let s = match s.rfind(';') {
        Some(p) => &s[..p],
        None => s,
    };
    s.strip_suffix('.').unwrap_or(s).to_string()
}

/// Volume space size from a PVD at LBA 16, if there is one.
pub(crate) fn pvd_volume_sectors(src: &dyn SectorSource) -> Option<u64> {
    let s = read_sectors(src, 16, 1).ok()?;
    (s[0] == 1 && &s[1..6] == b"CD001")
        .then(|| get_u32(&s, 80).map(u64::from))
        .flatten()
}

/// The primary volume descriptor (required, 2048-byte blocks) and the first Joliet
/// supplementary one, from the descriptor set at LBA 16.
fn volume_descriptors(src: &dyn SectorSource) -> Result<(Vec<u8>, Option<Vec<u8>>), ImageError> {
    let mut pvd: Option<Vec<u8>> = None;
    let mut svd: Option<Vec<u8>> = None;
    for lba in 16..16 + MAX_VDS {
        if lba >= src.sector_count() {
            break;
        }
        let s = read_sectors(src, lba, 1)?;
        if &s[1..6] != b"CD001" {
            break;
        }
        match s[0] {
            1 if pvd.is_none() => pvd = Some(s),
            2 if svd.is_none()
                && s[88] == b'%'
                && s[89] == b'/'
                && matches!(s[90], b'@' | b'C' | b'E') =>
            {
                svd = Some(s)
            }
            255 => break,
            _ => {}
        }
    }
    let pvd = pvd.ok_or_else(|| ImageError::NotAFilesystem {
        source_name: src.describe(),
        detail: "no UDF anchor and no ISO9660 primary volume descriptor at LBA 16".into(),
    })?;
    let block = get_u16(&pvd, 128).unwrap_or(0);
    if block as usize != SECTOR_SIZE {
        return Err(corrupt(
            src,
            format!("logical block size {block} is not 2048"),
        ));
    }
    Ok((pvd, svd))
}

/// Rock Ridge's SUSP skip length, when the root's "." record (at `root_lba`) has the SUSP "SP"
/// entry that enables Rock Ridge (SUSP 5.3).
fn rock_ridge_skip(src: &dyn SectorSource, root_lba: u64) -> Result<Option<usize>, ImageError> {
    let first = read_sectors(src, root_lba, 1)?;
    Ok(parse_record(&first).and_then(|dot| {
        let su = dot.su;
        (su.len() >= 7 && &su[..2] == b"SP" && su[4] == 0xBE && su[5] == 0xEF)
            .then(|| su[6] as usize)
    }))
}

/// The volume label: the Joliet descriptor's (UCS-2), else the primary's.
fn volume_label(pvd: &[u8], svd: Option<&[u8]>) -> String {
    let pvd_label = String::from_utf8_lossy(&pvd[40..72]).trim_end().to_string();
    let joliet_label = svd.map(|s| {
        let units: Vec<u16> = s[40..72]
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16_lossy(&units).trim_end().to_string()
    });
    joliet_label.unwrap_or(pvd_label)
}

/// Reads the ISO9660 filesystem (Rock Ridge, else Joliet, else primary names).
/// `force` selects a tree (`IsoRockRidge`, `Joliet`, `Iso`; `Udf` is treated as automatic).
pub(crate) fn read(
    src: &dyn SectorSource,
    limits: &ReadLimits,
    force: Option<FsKind>,
) -> Result<(DiscFilesystem, FsKind), ImageError> {
    let (pvd, svd) = volume_descriptors(src)?;
    let volume_sectors = get_u32(&pvd, 80).unwrap_or(0) as u64;
    let root_of = |vd: &[u8]| parse_record(&vd[156..190]);
    let mut r = Reader {
        src,
        limits,
        total_dir_bytes: 0,
        entries: 0,
        guard: DirWalkGuard::new(FS, "LBA", limits.max_depth),
        rr_skip: None,
        joliet: false,
        files: Vec::new(),
    };
    let svd_label_src = svd.clone();
    let root =
        root_of(&pvd).ok_or_else(|| corrupt(src, "bad root directory record in the PVD".into()))?;
    let rr_skip = rock_ridge_skip(src, root.lba)?;
    let force = force.filter(|k| *k != FsKind::Udf);
    let rr = match force {
        None => rr_skip.is_some(),
        Some(FsKind::IsoRockRidge) => {
            if rr_skip.is_none() {
                return Err(corrupt(
                    src,
                    "no Rock Ridge (SUSP SP entry) in the root directory".into(),
                ));
            }
            true
        }
        Some(_) => false,
    };
    r.rr_skip = if rr { rr_skip } else { None };
    let svd = match force {
        Some(FsKind::Iso) => None,
        Some(FsKind::Joliet) if svd.is_none() => {
            return Err(corrupt(
                src,
                "no Joliet supplementary volume descriptor".into(),
            ))
        }
        _ => svd,
    };
    let label = volume_label(&pvd, svd_label_src.as_deref());
    let kind = if rr {
        r.walk(root.lba, root.len, "", 0)?;
        FsKind::IsoRockRidge
    } else if let Some(s) = &svd {
        let jroot = root_of(s)
            .ok_or_else(|| corrupt(src, "bad root directory record in the Joliet SVD".into()))?;
        r.joliet = true;
        r.walk(jroot.lba, jroot.len, "", 0)?;
        FsKind::Joliet
    } else {
        r.walk(root.lba, root.len, "", 0)?;
        FsKind::Iso
    };
    let mut files = r.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((
        DiscFilesystem {
            volume_id: label,
            volume_sectors,
            files,
        },
        kind,
    ))
}
