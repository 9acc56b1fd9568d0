//! Sets with parity discs (FORMAT.md §10): which discs of a generation are at hand, in what state,
//! and the rebuild of data discs that are missing or damaged beyond their own FEC.
//!
//! ```text
//! find_parity_sets(images):  group the images by (chain, generation, set); a group with a parity
//!                            disc is a parity set; its manifest (from any parity disc) gives n, P
//!                            and each data disc's N, D, F, FEC header, trailer and SHA-256
//! rebuild(set):
//!     members = the n data discs then the P parity discs; an intact one is read in place,
//!     every other one gets a working copy in WORKDIR (a missing one: a sparse file)
//!     unknown(member) = its column sectors that fail its checksum table after its own FEC
//!                       (all of them when it is missing), kept as sorted LBA ranges
//!     repeat until no progress:
//!         own FEC of each member with unknown sectors (scan + repair of its working copy)
//!         column code: sweep the columns; where a run of columns has 1..=P unknown shards,
//!                      decode it window by window and write the rebuilt sectors — reading,
//!                      decoding and writing overlapped (column_sweep.rs)
//!     each data disc with nothing unknown: FEC region re-encoded from the manifest's header
//!     copy, sectors N−2 and N−1 from the manifest, SHA-256 checked — only then is it rebuilt
//!     (a missing disc's protected region is hashed as the sweep writes it; otherwise while its
//!     FEC is re-encoded)
//! ```
//! Memory: two sets of (n + P) windows of w sectors (w from the budget, counting the codec's
//! work) plus one disc's FEC repair at a time; never an image in RAM. The library API is shared by `verify --repair` and extract.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::disc::reader::find_disc_header;
use crate::fec::{self, column::ColumnCodec, FecError};
use crate::format::catalog::Catalog;
use crate::format::disc_header::{DiscHeader, ParitySection};
use crate::format::parity_manifest::{DataDiscRecord, ParityManifest};
use crate::restore::parity_claims::{check_one_set, check_set_ids, read_manifests};
use crate::sector::{FileSectorSource, SECTOR_SIZE};
use crate::util::interrupt::{self, Interrupted};
use crate::util::progress::Progress;
use crate::util::sector_ranges::SectorRanges;

use super::column_sweep::{column_step, write_columns, WrittenPrefix};

mod parity_image;

const SS: u64 = SECTOR_SIZE as u64;

/// Errors of the set rebuild.
#[derive(Debug, Error)]
pub enum ParityError {
    /// I/O on an image or a working file.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The FEC of a disc could not be used.
    #[error("{0}: {1}")]
    Fec(PathBuf, FecError),
    /// No parity disc's manifest could be read (the first such disc, and why).
    #[error("{path}: its parity manifest is unreadable ({why}); the set cannot be judged without it", path = .0.display(), why = .1)]
    NoManifest(PathBuf, String),
    /// A parity disc's manifest breaks a rule or claims more than the discs can hold.
    #[error("{path}: parity disc refused: {why}; it is crafted, damaged or not of this set — verify and extract without it", path = .0.display(), why = .1)]
    BadManifest(PathBuf, String),
    /// The discs given are not one set (the message names them).
    #[error("{0}")]
    NotOneSet(String),
    /// A data disc rebuilt whole does not match the SHA-256 the manifest records for it.
    #[error("data disc {disc} rebuilt from the parity discs does not match the SHA-256 the parity manifest of {path} records (nothing kept): the discs given are not one set, or one was altered", disc = .0, path = .1.display())]
    NotAsRecorded(u32, PathBuf),
    /// Stopped by Ctrl+C (the working copies are removed).
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// A lost parity disc's image is not written: it would not be bit-identical (why).
    #[error("{0}")]
    ParityRefused(String),
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ParityError + '_ {
    move |e| ParityError::Io(path.to_path_buf(), e)
}

/// What state a disc of a set is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscState {
    /// Every sector intact.
    Intact,
    /// Damaged; its own FEC repairs it.
    Repairable,
    /// Damaged beyond its own FEC.
    Broken,
    /// Not among the discs given.
    Missing,
}

/// One disc of a parity set.
#[derive(Clone, Debug)]
pub struct SetMember {
    /// Data disc d (1..=n) or parity disc p (n+1..=n+P) of the set.
    pub disc: u32,
    /// The image, if given.
    pub path: Option<PathBuf>,
    /// Its state (from the caller's verify, or `Missing`).
    pub state: DiscState,
}

