//! `extract`: restore the state of one generation from the discs at hand (any order, any
//! generations of the chain), check every file's SHA-256, and report whatever is not bit-exact.
//!
//! ```text
//! extract(discs, options):
//!     sets   = discs grouped by generation, each a GenerationSet (disc/reader.rs)
//!     reader thread (feed.rs):  ChainStreams::read_ahead — worker threads decode the chunks
//!                               every selected file needs, in file order, a bounded window
//!                               ahead; the reader hashes each file's pieces (SHA-256) and
//!                               sends pieces, gaps and the hash in batches
//!     this thread:              for each entry: Restorer creates it inside OUT (writer.rs),
//!                               writes the pieces, compares the hash → Damage or nothing
//!     report: entries, damage (byte ranges + reason), notes on what the discs lack
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::restore::ExtractError;

use crate::disc::reader::{Disc, GenerationSet};
use crate::format::catalog::validate::{entry_violations, Source};
use crate::format::catalog::{in_seed, seed_generations, DiscMap, Entry, EntryKind};
use crate::restore::chain_stream::{ChainStreams, Gap};
use crate::restore::feed::{drain, feed_contents, Feed, FeedRx, FEED_BATCHES};
use crate::restore::writer::{OutDir, RestoreOptions, Restorer};
use crate::util::escape::escape_path;
use crate::util::progress::Progress;

/// One file that is not bit-exact (or not restored at all).
#[derive(Debug, Clone)]
pub struct Damage {
    /// Entry path.
    pub path: Vec<u8>,
    /// Byte ranges `[start, end)` within the file that could not be read.
    pub ranges: Vec<(u64, u64)>,
    /// Why.
    pub reason: String,
}

/// Options of one extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Output directory (created if missing).
    pub output: PathBuf,
    /// Work directory (by default OUT/.bd-archive-work); never restored into.
    pub workdir: PathBuf,
    /// Restore only these paths (and what is below them); empty: everything.
    pub only: Vec<String>,
    /// Restore the state of this generation (default: the newest at hand).
    pub generation: Option<u32>,
    /// Replace files that already exist in OUT.
    pub overwrite: bool,
    /// Keep files an earlier, interrupted run restored and verified.
    pub resume: bool,
    /// Restore owners (as root: always).
    pub same_owner: bool,
    /// Create device nodes, FIFOs and sockets.
    pub special_files: bool,
}

/// Generations a chain keeps in another format, restored into OUT before ours: the seed (dar)
/// generations of a chain continued from the Python tool (implemented in `crate::legacy`).
pub trait Prelude {
    /// Restores the `needed` older generations through `r`; `chain_id` is the chain they must be of.
    fn replay(
        &mut self,
        r: &mut Restorer,
        needed: u32,
        chain_id: Option<[u8; 16]>,
        progress: &dyn Progress,
    ) -> Result<(), ExtractError>;

    /// After our generation: removes what the prelude restored and `entries` (the generation's
    /// complete tree) no longer has; returns the damage met while replaying.
    fn finish(&self, r: &mut Restorer, entries: &[Entry]) -> Result<Vec<Damage>, ExtractError>;
}

/// What an extract restored, and what not.
#[derive(Debug, Default)]
pub struct ExtractReport {
    /// Output directory.
    pub output: PathBuf,
    /// Entries restored (or attempted).
    pub entries: usize,
    /// Files not restored bit-exact.
    pub damaged: Vec<Damage>,
    /// Damage that cannot be pinned to a file (a disc without index while the catalog is missing).
    pub notes: Vec<String>,
}

impl ExtractReport {
    /// Everything restored bit-exact, nothing unknown.
    pub fn is_bit_exact(&self) -> bool {
        self.damaged.is_empty() && self.notes.is_empty()
    }

