//! A lost parity disc rebuilt bit-identical (FORMAT.md §10.6). A parity image is a function of
//! the data images, the manifest, the catalog and what `create` put beside them: its FEC plan
//! (-r, --fill-parity, the medium), README.txt, FORMAT.md, the binary, the creation time and the
//! writing version. Everything is taken from the set's own discs — never from the running
//! binary, whose FORMAT.md may be newer — and the image is written by create's own parity
//! writer ([`crate::archive::parity_disc::write_parity_images`]).
//!
//! ```text
//! rebuild_lost_parity(set, data images, all intact):
//!     catalog (chain, -r, tool version) from the last data disc; medium, creation time from
//!     data disc 1's header; FORMAT.md and the binary from data disc 1's filesystem;
//!     --fill-parity from the data discs' FEC geometries (plan_fill or plan_for_loss)
//!     refuse if a surviving parity disc's README or geometry is not what this writer makes
//!     write the lost parity images into the work dir
//!     check each: its manifest equals the set's; a broken original's sectors that its own
//!     checksums call intact (and its header copies) equal the rebuilt image's — else refuse
//!     move each into the output directory
//! ```

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{io, ParityError, ParitySet, RebuildOptions, SS};
use crate::archive::disc_writer::{DiscSetConfig, TRAILER_SECTORS};
use crate::archive::parity_disc::{parity_image_name, parity_readme, write_parity_images};
use crate::disc::reader::find_disc_header;
use crate::fec;
use crate::format::catalog::Catalog;
use crate::format::disc_header::DiscHeader;
use crate::format::parity_manifest::{DataDiscRecord, ParityManifest};
use crate::format::records::{self, decode_record};
use crate::image::FIRST_DATA_LBA;
use crate::sector::{FileSectorSource, SectorSource, SECTOR_SIZE};
use crate::util::progress::Progress;

fn refused(why: String) -> ParityError {
    ParityError::ParityRefused(why)
}

