//! Geometry of the FEC region (how many stripes, shards and parity sectors) and the byte format of its
//! metadata sectors (header copies and checksum-table sectors). See FORMAT.md §3.

use super::FecError;
use crate::sector::SECTOR_SIZE;
use reed_solomon_simd::ReedSolomonEncoder;

/// Magic at byte 0 of every FEC metadata sector (header copies and checksum-table sectors).
pub const FEC_MAGIC: [u8; 8] = *b"BDARCFEC";
/// Version of the FEC region format this code writes and reads.
pub const FEC_VERSION: u16 = 1;
/// Length of the metadata block at the start of every metadata sector.
pub(crate) const BLOCK_LEN: usize = 128;
/// Byte offset of the CRC32C that closes every metadata sector (covers bytes 0..2044).
pub(crate) const META_CRC_OFFSET: usize = SECTOR_SIZE - 4;
/// Checksum entries (u32) carried by one checksum-table sector: (2048 − 128 − 4) / 4 = 479.
pub const ENTRIES_PER_TABLE_SECTOR: u64 = ((SECTOR_SIZE - BLOCK_LEN - 4) / 4) as u64;
/// Original shards per stripe we aim for: large enough that random scatter averages out per stripe,
/// small enough that one stripe (≈ 18 MiB at 10 %) is cheap to hold and encode (FORMAT.md §3.2).
pub const TARGET_K: u64 = 8192;
/// Highest redundancy `plan` accepts and readers trust (parity = 100 × data); bounds every
/// allocation derived from a header.
pub const MAX_REDUNDANCY_PCT: u32 = 10_000;

/// Kind of a metadata sector (field `kind` of the metadata block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaKind {
    /// A copy of the FEC header (the rest of the sector is zero).
    Header = 1,
    /// A sector of checksum-table copy A.
    TableA = 2,
    /// A sector of checksum-table copy B.
    TableB = 3,
}

/// Complete geometry of one FEC region. Built by [`plan`]/[`plan_fill`] or parsed from a disc; every
/// instance satisfies the invariants checked by `FecLayout::from_geometry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FecLayout {
    /// D: sectors [0, D) are protected; the region starts at LBA D. Always ≥ 1.
    protected: u64,
    /// S: number of stripes = interleave stride. 1 ≤ S ≤ D.
    stride: u64,
    /// k = ceil(D / S): original shards per stripe; positions ≥ D are virtual zero sectors.
    k: u32,
    /// m: parity shards per stripe; (k, m) is accepted by reed-solomon-simd; 1 ≤ m ≤ 100·k.
    m: u32,
    /// T = ceil((D + m·S) / 479): sectors in one copy of the checksum table.
    table_sectors: u64,
}

impl FecLayout {
    /// Builds and validates a layout from its three free parameters; the rest is derived.
    ///
    /// Used by the planners, by tests that want small stripes, and by the header parser (so a
    /// disc can never describe a geometry this code would not write).
    pub fn from_geometry(protected: u64, stride: u64, m: u32) -> Result<Self, FecError> {
        let bad = |why: &str| {
            Err(FecError::Geometry(format!(
                "D={protected} S={stride} m={m}: {why}"
            )))
        };
        if protected == 0 {
            return bad("nothing to protect");
        }
        if stride == 0 || stride > protected {
            return bad("stride must be in 1..=D");
        }
        let k = protected.div_ceil(stride);
        if k > u64::from(u16::MAX) {
            return bad("more than 65535 sectors per stripe");
        }
        if m == 0 || u64::from(m) > 100 * k {
            return bad("parity per stripe must be in 1..=100·k");
        }
        if !ReedSolomonEncoder::supports(k as usize, m as usize) {
            return bad("reed-solomon-simd does not support this (k, m) pair");
        }
        let parity = u64::from(m) * stride; // ≤ 100·k·S < 100·(D+S): no overflow for D < 2^56
        let entries = protected.checked_add(parity);
        let Some(entries) = entries.filter(|&e| e < (1u64 << 56)) else {
            return bad("image too large");
        };
        Ok(FecLayout {
            protected,
            stride,
            k: k as u32,
            m,
            table_sectors: entries.div_ceil(ENTRIES_PER_TABLE_SECTOR),
        })
    }

