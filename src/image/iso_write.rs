//! ISO9660 writer: PVD (LBA 16), Joliet SVD (17), terminator (18), the UDF volume recognition
//! sequence (19..21), Rock Ridge continuation sectors, path tables and directory extents.
//!
//! Primary names are mangled to d-characters (see [`iso_file_key`]); Rock Ridge NM entries carry the
//! real names, Joliet carries UCS-2 names of at most 64 units.

use super::tree::{Alloc, Region, Tree};
use super::util::*;
use super::{ImageError, VolumeSpec};
use crate::sector::SECTOR_SIZE;
use std::collections::HashSet;

/// Longest primary file name part (before the dot).
const ISO_BASE_MAX: usize = 24;
/// Longest primary extension.
const ISO_EXT_MAX: usize = 4;
/// Longest primary directory identifier.
const ISO_DIR_MAX: usize = 31;
/// Longest Joliet name in UCS-2 units.
const JOLIET_MAX: usize = 64;
/// Rock Ridge file mode of regular files (r--r--r--).
const MODE_FILE: u32 = 0o100444;
/// Rock Ridge file mode of executable files (r-xr-xr-x).
const MODE_EXEC: u32 = 0o100555;
/// Rock Ridge file mode of directories (r-xr-xr-x).
const MODE_DIR: u32 = 0o040555;

/// ER identifier, description and source of RRIP 1.10 (IEEE P1282 draft, as written by mkisofs).
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// Maps a string to d-characters: ASCII letters upper-cased, digits and '_' kept, everything else
/// (including each non-ASCII char) becomes '_'.
pub(crate) fn d_chars(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect()
}

/// Maps a string to a-characters (upper case; a few punctuation marks allowed), for descriptor text fields.
fn a_chars(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z'
            | '0'..='9'
            | '_'
            | ' '
            | '!'
            | '"'
            | '%'
            | '&'
            | '\''
            | '('
            | ')'
            | '*'
            | '+'
            | ','
            | '-'
            | '.'
            | '/'
            | ':'
            | ';'
            | '<'
            | '='
            | '>'
            | '?' => c,
            _ => '_',
        })
        .collect()
}

/// Splits at the last '.', if it is not the first char: ("photos.tar", "zst").
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(p) if p > 0 => (&name[..p], &name[p + 1..]),
        _ => (name, ""),
    }
}

/// Makes a unique key from `base` + `tail` by truncating `base` to `max` chars and, if taken,
/// replacing its end with `_N`. `used` holds keys upper-cased.
fn unique(base: &[char], tail: &[char], max: usize, used: &mut HashSet<String>) -> Vec<char> {
    let mut n = 0u32;
    loop {
        let suffix: Vec<char> = if n == 0 {
            Vec::new()
        } else {
            format!("_{n}").chars().collect()
        };
        let keep = max.saturating_sub(suffix.len()).min(base.len());
        let mut cand: Vec<char> = base[..keep].to_vec();
        cand.extend(&suffix);
        cand.extend(tail);
        let key: String = cand.iter().collect::<String>().to_uppercase();
        if used.insert(key) {
            return cand;
        }
        n += 1;
    }
}

/// Primary file identifier without ";1": `BASE.EXT` (base ≤ 24, ext ≤ 4 d-characters), or `BASE`
/// when there is no extension (the dot is added on disc). Unique within `used`.
pub(crate) fn iso_file_key(name: &str, used: &mut HashSet<String>) -> String {
    let (b, e) = split_ext(name);
    let mut base: Vec<char> = d_chars(b).chars().collect();
    if base.is_empty() {
        base.push('_');
    }
    let ext: Vec<char> = d_chars(e).chars().take(ISO_EXT_MAX).collect();
    let mut tail = Vec::new();
    if !ext.is_empty() {
        tail.push('.');
        tail.extend(ext);
    }
    unique(&base, &tail, ISO_BASE_MAX, used)
        .into_iter()
        .collect()
}

/// Primary directory identifier (≤ 31 d-characters), unique within `used`.
pub(crate) fn iso_dir_key(name: &str, used: &mut HashSet<String>) -> String {
    let base: Vec<char> = d_chars(name).chars().collect();
    unique(&base, &[], ISO_DIR_MAX, used).into_iter().collect()
}

