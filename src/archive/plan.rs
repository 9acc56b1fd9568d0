//! Disc planning before anything is written: how much data, how well it compresses (sampled from
//! the source itself), how many discs, and how full the last one will be.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::archive::disc_writer::TRAILER_SECTORS;
use crate::archive::reserve::{self, DiscShape};
use crate::archive::scan::SourceEntry;
use crate::fec;
use crate::format::catalog::EntryKind;
use crate::format::chunk::CHUNK_SIZE;
use crate::image::FIRST_DATA_LBA;
use crate::sector::SECTOR_SIZE;

/// Bytes read from the source to estimate the compression ratio.
pub const SAMPLE_BYTES: u64 = 64 << 20;

/// The overview shown before `create` writes anything (also `--dry-run --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// All entries.
    pub entries: u64,
    /// Regular files (incl. hard-link names).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs, sockets.
    pub others: u64,
    /// Sum of regular file sizes.
    pub data_bytes: u64,
    /// Estimated tar stream bytes (headers + content + padding).
    pub stream_bytes: u64,
    /// Compressed/original, from sampling or --ratio.
    pub ratio: f64,
    /// How sure the sampled ratio is: ± this much covers it with about 95 % confidence (0 when
    /// given with --ratio or -c none).
    pub ratio_margin: f64,
    /// Discs needed at ratio − margin and ratio + margin: the range the real count falls in.
    pub discs_range: (u64, u64),
    /// Paths left out by --exclude, --exclude-file, --exclude-caches, --one-file-system (a
    /// directory counts once, not its contents).
    pub excluded: u64,
    /// Where the ratio came from ("sampled 32 MiB of the source", "--ratio").
    pub ratio_source: String,
    /// Estimated bytes after compression incl. chunk framing.
    pub est_stored_bytes: u64,
    /// Disc capacity in bytes.
    pub capacity_bytes: u64,
    /// Data bytes that fit on one disc after filesystem, index and FEC overhead.
    pub data_per_disc: u64,
    /// FEC redundancy percent.
    pub redundancy_pct: u32,
    /// Estimated discs.
    pub discs: u64,
    /// How full the last disc will be (data + catalog), percent.
    pub last_disc_fill_pct: f64,
    /// With --fill-parity: share of the last disc's sectors (percent) that may be lost and still
    /// be repaired, in the sense of `-r` (a burst always, a random scatter with the 5 σ margin);
    /// at least `redundancy_pct`, and never more than the parity that fits can deliver.
    pub fill_parity_loss_pct: u32,
    /// Parity discs per generation (`--parity-discs`).
    pub parity_discs: u32,
    /// Data bytes each data disc gives up so that a parity disc fits the same medium (its
    /// filesystem, README, FORMAT.md, manifest and catalog copy): a true upper bound
    /// ([`reserve::parity_reserve`]), so the parity disc always fits; counted in `data_per_disc`
    /// only when `parity_discs` > 0, shown either way (what P = 1 would cost).
    pub parity_reserve_bytes: u64,
}

/// Estimated tar-stream size of an entry.
fn stream_size(e: &SourceEntry) -> u64 {
    let pax = 512 + (60 + e.rel_path.len() as u64 + e.link_target.len() as u64).div_ceil(512) * 512;
    let content = if e.kind == EntryKind::File {
        e.size.div_ceil(512) * 512
    } else {
        0
    };
    if e.kind == EntryKind::Socket {
        0
    } else {
        pax + 512 + content
    }
}

/// Bytes of one sample window: many small windows spread over the tree see more of its variety
/// than a few large ones; each is compressed as the stream would hold it (see [`sample_ratio`]).
pub const SAMPLE_WINDOW: u64 = 512 << 10;

/// A compression ratio measured on samples of the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioSample {
    /// Compressed / original over all windows.
    pub ratio: f64,
    /// Two standard errors of `ratio` (about 95 % confidence), from the windows' spread.
    pub margin: f64,
    /// Bytes sampled.
    pub bytes: u64,
}

/// Samples up to [`SAMPLE_BYTES`] of file content spread evenly over `entries` and returns
/// (compressed/original ratio, bytes sampled). Unreadable files are skipped.
pub fn sample_ratio(entries: &[SourceEntry], root: &Path, level: Option<i32>) -> (f64, u64) {
    let s = sample_ratio_with_margin(entries, root, level);
    (s.ratio, s.bytes)
}

