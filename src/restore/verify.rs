//! `verify`: read every sector of a disc once, check it against the FEC checksum tables (data
//! and parity alike), and report its health: intact, damaged but repairable, not repairable; map
//! the damage to the disc's files and, when not repairable, to the archived entries lost.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::restore::VerifyError;
use serde::Serialize;

use crate::disc::reader::{find_disc_header, repaired_from_scan, Disc, RepairSettings};
use crate::fec;
use crate::format::catalog::{Catalog, ChunkRecord, Entry, PartRecord};
use crate::restore::sources::{section_sets, set_id, SetId};
use crate::sector::{FileSectorSource, SectorSource, SECTOR_SIZE};
use crate::util::escape::escape_path;
use crate::util::progress::Progress;
use crate::util::sector_ranges::SectorRanges;

/// Health of one image (or of a set: the worst of its discs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Every sector matches its checksum.
    Ok,
    /// Damaged, and the FEC can rebuild everything.
    Repairable,
    /// Damaged beyond what the FEC can rebuild.
    Broken,
}

/// What verify found on one image (also the `--json` schema).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Image path.
    pub image: String,
    /// Overall health.
    pub health: Health,
    /// Chain name, generation and disc number from the disc header (if readable).
    pub chain: Option<String>,
    /// Generation.
    pub generation: Option<u32>,
    /// Disc number within the generation.
    pub disc: Option<u32>,
    /// For a parity disc (FORMAT.md §10): its number p among the generation's parity discs
    /// (`disc` is then its number n + p in the set).
    pub parity_disc: Option<u32>,
    /// Which set of its generation the disc belongs to (the id `extract --set` takes); two ids
    /// for one generation mean two different create runs.
    pub set: Option<SetId>,
    /// Every generation the disc holds (a `--pack-with` disc holds several), with its disc
    /// number and set: the set check of several images looks at all of them.
    pub sections: Vec<SectionSet>,
    /// Sectors checked.
    pub sectors: u64,
    /// Protected sectors (data, filesystem, index, catalog) lost or damaged.
    pub lost_data_sectors: u64,
    /// Parity sectors lost or damaged.
    pub lost_parity_sectors: u64,
    /// Sectors the FEC region's geometry places past the end of the image (cut short, or a
    /// forged header claiming more than the file holds): never read, counted lost above.
    pub missing_sectors: u64,
    /// Parity shards per stripe (the most losses one stripe can take).
    pub parity_per_stripe: u32,
    /// Most losses in any one stripe.
    pub worst_stripe_loss: u32,
    /// Files on the disc with damaged sectors (disc file names).
    pub affected_disc_files: Vec<String>,
    /// Archived entries that cannot be restored from this disc (only when broken).
    pub lost_entries: Vec<String>,
    /// Path of the repaired copy written with --repair.
    pub repaired_to: Option<String>,
    /// For a disc directory (a disc's files copied off): what could be checked there. The
    /// sector counts above do not apply to it (a copy has no filesystem sectors to read).
    pub directory: Option<DirectoryCheck>,
    /// The disc's chain id from its header (matched against a `--catalog`; not in the JSON).
    #[serde(skip)]
    pub chain_id: Option<[u8; 16]>,
    /// Data sectors the FEC cannot rebuild (mapped through a catalog when the disc's own index
    /// is destroyed).
    #[serde(skip)]
    pub unrepaired_lbas: SectorRanges,
    /// The disc's index could not be read (so `lost_entries` needs the generation's catalog).
    #[serde(skip)]
    pub index_destroyed: bool,
}

/// One generation section of a disc and the set it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct SectionSet {
    /// Generation.
    pub generation: u32,
    /// Disc number within that generation.
    pub disc: u32,
    /// Its set (None when its index and catalog cannot be read).
    pub set: Option<SetId>,
}

/// The hint put in `lost_entries` when a broken disc's index is destroyed and no catalog is given.
pub const INDEX_DESTROYED_HINT: &str =
    "(the disc index is destroyed: pass the generation's catalog with --catalog CAT to list the lost files)";

