//! Finding and reading our discs: disc headers, per-disc indexes, catalogs and chunks, straight
//! from images (no mounting). A [`DiscSet`] gathers the discs given on the command line, in any
//! order, and serves tar-stream bytes of a generation from whichever disc holds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use thiserror::Error;

use crate::fec::{self, FecScan, LocatedFec, RepairedSource};
use crate::format::catalog::{Catalog, ChunkRecord, DiscIndex, Entry, PartRecord};
use crate::format::chunk::{
    decode_chunk, zstd_bound, ChunkError, ChunkHeader, CHUNK_FRAME_OVERHEAD, MAX_CHUNK_SIZE,
};
use crate::format::disc_header::{DiscHeader, SECTION_LAST_DISC};
use crate::format::records::{self, RecordError};
use crate::sector::{FileSectorSource, SectorSource, SECTOR_SIZE};

/// Errors identifying or reading a disc.
#[derive(Debug, Error)]
pub enum ReadError {
    /// I/O error opening or reading.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// No valid disc header found.
    #[error("{0}: not a bd-archive disc image (no valid disc header at sector 0 or at the end)")]
    NotOurs(String),
    /// Index/catalog could not be decoded.
    #[error("{0}: {1}")]
    Record(String, RecordError),
    /// A chunk could not be read or decoded.
    #[error("{0}: {1}")]
    Chunk(String, ChunkError),
    /// The FEC could not be used.
    #[error("{0}: {1}")]
    Fec(String, fec::FecError),
    /// Structural inconsistency.
    #[error("{0}: {1}")]
    Inconsistent(String, String),
    /// A parity disc (FORMAT.md §10): it holds no archived data of its own; it is read by the
    /// set rebuild (`restore::parity`), not as a data disc.
    #[error("{0}: a parity disc of '{1}' generation {2} (holds no files of its own; used to rebuild missing data discs)")]
    ParityDisc(String, String, u32),
}

/// Reads `len` bytes at byte `offset` from a sector source.
pub fn read_bytes(src: &dyn SectorSource, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    Ok(read_span(src, offset, len, &mut buf)?.to_vec())
}

/// Reads `len` bytes at byte `offset` from a sector source into `buf` (resized to the whole
/// sectors holding them; its earlier contents are overwritten) and returns them. Reusing `buf`
/// saves an allocation, and returning a slice saves moving the bytes to its start.
pub fn read_span<'b>(
    src: &dyn SectorSource,
    offset: u64,
    len: usize,
    buf: &'b mut Vec<u8>,
) -> std::io::Result<&'b [u8]> {
    let s = SECTOR_SIZE as u64;
    let first = offset / s;
    let end = offset
        .checked_add(len as u64)
        .ok_or_else(|| std::io::Error::other("read range overflows"))?;
    let last = end.div_ceil(s);
    let count = usize::try_from(last - first)
        .ok()
        .and_then(|c| c.checked_mul(SECTOR_SIZE))
        .ok_or_else(|| std::io::Error::other("read too large"))?;
    buf.resize(count, 0);
    src.read_sectors(first, &mut buf[..count])?;
    let start = (offset - first * s) as usize;
    Ok(&buf[start..start + len])
}

/// Finds the disc header: sector 0, else sector N-2, else scans the first and last 64 sectors.
pub fn find_disc_header(src: &dyn SectorSource) -> Option<DiscHeader> {
    let n = src.sector_count();
    let mut candidates: Vec<u64> = vec![0];
    if n >= 2 {
        candidates.push(n - 2);
    }
    candidates.extend(1..64.min(n));
    candidates.extend(n.saturating_sub(64)..n);
    let mut buf = vec![0u8; SECTOR_SIZE];
    for lba in candidates {
        if src.read_sectors(lba, &mut buf).is_ok() {
            if let Ok(h) = DiscHeader::decode(&buf) {
                return Some(h);
            }
        }
    }
    None
}

/// Where repaired sectors may spill and how much RAM repair may use.
#[derive(Clone, Debug)]
pub struct RepairSettings {
    /// FEC memory budget in bytes.
    pub memory_budget: u64,
    /// Directory for spilled repaired sectors (None: keep them in RAM).
    pub spill_dir: Option<PathBuf>,
}

impl Default for RepairSettings {
    fn default() -> Self {
        RepairSettings {
            memory_budget: 1 << 30,
            spill_dir: None,
        }
    }
}

/// What an FEC repair of a disc found and did.
#[derive(Clone, Debug)]
pub struct RepairSummary {
    /// Protected sectors found damaged or missing.
    pub lost_sectors: u64,
    /// Parity sectors found damaged or missing.
    pub lost_parity: u64,
    /// Protected sectors that could not be rebuilt.
    pub unrepaired: u64,
}