/// Compresses [`SAMPLE_BYTES`] / [`SAMPLE_WINDOW`] windows of the tar stream `entries` would
/// make, at positions spread evenly over their content: a window starting in a small file runs
/// on into the next ones with tar-like headers between them (many small files compress better
/// together than alone, and their headers nearly vanish), as in the stream's 1 MiB chunks. The
/// ratio's margin comes from how much the windows differ. Unreadable files are skipped.
pub fn sample_ratio_with_margin(
    entries: &[SourceEntry],
    root: &Path,
    level: Option<i32>,
) -> RatioSample {
    let none = RatioSample {
        ratio: 1.0,
        margin: 0.0,
        bytes: 0,
    };
    let Some(level) = level else { return none };
    let files: Vec<&SourceEntry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && e.size > 0)
        .collect();
    let total: u64 = files.iter().map(|e| e.size).sum();
    if total == 0 {
        return none;
    }
    let piece = SAMPLE_WINDOW.min(total);
    let n = (SAMPLE_BYTES / piece).max(1);
    // Byte positions spread evenly over the concatenation of all files.
    let mut picks = Vec::new();
    let (mut fi, mut start) = (0usize, 0u64);
    for i in 0..n {
        let pos = (i * 2 + 1) * total / (2 * n);
        while fi < files.len() && start + files[fi].size <= pos {
            start += files[fi].size;
            fi += 1;
        }
        if let Some(f) = files.get(fi) {
            let off = (pos - start).min(f.size.saturating_sub(piece));
            picks.push((fi, off));
        }
    }
    picks.sort_unstable();
    picks.dedup();
    let results: Vec<(u64, u64)> = picks
        .par_iter()
        .filter_map(|&(fi, off)| {
            let buf = stream_window(&files, fi, off, piece as usize, root);
            if buf.is_empty() {
                return None;
            }
            let c = zstd::bulk::compress(&buf, level).ok()?;
            Some((buf.len() as u64, (c.len() as u64).min(buf.len() as u64)))
        })
        .collect();
    let raw: u64 = results.iter().map(|r| r.0).sum();
    let comp: u64 = results.iter().map(|r| r.1).sum();
    if raw == 0 {
        return none;
    }
    let ratio = comp as f64 / raw as f64;
    // Ratio estimator's variance: Σ(cᵢ − R·uᵢ)² / (k(k−1)·ū²).
    let k = results.len() as f64;
    let margin = if results.len() > 1 {
        let mean_raw = raw as f64 / k;
        let ss: f64 = results
            .iter()
            .map(|&(u, c)| (c as f64 - ratio * u as f64).powi(2))
            .sum();
        2.0 * (ss / (k * (k - 1.0))).sqrt() / mean_raw
    } else {
        ratio
    };
    RatioSample {
        ratio,
        margin,
        bytes: raw,
    }
}

/// Up to `len` bytes of the stream from byte `off` of `files[fi]` on: content padded to 512, then
/// for each following file a header-like block (its path in 1536 mostly-zero bytes, as the PAX
/// and ustar headers are) and its content.
fn stream_window(files: &[&SourceEntry], fi: usize, off: u64, len: usize, root: &Path) -> Vec<u8> {
    let mut buf = Vec::with_capacity(len);
    let mut at = off;
    for (i, f) in files.iter().enumerate().skip(fi) {
        if buf.len() >= len {
            break;
        }
        if i > fi {
            let start = buf.len();
            buf.resize(start + 1536, 0);
            let p = &f.rel_path[..f.rel_path.len().min(500)];
            buf[start + 512..start + 512 + p.len()].copy_from_slice(p);
            buf[start + 1024..start + 1024 + p.len().min(100)]
                .copy_from_slice(&p[..p.len().min(100)]);
            at = 0;
        }
        let Ok(file) = File::open(f.path_in(root)) else {
            continue;
        };
        let want = (len.saturating_sub(buf.len()) as u64).min(f.size.saturating_sub(at)) as usize;
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = file.read_at(&mut buf[start..], at).unwrap_or(0);
        buf.truncate(start + n);
        buf.resize(buf.len().div_ceil(512) * 512, 0);
    }
    buf.truncate(len);
    buf
}

