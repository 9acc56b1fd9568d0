//! Finding the FEC region on a possibly damaged image and checking every protected and parity sector.

use super::layout::{
    open_table_parity, parse_meta_sector, seal_table_sector, sector_crc, table_entry,
    table_shard_of, FecLayout, MetaKind, ENTRIES_PER_TABLE_SECTOR, FEC_MAGIC, TABLE_PARITY_FACTOR,
};
use super::FecError;
use crate::sector::{SectorSource, SECTOR_SIZE};
use crate::util::sector_ranges::SectorRanges;
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

/// The checksum-table entries a scan could establish, held per table sector that was read valid
/// (or rebuilt from the table code): memory follows the table sectors really present on the
/// source, never the table size a header claims (issue #16).
#[derive(Clone, Debug)]
pub(crate) struct ChecksumTable {
    /// Indices of the known table sectors, ascending and unique.
    sectors: Vec<u64>,
    /// The 471 entries of table sector `sectors[n]` at `[n·471, (n+1)·471)`.
    entries: Vec<u32>,
    /// T, the layout's table sectors; `sectors.len() == T` means all are known (slot = index).
    total: u64,
}

impl ChecksumTable {
    fn new(total: u64) -> Self {
        ChecksumTable {
            sectors: Vec::new(),
            entries: Vec::new(),
            total,
        }
    }

    /// Where table sector i's entries are, if it is known.
    fn slot(&self, i: u64) -> Option<usize> {
        if self.sectors.len() as u64 == self.total {
            return (i < self.total).then_some(i as usize);
        }
        self.sectors.binary_search(&i).ok()
    }

    /// Whether table sector i is known (a valid copy was read or rebuilt).
    pub(crate) fn is_known(&self, i: u64) -> bool {
        self.slot(i).is_some()
    }

    /// Table entry g, if its table sector is known.
    pub(crate) fn entry(&self, g: u64) -> Option<u32> {
        let n = self.slot(g / ENTRIES_PER_TABLE_SECTOR)?;
        let e = n * ENTRIES_PER_TABLE_SECTOR as usize + (g % ENTRIES_PER_TABLE_SECTOR) as usize;
        self.entries.get(e).copied()
    }

    /// Appends the entries of valid table sector i, which is above every sector held.
    fn push(&mut self, i: u64, sec: &[u8]) {
        self.sectors.push(i);
        self.entries
            .extend((0..ENTRIES_PER_TABLE_SECTOR as usize).map(|e| table_entry(sec, e)));
    }

    /// Adds valid table sectors in any order (rebuilt ones), merged into place.
    fn merge(&mut self, mut extra: Vec<(u64, Vec<u8>)>) {
        extra.retain(|(i, _)| !self.is_known(*i));
        if extra.is_empty() {
            return;
        }
        extra.sort_by_key(|(i, _)| *i);
        extra.dedup_by_key(|(i, _)| *i);
        let old = std::mem::replace(self, ChecksumTable::new(self.total));
        let per = ENTRIES_PER_TABLE_SECTOR as usize;
        let mut rebuilt = extra.into_iter().peekable();
        for (n, &i) in old.sectors.iter().enumerate() {
            while let Some((r, sec)) = rebuilt.next_if(|(r, _)| *r < i) {
                self.push(r, &sec);
            }
            self.sectors.push(i);
            self.entries
                .extend_from_slice(&old.entries[n * per..(n + 1) * per]);
        }
        for (r, sec) in rebuilt {
            self.push(r, &sec);
        }
    }
}

