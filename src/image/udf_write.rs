//! UDF 2.01 bridge writer (ECMA-167 3rd edition / OSTA UDF 2.01, type 1 partition, read-only).
//!
//! Fixed block: AVDP at 256, Main VDS at 257..272, Reserve VDS at 273..288, LVID + TD at 289..290,
//! the second AVDP in the image's last sector. The partition starts after the ISO9660 metadata
//! (at least LBA 291) and runs to LBA total-2 inclusive, so file data at the caller's absolute
//! LBAs lies inside it. Partition block 0 holds the FSD, block 1 a TD, then each directory's File
//! Entry followed by its File Identifier Descriptors, then one File Entry per file.

use super::tree::*;
use super::util::*;
use super::{ImageError, VolumeSpec};
use crate::sector::SECTOR_SIZE;

/// UDF revision written in domain and UDF identifier suffixes.
const UDF_REV: u16 = 0x0201;
/// Descriptor version for NSR03 (UDF 2.00 and later).
const DESC_VERSION: u16 = 3;
/// Longest short_ad extent: 1 GiB minus one block (extent lengths must be < 2^30).
pub(crate) const MAX_EXTENT: u64 = (1 << 30) - SECTOR_SIZE as u64;
/// Tag identifiers (ECMA-167 3/7.2.1 and 4/7.2.1).
pub(crate) mod tag {
    pub const PVD: u16 = 1;
    pub const AVDP: u16 = 2;
    pub const VDP: u16 = 3;
    pub const IUVD: u16 = 4;
    pub const PD: u16 = 5;
    pub const LVD: u16 = 6;
    pub const USD: u16 = 7;
    pub const TD: u16 = 8;
    pub const LVID: u16 = 9;
    pub const FSD: u16 = 256;
    pub const FID: u16 = 257;
    pub const FE: u16 = 261;
    pub const EFE: u16 = 266;
}
/// UDF permissions: read for owner, group, other (files).
const PERM_FILE: u32 = 0x1084;
/// UDF permissions: read + execute for owner, group, other (directories).
const PERM_DIR: u32 = 0x14A5;

/// Fills in the 16-byte descriptor tag of `d` (whose length is `d.len()`).
pub(crate) fn finish_tag(d: &mut [u8], id: u16, location: u32) {
    put_u16(d, 0, id);
    put_u16(d, 2, DESC_VERSION);
    put_u16(d, 6, 1); // tag serial number
    let crc_len = d.len() - 16;
    put_u16(d, 8, crc_itu(&d[16..]));
    put_u16(d, 10, crc_len as u16);
    put_u32(d, 12, location);
    d[4] = 0;
    d[4] = tag_checksum(d);
}

/// Sum of tag bytes 0..16 except byte 4, modulo 256.
pub(crate) fn tag_checksum(d: &[u8]) -> u8 {
    d[..16]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .fold(0u8, |a, (_, b)| a.wrapping_add(*b))
}

fn regid(b: &mut [u8], id: &str, suffix: &[u8]) {
    b[..32].fill(0);
    b[1..1 + id.len()].copy_from_slice(id.as_bytes());
    b[24..24 + suffix.len()].copy_from_slice(suffix);
}

fn impl_regid(b: &mut [u8]) {
    regid(b, "*bd-archive", &[]);
}

fn domain_regid(b: &mut [u8]) {
    let r = UDF_REV.to_le_bytes();
    regid(b, "*OSTA UDF Compliant", &[r[0], r[1], 0]);
}

fn udf_regid(b: &mut [u8], id: &str) {
    let r = UDF_REV.to_le_bytes();
    regid(b, id, &[r[0], r[1], 0, 0]);
}

fn charspec(b: &mut [u8]) {
    b[..64].fill(0);
    b[1..24].copy_from_slice(b"OSTA Compressed Unicode");
}