/// Escaped paths of the catalog's entries stored on the unrepairable sectors `unrepaired` of
/// disc `disc`. The disc's chunks are one slice of the catalog's chunk table
/// (disc numbers never decrease along it, FORMAT §5), found by binary search, so the cost is
/// (chunks of the disc + entries) × log.
pub fn lost_entries_from_catalog(
    cat: &Catalog,
    disc: u32,
    unrepaired: &SectorRanges,
) -> Vec<String> {
    let first = cat.chunks.partition_point(|c| c.disc < disc);
    let end = first + cat.chunks[first..].partition_point(|c| c.disc <= disc);
    let parts = parts_by_number(&cat.parts);
    let lost = cat.chunks[first..end]
        .iter()
        .filter(|c| chunk_is_lost(c, &parts, unrepaired))
        .map(|c| {
            (
                c.tar_offset,
                c.tar_offset.saturating_add(u64::from(c.tar_len)),
            )
        })
        .collect();
    entries_touching(cat.entries.iter(), lost)
}

/// The entries of a later generation's catalog whose bytes lie on disc `disc` of generation
/// `generation`, from its disc map (FORMAT §6.1); `None` when the map does not describe that
/// generation. The map has no part table, so which of them the damage hits is not known here:
/// all are named (that generation's own catalog narrows them to the lost ones).
pub fn entries_on_disc_from_map(cat: &Catalog, generation: u32, disc: u32) -> Option<Vec<String>> {
    let (map, _) = crate::format::catalog::DiscMap::checked(&cat.disc_map, cat.chain.generation);
    if !map.has(generation) {
        return None;
    }
    Some(
        cat.entries
            .iter()
            .filter(|e| e.data.generation == generation && map.discs_of(e).contains(&disc))
            .map(|e| escape_path(&e.path))
            .collect(),
    )
}

/// Whether any sector of the chunk (its 80-byte header frame and stored bytes) is unrepairable.
fn chunk_is_lost(
    c: &ChunkRecord,
    parts: &HashMap<u32, &PartRecord>,
    unrepaired: &SectorRanges,
) -> bool {
    let Some(p) = parts.get(&c.part) else {
        return false;
    };
    let start = p
        .lba
        .saturating_mul(SECTOR_SIZE as u64)
        .saturating_add(c.part_offset);
    let a = start / SECTOR_SIZE as u64;
    let b = start
        .saturating_add(80 + u64::from(c.stored_len))
        .div_ceil(SECTOR_SIZE as u64);
    unrepaired.overlaps(a, b)
}

/// What `verify` checked on a disc directory, and what it could not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirectoryCheck {
    /// Data chunks whose stored bytes were checked against their CRC32C from the index.
    pub chunks_checked: u64,
    /// Of those, chunks that failed the check.
    pub chunks_damaged: u64,
    /// Of the damaged ones, chunks rebuilt through the disc's FEC file.
    pub chunks_rebuilt: u64,
    /// What was not checked, one line each.
    pub not_checked: Vec<String>,
}

/// Checks one image and optionally writes a repaired copy (never modifying the image).
/// The report, not an error, carries the verdict: a broken disc is a result of `verify`, and
/// the caller turns [`Health`] into the exit code.
pub fn verify_image(
    img: &Path,
    repair_to: Option<RepairTarget<'_>>,
    memory: u64,
    progress: &dyn Progress,
) -> Result<VerifyReport, VerifyError> {
    let src: Arc<dyn SectorSource> =
        Arc::new(FileSectorSource::open(img).map_err(|e| VerifyError::Open(img.to_path_buf(), e))?);
    verify_source(
        &img.display().to_string(),
        src,
        repair_to,
        memory,
        progress,
        None,
    )
}

/// Called after a scan that found unrepairable stripes: re-reads what it can (a drive retrying
/// its unreadable sectors) and says whether anything changed, so the scan is worth repeating.
pub type RetryHook<'a> = &'a dyn Fn(&fec::FecScan) -> bool;

/// Where `verify --repair` writes a repaired copy. An intact image is copied only when
/// `copy_intact` (one named output file, a disc read from a drive); into a directory of a
/// set only what needed repair is written, so a shelf of 25 GB images is not duplicated.
#[derive(Clone, Copy, Debug)]
pub struct RepairTarget<'a> {
    /// The repaired image's path.
    pub path: &'a Path,
    /// Whether an intact image is written too.
    pub copy_intact: bool,
}

