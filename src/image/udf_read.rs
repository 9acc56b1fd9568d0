//! Bounded UDF reader for type 1 partitions (what our writer and mkisofs/genisoimage produce):
//! anchor → volume descriptor sequence (main, else reserve) → file set descriptor → directory
//! tree of File Entries / Extended File Entries and File Identifier Descriptors.
//! Every tag is checked (identifier, checksum, CRC, location) before its fields are used.

use super::dir_guard::DirWalkGuard;
use super::udf_write::{tag, tag_checksum};
use super::util::*;
use super::{DiscFilesystem, ImageError, ImageFile, ReadLimits};
use crate::sector::{SectorSource, SECTOR_SIZE};

const FS: &str = "UDF";
/// Sectors of a volume descriptor sequence examined (following VDPs included).
const MAX_VDS_SECTORS: u64 = 256;
/// Volume descriptor pointers followed.
const MAX_VDP_HOPS: usize = 8;

fn corrupt(src: &dyn SectorSource, what: String) -> ImageError {
    ImageError::Corrupt {
        fs: FS,
        source_name: src.describe(),
        what,
    }
}

fn read_sector(src: &dyn SectorSource, lba: u64) -> Result<Vec<u8>, ImageError> {
    if lba >= src.sector_count() {
        return Err(corrupt(
            src,
            format!(
                "LBA {lba} lies past the end ({} sectors)",
                src.sector_count()
            ),
        ));
    }
    let mut buf = vec![0u8; SECTOR_SIZE];
    src.read_sectors(lba, &mut buf)
        .map_err(|source| ImageError::Io {
            what: format!("reading LBA {lba} of {}", src.describe()),
            source,
        })?;
    Ok(buf)
}

/// Checks a descriptor tag at the start of `d`; returns its identifier. `loc` is the expected tag
/// location (None: not checked).
fn check_tag(d: &[u8], loc: Option<u32>) -> Option<u16> {
    if d.len() < 16 || tag_checksum(d) != d[4] {
        return None;
    }
    let id = get_u16(d, 0)?;
    let crc = get_u16(d, 8)?;
    let crc_len = get_u16(d, 10)? as usize;
    let body = d.get(16..16 + crc_len)?;
    if crc_itu(body) != crc {
        return None;
    }
    if let Some(l) = loc {
        if get_u32(d, 12)? != l {
            return None;
        }
    }
    Some(id)
}

struct Partition {
    number: u16,
    start: u64,
    len: u64,
}

struct Volume {
    label: String,
    /// Partition (absolute start LBA, length) referenced by partition map 0.
    part_start: u64,
    part_len: u64,
    /// FSD location: partition-relative block.
    fsd_lbn: u32,
}