/// 12-byte UDF timestamp, UTC (type 1, offset 0).
pub(crate) fn timestamp(b: &mut [u8], t: i64) {
    let (y, m, d, hh, mm, ss) = civil_from_unix(t);
    put_u16(b, 0, 0x1000);
    put_u16(b, 2, y.clamp(1, 9999) as u16);
    b[4] = m as u8;
    b[5] = d as u8;
    b[6] = hh as u8;
    b[7] = mm as u8;
    b[8] = ss as u8;
    b[9] = 0;
    b[10] = 0;
    b[11] = 0;
}

fn long_ad(b: &mut [u8], len: u32, lbn: u32, unique: u32) {
    put_u32(b, 0, len);
    put_u32(b, 4, lbn);
    put_u16(b, 8, 0);
    put_u16(b, 10, 0); // ADImpUse flags
    put_u32(b, 12, unique);
}

/// File Identifier Descriptor for `name` (empty name = parent entry).
fn fid(chars: u8, name: &[u8], icb_lbn: u32, unique: u32, at_lbn: u32) -> Vec<u8> {
    let len = (38 + name.len()).div_ceil(4) * 4;
    let mut b = vec![0u8; len];
    put_u16(&mut b, 16, 1);
    b[18] = chars;
    b[19] = name.len() as u8;
    long_ad(&mut b[20..36], SECTOR_SIZE as u32, icb_lbn, unique);
    put_u16(&mut b, 36, 0);
    b[38..38 + name.len()].copy_from_slice(name);
    finish_tag(&mut b, tag::FID, at_lbn);
    b
}

/// Length of the FID for a CS0 name of `n` bytes.
fn fid_len(n: usize) -> usize {
    (38 + n).div_ceil(4) * 4
}

struct FeArgs {
    dir: bool,
    /// Execute permission for owner, group and other (files only).
    exec: bool,
    links: u16,
    size: u64,
    mtime: i64,
    unique: u64,
    /// (length, partition block) extents.
    extents: Vec<(u32, u32)>,
}

fn file_entry(a: &FeArgs, at_lbn: u32) -> Vec<u8> {
    let l_ad = 8 * a.extents.len();
    let mut b = vec![0u8; 176 + l_ad];
    // ICB tag: strategy 4, one entry, file type 4 (dir) or 5 (file), short ADs.
    put_u16(&mut b, 20, 4);
    put_u16(&mut b, 24, 1);
    b[27] = if a.dir { 4 } else { 5 };
    put_u16(&mut b, 34, 0);
    put_u32(&mut b, 36, u32::MAX);
    put_u32(&mut b, 40, u32::MAX);
    put_u32(
        &mut b,
        44,
        if a.dir || a.exec { PERM_DIR } else { PERM_FILE },
    );
    put_u16(&mut b, 48, a.links);
    put_u64(&mut b, 56, a.size);
    let blocks: u64 = a
        .extents
        .iter()
        .map(|(l, _)| (*l as u64).div_ceil(SECTOR_SIZE as u64))
        .sum();
    put_u64(&mut b, 64, blocks);
    timestamp(&mut b[72..84], a.mtime);
    timestamp(&mut b[84..96], a.mtime);
    timestamp(&mut b[96..108], a.mtime);
    put_u32(&mut b, 108, 1);
    impl_regid(&mut b[128..160]);
    put_u64(&mut b, 160, a.unique);
    put_u32(&mut b, 168, 0);
    put_u32(&mut b, 172, l_ad as u32);
    for (i, (len, pos)) in a.extents.iter().enumerate() {
        put_u32(&mut b, 176 + 8 * i, *len);
        put_u32(&mut b, 180 + 8 * i, *pos);
    }
    finish_tag(&mut b, tag::FE, at_lbn);
    b
}

/// A file name as a CS0 file identifier (≤ 255 bytes).
fn fi_name(name: &str, path: &str) -> Result<Vec<u8>, ImageError> {
    let (b, truncated) = cs0_encode(name, 255);
    if truncated {
        return Err(ImageError::InvalidPath {
            path: path.to_string(),
            reason: format!("name {name:?} needs more than 255 bytes in UDF (CS0)"),
        });
    }
    Ok(b)
}

