//! Geometry of the FEC region (how many stripes, shards and parity sectors) and the byte format of its
//! metadata sectors (header copies and checksum-table sectors). See FORMAT.md §3.

use super::FecError;
use crate::sector::SECTOR_SIZE;
use reed_solomon_simd::ReedSolomonEncoder;

/// Magic at byte 0 of every FEC metadata sector (header copies and checksum-table sectors).
pub const FEC_MAGIC: [u8; 8] = *b"BDARCFEC";
/// Version of the FEC region format this code writes and reads.
pub const FEC_VERSION: u16 = 2;
/// Length of the metadata block at the start of every metadata sector.
pub(crate) const BLOCK_LEN: usize = 128;
/// Byte offset of the CRC32C that closes every metadata sector (covers bytes 0..2044).
pub(crate) const META_CRC_OFFSET: usize = SECTOR_SIZE - 4;
/// Bytes [TABLE_ZERO_A, +4) and [META_CRC_OFFSET, +4) of a table-code shard are zero: they are
/// GF(2^16) symbols 28 – 31 of the last 64-byte block (low bytes 2012 – 2015, high bytes
/// 2044 – 2047), so the same symbols of every table-parity shard are zero too and a table-parity
/// sector can carry its own CRC in bytes 2044 – 2047 (FORMAT.md §3.2).
pub(crate) const TABLE_ZERO_A: usize = 2012;
/// Checksum entries (u32) carried by one checksum-table sector: (2012 − 128) / 4 = 471.
pub const ENTRIES_PER_TABLE_SECTOR: u64 = ((TABLE_ZERO_A - BLOCK_LEN) / 4) as u64;
/// Original shards per stripe we aim for: large enough that random scatter averages out per stripe,
/// small enough that one stripe (≈ 18 MiB at 10 %) is cheap to hold and encode (FORMAT.md §3.2).
pub const TARGET_K: u64 = 8192;
/// Highest redundancy `plan` accepts and readers trust (parity = 100 × data); bounds every
/// allocation derived from a header.
pub const MAX_REDUNDANCY_PCT: u32 = 10_000;
/// Most table sectors in one table stripe (k_t): the table code's stripes stay ≤ 24 MiB.
pub const TABLE_K_MAX: u64 = 4096;
/// Parity sectors of the table code per table sector: rate 1/3, so any third of a table stripe's
/// shards rebuilds it, and each of the three thirds lies at another radius.
pub const TABLE_PARITY_FACTOR: u64 = 2;
/// Planned stripe counts are multiples of this (one 64 KiB cluster): rows start on cluster
/// boundaries, so a cluster never holds two shards of one stripe.
pub const STRIPE_ALIGN: u64 = crate::sector::CLUSTER_SECTORS;

/// Kind of a metadata sector (field `kind` of the metadata block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaKind {
    /// A copy of the FEC header (the rest of the sector is zero).
    Header = 1,
    /// A checksum-table sector (the data shards of the table code).
    Table = 2,
}

/// Complete geometry of one FEC region. Built by [`plan`]/[`plan_fill`] or parsed from a disc; every
/// instance satisfies the invariants checked by `FecLayout::from_geometry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FecLayout {
    /// D: sectors [0, D) are protected; the region starts at LBA D. Always ≥ 1.
    protected: u64,
    /// S: number of stripes = row length. 1 ≤ S ≤ D.
    stride: u64,
    /// k = ceil(D / S): original shards per stripe; positions ≥ D are virtual zero sectors.
    k: u32,
    /// m: parity shards per stripe; (k, m) is accepted by reed-solomon-simd; 1 ≤ m ≤ 100·k.
    m: u32,
    /// Key of the per-row rotations (FORMAT.md §3.1); any value.
    key: u64,
    /// T = ceil((D + m·S) / 471): checksum-table sectors.
    table_sectors: u64,
    /// S_t = ceil(T / 4096): table stripes.
    table_stripes: u64,
    /// k_t = ceil(T / S_t): table sectors per table stripe (positions ≥ T virtual).
    table_k: u64,
    /// Region offsets, ascending: [table, parity rows 0.., header 1, table parity half 0, parity
    /// rows m1.., header 2, table parity half 1]; header 0 is at 0 and header 3 at F − 1.
    offsets: [u64; 7],
    /// F: region sectors.
    region: u64,
}

