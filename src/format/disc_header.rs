//! The disc header: one self-describing, checksummed sector at LBA 0 and at LBA N-2 of every image,
//! so a reader with nothing but the disc identifies it and finds its index, catalog and FEC region.

use thiserror::Error;

use super::chunk::{le32, le64};
use crate::sector::SECTOR_SIZE;

/// Magic at byte 0 of a disc header sector.
pub const DISC_MAGIC: &[u8; 8] = b"BDARDISC";

/// Format version written by this tool (2: parity discs, FORMAT.md §10). Data discs still say
/// "minimum reader version 1" (a version-1 reader reads them); parity discs say 2.
pub const FORMAT_VERSION: u16 = 2;

/// Most generation sections one disc can carry (a packed disc holds pieces of several generations).
pub const MAX_SECTIONS: usize = 8;

const SECTION_TABLE: usize = 160;
const SECTION_LEN: usize = 64;

/// Section flag: this disc is the last of its generation and holds the generation's catalog.
pub const SECTION_LAST_DISC: u32 = 1;

/// Section flag: this is a parity disc of its generation (FORMAT.md §10); the section's fields are
/// read as a parity section ([`DiscSection::parity`]).
pub const SECTION_PARITY_DISC: u32 = 2;

/// Errors parsing a disc header.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiscHeaderError {
    /// No magic.
    #[error("no bd-archive disc header")]
    BadMagic,
    /// CRC mismatch.
    #[error("disc header is damaged (checksum mismatch)")]
    Checksum,
    /// Unknown major version.
    #[error("disc needs a reader of format version {0}; this bd-archive reads up to version {FORMAT_VERSION} — use a newer release")]
    Version(u16),
    /// Fields out of range.
    #[error("disc header invalid: {0}")]
    Invalid(&'static str),
}

/// What one generation stores on this disc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscSection {
    /// Generation number.
    pub generation: u32,
    /// Disc number within that generation (1-based).
    pub disc: u32,
    /// `SECTION_LAST_DISC` etc.
    pub flags: u32,
    /// First global data-part number on this disc.
    pub first_part: u32,
    /// Number of data parts on this disc.
    pub part_count: u32,
    /// Parity discs: the number n of data discs the parity covers. Data discs: P, the parity
    /// discs of their generation (0: none, or a disc written before P was recorded); read it
    /// with [`DiscSection::set_parity_discs`].
    pub data_discs: u32,
    /// LBA of the per-disc index file.
    pub index_lba: u64,
    /// Bytes of the index file.
    pub index_bytes: u64,
    /// LBA of the generation's catalog (0 if not on this disc).
    pub catalog_lba: u64,
    /// Bytes of the catalog (0 if not on this disc).
    pub catalog_bytes: u64,
    /// Sequence number of the first chunk on this disc.
    pub first_chunk: u64,
}

/// A parity disc's section read with its own meaning (FORMAT.md §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParitySection {
    /// Generation covered.
    pub generation: u32,
    /// This disc's parity shard p, 1-based (≤ `parity_discs`).
    pub index: u32,
    /// P: parity discs of the generation.
    pub parity_discs: u32,
    /// n: data discs of the generation (discs 1..=n); this disc is disc n + p of the set.
    pub data_discs: u32,
    /// LBA and bytes of the parity manifest.
    pub manifest: (u64, u64),
    /// LBA and bytes of the copy of the generation's catalog.
    pub catalog: (u64, u64),
    /// LBA of the column parity (L sectors, L from the manifest).
    pub column_lba: u64,
}

impl DiscSection {
    /// The parity view of a section flagged [`SECTION_PARITY_DISC`] (None for a data section).
    pub fn parity(&self) -> Option<ParitySection> {
        (self.flags & SECTION_PARITY_DISC != 0).then_some(ParitySection {
            generation: self.generation,
            index: self.first_part,
            parity_discs: self.part_count,
            data_discs: self.data_discs,
            manifest: (self.index_lba, self.index_bytes),
            catalog: (self.catalog_lba, self.catalog_bytes),
            column_lba: self.first_chunk,
        })
    }

    /// P, the parity discs of the generation, as this disc records it (a parity disc in its
    /// parity section; a data disc in the field a parity disc uses for n; 0: none recorded).
    pub fn set_parity_discs(&self) -> u32 {
        match self.parity() {
            Some(p) => p.parity_discs,
            None => self.data_discs,
        }
    }