    /// D: sectors [0, D) are protected and the FEC region starts at LBA D.
    pub fn protected_sectors(&self) -> u64 {
        self.protected
    }
    /// F: sectors of the FEC region (4 header copies + 2 checksum-table copies + parity).
    pub fn region_sectors(&self) -> u64 {
        4 + 2 * self.table_sectors + self.parity_sectors()
    }
    /// m: parity shards per stripe = the most lost sectors any one stripe survives.
    pub fn parity_per_stripe(&self) -> u32 {
        self.m
    }
    /// k: original (protected) shards per stripe, including virtual zero sectors past D.
    pub fn data_per_stripe(&self) -> u32 {
        self.k
    }
    /// S: number of stripes, which is also the interleave stride.
    pub fn stripes(&self) -> u64 {
        self.stride
    }
    /// Effective redundancy m/k·100 (what the user asked for, rounded up per stripe).
    pub fn redundancy_pct(&self) -> f64 {
        f64::from(self.m) / f64::from(self.k) * 100.0
    }
    /// m·S: parity sectors in the region.
    pub fn parity_sectors(&self) -> u64 {
        u64::from(self.m) * self.stride
    }
    /// T: sectors per checksum-table copy.
    pub fn table_sectors(&self) -> u64 {
        self.table_sectors
    }
    /// D + m·S: checksum entries (one per protected sector, then one per parity sector).
    pub fn table_entries(&self) -> u64 {
        self.protected + self.parity_sectors()
    }
    /// Region offset of checksum-table copy A (right after the first header copy).
    pub fn table_a_offset(&self) -> u64 {
        1
    }
    /// Region offset of the first parity sector.
    pub fn parity_offset(&self) -> u64 {
        2 + self.table_sectors
    }
    /// Region offset of checksum-table copy B (after the parity, far from copy A).
    pub fn table_b_offset(&self) -> u64 {
        3 + self.table_sectors + self.parity_sectors()
    }
    /// Region offsets of the four header copies: first sector, after table A, after parity, last.
    pub fn header_offsets(&self) -> [u64; 4] {
        [
            0,
            1 + self.table_sectors,
            2 + self.table_sectors + self.parity_sectors(),
            self.region_sectors() - 1,
        ]
    }
    /// LBA of the first sector after the region (region starts at D).
    pub fn region_end(&self) -> u64 {
        self.protected + self.region_sectors()
    }
    /// LBA where parity shard `p` of stripe `j` is stored: D + parity_offset + p·S + j.
    pub fn parity_lba(&self, p: u64, j: u64) -> u64 {
        self.protected + self.parity_offset() + p * self.stride + j
    }
    /// Buffer bytes one stripe needs in memory (data + parity shards).
    pub(crate) fn stripe_bytes(&self) -> u64 {
        (u64::from(self.k) + u64::from(self.m)) * SECTOR_SIZE as u64
    }
    /// Working space of one reed-solomon-simd encoder for this (k, m), whichever rate it picks: the
    /// high-rate encoder holds k rounded up to a multiple of m's power of two shards, the low-rate
    /// one m rounded up to a multiple of k's (reed-solomon-simd 3, `work_count`).
    pub(crate) fn encoder_bytes(&self) -> u64 {
        super::stripe_encoder::StripeEncoder::bytes(self.k as usize, self.m as usize)
    }
    /// Rough upper bound of the working memory one reed-solomon-simd encoder/decoder holds.
    pub(crate) fn codec_bytes(&self) -> u64 {
        let k2 = u64::from(self.k).next_power_of_two();
        let m2 = u64::from(self.m).next_power_of_two();
        2 * (k2 + m2) * SECTOR_SIZE as u64
    }
    /// What a metadata sector of this layout at `offset` in the region should be (None = parity).
    pub(crate) fn meta_kind_at(&self, offset: u64) -> Option<(MetaKind, u64)> {
        if self.header_offsets().contains(&offset) {
            return Some((MetaKind::Header, 0));
        }
        let t = self.table_sectors;
        if (1..1 + t).contains(&offset) {
            return Some((MetaKind::TableA, offset - 1));
        }
        let b = self.table_b_offset();
        if (b..b + t).contains(&offset) {
            return Some((MetaKind::TableB, offset - b));
        }
        None
    }
}