/// One disc of ours, opened.
pub struct Disc {
    /// Where it came from (for messages).
    pub name: String,
    /// Sector access: the raw source, replaced by an FEC-repaired view once damage is seen.
    source: RwLock<Arc<dyn SectorSource>>,
    /// Result of the FEC repair, once one has run (so it runs at most once).
    repair: Mutex<Option<Result<RepairSummary, String>>>,
    settings: RepairSettings,
    /// The disc header.
    pub header: DiscHeader,
    /// The per-disc index of the disc's (first) generation section (None if destroyed). On the
    /// generation's last disc its `entries` are left empty when the catalog beside it was read
    /// (the catalog lists them all; holding both doubled the memory of a large tree): see
    /// [`Disc::index_entries`].
    pub index: Option<DiscIndex>,
    /// The generation's catalog, if this is the generation's last disc.
    pub catalog: Option<Catalog>,
    /// What could not be read even with the FEC (empty for a healthy disc).
    pub problems: Vec<String>,
    /// Which generation section of the disc header this view reads (a packed disc has several).
    pub section: usize,
    /// The set id in the record header of this section's index (else catalog), when one could
    /// be read: all zero on discs of format version 1 (see [`records::RecordIdentity::set_id`]).
    pub set_id: Option<[u8; 16]>,
    /// Shares of the decode budget held for its index and catalog (given back with the disc).
    _budget: Vec<records::BudgetClaim>,
    /// Where to turn when the disc's own FEC cannot repair it (set by the restore layer).
    replacement: Mutex<Option<Arc<dyn Replacement>>>,
}

/// The last resort for a disc damaged beyond its own FEC: an image to read in its place, which
/// the generation's parity discs rebuilt (`restore::parity_sources`, FORMAT.md §10).
pub trait Replacement: Send + Sync {
    /// An image standing for data disc `disc` of generation `generation`, and whether it is the
    /// whole disc bit-identical (else rebuilt as far as possible); None: nothing better.
    fn replacement(&self, generation: u32, disc: u32) -> Option<(PathBuf, bool)>;
}

/// What could be read from one source: the header (required), and the index and catalog, each of
/// which may be unreadable on a damaged disc.
struct Contents {
    header: DiscHeader,
    index: Result<DiscIndex, ReadError>,
    catalog: Result<Option<Catalog>, ReadError>,
    /// Decode-budget shares of the records read.
    claims: Vec<records::BudgetClaim>,
    /// The set id in the record header of the index, else of the catalog, when one was read.
    set_id: Option<[u8; 16]>,
}

/// A disc index as stored, decoded without keeping its entries: on a generation's last disc the
/// catalog lists them all. The fields are those of [`DiscIndex`], in its order (bincode is
/// positional); the entries are still decoded, so a damaged index is still refused.
/// `E` is the entry layout of the record's version ([`Entry`], or version 1's).
#[derive(serde::Deserialize)]
#[serde(bound = "E: serde::de::DeserializeOwned")]
struct IndexWithoutEntries<E = Entry> {
    chain: crate::format::catalog::ChainInfo,
    disc: crate::format::catalog::DiscRecord,
    parts: Vec<PartRecord>,
    chunks: Vec<ChunkRecord>,
    #[serde(deserialize_with = "skip_entries::<_, E>")]
    entries: Vec<Entry>,
    /// Not in the record: the entry layout the record was decoded with.
    #[serde(skip)]
    layout: std::marker::PhantomData<E>,
}

impl records::RecordBody for IndexWithoutEntries {
    type V1 = IndexWithoutEntries<crate::format::catalog::v1::EntryV1>;
}

impl From<IndexWithoutEntries<crate::format::catalog::v1::EntryV1>> for IndexWithoutEntries {
    fn from(i: IndexWithoutEntries<crate::format::catalog::v1::EntryV1>) -> Self {
        IndexWithoutEntries {
            chain: i.chain,
            disc: i.disc,
            parts: i.parts,
            chunks: i.chunks,
            entries: i.entries,
            layout: std::marker::PhantomData,
        }
    }
}

/// Decodes a sequence of entries (of layout `E`) one by one and drops each; yields an empty list.
fn skip_entries<'de, D: serde::Deserializer<'de>, E: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<Entry>, D::Error> {
    struct Skip<E>(std::marker::PhantomData<E>);
    impl<'de, E: serde::de::DeserializeOwned> serde::de::Visitor<'de> for Skip<E> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sequence of entries")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<E>()?.is_some() {}
            Ok(())
        }
    }
    d.deserialize_seq(Skip::<E>(std::marker::PhantomData))?;
    Ok(Vec::new())
}