/// Checks any sector source (image file, disc in a drive) and optionally writes a repaired copy.
/// Public for the drive path: the caller owns the drive (rescue copy, map, retries through
/// `retry`), this only reads sectors, so one check serves images and discs alike.
pub fn verify_source(
    name: &str,
    src: Arc<dyn SectorSource>,
    repair_to: Option<RepairTarget<'_>>,
    memory: u64,
    progress: &dyn Progress,
    retry: Option<RetryHook<'_>>,
) -> Result<VerifyReport, VerifyError> {
    let header = find_disc_header(src.as_ref());
    let sections: Vec<SectionSet> = header
        .iter()
        .flat_map(|h| {
            h.sections
                .iter()
                .zip(section_sets(src.as_ref(), h))
                .map(|(s, set)| SectionSet {
                    generation: s.generation,
                    disc: s.disc,
                    set,
                })
        })
        .collect();
    let located = fec::locate(src.as_ref(), header.as_ref().map(|h| h.fec_lba))
        .map_err(|e| VerifyError::NoFec(name.to_string(), e))?;
    let total = located.layout.protected_sectors() + located.layout.region_sectors();
    let run_scan = || -> Result<fec::FecScan, VerifyError> {
        let pb = progress.meter(Some(total * SECTOR_SIZE as u64), "verifying");
        let scan = fec::scan(src.as_ref(), &located, &|n| {
            pb.set_position(n * SECTOR_SIZE as u64)
        })?;
        pb.finish();
        Ok(scan)
    };
    let mut scan = run_scan()?;
    if let Some(retry) = retry {
        if !scan.is_repairable() && retry(&scan) {
            scan = run_scan()?;
        }
    }
    let health = if scan.is_clean() {
        Health::Ok
    } else if scan.is_repairable() {
        Health::Repairable
    } else {
        Health::Broken
    };
    let mut report = VerifyReport {
        image: name.to_string(),
        health,
        chain: header.as_ref().map(|h| h.name.clone()),
        generation: header.as_ref().map(|h| h.sections[0].generation),
        disc: header.as_ref().map(|h| h.sections[0].disc),
        parity_disc: header.as_ref().and_then(|h| h.parity()).map(|p| p.index),
        set: sections.first().and_then(|s| s.set),
        sections,
        sectors: src.sector_count(),
        lost_data_sectors: scan.lost_data_sectors(),
        lost_parity_sectors: scan.lost_parity_sectors(),
        missing_sectors: scan.missing_sectors(),
        parity_per_stripe: scan.parity_per_stripe(),
        worst_stripe_loss: scan.max_stripe_loss(),
        affected_disc_files: Vec::new(),
        lost_entries: Vec::new(),
        repaired_to: None,
        directory: None,
        chain_id: header.as_ref().map(|h| h.chain_id),
        unrepaired_lbas: SectorRanges::new(),
        index_destroyed: false,
    };
    if scan.missing_sectors() > 0 {
        progress.warn(&format!(
            "{name}: {} sector(s) of its FEC region lie past its end ({} sectors): the image is \
             cut short, or its FEC header claims more than the file holds; counted as lost",
            scan.missing_sectors(),
            src.sector_count()
        ));
    }
    if health != Health::Ok {
        describe_damage(name, &src, &scan, &located, memory, &mut report);
    }
    if let Some(out) = repair_to
        .filter(|t| t.copy_intact || health != Health::Ok)
        .map(|t| t.path)
    {
        if out.exists() {
            return Err(VerifyError::RepairTargetExists(out.to_path_buf()));
        }
        let rep = fec::write_repaired_image(src.as_ref(), &located, &scan, out, memory)?;
        report.repaired_to = Some(out.display().to_string());
        if !rep.is_complete() {
            progress.warn(&format!(
                "{}: written, but {} sector(s) could not be rebuilt",
                out.display(),
                rep.unrepaired_lbas.len()
            ));
        }
    }
    Ok(report)
}