fn read_vds(src: &dyn SectorSource, start: u64, len_bytes: u32) -> Result<Volume, ImageError> {
    let mut lba = start;
    let mut left = (len_bytes as u64 / SECTOR_SIZE as u64).min(MAX_VDS_SECTORS);
    let mut hops = 0usize;
    let mut parts: Vec<Partition> = Vec::new();
    let mut lvd: Option<Vec<u8>> = None;
    let mut seen = 0u64;
    while left > 0 && seen < MAX_VDS_SECTORS {
        seen += 1;
        let s = read_sector(src, lba)?;
        let id = match check_tag(&s, Some(lba as u32)) {
            Some(id) => id,
            None => break,
        };
        match id {
            tag::PD => parts.push(Partition {
                number: get_u16(&s, 22).unwrap_or(0),
                start: get_u32(&s, 188).unwrap_or(0) as u64,
                len: get_u32(&s, 192).unwrap_or(0) as u64,
            }),
            tag::LVD if lvd.is_none() => lvd = Some(s),
            tag::VDP => {
                hops += 1;
                if hops > MAX_VDP_HOPS {
                    return Err(corrupt(src, "too many volume descriptor pointers".into()));
                }
                let l = get_u32(&s, 20).unwrap_or(0);
                lba = get_u32(&s, 24).unwrap_or(0) as u64;
                left = (l as u64 / SECTOR_SIZE as u64).min(MAX_VDS_SECTORS);
                continue;
            }
            tag::TD => break,
            _ => {}
        }
        lba += 1;
        left -= 1;
    }
    let lvd = lvd.ok_or_else(|| {
        corrupt(
            src,
            format!("no logical volume descriptor in the sequence at LBA {start}"),
        )
    })?;
    let bs = get_u32(&lvd, 212).unwrap_or(0);
    if bs as usize != SECTOR_SIZE {
        return Err(corrupt(src, format!("logical block size {bs} is not 2048")));
    }
    let label = dstring_decode(&lvd[84..212]).unwrap_or_default();
    let fsd_lbn = get_u32(&lvd, 252).unwrap_or(0);
    let fsd_part = get_u16(&lvd, 256).unwrap_or(0);
    let nmaps = get_u32(&lvd, 268).unwrap_or(0);
    if nmaps == 0 || fsd_part != 0 {
        return Err(corrupt(
            src,
            "logical volume has no usable partition map".into(),
        ));
    }
    // First partition map must be type 1.
    if lvd[440] != 1 || lvd[441] != 6 {
        return Err(corrupt(
            src,
            format!(
                "partition map type {} is not supported (only type 1)",
                lvd[440]
            ),
        ));
    }
    let pnum = get_u16(&lvd, 444).unwrap_or(0);
    let p = parts
        .iter()
        .find(|p| p.number == pnum)
        .ok_or_else(|| corrupt(src, format!("no partition descriptor for partition {pnum}")))?;
    Ok(Volume {
        label,
        part_start: p.start,
        part_len: p.len,
        fsd_lbn,
    })
}

/// A decoded (extended) file entry.
struct Entry {
    dir: bool,
    /// A regular file or directory (symlinks, devices etc. are skipped).
    regular: bool,
    size: u64,
    mtime: i64,
    /// Any execute bit set in the entry's permissions (owner 0x400, group 0x20, other 0x1).
    executable: bool,
    /// (absolute LBA, length in bytes) of recorded extents.
    extents: Vec<(u64, u64)>,
    /// Embedded data (allocation type 3).
    embedded: Option<Vec<u8>>,
}

fn ts_unix(b: &[u8]) -> i64 {
    let tz_raw = get_u16(b, 0).unwrap_or(0) & 0x0FFF;
    let tz = if tz_raw & 0x800 != 0 {
        tz_raw as i64 - 0x1000
    } else {
        tz_raw as i64
    };
    let tz = if tz == -2047 { 0 } else { tz };
    let y = get_u16(b, 2).unwrap_or(1970) as i16 as i64;
    let t = unix_from_civil(
        y,
        b[4] as u32,
        b[5] as u32,
        b[6] as u32,
        b[7] as u32,
        b[8] as u32,
    );
    t - tz * 60
}

struct Reader<'a> {
    src: &'a dyn SectorSource,
    limits: &'a ReadLimits,
    vol: Volume,
    total_dir_bytes: u64,
    entries: usize,
    /// Depth limit and loop detection of the walk.
    guard: DirWalkGuard,
    files: Vec<ImageFile>,
}