/// A generation whose images include at least one parity disc.
#[derive(Clone, Debug)]
pub struct ParitySet {
    /// Chain name.
    pub name: String,
    /// Generation.
    pub generation: u32,
    /// The manifest (from the first readable parity disc; all readable ones agree).
    pub manifest: ParityManifest,
    /// The parity disc it was read from (named when a rebuild does not match it).
    pub manifest_from: PathBuf,
    /// Data discs 1..=n.
    pub data: Vec<SetMember>,
    /// Parity discs 1..=P.
    pub parity: Vec<SetMember>,
    /// Each parity disc's section (where its column parity lies), by parity index.
    sections: BTreeMap<u32, ParitySection>,
    /// The generation's catalog (the copy on a parity disc), if readable.
    pub catalog: Option<Catalog>,
    /// No parity disc's manifest was readable: `manifest` was made from the data discs (all
    /// present, none broken), without their SHA-256 — enough to rebuild the parity discs (from
    /// the data discs, damaged ones repaired by their own FEC), never to rebuild a data disc.
    pub manifest_from_data: bool,
}

impl ParitySet {
    /// n.
    pub fn data_discs(&self) -> u32 {
        self.data.len() as u32
    }
    /// P.
    pub fn parity_discs(&self) -> u32 {
        self.parity.len() as u32
    }
    /// Discs that need the column code: missing or broken.
    pub fn lost(&self) -> impl Iterator<Item = &SetMember> {
        self.data
            .iter()
            .chain(&self.parity)
            .filter(|m| m.state >= DiscState::Broken)
    }
}

/// Groups `images` (with the state verify found for each, `state_of`) into parity sets: every
/// (chain, generation, set) that has a parity disc among them or whose data discs record parity
/// discs (FORMAT.md §2). Images that are not ours, or of a generation without parity discs, are
/// left to the caller; so is a set whose manifest is on no readable parity disc while a data
/// disc is missing or broken (then nothing can be rebuilt).
pub fn find_parity_sets(
    images: &[PathBuf],
    state_of: &dyn Fn(&Path) -> DiscState,
    memory: u64,
) -> Result<Vec<ParitySet>, ParityError> {
    type Key = ([u8; 16], u32, i64);
    let mut groups: BTreeMap<Key, Vec<(PathBuf, DiscHeader)>> = BTreeMap::new();
    for p in images.iter().filter(|p| !p.is_dir()) {
        let Ok(src) = FileSectorSource::open(p) else {
            continue;
        };
        let Some(h) = find_disc_header(&src) else {
            continue;
        };
        if h.sections.len() != 1 {
            continue; // a packed disc carries no parity set (refused at create)
        }
        let key = (h.chain_id, h.sections[0].generation, h.created_unix);
        groups.entry(key).or_default().push((p.clone(), h));
    }
    let mut sets = Vec::new();
    for ((_, generation, _), members) in groups {
        let parity_discs: Vec<(PathBuf, DiscHeader)> = members
            .iter()
            .filter(|(_, h)| h.is_parity())
            .cloned()
            .collect();
        // P as any disc records it: a set whose parity discs are all lost is still a set.
        let recorded = members
            .iter()
            .map(|(_, h)| h.sections[0].set_parity_discs());
        let parity_count = recorded.max().unwrap_or(0);
        if parity_count == 0 {
            continue;
        }
        // Nothing a parity disc claims is used before it is checked (parity_claims).
        let copies = match parity_discs.is_empty() {
            true => Err(ParityError::NoManifest(PathBuf::new(), String::new())),
            false => read_manifests(&parity_discs, memory),
        };
        let (manifest, manifest_from, catalog, manifest_from_data) = match copies {
            Ok(copies) => {
                check_one_set(&members, &copies[0])?;
                let c = &copies[0];
                let catalog = copies.iter().find_map(|c| c.catalog.clone());
                (c.manifest.clone(), c.path.clone(), catalog, false)
            }
            Err(ParityError::NoManifest(..)) => {
                match parity_image::manifest_from_data(&members, parity_count, state_of) {
                    Some(m) => {
                        // P here is what the data discs record: held to the manifest's rules.
                        let from = members[0].0.clone();
                        ParityManifest::decode(&m.encode())
                            .map_err(|e| ParityError::BadManifest(from.clone(), e.to_string()))?;
                        check_set_ids(&members)?;
                        (m, from, None, true)
                    }
                    None => continue, // judged disc by disc: no manifest, a data disc lost
                }
            }
            Err(e) => return Err(e),
        };
        let sections: BTreeMap<u32, ParitySection> = parity_discs
            .iter()
            .filter_map(|(_, h)| h.parity())
            .map(|s| (s.index, s))
            .collect();
        let n = manifest.discs.len() as u32;
        let member = |disc: u32, path: Option<PathBuf>| SetMember {
            disc,
            state: path.as_deref().map_or(DiscState::Missing, state_of),
            path,
        };
        let data_path = |d: u32| {
            members
                .iter()
                .find(|(_, h)| !h.is_parity() && h.sections[0].disc == d)
                .map(|(p, _)| p.clone())
        };
        let data = (1..=n).map(|d| member(d, data_path(d))).collect();
        let parity_path = |q: u32| {
            parity_discs
                .iter()
                .find(|(_, h)| h.parity().is_some_and(|s| s.index == q))
                .map(|(p, _)| p.clone())
        };
        let parity_count = manifest.parity_discs;
        if parity_count == 0 {
            continue;
        }
        let parity_members = (1..=parity_count)
            .map(|q| member(n + q, parity_path(q)))
            .collect();
        sets.push(ParitySet {
            name: members[0].1.name.clone(),
            generation,
            manifest,
            manifest_from,
            data,
            parity: parity_members,
            sections,
            catalog,
            manifest_from_data,
        });
    }
    Ok(sets)
}

