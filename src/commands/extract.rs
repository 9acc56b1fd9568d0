//! `extract`: open the discs given (any order), pick the generation, restore every entry safely,
//! check every file's SHA-256, and list whatever is not bit-exact in OUT/corrupted-files.txt.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::catalog::{Entry, EntryKind};
use crate::cli::ExtractArgs;
use crate::commands::parse_memory;
use crate::commands::{progress_bar, Ui};
use crate::disc_reader::{expand_sources, Disc, GenerationSet, ReadError, RepairSettings};
use crate::restore::{escape_path, RestoreOptions, Restorer};
use crate::stream_reader::{ChainStreams, Gap, Piece};

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

/// Opens every source, keeping only discs of one chain; returns discs grouped by generation.
/// Two different sets claiming one generation (two `create --base GEN1` runs) are refused,
/// naming both, unless `pick` (`--set ID`) chooses one: a mix is never restored by guess.
pub fn open_discs(
    sources: &[std::path::PathBuf],
    settings: &RepairSettings,
    pick: Option<i64>,
    ui: &Ui,
) -> Result<BTreeMap<u32, Vec<Disc>>> {
    if sources.is_empty() {
        bail!("no SOURCE given: pass disc images or directories of images (reading from a drive is not available yet)");
    }
    let paths = expand_sources(sources)?;
    let mut by_gen: BTreeMap<u32, Vec<Disc>> = BTreeMap::new();
    let mut chain: Option<([u8; 16], String)> = None;
    for p in &paths {
        let discs = match Disc::open_all(p, settings) {
            Ok(d) => d,
            Err(e @ ReadError::NotOurs(_)) => return Err(e.into()),
            Err(e) => {
                ui.warn(&format!("{e}; this disc is skipped"));
                continue;
            }
        };
        if let Some(Ok(r)) = discs[0].repair_summary() {
            ui.warn(&match r.unrepaired {
                0 => format!(
                    "{}: damaged ({} sectors lost), repaired with its FEC data",
                    p.display(),
                    r.lost_sectors
                ),
                n => format!(
                    "{}: damaged ({} sectors lost, {n} of them beyond what its FEC data can rebuild)",
                    p.display(),
                    r.lost_sectors
                ),
            });
        }
        for disc in discs {
            for problem in &disc.problems {
                ui.warn(&format!("{}: {problem}", p.display()));
            }
            match &chain {
                None => chain = Some((disc.header.chain_id, disc.header.name.clone())),
                Some((id, name)) if *id != disc.header.chain_id => {
                    bail!(
                        "{}: belongs to chain '{}', but the other sources belong to '{name}'; extract one chain at a time",
                        p.display(),
                        disc.header.name
                    );
                }
                _ => {}
            }
            ui.detail(&format!(
                "{}: {} generation {} disc {} (set {})",
                p.display(),
                disc.header.name,
                disc.generation(),
                disc.number(),
                set_id(&disc).map_or_else(|| "unknown".into(), |s| s.to_string())
            ));
            by_gen.entry(disc.generation()).or_default().push(disc);
        }
    }
    if by_gen.is_empty() {
        bail!("none of the sources could be read");
    }
    resolve_sets(by_gen, pick, ui)
}

/// Which set of its generation a disc belongs to: the creation time of that generation (seconds
/// since 1970), the same on every disc one `create` run wrote. From the disc's index or catalog
/// (per generation, also on a packed disc), else from the header when this is the header's own
/// (newest) section; None when neither is readable.
pub fn set_id(d: &Disc) -> Option<i64> {
    d.index
        .as_ref()
        .map(|i| i.chain.created_unix)
        .or_else(|| d.catalog.as_ref().map(|c| c.chain.created_unix))
        .or_else(|| (d.section + 1 == d.header.sections.len()).then_some(d.header.created_unix))
}