/// Where everything of the UDF file set goes: partition block numbers, unique ids and the file
/// identifiers of every directory and file (indices as in [`Tree`]).
struct Layout {
    /// Directories in breadth-first order (root first).
    order: Vec<usize>,
    /// CS0 file identifier of each directory (empty for the root).
    dir_fi: Vec<Vec<u8>>,
    /// CS0 file identifier of each file.
    file_fi: Vec<Vec<u8>>,
    /// Bytes of each directory's FID stream.
    fids_len: Vec<usize>,
    /// Partition block of each directory's file entry; its FID stream follows at `fids_lbn`.
    fe_lbn: Vec<u64>,
    /// Partition block of each directory's FID stream.
    fids_lbn: Vec<u64>,
    /// Partition block of each file's file entry.
    file_fe: Vec<u64>,
    /// Unique id of each directory (root 0, others from 16).
    uid_dir: Vec<u64>,
    /// Unique id of each file (after the directories').
    uid_file: Vec<u64>,
    /// The next unique id (recorded in the LVID).
    next_uid: u64,
    /// First sector of the partition.
    part_start: u64,
    /// Sectors in the partition (up to the second AVDP, exclusive).
    part_len: u64,
}

/// Writes the UDF structures into `region`; returns the last sector (second AVDP).
pub(crate) fn write(
    tree: &Tree,
    spec: &VolumeSpec,
    total_sectors: u64,
    region: &mut Region,
    alloc: &mut Alloc,
) -> Result<Vec<u8>, ImageError> {
    let l = layout(tree, total_sectors, alloc)?;
    let put = |region: &mut Region, lba: u64, b: &[u8]| put(tree, region, lba, b);
    put(region, l.part_start, &file_set_descriptor(spec, &l))?;
    let mut td = vec![0u8; 512];
    finish_tag(&mut td, tag::TD, 1);
    put(region, l.part_start + 1, &td)?;
    write_directories(tree, spec, &l, region)?;
    write_file_entries(tree, &l, region)?;
    for vds in [MAIN_VDS_LBA, RESERVE_VDS_LBA] {
        write_volume_descriptors(tree, spec, &l, vds, region)?;
    }
    write_integrity(tree, spec, &l, region)?;
    // Anchors.
    let avdp = |loc: u64| {
        let mut a = vec![0u8; 512];
        put_u32(&mut a, 16, (VDS_SECTORS * SECTOR_SIZE as u64) as u32);
        put_u32(&mut a, 20, MAIN_VDS_LBA as u32);
        put_u32(&mut a, 24, (VDS_SECTORS * SECTOR_SIZE as u64) as u32);
        put_u32(&mut a, 28, RESERVE_VDS_LBA as u32);
        finish_tag(&mut a, tag::AVDP, loc as u32);
        a
    };
    put(region, AVDP_LBA, &avdp(AVDP_LBA))?;
    let mut last = vec![0u8; SECTOR_SIZE];
    last[..512].copy_from_slice(&avdp(total_sectors - 1));
    Ok(last)
}

/// Puts `b` at `lba`, or fails as "the tree does not fit".
fn put(tree: &Tree, region: &mut Region, lba: u64, b: &[u8]) -> Result<(), ImageError> {
    region.put(lba, b).ok_or_else(|| tree.too_large())
}