/// Result of checking every sector covered by the FEC: what is lost, per stripe, and whether the
/// damage is within the parity budget.
#[derive(Clone, Debug)]
pub struct FecScan {
    /// Geometry this scan was made against.
    pub(crate) layout: FecLayout,
    /// The checksum-table entries that could be read or rebuilt.
    pub(crate) table: ChecksumTable,
    /// Lost protected LBAs (unreadable, CRC mismatch, past EOF or checksum unknown).
    pub(crate) bad_protected: SectorRanges,
    /// Lost parity positions q = p·S + j.
    pub(crate) bad_parity: SectorRanges,
    /// Sectors counted lost only because every copy of their checksum-table sector was lost.
    pub(crate) unknown: u64,
    /// Lost shards (data + parity) per stripe; length S.
    pub(crate) stripe_losses: Vec<u32>,
    /// Metadata sectors (header copies + table sectors, both copies) that were unreadable or invalid.
    pub(crate) bad_metadata: u64,
    /// First LBA the source does not have (≤ region end): sectors from here on were never read
    /// and are counted lost in bulk.
    pub(crate) read_end: u64,
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
    /// Lost protected LBAs (what extract must take from the repaired view).
    pub fn bad_protected_lbas(&self) -> &SectorRanges {
        &self.bad_protected
    }
    /// Lost parity positions q (stored at `layout.parity_position_lba(q)`).
    pub fn bad_parity_positions(&self) -> &SectorRanges {
        &self.bad_parity
    }
    /// Number of lost protected sectors.
    pub fn lost_data_sectors(&self) -> u64 {
        self.bad_protected.len()
    }
    /// Number of lost parity sectors.
    pub fn lost_parity_sectors(&self) -> u64 {
        self.bad_parity.len()
    }
    /// Sectors of the FEC region's geometry past the end of the source (a cut-short image, or a
    /// header claiming more than the file holds): never read, all counted lost.
    pub fn missing_sectors(&self) -> u64 {
        self.layout.region_end() - self.read_end
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
    /// Lost protected LBAs in stripes with more losses than parity: what no repair can rebuild.
    pub fn unrepairable_protected(&self) -> SectorRanges {
        let m = self.layout.parity_per_stripe();
        self.protected_in_stripes(&|j| self.stripe_losses[j as usize] > m)
    }
    /// Lost protected LBAs whose stripe satisfies `failed` (time per lost protected sector, and
    /// those lie below D ≤ twice the source's size; nothing per sector when every stripe failed).
    pub(crate) fn protected_in_stripes(&self, failed: &dyn Fn(u64) -> bool) -> SectorRanges {
        if (0..self.layout.stripes()).all(failed) {
            return self.bad_protected.clone();
        }
        let l = &self.layout;
        self.bad_protected
            .iter()
            .filter(|&x| failed(l.stripe_of_data(x)))
            .collect()
    }
    /// LBAs of the lost sectors (data and parity) in stripes with more losses than parity that
    /// the source has: the only sectors worth re-reading from a damaged disc, since every other
    /// loss is rebuilt (and sectors past the source's end cannot be read at all).
    pub fn lost_lbas_in_unrepairable_stripes(&self) -> SectorRanges {
        let m = self.layout.parity_per_stripe();
        let l = &self.layout;
        let over = |j: u64| self.stripe_losses[j as usize] > m;
        let mut v = SectorRanges::new();
        for &(a, b) in self.bad_protected.ranges() {
            (a..b.min(self.read_end))
                .filter(|&x| over(l.stripe_of_data(x)))
                .for_each(|x| v.insert(x));
        }
        for q in self.readable_lost_parity() {
            if over(l.stripe_of_parity(q)) {
                v.insert(l.parity_position_lba(q));
            }
        }
        v
    }
    /// Lost parity positions stored below `read_end`, ascending (LBA order too).
    fn readable_lost_parity(&self) -> impl Iterator<Item = u64> + '_ {
        let l = &self.layout;
        let split = u64::from(l.parity_per_stripe() / 2) * l.stripes(); // first q of segment 1
        self.bad_parity.ranges().iter().flat_map(move |&(a, b)| {
            // Within a segment LBAs grow with q: clip each segment's part at read_end.
            let clip = |lo: u64, hi: u64| {
                let n = if lo < hi && l.parity_position_lba(lo) < self.read_end {
                    (self.read_end - l.parity_position_lba(lo)).min(hi - lo)
                } else {
                    0
                };
                lo..lo + n
            };
            clip(a, b.min(split)).chain(clip(a.max(split), b))
        })
    }
    /// Expected CRC of table entry g, if its table sector survived.
    pub(crate) fn expected_crc(&self, g: u64) -> Option<u32> {
        self.table.entry(g)
    }
}