/// Where rebuild works and what it keeps.
#[derive(Clone, Debug)]
pub struct RebuildOptions {
    /// Working copies go here (created if missing; removed afterwards unless kept in `out_dir`).
    pub workdir: PathBuf,
    /// Rebuilt data images are moved here (named by `image_name`); None: only checked.
    pub out_dir: Option<PathBuf>,
    /// Memory budget in bytes.
    pub memory: u64,
}

/// What a rebuild achieved.
#[derive(Clone, Debug, Default)]
pub struct RebuildReport {
    /// Data discs rebuilt bit-identical (SHA-256 of the manifest), with where they were written.
    pub rebuilt: Vec<(u32, Option<PathBuf>)>,
    /// Data discs that could not be rebuilt, with their protected LBAs still unknown.
    pub lost: Vec<(u32, SectorRanges)>,
    /// Of those, the ones kept as partial images ([`rebuild_keeping_partial`]), with their path.
    pub partial: Vec<(u32, PathBuf)>,
    /// Rounds of (own FEC, column code) run.
    pub rounds: u32,
    /// Parity discs missing or broken whose images were rebuilt into `out_dir` ([`rebuild`]
    /// only, once every data disc is whole): (p, path).
    pub parity_rebuilt: Vec<(u32, PathBuf)>,
    /// Why the lost parity discs' images were not written (they would not be bit-identical).
    pub parity_refused: Option<String>,
}

/// Sorted, disjoint half-open ranges of column numbers.
pub(super) type Ranges = Vec<(u64, u64)>;

/// One disc of the set as the rebuild sees it.
pub(super) struct Member {
    /// Read from here (the original when intact, else the working copy).
    pub file: Option<File>,
    pub path: PathBuf,
    /// LBA of column 0 (0 for data discs; the column-parity LBA for parity discs).
    pub offset: u64,
    /// Columns this disc contributes (D for a data disc, L for a parity disc).
    pub columns: u64,
    /// Columns not known yet.
    pub unknown: Ranges,
    /// Whether this disc's working copy is ours (to rebuild/remove).
    working: bool,
    /// Whether its own FEC is worth running (a present, damaged disc).
    own_fec: bool,
    /// The SHA-256 of its working copy's first sectors as written (a missing data disc).
    pub written: Option<WrittenPrefix>,
}

/// Rebuilds every data disc of `set` that is missing or broken, as far as the column code and the
/// discs' own FEC allow together (iterating both), and checks each against the manifest.
pub fn rebuild(
    set: &ParitySet,
    opts: &RebuildOptions,
    progress: &dyn Progress,
) -> Result<RebuildReport, ParityError> {
    rebuild_inner(set, opts, false, progress)
}