/// CRC32C over (LBA as u64 LE ‖ sector bytes): detects damage and sectors read from the wrong place.
pub fn sector_crc(lba: u64, sector: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&lba.to_le_bytes()), sector)
}

/// [`sector_crc`] of `n` sectors whose LBAs run on from `first_lba`, sector i being `sector(i)`
/// (2048 bytes each; they need not be adjacent in memory), handed to `f(i, crc)`. On x86-64 with
/// SSE 4.2 it runs three sectors at a time on independent CRC chains, hiding the instruction's
/// 3-cycle latency (the crc32c crate leaves the last quarter of a 2 KiB buffer on a single chain);
/// FEC encoding checksums every sector, so this is worth it.
pub(crate) fn sector_crcs<'a>(
    first_lba: u64,
    n: usize,
    sector: impl Fn(usize) -> &'a [u8],
    mut f: impl FnMut(usize, u32),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2")
        && (0..n).all(|x| sector(x).len() == SECTOR_SIZE)
    {
        let mut i = 0;
        while i < n {
            // A last group of one or two sectors repeats its last sector on the idle chains: a
            // three-chain pass costs what a one-chain pass does.
            let three = [
                sector(i),
                sector((i + 1).min(n - 1)),
                sector((i + 2).min(n - 1)),
            ];
            // SAFETY: the CPU has SSE 4.2 (checked just above); the function only reads `three`.
            let crcs = unsafe { crc3_sse42(first_lba + i as u64, three) };
            for (x, crc) in crcs.into_iter().enumerate().take(n - i) {
                f(i + x, crc);
            }
            i += 3;
        }
        return;
    }
    for x in 0..n {
        f(x, sector_crc(first_lba + x as u64, sector(x)));
    }
}

/// [`sector_crc`] of the three sectors (LBAs lba, lba+1, lba+2), one chain each. The LBAs wrap:
/// the repeated lanes of a padded last group may run past the last one, and are discarded.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn crc3_sse42(lba: u64, [a, b, c]: [&[u8]; 3]) -> [u32; 3] {
    use std::arch::x86_64::_mm_crc32_u64 as step;
    let word = |w: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        u64::from_le_bytes(b)
    };
    let (mut x, mut y, mut z) = (
        step(0xFFFF_FFFF, lba),
        step(0xFFFF_FFFF, lba.wrapping_add(1)),
        step(0xFFFF_FFFF, lba.wrapping_add(2)),
    );
    for ((wa, wb), wc) in a
        .chunks_exact(8)
        .zip(b.chunks_exact(8))
        .zip(c.chunks_exact(8))
    {
        x = step(x, word(wa));
        y = step(y, word(wb));
        z = step(z, word(wc));
    }
    [!(x as u32), !(y as u32), !(z as u32)]
}

/// Largest k ≤ TARGET_K for which (k, ceil(k·num/den)) is a valid reed-solomon-simd code.
///
/// `supports(k, m(k))` only gets harder as k grows, so a binary search is exact.
fn k_max_for(num: u64, den: u64) -> Option<u64> {
    k_max_by(|k| (k * num).div_ceil(den).max(1))
}