/// Joliet name: chars outside the BMP, controls and `* / : ; ? \` become '_'; at most 64 UCS-2
/// units, truncating the part before the extension; unique (case-insensitively) within `used`.
pub(crate) fn joliet_key(name: &str, used: &mut HashSet<String>) -> String {
    let clean: Vec<char> = name
        .chars()
        .map(|c| {
            if (c as u32) > 0xFFFF || (c as u32) < 0x20 || "*/:;?\\".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let s: String = clean.iter().collect();
    let (b, e) = split_ext(&s);
    let ext: Vec<char> = e.chars().collect();
    let (base, tail): (Vec<char>, Vec<char>) = if !e.is_empty() && ext.len() <= 16 {
        let mut t = vec!['.'];
        t.extend(&ext);
        (b.chars().collect(), t)
    } else {
        (clean.clone(), Vec::new())
    };
    let max = JOLIET_MAX - tail.len();
    unique(&base, &tail, max, used).into_iter().collect()
}

fn ucs2(s: &str) -> Vec<u8> {
    s.chars()
        .flat_map(|c| (c as u32 as u16).to_be_bytes())
        .collect()
}

/// 7-byte directory-record date (UTC).
pub(crate) fn dir_date(t: i64) -> [u8; 7] {
    let (y, m, d, hh, mm, ss) = civil_from_unix(t);
    let y = (y - 1900).clamp(0, 255) as u8;
    [y, m as u8, d as u8, hh as u8, mm as u8, ss as u8, 0]
}

/// 17-byte volume-descriptor date (ASCII digits + GMT offset 0).
fn vd_date(t: i64) -> [u8; 17] {
    let (y, m, d, hh, mm, ss) = civil_from_unix(t);
    let y = y.clamp(1, 9999);
    let s = format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(s.as_bytes());
    out
}

fn unset_date() -> [u8; 17] {
    let mut out = [b'0'; 17];
    out[16] = 0;
    out
}

/// On-disc names and layout of both trees.
struct Names {
    /// Primary identifier (with ";1" for files) per dir / per file.
    dir_iso: Vec<Vec<u8>>,
    file_iso: Vec<Vec<u8>>,
    /// Joliet identifier (UCS-2BE) per dir / per file.
    dir_jol: Vec<Vec<u8>>,
    file_jol: Vec<Vec<u8>>,
}

#[derive(Clone, Copy)]
enum Child {
    Dir(usize),
    File(usize),
}

/// Locations known after allocation (all zero during the sizing pass).
#[derive(Clone)]
struct Loc {
    iso_lba: Vec<u64>,
    iso_len: Vec<u64>,
    jol_lba: Vec<u64>,
    jol_len: Vec<u64>,
}

/// Rock Ridge continuation area: blobs packed into sectors, none crossing a sector boundary.
struct CeArea {
    /// LBA of the first continuation sector (0 in the sizing pass).
    base: u64,
    sectors: Vec<Vec<u8>>,
    /// Bytes used in the last sector.
    used: usize,
}

impl CeArea {
    fn add(&mut self, blob: &[u8]) -> (u32, u32) {
        if self.sectors.is_empty() || self.used + blob.len() > SECTOR_SIZE {
            self.sectors.push(vec![0; SECTOR_SIZE]);
            self.used = 0;
        }
        let i = self.sectors.len() - 1;
        let off = self.used;
        self.sectors[i][off..off + blob.len()].copy_from_slice(blob);
        self.used += blob.len();
        ((self.base + i as u64) as u32, off as u32)
    }
}

fn su_rr(flags: u8) -> Vec<u8> {
    vec![b'R', b'R', 5, 1, flags]
}

fn su_px(mode: u32, links: u32) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    b[..4].copy_from_slice(&[b'P', b'X', 36, 1]);
    put_u32_both(&mut b, 4, mode);
    put_u32_both(&mut b, 12, links);
    put_u32_both(&mut b, 20, 0);
    put_u32_both(&mut b, 28, 0);
    b
}

fn su_tf(t: i64) -> Vec<u8> {
    // Modify, access and attribute-change times, short form.
    let mut b = vec![b'T', b'F', 26, 1, 0x0E];
    for _ in 0..3 {
        b.extend_from_slice(&dir_date(t));
    }
    b
}

fn su_nm(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let mut b = vec![b'N', b'M', (5 + n.len()) as u8, 1, 0];
    b.extend_from_slice(n);
    b
}

fn su_ce(lba: u32, off: u32, len: u32) -> Vec<u8> {
    let mut b = vec![0u8; 28];
    b[..4].copy_from_slice(&[b'C', b'E', 28, 1]);
    put_u32_both(&mut b, 4, lba);
    put_u32_both(&mut b, 12, off);
    put_u32_both(&mut b, 20, len);
    b
}

fn su_sp() -> Vec<u8> {
    vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]
}