impl Contents {
    fn complete(&self) -> bool {
        self.index.is_ok() && self.catalog.is_ok()
    }
}

/// The set id of each generation section of a disc, from the record header of its index (else
/// of its catalog), without decoding either: None where neither header can be read.
pub fn section_set_ids(source: &dyn SectorSource, header: &DiscHeader) -> Vec<Option<[u8; 16]>> {
    let set_at = |lba: u64, magic: &[u8; 8], what: &'static str| {
        if lba == 0 || lba >= source.sector_count() {
            return None;
        }
        let mut head = [0u8; records::RECORD_HEADER_LEN];
        let mut r = SectorReader {
            source,
            pos: lba * SECTOR_SIZE as u64,
            end: lba * SECTOR_SIZE as u64 + head.len() as u64,
        };
        std::io::Read::read_exact(&mut r, &mut head).ok()?;
        Some(records::decode_header(magic, what, &head).ok()?.id.set_id)
    };
    header
        .sections
        .iter()
        .map(|s| {
            set_at(s.index_lba, records::INDEX_MAGIC, "disc index")
                .or_else(|| set_at(s.catalog_lba, records::CATALOG_MAGIC, "catalog"))
        })
        .collect()
}

/// Decodes the record file of `bytes` bytes at `lba`, streaming from the sectors (a catalog of a
/// million entries is tens of MB even compressed; it is never held next to its decoded entries).
pub(crate) fn decode_at<T: records::RecordBody>(
    name: &str,
    source: &dyn SectorSource,
    (lba, bytes): (u64, u64),
    magic: &[u8; 8],
    what: &'static str,
) -> Result<(T, records::BudgetClaim, [u8; 16]), ReadError> {
    let too_big = bytes > records::MAX_BODY_LEN
        || lba.saturating_add(bytes.div_ceil(SECTOR_SIZE as u64)) > source.sector_count();
    if too_big {
        return Err(ReadError::Inconsistent(
            name.to_string(),
            "index or catalog lies outside the image (truncated?)".into(),
        ));
    }
    let reader = || SectorReader {
        source,
        pos: lba * SECTOR_SIZE as u64,
        end: lba * SECTOR_SIZE as u64 + bytes,
    };
    let record_err = |e| ReadError::Record(name.to_string(), e);
    // The body's share of the decode budget is claimed from its header before decoding, and
    // held by the disc as long as the decoded value may be.
    let mut head = [0u8; records::RECORD_HEADER_LEN];
    std::io::Read::read_exact(&mut reader(), &mut head)
        .map_err(|e| record_err(records::RecordError::Read(what, e)))?;
    let h = records::decode_header(magic, what, &head).map_err(record_err)?;
    let claim = records::claim_decode(what, h.raw_len).map_err(record_err)?;
    records::decode_record_from(magic, what, reader())
        .map(|(h, v)| (v, claim, h.id.set_id))
        .map_err(record_err)
}

/// Sequential reads of the byte range `[pos, end)` of a sector source.
struct SectorReader<'a> {
    source: &'a dyn SectorSource,
    pos: u64,
    end: u64,
}

impl std::io::Read for SectorReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.end - self.pos).min(1 << 20) as usize;
        if n == 0 {
            return Ok(0);
        }
        let bytes = read_bytes(self.source, self.pos, n)?;
        buf[..n].copy_from_slice(&bytes);
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_contents(
    name: &str,
    source: &dyn SectorSource,
    section: usize,
) -> Result<Contents, ReadError> {
    let header = find_disc_header(source).ok_or_else(|| ReadError::NotOurs(name.to_string()))?;
    let s = header.sections.get(section).cloned().ok_or_else(|| {
        ReadError::Inconsistent(
            name.to_string(),
            format!("disc header has no section {section}"),
        )
    })?;
    if let Some(p) = s.parity() {
        return Err(ReadError::ParityDisc(
            name.to_string(),
            header.name.clone(),
            p.generation,
        ));
    }
    let mut claims = Vec::new();
    let mut set_id = None;
    let catalog = if s.flags & SECTION_LAST_DISC != 0 && s.catalog_bytes > 0 {
        let at = (s.catalog_lba, s.catalog_bytes);
        decode_at(name, source, at, records::CATALOG_MAGIC, "catalog").map(|(c, claim, set)| {
            claims.push(claim);
            set_id = Some(set);
            Some(c)
        })
    } else {
        Ok(None)
    };
    let without_entries = matches!(catalog, Ok(Some(_)));
    let at = (s.index_lba, s.index_bytes);
    let decoded = if without_entries {
        decode_at(name, source, at, records::INDEX_MAGIC, "disc index")
            .map(|(i, claim, set): (IndexWithoutEntries, _, _)| {
                claims.push(claim);
                set_id = Some(set);
                i
            })
            .map(|i: IndexWithoutEntries| DiscIndex {
                chain: i.chain,
                disc: i.disc,
                parts: i.parts,
                chunks: i.chunks,
                entries: i.entries,
            })
    } else {
        decode_at(name, source, at, records::INDEX_MAGIC, "disc index").map(
            |(i, claim, set): (DiscIndex, _, _)| {
                claims.push(claim);
                set_id = Some(set);
                i
            },
        )
    };
    let index = decoded.and_then(|index: DiscIndex| {
        if index.chain.chain_id != header.chain_id || index.chain.generation != s.generation {
            return Err(ReadError::Inconsistent(
                name.to_string(),
                "index belongs to another chain or generation than the disc header".into(),
            ));
        }
        Ok(index)
    });
    Ok(Contents {
        header,
        index,
        catalog,
        claims,
        set_id,
    })
}