/// Like [`rebuild`]; a data disc that cannot be rebuilt whole is still written to `opts.out_dir`
/// as a partial image: everything the two codes recovered, its header copies (sectors N−2 and
/// N−1) from the manifest, the rest zeros (missing disc) or as read (broken disc). Not to burn:
/// for extract, which checks every chunk and file it reads from it.
pub fn rebuild_keeping_partial(
    set: &ParitySet,
    opts: &RebuildOptions,
    progress: &dyn Progress,
) -> Result<RebuildReport, ParityError> {
    rebuild_inner(set, opts, true, progress)
}

fn rebuild_inner(
    set: &ParitySet,
    opts: &RebuildOptions,
    keep_partial: bool,
    progress: &dyn Progress,
) -> Result<RebuildReport, ParityError> {
    std::fs::create_dir_all(&opts.workdir).map_err(io(&opts.workdir))?;
    let data_whole = set.data.iter().all(|m| m.state == DiscState::Intact);
    let mut report = if data_whole && !keep_partial {
        RebuildReport::default() // only parity discs to rebuild: no column pass needed
    } else if set.manifest_from_data {
        // Without a manifest no data disc can be finished (N−2, N−1, SHA-256); none is broken
        // (find_parity_sets), so each damaged one is made whole by its own FEC alone.
        let mut report = RebuildReport::default();
        let parity_lost = set.parity.iter().any(|m| m.state >= DiscState::Broken);
        if let (false, Some(dir), true) = (keep_partial, &opts.out_dir, parity_lost) {
            let data = parity_image::repaired_data_images(set, opts)?;
            parity_step(set, &data, opts, dir, progress, &mut report)?;
        }
        return Ok(report);
    } else {
        let mut members = open_members(set, opts)?;
        let result = rebuild_members(set, opts, keep_partial, &mut members, progress);
        for m in &members {
            if m.working {
                let _ = std::fs::remove_file(&m.path);
            }
        }
        result?
    };
    if let (false, Some(dir), true) = (keep_partial, &opts.out_dir, report.lost.is_empty()) {
        let data = whole_data_images(set, &report);
        parity_step(set, &data, opts, dir, progress, &mut report)?;
    }
    Ok(report)
}

/// The lost parity discs written into `dir` from the whole data images `data`; a refusal is
/// kept in the report with its reason.
fn parity_step(
    set: &ParitySet,
    data: &[PathBuf],
    opts: &RebuildOptions,
    dir: &Path,
    progress: &dyn Progress,
    report: &mut RebuildReport,
) -> Result<(), ParityError> {
    match parity_image::rebuild_lost_parity(set, data, opts, dir, progress) {
        Ok(done) => report.parity_rebuilt = done,
        Err(ParityError::ParityRefused(why)) => report.parity_refused = Some(why),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Every data image of a set whose data discs are all whole: given intact, or rebuilt.
fn whole_data_images(set: &ParitySet, report: &RebuildReport) -> Vec<PathBuf> {
    set.data
        .iter()
        .filter_map(|m| {
            let rebuilt = report.rebuilt.iter().find(|(d, _)| *d == m.disc);
            match (rebuilt, m.state) {
                (Some((_, Some(p))), _) => Some(p.clone()),
                (None, DiscState::Intact) => m.path.clone(),
                _ => None,
            }
        })
        .collect()
}

fn open_members(set: &ParitySet, opts: &RebuildOptions) -> Result<Vec<Member>, ParityError> {
    let columns = set.manifest.columns;
    let mut out = Vec::new();
    let all = set.data.iter().chain(&set.parity);
    for (i, m) in all.enumerate() {
        let data = set.manifest.discs.get(i);
        let (offset, cols) = match data {
            Some(d) => (0, d.protected),
            None => {
                let q = i as u32 - set.data_discs() + 1;
                (set.sections.get(&q).map_or(0, |s| s.column_lba), columns)
            }
        };
        let work = opts.workdir.join(format!("disc{:04}.work", m.disc));
        let member = match (&m.path, m.state) {
            (Some(p), DiscState::Intact) => Member {
                file: Some(File::open(p).map_err(io(p))?),
                path: p.clone(),
                offset,
                columns: cols,
                unknown: Vec::new(),
                working: false,
                own_fec: false,
                written: None,
            },
            (Some(p), _) => {
                copy_image(p, &work)?;
                stop_if_interrupted()?;
                Member {
                    file: Some(rw(&work)?),
                    path: work,
                    offset,
                    columns: cols,
                    unknown: vec![(0, cols)], // until its own FEC says better
                    working: true,
                    own_fec: true,
                    written: None,
                }
            }
            (None, _) => {
                // A missing data disc's copy holds its D columns until it is finished (N is set
                // then); a missing parity disc's, its column parity. Both sizes are checked
                // claims (parity_claims): D ≤ L ≤ what a parity disc given holds.
                let f = rw(&work)?;
                let size = data.map_or(offset + columns, |d| d.protected);
                f.set_len(size * SS).map_err(io(&work))?;
                Member {
                    file: Some(f),
                    path: work,
                    offset,
                    columns: cols,
                    unknown: vec![(0, cols)],
                    working: true,
                    own_fec: false,
                    written: None,
                }
            }
        };
        out.push(member);
    }
    Ok(out)
}

/// Ctrl+C: the rebuild stops at the next window, disc or round (its caller removes the copies).
pub(crate) fn stop_if_interrupted() -> Result<(), ParityError> {
    if interrupt::requested() {
        return Err(Interrupted(" while rebuilding from the parity discs".into()).into());
    }
    Ok(())
}

/// A working copy of an image or of a block device (`std::fs::copy` takes regular files only).
fn copy_image(from: &Path, to: &Path) -> Result<(), ParityError> {
    let mut src = File::open(from).map_err(io(from))?;
    let mut dst = File::create(to).map_err(io(to))?;
    std::io::copy(&mut src, &mut dst).map_err(io(to))?;
    Ok(())
}

fn rw(path: &Path) -> Result<File, ParityError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io(path))
}