/// Largest k ≤ TARGET_K for which (k, m_of(k)) is a valid reed-solomon-simd code; `m_of` grows
/// with k, so validity only gets harder as k grows and a binary search is exact.
fn k_max_by(m_of: impl Fn(u64) -> u64) -> Option<u64> {
    let ok = |k: u64| {
        let m = m_of(k);
        m <= 65535 && ReedSolomonEncoder::supports(k as usize, m as usize)
    };
    if !ok(1) {
        return None;
    }
    let (mut lo, mut hi) = (1u64, TARGET_K); // ok(lo) holds
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Layout for redundancy num/den with stripes as long as the codec allows (≤ TARGET_K).
fn plan_ratio_with(protected: u64, num: u64, den: u64, k_max: u64) -> Result<FecLayout, FecError> {
    if protected == 0 {
        return Err(FecError::Geometry("nothing to protect (D = 0)".into()));
    }
    let stride = protected.div_ceil(k_max);
    let k = protected.div_ceil(stride);
    let m = (k * num).div_ceil(den).max(1);
    let m = u32::try_from(m).map_err(|_| FecError::Geometry(format!("m = {m} too large")))?;
    FecLayout::from_geometry(protected, stride, m)
}

fn check_pct(redundancy_pct: u32) -> Result<u64, FecError> {
    if redundancy_pct == 0 || redundancy_pct > MAX_REDUNDANCY_PCT {
        return Err(FecError::Geometry(format!(
            "redundancy {redundancy_pct} % is outside 1..={MAX_REDUNDANCY_PCT} %"
        )));
    }
    k_max_for(u64::from(redundancy_pct), 100)
        .ok_or_else(|| FecError::Geometry(format!("redundancy {redundancy_pct} % is not codable")))
}

/// Plans the FEC for D protected sectors at `redundancy_pct` % parity: S = ceil(D / k_max) stripes
/// of k = ceil(D / S) ≤ 8192 sectors and m = ceil(k·r/100) parity sectors each.
///
/// The caller sizes the disc with `region_sectors()` before writing anything.
pub fn plan(protected_sectors: u64, redundancy_pct: u32) -> Result<FecLayout, FecError> {
    let k_max = check_pct(redundancy_pct)?;
    plan_ratio_with(protected_sectors, u64::from(redundancy_pct), 100, k_max)
}

/// `--fill-parity`: the layout with the most parity whose region fits `region_sectors_available`
/// (capped at [`MAX_REDUNDANCY_PCT`]), so a disc's spare room protects the data instead of idling.
pub fn plan_fill(
    protected_sectors: u64,
    region_sectors_available: u64,
) -> Result<FecLayout, FecError> {
    let fits = |bp: u64| -> Option<FecLayout> {
        let k_max = k_max_for(bp, 10_000)?;
        plan_ratio_with(protected_sectors, bp, 10_000, k_max)
            .ok()
            .filter(|l| l.region_sectors() <= region_sectors_available)
    };
    // Redundancy in basis points (1/100 %); "fits" is monotone up to rounding, refined below.
    let (mut lo, mut hi) = (100u64, u64::from(MAX_REDUNDANCY_PCT) * 100);
    let mut best = fits(lo).ok_or_else(|| {
        FecError::Geometry(format!(
            "{region_sectors_available} sectors cannot hold even 1 % parity for {protected_sectors} sectors"
        ))
    })?;
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match fits(mid) {
            Some(l) => {
                lo = mid;
                best = l;
            }
            None => hi = mid - 1,
        }
    }
    // Same stripes, one more parity row at a time while it still fits and is codable.
    loop {
        match FecLayout::from_geometry(best.protected, best.stride, best.m + 1) {
            Ok(l) if l.region_sectors() <= region_sectors_available => best = l,
            _ => return Ok(best),
        }
    }
}

/// Standard deviations of margin `parity_for_loss` keeps above the mean random loss.
pub const LOSS_SIGMAS: f64 = 5.0;

/// Largest loss share `plan_for_loss` accepts (`-r`), percent of all sectors.
pub const MAX_LOSS_PCT: u32 = 50;

/// Parity shards per stripe so that a stripe of k + m shards can lose `loss_pct` % of them — in a
/// burst, or scattered at random with a margin of [`LOSS_SIGMAS`] standard deviations — and still
/// be rebuilt: the smallest m with m ≥ f·n + z·√(f(1−f)·n), n = k + m, f = loss_pct/100.
///
/// This is what `-r` means to a user: "any r % of the disc's sectors may be lost". A plain ratio
/// m = k·r/100 would fail on a random r % scatter about half the time per stripe.
pub fn parity_for_loss(k: u64, loss_pct: u32) -> u64 {
    let f = f64::from(loss_pct.clamp(1, MAX_LOSS_PCT)) / 100.0;
    let z = LOSS_SIGMAS;
    let ok = |m: u64| {
        let n = (k + m) as f64;
        m as f64 >= f * n + z * (f * (1.0 - f) * n).sqrt()
    };
    // Closed form for x = √n of (1−f)x² − z·√(f(1−f))·x − k = 0, then exact correction.
    let zs = z * (f * (1.0 - f)).sqrt();
    let x = (zs + (zs * zs + 4.0 * (1.0 - f) * k as f64).sqrt()) / (2.0 * (1.0 - f));
    let mut m = ((x * x) - k as f64).ceil().max(1.0) as u64;
    while m > 1 && ok(m - 1) {
        m -= 1;
    }
    while !ok(m) {
        m += 1;
    }
    m
}