/// Maps damaged sectors to the disc's files and, when not repairable, to the archived entries lost.
fn describe_damage(
    name: &str,
    src: &Arc<dyn SectorSource>,
    scan: &fec::FecScan,
    located: &fec::LocatedFec,
    memory: u64,
    report: &mut VerifyReport,
) {
    let settings = RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    };
    // The FEC repair is made from the scan verify already has, at most once, and only when
    // needed: the disc is never scanned a second time.
    let repaired = std::cell::OnceCell::new();
    let repaired_view = || {
        repaired
            .get_or_init(|| repaired_from_scan(Arc::clone(src), located, scan, &settings).ok())
            .clone()
    };
    let files = match crate::image::read_filesystem(src.as_ref()) {
        Ok(fs) => fs.files,
        Err(_) => repaired_view()
            .and_then(|(view, _)| crate::image::read_filesystem(view.as_ref()).ok())
            .map(|fs| fs.files)
            .unwrap_or_default(),
    };
    let bad = scan.bad_protected_lbas();
    for f in &files {
        let end = f.lba.saturating_add(f.size.div_ceil(SECTOR_SIZE as u64));
        if bad.overlaps(f.lba, end) {
            report.affected_disc_files.push(f.path.clone());
        }
    }
    if report.health != Health::Broken {
        return;
    }
    // Entries whose chunks lie on unrepairable sectors.
    let disc = match repaired_view() {
        Some(view) => Disc::open_repaired(name.to_string(), src.as_ref(), view, &settings),
        // The repair failed: the disc's own attempt says why and still reads what is intact.
        None => Disc::open(name.to_string(), Arc::clone(src), &settings).inspect(|d| {
            let _ = d.ensure_repaired();
        }),
    };
    let Ok(disc) = disc else {
        return;
    };
    let unrepaired = scan.unrepairable_protected();
    let Some(idx) = &disc.index else {
        report.index_destroyed = true;
        report.lost_entries.push(INDEX_DESTROYED_HINT.into());
        report.unrepaired_lbas = unrepaired;
        return;
    };
    let parts = parts_by_number(&idx.parts);
    let lost_chunks = idx
        .chunks
        .iter()
        .filter(|c| chunk_is_lost(c, &parts, &unrepaired))
        .map(|c| {
            (
                c.tar_offset,
                c.tar_offset.saturating_add(u64::from(c.tar_len)),
            )
        })
        .collect();
    report
        .lost_entries
        .extend(entries_touching(disc.index_entries(), lost_chunks));
}

/// The parts of an index by number (one lookup per chunk instead of a scan of the parts).
fn parts_by_number(parts: &[PartRecord]) -> HashMap<u32, &PartRecord> {
    parts.iter().map(|p| (p.part, p)).collect()
}

/// Escaped paths of the entries whose tar record overlaps one of the `lost` stream ranges:
/// the ranges are sorted and merged once, then each entry is one binary search, so the cost
/// is (entries + ranges) × log, never entries × ranges.
fn entries_touching<'e>(
    entries: impl Iterator<Item = &'e Entry>,
    mut lost: Vec<(u64, u64)>,
) -> Vec<String> {
    lost.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(lost.len());
    for (a, b) in lost {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut out = Vec::new();
    if merged.is_empty() {
        return out;
    }
    for e in entries {
        let x = e.data.header_offset;
        let y = e
            .data
            .content_offset
            .saturating_add(e.size)
            .max(x.saturating_add(1));
        let i = merged.partition_point(|r| r.1 <= x);
        if merged.get(i).is_some_and(|r| r.0 < y) {
            out.push(escape_path(&e.path));
        }
    }
    out
}

/// Checks a disc given as a directory (mounted disc or copy): every chunk of every data part is
/// read and checked; damage is repaired through the FEC over the reassembled image if possible.
pub fn verify_disc_dir(dir: &Path, memory: u64) -> Result<VerifyReport, VerifyError> {
    let settings = RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    };
    let discs = Disc::open_all(dir, &settings)?;
    let first = &discs[0];
    let mut report = disc_dir_report(dir, &discs);
    let mut check = DirectoryCheck {
        not_checked: vec![
            "files' SHA-256 sums (extract checks every one)".into(),
            "sectors outside the disc's files (a copy has no filesystem to read)".into(),
        ],
        ..DirectoryCheck::default()
    };
    let repaired_on_open = first.repair_summary().is_some();
    let bad = check_chunks(&discs, &mut report, &mut check);
    check.chunks_damaged = bad.len() as u64;
    if bad.is_empty() && !repaired_on_open {
        report.directory = Some(check);
        return Ok(report);
    }
    if report.health == Health::Ok {
        report.health = Health::Repairable;
    }
    rebuild_chunks(&discs, bad, &mut report, &mut check);
    report.affected_disc_files.dedup();
    report.lost_entries.dedup();
    report.directory = Some(check);
    Ok(report)
}