/// Locates, scans and repairs a source with its FEC region.
fn repaired_view(
    name: &str,
    source: Arc<dyn SectorSource>,
    hint: Option<u64>,
    settings: &RepairSettings,
) -> Result<(Arc<dyn SectorSource>, RepairSummary), ReadError> {
    let fec_err = |e| ReadError::Fec(name.to_string(), e);
    let located: LocatedFec = fec::locate(source.as_ref(), hint).map_err(fec_err)?;
    let scan: FecScan = fec::scan(source.as_ref(), &located, &|_| {}).map_err(fec_err)?;
    repaired_from_scan(source, &located, &scan, settings).map_err(fec_err)
}

/// Repairs `source` by a scan of it already made (`verify` scans every disc anyway): the view
/// extract and the filesystem reader use, and what the repair did.
pub fn repaired_from_scan(
    source: Arc<dyn SectorSource>,
    located: &LocatedFec,
    scan: &FecScan,
    settings: &RepairSettings,
) -> Result<(Arc<dyn SectorSource>, RepairSummary), fec::FecError> {
    let repaired = RepairedSource::new(
        source,
        located,
        scan,
        settings.memory_budget,
        settings.spill_dir.as_deref(),
    )?;
    let summary = RepairSummary {
        lost_sectors: scan.lost_data_sectors(),
        lost_parity: scan.lost_parity_sectors(),
        unrepaired: repaired.report().unrepaired_lbas.len(),
    };
    Ok((Arc::new(repaired), summary))
}

impl Disc {
    /// Opens an image file and reads its header, index and catalog (repairing with the FEC if needed).
    /// For a disc that holds several generations (`--pack-with`) this is its first section.
    pub fn open_path(path: &Path, settings: &RepairSettings) -> Result<Disc, ReadError> {
        let name = path.display().to_string();
        let src = FileSectorSource::open(path).map_err(|e| ReadError::Io(name.clone(), e))?;
        Disc::open(name, Arc::new(src), settings)
    }

    /// Opens every generation section of an image (or of a disc directory holding one disc's
    /// files): one [`Disc`] per generation it holds.
    pub fn open_all(path: &Path, settings: &RepairSettings) -> Result<Vec<Disc>, ReadError> {
        let first = if path.is_dir() {
            let name = path.display().to_string();
            let hdr = crate::disc::dir::header_files(path)
                .into_iter()
                .next()
                .ok_or_else(|| ReadError::NotOurs(name.clone()))?;
            let src = crate::disc::dir::DiscDirSource::open(path, &hdr)
                .map_err(|e| ReadError::Io(name.clone(), e))?;
            Disc::open(name, Arc::new(src), settings)?
        } else {
            Disc::open_path(path, settings)?
        };
        let n = first.header.sections.len();
        let mut discs = vec![first];
        for section in 1..n {
            let source = discs[0].source();
            discs.push(Disc::open_section(
                discs[0].name.clone(),
                source,
                settings,
                section,
            )?);
        }
        Ok(discs)
    }

    /// Reads header, index and catalog from a sector source. If anything is damaged, the FEC
    /// region is located (from the header's hint or by scanning) and the disc is read through a
    /// repaired view. A disc whose header survives but whose index is lost beyond repair is still
    /// returned (`index` None, `problems` says why): with the catalog of its generation, the
    /// chunks that survive on it can still be read.
    pub fn open(
        name: String,
        source: Arc<dyn SectorSource>,
        settings: &RepairSettings,
    ) -> Result<Disc, ReadError> {
        Disc::open_section(name, source, settings, 0)
    }

