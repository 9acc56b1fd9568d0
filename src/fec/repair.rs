//! Rebuilding lost sectors: stripe passes like `encode`, decoding only stripes that lost something.

use super::encode::{stripes_per_pass, write_metadata, Pool};
use super::layout::{sector_crc, ENTRIES_PER_TABLE_SECTOR};
use super::scan::{read_tolerant, visit_stripes, FecScan, LocatedFec, BLOCK_SECTORS};
use super::{io_err, FecError};
use crate::sector::{SectorSource, SECTOR_SIZE};
use crate::util::sector_ranges::SectorRanges;
use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SS: usize = SECTOR_SIZE;

/// What a repair achieved: counts of rebuilt sectors and exactly what could not be rebuilt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepairReport {
    /// Lost protected sectors handed to the sink (rebuilt, or re-read and verified).
    pub repaired_protected: u64,
    /// Lost parity sectors rebuilt (only by `write_repaired_image`).
    pub repaired_parity: u64,
    /// Stripes with more than m losses (or a failed decode); ascending.
    pub failed_stripes: Vec<u64>,
    /// Lost protected LBAs that could not be rebuilt. Extract reports the files on them.
    pub unrepaired_lbas: SectorRanges,
}

impl RepairReport {
    /// True if every lost protected sector was rebuilt.
    pub fn is_complete(&self) -> bool {
        self.unrepaired_lbas.is_empty() && self.failed_stripes.is_empty()
    }
}

/// Output of one stripe: rebuilt (lba, bytes, is_parity) or failure.
type StripeOut = Result<Vec<(u64, Vec<u8>, bool)>, ()>;

/// Rebuilds every lost protected sector of every stripe within budget and hands each to `sink` (in
/// stripe-pass order, not LBA order); stripes over budget are listed in the report, not an error.
///
/// Reads only the stripe windows that contain damage, in passes bounded by `memory_budget`; every
/// shard read is re-verified against the checksum table, and every rebuilt sector is checked too.
pub fn repair(
    src: &dyn SectorSource,
    fec: &LocatedFec,
    scan: &FecScan,
    memory_budget: u64,
    sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
) -> Result<RepairReport, FecError> {
    repair_impl(src, fec, scan, memory_budget, false, sink)
}

/// Which stripes a repair decodes: those with a lost sector to rebuild, less those over budget.
struct RepairPlan {
    /// Per stripe (length S): holds a lost sector this repair must rebuild.
    want: Vec<bool>,
    /// Per stripe (length S): more losses than parity (from the scan), or its decode failed.
    failed: Vec<bool>,
    /// The stripes to decode (wanted and not failed), ascending.
    needed: Vec<u64>,
}

impl RepairPlan {
    fn new(l: &super::FecLayout, scan: &FecScan, with_parity: bool) -> Self {
        let s = l.stripes() as usize;
        let mut want = vec![false; s];
        let mut all = false;
        let lost = [(&scan.bad_protected, false), (&scan.bad_parity, true)];
        for (ranges, parity) in lost.into_iter().take(1 + usize::from(with_parity)) {
            visit_stripes(l, ranges, parity, &mut |_| all = true, &mut |j| {
                want[j as usize] = true
            });
        }
        if all {
            want.fill(true); // a whole lost row touches every stripe
        }
        let m = l.parity_per_stripe();
        let failed: Vec<bool> = (0..s)
            .map(|j| want[j] && scan.stripe_losses[j] > m)
            .collect();
        let needed = (0..s as u64)
            .filter(|&j| want[j as usize] && !failed[j as usize])
            .collect();
        RepairPlan {
            want,
            failed,
            needed,
        }
    }

    /// The needed stripes cut into windows `[a, b)` of at most `w_max` adjacent stripes, each
    /// starting at a needed stripe (a window is read in one pass).
    fn windows(&self, w_max: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut idx = 0;
        while idx < self.needed.len() {
            let a = self.needed[idx];
            let mut b = a + 1;
            while idx < self.needed.len() && self.needed[idx] < a + w_max {
                b = self.needed[idx] + 1;
                idx += 1;
            }
            out.push((a, b));
        }
        out
    }