/// Computes the overview for the scanned entries.
#[allow(clippy::too_many_arguments)]
pub fn overview(
    entries: &[SourceEntry],
    capacity_sectors: u64,
    redundancy_pct: u32,
    ratio: f64,
    ratio_margin: f64,
    ratio_source: String,
    shape: &DiscShape,
    parity_discs: u32,
) -> Overview {
    let mut o = Overview {
        entries: entries.len() as u64,
        files: 0,
        dirs: 0,
        others: 0,
        data_bytes: 0,
        stream_bytes: 1024,
        ratio,
        ratio_margin,
        discs_range: (0, 0),
        excluded: 0,
        ratio_source,
        est_stored_bytes: 0,
        capacity_bytes: capacity_sectors * SECTOR_SIZE as u64,
        data_per_disc: 0,
        redundancy_pct,
        discs: 0,
        last_disc_fill_pct: 0.0,
        fill_parity_loss_pct: 0,
        parity_discs,
        parity_reserve_bytes: 0,
    };
    for e in entries {
        match e.kind {
            EntryKind::File | EntryKind::HardLink => o.files += 1,
            EntryKind::Dir => o.dirs += 1,
            _ => o.others += 1,
        }
        o.data_bytes += e.size;
        o.stream_bytes += stream_size(e);
    }
    let chunks = o.stream_bytes.div_ceil(CHUNK_SIZE as u64);
    // Headers compress far better than typical content; the ratio is applied to everything.
    o.est_stored_bytes = (o.stream_bytes as f64 * ratio) as u64 + chunks * 100;
    let max_d = fec::max_protected_for_loss(capacity_sectors - TRAILER_SECTORS, redundancy_pct);
    let fixed = FIRST_DATA_LBA + 64 + shape.binary_bytes().div_ceil(SECTOR_SIZE as u64);
    // Catalog on the last disc plus the per-disc indexes (together about one more catalog);
    // both compress well, this is an upper estimate.
    let catalog = o.entries * 160
        + entries.iter().map(|e| e.rel_path.len() as u64).sum::<u64>()
        + chunks * 48;
    o.parity_reserve_bytes =
        reserve::parity_reserve(entries, shape, max_d).sectors * SECTOR_SIZE as u64;
    let reserve = if parity_discs > 0 {
        o.parity_reserve_bytes / SECTOR_SIZE as u64
    } else {
        0
    };
    o.data_per_disc = max_d.saturating_sub(fixed + reserve) * SECTOR_SIZE as u64;
    let total = o.est_stored_bytes + 2 * catalog;
    o.discs = total.div_ceil(o.data_per_disc.max(1)).max(1);
    let discs_at = |r: f64| {
        let stored = (o.stream_bytes as f64 * r.clamp(0.0, 1.0)) as u64 + chunks * 100;
        (stored + 2 * catalog)
            .div_ceil(o.data_per_disc.max(1))
            .max(1)
    };
    o.discs_range = (
        discs_at(ratio - ratio_margin),
        discs_at(ratio + ratio_margin).max(o.discs),
    );
    let last = total - (o.discs - 1) * o.data_per_disc;
    o.last_disc_fill_pct = 100.0 * last as f64 / o.data_per_disc.max(1) as f64;
    let last_protected = last / SECTOR_SIZE as u64 + fixed;
    let avail = (capacity_sectors - TRAILER_SECTORS).saturating_sub(last_protected);
    o.fill_parity_loss_pct = fill_parity_loss_pct(last_protected, avail).max(redundancy_pct);
    o
}

/// What `--fill-parity` gives a disc of `protected` sectors with `avail` sectors free for the FEC:
/// the largest whole percentage of its sectors that may be lost under the rule `-r` keeps
/// ([`fec::parity_for_loss`]: a burst always, a random scatter with failure probability ≤ 10⁻⁶),
/// for the layout `fec::plan_fill` would write. Capped at [`fec::MAX_LOSS_PCT`], the most `-r`
/// promises.
fn fill_parity_loss_pct(protected: u64, avail: u64) -> u32 {
    let Ok(layout) = fec::plan_fill(protected.max(1), avail) else {
        return 0;
    };
    let m = u64::from(layout.parity_per_stripe());
    let k = u64::from(layout.data_per_stripe());
    let stripes = layout.stripes();
    (1..=fec::MAX_LOSS_PCT)
        .rev()
        .find(|&pct| fec::parity_for_loss(k, stripes, pct) <= m)
        .unwrap_or(0)
}

/// `--min-last-disc-fill PCT`: defers the newest files (by mtime) among those `may_defer` allows,
/// until the estimated last disc is at least `pct` % full — which happens when the deferred bytes
/// empty the last disc, so the one before it becomes the last. Hard-link names of a deferred file
/// are deferred with it. Returns the deferred entries (removed from `store`); nothing is deferred
/// when the target cannot be reached (a single disc, or not enough candidates).
pub fn defer_for_fill(
    store: &mut Vec<SourceEntry>,
    may_defer: &dyn Fn(&SourceEntry) -> bool,
    pct: u32,
    est: &dyn Fn(&[SourceEntry]) -> Overview,
) -> Vec<SourceEntry> {
    let ov = est(store);
    if pct == 0 || ov.last_disc_fill_pct >= f64::from(pct) || ov.discs < 2 {
        return Vec::new();
    }
    // Bytes to take off so the total fits one disc less.
    let excess = ov
        .est_stored_bytes
        .saturating_sub((ov.discs - 1) * ov.data_per_disc);
    let mut candidates: Vec<usize> = (0..store.len())
        .filter(|&i| store[i].kind == EntryKind::File && may_defer(&store[i]))
        .collect();
    candidates.sort_by_key(|&i| std::cmp::Reverse((store[i].mtime_sec, store[i].mtime_nsec)));
    let mut chosen = std::collections::HashSet::new();
    let mut removed = 0u64;
    for i in candidates {
        if removed >= excess {
            break;
        }
        removed += ((store[i].size as f64 * ov.ratio) as u64) + 1536;
        chosen.insert(i);
    }
    if removed < excess {
        return Vec::new();
    }
    let names: std::collections::HashSet<Vec<u8>> =
        chosen.iter().map(|&i| store[i].rel_path.clone()).collect();
    let mut deferred = Vec::new();
    let mut kept = Vec::with_capacity(store.len());
    for (i, e) in std::mem::take(store).into_iter().enumerate() {
        let linked = e.kind == EntryKind::HardLink && names.contains(&e.link_target);
        if chosen.contains(&i) || linked {
            deferred.push(e);
        } else {
            kept.push(e);
        }
    }
    *store = kept;
    deferred
}