/// The report of a disc directory before anything is checked: the identity of its first
/// section (and the sets of all), intact.
fn disc_dir_report(dir: &Path, discs: &[Disc]) -> VerifyReport {
    let first = &discs[0];
    VerifyReport {
        image: dir.display().to_string(),
        health: Health::Ok,
        chain: Some(first.header.name.clone()),
        generation: Some(first.generation()),
        disc: Some(first.number()),
        parity_disc: None,
        set: set_id(first),
        sections: discs
            .iter()
            .map(|d| SectionSet {
                generation: d.generation(),
                disc: d.number(),
                set: set_id(d),
            })
            .collect(),
        sectors: first.header.image_sectors,
        lost_data_sectors: 0,
        lost_parity_sectors: 0,
        missing_sectors: 0,
        parity_per_stripe: 0,
        worst_stripe_loss: 0,
        affected_disc_files: Vec::new(),
        lost_entries: Vec::new(),
        repaired_to: None,
        directory: None,
        chain_id: None,
        unrepaired_lbas: SectorRanges::new(),
        index_destroyed: false,
    }
}

/// Reads every chunk of every data part once, checking it against its checksum; returns the
/// damaged ones (disc, chunk index in its index). A disc without a readable index is broken.
fn check_chunks<'d>(
    discs: &'d [Disc],
    report: &mut VerifyReport,
    check: &mut DirectoryCheck,
) -> Vec<(&'d Disc, usize)> {
    let mut bad = Vec::new();
    for d in discs {
        let Some(idx) = &d.index else {
            report.health = Health::Broken;
            report
                .affected_disc_files
                .push(format!("generation {} index", d.generation()));
            check.not_checked.push(format!(
                "the data of generation {}: its index is unreadable (the chunk checksums are in it)",
                d.generation()
            ));
            continue;
        };
        let parts = parts_by_number(&idx.parts);
        for (i, c) in idx.chunks.iter().enumerate() {
            let Some(p) = parts.get(&c.part) else {
                continue;
            };
            check.chunks_checked += 1;
            let mut out = Vec::new();
            if d.read_chunk_once(idx.disc.first_chunk + i as u64, c, p.lba, &mut out)
                .is_err()
            {
                bad.push((d, i));
            }
        }
    }
    bad
}

/// Rebuilds the damaged chunks through the FEC where possible; the others make the disc broken
/// and their entries lost.
fn rebuild_chunks(
    discs: &[Disc],
    bad: Vec<(&Disc, usize)>,
    report: &mut VerifyReport,
    check: &mut DirectoryCheck,
) {
    // Lost stream ranges per disc (by its position in `discs`), matched to entries once.
    let mut lost: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    let position = |d: &Disc| discs.iter().position(|x| std::ptr::eq(x, d)).unwrap_or(0);
    let mut part_maps: HashMap<usize, HashMap<u32, &PartRecord>> = HashMap::new();
    for (d, i) in bad {
        let idx = d.index.as_ref().expect("chunks come from an index");
        let c = &idx.chunks[i];
        let k = position(d);
        let parts = part_maps
            .entry(k)
            .or_insert_with(|| parts_by_number(&idx.parts));
        let p = *parts.get(&c.part).expect("checked above");
        report.affected_disc_files.push(format!(
            "{}-gen{}.{:04}.tar.zst",
            d.header.name,
            d.generation(),
            p.part
        ));
        let mut out = Vec::new();
        let rebuilt = d
            .read_chunk(idx.disc.first_chunk + i as u64, c, p.lba, &mut out)
            .is_ok();
        check.chunks_rebuilt += u64::from(rebuilt);
        if !rebuilt {
            report.health = Health::Broken;
            let range = (
                c.tar_offset,
                c.tar_offset.saturating_add(u64::from(c.tar_len)),
            );
            lost.entry(k).or_default().push(range);
        }
    }
    let mut lost: Vec<_> = lost.into_iter().collect();
    lost.sort_by_key(|(k, _)| *k);
    for (k, ranges) in lost {
        report
            .lost_entries
            .extend(entries_touching(discs[k].index_entries(), ranges));
    }
}