/// Refuses a generation given as two different sets, or keeps the one `pick` names.
fn resolve_sets(
    by_gen: BTreeMap<u32, Vec<Disc>>,
    pick: Option<i64>,
    ui: &Ui,
) -> Result<BTreeMap<u32, Vec<Disc>>> {
    let mut picked = false;
    let mut out = BTreeMap::new();
    for (g, discs) in by_gen {
        let mut sets: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for d in &discs {
            if let Some(id) = set_id(d) {
                sets.entry(id).or_default().push(d.name.clone());
            }
        }
        if sets.len() < 2 {
            picked |= pick.is_some_and(|p| sets.contains_key(&p));
            out.insert(g, discs);
            continue;
        }
        let Some(p) = pick.filter(|p| sets.contains_key(p)) else {
            bail!("{}", describe_conflict(&discs[0].header.name, g, &sets));
        };
        picked = true;
        let (keep, drop): (Vec<Disc>, Vec<Disc>) =
            discs.into_iter().partition(|d| set_id(d) == Some(p));
        for d in drop {
            ui.say(&format!("{}: not of set {p} (--set); left out", d.name));
        }
        out.insert(g, keep);
    }
    if let (Some(p), false) = (pick, picked) {
        bail!("--set {p}: none of the sources belongs to a set with that id (the ids are named when two sets of one generation are given; `extract -v` shows each disc's)");
    }
    Ok(out)
}

fn describe_conflict(chain: &str, generation: u32, sets: &BTreeMap<i64, Vec<String>>) -> String {
    let described: Vec<String> = sets
        .iter()
        .map(|(id, names)| {
            format!(
                "set {id} (created {} UTC): {}",
                super::list::utc(*id),
                names.join(", ")
            )
        })
        .collect();
    let picks: Vec<String> = sets.keys().map(|id| format!("--set {id}")).collect();
    format!(
        "generation {generation} of chain '{chain}' is given as {} different sets (separate create runs): {}; pass {} to choose one, or give the images of one set only",
        sets.len(),
        described.join("; "),
        picks.join(" or ")
    )
}

/// Runs `extract`.
pub fn run(args: &ExtractArgs, ui: &Ui) -> Result<i32> {
    if let Some(code) = super::seed::try_extract(args, ui)? {
        return Ok(code);
    }
    let workdir = args
        .workdir
        .clone()
        .unwrap_or_else(|| args.output.join(".bd-archive-work"));
    std::fs::create_dir_all(&workdir)
        .with_context(|| format!("creating work directory {}", workdir.display()))?;
    let settings = RepairSettings {
        memory_budget: parse_memory(args.memory.as_deref())?,
        spill_dir: Some(workdir.clone()),
    };
    let from_drive = args.device.is_some()
        || args.sources.is_empty()
        || args
            .sources
            .iter()
            .any(|p| crate::optical::device::is_drive_path(p));
    let result = if from_drive {
        extract_from_drive(args, &workdir, &settings, ui)
    } else {
        extract_with(args, &args.sources, &settings, ui)
    };
    if args.workdir.is_none() {
        let _ = std::fs::remove_dir(&workdir);
    }
    result
}

/// Reads the discs through the drive into rescue copies, restores from them, and removes the
/// copies once everything was restored bit-exact (kept otherwise, to run again without the discs).
fn extract_from_drive(
    args: &ExtractArgs,
    workdir: &Path,
    settings: &RepairSettings,
    ui: &Ui,
) -> Result<i32> {
    let mut device = args.device.clone();
    if let Some(p) = args
        .sources
        .iter()
        .find(|p| crate::optical::device::is_drive_path(p))
    {
        device.get_or_insert_with(|| p.clone());
    }
    if let Some(other) = args
        .sources
        .iter()
        .find(|p| !crate::optical::device::is_drive_path(p))
    {
        bail!(
            "{}: combine image files and a drive in one extract is not supported; copy the discs first (`bd-archive verify --map` keeps a copy) or pass only images",
            other.display()
        );
    }
    let opts = super::drive_read::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let copies = super::extract_drive::collect_discs(&opts, workdir, settings, ui)?;
    let code = extract_with(args, &copies, settings, ui)?;
    let discs = workdir.join("discs");
    if code == crate::exit::OK {
        let _ = std::fs::remove_dir_all(&discs);
    } else {
        ui.say(&format!(
            "The copies of the discs read are kept in {} (restore again from them without the discs; the .map files let a later pass read only what is missing)",
            discs.display()
        ));
    }
    Ok(code)
}