    /// Whether stripe j is to be decoded in this pass.
    fn decodes(&self, j: u64) -> bool {
        self.want[j as usize] && !self.failed[j as usize]
    }
}

fn repair_impl(
    src: &dyn SectorSource,
    fec: &LocatedFec,
    scan: &FecScan,
    memory_budget: u64,
    with_parity: bool,
    sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
) -> Result<RepairReport, FecError> {
    let l = &fec.layout;
    if scan.layout != *l {
        return Err(FecError::Geometry(
            "scan was made against another FEC layout".into(),
        ));
    }
    let (k, m) = (l.data_per_stripe() as usize, l.parity_per_stripe() as usize);
    let mut plan = RepairPlan::new(l, scan, with_parity);
    let per_stripe = l.stripe_bytes() + 2 * m as u64 * SS as u64;
    let w_max = stripes_per_pass(l, memory_budget, 0, per_stripe)?;
    let mut report = RepairReport::default();
    let windows = plan.windows(w_max);
    // Sized for the widest window actually needed (nothing when no stripe can be decoded).
    let widest = windows.iter().map(|(a, b)| b - a).max().unwrap_or(0) as usize;
    let mut buf = vec![0u8; (k + m) * widest * SS];
    let codecs = Codecs::default();
    for (a, b) in windows {
        let w = (b - a) as usize;
        let buf = &mut buf[..(k + m) * w * SS];
        let present = read_window(src, l, scan, a, w, buf);
        let window = Window {
            a,
            w,
            buf,
            present: &present,
        };
        for (j, out) in rebuild_window(l, scan, &plan, &window, with_parity, &codecs) {
            let Ok(sectors) = out else {
                plan.failed[j as usize] = true;
                continue;
            };
            for (lba, data, is_parity) in sectors {
                sink(lba, &data).map_err(io_err(format!("storing repaired sector {lba}")))?;
                if is_parity {
                    report.repaired_parity += 1;
                } else {
                    report.repaired_protected += 1;
                }
            }
        }
    }
    report.failed_stripes = (0..l.stripes())
        .filter(|&j| plan.failed[j as usize])
        .collect();
    report.unrepaired_lbas = scan.protected_in_stripes(&|j| plan.failed[j as usize]);
    Ok(report)
}

/// Decoders and encoders reused across stripes (their set-up allocates).
struct Codecs {
    decoders: Pool<ReedSolomonDecoder>,
    encoders: Pool<ReedSolomonEncoder>,
}

impl Default for Codecs {
    fn default() -> Self {
        Codecs {
            decoders: Pool::new(),
            encoders: Pool::new(),
        }
    }
}

/// One pass's stripes `[a, a + w)` in memory: row x (< k: data row x; k + p: parity row p)
/// holds stripe a + t at slot t; `present[x][t]` says whether that shard is a verified sector.
struct Window<'b> {
    a: u64,
    w: usize,
    buf: &'b [u8],
    present: &'b [Vec<bool>],
}

/// Reads the shards of stripes `[a, a + w)` into `buf` (row by row: the one or two stretches of
/// each row holding those stripes, FORMAT.md §3.1) and checks each against the checksum table;
/// returns per row which shards are present. Virtual zero sectors past D count as present.
fn read_window(
    src: &dyn SectorSource,
    l: &super::FecLayout,
    scan: &FecScan,
    a: u64,
    w: usize,
    buf: &mut [u8],
) -> Vec<Vec<bool>> {
    let (d, s, k) = (
        l.protected_sectors(),
        l.stripes(),
        u64::from(l.data_per_stripe()),
    );
    buf.par_chunks_mut(w * SS)
        .enumerate()
        .map(|(x, row)| {
            let x = x as u64;
            let mut present = vec![true; w];
            for (col, t0, len) in l.row_parts(x, a, w as u64) {
                let (lba0, g0, limit) = if x < k {
                    (x * s + col, x * s + col, d)
                } else {
                    let p = x - k;
                    (l.parity_row_lba(p) + col, d + p * s + col, u64::MAX)
                };
                let part = &mut row[t0 * SS..(t0 + len) * SS];
                let real = limit.saturating_sub(lba0).min(len as u64) as usize;
                let ok = read_tolerant(src, lba0, &mut part[..real * SS]);
                part[real * SS..].fill(0);
                for t in 0..real {
                    let sec = &part[t * SS..(t + 1) * SS];
                    present[t0 + t] = ok[t]
                        && scan.expected_crc(g0 + t as u64)
                            == Some(sector_crc(lba0 + t as u64, sec));
                }
            }
            present
        })
        .collect()
}