    /// Writes OUT/corrupted-files.txt when anything is not bit-exact; returns its path.
    pub fn write_corrupted_files(&self) -> Result<Option<PathBuf>, ExtractError> {
        if self.is_bit_exact() {
            return Ok(None);
        }
        let path = self.output.join(REPORT_NAME);
        let mut text = String::from(
            "# bd-archive: files not restored bit-exact\n\
# path<TAB>byte ranges not restored (start-end, end exclusive; '-' if none)<TAB>reason\n",
        );
        for n in &self.notes {
            text.push_str(&format!("# NOTE: {n}\n"));
        }
        for d in &self.damaged {
            let ranges = if d.ranges.is_empty() {
                "-".to_string()
            } else {
                d.ranges
                    .iter()
                    .take(MAX_RANGES)
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let more = match d.ranges.len().checked_sub(MAX_RANGES) {
                Some(n) if n > 0 => {
                    let bytes: u64 = d.ranges[MAX_RANGES..].iter().map(|(a, b)| b - a).sum();
                    format!(" (and {n} more ranges, {bytes} bytes, not listed)")
                }
                _ => String::new(),
            };
            text.push_str(&format!(
                "{}\t{ranges}\t{}{more}\n",
                escape_path(&d.path),
                d.reason
            ));
        }
        // Through OUT's descriptor, never following a symlink at the name (the archive cannot
        // put one there: the name is reserved; one already in OUT is replaced, not written
        // through).
        OutDir::open(&self.output)
            .and_then(|dir| dir.replace_own_file(Path::new(REPORT_NAME), text.as_bytes()))
            .map_err(|e| ExtractError::Output(format!("writing {}", path.display()), e))?;
        Ok(Some(path))
    }
}

/// Name of the damage report in OUT (one of [`crate::restore::writer::RESERVED_NAMES`]).
pub const REPORT_NAME: &str = "corrupted-files.txt";

/// Name of the default work directory inside OUT (one of
/// [`crate::restore::writer::RESERVED_NAMES`]).
pub const WORKDIR_NAME: &str = ".bd-archive-work";

/// Most byte ranges listed per file in the report; the rest are summed up in its reason.
const MAX_RANGES: usize = 64;

/// Restores the state of one generation from `discs` (grouped by generation, as
/// [`crate::restore::sources::open_discs`] returns them) into `opts.output`.
///
/// Opening the discs is a separate step so that `list` and `verify` share it and so that the
/// caller learns which discs and generations it has (and can name a missing one) before OUT is
/// touched. Damage is reported in the returned [`ExtractReport`], not as an error: a damaged
/// disc still restores every file it can, and the caller decides the exit code.
pub fn extract(
    discs: BTreeMap<u32, Vec<Disc>>,
    mut prelude: Option<&mut dyn Prelude>,
    opts: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<ExtractReport, ExtractError> {
    let (sets, generation) = generation_sets(discs, opts.generation)?;
    let set = &sets[&generation];
    progress.step(&format!(
        "Chain '{}', restoring the state of generation {} from {} disc(s) of generation(s) {:?}{}",
        set.name,
        generation,
        sets.values().map(|s| s.discs.len()).sum::<usize>(),
        sets.keys().collect::<Vec<_>>(),
        if set.catalog.is_some() {
            ""
        } else {
            " (its catalog disc is not among them: restoring what the discs hold)"
        }
    ));
    let mut notes = chain_notes(&sets, generation, progress);
    let (entries, skipped) = checked_entries(&sets, set, &opts.only);
    if !opts.only.is_empty() && entries.is_empty() && skipped.is_empty() {
        return Err(ExtractError::NoMatch(opts.only.clone()));
    }
    if names_found_files(&opts.only, &entries) {
        // Every requested file was found: what the sources lack elsewhere (no catalog, other
        // discs) cannot touch them, so it is said, but their checks alone decide the result.
        for n in notes.drain(..) {
            progress.warn(&n);
        }
    }
    let mut restorer = open_restorer(opts, &entries)?;
    let seed_gens = seed_generations(&set.entries);
    if let Some(p) = prelude.as_mut() {
        let id = set.discs.values().next().map(|d| d.header.chain_id);
        p.replay(&mut restorer, seed_gens, id, progress)?;
    }
    // After the seed replay (whose files all get their identity recorded): from here on only
    // the files hard links of this generation point at need it.
    restorer.set_link_targets(
        entries
            .iter()
            .filter(|e| e.kind == EntryKind::HardLink)
            .map(|e| e.link_target.clone())
            .collect(),
    );
    let replayed = prelude.is_some();
    let listed = entries.len() + skipped.len();
    let (mut damaged, kept) = match restore_entries(
        &mut restorer,
        &entries,
        skipped,
        &sets,
        replayed,
        opts,
        progress,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = restorer.finish();
            return Err(e);
        }
    };
    if let Some(p) = &prelude {
        damaged.extend(p.finish(&mut restorer, &set.entries)?);
    }
    for n in restorer.finish()? {
        progress.warn(&n);
    }
    if opts.resume {
        progress.step(&format!(
            "--resume: {kept} file(s) were already restored and verified, and kept"
        ));
    }
    for set in sets.values() {
        for d in set.discs.values() {
            if let Some(Ok(r)) = d.repair_summary() {
                progress.step(&rebuilt_message(&d.name, &r));
            }
        }
    }
    Ok(ExtractReport {
        output: opts.output.clone(),
        entries: listed,
        damaged,
        notes,
    })
}

/// The generation to restore (default: the newest at hand) and the sets of it and the
/// generations before it.
fn generation_sets(
    by_gen: BTreeMap<u32, Vec<Disc>>,
    wanted: Option<u32>,
) -> Result<(BTreeMap<u32, GenerationSet>, u32), ExtractError> {
    let Some(&newest) = by_gen.keys().next_back() else {
        return Err(ExtractError::NothingReadable);
    };
    let generation = wanted.unwrap_or(newest);
    if !by_gen.contains_key(&generation) {
        return Err(ExtractError::GenerationMissing {
            wanted: generation,
            found: by_gen.keys().copied().collect(),
        });
    }
    let mut sets = BTreeMap::new();
    for (g, discs) in by_gen {
        if g <= generation {
            sets.insert(g, GenerationSet::new(discs)?);
        }
    }
    Ok((sets, generation))
}

/// Creates OUT, refuses to overwrite what the user has there, and opens the restorer on it.
fn open_restorer(opts: &ExtractOptions, entries: &[&Entry]) -> Result<Restorer, ExtractError> {
    std::fs::create_dir_all(&opts.output)
        .map_err(|e| ExtractError::Output(format!("creating {}", opts.output.display()), e))?;
    let fresh = holds_nothing_but(&opts.output, &opts.workdir)?;
    if !opts.overwrite && !opts.resume && !fresh {
        refuse_existing(&opts.output, entries)?;
    }
    let mut ropts = RestoreOptions::default();
    if opts.same_owner {
        ropts.same_owner = true;
    }
    // An OUT that held nothing when the run started holds only what this run restores, so
    // replacing something there (a later generation, a duplicate path) never touches a file of
    // the user's: the restorer then need not remember every path it made (memory per entry).
    ropts.overwrite = opts.overwrite || opts.resume || fresh;
    ropts.special_files = opts.special_files;
    ropts.reserved = opts
        .workdir
        .strip_prefix(&opts.output)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| rel.as_os_str().as_encoded_bytes().to_vec());
    Ok(Restorer::new(&opts.output, ropts)?)
}

