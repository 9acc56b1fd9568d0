//! What the parity discs of a set claim, checked before a rebuild trusts any of it (FORMAT.md
//! §10.3): a parity disc may be damaged, crafted, or of another set, and a rebuild sizes working
//! copies, buffers and loops from its manifest.
//!
//! ```text
//! read_manifests(parity discs):  each manifest read (through the disc's own FEC if damaged),
//!                                its claims checked against the disc holding it; a damaged one
//!                                is skipped, an intact one breaking a rule refuses the set;
//!                                the copies of all parity discs must agree
//! check_one_set(discs, manifest): every data disc given is the disc its record describes
//!                                (disc header = the record's copy), one set id among all
//! ```
//! Bounds: n ≤ 4096 and n + P ≤ 65 536 (the format); L ≤ what lies between the parity disc's
//! fixed files and its manifest; per data disc N = D + F + 2 rounded up to a cluster, D and F as
//! its FEC header copy says, N ≤ the medium's capacity and ≤ 2 × the parity disc's own size (a
//! parity disc carries L ≥ D of every data disc with FEC at the same `-r`, so a genuine data disc
//! is never larger than its parity disc by more than a cluster; twice is the margin).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disc::reader::{decode_at, read_bytes, section_set_ids};
use crate::fec;
use crate::format::catalog::Catalog;
use crate::format::disc_header::{DiscHeader, ParitySection};
use crate::format::parity_manifest::{
    DataDiscRecord, ManifestError, ParityManifest, MAX_DATA_DISCS,
};
use crate::format::records;
use crate::image::FIRST_DATA_LBA;
use crate::restore::parity::ParityError;
use crate::restore::sources::{describe_set, shown_digits, SetId};
use crate::sector::{FileSectorSource, SectorSource, SECTOR_SIZE};

const SS: u64 = SECTOR_SIZE as u64;

/// A parity disc's manifest and catalog copy, its claims checked.
pub(crate) struct ManifestCopy {
    /// The parity disc.
    pub path: PathBuf,
    /// Its header section.
    pub section: ParitySection,
    /// Its manifest.
    pub manifest: ParityManifest,
    /// Its catalog copy, if readable.
    pub catalog: Option<Catalog>,
}

/// Why one parity disc's manifest is not used.
enum Fault {
    /// Unreadable even through its own FEC: skipped while another parity disc serves.
    Damaged(String),
    /// Readable, but breaking a rule or claiming more than the discs hold: refuses the set.
    Invalid(String),
}

/// The manifests of a set's parity discs (`parity`: path and header of each), checked, damaged
/// ones left out; at least one, and all agreeing.
pub(crate) fn read_manifests(
    parity: &[(PathBuf, DiscHeader)],
    memory: u64,
) -> Result<Vec<ManifestCopy>, ParityError> {
    let mut copies = Vec::new();
    let mut damaged = None;
    for (path, header) in parity {
        match read_manifest(path, header, memory) {
            Ok(c) => copies.push(c),
            Err(Fault::Invalid(why)) => return Err(ParityError::BadManifest(path.clone(), why)),
            Err(Fault::Damaged(why)) => {
                damaged.get_or_insert((path.clone(), why));
            }
        }
    }
    let Some(first) = copies.first() else {
        let (path, why) = damaged.unwrap_or_default();
        return Err(ParityError::NoManifest(path, why));
    };
    let same = |a: &ParityManifest, b: &ParityManifest| {
        (
            a.chain_id,
            a.generation,
            a.parity_discs,
            a.columns,
            &a.discs,
        ) == (
            b.chain_id,
            b.generation,
            b.parity_discs,
            b.columns,
            &b.discs,
        )
    };
    if let Some(other) = copies.iter().find(|c| !same(&c.manifest, &first.manifest)) {
        return Err(ParityError::NotOneSet(format!(
            "{} and {}: parity discs {} and {} of generation {} disagree about the data discs they cover: they are not of one set (or one was altered); verify with the parity discs of one create run, or without them",
            first.path.display(),
            other.path.display(),
            first.section.index,
            other.section.index,
            first.section.generation
        )));
    }
    Ok(copies)
}