/// Decodes every stripe of the window this repair wants, in parallel.
fn rebuild_window(
    l: &super::FecLayout,
    scan: &FecScan,
    plan: &RepairPlan,
    win: &Window<'_>,
    with_parity: bool,
    codecs: &Codecs,
) -> Vec<(u64, StripeOut)> {
    let shard = |r: usize, t: usize| &win.buf[(r * win.w + t) * SS..][..SS];
    (0..win.w)
        .into_par_iter()
        .filter(|&t| plan.decodes(win.a + t as u64))
        .map(|t| {
            let j = win.a + t as u64;
            let out = rebuild_stripe(
                l,
                j,
                &|r| shard(r, t),
                &|r| win.present[r][t],
                scan,
                with_parity,
                codecs,
            );
            (j, out.map_err(|_| ()))
        })
        .collect()
}

/// Decodes one stripe: returns the lost protected sectors (and lost parity if `with_parity`).
fn rebuild_stripe<'b>(
    l: &super::FecLayout,
    j: u64,
    shard: &dyn Fn(usize) -> &'b [u8],
    present: &dyn Fn(usize) -> bool,
    scan: &FecScan,
    with_parity: bool,
    codecs: &Codecs,
) -> Result<Vec<(u64, Vec<u8>, bool)>, FecError> {
    let (decoders, encoders) = (&codecs.decoders, &codecs.encoders);
    let d = l.protected_sectors();
    let k = l.data_per_stripe() as usize;
    let m = l.parity_per_stripe() as usize;
    let fail = || FecError::Geometry(format!("stripe {j} cannot be rebuilt"));
    let missing_data: Vec<usize> = (0..k).filter(|&r| !present(r)).collect();
    let missing_parity: Vec<usize> = (0..m).filter(|&p| !present(k + p)).collect();
    if missing_data.len() + missing_parity.len() > m {
        return Err(fail());
    }
    let mut out = Vec::new();
    let mut restored: HashMap<usize, Vec<u8>> = HashMap::new();
    if !missing_data.is_empty() {
        let mut dec = match decoders.take() {
            Some(mut x) => {
                x.reset(k, m, SS)?;
                x
            }
            None => ReedSolomonDecoder::new(k, m, SS)?,
        };
        for r in (0..k).filter(|&r| present(r)) {
            dec.add_original_shard(r, shard(r))?;
        }
        for p in (0..m).filter(|&p| present(k + p)) {
            dec.add_recovery_shard(p, shard(k + p))?;
        }
        {
            let res = dec.decode()?;
            for &r in &missing_data {
                let data = res.restored_original(r).ok_or_else(fail)?;
                let lba = l.data_lba(r as u64, j);
                // Never hand out a rebuilt sector the checksum table contradicts.
                if scan
                    .expected_crc(lba)
                    .is_some_and(|c| c != sector_crc(lba, data))
                {
                    return Err(fail());
                }
                restored.insert(r, data.to_vec());
            }
        }
        decoders.give(dec);
    }
    // Protected sectors the scan called lost: rebuilt, or re-read fine this time.
    for r in 0..k {
        let lba = l.data_lba(r as u64, j);
        if lba >= d || (!scan.bad_protected.contains(lba) && !restored.contains_key(&r)) {
            continue;
        }
        let data = restored
            .get(&r)
            .cloned()
            .unwrap_or_else(|| shard(r).to_vec());
        out.push((lba, data, false));
    }
    if with_parity && !missing_parity.is_empty() {
        let mut enc = match encoders.take() {
            Some(mut x) => {
                x.reset(k, m, SS)?;
                x
            }
            None => ReedSolomonEncoder::new(k, m, SS)?,
        };
        for r in 0..k {
            match restored.get(&r) {
                Some(v) => enc.add_original_shard(v)?,
                None => enc.add_original_shard(shard(r))?,
            }
        }
        {
            let res = enc.encode()?;
            for &p in &missing_parity {
                let data = res.recovery(p).ok_or_else(fail)?;
                out.push((l.parity_lba(p as u64, j), data.to_vec(), true));
            }
        }
        encoders.give(enc);
    }
    Ok(out)
}

