//! Disc planning before anything is written: how much data, how well it compresses (sampled from
//! the source itself), how many discs, and how full the last one will be.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::archive::disc_writer::TRAILER_SECTORS;
use crate::archive::scan::SourceEntry;
use crate::fec;
use crate::format::catalog::EntryKind;
use crate::format::chunk::CHUNK_SIZE;
use crate::image::FIRST_DATA_LBA;
use crate::sector::SECTOR_SIZE;

/// Bytes read from the source to estimate the compression ratio.
pub const SAMPLE_BYTES: u64 = 32 << 20;

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

/// Samples up to [`SAMPLE_BYTES`] of file content spread evenly over `entries` and returns
/// (compressed/original ratio, bytes sampled). Unreadable files are skipped.
pub fn sample_ratio(entries: &[SourceEntry], root: &Path, level: Option<i32>) -> (f64, u64) {
    let Some(level) = level else { return (1.0, 0) };
    let files: Vec<&SourceEntry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && e.size > 0)
        .collect();
    let total: u64 = files.iter().map(|e| e.size).sum();
    if total == 0 {
        return (1.0, 0);
    }
    let piece = (CHUNK_SIZE as u64 / 4).min(total);
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
            let f = File::open(files[fi].path_in(root)).ok()?;
            let mut buf = vec![0u8; piece.min(files[fi].size) as usize];
            let n = f.read_at(&mut buf, off).ok()?;
            buf.truncate(n);
            let c = zstd::bulk::compress(&buf, level).ok()?;
            Some((n as u64, (c.len() as u64).min(n as u64)))
        })
        .collect();
    let raw: u64 = results.iter().map(|r| r.0).sum();
    let comp: u64 = results.iter().map(|r| r.1).sum();
    if raw == 0 {
        return (1.0, 0);
    }
    (comp as f64 / raw as f64, raw)
}

/// Computes the overview for the scanned entries.
pub fn overview(
    entries: &[SourceEntry],
    capacity_sectors: u64,
    redundancy_pct: u32,
    ratio: f64,
    ratio_source: String,
    fixed_bytes_per_disc: u64,
) -> Overview {
    let mut o = Overview {
        entries: entries.len() as u64,
        files: 0,
        dirs: 0,
        others: 0,
        data_bytes: 0,
        stream_bytes: 1024,
        ratio,
        ratio_source,
        est_stored_bytes: 0,
        capacity_bytes: capacity_sectors * SECTOR_SIZE as u64,
        data_per_disc: 0,
        redundancy_pct,
        discs: 0,
        last_disc_fill_pct: 0.0,
        fill_parity_loss_pct: 0,
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
    let fixed = FIRST_DATA_LBA + 64 + fixed_bytes_per_disc.div_ceil(SECTOR_SIZE as u64);
    o.data_per_disc = max_d.saturating_sub(fixed) * SECTOR_SIZE as u64;
    // Catalog on the last disc plus the per-disc indexes (together about one more catalog);
    // both compress well, this is an upper estimate.
    let catalog = o.entries * 160
        + entries.iter().map(|e| e.rel_path.len() as u64).sum::<u64>()
        + chunks * 48;
    let total = o.est_stored_bytes + 2 * catalog;
    o.discs = total.div_ceil(o.data_per_disc.max(1)).max(1);
    let last = total - (o.discs - 1) * o.data_per_disc;
    o.last_disc_fill_pct = 100.0 * last as f64 / o.data_per_disc.max(1) as f64;
    let last_protected = last / SECTOR_SIZE as u64 + fixed;
    let avail = (capacity_sectors - TRAILER_SECTORS).saturating_sub(last_protected);
    o.fill_parity_loss_pct = fill_parity_loss_pct(last_protected, avail).max(redundancy_pct);
    o
}

/// What `--fill-parity` gives a disc of `protected` sectors with `avail` sectors free for the FEC:
/// the largest whole percentage f of its sectors that may be lost at random and still be repaired,
/// for the layout `fec::plan_fill` would write. A sector whose checksum is lost in both table
/// copies counts as lost too, so a stripe sees e = f + (1 − f)·f²; the rule `-r` keeps is
/// m ≥ e·n + z·√(e(1−e)·n) per stripe of n = k + m shards (z = [`fec::LOSS_SIGMAS`]). Capped at
/// [`fec::MAX_LOSS_PCT`], the most `-r` promises (beyond it the few copies of the FEC header
/// become the weak point).
fn fill_parity_loss_pct(protected: u64, avail: u64) -> u32 {
    let Ok(layout) = fec::plan_fill(protected.max(1), avail) else {
        return 0;
    };
    let m = f64::from(layout.parity_per_stripe());
    let n = f64::from(layout.data_per_stripe()) + m;
    let z = fec::LOSS_SIGMAS;
    (1..=fec::MAX_LOSS_PCT)
        .rev()
        .find(|&pct| {
            let f = f64::from(pct) / 100.0;
            let e = f + (1.0 - f) * f * f;
            m >= e * n + z * (e * (1.0 - e) * n).sqrt()
        })
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