    /// Like [`Disc::open`] for generation section `section` of the disc header.
    pub fn open_section(
        name: String,
        source: Arc<dyn SectorSource>,
        settings: &RepairSettings,
        section: usize,
    ) -> Result<Disc, ReadError> {
        let first = read_contents(&name, source.as_ref(), section);
        if let Err(e @ ReadError::ParityDisc(..)) = first {
            return Err(e);
        }
        if let Ok(c) = &first {
            if c.complete() {
                let c = first.expect("checked");
                return Ok(Disc::assemble(name, source, None, settings, c, section));
            }
        }
        let hint = first
            .as_ref()
            .ok()
            .map(|c| c.header.fec_lba)
            .or_else(|| find_disc_header(source.as_ref()).map(|h| h.fec_lba));
        match repaired_view(&name, Arc::clone(&source), hint, settings) {
            Ok((view, summary)) => {
                let second = read_contents(&name, view.as_ref(), section);
                let contents = match (second, first) {
                    (Ok(c), _) => c,
                    (Err(_), Ok(c)) => c,
                    (Err(e), Err(_)) => return Err(e),
                };
                Ok(Disc::assemble(
                    name,
                    view,
                    Some(Ok(summary)),
                    settings,
                    contents,
                    section,
                ))
            }
            Err(e) => match first {
                Ok(c) => {
                    let mut d = Disc::assemble(
                        name,
                        source,
                        Some(Err(e.to_string())),
                        settings,
                        c,
                        section,
                    );
                    d.problems.push(format!("FEC repair not possible: {e}"));
                    Ok(d)
                }
                Err(first_err) => match e {
                    ReadError::Fec(_, fec::FecError::NotFound(_)) => Err(first_err),
                    other => Err(other),
                },
            },
        }
    }

    /// Opens a disc on `view`, `raw` repaired by [`repaired_from_scan`] (`summary` is what that
    /// repair did): never scans or repairs again. Header, index and catalog come from the view,
    /// or from `raw` where the view cannot give them (as [`Disc::open`] does).
    pub fn open_repaired(
        name: String,
        raw: &dyn SectorSource,
        (view, summary): (Arc<dyn SectorSource>, RepairSummary),
        settings: &RepairSettings,
    ) -> Result<Disc, ReadError> {
        let contents = match read_contents(&name, view.as_ref(), 0) {
            Ok(c) => c,
            Err(e) => read_contents(&name, raw, 0).map_err(|_| e)?,
        };
        Ok(Disc::assemble(
            name,
            view,
            Some(Ok(summary)),
            settings,
            contents,
            0,
        ))
    }

    fn assemble(
        name: String,
        source: Arc<dyn SectorSource>,
        repair: Option<Result<RepairSummary, String>>,
        settings: &RepairSettings,
        c: Contents,
        section: usize,
    ) -> Disc {
        let mut problems = Vec::new();
        let index = c
            .index
            .map_err(|e| problems.push(format!("disc index unreadable: {e}")))
            .ok();
        let catalog = c
            .catalog
            .map_err(|e| problems.push(format!("catalog unreadable: {e}")))
            .ok()
            .flatten();
        Disc {
            name,
            source: RwLock::new(source),
            repair: Mutex::new(repair),
            settings: settings.clone(),
            header: c.header,
            index,
            catalog,
            problems,
            section,
            set_id: c.set_id,
            _budget: c.claims,
            replacement: Mutex::new(None),
        }
    }

    /// Sets where to turn when this disc's own FEC cannot repair it (see [`Replacement`]).
    pub fn set_replacement(&self, r: Arc<dyn Replacement>) {
        if let Ok(mut g) = self.replacement.lock() {
            *g = Some(r);
        }
    }

    /// After a repair that left sectors unrepaired (or failed): reads the replacement image from
    /// now on, if there is one; its summary then says what is still unknown (nothing for a
    /// disc rebuilt whole).
    fn turn_to_replacement(
        &self,
        repaired: Result<RepairSummary, String>,
    ) -> Result<RepairSummary, String> {
        if repaired.as_ref().is_ok_and(|r| r.unrepaired == 0) {
            return repaired;
        }
        let hook = self.replacement.lock().ok().and_then(|g| g.clone());
        let Some((path, whole)) =
            hook.and_then(|h| h.replacement(self.generation(), self.number()))
        else {
            return repaired;
        };
        let Ok(src) = FileSectorSource::open(&path) else {
            return repaired;
        };
        if let Ok(mut s) = self.source.write() {
            *s = Arc::new(src);
        }
        match (whole, repaired) {
            (true, Ok(r)) => Ok(RepairSummary { unrepaired: 0, ..r }),
            (true, Err(_)) => Ok(RepairSummary {
                lost_sectors: 0,
                lost_parity: 0,
                unrepaired: 0,
            }),
            (false, r) => r,
        }
    }