impl Reader<'_> {
    fn limit(&self, what: String) -> ImageError {
        ImageError::LimitExceeded {
            fs: FS,
            source_name: self.src.describe(),
            what,
        }
    }

    /// Absolute LBA of partition block `lbn`, checked against the partition and the source.
    fn abs(&self, lbn: u64) -> Result<u64, ImageError> {
        if lbn >= self.vol.part_len {
            return Err(corrupt(
                self.src,
                format!(
                    "block {lbn} lies outside the partition ({} blocks)",
                    self.vol.part_len
                ),
            ));
        }
        Ok(self.vol.part_start + lbn)
    }

    fn read_entry(&self, lbn: u32, path: &str) -> Result<Entry, ImageError> {
        let lba = self.abs(lbn as u64)?;
        let s = read_sector(self.src, lba)?;
        let bad = |what: &str| {
            corrupt(
                self.src,
                format!("file entry of {path:?} at LBA {lba}: {what}"),
            )
        };
        let id = check_tag(&s, Some(lbn)).ok_or_else(|| bad("bad descriptor tag"))?;
        let (ea_off, mtime_off) = match id {
            tag::FE => (168usize, 84usize),
            tag::EFE => (208, 92),
            _ => return Err(bad(&format!("tag {id} is not a file entry"))),
        };
        let ftype = s[27];
        let ad_type = get_u16(&s, 34).unwrap_or(0) & 7;
        let size = get_u64(&s, 56).unwrap_or(0);
        let mtime = ts_unix(&s[mtime_off..mtime_off + 12]);
        let executable = get_u32(&s, 44).unwrap_or(0) & 0x0421 != 0;
        let l_ea = get_u32(&s, ea_off).unwrap_or(0) as usize;
        let l_ad = get_u32(&s, ea_off + 4).unwrap_or(0) as usize;
        let ad_start = ea_off + 8 + l_ea;
        let ads = s
            .get(ad_start..ad_start.saturating_add(l_ad))
            .ok_or_else(|| bad("allocation descriptors do not fit in the block"))?;
        let dir = match ftype {
            4 => true,
            5 => false,
            _ => {
                return Ok(Entry {
                    dir: false,
                    regular: false,
                    size: 0,
                    mtime,
                    executable,
                    extents: Vec::new(),
                    embedded: None,
                })
            }
        };
        let mut extents = Vec::new();
        let mut embedded = None;
        match ad_type {
            0 | 1 => {
                let step = if ad_type == 0 { 8 } else { 16 };
                for ad in ads.chunks_exact(step) {
                    let raw = get_u32(ad, 0).unwrap_or(0);
                    let len = (raw & 0x3FFF_FFFF) as u64;
                    let kind = raw >> 30;
                    if len == 0 {
                        break;
                    }
                    let pos = get_u32(ad, 4).unwrap_or(0) as u64;
                    if ad_type == 1 && get_u16(ad, 8).unwrap_or(0) != 0 {
                        return Err(bad("long_ad refers to another partition"));
                    }
                    match kind {
                        0 => {
                            let end = pos + len.div_ceil(SECTOR_SIZE as u64);
                            if end > self.vol.part_len {
                                return Err(bad("extent runs past the partition"));
                            }
                            extents.push((self.vol.part_start + pos, len));
                        }
                        3 => return Err(bad("allocation extent continuation not supported")),
                        _ => return Err(bad("unrecorded extent (sparse file) not supported")),
                    }
                }
            }
            3 => embedded = Some(ads.to_vec()),
            t => {
                return Err(bad(&format!(
                    "allocation descriptor type {t} not supported"
                )))
            }
        }
        let recorded: u64 = extents.iter().map(|e| e.1).sum();
        if embedded.is_none() && recorded < size {
            return Err(bad(&format!(
                "information length {size} exceeds its {recorded} recorded bytes"
            )));
        }
        Ok(Entry {
            dir,
            regular: true,
            size,
            mtime,
            executable,
            extents,
            embedded,
        })
    }

    /// Walks the directory whose file entry is at `lbn`, collecting its files and recursing into
    /// its subdirectories; every limit and corruption check is on the way down.
    fn walk(&mut self, lbn: u32, path: &str, depth: usize) -> Result<(), ImageError> {
        let e = self.enter_dir(lbn, path, depth)?;
        let data = self.dir_data(e, path)?;
        let mut off = 0usize;
        while off + 38 <= data.len() {
            let (fid, total) = self.fid_at(&data, off, path)?;
            off += total;
            let chars = fid[18];
            if chars & 0x04 != 0 || chars & 0x08 != 0 {
                continue; // deleted or parent
            }
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(self.limit(format!("more than {} entries", self.limits.max_entries)));
            }
            let full = self.child_path(fid, path)?;
            let icb = get_u32(fid, 24).unwrap_or(0);
            if chars & 0x02 != 0 {
                self.walk(icb, &full, depth + 1)?;
                continue;
            }
            self.add_file(icb, full)?;
        }
        Ok(())
    }

    /// The directory's file entry at `lbn`, checked: depth, loops, that it is a directory, and
    /// the size limits (per directory and in total).
    fn enter_dir(&mut self, lbn: u32, path: &str, depth: usize) -> Result<Entry, ImageError> {
        self.guard.enter(self.src, u64::from(lbn), path, depth)?;
        let e = self.read_entry(lbn, path)?;
        if !e.dir || !e.regular {
            return Err(corrupt(
                self.src,
                format!("{path:?} is referenced as a directory but is not one"),
            ));
        }
        if e.size > self.limits.max_dir_bytes {
            return Err(self.limit(format!(
                "directory {path:?} is {} bytes (limit {})",
                e.size, self.limits.max_dir_bytes
            )));
        }
        self.total_dir_bytes += e.size;
        if self.total_dir_bytes > self.limits.max_total_dir_bytes {
            return Err(self.limit(format!(
                "directories total more than {} bytes",
                self.limits.max_total_dir_bytes
            )));
        }
        Ok(e)
    }

    /// The directory's bytes (its file identifiers): embedded in the entry, or read from its
    /// extents; exactly its information length.
    fn dir_data(&mut self, e: Entry, path: &str) -> Result<Vec<u8>, ImageError> {
        let data = match e.embedded {
            Some(d) => d,
            None => {
                let mut d = Vec::with_capacity(e.size as usize);
                for (lba, len) in &e.extents {
                    let n = len.div_ceil(SECTOR_SIZE as u64);
                    if lba
                        .checked_add(n)
                        .is_none_or(|end| end > self.src.sector_count())
                    {
                        return Err(corrupt(
                            self.src,
                            format!("directory {path:?} extent at LBA {lba} lies past the end"),
                        ));
                    }
                    let mut buf = vec![0u8; (n as usize) * SECTOR_SIZE];
                    self.src
                        .read_sectors(*lba, &mut buf)
                        .map_err(|source| ImageError::Io {
                            what: format!(
                                "reading directory {path:?} at LBA {lba} of {}",
                                self.src.describe()
                            ),
                            source,
                        })?;
                    buf.truncate(*len as usize);
                    d.extend(buf);
                    if d.len() as u64 >= e.size {
                        break;
                    }
                }
                d.truncate(e.size as usize);
                d
            }
        };
        if (data.len() as u64) < e.size {
            return Err(corrupt(
                self.src,
                format!("directory {path:?} is shorter than its information length"),
            ));
        }
        Ok(data)
    }

    /// The file identifier descriptor at `off` of a directory's bytes (tag checked, within
    /// the directory) and its padded length.
    fn fid_at<'d>(
        &self,
        data: &'d [u8],
        off: usize,
        path: &str,
    ) -> Result<(&'d [u8], usize), ImageError> {
        let fid = &data[off..];
        let crc_len = get_u16(fid, 10).unwrap_or(0) as usize;
        let l_fi = fid[19] as usize;
        let l_iu = get_u16(fid, 36).unwrap_or(0) as usize;
        let total = (38 + l_iu + l_fi).div_ceil(4) * 4;
        if 16 + crc_len > fid.len() || 38 + l_iu + l_fi > fid.len() {
            return Err(corrupt(
                self.src,
                format!("file identifier in {path:?} at offset {off} runs past the directory"),
            ));
        }
        if check_tag(fid, None) != Some(tag::FID) {
            return Err(corrupt(
                self.src,
                format!("bad file identifier descriptor in {path:?} at offset {off}"),
            ));
        }
        Ok((fid, total))
    }

    /// The path of the child a file identifier names under `path`: a safe, non-empty name,
    /// at most 4096 bytes in all, in this partition.
    fn child_path(&self, fid: &[u8], path: &str) -> Result<String, ImageError> {
        let l_fi = fid[19] as usize;
        let l_iu = get_u16(fid, 36).unwrap_or(0) as usize;
        let name = cs0_decode(&fid[38 + l_iu..38 + l_iu + l_fi])
            .ok_or_else(|| corrupt(self.src, format!("undecodable name in {path:?}")))?;
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\0')
        {
            return Err(corrupt(
                self.src,
                format!("unsafe or empty file name {name:?} in {path:?}"),
            ));
        }
        let full = if path.is_empty() {
            name
        } else {
            format!("{path}/{name}")
        };
        if full.len() > 4096 {
            return Err(self.limit(format!("path longer than 4096 bytes under {path:?}")));
        }
        if get_u16(fid, 28).unwrap_or(0) != 0 {
            return Err(corrupt(
                self.src,
                format!("{full:?} refers to another partition"),
            ));
        }
        Ok(full)
    }

    /// Adds the regular file whose entry is at `icb` (skips symlinks, devices, ...); its data
    /// must be one contiguous run of sectors.
    fn add_file(&mut self, icb: u32, full: String) -> Result<(), ImageError> {
        let fe = self.read_entry(icb, &full)?;
        if fe.dir {
            return Err(corrupt(
                self.src,
                format!("{full:?} is listed as a file but is a directory"),
            ));
        }
        if !fe.regular {
            return Ok(()); // not a regular file (symlink, device, ...)
        }
        if fe.embedded.is_some() {
            return Err(corrupt(
                self.src,
                format!("{full:?} keeps its data inside its file entry; not supported"),
            ));
        }
        let mut lba = 0;
        if fe.size > 0 {
            lba = fe.extents[0].0;
            let mut next = lba;
            let mut left = fe.size;
            for (l, n) in &fe.extents {
                if left == 0 {
                    break;
                }
                if *l != next || (n % SECTOR_SIZE as u64 != 0 && *n < left) {
                    return Err(corrupt(
                        self.src,
                        format!("{full:?} is fragmented; not supported"),
                    ));
                }
                next = l + n.div_ceil(SECTOR_SIZE as u64);
                left = left.saturating_sub(*n);
            }
        }
        self.files.push(ImageFile {
            path: full,
            lba,
            size: fe.size,
            mtime: fe.mtime,
            executable: fe.executable && !fe.dir,
        });
        Ok(())
    }
}

