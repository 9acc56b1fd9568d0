//! Finding the FEC region on a possibly damaged image and checking every protected and parity sector.

use super::layout::{
    open_table_parity, parse_meta_sector, seal_table_sector, sector_crc, table_entry,
    table_shard_of, FecLayout, MetaKind, ENTRIES_PER_TABLE_SECTOR, FEC_MAGIC, TABLE_PARITY_FACTOR,
};
use super::FecError;
use crate::sector::{SectorSource, SECTOR_SIZE};
use rayon::prelude::*;

const SS: usize = SECTOR_SIZE;
/// Sectors per large sequential read (2 MiB).
pub(crate) const BLOCK_SECTORS: u64 = 1024;

/// Reads `n` sectors at `lba` into `buf`; returns which sectors are readable. One large read first;
/// if it fails, sector by sector. Sectors past the end of the source are unreadable (and zeroed).
pub(crate) fn read_tolerant(src: &dyn SectorSource, lba: u64, buf: &mut [u8]) -> Vec<bool> {
    let n = (buf.len() / SS) as u64;
    let have = src.sector_count();
    let avail = have.saturating_sub(lba).min(n);
    let mut ok = vec![false; n as usize];
    buf[avail as usize * SS..].fill(0);
    if avail > 0
        && src
            .read_sectors(lba, &mut buf[..avail as usize * SS])
            .is_ok()
    {
        ok[..avail as usize].fill(true);
        return ok;
    }
    for i in 0..avail as usize {
        let sec = &mut buf[i * SS..(i + 1) * SS];
        ok[i] = src.read_sectors(lba + i as u64, sec).is_ok();
        if !ok[i] {
            sec.fill(0);
        }
    }
    ok
}

/// A found FEC region: its geometry and where it starts (always LBA D for version 1).
#[derive(Clone, Debug, PartialEq)]
pub struct LocatedFec {
    /// Geometry read from a checksummed header or table sector.
    pub layout: FecLayout,
    /// LBA of the first region sector (= `layout.protected_sectors()`).
    pub region_lba: u64,
}

/// Validates a sector read at `lba` as a metadata sector whose region start is consistent with it.
fn accept(sector: &[u8], lba: u64) -> Result<Option<LocatedFec>, FecError> {
    let Some(meta) = parse_meta_sector(sector)? else {
        return Ok(None);
    };
    // A copy at the wrong LBA (e.g. inside an archived image file) does not describe this disc.
    if lba.checked_sub(meta.self_offset) != Some(meta.layout.protected_sectors()) {
        return Ok(None);
    }
    let region_lba = meta.layout.protected_sectors();
    Ok(Some(LocatedFec {
        layout: meta.layout,
        region_lba,
    }))
}