fn su_er() -> Vec<u8> {
    let mut b = vec![
        b'E',
        b'R',
        (8 + ER_ID.len() + ER_DES.len() + ER_SRC.len()) as u8,
        1,
        ER_ID.len() as u8,
        ER_DES.len() as u8,
        ER_SRC.len() as u8,
        1,
    ];
    b.extend_from_slice(ER_ID);
    b.extend_from_slice(ER_DES);
    b.extend_from_slice(ER_SRC);
    b
}

/// One directory record. `id` is the identifier, `su` the system use area.
fn record(id: &[u8], lba: u64, len: u64, dir: bool, date: [u8; 7], su: &[u8]) -> Vec<u8> {
    let pad = usize::from(id.len() % 2 == 0);
    let mut n = 33 + id.len() + pad + su.len();
    n += n % 2;
    let mut r = vec![0u8; n];
    r[0] = n as u8;
    put_u32_both(&mut r, 2, lba as u32);
    put_u32_both(&mut r, 10, len as u32);
    r[18..25].copy_from_slice(&date);
    r[25] = if dir { 2 } else { 0 };
    put_u16_both(&mut r, 28, 1);
    r[32] = id.len() as u8;
    r[33..33 + id.len()].copy_from_slice(id);
    let s = 33 + id.len() + pad;
    r[s..s + su.len()].copy_from_slice(su);
    r
}

/// Packs records into whole sectors so that none crosses a sector boundary.
fn pack(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for r in records {
        let used = out.len() % SECTOR_SIZE;
        if used + r.len() > SECTOR_SIZE {
            out.resize(out.len() + SECTOR_SIZE - used, 0);
        }
        out.extend_from_slice(r);
    }
    let rem = out.len() % SECTOR_SIZE;
    if rem != 0 || out.is_empty() {
        out.resize(out.len() + SECTOR_SIZE - rem, 0);
    }
    out
}

struct Ctx<'a> {
    tree: &'a Tree,
    spec: &'a VolumeSpec,
    names: Names,
    iso_children: Vec<Vec<Child>>,
    jol_children: Vec<Vec<Child>>,
}