/// Names, sizes, block numbers and unique ids of the file set; takes the partition from `alloc`.
fn layout(tree: &Tree, total_sectors: u64, alloc: &mut Alloc) -> Result<Layout, ImageError> {
    let nd = tree.dirs.len();
    let order = tree.bfs_by(|d| tree.dirs[d].name.clone());
    // Directory path for error messages.
    let dir_path = |mut d: usize| {
        let mut parts = Vec::new();
        while d != 0 {
            parts.push(tree.dirs[d].name.clone());
            d = tree.dirs[d].parent;
        }
        parts.reverse();
        parts.join("/")
    };
    let mut dir_fi = vec![Vec::new(); nd];
    for (d, fi) in dir_fi.iter_mut().enumerate().skip(1) {
        *fi = fi_name(&tree.dirs[d].name, &dir_path(d))?;
    }
    let mut file_fi = Vec::with_capacity(tree.files.len());
    for f in &tree.files {
        file_fi.push(fi_name(&f.name, &f.path)?);
    }
    // FID stream length per directory.
    let mut fids_len = vec![0usize; nd];
    for (d, dir) in tree.dirs.iter().enumerate() {
        fids_len[d] = fid_len(0)
            + dir
                .subdirs
                .iter()
                .map(|c| fid_len(dir_fi[*c].len()))
                .sum::<usize>()
            + dir
                .files
                .iter()
                .map(|f| fid_len(file_fi[*f].len()))
                .sum::<usize>();
    }
    // Partition block numbers.
    let mut next: u64 = 2; // 0 = FSD, 1 = TD
    let mut fe_lbn = vec![0u64; nd];
    let mut fids_lbn = vec![0u64; nd];
    for &d in &order {
        fe_lbn[d] = next;
        fids_lbn[d] = next + 1;
        next += 1 + (fids_len[d] as u64).div_ceil(SECTOR_SIZE as u64);
    }
    let mut file_fe = vec![0u64; tree.files.len()];
    for slot in file_fe.iter_mut() {
        *slot = next;
        next += 1;
    }
    alloc.skip_fixed();
    let part_start = alloc.take(next).ok_or_else(|| tree.too_large())?;
    let part_len = total_sectors - 1 - part_start;
    // Unique ids: root 0, others from 16.
    let mut uid_dir = vec![0u64; nd];
    let mut uid = 16u64;
    for &d in order.iter().skip(1) {
        uid_dir[d] = uid;
        uid += 1;
    }
    let mut uid_file = vec![0u64; tree.files.len()];
    for u in uid_file.iter_mut() {
        *u = uid;
        uid += 1;
    }
    Ok(Layout {
        order,
        dir_fi,
        file_fi,
        fids_len,
        fe_lbn,
        fids_lbn,
        file_fe,
        uid_dir,
        uid_file,
        next_uid: uid,
        part_start,
        part_len,
    })
}

/// The file set descriptor (partition block 0).
fn file_set_descriptor(spec: &VolumeSpec, l: &Layout) -> Vec<u8> {
    let mut fsd = vec![0u8; 512];
    timestamp(&mut fsd[16..28], spec.created_unix);
    put_u16(&mut fsd, 28, 3);
    put_u16(&mut fsd, 30, 3);
    put_u32(&mut fsd, 32, 1);
    put_u32(&mut fsd, 36, 1);
    charspec(&mut fsd[48..112]);
    fsd[112..240].copy_from_slice(&dstring(&spec.volume_id, 128));
    charspec(&mut fsd[240..304]);
    fsd[304..336].copy_from_slice(&dstring(&spec.volume_id, 32));
    long_ad(
        &mut fsd[400..416],
        SECTOR_SIZE as u32,
        l.fe_lbn[0] as u32,
        0,
    );
    domain_regid(&mut fsd[416..448]);
    finish_tag(&mut fsd, tag::FSD, 0);
    fsd
}

