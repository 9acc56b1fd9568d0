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

/// Errors parsing a manifest.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Wrong magic, size, version or checksum.
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

    /// Parses and checks a manifest.
    pub fn decode(b: &[u8]) -> Result<ParityManifest, ManifestError> {
        let bad = |s: &str| ManifestError::Invalid(s.to_string());
        if b.len() < MANIFEST_HEAD + 4 || &b[0..8] != MANIFEST_MAGIC {
            return Err(bad("no manifest magic"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != MANIFEST_VERSION {
            return Err(ManifestError::Invalid(format!(
                "manifest version {version}; this bd-archive reads version {MANIFEST_VERSION}"
            )));
        }
        let n = le32(b, 12);
        if n == 0 || n > MAX_DATA_DISCS || b.len() != Self::encoded_len(n as usize) {
            return Err(bad("data disc count does not match the manifest's size"));
        }
        let end = b.len() - 4;
        if crc32c::crc32c(&b[..end]) != le32(b, end) {
            return Err(bad("checksum mismatch"));
        }
        let sector = |at: usize| b[at..at + SECTOR_SIZE].to_vec();
        let discs = (0..n as usize)
            .map(|i| {
                let o = MANIFEST_HEAD + i * DISC_RECORD;
                let mut sha256 = [0u8; 32];
                sha256.copy_from_slice(&b[o + 32..o + 64]);
                DataDiscRecord {
                    disc: le32(b, o),
                    image_sectors: le64(b, o + 8),
                    protected: le64(b, o + 16),
                    fec_sectors: le64(b, o + 24),
                    sha256,
                    fec_header: sector(o + 64),
                    sector_n2: sector(o + 64 + SECTOR_SIZE),
                    sector_n1: sector(o + 64 + 2 * SECTOR_SIZE),
                }
            })
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
        m.check().map_err(bad)?;
        Ok(m)
    }

    /// The invariants a reader relies on: discs numbered 1..=n in order, D ≤ L, 1 ≤ p ≤ P,
    /// D + F + 2 ≤ N.
    fn check(&self) -> Result<(), &'static str> {
        if self.index == 0 || self.index > self.parity_discs {
            return Err("parity index out of range");
        }
        let max_d = self.discs.iter().map(|d| d.protected).max().unwrap_or(0);
        if max_d != self.columns {
            return Err("column count is not the largest protected region");
        }
        for (i, d) in self.discs.iter().enumerate() {
            if d.disc != i as u32 + 1 {
                return Err("data discs out of order");
            }
            let needed = d
                .protected
                .checked_add(d.fec_sectors)
                .and_then(|x| x.checked_add(2));
            if d.protected == 0 || needed.is_none_or(|x| x > d.image_sectors) {
                return Err("a data disc's N, D, F are inconsistent");
            }
        }
        Ok(())
    }
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
                    image_sectors: 1024,
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
}