/// Restores every entry in order while the reading thread feeds the files' contents; returns
/// the damage found and the number of files `--resume` kept.
fn restore_entries(
    restorer: &mut Restorer,
    entries: &[&Entry],
    skipped: Vec<Damage>,
    sets: &BTreeMap<u32, GenerationSet>,
    replayed: bool,
    opts: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<(Vec<Damage>, u64), ExtractError> {
    let total: u64 = entries.iter().fold(0u64, |t, e| t.saturating_add(e.size));
    let pb = progress.meter(Some(total), "restoring");
    let mut damaged_paths: HashSet<Vec<u8>> = skipped.iter().map(|d| d.path.clone()).collect();
    let mut damaged = skipped;
    let mut kept = 0u64;
    let streams = ChainStreams::new(sets);
    // Reading (parallel chunk decode + SHA-256) runs in its own thread ahead of the writing here,
    // so decoding, hashing and the filesystem work overlap; the channel bounds what is in flight.
    // Pieces share their decoded chunk, so a batch (≥ 1 MiB of pieces) may keep two chunks
    // alive: a few batches queued are enough to ride out a slow file, and keep memory flat.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Feed)>>(FEED_BATCHES);
    let outcome = std::thread::scope(|s| -> Result<(), ExtractError> {
        s.spawn(move || feed_contents(entries, streams, tx));
        let mut rx = FeedRx::new(rx);
        let rx = &mut rx;
        for (i, e) in entries.iter().enumerate() {
            if crate::util::interrupt::requested() {
                return Err(crate::util::interrupt::Interrupted(format!(
                    "; {} was restored only in part (files restored so far are complete): continue with the same command and --resume",
                    opts.output.display()
                ))
                .into());
            }
            if opts.resume && restorer.keep_if_intact(e)? {
                drain(rx, i, e)?;
                kept += 1;
                pb.inc(e.size);
                continue;
            }
            let mut result = match e.kind {
                EntryKind::File if in_seed(e) => adopt(restorer, e, replayed)?,
                EntryKind::File => restore_file(restorer, rx, i, e)?,
                _ => restore_entry(restorer, e)?,
            };
            // A hard link shares its target's content: a damaged target makes the link damaged too.
            if result.is_none()
                && e.kind == EntryKind::HardLink
                && damaged_paths.contains(&e.link_target)
            {
                result = Some(Damage {
                    path: e.path.clone(),
                    ranges: Vec::new(),
                    reason: format!("hard link to damaged {}", escape_path(&e.link_target)),
                });
            }
            if let Some(d) = result {
                damaged_paths.insert(d.path.clone());
                damaged.push(d);
            }
            pb.inc(e.size);
        }
        Ok(())
    });
    pb.finish();
    outcome.map(|()| (damaged, kept))
}

/// "N damaged sector(s): R rebuilt, U could not be" — never claims more than the FEC did.
fn rebuilt_message(disc: &str, r: &crate::disc::reader::RepairSummary) -> String {
    let rebuilt = r.lost_sectors.saturating_sub(r.unrepaired);
    if r.unrepaired == 0 {
        format!(
            "{disc}: all {} damaged sector(s) were rebuilt from the disc's FEC data",
            r.lost_sectors
        )
    } else {
        format!(
            "{disc}: {} damaged sector(s): {rebuilt} rebuilt from the disc's FEC data, {} could not be (beyond the FEC; the files on them are listed as not bit-exact)",
            r.lost_sectors, r.unrepaired
        )
    }
}

/// Warnings and report notes about what the chain at hand lacks. The target generation's
/// catalog, through its disc map, names the discs of earlier generations to fetch.
fn chain_notes(
    sets: &BTreeMap<u32, GenerationSet>,
    generation: u32,
    progress: &dyn Progress,
) -> Vec<String> {
    let set = &sets[&generation];
    let mut notes = incompleteness(set);
    for s in sets.values() {
        notes.extend(s.notes.iter().cloned());
    }
    let map = checked_disc_map(set, &mut notes);
    for s in sets.values() {
        let mut missing = s.missing_discs();
        if s.catalog.is_none() {
            missing = map
                .discs(s.generation)
                .into_iter()
                .filter(|n| !s.discs.contains_key(n))
                .collect();
        }
        if !missing.is_empty() {
            progress.warn(&format!(
                "disc(s) {missing:?} of generation {} not given; files stored there are listed as not restored",
                s.generation
            ));
        }
    }
    let mut needed: Vec<u32> = set
        .entries
        .iter()
        .filter(|e| e.size > 0 && !in_seed(e))
        .map(|e| e.data.generation)
        .collect();
    needed.sort_unstable();
    needed.dedup();
    for g in needed.into_iter().filter(|g| !sets.contains_key(g)) {
        let mut msg = format!(
            "generation {g} is missing: files whose data it stores are listed as not restored"
        );
        let holding = map.discs_holding(set.entries.iter().filter(|e| e.size > 0), g);
        if !holding.is_empty() {
            let discs: Vec<String> = holding.iter().map(u32::to_string).collect();
            msg.push_str(&format!(" (they are on g{g}:d{})", discs.join(",")));
        }
        progress.warn(&msg);
        notes.push(msg);
    }
    notes
}

/// The disc map of `set`'s catalog with its rules checked (empty without a catalog); each
/// generation dropped for breaking a rule adds a note.
fn checked_disc_map(set: &GenerationSet, notes: &mut Vec<String>) -> DiscMap {
    let Some(c) = &set.catalog else {
        return DiscMap::default();
    };
    let (map, problems) = DiscMap::checked(&c.disc_map, set.generation);
    for p in problems {
        notes.push(format!(
            "the catalog's disc map of generation {} breaks FORMAT.md §6.1 ({}); not used",
            p.generation, p.rule
        ));
    }
    map
}

/// Why the set of entries itself may be incomplete (no catalog, and/or discs without index).
fn incompleteness(set: &GenerationSet) -> Vec<String> {
    let mut notes = Vec::new();
    if set.catalog.is_some() {
        return notes;
    }
    notes.push(format!(
        "the catalog of generation {} (on its last disc) was not among the sources: files stored only on discs not given are not listed here",
        set.generation
    ));
    for d in set.discs.values().filter(|d| d.index.is_none()) {
        notes.push(format!(
            "{}: disc {} has no readable index; the files it holds are unknown without the catalog",
            d.name,
            d.number()
        ));
    }
    notes
}

/// True when `--only` was given and each of its paths names a file (not a directory, whose
/// content may lie on discs not given) among the entries found.
fn names_found_files(only: &[String], entries: &[&Entry]) -> bool {
    !only.is_empty()
        && only.iter().all(|p| {
            let p = only_path(p);
            !crate::util::glob::is_pattern(p)
                && entries
                    .iter()
                    .any(|e| e.path == p.as_bytes() && e.kind != EntryKind::Dir)
        })
}

/// `--only` as given, in the catalog's spelling: no leading "./" or '/', no trailing '/'.
fn only_path(p: &str) -> &str {
    let mut p = p.trim_end_matches('/');
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.trim_start_matches('/');
    }
    p.trim_start_matches('/')
}