/// Each directory's file entry and FID stream.
fn write_directories(
    tree: &Tree,
    spec: &VolumeSpec,
    l: &Layout,
    region: &mut Region,
) -> Result<(), ImageError> {
    let Layout {
        dir_fi,
        file_fi,
        fids_len,
        fe_lbn,
        fids_lbn,
        file_fe,
        uid_dir,
        uid_file,
        part_start,
        ..
    } = l;
    let put = |region: &mut Region, lba: u64, b: &[u8]| put(tree, region, lba, b);
    for &d in &l.order {
        let dir = &tree.dirs[d];
        let base = fids_lbn[d];
        let mut stream: Vec<u8> = Vec::with_capacity(fids_len[d]);
        let at = |len: usize| (base + (len / SECTOR_SIZE) as u64) as u32;
        let p = dir.parent;
        stream.extend(fid(
            0x0A,
            &[],
            fe_lbn[p] as u32,
            uid_dir[p] as u32,
            at(stream.len()),
        ));
        for &c in &dir.subdirs {
            let b = fid(
                0x02,
                &dir_fi[c],
                fe_lbn[c] as u32,
                uid_dir[c] as u32,
                at(stream.len()),
            );
            stream.extend(b);
        }
        for &f in &dir.files {
            let b = fid(
                0x00,
                &file_fi[f],
                file_fe[f] as u32,
                uid_file[f] as u32,
                at(stream.len()),
            );
            stream.extend(b);
        }
        let fe = file_entry(
            &FeArgs {
                dir: true,
                exec: false,
                links: (1 + dir.subdirs.len()).min(u16::MAX as usize) as u16,
                size: stream.len() as u64,
                mtime: spec.created_unix,
                unique: uid_dir[d],
                extents: vec![(stream.len() as u32, base as u32)],
            },
            fe_lbn[d] as u32,
        );
        put(region, part_start + fe_lbn[d], &fe)?;
        put(region, part_start + base, &stream)?;
    }
    Ok(())
}

/// Each file's file entry, its content as extents of at most [`MAX_EXTENT`] bytes.
fn write_file_entries(tree: &Tree, l: &Layout, region: &mut Region) -> Result<(), ImageError> {
    let (file_fe, uid_file, part_start) = (&l.file_fe, &l.uid_file, l.part_start);
    let put = |region: &mut Region, lba: u64, b: &[u8]| put(tree, region, lba, b);
    for (i, f) in tree.files.iter().enumerate() {
        let mut extents = Vec::new();
        let mut left = f.size;
        let mut lbn = f.lba.saturating_sub(part_start);
        while left > 0 {
            let n = left.min(MAX_EXTENT);
            extents.push((n as u32, lbn as u32));
            lbn += n / SECTOR_SIZE as u64;
            left -= n;
        }
        let fe = file_entry(
            &FeArgs {
                dir: false,
                exec: f.executable,
                links: 1,
                size: f.size,
                mtime: f.mtime,
                unique: uid_file[i],
                extents,
            },
            file_fe[i] as u32,
        );
        put(region, part_start + file_fe[i], &fe)?;
    }
    Ok(())
}