    /// Entries whose tar record lies (at least partly) on this disc, for mapping damage to files.
    /// On a last disc whose catalog was read these are the catalog's entries of this generation
    /// (a superset: the caller matches them against this disc's chunks anyway); after
    /// [`GenerationSet::new`] took the catalog away, nothing.
    pub fn index_entries(&self) -> impl Iterator<Item = &Entry> {
        let from_index = self.index.iter().flat_map(|i| i.entries.iter());
        let generation = self.generation();
        let from_catalog = self
            .catalog
            .iter()
            .flat_map(|c| c.entries.iter())
            .filter(move |e| e.data.generation == generation);
        from_index.chain(from_catalog)
    }

    /// Generation of the disc's (first) section.
    pub fn generation(&self) -> u32 {
        self.header.sections[self.section].generation
    }

    /// Disc number within its generation.
    pub fn number(&self) -> u32 {
        self.header.sections[self.section].disc
    }

    /// The current sector source (repaired view once a repair has run).
    pub fn source(&self) -> Arc<dyn SectorSource> {
        match self.source.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Repairs the disc with its FEC (once); later reads go through the repaired view.
    pub fn ensure_repaired(&self) -> Result<RepairSummary, String> {
        let mut guard = match self.repair.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(r) = guard.as_ref() {
            return r.clone();
        }
        let result = repaired_view(
            &self.name,
            self.source(),
            Some(self.header.fec_lba),
            &self.settings,
        )
        .map(|(view, summary)| {
            if let Ok(mut s) = self.source.write() {
                *s = view;
            }
            summary
        })
        .map_err(|e| e.to_string());
        let result = self.turn_to_replacement(result);
        *guard = Some(result.clone());
        result
    }

    /// The repair result, if a repair ran.
    pub fn repair_summary(&self) -> Option<Result<RepairSummary, String>> {
        self.repair.lock().ok().and_then(|g| g.clone())
    }

    /// Reads and decodes one chunk stored on this disc; on damage, repairs the disc and retries.
    pub fn read_chunk(
        &self,
        seq: u64,
        rec: &ChunkRecord,
        part_lba: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        match self.read_chunk_once(seq, rec, part_lba, out) {
            Ok(()) => Ok(()),
            Err(first) => match self.ensure_repaired() {
                Ok(_) => self.read_chunk_once(seq, rec, part_lba, out),
                Err(_) => Err(first),
            },
        }
    }

    /// Reads and decodes one chunk without attempting a repair (for checks).
    pub fn read_chunk_once(
        &self,
        seq: u64,
        rec: &ChunkRecord,
        part_lba: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        // Values from an index or catalog are untrusted: bound them before allocating or seeking.
        let bad = |m: &str| ReadError::Inconsistent(self.name.clone(), format!("chunk {seq}: {m}"));
        if rec.stored_len as usize > zstd_bound(MAX_CHUNK_SIZE)
            || rec.tar_len as usize > MAX_CHUNK_SIZE
        {
            return Err(bad("recorded length out of range"));
        }
        let off = part_lba
            .checked_mul(SECTOR_SIZE as u64)
            .and_then(|o| o.checked_add(rec.part_offset))
            .ok_or_else(|| bad("recorded position out of range"))?;
        let len = CHUNK_FRAME_OVERHEAD + rec.stored_len as usize;
        let src = self.source();
        // The sectors read are kept in a buffer per thread: a chunk is read on every extract and
        // verify, and a fresh zeroed buffer each time cost page faults and a memset per byte.
        thread_local! {
            static SECTORS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SECTORS.with(|buf| {
            let mut buf = buf.borrow_mut();
            let raw = read_span(src.as_ref(), off, len, &mut buf)
                .map_err(|e| ReadError::Io(self.name.clone(), e))?;
            let h = ChunkHeader::decode(raw).map_err(|e| ReadError::Chunk(self.name.clone(), e))?;
            if h.seq != seq
                || h.tar_offset != rec.tar_offset
                || h.tar_len != rec.tar_len
                || h.stored_len != rec.stored_len
                || h.chain_id != self.header.chain_id
            {
                return Err(ReadError::Inconsistent(
                    self.name.clone(),
                    format!("chunk {seq} header does not match the index"),
                ));
            }
            decode_chunk(&h, &raw[CHUNK_FRAME_OVERHEAD..], out)
                .map_err(|e| ReadError::Chunk(self.name.clone(), e))
        })
    }
}

/// Expands command-line sources: image files as given, directories to their `*.iso` files (sorted).
pub fn expand_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| ReadError::Io(p.display().to_string(), e))?;
        if meta.is_dir() {
            out.extend(expand_dir(p)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Every generation catalog held by the discs at `path` (an image, a directory of images, an OUT
/// directory, disc directories), from every generation section of each disc (a `--pack-with`
/// disc can hold the catalogs of several generations), with the image it was read from. Discs
/// that cannot be read are skipped; an empty list when there is nothing of ours at `path`.
pub fn catalogs_on(path: &Path, settings: &RepairSettings) -> Vec<(PathBuf, Catalog)> {
    let Ok(images) = expand_sources(&[path.to_path_buf()]) else {
        return Vec::new();
    };
    images
        .into_iter()
        .filter_map(|image| Some((Disc::open_all(&image, settings).ok()?, image)))
        .flat_map(|(discs, image)| {
            discs
                .into_iter()
                .filter_map(move |d| Some((image.clone(), d.catalog?)))
        })
        .collect()
}

/// A directory is a directory of images, an OUT directory (its `images/`), a disc directory (a
/// mounted disc or a copy of one: it has `<name>-gen<G>/*.hdr`), or a directory of disc directories.
fn expand_dir(p: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let rd = std::fs::read_dir(p).map_err(|e| ReadError::Io(p.display().to_string(), e))?;
    let mut isos = Vec::new();
    let mut subdirs = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("iso"))
        {
            isos.push(path);
        }
    }
    if !isos.is_empty() {
        isos.sort();
        return Ok(isos);
    }
    if p.join("images").is_dir() {
        return expand_dir(&p.join("images"));
    }
    if !crate::disc::dir::header_files(p).is_empty() {
        return Ok(vec![p.to_path_buf()]);
    }
    subdirs.sort();
    let discs: Vec<PathBuf> = subdirs
        .into_iter()
        .filter(|d| !crate::disc::dir::header_files(d).is_empty())
        .collect();
    if discs.is_empty() {
        return Err(ReadError::Inconsistent(
            p.display().to_string(),
            "holds no .iso images and no bd-archive disc folders".into(),
        ));
    }
    Ok(discs)
}

/// The discs of one generation that are at hand, and how to reach every chunk.
pub struct GenerationSet {
    /// Chain name.
    pub name: String,
    /// Generation.
    pub generation: u32,
    /// Discs present, by disc number.
    pub discs: BTreeMap<u32, Disc>,
    /// The catalog, if its disc is present; its `chunks` and `entries` are moved to the fields
    /// below (empty here).
    pub catalog: Option<Catalog>,
    /// Chunk table (from the catalog, or merged from the indexes present), in stream order.
    pub chunks: Vec<ChunkRecord>,
    /// Sequence number of each chunk in `chunks` (differs from the position when discs are missing).
    pub chunk_seqs: Vec<u64>,
    /// Part table (same sources).
    pub parts: BTreeMap<u32, PartRecord>,
    /// Entries in stream order (catalog, or merged from the indexes present).
    pub entries: Vec<Entry>,
    /// What was wrong with the tables read (chunk records that break FORMAT §5 and were
    /// dropped): the bytes they claimed are reported as unreadable; one line per cause.
    pub notes: Vec<String>,
}

impl GenerationSet {
    /// Builds the set from discs of one chain and generation.
    pub fn new(discs: Vec<Disc>) -> Result<GenerationSet, ReadError> {
        let first = discs
            .first()
            .ok_or_else(|| ReadError::Inconsistent("sources".into(), "no discs".into()))?;
        let name = first.header.name.clone();
        let generation = first.generation();
        let mut by_no = BTreeMap::new();
        let mut catalog = None;
        for mut d in discs {
            if catalog.is_none() {
                catalog = d.catalog.take();
            }
            by_no.entry(d.number()).or_insert(d);
        }
        let mut parts = BTreeMap::new();
        let (mut chunks, mut chunk_seqs, entries) = match &mut catalog {
            Some(c) => {
                for p in &c.parts {
                    parts.insert(p.part, p.clone());
                }
                // The catalog's tables move here rather than being copied (a copy per file held
                // for the whole run), and the indexes' entry lists, which the catalog supersedes,
                // are dropped: kept, the three made memory grow with the number of files.
                for d in by_no.values_mut() {
                    if let Some(index) = d.index.as_mut() {
                        index.entries = Vec::new();
                    }
                }
                let chunks = std::mem::take(&mut c.chunks);
                let seqs = (0..chunks.len() as u64).collect();
                // Decoding grew the list by doubling: up to half of it is spare capacity.
                let mut entries = std::mem::take(&mut c.entries);
                entries.shrink_to_fit();
                (chunks, seqs, entries)
            }
            None => Self::merge_indexes(&by_no, &mut parts),
        };
        let mut notes = Vec::new();
        let dropped = crate::format::catalog::retain_valid_chunks(&mut chunks, &mut chunk_seqs);
        if dropped > 0 {
            notes.push(format!(
                "generation {generation}: {dropped} chunk record(s) break FORMAT.md §5 (1 MiB chunks at k·2^20, discs in order) and were ignored; the bytes they claim are listed as not restored"
            ));
        }
        Ok(GenerationSet {
            name,
            generation,
            discs: by_no,
            catalog,
            chunks,
            chunk_seqs,
            parts,
            entries,
            notes,
        })
    }

    fn merge_indexes(
        discs: &BTreeMap<u32, Disc>,
        parts: &mut BTreeMap<u32, PartRecord>,
    ) -> (Vec<ChunkRecord>, Vec<u64>, Vec<Entry>) {
        let mut chunks: Vec<(u64, ChunkRecord)> = Vec::new();
        let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
        for d in discs.values() {
            let Some(index) = &d.index else { continue };
            for p in &index.parts {
                parts.insert(p.part, p.clone());
            }
            let first = index.disc.first_chunk;
            chunks.extend(
                index
                    .chunks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (first + i as u64, *c)),
            );
            for e in &index.entries {
                // Prefer the copy with a known hash (the disc where the file ends).
                let known = e.sha256 != [0; 32] || !e.kind.has_content();
                match entries.get(&e.data.header_offset) {
                    Some(old) if old.sha256 != [0; 32] || !known => {}
                    _ => {
                        entries.insert(e.data.header_offset, e.clone());
                    }
                }
            }
        }
        chunks.sort_by_key(|c| c.1.tar_offset);
        chunks.dedup_by_key(|c| c.1.tar_offset);
        let (seqs, chunks) = chunks.into_iter().unzip();
        (chunks, seqs, entries.into_values().collect())
    }

    /// Disc numbers the catalog lists that are not at hand (empty without a catalog).
    pub fn missing_discs(&self) -> Vec<u32> {
        match &self.catalog {
            Some(c) => c
                .discs
                .iter()
                .map(|d| d.disc)
                .filter(|n| !self.discs.contains_key(n))
                .collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::catalog::{ChainInfo, DataRef, DiscRecord, EntryKind};
    use crate::format::records::{decode_record, encode_record, RecordIdentity};

    #[test]
    fn index_without_entries_reads_every_other_field_and_consumes_the_entries() {
        let entry = |p: &[u8]| Entry {
            path: p.to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime_sec: 3,
            mtime_nsec: 4,
            size: 5,
            link_target: Vec::new(),
            rdev: 0,
            sha256: [6; 32],
            data: DataRef::default(),
            stamp: Default::default(),
        };
        let index = DiscIndex {
            chain: ChainInfo {
                name: "n".into(),
                chain_id: [1; 16],
                generation: 1,
                base_generation: 0,
                created_unix: 0,
                tool_version: "v".into(),
                compression: "none".into(),
                redundancy_pct: 10,
            },
            disc: DiscRecord {
                disc: 1,
                volume_label: "L".into(),
                image_sectors: 2,
                capacity_sectors: 3,
                first_chunk: 0,
                chunk_count: 0,
                tar_start: 0,
                tar_end: 0,
            },
            parts: vec![PartRecord {
                part: 1,
                disc: 1,
                lba: 2,
                bytes: 3,
            }],
            chunks: Vec::new(),
            entries: vec![entry(b"a"), entry(b"b/c")],
        };
        let id = RecordIdentity {
            chain_id: [1; 16],
            generation: 1,
            disc: 1,
            set_id: [0; 16],
        };
        let bytes = encode_record(records::INDEX_MAGIC, id, &index).unwrap();
        // The decoder refuses trailing bytes, so this also proves the entries were consumed.
        let (_, lite): (_, IndexWithoutEntries) =
            decode_record(records::INDEX_MAGIC, "disc index", &bytes).unwrap();
        assert!(lite.entries.is_empty());
        assert_eq!(
            (lite.chain, lite.disc, lite.parts, lite.chunks),
            (index.chain, index.disc, index.parts, index.chunks)
        );
    }
}