/// Largest k ≤ TARGET_K whose loss-based parity the codec supports.
fn k_max_for_loss(loss_pct: u32) -> Option<u64> {
    k_max_by(|k| parity_for_loss(k, loss_pct))
}

fn loss_k_max(loss_pct: u32) -> Result<u64, FecError> {
    if loss_pct == 0 || loss_pct > MAX_LOSS_PCT {
        return Err(FecError::Geometry(format!(
            "redundancy {loss_pct} % is outside 1..={MAX_LOSS_PCT} %"
        )));
    }
    k_max_for_loss(loss_pct)
        .ok_or_else(|| FecError::Geometry(format!("redundancy {loss_pct} % is not codable")))
}

fn plan_loss_with(protected: u64, loss_pct: u32, k_max: u64) -> Result<FecLayout, FecError> {
    if protected == 0 {
        return Err(FecError::Geometry("nothing to protect (D = 0)".into()));
    }
    let stride = protected.div_ceil(k_max);
    let k = protected.div_ceil(stride);
    let m = u32::try_from(parity_for_loss(k, loss_pct))
        .map_err(|_| FecError::Geometry("parity count too large".into()))?;
    FecLayout::from_geometry(protected, stride, m)
}

/// Plans the FEC so that any `loss_pct` % of the image's sectors (protected and parity alike) may
/// be lost — a burst of that size always, a random scatter with a 5 σ margin — and still be
/// repaired. This is the meaning of `create -r`.
pub fn plan_for_loss(protected_sectors: u64, loss_pct: u32) -> Result<FecLayout, FecError> {
    plan_loss_with(protected_sectors, loss_pct, loss_k_max(loss_pct)?)
}

/// Largest D such that D + plan_for_loss(D, r).region_sectors() ≤ `budget_sectors` (0 if none).
pub fn max_protected_for_loss(budget_sectors: u64, loss_pct: u32) -> u64 {
    let Ok(k_max) = loss_k_max(loss_pct) else {
        return 0;
    };
    let f = f64::from(loss_pct) / 100.0;
    let fits = |d: u64| {
        plan_loss_with(d, loss_pct, k_max).is_ok_and(|l| d + l.region_sectors() <= budget_sectors)
    };
    // parity ≥ k·f/(1−f) and tables ≥ 2/481 of everything: no larger D can fit.
    let upper = ((budget_sectors.saturating_sub(4) as f64 * (1.0 - f) * 479.0 / 481.0) as u64)
        .min(budget_sectors);
    // Total size grows with D except for small bumps where the stripe count changes: binary
    // search, then look a little further up for a bump.
    let (mut lo, mut hi) = (0u64, upper);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    (lo..lo + 64)
        .rev()
        .find(|&d| d == 0 || fits(d))
        .unwrap_or(lo)
}

/// Largest D such that D + plan(D, r).region_sectors() ≤ `budget_sectors` (0 if none): lets the
/// caller fill a disc exactly. Closed-form upper bound, then a short downward search.
pub fn max_protected(budget_sectors: u64, redundancy_pct: u32) -> u64 {
    let Ok(k_max) = check_pct(redundancy_pct) else {
        return 0;
    };
    let r = u128::from(redundancy_pct);
    // total(D) ≥ D·(1 + r/100)·(481/479) + 4, so no D above this bound can fit.
    let avail = u128::from(budget_sectors.saturating_sub(4));
    let upper = avail * 100 * 479 / ((100 + r) * 481);
    let mut d = u64::try_from(upper).unwrap_or(u64::MAX);
    while d > 0 {
        if let Ok(l) = plan_ratio_with(d, r as u64, 100, k_max) {
            if d.checked_add(l.region_sectors())
                .is_some_and(|t| t <= budget_sectors)
            {
                return d;
            }
            // Jump by the overshoot scaled down: total grows by ≥ 1 per unit of D.
            let over = (d + l.region_sectors()).saturating_sub(budget_sectors);
            let step = (over * 100 / (100 + r as u64) / 2).max(1);
            d = d.saturating_sub(step);
        } else {
            d -= 1;
        }
    }
    0
}