/// A view of a damaged source with every repairable lost protected sector rebuilt: what extract
/// and the filesystem reader use on a damaged disc. Rebuilt sectors live in RAM, or in a spill file
/// (deleted on drop) when they would exceed a quarter of the memory budget.
pub struct RepairedSource<S: SectorSource> {
    /// The damaged source; read for every sector not rebuilt (a reference or an `Arc`).
    inner: S,
    /// Rebuilt sectors held in memory (used when `spill` is None).
    ram: HashMap<u64, Box<[u8]>>,
    /// Spill file and LBA → byte offset in it (used instead of `ram` for large repairs).
    spill: Option<(File, HashMap<u64, u64>)>,
    /// At least D: the protected area is readable even from a truncated image.
    sectors: u64,
    /// What the repair achieved.
    report: RepairReport,
}

impl<S: SectorSource> RepairedSource<S> {
    /// Repairs `src` according to `scan`. With `spill_dir`, rebuilt sectors beyond a quarter of
    /// `memory_budget` go to an anonymous temporary file there instead of RAM.
    pub fn new(
        src: S,
        fec: &LocatedFec,
        scan: &FecScan,
        memory_budget: u64,
        spill_dir: Option<&Path>,
    ) -> Result<Self, FecError> {
        let repaired_bytes = scan.lost_data_sectors() * SS as u64;
        let mut spill = None;
        let mut budget = memory_budget;
        if let (Some(dir), true) = (spill_dir, repaired_bytes > memory_budget / 4) {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|x| x.as_nanos())
                .unwrap_or(0);
            let path: PathBuf = dir.join(format!(
                "bd-archive-repaired-{}-{nanos}.tmp",
                std::process::id()
            ));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err(format!("creating spill file {}", path.display())))?;
            let _ = std::fs::remove_file(&path); // anonymous from now on; freed when dropped
            spill = Some((f, HashMap::new()));
        } else {
            budget = budget.saturating_sub(repaired_bytes.min(memory_budget / 2));
        }
        let mut ram: HashMap<u64, Box<[u8]>> = HashMap::new();
        let report = repair_impl(&src, fec, scan, budget, false, &mut |lba, data| {
            match spill.as_mut() {
                Some((f, index)) => {
                    let off = index.len() as u64 * SS as u64;
                    f.write_all_at(data, off)?;
                    index.insert(lba, off);
                }
                None => {
                    ram.insert(lba, data.into());
                }
            }
            Ok(())
        })?;
        let d = fec.layout.protected_sectors();
        Ok(RepairedSource {
            ram,
            spill,
            sectors: src.sector_count().max(d),
            inner: src,
            report,
        })
    }

    /// What the repair achieved (failed stripes and unrecoverable LBAs).
    pub fn report(&self) -> &RepairReport {
        &self.report
    }

    /// Whether `lba` is a lost protected sector that could not be rebuilt: reading it is an error,
    /// never stale bytes. A binary search of the report's ranges, not a set beside them: a
    /// hostile geometry can make them cover the whole claimed disc (issue #16).
    fn is_unrepaired(&self, lba: u64) -> bool {
        self.report.unrepaired_lbas.contains(lba)
    }

    fn lookup(&self, lba: u64, out: &mut [u8]) -> Option<io::Result<()>> {
        if let Some(v) = self.ram.get(&lba) {
            out.copy_from_slice(v);
            return Some(Ok(()));
        }
        if let Some((f, index)) = &self.spill {
            if let Some(&off) = index.get(&lba) {
                return Some(f.read_exact_at(out, off));
            }
        }
        if self.is_unrepaired(lba) {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "sector {lba} of {} is damaged beyond repair",
                    self.inner.describe()
                ),
            )));
        }
        None
    }
}