/// Whether `sec`, read at table index i, is a valid table sector of `l`.
fn valid_table_sector(sec: &[u8], i: u64, l: &FecLayout) -> bool {
    matches!(parse_meta_sector(sec), Ok(Some(ref mb)) if mb.kind == MetaKind::Table && mb.table_index == i && mb.layout == *l)
}

/// Loads the checksum table: the table sectors the source has, in large reads, then, for each
/// table stripe that lost some, its rebuild from the table code (every rebuilt sector must pass
/// its own CRC). Table sectors at or past `read_end` are not read: they count as bad metadata.
fn load_table(src: &dyn SectorSource, l: &FecLayout, read_end: u64) -> (ChecksumTable, u64) {
    let t = l.table_sectors();
    let first = l.protected_sectors() + l.table_offset();
    let present = read_end.saturating_sub(first).min(t);
    let mut table = ChecksumTable::new(t);
    let mut bad_meta = t - present;
    let mut buf = vec![0u8; BLOCK_SECTORS as usize * SS];
    let mut i0 = 0;
    while i0 < present {
        let n = BLOCK_SECTORS.min(present - i0);
        let buf = &mut buf[..n as usize * SS];
        let ok = read_tolerant(src, first + i0, buf);
        for x in 0..n as usize {
            let i = i0 + x as u64;
            let sec = &buf[x * SS..(x + 1) * SS];
            if ok[x] && valid_table_sector(sec, i, l) {
                table.push(i, sec);
            } else {
                bad_meta += 1;
            }
        }
        i0 += n;
    }
    let (kt, st) = (l.table_k(), l.table_stripes());
    let mut rebuilt = Vec::new();
    for jt in 0..st {
        let missing = (0..kt)
            .map(|r| r * st + jt)
            .any(|i| i < t && !table.is_known(i));
        if missing {
            let found = rebuild_table_stripe(src, l, jt, &table, read_end);
            rebuilt.extend(
                found
                    .into_iter()
                    .filter(|(i, sec)| valid_table_sector(sec, *i, l)),
            );
        }
    }
    table.merge(rebuilt);
    (table, bad_meta)
}

