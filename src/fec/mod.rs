//! Reed–Solomon forward error correction over a whole disc image.
//!
//! The protected sectors [0, D) are cut into rows of S sectors; every row holds one single-sector
//! shard of each of the S stripes, rotated by a per-row pseudo-random amount (so no periodic loss
//! lands on one stripe); each stripe of k ≤ 8192 shards gets m parity sectors from
//! `reed-solomon-simd`, laid out in rows the same way. So any pattern of lost sectors — scattered,
//! one burst, a cut-off tail, a crack — that leaves ≤ m losses in every stripe is rebuilt exactly.
//! Because that code is an *erasure* code, every protected and parity sector has a CRC32C (bound to
//! its LBA) in a checksum table, which is itself protected by a rate-1/3 code whose thirds lie at
//! the inner edge, middle and outer edge of the region; the region's geometry is in
//! self-describing, checksummed metadata sectors so it can be found by scanning a damaged image.
//! `damage_model` measures all this against physical damage (FORMAT.md §3.5).
//!
//! Flow: [`plan`] (size the region) → caller writes [0, D) → [`encode`] writes [D, D+F).
//! Reading: [`locate`] → [`scan`] → [`repair`] / [`RepairedSource`] / [`write_repaired_image`].
//! The byte format is FORMAT.md §3. [`column`] is the code across the discs of a set (parity
//! discs, FORMAT.md §10).

pub mod column;
pub mod damage_model;
mod encode;
mod layout;
mod repair;
mod scan;
mod stripe_encoder;

pub use encode::{encode, RegionEncoder};
pub use layout::{
    binomial_upper_tail, max_protected, max_protected_for_loss, parity_for_loss, plan, plan_fill,
    plan_for_loss, random_loss_failure_probability, sector_crc, FecLayout,
    ENTRIES_PER_TABLE_SECTOR, FEC_MAGIC, FEC_VERSION, MAX_LOSS_PCT, MAX_REDUNDANCY_PCT,
    RANDOM_LOSS_FAILURE_TARGET, TARGET_K,
};
pub use repair::{repair, write_repaired_image, RepairReport, RepairedSource};
pub use scan::{locate, scan, FecScan, LocatedFec};

/// Parity the CLI adds when the user does not say: 10 % survives a 9 % loss of every stripe at
/// a 10 % capacity cost, in line with what the predecessor tool (par2) used.
pub const DEFAULT_REDUNDANCY_PCT: u32 = 10;

/// Everything that can go wrong planning, writing or reading an FEC region.
#[derive(thiserror::Error, Debug)]
pub enum FecError {
    /// An I/O operation on the image or an output file failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing, naming the file or sector range.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The requested or stored geometry is impossible (zero sectors, unsupported shard counts, …).
    #[error("invalid FEC geometry: {0}")]
    Geometry(String),
    /// A metadata sector has the FEC magic but is damaged or inconsistent.
    #[error("damaged FEC metadata: {0}")]
    BadHeader(String),
    /// The region was written by a newer format version this reader does not understand.
    #[error("FEC region has format version {0}; this bd-archive reads version 2 only — a newer region needs a newer release")]
    UnsupportedVersion(u16),
    /// No valid FEC header copy was found anywhere on the source.
    #[error("no FEC region found on {0} (no valid header or checksum-table sector anywhere)")]
    NotFound(String),
    /// The Reed–Solomon codec refused an operation (would indicate a bug in our geometry).
    #[error("Reed-Solomon codec: {0}")]
    Codec(#[from] reed_solomon_simd::Error),
    /// A memory budget too small for even one stripe.
    #[error(
        "memory budget {budget} bytes is below the {needed} bytes one stripe needs; raise --memory"
    )]
    Memory {
        /// The budget given.
        budget: u64,
        /// The least that works.
        needed: u64,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FecError {
    let what = what.into();
    move |source| FecError::Io { what, source }
}

/// The region geometry (with its rotation key) described by one FEC metadata sector (a header
/// copy or checksum-table sector, FORMAT.md §3.2): what a parity manifest keeps of each data disc,
/// so a rebuilt disc's FEC region is re-encoded exactly as it was written.
pub fn layout_of_meta_sector(sector: &[u8]) -> Result<FecLayout, FecError> {
    layout::parse_meta_sector(sector)?
        .map(|m| m.layout)
        .ok_or_else(|| FecError::BadHeader("not an FEC metadata sector".into()))
}

/// cargo-fuzz entry point: parses arbitrary bytes as FEC metadata sectors (header and table sectors).
///
/// Exists so the fuzz target exercises exactly the parser `locate`/`scan` use on untrusted discs; it
/// must never panic, loop, or allocate in proportion to any count read from `data`.
pub fn fuzz_header(data: &[u8]) {
    let mut sector = [0u8; crate::sector::SECTOR_SIZE];
    for chunk in data.chunks(crate::sector::SECTOR_SIZE) {
        sector.fill(0);
        sector[..chunk.len()].copy_from_slice(chunk);
        if let Ok(Some(meta)) = layout::parse_meta_sector(&sector) {
            let l = &meta.layout;
            let _ = (
                l.region_sectors(),
                l.region_end(),
                l.header_offsets(),
                l.redundancy_pct(),
            );
            let mut sum = 0u32;
            for e in 0..ENTRIES_PER_TABLE_SECTOR as usize {
                sum = sum.wrapping_add(layout::table_entry(&sector, e));
            }
            std::hint::black_box(sum);
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    #[test]
    fn fuzz_header_survives_garbage() {
        let mut rng = crate::util::xorshift::Xorshift64::new(0x1234_5678_9abc_def0);
        let mut buf = vec![0u8; 4096 + 17];
        for round in 0..200 {
            for b in buf.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            if round % 2 == 0 {
                buf[..8].copy_from_slice(&super::FEC_MAGIC);
            }
            super::fuzz_header(&buf);
        }
    }
}