fn rebuild_members(
    set: &ParitySet,
    opts: &RebuildOptions,
    keep_partial: bool,
    members: &mut [Member],
    progress: &dyn Progress,
) -> Result<RebuildReport, ParityError> {
    let n = set.data.len();
    let p = set.parity.len();
    let mut codec =
        ColumnCodec::new(n, p).map_err(|e| ParityError::Fec(opts.workdir.clone(), e))?;
    let mut report = RebuildReport::default();
    pin_column_zero(set, members)?;
    loop {
        stop_if_interrupted()?;
        report.rounds += 1;
        let before: u64 = members.iter().map(|m| unknown_count(&m.unknown)).sum();
        for m in members
            .iter_mut()
            .filter(|m| m.own_fec && !m.unknown.is_empty())
        {
            own_fec(m, opts.memory)?;
            m.unknown = subtract(&m.unknown, &vec![(0, 1)]);
        }
        column_step(members, n, &mut codec, opts.memory)?;
        let after: u64 = members.iter().map(|m| unknown_count(&m.unknown)).sum();
        progress.detail(&format!(
            "set rebuild round {}: {before} → {after} sector(s) unknown",
            report.rounds
        ));
        if after == 0 || after == before {
            break;
        }
    }
    for (i, m) in members.iter_mut().enumerate().take(n) {
        if !m.working {
            continue;
        }
        let disc = i as u32 + 1;
        if !m.unknown.is_empty() {
            let mut lost = SectorRanges::new();
            for &(a, b) in &m.unknown {
                lost.insert_range(a, b);
            }
            report.lost.push((disc, lost));
            if let (true, Some(dir)) = (keep_partial, &opts.out_dir) {
                let to = dir.join(data_image_name(set, disc));
                keep_partial_image(m, &set.manifest.discs[i], &to)?;
                report.partial.push((disc, to));
            }
            continue;
        }
        let rec = &set.manifest.discs[i];
        finish_data_disc(m, rec, opts.memory).map_err(|e| match e {
            ParityError::NotAsRecorded(d, _) => {
                ParityError::NotAsRecorded(d, set.manifest_from.clone())
            }
            e => e,
        })?;
        let kept = match &opts.out_dir {
            Some(dir) => {
                let to = dir.join(data_image_name(set, disc));
                move_into_place(&m.path, &to)?;
                Some(to)
            }
            None => None,
        };
        report.rebuilt.push((disc, kept));
    }
    Ok(report)
}