/// One parity disc's manifest and catalog copy, read through its own FEC if damaged.
fn read_manifest(path: &Path, h: &DiscHeader, memory: u64) -> Result<ManifestCopy, Fault> {
    let s = h
        .parity()
        .ok_or_else(|| Fault::Damaged("not a parity disc".into()))?;
    let src: Arc<dyn SectorSource> = Arc::new(
        FileSectorSource::open(path).map_err(|e| Fault::Damaged(format!("cannot open: {e}")))?,
    );
    let real = src.sector_count();
    if s.manifest.1 > ParityManifest::encoded_len(MAX_DATA_DISCS as usize) as u64 {
        return Err(Fault::Invalid(format!(
            "its header claims a manifest of {} bytes, more than {MAX_DATA_DISCS} data discs need",
            s.manifest.1
        )));
    }
    let decode = |src: &dyn SectorSource| {
        let b = read_bytes(src, s.manifest.0.saturating_mul(SS), s.manifest.1 as usize)
            .map_err(|e| Fault::Damaged(format!("manifest unreadable: {e}")))?;
        ParityManifest::decode(&b).map_err(|e| match e {
            ManifestError::Damaged(_) => Fault::Damaged(e.to_string()),
            ManifestError::Invalid(_) => Fault::Invalid(e.to_string()),
        })
    };
    let (manifest, src) = match decode(src.as_ref()) {
        Ok(m) => (m, src),
        Err(Fault::Damaged(why)) => {
            let repaired = repaired(src, memory).ok_or(Fault::Damaged(why))?;
            (decode(repaired.as_ref())?, repaired)
        }
        Err(e) => return Err(e),
    };
    check_claims(&manifest, h, &s, real).map_err(Fault::Invalid)?;
    let name = path.display().to_string();
    let at = s.catalog;
    let catalog = decode_at::<Catalog>(&name, src.as_ref(), at, records::CATALOG_MAGIC, "catalog")
        .ok()
        .map(|(c, _, _)| c);
    Ok(ManifestCopy {
        path: path.to_path_buf(),
        section: s,
        manifest,
        catalog,
    })
}

/// The disc read through its own FEC (None if that FEC cannot be used).
fn repaired(src: Arc<dyn SectorSource>, memory: u64) -> Option<Arc<dyn SectorSource>> {
    let located = fec::locate(src.as_ref(), None).ok()?;
    let scan = fec::scan(src.as_ref(), &located, &|_| {}).ok()?;
    let r = fec::RepairedSource::new(src, &located, &scan, memory, None).ok()?;
    Some(Arc::new(r))
}

/// The manifest's claims against the parity disc holding it (`h`, `s`; `real` sectors in its
/// file): same chain, generation, p, P and n as its header; its L columns between the fixed
/// files and the manifest; every data disc laid out as its own FEC header copy and disc header
/// copy say, on the same medium, no larger than twice this disc.
fn check_claims(
    m: &ParityManifest,
    h: &DiscHeader,
    s: &ParitySection,
    real: u64,
) -> Result<(), String> {
    if m.chain_id != h.chain_id || m.generation != s.generation {
        return Err("its manifest is of another chain or generation than its disc header".into());
    }
    if (m.index, m.parity_discs, m.discs.len() as u32) != (s.index, s.parity_discs, s.data_discs) {
        return Err(format!(
            "its manifest says parity disc {} of {} over {} data discs, its disc header {} of {} over {}",
            m.index,
            m.parity_discs,
            m.discs.len(),
            s.index,
            s.parity_discs,
            s.data_discs
        ));
    }
    let columns_end = s.column_lba.checked_add(m.columns);
    if s.column_lba < FIRST_DATA_LBA || columns_end.is_none_or(|e| e > s.manifest.0) {
        return Err(format!(
            "its column parity of {} sectors at LBA {} does not lie before its manifest at LBA {}",
            m.columns, s.column_lba, s.manifest.0
        ));
    }
    for d in &m.discs {
        check_record(d, m, h, real).map_err(|why| format!("data disc {}: {why}", d.disc))?;
    }
    Ok(())
}