impl<S: SectorSource> SectorSource for RepairedSource<S> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() % SS != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read length is not a whole number of sectors",
            ));
        }
        let n = (buf.len() / SS) as u64;
        let touched = self
            .report
            .unrepaired_lbas
            .overlaps(lba, lba.saturating_add(n))
            || (0..n).any(|i| {
                let x = lba.saturating_add(i);
                self.ram.contains_key(&x)
                    || self
                        .spill
                        .as_ref()
                        .is_some_and(|(_, ix)| ix.contains_key(&x))
            });
        if !touched {
            return self.inner.read_sectors(lba, buf);
        }
        for (i, sec) in buf.chunks_exact_mut(SS).enumerate() {
            let x = lba + i as u64;
            match self.lookup(x, sec) {
                Some(r) => r?,
                None => self.inner.read_sectors(x, sec)?,
            }
        }
        Ok(())
    }

    fn parallel_reads(&self) -> bool {
        self.inner.parallel_reads()
    }
    fn describe(&self) -> String {
        format!("{} (repaired)", self.inner.describe())
    }
}

/// `verify --repair -o FIXED.iso`: writes a complete new image — every readable sector copied, every
/// repairable protected and parity sector rebuilt, header copies and both checksum tables rewritten —
/// so the fixed image is as strong as a fresh one. Never writes to `src`; refuses an existing `out_path`.
pub fn write_repaired_image(
    src: &dyn SectorSource,
    fec: &LocatedFec,
    scan: &FecScan,
    out_path: &Path,
    memory_budget: u64,
) -> Result<RepairReport, FecError> {
    let l = &fec.layout;
    let have = src.sector_count();
    if !scan.is_repairable() && scan.missing_sectors() > have {
        return Err(FecError::Geometry(format!(
            "the FEC header of {} claims {} sectors past its end, more than the {have} it holds, \
             and the damage is beyond repair: not writing a repaired image of that size",
            src.describe(),
            scan.missing_sectors()
        )));
    }
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(out_path)
        .map_err(io_err(format!("creating {}", out_path.display())))?;
    let what = |x: &str| format!("{x} {}", out_path.display());
    let total = src.sector_count().max(l.region_end());
    let mut buf = vec![0u8; BLOCK_SECTORS as usize * SS];
    let mut lba = 0;
    while lba < total {
        let n = BLOCK_SECTORS.min(total - lba);
        let buf = &mut buf[..n as usize * SS];
        read_tolerant(src, lba, buf); // unreadable sectors come back zeroed
        out.write_all_at(buf, lba * SS as u64)
            .map_err(io_err(what("writing")))?;
        lba += n;
    }
    let report = repair_impl(src, fec, scan, memory_budget, true, &mut |lba, data| {
        out.write_all_at(data, lba * SS as u64)
    })?;
    // Table entries whose table sector was lost everywhere: take them from the rebuilt sectors, but
    // keep sectors we could not rebuild marked bad (inverted CRC) so a later scan still flags them.
    let failed: HashSet<u64> = report.failed_stripes.iter().copied().collect();
    let per = ENTRIES_PER_TABLE_SECTOR;
    let mut fill: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut sec = vec![0u8; SS];
    for i in (0..l.table_sectors()).filter(|&i| !scan.table.is_known(i)) {
        let entries = (i * per..((i + 1) * per).min(l.table_entries())).map(|g| {
            let at = l.entry_lba(g);
            let stripe = l.stripe_of_lba(at).unwrap_or(u64::MAX);
            out.read_exact_at(&mut sec, at * SS as u64)
                .map_err(io_err(what("reading back")))?;
            let crc = sector_crc(at, &sec);
            Ok(if failed.contains(&stripe) { !crc } else { crc })
        });
        fill.insert(i, entries.collect::<Result<_, FecError>>()?);
    }
    write_metadata(&out, l, &|g| {
        scan.expected_crc(g)
            .or_else(|| fill.get(&(g / per))?.get((g % per) as usize).copied())
            .unwrap_or(0)
    })?;
    out.sync_all().map_err(io_err(what("syncing")))?;
    Ok(report)
}