fn extract_with(
    args: &ExtractArgs,
    sources: &[std::path::PathBuf],
    settings: &RepairSettings,
    ui: &Ui,
) -> Result<i32> {
    // Seed (dar) discs next to ours: a chain continued with `create --base <seed catalogue>`.
    let (mut seed, sources) =
        super::seed::continuation(sources, &args.output, args.workdir.as_ref())?;
    let by_gen = open_discs(&sources, settings, args.set, ui)?;
    let newest = *by_gen
        .keys()
        .next_back()
        .expect("open_discs returns at least one disc");
    let generation = args.generation.unwrap_or(newest);
    if !by_gen.contains_key(&generation) {
        bail!(
            "--generation {generation}: none of the sources holds that generation (found {:?})",
            by_gen.keys().collect::<Vec<_>>()
        );
    }
    let mut sets = BTreeMap::new();
    for (g, discs) in by_gen {
        if g <= generation {
            sets.insert(g, GenerationSet::new(discs)?);
        }
    }
    let set = &sets[&generation];
    ui.say(&format!(
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
    let mut notes = chain_notes(&sets, generation, ui);
    let entries: Vec<&Entry> = set
        .entries
        .iter()
        .filter(|e| selected(e, &args.only))
        .collect();
    if !args.only.is_empty() && entries.is_empty() {
        bail!("--only: no entry matches {:?}", args.only);
    }
    if names_found_files(&args.only, &entries) {
        // Every requested file was found: what the sources lack elsewhere (no catalog, other
        // discs) cannot touch them, so it is said, but their checks alone decide the result.
        for n in notes.drain(..) {
            ui.warn(&n);
        }
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let fresh = holds_nothing_but(&args.output, &workdir_of(args))?;
    if !args.overwrite && !args.resume && !fresh {
        refuse_existing(&args.output, &entries)?;
    }
    let mut opts = RestoreOptions::default();
    if args.same_owner {
        opts.same_owner = true;
    }
    // An OUT that held nothing when the run started holds only what this run restores, so
    // replacing something there (a later generation, a duplicate path) never touches a file of
    // the user's: the restorer then need not remember every path it made (memory per entry).
    opts.overwrite = args.overwrite || args.resume || fresh;
    opts.special_files = args.special_files;
    opts.reserved = workdir_of(args)
        .strip_prefix(&args.output)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| rel.as_os_str().as_encoded_bytes().to_vec());
    let mut restorer = Restorer::new(&args.output, opts)?;
    let seed_gens = crate::compat::seed_chain::seed_generations(&set.entries);
    if let Some(s) = seed.as_mut() {
        let id = set.discs.values().next().map(|d| d.header.chain_id);
        s.replay(&mut restorer, seed_gens, id, ui)?;
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
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let pb = progress_bar(ui, Some(total), "restoring");
    let mut damaged = Vec::new();
    let mut damaged_paths = std::collections::HashSet::new();
    let mut kept = 0u64;
    let streams = ChainStreams::new(&sets);
    // Reading (parallel chunk decode + SHA-256) runs in its own thread ahead of the writing here,
    // so decoding, hashing and the filesystem work overlap; the channel bounds what is in flight.
    // Pieces share their decoded chunk, so a batch (≥ 1 MiB of pieces) may keep two chunks
    // alive: a few batches queued are enough to ride out a slow file, and keep memory flat.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Feed)>>(FEED_BATCHES);
    let outcome = std::thread::scope(|s| -> Result<()> {
        let entries_ref = &entries;
        s.spawn(move || feed_contents(entries_ref, streams, tx));
        let mut rx = FeedRx::new(rx);
        let rx = &mut rx;
        for (i, e) in entries.iter().enumerate() {
            if crate::interrupt::requested() {
                return Err(crate::interrupt::Interrupted(format!(
                    "; {} was restored only in part (files restored so far are complete): continue with the same command and --resume",
                    args.output.display()
                ))
                .into());
            }
            if args.resume && restorer.keep_if_intact(e)? {
                drain(rx, i, e)?;
                kept += 1;
                pb.inc(e.size);
                continue;
            }
            let mut result = match e.kind {
                EntryKind::File if crate::compat::seed_chain::in_seed(e) => {
                    super::seed::adopt(&mut restorer, e, seed.is_some())?
                }
                EntryKind::File => restore_file(&mut restorer, rx, i, e)?,
                _ => restore_entry(&mut restorer, e)?,
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
    if let Err(e) = outcome {
        pb.finish_and_clear();
        let _ = restorer.finish();
        return Err(e);
    }
    pb.finish_and_clear();
    if let Some(s) = &seed {
        damaged.extend(s.finish(&mut restorer, &set.entries)?);
    }
    for n in restorer.finish()? {
        ui.warn(&n);
    }
    if args.resume {
        ui.say(&format!(
            "--resume: {kept} file(s) were already restored and verified, and kept"
        ));
    }
    for set in sets.values() {
        for d in set.discs.values() {
            if let Some(Ok(r)) = d.repair_summary() {
                ui.say(&rebuilt_message(&d.name, &r));
            }
        }
    }
    finish_report_with_notes(&args.output, &damaged, &notes, entries.len(), ui)
}

/// "N damaged sector(s) rebuilt; M could not be" — never claims more than the FEC did.
fn rebuilt_message(disc: &str, r: &crate::disc_reader::RepairSummary) -> String {
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

/// Warnings and report notes about what the chain at hand lacks.
fn chain_notes(sets: &BTreeMap<u32, GenerationSet>, generation: u32, ui: &Ui) -> Vec<String> {
    let set = &sets[&generation];
    let mut notes = incompleteness(set);
    for s in sets.values() {
        let missing = s.missing_discs();
        if !missing.is_empty() {
            ui.warn(&format!(
                "disc(s) {missing:?} of generation {} not given; files stored there are listed as not restored",
                s.generation
            ));
        }
    }
    let mut needed: Vec<u32> = set
        .entries
        .iter()
        .filter(|e| e.size > 0 && !crate::compat::seed_chain::in_seed(e))
        .map(|e| e.data.generation)
        .collect();
    needed.sort_unstable();
    needed.dedup();
    for g in needed.into_iter().filter(|g| !sets.contains_key(g)) {
        let msg = format!(
            "generation {g} is missing: files whose data it stores are listed as not restored"
        );
        ui.warn(&msg);
        notes.push(msg);
    }
    notes
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
            let p = p.as_bytes();
            entries
                .iter()
                .any(|e| e.path == p && e.kind != EntryKind::Dir)
        })
}

fn selected(e: &Entry, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|p| {
            let p = p.trim_end_matches('/').as_bytes();
            e.path == p || (e.path.starts_with(p) && e.path.get(p.len()) == Some(&b'/'))
        })
}

/// The default work directory of `extract` (inside OUT unless -w is given).
fn workdir_of(args: &ExtractArgs) -> std::path::PathBuf {
    args.workdir
        .clone()
        .unwrap_or_else(|| args.output.join(".bd-archive-work"))
}

/// Whether `out` is empty apart from `allowed` (the work directory): then nothing in it can be in
/// the way, and the per-entry existence check (a path lookup per file) is not needed.
fn holds_nothing_but(out: &Path, allowed: &Path) -> Result<bool> {
    let dir = std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
    for item in dir {
        let item = item.with_context(|| format!("reading {}", out.display()))?;
        if item.path() != allowed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses to start when a file to be restored already exists in OUT (directories may exist).
fn refuse_existing(out: &Path, entries: &[&Entry]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for e in entries {
        if e.kind == EntryKind::Dir {
            continue;
        }
        let p = out.join(std::ffi::OsStr::from_bytes(&e.path));
        if p.symlink_metadata().is_ok() {
            bail!("{} already exists; nothing was restored (after an interrupted extract, re-run with --resume to continue it; --overwrite replaces existing files; or choose an empty -o)", p.display());
        }
    }
    Ok(())
}

/// Restores one entry; returns what is wrong with it, if anything.
fn restore_entry(restorer: &mut Restorer, e: &Entry) -> Result<Option<Damage>> {
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

/// What the reading thread sends for each regular file, in order: pieces and gaps, then its hash.
enum Feed {
    /// Bytes at `off` within the file (shared with the decoded chunk, not copied).
    Piece(u64, Piece),
    /// Bytes `[off, off+len)` that could not be read, and why.
    Gap(u64, u64, Gap),
    /// The file is complete; SHA-256 of the pieces (gaps not hashed).
    End([u8; 32]),
}

/// Batches queued between the reading thread and the writer.
const FEED_BATCHES: usize = 4;

/// Feed messages travel in batches: one channel hand-over (and thread wake-up) per batch instead
/// of two per file, which dominated restoring many small files.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_MESSAGES: usize = 4096;

/// Collects feed messages and sends them in batches.
struct Batcher {
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
    batch: Vec<(usize, Feed)>,
    bytes: usize,
}

impl Batcher {
    fn push(&mut self, i: usize, msg: Feed) -> std::io::Result<()> {
        if let Feed::Piece(_, b) = &msg {
            self.bytes += b.len();
        }
        self.batch.push((i, msg));
        if self.bytes >= BATCH_BYTES || self.batch.len() >= BATCH_MESSAGES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        self.tx
            .send(batch)
            .map_err(|_| std::io::Error::other("stopped"))
    }
}

/// The restoring side of the feed: hands out the messages of the batches one at a time.
struct FeedRx {
    rx: std::sync::mpsc::Receiver<Vec<(usize, Feed)>>,
    pending: std::collections::VecDeque<(usize, Feed)>,
}

impl FeedRx {
    fn new(rx: std::sync::mpsc::Receiver<Vec<(usize, Feed)>>) -> Self {
        FeedRx {
            rx,
            pending: std::collections::VecDeque::new(),
        }
    }

    fn recv(&mut self) -> Result<(usize, Feed), std::sync::mpsc::RecvError> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Ok(m);
            }
            self.pending = self.rx.recv()?.into();
        }
    }
}

/// Reading thread: every regular file's content from the stream of its generation, in entry order.
fn feed_contents(
    entries: &[&Entry],
    mut streams: ChainStreams<'_>,
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
) {
    let files = || {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EntryKind::File && !crate::compat::seed_chain::in_seed(e))
    };
    // Every chunk the files need is known now: workers decode them in that order, ahead of the
    // hashing here, so decoding, hashing and writing the files all overlap.
    let plan =
        streams.plan(files().map(|(_, e)| (e.data.generation, e.data.content_offset, e.size)));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    streams.read_ahead(plan, threads, READ_AHEAD_CHUNKS, |streams| {
        feed_files(files(), streams, tx)
    });
}

/// Chunks decoded ahead of the hashing (each normally 1 MiB): enough to keep every core busy
/// through a run of small files, little enough to bound memory whatever the data.
const READ_AHEAD_CHUNKS: usize = 16;

/// Hashes every file's pieces in order and sends them, with any gaps and the hash, to the writer.
fn feed_files<'e>(
    files: impl Iterator<Item = (usize, &'e &'e Entry)>,
    streams: &mut ChainStreams<'_>,
    tx: std::sync::mpsc::SyncSender<Vec<(usize, Feed)>>,
) {
    let out = std::cell::RefCell::new(Batcher {
        tx,
        batch: Vec::new(),
        bytes: 0,
    });
    for (i, e) in files {
        let mut h = Sha256::new();
        let gaps: std::cell::RefCell<Vec<(u64, (u64, Gap))>> = std::cell::RefCell::new(Vec::new());
        let r = streams.read_range(
            e.data.generation,
            e.data.content_offset,
            e.size,
            &mut |off, bytes| {
                h.update(&*bytes);
                let mut out = out.borrow_mut();
                for (o, (l, w)) in gaps.borrow_mut().drain(..) {
                    out.push(i, Feed::Gap(o, l, w))?;
                }
                out.push(i, Feed::Piece(off, bytes))
            },
            &mut |off, len, why| gaps.borrow_mut().push((off, (len, why))),
        );
        if r.is_err() {
            return;
        }
        let mut out = out.borrow_mut();
        for (off, (len, why)) in gaps.into_inner() {
            if out.push(i, Feed::Gap(off, len, why)).is_err() {
                return;
            }
        }
        if out.push(i, Feed::End(h.finalize().into())).is_err() {
            return;
        }
    }
    let _ = out.borrow_mut().flush();
}

/// Skips the feed of entry `i` (a file kept by --resume).
fn drain(rx: &mut FeedRx, i: usize, e: &Entry) -> Result<()> {
    if e.kind != EntryKind::File {
        return Ok(());
    }
    loop {
        match rx.recv() {
            Ok((j, Feed::End(_))) if j == i => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("the reading thread stopped early"),
        }
    }
}

fn restore_file(
    restorer: &mut Restorer,
    rx: &mut FeedRx,
    i: usize,
    e: &Entry,
) -> Result<Option<Damage>> {
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
            bail!("the reading thread stopped early")
        };
        debug_assert_eq!(j, i);
        match msg {
            Feed::Piece(off, bytes) => {
                if let Some(file) = f.as_mut() {
                    file.write_at(off, &bytes)
                        .context("writing restored file (disk full?)")?;
                }
            }
            Feed::Gap(off, len, why) => gaps.push((off, off + len, why)),
            Feed::End(h) => break h,
        }
    };
    if let Some(file) = f.take() {
        restorer.finish_file(file, e)?;
    }
    if !gaps.is_empty() {
        gaps.sort_by_key(|g| g.0);
        let mut reasons: Vec<String> = gaps.iter().map(|g| g.2.to_string()).collect();
        reasons.dedup();
        return Ok(Some(Damage {
            path: e.path.clone(),
            ranges: merge_ranges(&gaps),
            reason: reasons.join("; "),
        }));
    }
    if e.sha256 != [0; 32] && hash != e.sha256 {
        return Ok(Some(Damage {
            path: e.path.clone(),
            ranges: vec![(0, e.size)],
            reason: "SHA-256 mismatch".into(),
        }));
    }
    Ok(None)
}

fn merge_ranges(gaps: &[(u64, u64, Gap)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(a, b, _) in gaps {
        match out.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// Writes OUT/corrupted-files.txt (if needed) and returns the exit code.
pub fn finish_report(out: &Path, damaged: &[Damage], total: usize, ui: &Ui) -> Result<i32> {
    finish_report_with_notes(out, damaged, &[], total, ui)
}

/// Like [`finish_report`], with notes about damage that cannot be pinned to a file (a disc whose
/// index is lost while the catalog is missing too). Any note makes the result "damaged" (exit 1).
pub fn finish_report_with_notes(
    out: &Path,
    damaged: &[Damage],
    notes: &[String],
    total: usize,
    ui: &Ui,
) -> Result<i32> {
    let path = out.join("corrupted-files.txt");
    if damaged.is_empty() && notes.is_empty() {
        ui.say(&format!(
            "Restored {total} entries into {}; every file checked bit-exact.",
            out.display()
        ));
        return Ok(crate::exit::OK);
    }
    let mut text = String::from(
        "# bd-archive: files not restored bit-exact\n\
# path<TAB>byte ranges not restored (start-end, end exclusive; '-' if none)<TAB>reason\n",
    );
    for n in notes {
        text.push_str(&format!("# NOTE: {n}\n"));
        ui.warn(n);
    }
    for d in damaged {
        let ranges = if d.ranges.is_empty() {
            "-".to_string()
        } else {
            d.ranges
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        text.push_str(&format!(
            "{}\t{ranges}\t{}\n",
            escape_path(&d.path),
            d.reason
        ));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    ui.warn(&format!(
        "{} of {total} entries not restored bit-exact; listed in {}",
        damaged.len(),
        path.display()
    ));
    Ok(crate::exit::DAMAGED)
}