/// Writes column 0 into every working copy and marks it known. Column 0 is not coded (FORMAT.md
/// §10.1): a data disc's LBA 0 is its disc header, identical to the copy at N−2 the manifest
/// holds, and a parity disc's column-0 sector is zero. A code over the headers (records ending in
/// their own CRC32C) could give a parity sector whose checksum equals a zero sector's (P = 1, even
/// n), so a zeroed copy would pass as intact; the writer therefore codes zeros there.
fn pin_column_zero(set: &ParitySet, members: &mut [Member]) -> Result<(), ParityError> {
    let n = set.data.len();
    let mut column: Vec<Vec<u8>> = set
        .manifest
        .discs
        .iter()
        .map(|d| d.sector_n2.to_vec())
        .collect();
    column.resize(members.len(), vec![0u8; SECTOR_SIZE]);
    if column.iter().any(|c| c.len() != SECTOR_SIZE) {
        return Ok(()); // a manifest that does not hold whole sectors: nothing to pin
    }
    debug_assert!(column[n..].iter().all(|c| c.iter().all(|&b| b == 0)));
    for (i, (m, c)) in members.iter_mut().zip(&column).enumerate() {
        if m.working && m.columns > 0 {
            write_columns(m, 0, c)?;
            if i < n && !m.own_fec && m.unknown == vec![(0, m.columns)] {
                // A missing data disc: every sector of it is written from here on, in order.
                let mut hasher = Sha256::new();
                hasher.update(c);
                m.written = Some(WrittenPrefix { hasher, upto: 1 });
            }
            m.unknown = subtract(&m.unknown, &vec![(0, 1)]);
        }
    }
    Ok(())
}

/// A data disc's working copy moved to `to` as it is, with the header copies of the manifest.
fn keep_partial_image(m: &Member, rec: &DataDiscRecord, to: &Path) -> Result<(), ParityError> {
    if let (Some(f), Some(n2)) = (&m.file, rec.image_sectors.checked_sub(2)) {
        f.set_len(rec.image_sectors * SS).map_err(io(&m.path))?;
        f.write_all_at(&rec.sector_n2, n2 * SS)
            .map_err(io(&m.path))?;
        f.write_all_at(&rec.sector_n1, (n2 + 1) * SS)
            .map_err(io(&m.path))?;
    }
    move_into_place(&m.path, to)
}

/// The image name of a rebuilt data disc: the name of the image it replaces if one was given,
/// else the name `create` gives data images.
pub(crate) fn data_image_name(set: &ParitySet, disc: u32) -> String {
    let given = set.data[disc as usize - 1]
        .path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|f| f.to_string_lossy().into_owned());
    given.unwrap_or_else(|| {
        let kind = crate::disc::image_name::ImageKind::Data;
        let chain = file_name_safe(&set.name);
        crate::disc::image_name::image_file_name(&chain, set.generation, kind, disc)
    })
}