    /// The section a parity disc carries (the inverse of [`DiscSection::parity`]).
    pub fn from_parity(p: &ParitySection) -> DiscSection {
        DiscSection {
            generation: p.generation,
            disc: p.data_discs + p.index,
            flags: SECTION_PARITY_DISC,
            first_part: p.index,
            part_count: p.parity_discs,
            data_discs: p.data_discs,
            index_lba: p.manifest.0,
            index_bytes: p.manifest.1,
            catalog_lba: p.catalog.0,
            catalog_bytes: p.catalog.1,
            first_chunk: p.column_lba,
        }
    }
}

/// The disc header (2048 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscHeader {
    /// Chain id.
    pub chain_id: [u8; 16],
    /// Chain name (1..=64 bytes UTF-8).
    pub name: String,
    /// Total sectors of the image (N).
    pub image_sectors: u64,
    /// Sectors of the medium the image was planned for (fit check at burn time).
    pub capacity_sectors: u64,
    /// First LBA of the FEC region (= number of protected sectors D); 0 if no FEC.
    pub fec_lba: u64,
    /// Sectors of the FEC region.
    pub fec_sectors: u64,
    /// Creation time, seconds since the epoch.
    pub created_unix: i64,
    /// Generation sections (1..=MAX_SECTIONS).
    pub sections: Vec<DiscSection>,
}

