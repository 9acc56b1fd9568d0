//! The parity manifest (FORMAT.md §10.3): what a parity disc needs to rebuild any data disc of
//! its generation bit for bit — each data disc's N, D, F, one FEC header copy, the two sectors
//! outside its FEC (header copy B at N−2, UDF anchor at N−1) and the SHA-256 of its whole image.

use thiserror::Error;

use super::chunk::{le32, le64};
use crate::sector::SECTOR_SIZE;

/// Magic at byte 0 of a manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"BDARPMAN";
/// Manifest layout version.
pub const MANIFEST_VERSION: u16 = 1;
/// Bytes before the first data-disc record.
pub const MANIFEST_HEAD: usize = 128;
/// Bytes of one data-disc record.
pub const DISC_RECORD: usize = 64 + 3 * SECTOR_SIZE;
/// Most data discs one manifest may describe (a reader's limit: never allocates beyond it).
pub const MAX_DATA_DISCS: u32 = 4096;

/// Most discs of a set, data and parity together (FORMAT.md §10.1: the column code's limit).
pub const MAX_SET_DISCS: u64 = 65_536;
/// Most parity discs a set of `n` data discs may have (FORMAT.md §10.3): P ≤ max(n, 8). More
/// than n only adds copies (n = 1: mirrors); the bound keeps a rebuild's column code, whose cost
/// grows with n + P, to what the data discs given justify.
pub fn max_parity_discs(n: u32) -> u32 {
    n.max(8)
}

/// Sectors of one 64 KiB BD ECC cluster: every image is a whole number of them (FORMAT.md §1).
const CLUSTER: u64 = 32;

/// Errors parsing a manifest.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Not a manifest, or its bytes are damaged (magic or checksum): a damaged disc.
    #[error("parity manifest damaged: {0}")]
    Damaged(String),
    /// Intact, but its fields break the rules of FORMAT.md §10.3: a crafted or foreign disc.
    #[error("parity manifest invalid: {0}")]
    Invalid(String),
}

/// One data disc as the parity discs know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDiscRecord {
    /// Disc number within the generation (1-based, = its column-code shard index + 1).
    pub disc: u32,
    /// N: sectors of the image.
    pub image_sectors: u64,
    /// D: protected sectors (the disc's column-code contribution is LBAs [0, D)).
    pub protected: u64,
    /// F: sectors of the disc's FEC region.
    pub fec_sectors: u64,
    /// SHA-256 of the whole image (N sectors): a rebuild is checked against it.
    pub sha256: [u8; 32],
    /// The disc's FEC header copy 0 (LBA D): its geometry and key, to re-encode the region.
    pub fec_header: Vec<u8>,
    /// Sector N−2 (disc header copy B).
    pub sector_n2: Vec<u8>,
    /// Sector N−1 (UDF anchor).
    pub sector_n1: Vec<u8>,
}

/// A parity disc's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParityManifest {
    /// Chain id.
    pub chain_id: [u8; 16],
    /// Generation.
    pub generation: u32,
    /// This parity disc's shard p (1-based).
    pub index: u32,
    /// P: parity discs of the generation.
    pub parity_discs: u32,
    /// L: columns (= max D of the data discs = sectors of the column parity).
    pub columns: u64,
    /// The data discs 1..=n in order.
    pub discs: Vec<DataDiscRecord>,
}

impl ParityManifest {
    /// Bytes of the encoded manifest for `n` data discs.
    pub fn encoded_len(n: usize) -> usize {
        MANIFEST_HEAD + n * DISC_RECORD + 4
    }