/// One volume descriptor sequence (main or reserve) starting at `vds`.
fn write_volume_descriptors(
    tree: &Tree,
    spec: &VolumeSpec,
    l: &Layout,
    vds: u64,
    region: &mut Region,
) -> Result<(), ImageError> {
    let (part_start, part_len) = (l.part_start, l.part_len);
    let put = |region: &mut Region, lba: u64, b: &[u8]| put(tree, region, lba, b);
    let mut pvd = vec![0u8; 512];
    put_u32(&mut pvd, 16, 1);
    put_u32(&mut pvd, 20, 0);
    pvd[24..56].copy_from_slice(&dstring(&spec.volume_id, 32));
    put_u16(&mut pvd, 56, 1);
    put_u16(&mut pvd, 58, 1);
    put_u16(&mut pvd, 60, 2);
    put_u16(&mut pvd, 62, 3);
    put_u32(&mut pvd, 64, 1);
    put_u32(&mut pvd, 68, 1);
    let vsid = format!("{:016x}{}", spec.created_unix as u64, spec.volume_id);
    pvd[72..200].copy_from_slice(&dstring(&vsid, 128));
    charspec(&mut pvd[200..264]);
    charspec(&mut pvd[264..328]);
    impl_regid(&mut pvd[344..376]);
    timestamp(&mut pvd[376..388], spec.created_unix);
    impl_regid(&mut pvd[388..420]);
    finish_tag(&mut pvd, tag::PVD, vds as u32);
    put(region, vds, &pvd)?;

    let mut iuvd = vec![0u8; 512];
    put_u32(&mut iuvd, 16, 2);
    udf_regid(&mut iuvd[20..52], "*UDF LV Info");
    charspec(&mut iuvd[52..116]);
    iuvd[116..244].copy_from_slice(&dstring(&spec.volume_id, 128));
    iuvd[244..280].copy_from_slice(&dstring(&spec.publisher, 36));
    iuvd[280..316].copy_from_slice(&dstring(&spec.application, 36));
    impl_regid(&mut iuvd[352..384]);
    finish_tag(&mut iuvd, tag::IUVD, (vds + 1) as u32);
    put(region, vds + 1, &iuvd)?;

    let mut pd = vec![0u8; 512];
    put_u32(&mut pd, 16, 3);
    put_u16(&mut pd, 20, 1);
    put_u16(&mut pd, 22, 0);
    regid(&mut pd[24..56], "+NSR03", &[]);
    put_u32(&mut pd, 184, 1); // read-only
    put_u32(&mut pd, 188, part_start as u32);
    put_u32(&mut pd, 192, part_len as u32);
    impl_regid(&mut pd[196..228]);
    finish_tag(&mut pd, tag::PD, (vds + 2) as u32);
    put(region, vds + 2, &pd)?;

    let mut lvd = vec![0u8; 446];
    put_u32(&mut lvd, 16, 4);
    charspec(&mut lvd[20..84]);
    lvd[84..212].copy_from_slice(&dstring(&spec.volume_id, 128));
    put_u32(&mut lvd, 212, SECTOR_SIZE as u32);
    domain_regid(&mut lvd[216..248]);
    long_ad(&mut lvd[248..264], SECTOR_SIZE as u32, 0, 0);
    put_u32(&mut lvd, 264, 6);
    put_u32(&mut lvd, 268, 1);
    impl_regid(&mut lvd[272..304]);
    put_u32(&mut lvd, 432, (LVID_SECTORS * SECTOR_SIZE as u64) as u32);
    put_u32(&mut lvd, 436, LVID_LBA as u32);
    lvd[440] = 1;
    lvd[441] = 6;
    put_u16(&mut lvd, 442, 1);
    put_u16(&mut lvd, 444, 0);
    finish_tag(&mut lvd, tag::LVD, (vds + 3) as u32);
    put(region, vds + 3, &lvd)?;

    let mut usd = vec![0u8; 24];
    put_u32(&mut usd, 16, 5);
    finish_tag(&mut usd, tag::USD, (vds + 4) as u32);
    put(region, vds + 4, &usd)?;

    let mut td = vec![0u8; 512];
    finish_tag(&mut td, tag::TD, (vds + 5) as u32);
    put(region, vds + 5, &td)?;
    Ok(())
}

/// The logical volume integrity descriptor (closed) and its terminator.
fn write_integrity(
    tree: &Tree,
    spec: &VolumeSpec,
    l: &Layout,
    region: &mut Region,
) -> Result<(), ImageError> {
    let files = tree.files.len() as u32;
    let dirs = tree.dirs.len() as u32;
    let (uid, part_len) = (l.next_uid, l.part_len);
    let put = |region: &mut Region, lba: u64, b: &[u8]| put(tree, region, lba, b);
    let mut lvid = vec![0u8; 88 + 46];
    timestamp(&mut lvid[16..28], spec.created_unix);
    put_u32(&mut lvid, 28, 1);
    put_u64(&mut lvid, 40, uid);
    put_u32(&mut lvid, 72, 1);
    put_u32(&mut lvid, 76, 46);
    put_u32(&mut lvid, 80, 0);
    put_u32(&mut lvid, 84, part_len as u32);
    impl_regid(&mut lvid[88..120]);
    put_u32(&mut lvid, 120, files);
    put_u32(&mut lvid, 124, dirs);
    put_u16(&mut lvid, 128, UDF_REV);
    put_u16(&mut lvid, 130, UDF_REV);
    put_u16(&mut lvid, 132, UDF_REV);
    finish_tag(&mut lvid, tag::LVID, LVID_LBA as u32);
    put(region, LVID_LBA, &lvid)?;
    let mut td = vec![0u8; 512];
    finish_tag(&mut td, tag::TD, (LVID_LBA + 1) as u32);
    put(region, LVID_LBA + 1, &td)?;
    Ok(())
}
