//! A disc given as a directory — mounted by the OS, or a copy of its files — read as if it were
//! the image: the files named in the disc header and index are laid out at their recorded LBAs in
//! a virtual image. Sectors that no file covers (filesystem structures, README) read as zeros;
//! the FEC treats them as lost if a repair is ever needed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::format::catalog::DiscIndex;
use crate::format::disc_header::{DiscHeader, SECTION_LAST_DISC};
use crate::format::records::{self, decode_record};
use crate::sector::{SectorSource, SECTOR_SIZE};

/// One file placed at an LBA of the virtual image.
struct Mapped {
    lba: u64,
    len: u64,
    file: File,
}

/// A virtual image assembled from a disc directory.
pub(crate) struct DiscDirSource {
    dir: PathBuf,
    /// Sorted by `lba`, non-overlapping.
    files: Vec<Mapped>,
    sectors: u64,
}

/// Finds the disc-header copies (`*/<name>-gen<G>-disc<NNNN>.hdr`) in a disc directory.
pub(crate) fn header_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return v;
    };
    for e in rd.flatten() {
        if !e.path().is_dir() {
            continue;
        }
        if let Ok(sub) = std::fs::read_dir(e.path()) {
            v.extend(
                sub.flatten()
                    .map(|f| f.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "hdr")),
            );
        }
    }
    v.sort();
    v
}

impl DiscDirSource {
    /// Assembles the virtual image of the disc whose header copy is `hdr` inside `dir`.
    pub(crate) fn open(dir: &Path, hdr: &Path) -> std::io::Result<DiscDirSource> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let raw = std::fs::read(hdr)?;
        let header =
            DiscHeader::decode(&raw).map_err(|e| bad(format!("{}: {e}", hdr.display())))?;
        let n = header.image_sectors;
        let mut files = Vec::new();
        let map = |lba: u64, path: PathBuf, files: &mut Vec<Mapped>| -> std::io::Result<()> {
            let file = File::open(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let len = file.metadata()?.len();
            files.push(Mapped { lba, len, file });
            Ok(())
        };
        map(0, hdr.to_path_buf(), &mut files)?;
        if n >= 2 {
            map(n - 2, hdr.to_path_buf(), &mut files)?;
        }
        let name = &header.name;
        for s in &header.sections {
            let g = s.generation;
            let folder = dir.join(format!("{name}-gen{g}"));
            let idx_path = folder.join(format!("{name}-gen{g}-disc{:04}.idx", s.disc));
            map(s.index_lba, idx_path.clone(), &mut files)?;
            if s.flags & SECTION_LAST_DISC != 0 && s.catalog_bytes > 0 {
                map(
                    s.catalog_lba,
                    folder.join(format!("{name}-gen{g}.catalog")),
                    &mut files,
                )?;
            }
            // Part LBAs come from the index; an unreadable index leaves the parts unmapped.
            if let Ok(raw) = std::fs::read(&idx_path) {
                if let Ok((_, index)) =
                    decode_record::<DiscIndex>(records::INDEX_MAGIC, "disc index", &raw)
                {
                    for p in &index.parts {
                        let part = folder.join(format!("{name}-gen{g}.{:04}.tar.zst", p.part));
                        if part.exists() {
                            map(p.lba, part, &mut files)?;
                        }
                    }
                }
            }
        }
        if let Some(last) = header.sections.last() {
            let fec = dir
                .join(format!("{name}-gen{}", last.generation))
                .join(format!(
                    "{name}-gen{}-disc{:04}.fec",
                    last.generation, last.disc
                ));
            if fec.exists() && header.fec_lba > 0 {
                map(header.fec_lba, fec, &mut files)?;
            }
        }
        files.sort_by_key(|m| m.lba);
        Ok(DiscDirSource {
            dir: dir.to_path_buf(),
            files,
            sectors: n,
        })
    }
}

impl SectorSource for DiscDirSource {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let ss = SECTOR_SIZE as u64;
        let count = (buf.len() / SECTOR_SIZE) as u64;
        if buf.len() % SECTOR_SIZE != 0 || lba.saturating_add(count) > self.sectors {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the disc",
            ));
        }
        buf.fill(0);
        let (start, end) = (lba * ss, (lba + count) * ss);
        // Files that can overlap [start, end): those starting before `end`.
        let upto = self.files.partition_point(|m| m.lba * ss < end);
        for m in &self.files[..upto] {
            let (fs, fe) = (m.lba * ss, m.lba * ss + m.len);
            let (a, b) = (fs.max(start), fe.min(end));
            if a < b {
                m.file
                    .read_exact_at(&mut buf[(a - start) as usize..(b - start) as usize], a - fs)?;
            }
        }
        Ok(())
    }

    fn parallel_reads(&self) -> bool {
        false // often a mounted disc: read in order
    }
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}