/// Finds the FEC region: first at `hint_region_lba` (from our disc header), else by scanning the image
/// backwards (the region sits near the end) for any valid header or checksum-table sector.
///
/// Every one of the 4 + 2T metadata sectors carries the whole geometry, so one surviving sector
/// anywhere in the region is enough.
pub fn locate(
    src: &dyn SectorSource,
    hint_region_lba: Option<u64>,
) -> Result<LocatedFec, FecError> {
    let mut sec = vec![0u8; SS];
    if let Some(h) = hint_region_lba {
        if src.read_sectors(h, &mut sec).is_ok() {
            if let Ok(Some(found)) = accept(&sec, h) {
                return Ok(found);
            }
        }
    }
    let mut first_err = None;
    let mut buf = vec![0u8; BLOCK_SECTORS as usize * SS];
    let mut end = src.sector_count();
    while end > 0 {
        let start = end.saturating_sub(BLOCK_SECTORS);
        let buf = &mut buf[..(end - start) as usize * SS];
        let ok = read_tolerant(src, start, buf);
        for i in (0..(end - start) as usize).rev() {
            let s = &buf[i * SS..(i + 1) * SS];
            if !ok[i] || s[..8] != FEC_MAGIC {
                continue;
            }
            match accept(s, start + i as u64) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        end = start;
    }
    Err(match first_err {
        Some(e @ FecError::UnsupportedVersion(_)) => e,
        _ => FecError::NotFound(src.describe()),
    })
}

/// Result of checking every sector covered by the FEC: what is lost, per stripe, and whether the
/// damage is within the parity budget.
#[derive(Clone, Debug)]
pub struct FecScan {
    /// Geometry this scan was made against.
    pub(crate) layout: FecLayout,
    /// Expected CRC per table entry g (g < D: protected LBA g; else parity position g − D); only
    /// meaningful where `known[g / 479]`.
    pub(crate) expected: Vec<u32>,
    /// Per table sector: true if at least one copy was valid.
    pub(crate) known: Vec<bool>,
    /// Lost protected LBAs (unreadable, CRC mismatch, past EOF or checksum unknown), ascending.
    pub(crate) bad_protected: Vec<u64>,
    /// Lost parity positions q = p·S + j, ascending.
    pub(crate) bad_parity: Vec<u64>,
    /// Sectors counted lost only because every copy of their checksum-table sector was lost.
    pub(crate) unknown: u64,
    /// Lost shards (data + parity) per stripe; length S.
    pub(crate) stripe_losses: Vec<u32>,
    /// Metadata sectors (header copies + table sectors, both copies) that were unreadable or invalid.
    pub(crate) bad_metadata: u64,
}

impl FecScan {
    /// True if no protected, parity or metadata sector is damaged (exit code 0 material).
    pub fn is_clean(&self) -> bool {
        self.bad_protected.is_empty() && self.bad_parity.is_empty() && self.bad_metadata == 0
    }
    /// True if every stripe lost at most m shards, so `repair` restores every protected sector.
    pub fn is_repairable(&self) -> bool {
        self.max_stripe_loss() <= self.layout.parity_per_stripe()
    }
    /// Lost protected LBAs in ascending order (what extract must take from the repaired view).
    pub fn bad_protected_lbas(&self) -> &[u64] {
        &self.bad_protected
    }
    /// Lost parity positions q (stored at `layout.parity_position_lba(q)`), ascending.
    pub fn bad_parity_positions(&self) -> &[u64] {
        &self.bad_parity
    }
    /// Number of lost protected sectors.
    pub fn lost_data_sectors(&self) -> u64 {
        self.bad_protected.len() as u64
    }
    /// Number of lost parity sectors.
    pub fn lost_parity_sectors(&self) -> u64 {
        self.bad_parity.len() as u64
    }
    /// Sectors treated as lost because both copies of their checksum-table sector are gone.
    pub fn unknown_sectors(&self) -> u64 {
        self.unknown
    }
    /// Damaged metadata sectors (header copies and checksum-table sectors of either copy).
    pub fn bad_metadata_sectors(&self) -> u64 {
        self.bad_metadata
    }
    /// Largest number of lost shards in any one stripe.
    pub fn max_stripe_loss(&self) -> u32 {
        self.stripe_losses.iter().copied().max().unwrap_or(0)
    }
    /// m − worst stripe loss: how many more losses the worst stripe could take (negative = too late).
    pub fn worst_margin(&self) -> i64 {
        i64::from(self.layout.parity_per_stripe()) - i64::from(self.max_stripe_loss())
    }
    /// m: the per-stripe loss budget.
    pub fn parity_per_stripe(&self) -> u32 {
        self.layout.parity_per_stripe()
    }
    /// Lost shards per stripe (length S).
    pub fn stripe_losses(&self) -> &[u32] {
        &self.stripe_losses
    }
    /// Stripes with more than m losses (their lost sectors cannot be rebuilt).
    pub fn unrepairable_stripes(&self) -> Vec<u64> {
        let m = self.layout.parity_per_stripe();
        (0..self.stripe_losses.len() as u64)
            .filter(|&j| self.stripe_losses[j as usize] > m)
            .collect()
    }
    /// LBAs of the lost sectors (data and parity) in stripes with more losses than parity: the
    /// only sectors worth re-reading from a damaged disc, since every other loss is rebuilt.
    pub fn lost_lbas_in_unrepairable_stripes(&self) -> Vec<u64> {
        let m = self.layout.parity_per_stripe();
        let l = &self.layout;
        let over = |j: u64| self.stripe_losses[j as usize] > m;
        let mut v: Vec<u64> = self
            .bad_protected
            .iter()
            .copied()
            .filter(|&x| over(l.stripe_of_data(x)))
            .collect();
        v.extend(
            self.bad_parity
                .iter()
                .filter(|&&q| over(l.stripe_of_parity(q)))
                .map(|&q| l.parity_position_lba(q)),
        );
        v
    }
    /// Expected CRC of table entry g, if its table sector survived.
    pub(crate) fn expected_crc(&self, g: u64) -> Option<u32> {
        let known = *self.known.get((g / ENTRIES_PER_TABLE_SECTOR) as usize)?;
        known
            .then(|| self.expected.get(g as usize).copied())
            .flatten()
    }
}

/// Whether `sec`, read at table index i, is a valid table sector of `l`.
fn valid_table_sector(sec: &[u8], i: u64, l: &FecLayout) -> bool {
    matches!(parse_meta_sector(sec), Ok(Some(ref mb)) if mb.kind == MetaKind::Table && mb.table_index == i && mb.layout == *l)
}

/// Loads the checksum table: the table sectors in large reads, then, for each table stripe that
/// lost some, its rebuild from the table code (every rebuilt sector must pass its own CRC).
fn load_table(src: &dyn SectorSource, l: &FecLayout) -> (Vec<u32>, Vec<bool>, u64) {
    let d = l.protected_sectors();
    let t = l.table_sectors();
    let mut expected = vec![0u32; l.table_entries() as usize];
    let mut known = vec![false; t as usize];
    let mut bad_meta = 0u64;
    let take = |i: u64, sec: &[u8], expected: &mut Vec<u32>| {
        let g0 = i * ENTRIES_PER_TABLE_SECTOR;
        let g1 = (g0 + ENTRIES_PER_TABLE_SECTOR).min(l.table_entries());
        for g in g0..g1 {
            expected[g as usize] = table_entry(sec, (g - g0) as usize);
        }
    };
    let mut buf = vec![0u8; BLOCK_SECTORS as usize * SS];
    let mut i0 = 0;
    while i0 < t {
        let n = BLOCK_SECTORS.min(t - i0);
        let buf = &mut buf[..n as usize * SS];
        let ok = read_tolerant(src, d + l.table_offset() + i0, buf);
        for x in 0..n as usize {
            let i = i0 + x as u64;
            let sec = &buf[x * SS..(x + 1) * SS];
            if ok[x] && valid_table_sector(sec, i, l) {
                known[i as usize] = true;
                take(i, sec, &mut expected);
            } else {
                bad_meta += 1;
            }
        }
        i0 += n;
    }
    let (kt, st) = (l.table_k(), l.table_stripes());
    for jt in 0..st {
        let missing = (0..kt)
            .map(|r| r * st + jt)
            .any(|i| i < t && !known[i as usize]);
        if !missing {
            continue;
        }
        for (i, sec) in rebuild_table_stripe(src, l, jt, &known) {
            if valid_table_sector(&sec, i, l) {
                known[i as usize] = true;
                take(i, &sec, &mut expected);
            }
        }
    }
    (expected, known, bad_meta)
}

/// Rebuilds the lost table sectors of table stripe jt from its surviving table sectors and its
/// verified table-parity sectors; empty if fewer than k_t shards survive. The caller checks each
/// rebuilt sector's fields again.
fn rebuild_table_stripe(
    src: &dyn SectorSource,
    l: &FecLayout,
    jt: u64,
    known: &[bool],
) -> Vec<(u64, Vec<u8>)> {
    let (t, kt, st) = (l.table_sectors(), l.table_k(), l.table_stripes());
    let mt = TABLE_PARITY_FACTOR * kt;
    let Ok(mut dec) = reed_solomon_simd::ReedSolomonDecoder::new(kt as usize, mt as usize, SS)
    else {
        return Vec::new();
    };
    let mut sec = vec![0u8; SS];
    let mut shard = vec![0u8; SS];
    let zero = vec![0u8; SS];
    let mut have = 0;
    for r in 0..kt {
        let i = r * st + jt;
        if i >= t {
            let _ = dec.add_original_shard(r as usize, &zero); // virtual
            have += 1;
        } else if known[i as usize] {
            let ok = read_tolerant(src, l.table_shard_lba(r, jt), &mut sec);
            if ok[0] && valid_table_sector(&sec, i, l) {
                table_shard_of(&sec, &mut shard);
                let _ = dec.add_original_shard(r as usize, &shard);
                have += 1;
            }
        }
    }
    for p in 0..mt {
        if have >= kt {
            break; // enough shards: the decoder needs exactly k_t
        }
        let lba = l.table_shard_lba(kt + p, jt);
        let ok = read_tolerant(src, lba, &mut sec);
        if ok[0]
            && open_table_parity(lba, &mut sec)
            && dec.add_recovery_shard(p as usize, &sec).is_ok()
        {
            have += 1;
        }
    }
    let Ok(res) = dec.decode() else {
        return Vec::new();
    };
    res.restored_original_iter()
        .map(|(r, data)| {
            let mut sec = data.to_vec();
            seal_table_sector(&mut sec);
            (r as u64 * st + jt, sec)
        })
        .filter(|(i, _)| *i < t)
        .collect()
}

/// A sector worth recording: its LBA and (lost, lost only for an unknown checksum, bad metadata).
type Judged = (u64, (bool, bool, bool));

/// Checks every sector of the image against the checksum table in one sequential pass of large reads
/// (unreadable blocks are re-read per sector; sectors past the end are lost) and tallies losses per
/// stripe. `progress` receives the number of sectors checked so far.
pub fn scan(
    src: &dyn SectorSource,
    fec: &LocatedFec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FecScan, FecError> {
    let l = &fec.layout;
    let d = l.protected_sectors();
    let s = l.stripes();
    // Bound memory by what is physically plausible: D ≤ sectors present (locate found a sector at ≥ D).
    if fec.region_lba != d || d > src.sector_count().max(1) * 2 {
        return Err(FecError::Geometry(format!(
            "FEC layout D={d} does not fit {} ({} sectors)",
            src.describe(),
            src.sector_count()
        )));
    }
    let (expected, known, mut bad_metadata) = load_table(src, l);
    let unknown_entry = |g: u64| !known[(g / ENTRIES_PER_TABLE_SECTOR) as usize];
    let mut bad_protected = Vec::new();
    let mut bad_parity = Vec::new();
    let mut unknown = 0u64;
    let end = l.region_end();
    // Verdict for one sector: (lost, lost only because its checksum is unknown, bad metadata).
    let judge = |at: u64, ok: bool, sec: &[u8]| -> (bool, bool, bool) {
        let g = if at < d {
            Some(at)
        } else {
            l.parity_position_at(at).map(|q| d + q)
        };
        match g {
            Some(g) => {
                let unk = unknown_entry(g);
                let lost = !ok || unk || expected[g as usize] != sector_crc(at, sec);
                (lost, unk, false)
            }
            None => {
                // Header copies and table-parity sectors are checked here; table sectors were
                // judged while loading the table.
                let off = at - d;
                let meta_bad = match l.meta_kind_at(off) {
                    Some((MetaKind::Header, _)) => {
                        !(ok && matches!(parse_meta_sector(sec), Ok(Some(ref mb)) if mb.layout == *l && mb.self_offset == off))
                    }
                    Some(_) => false,
                    None => {
                        l.is_table_parity(off) && !(ok && open_table_parity(at, &mut sec.to_vec()))
                    }
                };
                (false, false, meta_bad)
            }
        }
    };
    // Sources that allow it (files, page cache) are read by all threads at once, each reading
    // and checking its own block, so reading overlaps checksumming; a drive is read in order.
    let parallel = src.parallel_reads();
    let group = if parallel {
        2 * rayon::current_num_threads().max(1) as u64
    } else {
        1
    };
    let scan_block = |lba: u64, buf: &mut Vec<u8>| -> Vec<Judged> {
        let n = BLOCK_SECTORS.min(end - lba);
        buf.resize(n as usize * SS, 0);
        let ok = read_tolerant(src, lba, buf);
        let verdict =
            |(x, sec): (usize, &[u8])| (lba + x as u64, judge(lba + x as u64, ok[x], sec));
        let all: Vec<_> = if parallel {
            buf.chunks(SS).enumerate().map(verdict).collect()
        } else {
            buf.par_chunks(SS).enumerate().map(verdict).collect()
        };
        all.into_iter().filter(|(_, v)| v.0 || v.2).collect()
    };
    let mut lba = 0u64;
    while lba < end {
        let starts: Vec<u64> = (0..group)
            .map(|i| lba + i * BLOCK_SECTORS)
            .take_while(|&b| b < end)
            .collect();
        let found: Vec<Vec<Judged>> = if parallel {
            starts
                .par_iter()
                .map_init(Vec::new, |buf, &b| scan_block(b, buf))
                .collect()
        } else {
            let mut buf = Vec::new();
            starts.iter().map(|&b| scan_block(b, &mut buf)).collect()
        };
        for (at, (lost, unk, meta_bad)) in found.into_iter().flatten() {
            if lost {
                if at < d {
                    bad_protected.push(at);
                } else {
                    bad_parity.extend(l.parity_position_at(at));
                }
                unknown += u64::from(unk);
            }
            bad_metadata += u64::from(meta_bad);
        }
        lba = (lba + group * BLOCK_SECTORS).min(end);
        progress(lba);
    }
    let mut stripe_losses = vec![0u32; s as usize];
    for &x in &bad_protected {
        stripe_losses[l.stripe_of_data(x) as usize] += 1;
    }
    for &q in &bad_parity {
        stripe_losses[l.stripe_of_parity(q) as usize] += 1;
    }
    Ok(FecScan {
        layout: l.clone(),
        expected,
        known,
        bad_protected,
        bad_parity,
        unknown,
        stripe_losses,
        bad_metadata,
    })
}