/// Reads the UDF filesystem. `Ok(None)` when there is no anchor at all (not a UDF disc).
pub(crate) fn read(
    src: &dyn SectorSource,
    limits: &ReadLimits,
) -> Result<Option<DiscFilesystem>, ImageError> {
    let n = src.sector_count();
    let mut anchor = None;
    for lba in [Some(256), n.checked_sub(1), n.checked_sub(257)]
        .into_iter()
        .flatten()
    {
        if lba >= n {
            continue;
        }
        let s = read_sector(src, lba)?;
        if check_tag(&s, Some(lba as u32)) == Some(tag::AVDP) {
            anchor = Some((lba, s));
            break;
        }
    }
    let Some((anchor_lba, a)) = anchor else {
        return Ok(None);
    };
    let main = (get_u32(&a, 16).unwrap_or(0), get_u32(&a, 20).unwrap_or(0));
    let reserve = (get_u32(&a, 24).unwrap_or(0), get_u32(&a, 28).unwrap_or(0));
    let vol = match read_vds(src, main.1 as u64, main.0) {
        Ok(v) => v,
        Err(e) => read_vds(src, reserve.1 as u64, reserve.0).map_err(|_| e)?,
    };
    // File set descriptor.
    let fsd_abs = vol.part_start + vol.fsd_lbn as u64;
    let fsd = read_sector(src, fsd_abs)?;
    if check_tag(&fsd, Some(vol.fsd_lbn)) != Some(tag::FSD) {
        return Err(corrupt(
            src,
            format!("no file set descriptor at LBA {fsd_abs}"),
        ));
    }
    let root_lbn = get_u32(&fsd, 404).unwrap_or(0);
    if get_u16(&fsd, 408).unwrap_or(0) != 0 {
        return Err(corrupt(
            src,
            "root directory lies in another partition".into(),
        ));
    }
    let volume_sectors = (vol.part_start + vol.part_len).max(anchor_lba + 1);
    let mut r = Reader {
        src,
        limits,
        vol,
        total_dir_bytes: 0,
        entries: 0,
        guard: DirWalkGuard::new(FS, "block", limits.max_depth),
        files: Vec::new(),
    };
    r.walk(root_lbn, "", 0)?;
    let mut files = r.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(DiscFilesystem {
        volume_id: r.vol.label,
        volume_sectors,
        files,
    }))
}