/// The decoded fixed fields of a metadata block (bytes 0..128 of a metadata sector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetaBlock {
    /// Geometry, validated through `FecLayout::from_geometry` and cross-checked with stored fields.
    pub layout: FecLayout,
    /// Which kind of metadata sector this is.
    pub kind: MetaKind,
    /// Region offset at which this sector was written (so region start = its LBA − this).
    pub self_offset: u64,
    /// For table sectors: index of this sector within its table copy (< T); 0 for headers.
    pub table_index: u64,
}

fn rd_u16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn rd_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn rd_u64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Writes the metadata block for a sector at region offset `self_offset` into `sector[..128]` and
/// the closing CRC; table entries (if any) must already be in `sector[128..2044]`.
pub(crate) fn write_meta_sector(
    layout: &FecLayout,
    kind: MetaKind,
    self_offset: u64,
    table_index: u64,
    sector: &mut [u8],
) {
    let b = &mut sector[..SECTOR_SIZE];
    b[..BLOCK_LEN].fill(0);
    b[0..8].copy_from_slice(&FEC_MAGIC);
    b[8..10].copy_from_slice(&FEC_VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&(kind as u16).to_le_bytes());
    b[12..16].copy_from_slice(&(BLOCK_LEN as u32).to_le_bytes());
    b[16..24].copy_from_slice(&layout.protected.to_le_bytes());
    b[24..32].copy_from_slice(&layout.stride.to_le_bytes());
    b[32..36].copy_from_slice(&layout.k.to_le_bytes());
    b[36..40].copy_from_slice(&layout.m.to_le_bytes());
    b[40..48].copy_from_slice(&layout.region_sectors().to_le_bytes());
    b[48..56].copy_from_slice(&layout.table_sectors.to_le_bytes());
    b[56..64].copy_from_slice(&layout.table_a_offset().to_le_bytes());
    b[64..72].copy_from_slice(&layout.parity_offset().to_le_bytes());
    b[72..80].copy_from_slice(&layout.table_b_offset().to_le_bytes());
    b[80..88].copy_from_slice(&self_offset.to_le_bytes());
    b[88..96].copy_from_slice(&table_index.to_le_bytes());
    b[96..100].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
    b[100..104].copy_from_slice(&(ENTRIES_PER_TABLE_SECTOR as u32).to_le_bytes());
    let crc = crc32c::crc32c(&b[..META_CRC_OFFSET]);
    b[META_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
}

/// Parses and fully validates one metadata sector from untrusted bytes. Never panics and never
/// allocates; `Ok(None)` means "not a metadata sector" (no magic).
pub(crate) fn parse_meta_sector(sector: &[u8]) -> Result<Option<MetaBlock>, FecError> {
    if sector.len() < SECTOR_SIZE || sector[0..8] != FEC_MAGIC {
        return Ok(None);
    }
    let b = &sector[..SECTOR_SIZE];
    let bad = |why: &str| Err(FecError::BadHeader(why.to_string()));
    if crc32c::crc32c(&b[..META_CRC_OFFSET]) != rd_u32(b, META_CRC_OFFSET) {
        return bad("metadata sector CRC mismatch");
    }
    let version = rd_u16(b, 8);
    if version != FEC_VERSION {
        return Err(FecError::UnsupportedVersion(version));
    }
    let kind = match rd_u16(b, 10) {
        1 => MetaKind::Header,
        2 => MetaKind::TableA,
        3 => MetaKind::TableB,
        _ => return bad("unknown metadata sector kind"),
    };
    if rd_u32(b, 12) != BLOCK_LEN as u32
        || rd_u32(b, 96) != SECTOR_SIZE as u32
        || rd_u32(b, 100) != ENTRIES_PER_TABLE_SECTOR as u32
    {
        return bad("block length, shard size or entries per table sector differ from version 1");
    }
    let layout = FecLayout::from_geometry(rd_u64(b, 16), rd_u64(b, 24), rd_u32(b, 36))?;
    if rd_u32(b, 32) != layout.k
        || rd_u64(b, 40) != layout.region_sectors()
        || rd_u64(b, 48) != layout.table_sectors
        || rd_u64(b, 56) != layout.table_a_offset()
        || rd_u64(b, 64) != layout.parity_offset()
        || rd_u64(b, 72) != layout.table_b_offset()
    {
        return bad("stored layout fields disagree with the geometry");
    }
    let self_offset = rd_u64(b, 80);
    let table_index = rd_u64(b, 88);
    let expected = match kind {
        MetaKind::Header => layout.header_offsets().contains(&self_offset) && table_index == 0,
        MetaKind::TableA => table_index < layout.table_sectors && self_offset == 1 + table_index,
        MetaKind::TableB => {
            table_index < layout.table_sectors
                && self_offset == layout.table_b_offset() + table_index
        }
    };
    if !expected {
        return bad("self offset or table index is not where this layout puts such a sector");
    }
    Ok(Some(MetaBlock {
        layout,
        kind,
        self_offset,
        table_index,
    }))
}

/// Table entry `e` (0..479) of a validated table sector.
pub(crate) fn table_entry(sector: &[u8], e: usize) -> u32 {
    rd_u32(sector, BLOCK_LEN + 4 * e)
}

/// Stores table entry `e` (0..479) into a table sector under construction.
pub(crate) fn set_table_entry(sector: &mut [u8], e: usize, crc: u32) {
    sector[BLOCK_LEN + 4 * e..BLOCK_LEN + 4 * e + 4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_crcs_match_sector_crc() {
        let mut x = 0x1234_5678u64;
        let row: Vec<u8> = (0..7 * SECTOR_SIZE)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        for n in 0..=7 {
            for first in [0u64, 1, 0xFFFF_FFFF, u64::MAX - 7] {
                let mut seen = 0;
                // Sectors in reverse memory order: they need not be adjacent.
                let sector = |i: usize| &row[(6 - i) * SECTOR_SIZE..][..SECTOR_SIZE];
                sector_crcs(first, n, sector, |i, crc| {
                    assert_eq!(i, seen);
                    let sec = sector(i);
                    assert_eq!(crc, sector_crc(first + i as u64, sec), "n={n} i={i}");
                    seen += 1;
                });
                assert_eq!(seen, n);
            }
        }
    }

    #[test]
    fn plan_default_geometry() {
        let l = plan(12_219_392, 10).unwrap(); // BD-25
        assert!(l.data_per_stripe() <= 8192 && l.data_per_stripe() > 8000);
        assert_eq!(l.parity_per_stripe(), l.data_per_stripe().div_ceil(10));
        assert!(u64::from(l.data_per_stripe()) * l.stripes() >= l.protected_sectors());
        assert!(l.redundancy_pct() >= 10.0 && l.redundancy_pct() < 10.02);
    }

    #[test]
    fn plan_edges() {
        let l = plan(1, 10).unwrap();
        assert_eq!(
            (l.stripes(), l.data_per_stripe(), l.parity_per_stripe()),
            (1, 1, 1)
        );
        assert_eq!(l.region_sectors(), 4 + 2 + 1);
        let huge = plan(62_500_000, 10).unwrap(); // BD-128: pure arithmetic, no allocation
        assert!(huge.region_sectors() > 6_250_000);
        assert!(plan(0, 10).is_err());
        assert!(plan(100, 0).is_err());
        assert!(plan(100, MAX_REDUNDANCY_PCT + 1).is_err());
        for r in (1..=5000)
            .step_by(7)
            .chain([1, 2, 5, 10, 99, 100, 101, 1000, 5000, 10_000])
        {
            for d in [1u64, 2, 1000, 8191, 8193, 123_457, 62_500_000] {
                let l = plan(d, r).unwrap_or_else(|e| panic!("plan({d}, {r}): {e}"));
                assert!(ReedSolomonEncoder::supports(l.k as usize, l.m as usize));
                assert!(
                    l.redundancy_pct() + 1e-9 >= f64::from(r),
                    "r={r} d={d} {l:?}"
                );
                assert_eq!(
                    l.table_entries().div_ceil(ENTRIES_PER_TABLE_SECTOR),
                    l.table_sectors()
                );
            }
        }
    }

    #[test]
    fn loss_plan_survives_its_share_of_random_loss() {
        // BD-25 sized: any 10 % lost at random (5 sigma) or in a burst stays within m per stripe.
        let l = plan_for_loss(11_000_000, 10).unwrap();
        let (k, m) = (
            u64::from(l.data_per_stripe()),
            u64::from(l.parity_per_stripe()),
        );
        let n = (k + m) as f64;
        assert!(m as f64 >= 0.1 * n + 5.0 * (0.09 * n).sqrt());
        assert!(m as f64 <= 0.1 * n + 5.0 * (0.09 * n).sqrt() + 1.0);
        assert!(
            l.redundancy_pct() > 12.0 && l.redundancy_pct() < 14.0,
            "{}",
            l.redundancy_pct()
        );
        for r in 1..=MAX_LOSS_PCT {
            for d in [1u64, 7, 8191, 8193, 1_000_000, 62_500_000] {
                let l = plan_for_loss(d, r).unwrap_or_else(|e| panic!("{d} {r}: {e}"));
                assert!(ReedSolomonEncoder::supports(l.k as usize, l.m as usize));
            }
        }
        assert!(plan_for_loss(10, 0).is_err() && plan_for_loss(10, 51).is_err());
        for (budget, r) in [
            (12_219_392u64, 10u32),
            (32768, 10),
            (1000, 5),
            (62_500_864, 20),
        ] {
            let d = max_protected_for_loss(budget, r);
            assert!(d > 0);
            assert!(d + plan_for_loss(d, r).unwrap().region_sectors() <= budget);
            for extra in 1..20 {
                assert!(d + extra + plan_for_loss(d + extra, r).unwrap().region_sectors() > budget);
            }
        }
    }

    #[test]
    fn max_protected_is_tight() {
        for (budget, r) in [
            (12_219_392u64, 10u32),
            (1000, 10),
            (50, 5),
            (24_438_784, 20),
            (1_000_000, 3000),
            (7, 10),
        ] {
            let d = max_protected(budget, r);
            if d > 0 {
                let l = plan(d, r).unwrap();
                assert!(d + l.region_sectors() <= budget);
            }
            for extra in 1..50 {
                if let Ok(l) = plan(d + extra, r) {
                    assert!(
                        d + extra + l.region_sectors() > budget,
                        "budget {budget} r {r}: {d}+{extra} fits"
                    );
                }
            }
        }
    }

    #[test]
    fn plan_fill_uses_room() {
        let d = 1_000_000;
        let base = plan(d, 10).unwrap();
        let avail = base.region_sectors() * 3;
        let f = plan_fill(d, avail).unwrap();
        assert!(f.region_sectors() <= avail);
        assert!(f.parity_sectors() > 2 * base.parity_sectors());
        assert!(
            avail - f.region_sectors() < 2 * f.stripes() + 64,
            "{avail} {f:?}"
        );
        let big = plan_fill(1000, 10_000_000).unwrap();
        assert!(big.redundancy_pct() >= 9_999.0);
        assert!(plan_fill(d, 5).is_err());
    }

    #[test]
    fn meta_roundtrip_and_rejects() {
        let l = plan(100_000, 10).unwrap();
        let mut s = vec![0u8; SECTOR_SIZE];
        write_meta_sector(&l, MetaKind::TableB, l.table_b_offset() + 3, 3, &mut s);
        let m = parse_meta_sector(&s).unwrap().unwrap();
        assert_eq!(m.layout, l);
        assert_eq!((m.kind, m.table_index), (MetaKind::TableB, 3));
        s[20] ^= 1;
        assert!(parse_meta_sector(&s).is_err());
        assert!(parse_meta_sector(&[0u8; 10]).unwrap().is_none());
    }
}