impl Ctx<'_> {
    fn links(&self, d: usize) -> u32 {
        2 + self.tree.dirs[d].subdirs.len() as u32
    }

    /// Rock Ridge system use for a child, with NM moved to the continuation area if needed.
    fn child_su(
        &self,
        idlen: usize,
        mode: u32,
        links: u32,
        t: i64,
        name: &str,
        ce: &mut CeArea,
    ) -> Vec<u8> {
        let mut su = su_rr(0x89);
        su.extend(su_px(mode, links));
        su.extend(su_tf(t));
        let nm = su_nm(name);
        let base = 33 + idlen + usize::from(idlen % 2 == 0);
        if base + su.len() + nm.len() <= 254 {
            su.extend(nm);
        } else {
            let (l, o) = ce.add(&nm);
            su.extend(su_ce(l, o, nm.len() as u32));
        }
        su
    }

    fn dir_records(&self, d: usize, joliet: bool, loc: &Loc, ce: &mut CeArea) -> Vec<Vec<u8>> {
        let tree = self.tree;
        let created = self.spec.created_unix;
        let (lba, len) = if joliet {
            (&loc.jol_lba, &loc.jol_len)
        } else {
            (&loc.iso_lba, &loc.iso_len)
        };
        let p = tree.dirs[d].parent;
        let mut recs = Vec::new();
        let (dot_su, dotdot_su) = if joliet {
            (Vec::new(), Vec::new())
        } else {
            let mut dot = Vec::new();
            if d == 0 {
                dot.extend(su_sp());
            }
            dot.extend(su_rr(0x81));
            dot.extend(su_px(MODE_DIR, self.links(d)));
            dot.extend(su_tf(created));
            if d == 0 {
                let er = su_er();
                let (l, o) = ce.add(&er);
                dot.extend(su_ce(l, o, er.len() as u32));
            }
            let mut dd = su_rr(0x81);
            dd.extend(su_px(MODE_DIR, self.links(p)));
            dd.extend(su_tf(created));
            (dot, dd)
        };
        recs.push(record(
            &[0],
            lba[d],
            len[d],
            true,
            dir_date(created),
            &dot_su,
        ));
        recs.push(record(
            &[1],
            lba[p],
            len[p],
            true,
            dir_date(created),
            &dotdot_su,
        ));
        let kids = if joliet {
            &self.jol_children[d]
        } else {
            &self.iso_children[d]
        };
        for k in kids {
            match *k {
                Child::Dir(c) => {
                    let id = if joliet {
                        &self.names.dir_jol[c]
                    } else {
                        &self.names.dir_iso[c]
                    };
                    let su = if joliet {
                        Vec::new()
                    } else {
                        self.child_su(
                            id.len(),
                            MODE_DIR,
                            self.links(c),
                            created,
                            &tree.dirs[c].name,
                            ce,
                        )
                    };
                    recs.push(record(id, lba[c], len[c], true, dir_date(created), &su));
                }
                Child::File(f) => {
                    let fe = &tree.files[f];
                    let id = if joliet {
                        &self.names.file_jol[f]
                    } else {
                        &self.names.file_iso[f]
                    };
                    let su = if joliet {
                        Vec::new()
                    } else {
                        self.child_su(
                            id.len(),
                            if fe.executable { MODE_EXEC } else { MODE_FILE },
                            1,
                            fe.mtime,
                            &fe.name,
                            ce,
                        )
                    };
                    recs.push(record(id, fe.lba, fe.size, false, dir_date(fe.mtime), &su));
                }
            }
        }
        recs
    }
}