/// Writes the image of every parity disc of `set` that is missing or broken beyond its own FEC
/// into `out_dir`, from the data images `data` (disc order, every one intact: given intact or
/// rebuilt). Returns (p, path) per image written.
pub(super) fn rebuild_lost_parity(
    set: &ParitySet,
    data: &[PathBuf],
    opts: &RebuildOptions,
    out_dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<(u32, PathBuf)>, ParityError> {
    let n = set.data_discs();
    let todo: Vec<u32> = set
        .parity
        .iter()
        .filter(|m| m.state >= super::DiscState::Broken)
        .map(|m| m.disc - n)
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    if data.len() != n as usize {
        return Err(refused(format!(
            "only {} of the {n} data discs are whole: a parity disc is made from all of them",
            data.len()
        )));
    }
    let mut cfg = config_from_set(set, data, opts)?;
    let surviving = check_surviving_parity(set, &cfg)?;
    cfg.images_dir = opts.workdir.join("parity");
    std::fs::create_dir_all(&cfg.images_dir).map_err(io(&cfg.images_dir))?;
    let writer_progress = WorkDirSteps(progress);
    let written = write_parity_images(&cfg, set.parity_discs(), &todo, data, &writer_progress)
        .map_err(|e| {
            if crate::util::interrupt::requested() {
                // create's hint (--resume) does not apply: a verify run starts over.
                refused("interrupted by Ctrl+C; no parity image written".into())
            } else {
                refused(format!("writing the parity image: {e}"))
            }
        })?;
    let mut out = Vec::new();
    for (&p, img) in todo.iter().zip(&written) {
        check_manifest(set, img)?;
        let original = set.parity[p as usize - 1].path.as_deref();
        check_geometry(&surviving, img, readme_sectors(&cfg, p, n))?;
        if let Some(orig) = original {
            let agreed = check_against_damaged(orig, img)?;
            progress.detail(&format!(
                "parity disc {p}: {agreed} sector(s) of the damaged original that its own checksums call intact equal the rebuilt image's"
            ));
        }
        let name = original
            .and_then(|o| o.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| {
                let chain = super::file_name_safe(&set.name);
                parity_image_name(&chain, set.generation, p)
            });
        let to = out_dir.join(name);
        super::move_into_place(img, &to)?;
        out.push((p, to));
    }
    Ok(out)
}

/// The data images of a set without a manifest (none broken): intact ones as given, damaged
/// ones repaired by their own FEC into the work dir (a repaired copy is byte-identical).
pub(super) fn repaired_data_images(
    set: &ParitySet,
    opts: &RebuildOptions,
) -> Result<Vec<PathBuf>, ParityError> {
    let mut out = Vec::new();
    for m in &set.data {
        let Some(path) = &m.path else {
            return Err(refused(format!("data disc {} is missing", m.disc)));
        };
        if m.state == super::DiscState::Intact {
            out.push(path.clone());
            continue;
        }
        let fec_err = |e| ParityError::Fec(path.clone(), e);
        let src = FileSectorSource::open(path).map_err(io(path))?;
        let located = fec::locate(&src, None).map_err(fec_err)?;
        let scan = fec::scan(&src, &located, &|_| {}).map_err(fec_err)?;
        let to = opts.workdir.join(format!("disc{:04}.repaired", m.disc));
        let rep =
            fec::write_repaired_image(&src, &located, &scan, &to, opts.memory).map_err(fec_err)?;
        if !rep.is_complete() {
            return Err(refused(format!(
                "{}: its own FEC does not repair it whole",
                path.display()
            )));
        }
        if !trailer_intact(&to).map_err(io(&to))? {
            return Err(refused(format!(
                "{}: its last sectors, which its own FEC does not cover, are damaged, and no parity disc's manifest is at hand to restore them: its image, and a parity disc made from it, would not be bit-identical",
                path.display()
            )));
        }
        out.push(to);
    }
    Ok(out)
}

/// Whether the sectors after a data image's FEC region are as its writer left them: zeros up to
/// N−2, the disc header copy B equal to LBA 0's, and at N−1 the UDF anchor (tag id 2, its
/// location N−1, a valid tag checksum, zeros after the descriptor). A repaired copy takes these
/// from the damaged disc as they are; garbage there would change the image's SHA-256.
fn trailer_intact(path: &Path) -> std::io::Result<bool> {
    let f = File::open(path)?;
    let sector = |lba: u64| -> std::io::Result<Vec<u8>> {
        let mut s = vec![0u8; SECTOR_SIZE];
        f.read_exact_at(&mut s, lba * SS)?;
        Ok(s)
    };
    let first = sector(0)?;
    let Ok(h) = DiscHeader::decode(&first) else {
        return Ok(false);
    };
    let n = h.image_sectors;
    let Some(n2) = n.checked_sub(2) else {
        return Ok(false);
    };
    for lba in h.fec_lba.saturating_add(h.fec_sectors)..n2 {
        if sector(lba)?.iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
    if sector(n2)? != first {
        return Ok(false);
    }
    let a = sector(n2 + 1)?;
    let u16_at = |i: usize| u16::from_le_bytes([a[i], a[i + 1]]);
    let location = u32::from_le_bytes([a[12], a[13], a[14], a[15]]);
    let end = 16 + usize::from(u16_at(10));
    Ok(u16_at(0) == 2
        && u64::from(location) == n2 + 1
        && crate::image::udf_tag_checksum(&a) == a[4]
        && end <= SECTOR_SIZE
        && a[end..].iter().all(|&b| b == 0))
}

/// The create settings of the set, read from its data discs.
fn config_from_set(
    set: &ParitySet,
    data: &[PathBuf],
    opts: &RebuildOptions,
) -> Result<DiscSetConfig, ParityError> {
    let (first, last) = match (data.first(), data.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(refused("no data images".into())),
    };
    let src = FileSectorSource::open(first).map_err(io(first))?;
    let header = find_disc_header(&src)
        .ok_or_else(|| refused(format!("{}: disc header unreadable", first.display())))?;
    let catalog = catalog_of(last)?;
    let chain = catalog.chain;
    if chain.chain_id != header.chain_id || chain.created_unix != header.created_unix {
        return Err(refused(format!(
            "{}: its catalog is not of the set's chain and creation time",
            last.display()
        )));
    }
    let (format_md, binary) = fixed_files(&src, first)?;
    let fill_parity = fill_parity_of(&set.manifest.discs, header.capacity_sectors, &chain)?;
    Ok(DiscSetConfig {
        images_dir: opts.workdir.clone(),
        redundancy_pct: chain.redundancy_pct,
        chain,
        set_id: [0; 16], // not on a parity disc
        capacity_sectors: header.capacity_sectors,
        fill_parity,
        memory_budget: opts.memory,
        format_md,
        first_image_number: 1,
        carry_in: None,
        binary,
        parity_reserve_sectors: 0,
        parity_discs: set.parity_discs(),
        disc_map: Vec::new(),
    })
}

/// The catalog record on the last data disc (what a parity disc copies byte for byte).
fn catalog_of(last: &Path) -> Result<Catalog, ParityError> {
    let src = FileSectorSource::open(last).map_err(io(last))?;
    let no = || refused(format!("{}: its catalog is unreadable", last.display()));
    let h = find_disc_header(&src).ok_or_else(no)?;
    let s = h
        .sections
        .last()
        .filter(|s| s.catalog_bytes > 0)
        .ok_or_else(no)?;
    // A length from the disc: never more than the image holds.
    let fits = s.catalog_bytes <= src.sector_count().saturating_mul(SS);
    let len = usize::try_from(s.catalog_bytes)
        .ok()
        .filter(|_| fits)
        .ok_or_else(no)?;
    let bytes = crate::disc::reader::read_bytes(&src, s.catalog_lba * SS, len).map_err(io(last))?;
    decode_record::<Catalog>(records::CATALOG_MAGIC, "catalog", &bytes)
        .map(|(_, c)| c)
        .map_err(|_| no())
}

/// FORMAT.md and the binary (if carried) exactly as data disc 1 holds them: the parity discs
/// carry the same files.
fn fixed_files(
    src: &FileSectorSource,
    path: &Path,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ParityError> {
    let fs = crate::image::read_filesystem(src)
        .map_err(|e| refused(format!("{}: reading its filesystem: {e}", path.display())))?;
    let read = |name: &str| -> Result<Option<Vec<u8>>, ParityError> {
        let Some(f) = fs
            .files
            .iter()
            .find(|f| f.path.trim_start_matches('/') == name)
        else {
            return Ok(None);
        };
        let too_large = || {
            refused(format!(
                "{}: {name} claims more than the image holds",
                path.display()
            ))
        };
        let fits = f.size <= src.sector_count().saturating_mul(SS);
        let len = usize::try_from(f.size)
            .ok()
            .filter(|_| fits)
            .ok_or_else(too_large)?;
        crate::disc::reader::read_bytes(src, f.lba * SS, len)
            .map(Some)
            .map_err(io(path))
    };
    let format_md = read("FORMAT.md")?
        .ok_or_else(|| refused(format!("{}: holds no FORMAT.md", path.display())))?;
    Ok((format_md, read("bd-archive")?))
}

/// Whether the set was made with --fill-parity: each data disc's FEC geometry (the manifest's
/// header copy) is either create's plan at -r or its fill of the medium; the first disc where
/// the two plans differ decides.
fn fill_parity_of(
    discs: &[DataDiscRecord],
    capacity: u64,
    chain: &crate::format::catalog::ChainInfo,
) -> Result<bool, ParityError> {
    for rec in discs {
        let Ok(have) = fec::layout_of_meta_sector(&rec.fec_header) else {
            continue;
        };
        let d = rec.protected;
        let avail = capacity.saturating_sub(TRAILER_SECTORS + d);
        let fill = fec::plan_fill(d, avail).ok();
        let loss = fec::plan_for_loss(d, chain.redundancy_pct).ok();
        match (fill.as_ref() == Some(&have), loss.as_ref() == Some(&have)) {
            (true, false) => return Ok(true),
            (false, true) => return Ok(false),
            (true, true) => continue,
            (false, false) => {
                return Err(refused(format!(
                "data disc {}: its FEC geometry is neither -r {} nor --fill-parity of this medium",
                rec.disc, chain.redundancy_pct
            )))
            }
        }
    }
    Ok(false)
}

/// Sectors of parity disc p's README.txt.
fn readme_sectors(cfg: &DiscSetConfig, p: u32, n: u32) -> u64 {
    (parity_readme(&cfg.chain, p, n).len() as u64).div_ceil(SS)
}

/// A surviving parity disc q shows what the set's writer made: its README must be what this
/// writer makes for q. Returns each intact one's README sectors and header, to compare the
/// rebuilt image's geometry with.
fn check_surviving_parity(
    set: &ParitySet,
    cfg: &DiscSetConfig,
) -> Result<Vec<(u64, DiscHeader)>, ParityError> {
    let n = set.data_discs();
    let mut out = Vec::new();
    for m in set
        .parity
        .iter()
        .filter(|m| m.state == super::DiscState::Intact)
    {
        let Some(path) = &m.path else { continue };
        let q = m.disc - n;
        let want = parity_readme(&cfg.chain, q, n).into_bytes();
        let f = File::open(path).map_err(io(path))?;
        let mut have = vec![0u8; want.len()];
        f.read_exact_at(&mut have, FIRST_DATA_LBA * SS)
            .map_err(io(path))?;
        if have != want {
            return Err(refused(format!(
                "{}: its README.txt is not the one this bd-archive writes (the set was made by bd-archive {}): a rebuilt parity disc would not be bit-identical; use that version (its binary is on every disc)",
                path.display(),
                cfg.chain.tool_version
            )));
        }
        let src = FileSectorSource::open(path).map_err(io(path))?;
        if let Some(h) = find_disc_header(&src) {
            out.push(((want.len() as u64).div_ceil(SS), h));
        }
    }
    Ok(out)
}

/// An intact parity disc whose README takes as many sectors as the rebuilt one's has the same
/// layout: the same image size, FEC region and medium.
fn check_geometry(
    surviving: &[(u64, DiscHeader)],
    img: &Path,
    readme: u64,
) -> Result<(), ParityError> {
    let src = FileSectorSource::open(img).map_err(io(img))?;
    let h = find_disc_header(&src)
        .ok_or_else(|| refused("the rebuilt parity image's header is unreadable".into()))?;
    let key = |h: &DiscHeader| {
        (
            h.image_sectors,
            h.fec_lba,
            h.fec_sectors,
            h.capacity_sectors,
        )
    };
    for (_, other) in surviving.iter().filter(|(r, _)| *r == readme) {
        if key(other) != key(&h) {
            return Err(refused(format!(
                "the rebuilt parity image would have {} sectors (FEC region at {}, {} sectors), but the set's other parity disc has {} (at {}, {}): not writing an image that would differ from the original",
                h.image_sectors, h.fec_lba, h.fec_sectors, other.image_sectors, other.fec_lba, other.fec_sectors
            )));
        }
    }
    Ok(())
}

/// The rebuilt image's manifest must hold what the set's manifest holds (when the set has one
/// from a parity disc): the same data discs, sizes, hashes and column count.
fn check_manifest(set: &ParitySet, img: &Path) -> Result<(), ParityError> {
    if set.manifest_from_data {
        return Ok(()); // nothing to compare with: the rebuilt one is the only manifest
    }
    let src = FileSectorSource::open(img).map_err(io(img))?;
    let bad = |what: &str| refused(format!("the rebuilt parity image's {what}"));
    let h: DiscHeader = find_disc_header(&src).ok_or_else(|| bad("header is unreadable"))?;
    let s = h
        .parity()
        .ok_or_else(|| bad("header has no parity section"))?;
    let len = usize::try_from(s.manifest.1).map_err(|_| bad("manifest is too large"))?;
    let bytes = crate::disc::reader::read_bytes(&src, s.manifest.0 * SS, len).map_err(io(img))?;
    let m = ParityManifest::decode(&bytes).map_err(|_| bad("manifest is unreadable"))?;
    let want = &set.manifest;
    if m.discs != want.discs
        || m.columns != want.columns
        || m.parity_discs != want.parity_discs
        || m.chain_id != want.chain_id
        || m.generation != want.generation
    {
        return Err(bad(
            "manifest differs from the surviving parity disc's (the data discs are not the set's)",
        ));
    }
    Ok(())
}

/// A damaged original and its rebuilt image must agree wherever the original can be trusted:
/// every protected sector its own checksums call intact, and each disc-header copy that passes
/// its CRC. Refuses otherwise (the rebuild would not be the disc that was burned).
fn check_against_damaged(original: &Path, rebuilt: &Path) -> Result<u64, ParityError> {
    let orig = FileSectorSource::open(original).map_err(io(original))?;
    let new = FileSectorSource::open(rebuilt).map_err(io(rebuilt))?;
    let differs = |lba: u64| -> Result<bool, ParityError> {
        let mut a = vec![0u8; SECTOR_SIZE];
        let mut b = vec![0u8; SECTOR_SIZE];
        if orig.read_sectors(lba, &mut a).is_err() {
            return Ok(false); // unreadable: nothing to compare
        }
        new.read_sectors(lba, &mut b).map_err(io(rebuilt))?;
        Ok(a != b)
    };
    let refuse = |what: String| {
        refused(format!(
            "{}: {what} differs from the rebuilt image — not writing it (the set's discs do not reproduce this parity disc; keep the damaged disc)",
            original.display()
        ))
    };
    let new_header = find_disc_header(&new).ok_or_else(|| refuse("the header".into()))?;
    let total = new_header.image_sectors;
    for lba in [0, total.saturating_sub(2)] {
        let mut s = vec![0u8; SECTOR_SIZE];
        if orig.read_sectors(lba, &mut s).is_ok() && DiscHeader::decode(&s).is_ok() && differs(lba)?
        {
            return Err(refuse(format!("its disc header at LBA {lba}")));
        }
    }
    let Ok(located) = fec::locate(&orig, None) else {
        return Ok(0); // no checksum table left: only the headers could be compared
    };
    let mine = fec::locate(&new, None).map_err(|e| ParityError::Fec(rebuilt.into(), e))?;
    if located.layout != mine.layout {
        return Err(refuse("its FEC geometry".into()));
    }
    let scan =
        fec::scan(&orig, &located, &|_| {}).map_err(|e| ParityError::Fec(original.into(), e))?;
    let bad = scan.bad_protected_lbas();
    compare_intact(&orig, &new, located.region_lba, bad, rebuilt)
        .map_err(|e| e.map_or_else(|e| e, |lba| refuse(format!("sector {lba}"))))
}

/// Compares [0, end) of two images, skipping the LBAs in `skip`, a window at a time: the
/// sectors found equal, or Err(Ok(lba)) at the first intact sector that differs.
fn compare_intact(
    orig: &FileSectorSource,
    new: &FileSectorSource,
    end: u64,
    skip: &crate::util::sector_ranges::SectorRanges,
    rebuilt: &Path,
) -> Result<u64, Result<u64, ParityError>> {
    const W: u64 = 256;
    let mut equal = 0;
    let mut a = vec![0u8; (W * SS) as usize];
    let mut b = vec![0u8; (W * SS) as usize];
    let mut lba = 0;
    while lba < end {
        let k = W.min(end - lba);
        let len = (k * SS) as usize;
        new.read_sectors(lba, &mut b[..len])
            .map_err(|e| Err(ParityError::Io(rebuilt.into(), e)))?;
        if orig.read_sectors(lba, &mut a[..len]).is_ok() {
            for i in 0..k {
                let r = (i * SS) as usize..((i + 1) * SS) as usize;
                if skip.contains(lba + i) {
                    continue;
                }
                if a[r.clone()] != b[r] {
                    return Err(Ok(lba + i));
                }
                equal += 1;
            }
        }
        lba += k;
    }
    Ok(equal)
}

/// A manifest made from the data discs of a set whose parity discs are all lost or unreadable
/// (P recorded on the discs): every data disc 1..=n present and not broken, n from the disc
/// flagged last. SHA-256 fields are zero (the parity writer computes them anew).
pub(super) fn manifest_from_data(
    members: &[(PathBuf, DiscHeader)],
    parity_discs: u32,
    state_of: &dyn Fn(&Path) -> super::DiscState,
) -> Option<ParityManifest> {
    use crate::format::disc_header::SECTION_LAST_DISC;
    let data: Vec<&(PathBuf, DiscHeader)> =
        members.iter().filter(|(_, h)| !h.is_parity()).collect();
    let n = data
        .iter()
        .find(|(_, h)| h.sections[0].flags & SECTION_LAST_DISC != 0)?
        .1
        .sections[0]
        .disc;
    let mut discs = Vec::new();
    for d in 1..=n {
        let (path, h) = data.iter().find(|(_, h)| h.sections[0].disc == d)?;
        if state_of(path) == super::DiscState::Broken {
            return None;
        }
        let f = File::open(path).ok()?;
        let sector = |lba: u64| -> Option<Vec<u8>> {
            let mut s = vec![0u8; SECTOR_SIZE];
            f.read_exact_at(&mut s, lba.checked_mul(SS)?).ok()?;
            Some(s)
        };
        let n2 = h.image_sectors.checked_sub(2)?;
        discs.push(DataDiscRecord {
            disc: d,
            image_sectors: h.image_sectors,
            protected: h.fec_lba,
            fec_sectors: h.fec_sectors,
            sha256: [0; 32],
            fec_header: sector(h.fec_lba)?,
            sector_n2: sector(n2)?,
            sector_n1: sector(n2 + 1)?,
        });
    }
    Some(ParityManifest {
        chain_id: data[0].1.chain_id,
        generation: data[0].1.sections[0].generation,
        index: 1,
        parity_discs,
        columns: discs.iter().map(|d| d.protected).max().unwrap_or(0),
        discs,
    })
}

/// The parity writer's progress with its steps as detail: they name the work dir, and the
/// caller says where each image went.
struct WorkDirSteps<'a>(&'a dyn Progress);

impl Progress for WorkDirSteps<'_> {
    fn step(&self, msg: &str) {
        self.0.detail(msg);
    }
    fn result(&self, msg: &str) {
        self.0.detail(msg);
    }
    fn warn(&self, msg: &str) {
        self.0.warn(msg);
    }
    fn detail(&self, msg: &str) {
        self.0.detail(msg);
    }
    fn meter(
        &self,
        total: Option<u64>,
        what: &str,
    ) -> std::sync::Arc<dyn crate::util::progress::Meter> {
        self.0.meter(total, what)
    }
}