/// One data disc's record: sizes bounded by the medium and this parity disc, D and F as its FEC
/// header copy says, and a disc header copy of this chain, generation and disc.
fn check_record(
    d: &DataDiscRecord,
    m: &ParityManifest,
    h: &DiscHeader,
    real: u64,
) -> Result<(), String> {
    let n = d.image_sectors;
    if n > h.capacity_sectors || n > real.saturating_mul(2) {
        return Err(format!(
            "{n} sectors claimed, more than the medium's {} or twice this parity disc's {real}",
            h.capacity_sectors
        ));
    }
    let layout = fec::layout_of_meta_sector(&d.fec_header)
        .map_err(|e| format!("its FEC header copy is not usable: {e}"))?;
    if (layout.protected_sectors(), layout.region_sectors()) != (d.protected, d.fec_sectors) {
        return Err("its FEC header copy describes another protected or FEC region".into());
    }
    let copy = DiscHeader::decode(&d.sector_n2)
        .map_err(|e| format!("its disc header copy is not usable: {e}"))?;
    let section = copy.sections.first();
    let fits = copy.chain_id == m.chain_id
        && copy.sections.len() == 1
        && section.is_some_and(|x| x.generation == m.generation && x.disc == d.disc)
        && !copy.is_parity()
        && (copy.image_sectors, copy.fec_lba, copy.fec_sectors) == (n, d.protected, d.fec_sectors);
    if !fits {
        return Err("its disc header copy is of another disc or layout".into());
    }
    Ok(())
}

/// Every data disc given (`members`: path and header of each disc of the group) is the disc the
/// manifest describes, and all discs carry one set id.
pub(crate) fn check_one_set(
    members: &[(PathBuf, DiscHeader)],
    first: &ManifestCopy,
) -> Result<(), ParityError> {
    let m = &first.manifest;
    let foreign = |why: String| ParityError::NotOneSet(why);
    for (path, h) in members.iter().filter(|(_, h)| !h.is_parity()) {
        let disc = h.sections[0].disc;
        let rec = m.discs.get((disc as usize).wrapping_sub(1));
        let same = rec.is_some_and(|r| DiscHeader::decode(&r.sector_n2).ok().as_ref() == Some(h));
        if !same {
            return Err(foreign(format!(
                "{}: not data disc {disc} as the parity manifest of {} records it (another disc header): the discs given are not one set (or one was altered); verify them apart",
                path.display(),
                first.path.display()
            )));
        }
    }
    check_set_ids(members)
}

/// One set id among the discs (those whose records say none are not counted).
pub(crate) fn check_set_ids(members: &[(PathBuf, DiscHeader)]) -> Result<(), ParityError> {
    use std::collections::BTreeMap;
    let mut sets: BTreeMap<SetId, Vec<String>> = BTreeMap::new();
    for (path, h) in members {
        let Ok(src) = FileSectorSource::open(path) else {
            continue;
        };
        let id = section_set_ids(&src, h)
            .first()
            .copied()
            .flatten()
            .and_then(SetId::from_record);
        if let Some(id) = id {
            sets.entry(id).or_default().push(path.display().to_string());
        }
    }
    if sets.len() < 2 {
        return Ok(());
    }
    let digits = shown_digits(sets.keys());
    let described: Vec<String> = sets
        .iter()
        .map(|(id, paths)| format!("set {}: {}", describe_set(id, digits), paths.join(", ")))
        .collect();
    Err(ParityError::NotOneSet(format!(
        "these discs hold one generation from {} different sets (separate create runs): {}; a parity disc rebuilds only discs of its own set",
        sets.len(),
        described.join("; ")
    )))
}

/// cargo-fuzz entry point: `header` as a parity disc's header sector, `manifest` as its manifest,
/// the disc `real_sectors` long: decode both and check the claims as a rebuild does. Must never
/// panic, loop, or allocate beyond the input.
#[doc(hidden)]
pub fn fuzz_claims(header: &[u8], manifest: &[u8], real_sectors: u64) {
    let Ok(h) = DiscHeader::decode(header) else {
        return;
    };
    let Some(s) = h.parity() else {
        return;
    };
    if let Ok(m) = ParityManifest::decode(manifest) {
        assert_eq!(ParityManifest::decode(&m.encode()).as_ref(), Ok(&m));
        let _ = check_claims(&m, &h, &s, real_sectors);
    }
}