/// Whether `--only` selects `e`: its path or one of its directories is a path given, or matches
/// a pattern given (`*`, `?`, `[…]`; `*` also crosses '/', as tar --wildcards).
fn selected(e: &Entry, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|p| {
            let p = only_path(p);
            let pattern = crate::util::glob::is_pattern(p);
            let hits = |prefix: &[u8]| {
                if pattern {
                    crate::util::glob::glob_match(p.as_bytes(), prefix)
                } else {
                    prefix == p.as_bytes()
                }
            };
            hits(&e.path)
                || e.path
                    .iter()
                    .enumerate()
                    .any(|(i, &b)| b == b'/' && hits(&e.path[..i]))
        })
}

/// Whether `out` is empty apart from `allowed` (the work directory): then nothing in it can be in
/// the way, and the per-entry existence check (a path lookup per file) is not needed.
fn holds_nothing_but(out: &Path, allowed: &Path) -> Result<bool, ExtractError> {
    let failed = |e| ExtractError::Output(format!("reading {}", out.display()), e);
    let dir = std::fs::read_dir(out).map_err(failed)?;
    for item in dir {
        let item = item.map_err(failed)?;
        if item.path() != allowed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses to start when a file to be restored already exists in OUT (directories may exist).
fn refuse_existing(out: &Path, entries: &[&Entry]) -> Result<(), ExtractError> {
    use std::os::unix::ffi::OsStrExt;
    for e in entries {
        if e.kind == EntryKind::Dir {
            continue;
        }
        let p = out.join(std::ffi::OsStr::from_bytes(&e.path));
        if p.symlink_metadata().is_ok() {
            return Err(ExtractError::Exists(p));
        }
    }
    Ok(())
}

/// Restores one entry; returns what is wrong with it, if anything.
fn restore_entry(restorer: &mut Restorer, e: &Entry) -> Result<Option<Damage>, ExtractError> {
    let fail = |reason: String, e: &Entry| Damage {
        path: e.path.clone(),
        ranges: if e.size > 0 {
            vec![(0, e.size)]
        } else {
            Vec::new()
        },
        reason,
    };
    let result = match e.kind {
        EntryKind::Dir => restorer.create_dir(e).map(|_| None),
        EntryKind::Symlink => restorer.create_symlink(e).map(|_| None),
        EntryKind::HardLink => restorer.create_hardlink(e).map(|_| None),
        EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Socket => {
            restorer.create_special(e).map(|_| None)
        }
        EntryKind::File => unreachable!("files are restored by restore_file"),
    };
    Ok(result.unwrap_or_else(|err| Some(fail(format!("not restored: {err}"), e))))
}

fn restore_file(
    restorer: &mut Restorer,
    rx: &mut FeedRx,
    i: usize,
    e: &Entry,
) -> Result<Option<Damage>, ExtractError> {
    let mut f = match restorer.create_file(e) {
        Ok(f) => Some(f),
        Err(err) => {
            drain(rx, i, e)?;
            return Ok(Some(Damage {
                path: e.path.clone(),
                ranges: if e.size > 0 {
                    vec![(0, e.size)]
                } else {
                    Vec::new()
                },
                reason: format!("not restored: {err}"),
            }));
        }
    };
    let mut gaps: Vec<(u64, u64, Gap)> = Vec::new();
    let hash = loop {
        let Ok((j, msg)) = rx.recv() else {
            return Err(ExtractError::ReaderStopped);
        };
        debug_assert_eq!(j, i);
        match msg {
            Feed::Piece(off, bytes) => {
                if let Some(file) = f.as_mut() {
                    file.write_at(off, &bytes)
                        .map_err(ExtractError::WriteFile)?;
                }
            }
            Feed::Gap(off, len, why) => gaps.push((off, off + len, why)),
            Feed::End(h) => break h,
        }
    };
    if let Some(file) = f.take() {
        if let Err(err) = restorer.finish_file(file, e) {
            return Ok(Some(Damage {
                path: e.path.clone(),
                ranges: vec![(0, e.size)],
                reason: format!("not restored completely: {err}"),
            }));
        }
    }
    if !gaps.is_empty() {
        gaps.sort_by_key(|g| g.0);
        return Ok(Some(Damage {
            path: e.path.clone(),
            ranges: merge_ranges(&gaps),
            reason: distinct_reasons(gaps.iter().map(|g| g.2.to_string())),
        }));
    }
    if e.size > 0 && e.sha256 == [0; 32] {
        // Nothing to compare with: the bytes may be right, but nobody can say so.
        return Ok(Some(Damage {
            path: e.path.clone(),
            ranges: Vec::new(),
            reason:
                "not verified: no SHA-256 recorded for it (its catalog is not among the sources)"
                    .into(),
        }));
    }
    if hash != e.sha256 {
        return Ok(Some(Damage {
            path: e.path.clone(),
            ranges: vec![(0, e.size)],
            reason: "SHA-256 mismatch".into(),
        }));
    }
    Ok(None)
}

/// Most distinct reasons named for one file; the rest are counted.
const MAX_REASONS: usize = 4;

/// One reason per cause, in order of first appearance, at most [`MAX_REASONS`] named.
fn distinct_reasons(reasons: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut more = HashSet::new();
    for r in reasons {
        if seen.contains(&r) {
            continue;
        }
        if seen.len() < MAX_REASONS {
            seen.push(r);
        } else {
            more.insert(r);
        }
    }
    let mut text = seen.join("; ");
    if !more.is_empty() {
        text.push_str(&format!("; and {} other cause(s)", more.len()));
    }
    text
}

/// Touching or overlapping gaps (sorted by start) merged into ranges.
fn merge_ranges(gaps: &[(u64, u64, Gap)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(a, b, _) in gaps {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The entries to restore (selected with `--only`, passing every FORMAT.md §6 rule) and, for
/// the selected ones that break a rule, their report lines: they are skipped, the rest restored.
fn checked_entries<'s>(
    sets: &BTreeMap<u32, GenerationSet>,
    set: &'s GenerationSet,
    only: &[String],
) -> (Vec<&'s Entry>, Vec<Damage>) {
    // A stream's length is known when its generation's catalog (the whole chunk table) is
    // here, or from the disc map of the target generation's catalog.
    let map = checked_disc_map(set, &mut Vec::new());
    let stream_len = |g: u32| match sets.get(&g).filter(|s| s.catalog.is_some()) {
        Some(s) => Some(
            s.chunks
                .last()
                .map_or(0, |c| c.tar_offset.saturating_add(u64::from(c.tar_len))),
        ),
        None => map.stream_len(g),
    };
    let source = if set.catalog.is_some() {
        Source::Catalog
    } else {
        Source::Indexes
    };
    let violations = entry_violations(&set.entries, source, &stream_len);
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (e, broken) in set.entries.iter().zip(violations) {
        if !selected(e, only) {
            continue;
        }
        match broken {
            None => entries.push(e),
            Some(rule) => skipped.push(Damage {
                path: e.path.clone(),
                ranges: Vec::new(),
                reason: format!("skipped: breaks a FORMAT.md §6 rule: {rule}"),
            }),
        }
    }
    (entries, skipped)
}

/// A file whose content a migrated chain left in its seed (dar) generations (restored by the
/// [`Prelude`]): keep it, with this generation's metadata.
fn adopt(r: &mut Restorer, e: &Entry, replayed: bool) -> Result<Option<Damage>, ExtractError> {
    if replayed && r.adopt_restored_file(e)? {
        return Ok(None);
    }
    let n = seed_generations(std::slice::from_ref(e));
    Ok(Some(Damage {
        path: e.path.clone(),
        ranges: if e.size > 0 {
            vec![(0, e.size)]
        } else {
            Vec::new()
        },
        reason: if replayed {
            format!("its content is in dar generations 1..{n} of the seed chain, which did not restore it intact")
        } else {
            format!("its content is in dar generations 1..{n} of the seed chain this chain continues; pass their discs too")
        },
    }))
}