/// splitmix64's output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FecLayout {
    /// Builds and validates a layout from its free parameters; the rest is derived. The rotation
    /// key is D (what `plan` writes); [`with_key`](Self::with_key) changes it.
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
        let t = entries.div_ceil(ENTRIES_PER_TABLE_SECTOR);
        let st = t.div_ceil(TABLE_K_MAX);
        let kt = t.div_ceil(st);
        let half = kt * st; // one half of the table parity
        let m1 = u64::from(m) / 2;
        let align = |off: u64| {
            (protected + off).next_multiple_of(STRIPE_ALIGN) - protected // cluster-aligned rows
        };
        let table = 1;
        let par0 = align(table + t);
        let h1 = par0 + m1 * stride;
        let tpar0 = h1 + 1;
        let par1 = align(tpar0 + half);
        let h2 = par1 + (u64::from(m) - m1) * stride;
        let tpar1 = h2 + 1;
        let region = tpar1 + half + 1;
        Ok(FecLayout {
            protected,
            stride,
            k: k as u32,
            m,
            key: protected,
            table_sectors: t,
            table_stripes: st,
            table_k: kt,
            offsets: [table, par0, h1, tpar0, par1, h2, tpar1],
            region,
        })
    }

    /// The same geometry with rotation key `key`.
    pub fn with_key(mut self, key: u64) -> Self {
        self.key = key;
        self
    }

    /// D: sectors [0, D) are protected and the FEC region starts at LBA D.
    pub fn protected_sectors(&self) -> u64 {
        self.protected
    }
    /// F: sectors of the FEC region (4 header copies, table, table parity, parity, alignment).
    pub fn region_sectors(&self) -> u64 {
        self.region
    }
    /// m: parity shards per stripe = the most lost sectors any one stripe survives.
    pub fn parity_per_stripe(&self) -> u32 {
        self.m
    }
    /// k: original (protected) shards per stripe, including virtual zero sectors past D.
    pub fn data_per_stripe(&self) -> u32 {
        self.k
    }
    /// S: number of stripes, which is also the length of a row.
    pub fn stripes(&self) -> u64 {
        self.stride
    }
    /// The key of the per-row rotations.
    pub fn rotation_key(&self) -> u64 {
        self.key
    }
    /// Effective redundancy m/k·100 (what the user asked for, rounded up per stripe).
    pub fn redundancy_pct(&self) -> f64 {
        f64::from(self.m) / f64::from(self.k) * 100.0
    }
    /// m·S: parity sectors in the region.
    pub fn parity_sectors(&self) -> u64 {
        u64::from(self.m) * self.stride
    }
    /// T: checksum-table sectors.
    pub fn table_sectors(&self) -> u64 {
        self.table_sectors
    }
    /// S_t: stripes of the table code.
    pub fn table_stripes(&self) -> u64 {
        self.table_stripes
    }
    /// k_t: table sectors per table stripe.
    pub fn table_k(&self) -> u64 {
        self.table_k
    }
    /// D + m·S: checksum entries (one per protected sector, then one per parity sector).
    pub fn table_entries(&self) -> u64 {
        self.protected + self.parity_sectors()
    }
    /// Region offset of checksum-table sector 0 (right after the first header copy).
    pub fn table_offset(&self) -> u64 {
        self.offsets[0]
    }
    /// Region offsets of the two parity segments (rows 0 .. m1 and m1 .. m, m1 = ⌊m/2⌋).
    pub fn parity_offsets(&self) -> [u64; 2] {
        [self.offsets[1], self.offsets[4]]
    }
    /// Region offsets of the two halves of the table parity.
    pub fn table_parity_offsets(&self) -> [u64; 2] {
        [self.offsets[3], self.offsets[6]]
    }
    /// Region offsets of the four header copies: first sector, after each parity segment, last.
    pub fn header_offsets(&self) -> [u64; 4] {
        [0, self.offsets[2], self.offsets[5], self.region - 1]
    }
    /// LBA of the first sector after the region (region starts at D).
    pub fn region_end(&self) -> u64 {
        self.protected + self.region
    }

    /// Rotation of row x (data rows 0 .. k, then parity rows k .. k + m): the column of a row
    /// that holds stripe 0 is S − ρ(x) (mod S); stripe j = (column + ρ(x)) mod S.
    pub fn row_rotation(&self, x: u64) -> u64 {
        let z = self
            .key
            .wrapping_add(x.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        mix64(z) % self.stride
    }
    /// Column of stripe j in row x.
    fn column(&self, x: u64, j: u64) -> u64 {
        (j + self.stride - self.row_rotation(x)) % self.stride
    }
    /// Where row x (data rows 0 .. k, parity rows k .. k + m) holds stripes a .. a + w (w ≤ S):
    /// one or two stretches (two when the run wraps past column S − 1), each as (first column,
    /// index in the run of its first stripe, length). A stretch is adjacent sectors on the disc.
    pub(crate) fn row_parts(&self, x: u64, a: u64, w: u64) -> [(u64, usize, usize); 2] {
        let c0 = self.column(x, a);
        let first = w.min(self.stride - c0);
        [
            (c0, 0, first as usize),
            (0, first as usize, (w - first) as usize),
        ]
    }
    /// LBA of column 0 of parity row p (< m).
    pub fn parity_row_lba(&self, p: u64) -> u64 {
        let m1 = u64::from(self.m) / 2;
        let (seg, row) = if p < m1 { (0, p) } else { (1, p - m1) };
        self.protected + self.parity_offsets()[seg] + row * self.stride
    }
    /// LBA of data shard r (< k) of stripe j; ≥ D means a virtual zero sector.
    pub fn data_lba(&self, r: u64, j: u64) -> u64 {
        r * self.stride + self.column(r, j)
    }
    /// Parity position q = p·S + column of parity shard p of stripe j.
    pub fn parity_position(&self, p: u64, j: u64) -> u64 {
        p * self.stride + self.column(u64::from(self.k) + p, j)
    }
    /// LBA where parity shard `p` of stripe `j` is stored.
    pub fn parity_lba(&self, p: u64, j: u64) -> u64 {
        self.parity_row_lba(p) + self.column(u64::from(self.k) + p, j)
    }
    /// LBA of parity position q (< m·S).
    pub fn parity_position_lba(&self, q: u64) -> u64 {
        self.parity_row_lba(q / self.stride) + q % self.stride
    }
    /// Parity position stored at `lba`, if it holds parity.
    pub fn parity_position_at(&self, lba: u64) -> Option<u64> {
        let m1 = u64::from(self.m) / 2;
        let segs = [(0, m1), (m1, u64::from(self.m) - m1)];
        for (off, (first, rows)) in self.parity_offsets().into_iter().zip(segs) {
            let start = self.protected + off;
            if lba >= start && lba < start + rows * self.stride {
                return Some(first * self.stride + (lba - start));
            }
        }
        None
    }
    /// Stripe of protected LBA x (< D).
    pub fn stripe_of_data(&self, x: u64) -> u64 {
        let (r, c) = (x / self.stride, x % self.stride);
        (c + self.row_rotation(r)) % self.stride
    }
    /// Stripe of parity position q.
    pub fn stripe_of_parity(&self, q: u64) -> u64 {
        let (p, c) = (q / self.stride, q % self.stride);
        (c + self.row_rotation(u64::from(self.k) + p)) % self.stride
    }
    /// Stripe of the protected or parity sector at `lba`; None for metadata, alignment and
    /// LBAs outside [0, region_end). Scan, repair and the damage model all count losses with it.
    pub fn stripe_of_lba(&self, lba: u64) -> Option<u64> {
        if lba < self.protected {
            return Some(self.stripe_of_data(lba));
        }
        self.parity_position_at(lba)
            .map(|q| self.stripe_of_parity(q))
    }
    /// LBA of the sector checksum-table entry g (< E) describes.
    pub fn entry_lba(&self, g: u64) -> u64 {
        if g < self.protected {
            g
        } else {
            self.parity_position_lba(g - self.protected)
        }
    }
    /// LBA of table-code shard r (< 3·k_t) of table stripe jt: r < k_t is table sector r·S_t + jt
    /// (virtual if ≥ T); then the table parity, row by row, half 0 then half 1.
    pub fn table_shard_lba(&self, r: u64, jt: u64) -> u64 {
        let (kt, st) = (self.table_k, self.table_stripes);
        let d = self.protected;
        if r < kt {
            return d + self.table_offset() + r * st + jt;
        }
        let p = r - kt;
        let half = (p / kt) as usize;
        d + self.table_parity_offsets()[half] + (p % kt) * st + jt
    }
    /// Table sectors a reader cannot know when exactly the sectors with `lost(lba)` are unreadable:
    /// lost themselves, in a table stripe that lost more than its 2·k_t parity can rebuild.
    pub fn unknown_table_sectors(&self, lost: &dyn Fn(u64) -> bool) -> Vec<u64> {
        let (kt, st, t) = (self.table_k, self.table_stripes, self.table_sectors);
        let mut out = Vec::new();
        for jt in 0..st {
            let real = |r: u64| r >= kt || r * st + jt < t;
            let gone = (0..(1 + TABLE_PARITY_FACTOR) * kt)
                .filter(|&r| real(r) && lost(self.table_shard_lba(r, jt)))
                .count() as u64;
            if gone > TABLE_PARITY_FACTOR * kt {
                out.extend(
                    (0..kt)
                        .map(|r| r * st + jt)
                        .filter(|&i| i < t && lost(self.protected + self.table_offset() + i)),
                );
            }
        }
        out.sort_unstable();
        out
    }
    /// Probability that a table sector is unknown when every cluster is lost independently with
    /// probability `f`: more than 2/3 of its table stripe's clusters lost (a cluster holds up to
    /// 32 / S_t consecutive shards of one table stripe, counted as one).
    pub fn table_unknown_probability(&self, f: f64) -> f64 {
        let per_cluster = (STRIPE_ALIGN / self.table_stripes.min(STRIPE_ALIGN)).max(1);
        let n = ((1 + TABLE_PARITY_FACTOR) * self.table_k).div_ceil(per_cluster);
        // Failing needs > 2k_t lost shards, so > (2k_t)/per_cluster lost clusters.
        let need = (TABLE_PARITY_FACTOR * self.table_k) / per_cluster;
        f * binomial_upper_tail(n, f, need)
    }
    /// Whether region offset `off` holds a table-parity sector.
    pub(crate) fn is_table_parity(&self, off: u64) -> bool {
        let half = self.table_k * self.table_stripes;
        self.table_parity_offsets()
            .iter()
            .any(|&o| (o..o + half).contains(&off))
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
    /// What a metadata sector of this layout at `offset` in the region should be (None = parity,
    /// table parity or alignment).
    pub(crate) fn meta_kind_at(&self, offset: u64) -> Option<(MetaKind, u64)> {
        if self.header_offsets().contains(&offset) {
            return Some((MetaKind::Header, 0));
        }
        let t0 = self.table_offset();
        if (t0..t0 + self.table_sectors).contains(&offset) {
            return Some((MetaKind::Table, offset - t0));
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
    if ok(TARGET_K) {
        return Some(TARGET_K);
    }
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

/// Stripe count for D sectors and stripes of at most k_max: the smallest multiple of
/// [`STRIPE_ALIGN`] with S·k_max ≥ D, or D itself for images under 32 sectors.
fn aligned_stride(protected: u64, k_max: u64) -> u64 {
    (protected.div_ceil(k_max).next_multiple_of(STRIPE_ALIGN)).min(protected)
}

/// Layout for redundancy num/den with stripes as long as the codec allows (≤ TARGET_K).
fn plan_ratio_with(protected: u64, num: u64, den: u64, k_max: u64) -> Result<FecLayout, FecError> {
    if protected == 0 {
        return Err(FecError::Geometry("nothing to protect (D = 0)".into()));
    }
    let stride = aligned_stride(protected, k_max);
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

/// Largest probability, per disc, that a random loss of `-r` % of its clusters is not repairable:
/// `plan_for_loss` sizes m so that S · P[Binomial(k + m, r/100) > m] stays below it.
pub const RANDOM_LOSS_FAILURE_TARGET: f64 = 1e-6;

/// Largest loss share `plan_for_loss` accepts (`-r`), percent of all sectors.
pub const MAX_LOSS_PCT: u32 = 50;

/// Parity shards per stripe so that a stripe of k + m shards can lose `loss_pct` % of them — in a
/// burst always, and scattered at random (each of its shards' clusters lost independently) with
/// probability at most [`RANDOM_LOSS_FAILURE_TARGET`] over all `stripes` stripes: the smallest m
/// with stripes · P[Binomial(k + m, f) > m] ≤ 10⁻⁶, f = loss_pct/100.
///
/// This is what `-r` means to a user: "any r % of the disc's sectors may be lost". A plain ratio
/// m = k·r/100 would fail on a random r % scatter about half the time per stripe.
pub fn parity_for_loss(k: u64, stripes: u64, loss_pct: u32) -> u64 {
    let f = f64::from(loss_pct.clamp(1, MAX_LOSS_PCT)) / 100.0;
    let target = RANDOM_LOSS_FAILURE_TARGET / stripes.max(1) as f64;
    let ok = |m: u64| binomial_upper_tail(k + m, f, m) <= target;
    // Start from a normal approximation with a 6 σ margin, then walk to the exact smallest m.
    let zs = 6.0 * (f * (1.0 - f)).sqrt();
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

/// Largest k ≤ TARGET_K whose loss-based parity the codec supports (for any plausible S).
fn k_max_for_loss(loss_pct: u32) -> Option<u64> {
    k_max_by(|k| parity_for_loss(k, 1 << 24, loss_pct))
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
    let stride = aligned_stride(protected, k_max);
    let k = protected.div_ceil(stride);
    let m = u32::try_from(parity_for_loss(k, stride, loss_pct))
        .map_err(|_| FecError::Geometry("parity count too large".into()))?;
    FecLayout::from_geometry(protected, stride, m)
}

/// Plans the FEC so that any `loss_pct` % of the image's sectors (protected and parity alike) may
/// be lost — a burst of that size always, a random scatter of that many clusters with probability
/// ≥ 1 − 10⁻⁶ — and still be repaired. This is the meaning of `create -r`.
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
    // parity ≥ k·f/(1−f) and table + table parity ≥ 3/474 of everything: no larger D can fit.
    let upper = ((budget_sectors.saturating_sub(4) as f64 * (1.0 - f) * 471.0 / 474.0) as u64)
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
    (lo..lo + 2 * STRIPE_ALIGN + 64)
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
    // total(D) ≥ D·(1 + r/100)·(474/471) + 4, so no D above this bound can fit.
    let avail = u128::from(budget_sectors.saturating_sub(4));
    let upper = avail * 100 * 471 / ((100 + r) * 474);
    let mut d = u64::try_from(upper).unwrap_or(u64::MAX);
    while d > 0 {
        if let Ok(l) = plan_ratio_with(d, r as u64, 100, k_max) {
            if d.checked_add(l.region_sectors())
                .is_some_and(|t| t <= budget_sectors)
            {
                // Alignment padding makes the total dip now and then: look a little higher.
                let fits = |x: u64| {
                    plan_ratio_with(x, r as u64, 100, k_max)
                        .is_ok_and(|l| x.saturating_add(l.region_sectors()) <= budget_sectors)
                };
                return (d..d + 2 * STRIPE_ALIGN)
                    .rev()
                    .find(|&x| fits(x))
                    .unwrap_or(d);
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

/// ln(n!): exact sum below 256, Stirling's series (error < 1e-15 relative) above.
fn ln_factorial(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// P[X > m] for X ~ Binomial(n, p), summed in log space from the first term of the tail (exact up
/// to f64 rounding; terms fall geometrically past the mode, so the sum stops once they are
/// negligible).
pub fn binomial_upper_tail(n: u64, p: f64, m: u64) -> f64 {
    if m >= n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let x0 = m + 1;
    let ln_c = ln_factorial(n) - ln_factorial(x0) - ln_factorial(n - x0);
    let mut ln_term = ln_c + x0 as f64 * p.ln() + (n - x0) as f64 * (1.0 - p).ln();
    let mut sum = 0.0f64;
    let mut x = x0;
    loop {
        let t = ln_term.exp();
        sum += t;
        if x == n || (t < sum * 1e-17 && x as f64 > n as f64 * p) {
            break;
        }
        ln_term += ((n - x) as f64 / (x + 1) as f64).ln() + (p / (1.0 - p)).ln();
        x += 1;
    }
    sum.min(1.0)
}

/// Probability that losing every 64 KiB cluster of the image independently with probability `f`
/// leaves some stripe unrepairable (union bound over the stripes). A stripe's shards lie in
/// distinct clusters, so its loss is Binomial(k + m, p) with p = f plus the chance that a shard
/// survives but its checksum-table entry is unknown.
pub fn random_loss_failure_probability(layout: &FecLayout, f: f64) -> f64 {
    let p = f + (1.0 - f) * layout.table_unknown_probability(f);
    let n = u64::from(layout.k) + u64::from(layout.m);
    (layout.stride as f64 * binomial_upper_tail(n, p, u64::from(layout.m))).min(1.0)
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
    b[40..48].copy_from_slice(&layout.region.to_le_bytes());
    b[48..56].copy_from_slice(&layout.table_sectors.to_le_bytes());
    b[56..64].copy_from_slice(&layout.key.to_le_bytes());
    b[64..68].copy_from_slice(&(layout.table_stripes as u32).to_le_bytes());
    b[68..72].copy_from_slice(&(layout.table_k as u32).to_le_bytes());
    b[72..80].copy_from_slice(&self_offset.to_le_bytes());
    b[80..88].copy_from_slice(&table_index.to_le_bytes());
    b[88..92].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
    b[92..96].copy_from_slice(&(ENTRIES_PER_TABLE_SECTOR as u32).to_le_bytes());
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
        2 => MetaKind::Table,
        _ => return bad("unknown metadata sector kind"),
    };
    if rd_u32(b, 12) != BLOCK_LEN as u32
        || rd_u32(b, 88) != SECTOR_SIZE as u32
        || rd_u32(b, 92) != ENTRIES_PER_TABLE_SECTOR as u32
    {
        return bad("block length, shard size or entries per table sector differ from version 2");
    }
    let layout = FecLayout::from_geometry(rd_u64(b, 16), rd_u64(b, 24), rd_u32(b, 36))?
        .with_key(rd_u64(b, 56));
    if rd_u32(b, 32) != layout.k
        || rd_u64(b, 40) != layout.region
        || rd_u64(b, 48) != layout.table_sectors
        || u64::from(rd_u32(b, 64)) != layout.table_stripes
        || u64::from(rd_u32(b, 68)) != layout.table_k
    {
        return bad("stored layout fields disagree with the geometry");
    }
    let self_offset = rd_u64(b, 72);
    let table_index = rd_u64(b, 80);
    let expected = match kind {
        MetaKind::Header => layout.header_offsets().contains(&self_offset) && table_index == 0,
        MetaKind::Table => {
            table_index < layout.table_sectors && self_offset == layout.table_offset() + table_index
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

/// Turns a table sector (or a rebuilt one) into its table-code shard: its CRC bytes zeroed.
pub(crate) fn table_shard_of(sector: &[u8], shard: &mut [u8]) {
    shard.copy_from_slice(&sector[..SECTOR_SIZE]);
    shard[META_CRC_OFFSET..].fill(0);
}

/// Closes a rebuilt table-code shard into a table sector: its CRC over bytes 0..2044.
pub(crate) fn seal_table_sector(sector: &mut [u8]) {
    let crc = crc32c::crc32c(&sector[..META_CRC_OFFSET]);
    sector[META_CRC_OFFSET..SECTOR_SIZE].copy_from_slice(&crc.to_le_bytes());
}

/// Closes a table-parity shard into the sector stored at `lba`: CRC32C of (LBA ‖ bytes 0..2044)
/// in bytes 2044..2048, which the code leaves zero. False if the code did not (never, for a
/// linear code over shards zero there).
pub(crate) fn seal_table_parity(lba: u64, sector: &mut [u8]) -> bool {
    let zero =
        sector[TABLE_ZERO_A..TABLE_ZERO_A + 4] == [0; 4] && sector[META_CRC_OFFSET..] == [0; 4];
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&lba.to_le_bytes()),
        &sector[..META_CRC_OFFSET],
    );
    sector[META_CRC_OFFSET..SECTOR_SIZE].copy_from_slice(&crc.to_le_bytes());
    zero
}

/// Checks a table-parity sector read at `lba` and turns it back into its shard (CRC zeroed).
pub(crate) fn open_table_parity(lba: u64, sector: &mut [u8]) -> bool {
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&lba.to_le_bytes()),
        &sector[..META_CRC_OFFSET],
    );
    let ok =
        rd_u32(sector, META_CRC_OFFSET) == crc && sector[TABLE_ZERO_A..TABLE_ZERO_A + 4] == [0; 4];
    sector[META_CRC_OFFSET..SECTOR_SIZE].fill(0);
    ok
}

/// Table entry `e` (0..471) of a validated table sector.
pub(crate) fn table_entry(sector: &[u8], e: usize) -> u32 {
    rd_u32(sector, BLOCK_LEN + 4 * e)
}

/// Stores table entry `e` (0..471) into a table sector under construction.
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
    fn binomial_tail_matches_direct_sums() {
        // n = 20, p = 0.3: P[X > 10] = 0.017144 (direct sum of the pmf).
        let direct = |n: u64, p: f64, m: u64| -> f64 {
            let mut c = 1.0f64;
            let mut sum = 0.0;
            for x in 0..=n {
                if x > 0 {
                    c = c * (n - x + 1) as f64 / x as f64;
                }
                if x > m {
                    sum += c * p.powi(x as i32) * (1.0 - p).powi((n - x) as i32);
                }
            }
            sum
        };
        for (n, p, m) in [
            (20u64, 0.3, 10u64),
            (50, 0.1, 5),
            (50, 0.1, 20),
            (100, 0.5, 60),
            (7, 0.9, 6),
        ] {
            let (a, b) = (binomial_upper_tail(n, p, m), direct(n, p, m));
            assert!(
                (a - b).abs() <= 1e-12 + 1e-9 * b,
                "n={n} p={p} m={m}: {a} vs {b}"
            );
        }
        assert_eq!(binomial_upper_tail(10, 0.5, 10), 0.0);
    }

    #[test]
    fn rows_are_rotated_bijections_and_inverses_agree() {
        let l = FecLayout::from_geometry(5003, 64, 9).unwrap().with_key(42);
        let (s, k, m) = (64u64, u64::from(l.k), u64::from(l.m));
        for j in 0..s {
            for r in 0..k {
                let x = l.data_lba(r, j);
                assert_eq!(x / s, r);
                if x < 5003 {
                    assert_eq!(l.stripe_of_data(x), j);
                    assert_eq!(l.stripe_of_lba(x), Some(j));
                }
            }
            for p in 0..m {
                let q = l.parity_position(p, j);
                assert_eq!(l.stripe_of_parity(q), j);
                assert_eq!(l.parity_position_lba(q), l.parity_lba(p, j));
                assert_eq!(l.parity_position_at(l.parity_lba(p, j)), Some(q));
                assert_eq!(l.stripe_of_lba(l.parity_lba(p, j)), Some(j));
            }
        }
        // FORMAT.md §3.1's test values.
        let rho = |key: u64, s: u64| {
            let l = FecLayout::from_geometry(s * 10, s, 1)
                .unwrap()
                .with_key(key);
            [0, 1, 2].map(|x| l.row_rotation(x))
        };
        assert_eq!(rho(42, 64), [21, 3, 18]);
        assert_eq!(rho(1000, 1312), [1192, 367, 625]);
        // Rows differ in rotation, and every run's stretches cover exactly its stripes.
        let rots: std::collections::HashSet<u64> = (0..k).map(|r| l.row_rotation(r)).collect();
        assert!(rots.len() > k as usize / 2);
        for (a, w) in [(0u64, 64u64), (10, 5), (60, 4), (63, 1)] {
            for x in 0..k + m {
                let mut seen = Vec::new();
                for (col, t0, len) in l.row_parts(x, a, w) {
                    for t in 0..len as u64 {
                        let c = (col + t) % s;
                        let stripe = (c + l.row_rotation(x)) % s;
                        assert_eq!(stripe, a + t0 as u64 + t);
                        seen.push(stripe);
                    }
                }
                assert_eq!(seen.len() as u64, w);
            }
        }
        // Parity rows start on cluster boundaries; metadata never overlaps parity.
        for p in 0..m {
            assert_eq!(l.parity_row_lba(p) % STRIPE_ALIGN, 0);
        }
        for off in 0..l.region_sectors() {
            let lba = l.protected_sectors() + off;
            let parity = l.parity_position_at(lba).is_some();
            assert!(!(parity && (l.meta_kind_at(off).is_some() || l.is_table_parity(off))));
        }
    }

    #[test]
    fn plan_edges() {
        let l = plan(1, 10).unwrap();
        assert_eq!(
            (l.stripes(), l.data_per_stripe(), l.parity_per_stripe()),
            (1, 1, 1)
        );
        // 4 headers, 1 table sector (+ 2 table parity), 1 parity sector, alignment padding.
        assert_eq!(l.region_sectors(), l.region_end() - 1);
        assert_eq!(l.table_sectors(), 1);
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
        // BD-25 sized: a random 10 % cluster loss fails with probability ≤ 1e-6, and m is the
        // smallest such.
        let l = plan_for_loss(11_000_000, 10).unwrap();
        let (k, m, s) = (
            u64::from(l.data_per_stripe()),
            u64::from(l.parity_per_stripe()),
            l.stripes(),
        );
        assert_eq!(s % STRIPE_ALIGN, 0);
        assert!(s as f64 * binomial_upper_tail(k + m, 0.1, m) <= 1e-6);
        assert!(s as f64 * binomial_upper_tail(k + m - 1, 0.1, m - 1) > 1e-6);
        assert!(random_loss_failure_probability(&l, 0.1) <= 1.01e-6);
        assert!(
            l.redundancy_pct() > 12.0 && l.redundancy_pct() < 15.0,
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
        write_meta_sector(&l, MetaKind::Table, l.table_offset() + 3, 3, &mut s);
        let m = parse_meta_sector(&s).unwrap().unwrap();
        assert_eq!(m.layout, l);
        assert_eq!((m.kind, m.table_index), (MetaKind::Table, 3));
        s[20] ^= 1;
        assert!(parse_meta_sector(&s).is_err());
        assert!(parse_meta_sector(&[0u8; 10]).unwrap().is_none());
    }
}
#[cfg(test)]
mod format_example {
    /// The worked example of FORMAT.md §3.5, value for value.
    #[test]
    fn bd25_sized_example_matches_format_md() {
        let l = super::plan_for_loss(11_000_000, 10).unwrap();
        assert_eq!(
            (l.stripes(), l.data_per_stripe(), l.parity_per_stripe()),
            (1344, 8185, 1109)
        );
        assert_eq!(
            (l.table_sectors(), l.table_stripes(), l.table_k()),
            (26_520, 7, 3789)
        );
        assert_eq!(l.region_sectors(), 1_570_077);
        assert_eq!(l.header_offsets(), [0, 771_104, 1_543_552, 1_570_076]);
        assert_eq!(l.parity_offsets(), [26_528, 797_632]);
        assert_eq!(l.table_parity_offsets(), [771_105, 1_543_553]);
        assert_eq!((l.row_rotation(0), l.row_rotation(1)), (904, 417));
        assert_eq!((l.data_lba(0, 5), l.data_lba(1, 5)), (445, 2276));
        assert_eq!(l.parity_lba(3, 5), 11_030_904);
    }
}