/// Rebuilds the lost table sectors of table stripe jt from its surviving table sectors and its
/// verified table-parity sectors; empty if fewer than k_t shards survive below `read_end` (then
/// no decoder is ever built). The caller checks each rebuilt sector's fields again.
fn rebuild_table_stripe(
    src: &dyn SectorSource,
    l: &FecLayout,
    jt: u64,
    table: &ChecksumTable,
    read_end: u64,
) -> Vec<(u64, Vec<u8>)> {
    let (t, kt, st) = (l.table_sectors(), l.table_k(), l.table_stripes());
    let mt = TABLE_PARITY_FACTOR * kt;
    let read = |lba: u64, sec: &mut Vec<u8>| lba < read_end && read_tolerant(src, lba, sec)[0];
    // Shards found, in the decoder's numbering: (index, is recovery, bytes; None = virtual zero).
    let mut shards: Vec<(usize, bool, Option<Vec<u8>>)> = Vec::new();
    let mut sec = vec![0u8; SS];
    for r in 0..kt {
        let i = r * st + jt;
        if i >= t {
            shards.push((r as usize, false, None));
        } else if table.is_known(i)
            && read(l.table_shard_lba(r, jt), &mut sec)
            && valid_table_sector(&sec, i, l)
        {
            let mut shard = vec![0u8; SS];
            table_shard_of(&sec, &mut shard);
            shards.push((r as usize, false, Some(shard)));
        }
    }
    for p in 0..mt {
        if shards.len() as u64 >= kt {
            break; // enough shards: the decoder needs exactly k_t
        }
        let lba = l.table_shard_lba(kt + p, jt);
        if read(lba, &mut sec) && open_table_parity(lba, &mut sec) {
            shards.push((p as usize, true, Some(sec.clone())));
        }
    }
    if (shards.len() as u64) < kt {
        return Vec::new();
    }
    let Ok(mut dec) = reed_solomon_simd::ReedSolomonDecoder::new(kt as usize, mt as usize, SS)
    else {
        return Vec::new();
    };
    let zero = vec![0u8; SS];
    for (n, recovery, bytes) in &shards {
        let bytes = bytes.as_deref().unwrap_or(&zero);
        let _ = if *recovery {
            dec.add_recovery_shard(*n, bytes)
        } else {
            dec.add_original_shard(*n, bytes)
        };
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

/// Adds the sectors of the region from `read_end` (where the source ends) to the region's end
/// to the losses in bulk, never sector by sector: the protected LBAs and parity positions there
/// as ranges, header copies and table-parity sectors to the bad metadata (table sectors were
/// counted by `load_table`). Cost: a few ranges, however far the geometry reaches.
fn add_missing_tail(l: &FecLayout, read_end: u64, scan: &mut FecScan) {
    let d = l.protected_sectors();
    let end = l.region_end();
    if read_end >= end {
        return;
    }
    scan.bad_protected.insert_range(read_end, d);
    let m1 = u64::from(l.parity_per_stripe() / 2);
    let s = l.stripes();
    let m = u64::from(l.parity_per_stripe());
    for (off, first_row, rows) in [
        (l.parity_offsets()[0], 0, m1),
        (l.parity_offsets()[1], m1, m - m1),
    ] {
        let (lba0, lba1) = (d + off, d + off + rows * s);
        let from = read_end.clamp(lba0, lba1);
        let q0 = first_row * s;
        scan.bad_parity
            .insert_range(q0 + (from - lba0), q0 + (lba1 - lba0));
    }
    let headers = l
        .header_offsets()
        .iter()
        .filter(|&&o| d + o >= read_end)
        .count() as u64;
    let half = l.table_k() * l.table_stripes();
    let table_parity: u64 = l
        .table_parity_offsets()
        .iter()
        .map(|&o| (d + o + half).saturating_sub(read_end.max(d + o)))
        .sum();
    scan.bad_metadata += headers + table_parity;
}

/// Visits the stripes of the sectors in `ranges` (protected LBAs, or parity positions when
/// `parity`): a whole row of S sectors holds one shard of every stripe, so a run of whole rows
/// is one call `rows(n)`, and only the partial rows at a range's ends are visited sector by
/// sector (`one(stripe)`). The time follows the ranges, not the sectors they cover.
pub(crate) fn visit_stripes(
    l: &FecLayout,
    ranges: &SectorRanges,
    parity: bool,
    rows: &mut dyn FnMut(u64),
    one: &mut dyn FnMut(u64),
) {
    let s = l.stripes();
    for &(a, b) in ranges.ranges() {
        let (ra, rb) = (a.div_ceil(s), b / s); // whole rows [ra, rb) inside [a, b)
        let singles = if ra < rb {
            rows(rb - ra);
            [(a, ra * s), (rb * s, b)]
        } else {
            [(a, b), (0, 0)]
        };
        for (x0, x1) in singles {
            for x in x0..x1 {
                one(if parity {
                    l.stripe_of_parity(x)
                } else {
                    l.stripe_of_data(x)
                });
            }
        }
    }
}

/// Lost shards per stripe for the lost protected LBAs and parity positions.
fn count_stripe_losses(l: &FecLayout, protected: &SectorRanges, parity: &SectorRanges) -> Vec<u32> {
    let mut per = vec![0u32; l.stripes() as usize];
    let mut every = 0u64;
    for (ranges, is_parity) in [(protected, false), (parity, true)] {
        visit_stripes(l, ranges, is_parity, &mut |n| every += n, &mut |j| {
            let c = &mut per[j as usize];
            *c = c.saturating_add(1);
        });
    }
    let every = u32::try_from(every).unwrap_or(u32::MAX);
    per.iter_mut().for_each(|c| *c = c.saturating_add(every));
    per
}

/// Refuses a geometry that does not fit the source before anything is allocated for it.
fn check_geometry(src: &dyn SectorSource, fec: &LocatedFec) -> Result<(), FecError> {
    let d = fec.layout.protected_sectors();
    let sectors = src.sector_count();
    // Per-stripe bookkeeping costs 4 bytes per stripe and S ≤ D: bounded by the sectors present
    // (locate found a sector at ≥ D, so a geometry from this source always passes).
    if fec.region_lba != d || d > sectors.max(1) * 2 {
        return Err(FecError::Geometry(format!(
            "FEC layout D={d} does not fit {} ({sectors} sectors)",
            src.describe(),
        )));
    }
    Ok(())
}

/// Verdict for one sector: (lost, lost only because its checksum is unknown, bad metadata).
fn judge_sector(
    l: &FecLayout,
    table: &ChecksumTable,
    at: u64,
    ok: bool,
    sec: &[u8],
) -> (bool, bool, bool) {
    let d = l.protected_sectors();
    let g = if at < d {
        Some(at)
    } else {
        l.parity_position_at(at).map(|q| d + q)
    };
    match g {
        Some(g) => {
            let expected = table.entry(g);
            let unk = expected.is_none();
            let lost = !ok || expected != Some(sector_crc(at, sec));
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
                None => l.is_table_parity(off) && !(ok && open_table_parity(at, &mut sec.to_vec())),
            };
            (false, false, meta_bad)
        }
    }
}

/// A sector worth recording: its LBA and (lost, lost only for an unknown checksum, bad metadata).
type Judged = (u64, (bool, bool, bool));

/// Checks every sector of the image against the checksum table in one sequential pass of large reads
/// (unreadable blocks are re-read per sector) and tallies losses per stripe. Sectors the geometry
/// places past the end of the source are not read: they are counted lost in bulk, as ranges, so
/// a header claiming far more than the file holds costs nothing per claimed sector.
/// `progress` receives the number of sectors checked so far.
pub fn scan(
    src: &dyn SectorSource,
    fec: &LocatedFec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FecScan, FecError> {
    let l = &fec.layout;
    let d = l.protected_sectors();
    let sectors = src.sector_count();
    check_geometry(src, fec)?;
    let end = l.region_end();
    let read_end = end.min(sectors);
    let (table, mut bad_metadata) = load_table(src, l, read_end);
    let mut bad_protected = SectorRanges::new();
    let mut bad_parity = SectorRanges::new();
    let mut unknown = 0u64;
    let judge = |at: u64, ok: bool, sec: &[u8]| judge_sector(l, &table, at, ok, sec);
    // Sources that allow it (files, page cache) are read by all threads at once, each reading
    // and checking its own block, so reading overlaps checksumming; a drive is read in order.
    let parallel = src.parallel_reads();
    let group = if parallel {
        2 * rayon::current_num_threads().max(1) as u64
    } else {
        1
    };
    let scan_block = |lba: u64, buf: &mut Vec<u8>| -> Vec<Judged> {
        let n = BLOCK_SECTORS.min(read_end - lba);
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
    while lba < read_end {
        let starts: Vec<u64> = (0..group)
            .map(|i| lba + i * BLOCK_SECTORS)
            .take_while(|&b| b < read_end)
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
                    bad_protected.insert(at);
                } else if let Some(q) = l.parity_position_at(at) {
                    bad_parity.insert(q);
                }
                unknown += u64::from(unk);
            }
            bad_metadata += u64::from(meta_bad);
        }
        lba = (lba + group * BLOCK_SECTORS).min(read_end);
        progress(lba);
    }
    let mut scan = FecScan {
        layout: l.clone(),
        table,
        bad_protected,
        bad_parity,
        unknown,
        stripe_losses: Vec::new(),
        bad_metadata,
        read_end,
    };
    add_missing_tail(l, read_end, &mut scan);
    scan.stripe_losses = count_stripe_losses(l, &scan.bad_protected, &scan.bad_parity);
    progress(end);
    Ok(scan)
}