impl DiscHeader {
    /// Serialises into one sector.
    pub fn encode(&self) -> [u8; SECTOR_SIZE] {
        let mut b = [0u8; SECTOR_SIZE];
        b[0..8].copy_from_slice(DISC_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Version-1 readers read data discs; a parity disc needs a reader that knows §10.
        let min_reader: u16 = if self.is_parity() { 2 } else { 1 };
        b[10..12].copy_from_slice(&min_reader.to_le_bytes());
        b[16..32].copy_from_slice(&self.chain_id);
        b[32..40].copy_from_slice(&self.image_sectors.to_le_bytes());
        b[40..48].copy_from_slice(&self.capacity_sectors.to_le_bytes());
        b[48..56].copy_from_slice(&self.fec_lba.to_le_bytes());
        b[56..64].copy_from_slice(&self.fec_sectors.to_le_bytes());
        b[64..72].copy_from_slice(&self.created_unix.to_le_bytes());
        let n = self.sections.len().min(MAX_SECTIONS);
        b[72..76].copy_from_slice(&(n as u32).to_le_bytes());
        let name = self.name.as_bytes();
        let nl = name.len().min(64);
        b[80] = nl as u8;
        b[81..81 + nl].copy_from_slice(&name[..nl]);
        for (i, s) in self.sections.iter().take(n).enumerate() {
            let o = SECTION_TABLE + i * SECTION_LEN;
            b[o..o + 4].copy_from_slice(&s.generation.to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&s.disc.to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&s.flags.to_le_bytes());
            b[o + 12..o + 16].copy_from_slice(&s.first_part.to_le_bytes());
            b[o + 16..o + 20].copy_from_slice(&s.part_count.to_le_bytes());
            b[o + 20..o + 24].copy_from_slice(&s.data_discs.to_le_bytes());
            b[o + 24..o + 32].copy_from_slice(&s.index_lba.to_le_bytes());
            b[o + 32..o + 40].copy_from_slice(&s.index_bytes.to_le_bytes());
            b[o + 40..o + 48].copy_from_slice(&s.catalog_lba.to_le_bytes());
            b[o + 48..o + 56].copy_from_slice(&s.catalog_bytes.to_le_bytes());
            b[o + 56..o + 64].copy_from_slice(&s.first_chunk.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b[0..SECTOR_SIZE - 4]);
        b[SECTOR_SIZE - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates one sector.
    pub fn decode(b: &[u8]) -> Result<DiscHeader, DiscHeaderError> {
        if b.len() < SECTOR_SIZE || &b[0..8] != DISC_MAGIC {
            return Err(DiscHeaderError::BadMagic);
        }
        if crc32c::crc32c(&b[0..SECTOR_SIZE - 4]) != le32(b, SECTOR_SIZE - 4) {
            return Err(DiscHeaderError::Checksum);
        }
        let min_reader = u16::from_le_bytes([b[10], b[11]]);
        if min_reader > FORMAT_VERSION {
            return Err(DiscHeaderError::Version(min_reader));
        }
        let n = le32(b, 72) as usize;
        if n == 0 || n > MAX_SECTIONS {
            return Err(DiscHeaderError::Invalid("section count"));
        }
        let nl = b[80] as usize;
        if nl == 0 || nl > 64 {
            return Err(DiscHeaderError::Invalid("name length"));
        }
        let name = std::str::from_utf8(&b[81..81 + nl])
            .map_err(|_| DiscHeaderError::Invalid("name is not UTF-8"))?;
        let sections = (0..n)
            .map(|i| {
                let o = SECTION_TABLE + i * SECTION_LEN;
                DiscSection {
                    generation: le32(b, o),
                    disc: le32(b, o + 4),
                    flags: le32(b, o + 8),
                    first_part: le32(b, o + 12),
                    part_count: le32(b, o + 16),
                    data_discs: le32(b, o + 20),
                    index_lba: le64(b, o + 24),
                    index_bytes: le64(b, o + 32),
                    catalog_lba: le64(b, o + 40),
                    catalog_bytes: le64(b, o + 48),
                    first_chunk: le64(b, o + 56),
                }
            })
            .collect();
        Ok(DiscHeader {
            chain_id: b[16..32]
                .try_into()
                .map_err(|_| DiscHeaderError::BadMagic)?,
            name: name.to_string(),
            image_sectors: le64(b, 32),
            capacity_sectors: le64(b, 40),
            fec_lba: le64(b, 48),
            fec_sectors: le64(b, 56),
            created_unix: le64(b, 64) as i64,
            sections,
        })
    }

    /// Whether this is a parity disc (its only section is a parity section, FORMAT.md §10).
    pub fn is_parity(&self) -> bool {
        self.sections
            .iter()
            .any(|s| s.flags & SECTION_PARITY_DISC != 0)
    }

    /// The parity section of a parity disc.
    pub fn parity(&self) -> Option<ParitySection> {
        self.sections.iter().find_map(DiscSection::parity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let h = DiscHeader {
            chain_id: [9; 16],
            name: "photos ü".into(),
            image_sectors: 12_219_392,
            capacity_sectors: 12_219_392,
            fec_lba: 11_000_000,
            fec_sectors: 1_100_000,
            created_unix: 1_750_000_000,
            sections: vec![DiscSection {
                generation: 3,
                disc: 2,
                flags: SECTION_LAST_DISC,
                first_part: 7,
                part_count: 6,
                data_discs: 0,
                index_lba: 10_999_000,
                index_bytes: 12345,
                catalog_lba: 10_999_100,
                catalog_bytes: 99999,
                first_chunk: 23_000,
            }],
        };
        let b = h.encode();
        assert_eq!(DiscHeader::decode(&b).unwrap(), h);
        let mut bad = b;
        bad[100] ^= 4;
        assert_eq!(DiscHeader::decode(&bad), Err(DiscHeaderError::Checksum));
        assert_eq!(
            DiscHeader::decode(&[0u8; 100]),
            Err(DiscHeaderError::BadMagic)
        );
        assert_eq!(
            &b[8..12],
            &[2, 0, 1, 0],
            "written by version 2, readable by version 1"
        );
    }

    #[test]
    fn parity_section_roundtrip_and_reader_version() {
        let p = ParitySection {
            generation: 2,
            index: 1,
            parity_discs: 2,
            data_discs: 12,
            manifest: (5000, 75_000),
            catalog: (5037, 4096),
            column_lba: 1100,
        };
        let h = DiscHeader {
            chain_id: [1; 16],
            name: "x".into(),
            image_sectors: 64,
            capacity_sectors: 64,
            fec_lba: 40,
            fec_sectors: 20,
            created_unix: 1,
            sections: vec![DiscSection::from_parity(&p)],
        };
        let mut b = h.encode();
        assert_eq!(&b[10..12], &[2, 0], "parity discs need a version-2 reader");
        let back = DiscHeader::decode(&b).unwrap();
        assert_eq!(back.parity(), Some(p));
        assert_eq!(back.sections[0].disc, 13);
        // A reader of version 2 refuses a disc that needs version 3, naming it.
        b[10] = 3;
        let crc = crc32c::crc32c(&b[0..SECTOR_SIZE - 4]);
        b[SECTOR_SIZE - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(DiscHeader::decode(&b), Err(DiscHeaderError::Version(3)));
    }
}