/// The chain name comes from a disc: only safe characters reach a file name.
fn file_name_safe(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

fn move_into_place(from: &Path, to: &Path) -> Result<(), ParityError> {
    if std::fs::rename(from, to).is_err() {
        std::fs::copy(from, to).map_err(io(to))?;
        let _ = std::fs::remove_file(from);
    }
    Ok(())
}

fn unknown_count(r: &Ranges) -> u64 {
    r.iter().map(|(a, b)| b - a).sum()
}

/// Runs a damaged disc's own FEC over its working copy: what it rebuilds is written in place;
/// its unknown columns become the protected sectors still failing their checksums.
fn own_fec(m: &mut Member, memory: u64) -> Result<(), ParityError> {
    let fec_err = |e| ParityError::Fec(m.path.clone(), e);
    let src = FileSectorSource::open(&m.path).map_err(io(&m.path))?;
    let located = match fec::locate(&src, None) {
        Ok(l) => l,
        Err(_) => return Ok(()), // its FEC region is gone: the column code alone must do
    };
    let scan = fec::scan(&src, &located, &|_| {}).map_err(fec_err)?;
    stop_if_interrupted()?;
    let file = m
        .file
        .as_ref()
        .ok_or_else(|| fec_err(FecError::Geometry("closed".into())))?;
    let rep = fec::repair(&src, &located, &scan, memory, &mut |lba, data| {
        if interrupt::requested() {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        file.write_all_at(data, lba * SS)
    });
    stop_if_interrupted()?;
    let rep = rep.map_err(fec_err)?;
    let (off, cols) = (m.offset, m.columns);
    m.unknown = rep
        .unrepaired_lbas
        .ranges()
        .iter()
        .map(|&(a, b)| (a.max(off), b.min(off + cols)))
        .filter(|(a, b)| a < b)
        .map(|(a, b)| (a - off, b - off))
        .collect();
    Ok(())
}

/// `r` without the (sorted, disjoint) ranges `minus`.
pub(super) fn subtract(r: &Ranges, minus: &Ranges) -> Ranges {
    let mut out = Vec::new();
    for &(mut a, b) in r {
        for &(x, y) in minus {
            if y <= a || x >= b {
                continue;
            }
            if x > a {
                out.push((a, x));
            }
            a = a.max(y);
            if a >= b {
                break;
            }
        }
        if a < b {
            out.push((a, b));
        }
    }
    out
}

/// A data disc whose protected sectors are all known: its FEC region re-encoded with the
/// geometry of its manifest header copy, the gap after it zeroed, sectors N−2 and N−1 from the
/// manifest, and the whole image checked against the manifest's SHA-256. The protected region
/// is hashed while the FEC is encoded (neither writes there), unless the column sweep already
/// hashed it as it wrote it; then only [D, N) is read back.
fn finish_data_disc(m: &mut Member, rec: &DataDiscRecord, memory: u64) -> Result<(), ParityError> {
    let prefix = m.written.take().filter(|p| p.upto == rec.protected);
    let path = &m.path;
    let fec_err = |e| ParityError::Fec(path.clone(), e);
    let file = m
        .file
        .as_ref()
        .ok_or_else(|| fec_err(FecError::Geometry("closed".into())))?;
    file.set_len(rec.image_sectors * SS).map_err(io(path))?;
    let layout = fec::layout_of_meta_sector(&rec.fec_header).map_err(fec_err)?;
    let head = std::thread::scope(|s| {
        let head = match prefix {
            Some(p) => Ok(p.hasher),
            None => Err(s.spawn(|| hash_file(file, path, 0, rec.protected, Sha256::new()))),
        };
        encode_tail(file, path, rec, &layout, memory)?;
        match head {
            Ok(h) => Ok(h),
            Err(thread) => thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        }
    })?;
    let whole = hash_file(file, path, rec.protected, rec.image_sectors, head)?;
    let got: [u8; 32] = whole.finalize().into();
    if got != rec.sha256 {
        // The caller names the parity disc whose manifest this is.
        return Err(ParityError::NotAsRecorded(rec.disc, PathBuf::new()));
    }
    file.sync_all().map_err(io(path))
}

/// Everything of a data image after its protected region, made anew: zeros first (a damaged
/// copy's alignment gaps and padding may hold garbage the encoder does not overwrite), then the
/// FEC region, then sectors N−2 and N−1 from the manifest.
fn encode_tail(
    file: &File,
    path: &Path,
    rec: &DataDiscRecord,
    layout: &fec::FecLayout,
    memory: u64,
) -> Result<(), ParityError> {
    let zero = vec![0u8; 64 * SECTOR_SIZE];
    let mut lba = rec.protected;
    while lba < rec.image_sectors - 2 {
        stop_if_interrupted()?;
        let k = 64.min(rec.image_sectors - 2 - lba);
        file.write_all_at(&zero[..(k * SS) as usize], lba * SS)
            .map_err(io(path))?;
        lba += k;
    }
    fec::encode(file, layout, memory, &|_| {}).map_err(|e| ParityError::Fec(path.into(), e))?;
    file.write_all_at(&rec.sector_n2, (rec.image_sectors - 2) * SS)
        .map_err(io(path))?;
    file.write_all_at(&rec.sector_n1, (rec.image_sectors - 1) * SS)
        .map_err(io(path))
}

/// Sectors [from, to) of `file` into `hasher`.
fn hash_file(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    mut hasher: Sha256,
) -> Result<Sha256, ParityError> {
    let mut buf = vec![0u8; 4 << 20];
    let (mut pos, end) = (from * SS, to * SS);
    while pos < end {
        stop_if_interrupted()?;
        let len = ((end - pos) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..len], pos).map_err(io(path))?;
        hasher.update(&buf[..len]);
        pos += len as u64;
    }
    Ok(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_subtract_and_build() {
        assert_eq!(
            subtract(&vec![(0, 10)], &vec![(2, 4), (6, 7)]),
            vec![(0, 2), (4, 6), (7, 10)]
        );
        assert_eq!(
            subtract(&vec![(0, 10), (20, 30)], &vec![(0, 25)]),
            vec![(25, 30)]
        );
        assert_eq!(subtract(&vec![(5, 6)], &vec![]), vec![(5, 6)]);
    }
}