    /// Serialises (FORMAT.md §10.3).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::encoded_len(self.discs.len())];
        b[0..8].copy_from_slice(MANIFEST_MAGIC);
        b[8..10].copy_from_slice(&MANIFEST_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(self.discs.len() as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.parity_discs.to_le_bytes());
        b[20..24].copy_from_slice(&self.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.columns.to_le_bytes());
        b[32..36].copy_from_slice(&self.generation.to_le_bytes());
        b[40..56].copy_from_slice(&self.chain_id);
        for (i, d) in self.discs.iter().enumerate() {
            let o = MANIFEST_HEAD + i * DISC_RECORD;
            b[o..o + 4].copy_from_slice(&d.disc.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&d.image_sectors.to_le_bytes());
            b[o + 16..o + 24].copy_from_slice(&d.protected.to_le_bytes());
            b[o + 24..o + 32].copy_from_slice(&d.fec_sectors.to_le_bytes());
            b[o + 32..o + 64].copy_from_slice(&d.sha256);
            for (j, s) in [&d.fec_header, &d.sector_n2, &d.sector_n1]
                .into_iter()
                .enumerate()
            {
                let at = o + 64 + j * SECTOR_SIZE;
                let len = s.len().min(SECTOR_SIZE);
                b[at..at + len].copy_from_slice(&s[..len]);
            }
        }
        let end = b.len() - 4;
        let crc = crc32c::crc32c(&b[..end]);
        b[end..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a manifest (FORMAT.md §10.3). Every length is checked against `b`
    /// before it is used, and nothing is allocated beyond `b`'s own size.
    pub fn decode(b: &[u8]) -> Result<ParityManifest, ManifestError> {
        let damaged = |s: &str| ManifestError::Damaged(s.to_string());
        if b.len() < MANIFEST_HEAD + 4 || &b[0..8] != MANIFEST_MAGIC {
            return Err(damaged("no manifest magic"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != MANIFEST_VERSION {
            return Err(ManifestError::Invalid(format!(
                "manifest version {version}; this bd-archive reads version {MANIFEST_VERSION}"
            )));
        }
        let end = b.len() - 4;
        if crc32c::crc32c(&b[..end]) != le32(b, end) {
            return Err(damaged("checksum mismatch"));
        }
        let n = le32(b, 12);
        if n == 0 || n > MAX_DATA_DISCS || b.len() != Self::encoded_len(n as usize) {
            return Err(ManifestError::Invalid(format!(
                "{n} data discs (1 … {MAX_DATA_DISCS}, one record each) in {} bytes",
                b.len()
            )));
        }
        let discs = (0..n as usize)
            .map(|i| decode_record(&b[MANIFEST_HEAD + i * DISC_RECORD..][..DISC_RECORD]))
            .collect::<Vec<_>>();
        let mut chain_id = [0u8; 16];
        chain_id.copy_from_slice(&b[40..56]);
        let m = ParityManifest {
            chain_id,
            generation: le32(b, 32),
            index: le32(b, 20),
            parity_discs: le32(b, 16),
            columns: le64(b, 24),
            discs,
        };
        m.check().map_err(ManifestError::Invalid)?;
        Ok(m)
    }

    /// The invariants a reader relies on (FORMAT.md §10.3): 1 ≤ p ≤ P ≤ max(n, 8), discs
    /// numbered 1..=n in order, L = max D, and per disc D ≥ 1, D + F + 2 ≤ N < 2^32 with N the
    /// first cluster multiple from D + F + 2 (the padding of §1, nothing more).
    fn check(&self) -> Result<(), String> {
        let (p, parity) = (self.index, self.parity_discs);
        if p == 0 || p > parity {
            return Err(format!("parity disc {p} of {parity} (needs 1 ≤ p ≤ P)"));
        }
        let n = self.discs.len() as u32;
        if u64::from(n) + u64::from(parity) > MAX_SET_DISCS || parity > max_parity_discs(n) {
            return Err(format!(
                "{n} data + {parity} parity discs (a set has P ≤ max(n, 8) and at most {MAX_SET_DISCS} discs)"
            ));
        }
        let max_d = self.discs.iter().map(|d| d.protected).max().unwrap_or(0);
        if max_d != self.columns {
            return Err(format!(
                "{} columns, but the largest protected region is {max_d} sectors",
                self.columns
            ));
        }
        for (i, d) in self.discs.iter().enumerate() {
            if d.disc != i as u32 + 1 {
                return Err(format!(
                    "record {} is for data disc {} (records go 1 … n in order, once each)",
                    i + 1,
                    d.disc
                ));
            }
            check_sizes(d)?;
        }
        Ok(())
    }
}

/// One data-disc record of 6208 bytes (FORMAT.md §10.3), `r` exactly that long.
fn decode_record(r: &[u8]) -> DataDiscRecord {
    let sector = |j: usize| r[64 + j * SECTOR_SIZE..][..SECTOR_SIZE].to_vec();
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&r[32..64]);
    DataDiscRecord {
        disc: le32(r, 0),
        image_sectors: le64(r, 8),
        protected: le64(r, 16),
        fec_sectors: le64(r, 24),
        sha256,
        fec_header: sector(0),
        sector_n2: sector(1),
        sector_n1: sector(2),
    }
}

/// A data disc's N, D, F as FORMAT.md §1 lays an image out: D ≥ 1, then F, zero padding to the
/// next cluster multiple, then the two trailing sectors, N below 2^32 (§2.1).
fn check_sizes(d: &DataDiscRecord) -> Result<(), String> {
    let (n, dd, f) = (d.image_sectors, d.protected, d.fec_sectors);
    let laid_out = dd
        .checked_add(f)
        .and_then(|x| x.checked_add(2))
        .map(|x| x.next_multiple_of(CLUSTER));
    if dd == 0 || laid_out != Some(n) || n >= 1 << 32 {
        return Err(format!(
            "data disc {}: N = {n}, D = {dd}, F = {f} sectors are not an image's layout (N = D + F + 2 rounded up to 32, below 2^32)",
            d.disc
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ParityManifest {
        ParityManifest {
            chain_id: [3; 16],
            generation: 1,
            index: 1,
            parity_discs: 2,
            columns: 900,
            discs: (1..=3)
                .map(|i| DataDiscRecord {
                    disc: i,
                    image_sectors: (800 + u64::from(i) * 50 - 50 + 102).next_multiple_of(32),
                    protected: 800 + u64::from(i) * 50 - 50,
                    fec_sectors: 100,
                    sha256: [i as u8; 32],
                    fec_header: vec![i as u8; SECTOR_SIZE],
                    sector_n2: vec![7; SECTOR_SIZE],
                    sector_n1: vec![9; SECTOR_SIZE],
                })
                .collect(),
        }
    }

    #[test]
    fn roundtrip_and_damage() {
        let m = sample();
        let b = m.encode();
        assert_eq!(b.len(), ParityManifest::encoded_len(3));
        assert_eq!(ParityManifest::decode(&b).unwrap(), m);
        let mut bad = b.clone();
        bad[200] ^= 1;
        assert!(ParityManifest::decode(&bad).is_err());
        assert!(ParityManifest::decode(&b[..b.len() - 1]).is_err());
        let mut wrong = sample();
        wrong.columns = 5;
        assert!(ParityManifest::decode(&wrong.encode()).is_err());
    }

    /// Every rule of FORMAT.md §10.3 a crafted manifest can break is refused as invalid (not as
    /// damage), with a message saying which.
    #[test]
    fn crafted_fields_are_refused_as_invalid() {
        type Fault = fn(&mut ParityManifest);
        let faults: [(Fault, &str); 10] = [
            (|m| m.parity_discs = 9, "P ≤ max(n, 8)"),
            (|m| m.discs.clear(), "0 data discs"),
            (|m| m.parity_discs = 0, "needs 1 ≤ p ≤ P"),
            (|m| m.index = 3, "needs 1 ≤ p ≤ P"),
            (|m| m.parity_discs = u32::MAX, "P ≤ max(n, 8)"),
            (|m| m.discs[1].disc = 1, "record 2 is for data disc 1"),
            (|m| m.columns += 1, "largest protected region"),
            (|m| m.discs[0].image_sectors += 32, "not an image's layout"),
            (
                |m| m.discs[0].image_sectors = 1 << 40,
                "not an image's layout",
            ),
            (
                |m| {
                    m.discs[0].fec_sectors = 1 << 32;
                    m.discs[0].image_sectors = (800 + (1 << 32) + 2u64).next_multiple_of(32);
                },
                "below 2^32",
            ),
        ];
        for (fault, why) in faults {
            let mut m = sample();
            fault(&mut m);
            match ParityManifest::decode(&m.encode()) {
                Err(ManifestError::Invalid(e)) => assert!(e.contains(why), "{why}: {e}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        // A count past the limit is refused before anything is allocated for it.
        let mut b = sample().encode();
        b[12..16].copy_from_slice(&(MAX_DATA_DISCS + 1).to_le_bytes());
        let end = b.len() - 4;
        let crc = crc32c::crc32c(&b[..end]);
        b[end..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            ParityManifest::decode(&b),
            Err(ManifestError::Invalid(_))
        ));
    }
}