/// Path table bytes for `order` (dirs in path-table order); `be` selects the M (big-endian) table.
fn path_table(order: &[usize], tree: &Tree, ids: &[Vec<u8>], lba: &[u64], be: bool) -> Vec<u8> {
    let mut num = vec![0u16; tree.dirs.len()];
    for (i, d) in order.iter().enumerate() {
        num[*d] = (i + 1) as u16;
    }
    let mut out = Vec::new();
    for &d in order {
        let id: &[u8] = if d == 0 { &[0] } else { &ids[d] };
        out.push(id.len() as u8);
        out.push(0);
        let l = lba[d] as u32;
        let parent = num[tree.dirs[d].parent];
        if be {
            out.extend(l.to_be_bytes());
            out.extend(parent.to_be_bytes());
        } else {
            out.extend(l.to_le_bytes());
            out.extend(parent.to_le_bytes());
        }
        out.extend_from_slice(id);
        if id.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}

fn sectors_of(bytes: usize) -> u64 {
    (bytes.div_ceil(SECTOR_SIZE)).max(1) as u64
}

/// Writes all ISO9660/Joliet/RR structures and the UDF volume recognition sequence into `region`.
pub(crate) fn write(
    tree: &Tree,
    spec: &VolumeSpec,
    total_sectors: u64,
    region: &mut Region,
    alloc: &mut Alloc,
) -> Result<(), ImageError> {
    let nd = tree.dirs.len();
    let (names, iso_children, jol_children) = names_and_children(tree);
    let ctx = Ctx {
        tree,
        spec,
        names,
        iso_children,
        jol_children,
    };
    let order = DirOrder {
        iso: tree.bfs_by(|d| ctx.names.dir_iso[d].clone()),
        jol: tree.bfs_by(|d| ctx.names.dir_jol[d].clone()),
    };
    if order.iso.len() > u16::MAX as usize {
        return Err(tree.too_large());
    }
    let mut loc = Loc {
        iso_lba: vec![0; nd],
        iso_len: vec![0; nd],
        jol_lba: vec![0; nd],
        jol_len: vec![0; nd],
    };
    // Pass 1: sizes; then every structure gets its place; pass 2: generate with real locations.
    let sizes = measure(&ctx, &order, &mut loc);
    let place = allocate(tree, alloc, &order, &sizes, &mut loc)?;
    write_directories(&ctx, &order, &loc, place.ce_lba, region)?;
    let put = |region: &mut Region, lba: u64, b: &[u8]| {
        region.put(lba, b).ok_or_else(|| tree.too_large())
    };
    let names = &ctx.names;
    let tables = [
        (place.l_pt, &order.iso, &names.dir_iso, &loc.iso_lba, false),
        (place.m_pt, &order.iso, &names.dir_iso, &loc.iso_lba, true),
        (place.jl_pt, &order.jol, &names.dir_jol, &loc.jol_lba, false),
        (place.jm_pt, &order.jol, &names.dir_jol, &loc.jol_lba, true),
    ];
    for (lba, order, ids, lbas, be) in tables {
        put(region, lba, &path_table(order, tree, ids, lbas, be))?;
    }
    let root = |lba: u64, len: u64| record(&[0], lba, len, true, dir_date(spec.created_unix), &[]);
    let pvd = volume_descriptor(
        spec,
        total_sectors,
        false,
        sizes.pt_len,
        place.l_pt,
        place.m_pt,
        &root(loc.iso_lba[0], loc.iso_len[0]),
    );
    put(region, 16, &pvd)?;
    let svd = volume_descriptor(
        spec,
        total_sectors,
        true,
        sizes.jpt_len,
        place.jl_pt,
        place.jm_pt,
        &root(loc.jol_lba[0], loc.jol_len[0]),
    );
    put(region, 17, &svd)?;
    write_descriptor_terminators(tree, region)
}

/// Directories in path table order: ISO9660 and Joliet identifiers sort differently.
struct DirOrder {
    iso: Vec<usize>,
    jol: Vec<usize>,
}

/// Sizes from the first pass (with all locations 0; sizes do not depend on them).
struct Sizes {
    /// Rock Ridge continuation area sectors.
    ce_sectors: u64,
    /// Bytes of one ISO9660 path table (L and M are the same size).
    pt_len: usize,
    /// Bytes of one Joliet path table.
    jpt_len: usize,
}

/// Where the continuation area and the four path tables are.
struct Placement {
    ce_lba: u64,
    l_pt: u64,
    m_pt: u64,
    jl_pt: u64,
    jm_pt: u64,
}

/// Pass 1: the size of every directory (into `loc`), of the continuation area and of the
/// path tables.
fn measure(ctx: &Ctx<'_>, order: &DirOrder, loc: &mut Loc) -> Sizes {
    let mut ce = CeArea {
        base: 0,
        sectors: Vec::new(),
        used: 0,
    };
    for &d in &order.iso {
        loc.iso_len[d] = pack(&ctx.dir_records(d, false, loc, &mut ce)).len() as u64;
    }
    for &d in &order.jol {
        loc.jol_len[d] = pack(&ctx.dir_records(d, true, loc, &mut ce)).len() as u64;
    }
    let tree = ctx.tree;
    Sizes {
        ce_sectors: ce.sectors.len() as u64,
        pt_len: path_table(&order.iso, tree, &ctx.names.dir_iso, &loc.iso_lba, false).len(),
        jpt_len: path_table(&order.jol, tree, &ctx.names.dir_jol, &loc.jol_lba, false).len(),
    }
}

/// Takes the sectors of the continuation area, the path tables and every directory (into
/// `loc`) from `alloc`, in that order.
fn allocate(
    tree: &Tree,
    alloc: &mut Alloc,
    order: &DirOrder,
    sizes: &Sizes,
    loc: &mut Loc,
) -> Result<Placement, ImageError> {
    let too_large = || tree.too_large();
    let ce_lba = alloc.take(sizes.ce_sectors).ok_or_else(too_large)?;
    let l_pt = alloc.take(sectors_of(sizes.pt_len)).ok_or_else(too_large)?;
    let m_pt = alloc.take(sectors_of(sizes.pt_len)).ok_or_else(too_large)?;
    let jl_pt = alloc
        .take(sectors_of(sizes.jpt_len))
        .ok_or_else(too_large)?;
    let jm_pt = alloc
        .take(sectors_of(sizes.jpt_len))
        .ok_or_else(too_large)?;
    for &d in &order.iso {
        loc.iso_lba[d] = alloc
            .take(loc.iso_len[d] / SECTOR_SIZE as u64)
            .ok_or_else(too_large)?;
    }
    for &d in &order.jol {
        loc.jol_lba[d] = alloc
            .take(loc.jol_len[d] / SECTOR_SIZE as u64)
            .ok_or_else(too_large)?;
    }
    Ok(Placement {
        ce_lba,
        l_pt,
        m_pt,
        jl_pt,
        jm_pt,
    })
}

/// Pass 2: the directories (ISO9660 with Rock Ridge, then Joliet) and the continuation area
/// at `ce_lba`, generated with their real locations.
fn write_directories(
    ctx: &Ctx<'_>,
    order: &DirOrder,
    loc: &Loc,
    ce_lba: u64,
    region: &mut Region,
) -> Result<(), ImageError> {
    let too_large = || ctx.tree.too_large();
    let mut ce = CeArea {
        base: ce_lba,
        sectors: Vec::new(),
        used: 0,
    };
    for &d in &order.iso {
        let bytes = pack(&ctx.dir_records(d, false, loc, &mut ce));
        debug_assert_eq!(bytes.len() as u64, loc.iso_len[d]);
        region.put(loc.iso_lba[d], &bytes).ok_or_else(too_large)?;
    }
    for &d in &order.jol {
        let bytes = pack(&ctx.dir_records(d, true, loc, &mut ce));
        region.put(loc.jol_lba[d], &bytes).ok_or_else(too_large)?;
    }
    for (i, s) in ce.sectors.iter().enumerate() {
        region.put(ce_lba + i as u64, s).ok_or_else(too_large)?;
    }
    Ok(())
}

/// The volume descriptor set terminator (LBA 18) and the UDF volume recognition sequence
/// (BEA01, NSR03, TEA01 at 19..=21).
fn write_descriptor_terminators(tree: &Tree, region: &mut Region) -> Result<(), ImageError> {
    let put = |region: &mut Region, lba: u64, b: &[u8]| {
        region.put(lba, b).ok_or_else(|| tree.too_large())
    };
    let mut term = vec![0u8; SECTOR_SIZE];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    put(region, 18, &term)?;
    for (lba, id) in [(19u64, b"BEA01"), (20, b"NSR03"), (21, b"TEA01")] {
        let mut s = vec![0u8; SECTOR_SIZE];
        s[1..6].copy_from_slice(id);
        s[6] = 1;
        put(region, lba, &s)?;
    }
    Ok(())
}

/// ISO9660 and Joliet identifiers of every directory and file (unique per directory), and each
/// directory's children sorted by them (the order of its records).
fn names_and_children(tree: &Tree) -> (Names, Vec<Vec<Child>>, Vec<Vec<Child>>) {
    let nd = tree.dirs.len();
    let mut names = Names {
        dir_iso: vec![Vec::new(); nd],
        file_iso: vec![Vec::new(); tree.files.len()],
        dir_jol: vec![Vec::new(); nd],
        file_jol: vec![Vec::new(); tree.files.len()],
    };
    let mut iso_children = vec![Vec::new(); nd];
    let mut jol_children = vec![Vec::new(); nd];
    for (d, dir) in tree.dirs.iter().enumerate() {
        let mut used_iso = HashSet::new();
        let mut used_jol = HashSet::new();
        let mut iso_keyed: Vec<(Vec<u8>, Child)> = Vec::new();
        let mut jol_keyed: Vec<(Vec<u8>, Child)> = Vec::new();
        for &c in &dir.subdirs {
            names.dir_iso[c] = iso_dir_key(&tree.dirs[c].name, &mut used_iso).into_bytes();
            names.dir_jol[c] = ucs2(&joliet_key(&tree.dirs[c].name, &mut used_jol));
            iso_keyed.push((names.dir_iso[c].clone(), Child::Dir(c)));
            jol_keyed.push((names.dir_jol[c].clone(), Child::Dir(c)));
        }
        for &f in &dir.files {
            let key = iso_file_key(&tree.files[f].name, &mut used_iso);
            let id = if key.contains('.') {
                format!("{key};1")
            } else {
                format!("{key}.;1")
            };
            names.file_iso[f] = id.into_bytes();
            names.file_jol[f] = ucs2(&joliet_key(&tree.files[f].name, &mut used_jol));
            iso_keyed.push((names.file_iso[f].clone(), Child::File(f)));
            jol_keyed.push((names.file_jol[f].clone(), Child::File(f)));
        }
        iso_keyed.sort_by(|a, b| a.0.cmp(&b.0));
        jol_keyed.sort_by(|a, b| a.0.cmp(&b.0));
        iso_children[d] = iso_keyed.into_iter().map(|x| x.1).collect();
        jol_children[d] = jol_keyed.into_iter().map(|x| x.1).collect();
    }
    (names, iso_children, jol_children)
}

/// Fills a text field: a-characters padded with spaces, or UCS-2BE padded with UCS-2 spaces.
fn text_field(b: &mut [u8], s: &str, joliet: bool, dchars: bool) {
    if joliet {
        for pair in b.chunks_exact_mut(2) {
            pair.copy_from_slice(&[0, 0x20]);
        }
        let units: Vec<u16> = s
            .chars()
            .map(|c| {
                if (c as u32) > 0xFFFF {
                    '_' as u16
                } else {
                    c as u32 as u16
                }
            })
            .collect();
        for (i, u) in units.iter().take(b.len() / 2).enumerate() {
            b[2 * i..2 * i + 2].copy_from_slice(&u.to_be_bytes());
        }
    } else {
        b.fill(b' ');
        let t = if dchars { d_chars(s) } else { a_chars(s) };
        let n = t.len().min(b.len());
        b[..n].copy_from_slice(&t.as_bytes()[..n]);
    }
}

fn volume_descriptor(
    spec: &VolumeSpec,
    total_sectors: u64,
    joliet: bool,
    pt_len: usize,
    l_pt: u64,
    m_pt: u64,
    root: &[u8],
) -> Vec<u8> {
    let mut b = vec![0u8; SECTOR_SIZE];
    b[0] = if joliet { 2 } else { 1 };
    b[1..6].copy_from_slice(b"CD001");
    b[6] = 1;
    text_field(&mut b[8..40], "LINUX", joliet, false);
    text_field(&mut b[40..72], &spec.volume_id, joliet, true);
    put_u32_both(&mut b, 80, total_sectors as u32);
    if joliet {
        b[88..91].copy_from_slice(b"%/E");
    }
    put_u16_both(&mut b, 120, 1);
    put_u16_both(&mut b, 124, 1);
    put_u16_both(&mut b, 128, SECTOR_SIZE as u16);
    put_u32_both(&mut b, 132, pt_len as u32);
    put_u32(&mut b, 140, l_pt as u32);
    b[148..152].copy_from_slice(&(m_pt as u32).to_be_bytes());
    b[156..190].copy_from_slice(root);
    text_field(&mut b[190..318], &spec.volume_id, joliet, true);
    text_field(&mut b[318..446], &spec.publisher, joliet, false);
    text_field(&mut b[446..574], "BD-ARCHIVE", joliet, false);
    text_field(&mut b[574..702], &spec.application, joliet, false);
    text_field(&mut b[702..739], "", joliet, true);
    text_field(&mut b[739..776], "", joliet, true);
    text_field(&mut b[776..813], "", joliet, true);
    if joliet {
        // 37-byte fields hold 18 UCS-2 chars; the odd last byte stays 0x00? Keep space padding.
        for off in [738usize, 775, 812] {
            b[off] = 0x20;
        }
    }
    b[813..830].copy_from_slice(&vd_date(spec.created_unix));
    b[830..847].copy_from_slice(&vd_date(spec.created_unix));
    b[847..864].copy_from_slice(&unset_date());
    b[864..881].copy_from_slice(&unset_date());
    b[881] = 1;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangling_is_unique_and_valid() {
        let mut used = HashSet::new();
        let a = iso_file_key("photos-gen1.0001.tar.zst", &mut used);
        let b = iso_file_key("photos-gen1.0001.tar.ZST", &mut used);
        let c = iso_file_key("bd-archive", &mut used);
        assert_eq!(a, "PHOTOS_GEN1_0001_TAR.ZST");
        assert_ne!(a, b);
        assert_eq!(c, "BD_ARCHIVE");
        let long = iso_file_key(&"x".repeat(60), &mut used);
        assert_eq!(long.len(), ISO_BASE_MAX);
        let mut j = HashSet::new();
        let n1 = joliet_key(&format!("{}.idx", "é".repeat(80)), &mut j);
        let n2 = joliet_key(&format!("{}.idx", "é".repeat(81)), &mut j);
        assert_eq!(n1.chars().count(), 64);
        assert_eq!(n2.chars().count(), 64);
        assert_ne!(n1, n2);
        assert!(n2.ends_with(".idx"));
    }
}
