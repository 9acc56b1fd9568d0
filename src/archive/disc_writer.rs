//! Writing a generation's chunk stream into disc images, one complete image at a time.
//!
//! [`DiscSetWriter`] receives encoded chunks in stream order and places them into data part files
//! inside the current image; when the next chunk (plus the index that must describe it) would no
//! longer fit the disc's protected budget, it closes the image: index (and on the last disc the
//! catalog), filesystem, disc headers, FEC, fsync, and only then the rename to its final name.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::disc::image_name::{image_file_name, ImageKind};
use crate::fec::{self, FecLayout};
use crate::format::catalog::{
    Catalog, ChainInfo, ChunkRecord, DiscIndex, DiscRecord, Entry, PartRecord,
};
use crate::format::chunk::EncodedChunk;
use crate::format::disc_header::{DiscHeader, DiscSection, SECTION_LAST_DISC};
use crate::format::records::{self, encoded_len, record_size_bound, RecordIdentity};
use crate::image::{self, ImageFile, VolumeSpec, FIRST_DATA_LBA};
use crate::sector::{CLUSTER_SECTORS, SECTOR_SIZE};

/// Largest data part file: below 4 GiB so every ISO9660 reader sees it as one extent.
pub const PART_MAX_BYTES: u64 = 4095 << 20;

/// Sectors at the end of every image outside the protected region: disc header copy and UDF anchor.
pub const TRAILER_SECTORS: u64 = 2;

/// Errors while writing images.
#[derive(Debug, Error)]
pub enum WriteError {
    /// I/O on an image file (the cause is part of the message, not a separate error source, so
    /// it is printed once).
    #[error("{path}: {err}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Cause.
        err: std::io::Error,
    },
    /// The disc capacity cannot hold even one chunk.
    #[error("disc capacity {0} bytes is too small to hold any data after filesystem, index and FEC overhead")]
    CapacityTooSmall(u64),
    /// Filesystem writer failed.
    #[error("writing the filesystem of {0}: {1}")]
    Image(PathBuf, image::ImageError),
    /// FEC failed.
    #[error("computing FEC for {0}: {1}")]
    Fec(PathBuf, fec::FecError),
    /// Internal planning error: the image would not fit the medium.
    #[error("{0}: image of {1} sectors exceeds the disc capacity of {2} sectors (a bug; please report it)")]
    Oversize(PathBuf, u64, u64),
    /// A resumed create cannot continue consistently.
    #[error("{0}")]
    Resume(String),
    /// The `save` function given to [`DiscSetWriter::finish`] failed.
    #[error("saving the catalog: {0}")]
    SaveCatalog(std::io::Error),
    /// A parity disc of this set would not fit the medium (never written oversized). The data
    /// discs' reserve ([`crate::archive::reserve`]) is an upper bound, so this is a bug check.
    #[error("a parity disc of this set would need {sectors} sectors, more than the disc capacity of {capacity}, although the data discs were planned to leave room for it (a bug; please report it); the data images are complete — re-run without parity discs in a new output directory, or with a larger disc")]
    ParityDiscTooLarge {
        /// Sectors the parity image would need.
        sectors: u64,
        /// The medium's sectors.
        capacity: u64,
    },
    /// An image with the final name already exists.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |err| WriteError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Fixed settings of one generation's disc set.
#[derive(Clone, Debug)]
pub struct DiscSetConfig {
    /// `OUT/images`.
    pub images_dir: PathBuf,
    /// Chain and generation identity.
    pub chain: ChainInfo,
    /// The set id of this run, written in the record header of every index and of the catalog
    /// ([`RecordIdentity::set_id`]).
    pub set_id: [u8; 16],
    /// Usable sectors of one medium (a multiple of 32).
    pub capacity_sectors: u64,
    /// FEC redundancy: percent of the disc's sectors that may be lost and still be repaired.
    pub redundancy_pct: u32,
    /// Fill each disc's free space with extra parity.
    pub fill_parity: bool,
    /// Memory budget for the FEC passes, bytes.
    pub memory_budget: u64,
    /// FORMAT.md text placed on every disc.
    pub format_md: Vec<u8>,
    /// Disc number of the first image this run writes to `OUT/images` (see
    /// [`crate::disc::image_name`]).
    pub first_image_number: u32,
    /// `--pack-with`: an unburned image whose contents go onto the first disc of this run.
    pub carry_in: Option<CarryIn>,
    /// The static bd-archive binary placed on every disc as `bd-archive` (None: not carried).
    pub binary: Option<Vec<u8>>,
    /// Sectors each data disc leaves unused so that a parity disc of the same medium fits (its
    /// filesystem, README, FORMAT.md, manifest and catalog copy beside the column parity): an
    /// upper bound ([`crate::archive::reserve::parity_reserve`]); 0 without parity discs.
    pub parity_reserve_sectors: u64,
    /// P, the parity discs that follow the data discs (`--parity-discs`; 0: none): recorded in
    /// every data disc's section, so the data discs alone say a parity disc is lost (§10.2).
    pub parity_discs: u32,
    /// The earlier generations' disc map the catalog carries (FORMAT §6.1; empty for a full
    /// archive): what [`crate::format::catalog::DiscMap::carried_from`] the base catalog keeps.
    pub disc_map: Vec<crate::format::catalog::DiscSpan>,
}

/// The protected contents of an unburned image that `--pack-with` puts onto the first disc:
/// its files keep their LBAs (so its index and catalog stay valid), its disc-header sections are
/// kept, and the new generation's data follows after them; filesystem and FEC are made anew.
#[derive(Clone, Debug)]
pub struct CarryIn {
    /// The image to copy from.
    pub image: PathBuf,
    /// Its files below `protected_end` (README, FORMAT.md, data parts, indexes, catalog).
    pub files: Vec<ImageFile>,
    /// Its first FEC sector (D): everything it holds lies below.
    pub protected_end: u64,
    /// Its disc-header sections (generations it holds).
    pub sections: Vec<DiscSection>,
}

/// Writes `bytes` at `offset` of a freshly created image file, leaving aligned all-zero 4 KiB
/// blocks as holes: a zero-filled source (or `-c none` of sparse files) gives a sparse image.
/// Only valid where nothing was written before (holes read back as zeros).
fn write_sparse(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    const BLOCK: u64 = 4096;
    let end = offset + bytes.len() as u64;
    let mut pos = offset;
    let mut pending: Option<u64> = None; // start of a run of non-zero blocks not yet written
    while pos < end {
        let next = ((pos / BLOCK) + 1) * BLOCK;
        let stop = next.min(end);
        let piece = &bytes[(pos - offset) as usize..(stop - offset) as usize];
        let zero = pos % BLOCK == 0 && stop == next && piece.iter().all(|&b| b == 0);
        match (zero, pending) {
            (true, Some(start)) => {
                file.write_all_at(
                    &bytes[(start - offset) as usize..(pos - offset) as usize],
                    start,
                )?;
                pending = None;
            }
            (false, None) => pending = Some(pos),
            _ => {}
        }
        pos = stop;
    }
    if let Some(start) = pending {
        file.write_all_at(&bytes[(start - offset) as usize..], start)?;
    }
    Ok(())
}

/// Copies sectors [from, to) of `image` into `out` at the same offsets.
fn copy_sectors(
    image: &Path,
    out: &File,
    out_path: &Path,
    from: u64,
    to: u64,
) -> Result<(), WriteError> {
    let src = File::open(image).map_err(io_err(image))?;
    let mut buf = vec![0u8; 4 << 20];
    let (mut pos, end) = (from * SECTOR_SIZE as u64, to * SECTOR_SIZE as u64);
    while pos < end {
        let n = ((end - pos) as usize).min(buf.len());
        src.read_exact_at(&mut buf[..n], pos)
            .map_err(io_err(image))?;
        out.write_all_at(&buf[..n], pos).map_err(io_err(out_path))?;
        pos += n as u64;
    }
    Ok(())
}

/// The data part currently being appended to.
struct OpenPart {
    record: PartRecord,
}

/// The image currently being filled.
struct OpenDisc {
    number: u32,
    file: File,
    tmp_path: PathBuf,
    final_path: PathBuf,
    /// Files placed before the data parts (README.txt, FORMAT.md).
    fixed_files: Vec<ImageFile>,
    /// First free sector after the fixed files; the first part starts here.
    data_start_lba: u64,
    parts: Vec<PartRecord>,
    part: Option<OpenPart>,
    first_chunk: u64,
    chunks: Vec<ChunkRecord>,
    tar_start: u64,
    tar_end: u64,
    /// Entries completed while this disc was open are the writer's `entries[first_entry..]`
    /// (a range, not a second copy of every entry).
    first_entry: usize,
    /// Entry still being written when the last chunk ended (hash not yet known).
    open_entry: Option<Entry>,
    /// Exact bincode size of the index body so far, excluding `open_entry`.
    index_raw: u64,
}

/// Serialises exactly like [`DiscIndex`] (same fields, same order) from borrowed parts, so the
/// index of a disc is written without copying its entries.
#[derive(serde::Serialize)]
struct DiscIndexView<'a> {
    chain: &'a ChainInfo,
    disc: &'a DiscRecord,
    parts: &'a [PartRecord],
    chunks: &'a [ChunkRecord],
    entries: EntriesView<'a>,
}

/// A disc's own entries followed by the one still open at its end: a sequence like `Vec<Entry>`.
struct EntriesView<'a>(&'a [Entry], Option<&'a Entry>);

impl serde::Serialize for EntriesView<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = ser.serialize_seq(Some(self.0.len() + usize::from(self.1.is_some())))?;
        for e in self.0.iter().chain(self.1) {
            seq.serialize_element(e)?;
        }
        seq.end()
    }
}

/// Streams chunks into consecutive disc images.
pub struct DiscSetWriter {
    cfg: DiscSetConfig,
    /// Largest protected region (D) a disc may have.
    max_protected: u64,
    disc: Option<OpenDisc>,
    discs: Vec<DiscRecord>,
    parts: Vec<PartRecord>,
    chunks: Vec<ChunkRecord>,
    entries: Vec<Entry>,
    /// Entry open at the end of the last closed disc, carried into the next disc's index.
    carry: Option<Entry>,
    /// Writes each disc's FEC region; keeps its encoders from disc to disc.
    fec: fec::RegionEncoder,
    /// Images completed so far, in order.
    pub completed: Vec<PathBuf>,
    /// Called with (image path, stage) as images progress; for progress display.
    pub on_event: Box<dyn FnMut(DiscEvent) + Send>,
}

/// Progress events from the writer.
#[derive(Debug, Clone)]
pub enum DiscEvent {
    /// Data for a new disc started.
    DiscStarted(u32),
    /// Parity computation started for a disc.
    FecStarted(u32, u64),
    /// An image is complete under its final name.
    DiscCompleted(u32, PathBuf, u64),
}

fn sectors_for(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR_SIZE as u64)
}

impl DiscSetWriter {
    /// Prepares a writer; nothing is written until the first chunk arrives.
    pub fn new(cfg: DiscSetConfig) -> Result<Self, WriteError> {
        let max_protected =
            fec::max_protected_for_loss(cfg.capacity_sectors - TRAILER_SECTORS, cfg.redundancy_pct)
                .saturating_sub(cfg.parity_reserve_sectors);
        let fixed = FIRST_DATA_LBA + sectors_for(cfg.format_md.len() as u64) + 8 + 16;
        if max_protected
            <= fixed
                + 2 * sectors_for(
                    crate::format::chunk::zstd_bound(crate::format::chunk::CHUNK_SIZE) as u64,
                )
        {
            return Err(WriteError::CapacityTooSmall(
                cfg.capacity_sectors * SECTOR_SIZE as u64,
            ));
        }
        Ok(DiscSetWriter {
            fec: fec::RegionEncoder::new(cfg.memory_budget),
            cfg,
            max_protected,
            disc: None,
            discs: Vec::new(),
            parts: Vec::new(),
            chunks: Vec::new(),
            entries: Vec::new(),
            carry: None,
            completed: Vec::new(),
            on_event: Box::new(|_| {}),
        })
    }

    fn identity(&self, disc: u32) -> RecordIdentity {
        RecordIdentity {
            chain_id: self.cfg.chain.chain_id,
            generation: self.cfg.chain.generation,
            disc,
            set_id: self.cfg.set_id,
        }
    }

    /// Name of a file inside the generation's folder on the disc.
    fn gen_dir(&self) -> String {
        format!("{}-gen{}", self.cfg.chain.name, self.cfg.chain.generation)
    }

    fn open_disc(&mut self, tar_start: u64) -> Result<(), WriteError> {
        let number = self.discs.len() as u32 + 1;
        let image_no = self.cfg.first_image_number + number - 1;
        let file_name = image_file_name(
            &self.cfg.chain.name,
            self.cfg.chain.generation,
            ImageKind::Data,
            image_no,
        );
        let final_path = self.cfg.images_dir.join(&file_name);
        if final_path.exists() {
            return Err(WriteError::Exists(final_path));
        }
        let tmp_path = self.cfg.images_dir.join(format!(".{file_name}.partial"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(io_err(&tmp_path))?;
        let readme = crate::format::readme::disc_readme(&self.cfg.chain, number);
        let mut lba = FIRST_DATA_LBA;
        let mut fixed_files = Vec::new();
        let mut fixed: Vec<(String, &[u8])> = vec![
            ("README.txt".into(), readme.as_bytes()),
            ("FORMAT.md".into(), &self.cfg.format_md[..]),
        ];
        if let Some(bin) = &self.cfg.binary {
            fixed.push(("bd-archive".into(), &bin[..]));
        }
        if let (1, Some(carry)) = (number, &self.cfg.carry_in) {
            // The packed image's protected files keep their LBAs, so its index and catalog stay valid.
            copy_sectors(
                &carry.image,
                &file,
                &tmp_path,
                FIRST_DATA_LBA,
                carry.protected_end,
            )?;
            fixed_files.extend(carry.files.iter().cloned());
            lba = carry.protected_end;
            fixed = vec![(format!("{}/README.txt", self.gen_dir()), readme.as_bytes())];
            if let Some(bin) = self
                .cfg
                .binary
                .as_ref()
                .filter(|_| !carry.files.iter().any(|f| f.path == "bd-archive"))
            {
                fixed.push(("bd-archive".into(), &bin[..]));
            }
        }
        for (name, bytes) in fixed {
            file.write_all_at(bytes, lba * SECTOR_SIZE as u64)
                .map_err(io_err(&tmp_path))?;
            fixed_files.push(ImageFile {
                executable: name == "bd-archive",
                path: name,
                lba,
                size: bytes.len() as u64,
                mtime: self.cfg.chain.created_unix,
            });
            lba += sectors_for(bytes.len() as u64);
        }
        let carried = self.carry.take();
        let mut d = OpenDisc {
            number,
            file,
            tmp_path,
            final_path,
            fixed_files,
            data_start_lba: lba,
            parts: Vec::new(),
            part: None,
            first_chunk: self.chunks.len() as u64,
            chunks: Vec::new(),
            tar_start,
            tar_end: tar_start,
            first_entry: self.entries.len(),
            open_entry: carried,
            index_raw: 0,
        };
        d.index_raw = self.index_raw_base(&d);
        self.disc = Some(d);
        (self.on_event)(DiscEvent::DiscStarted(number));
        Ok(())
    }

    /// bincode size of an index with no parts, chunks or entries.
    fn index_raw_base(&self, d: &OpenDisc) -> u64 {
        let empty = DiscIndex {
            chain: self.cfg.chain.clone(),
            disc: self.disc_record(d, 0),
            parts: Vec::new(),
            chunks: Vec::new(),
            entries: Vec::new(),
        };
        encoded_len(&empty)
    }

    fn disc_record(&self, d: &OpenDisc, image_sectors: u64) -> DiscRecord {
        DiscRecord {
            disc: d.number,
            volume_label: image::volume_label(
                &self.cfg.chain.name,
                self.cfg.chain.generation,
                d.number,
            ),
            image_sectors,
            capacity_sectors: self.cfg.capacity_sectors,
            first_chunk: d.first_chunk,
            chunk_count: d.chunks.len() as u64,
            tar_start: d.tar_start,
            tar_end: d.tar_end,
        }
    }

    /// Protected sectors the open disc would need if `extra_bytes` more chunk bytes, `extra_raw`
    /// more index bytes and `catalog_bytes` of catalog were added now.
    fn projected_protected(
        d: &OpenDisc,
        extra_bytes: u64,
        extra_raw: u64,
        catalog_bytes: u64,
    ) -> u64 {
        let data_end = match &d.part {
            Some(p) if p.record.bytes + extra_bytes <= PART_MAX_BYTES => {
                p.record.lba + sectors_for(p.record.bytes + extra_bytes)
            }
            Some(p) => p.record.lba + sectors_for(p.record.bytes) + sectors_for(extra_bytes),
            None => d.data_start_lba + sectors_for(extra_bytes),
        };
        let open = d.open_entry.as_ref().map(encoded_len).unwrap_or(0);
        let index = record_size_bound(d.index_raw + extra_raw + open + 64);
        data_end + sectors_for(index) + sectors_for(catalog_bytes)
    }

    /// Resumes after an interruption: the discs already complete under their final names (in
    /// order, as read back from their indexes) are taken as written. The chunks they hold must
    /// then be replayed with [`DiscSetWriter::replay_chunk`] before new chunks are pushed.
    pub fn resume_with(&mut self, done: Vec<(DiscIndex, PathBuf)>) -> Result<(), WriteError> {
        for (i, (index, path)) in done.into_iter().enumerate() {
            if index.disc.disc != i as u32 + 1 || index.disc.first_chunk != self.chunks.len() as u64
            {
                return Err(WriteError::Resume(format!(
                    "{} is not disc {} of this run",
                    path.display(),
                    i + 1
                )));
            }
            self.discs.push(index.disc);
            self.parts.extend(index.parts);
            self.chunks.extend(index.chunks);
            self.completed.push(path);
        }
        Ok(())
    }

    /// Reserves room for `n` more catalog entries at once (the caller knows how many it will
    /// stream), instead of letting the list double past what is needed.
    pub fn reserve_entries(&mut self, n: usize) {
        self.entries.reserve_exact(n);
    }

    /// Number of chunks the resumed discs already hold: chunks below this are replayed, not written.
    pub fn resumed_chunks(&self) -> u64 {
        self.chunks.len() as u64
    }

    /// Replays chunk `seq` of a resumed run: its content must be exactly what the complete discs
    /// hold (same CRC), otherwise the source changed and resuming would build an inconsistent set.
    pub fn replay_chunk(
        &mut self,
        seq: u64,
        tar_len: usize,
        content_crc: u32,
        completed: Vec<Entry>,
        open: Option<Entry>,
    ) -> Result<(), WriteError> {
        let rec = self.chunks.get(seq as usize).ok_or_else(|| {
            WriteError::Resume(format!("chunk {seq} is not on the completed discs"))
        })?;
        if rec.content_crc != content_crc || rec.tar_len as usize != tar_len {
            return Err(WriteError::Resume(format!(
                "the source changed since the interrupted create (chunk {seq} differs from disc {}); start again without --resume in a new output directory",
                rec.disc
            )));
        }
        self.entries.extend(completed);
        self.carry = open;
        Ok(())
    }

    /// Appends one chunk. `completed` are the entries whose tar records ended inside this chunk
    /// (with their hashes); `open` is the entry still being written at the chunk's end.
    pub fn push_chunk(
        &mut self,
        chunk: EncodedChunk,
        completed: Vec<Entry>,
        open: Option<Entry>,
    ) -> Result<(), WriteError> {
        let tar_offset = chunk.header.tar_offset;
        if self.disc.is_none() {
            self.open_disc(tar_offset)?;
        }
        let new_raw: u64 = completed.iter().map(encoded_len).sum::<u64>() + 40 + 32;
        let size = chunk.bytes.len() as u64;
        let fits = |d: &OpenDisc, max: u64| Self::projected_protected(d, size, new_raw, 0) <= max;
        if !fits(
            self.disc.as_ref().expect("opened above"),
            self.max_protected,
        ) {
            let first = self.disc.as_ref().map_or(0, |d| d.first_entry);
            let all = std::mem::take(&mut self.entries);
            let r = self.close_disc(None, all.get(first..).unwrap_or(&[]));
            self.entries = all;
            r?;
            self.open_disc(tar_offset)?;
            if !fits(
                self.disc.as_ref().expect("opened above"),
                self.max_protected,
            ) {
                return Err(WriteError::CapacityTooSmall(
                    self.cfg.capacity_sectors * SECTOR_SIZE as u64,
                ));
            }
        }
        let mut d = self.disc.take().expect("opened above");
        let needs_new_part = match &d.part {
            None => true,
            Some(p) => p.record.bytes + size > PART_MAX_BYTES,
        };
        if needs_new_part {
            let lba = match d.part.take() {
                Some(p) => {
                    let end = p.record.lba + sectors_for(p.record.bytes);
                    d.parts.push(p.record);
                    end
                }
                None => d.data_start_lba,
            };
            let part = self.parts.len() as u32 + d.parts.len() as u32 + 1;
            d.part = Some(OpenPart {
                record: PartRecord {
                    part,
                    disc: d.number,
                    lba,
                    bytes: 0,
                },
            });
        }
        let p = d.part.as_mut().expect("created above");
        let offset = p.record.lba * SECTOR_SIZE as u64 + p.record.bytes;
        write_sparse(&d.file, &chunk.bytes, offset).map_err(io_err(&d.tmp_path))?;
        let rec = ChunkRecord {
            tar_offset,
            tar_len: chunk.header.tar_len,
            stored_len: chunk.header.stored_len,
            disc: d.number,
            part: p.record.part,
            part_offset: p.record.bytes,
            stored_crc: chunk.header.stored_crc,
            content_crc: chunk.header.content_crc,
        };
        p.record.bytes += size;
        d.tar_end = tar_offset + u64::from(chunk.header.tar_len);
        d.chunks.push(rec);
        self.chunks.push(rec);
        d.index_raw += new_raw;
        for e in &completed {
            // An entry completed here may have been carried in as open; the complete copy replaces it.
            if d.open_entry
                .as_ref()
                .is_some_and(|o| o.data.header_offset == e.data.header_offset)
            {
                d.open_entry = None;
            }
        }
        self.entries.extend(completed);
        if open.is_some() {
            d.open_entry = open;
        }
        self.disc = Some(d);
        Ok(())
    }

    /// Ends the stream: writes the catalog onto the last disc (or a disc of its own if it does not
    /// fit) and closes it. `reused` are entries of the tree whose data lies in earlier
    /// generations (incremental chains); they go into the catalog only.
    ///
    /// `save` receives the final catalog (the last disc's size filled in) once the last image's
    /// contents are written but before its FEC is computed; the catalog is dropped after it, so
    /// the entry list and the FEC buffers are never held at the same time. Returns the images.
    pub fn finish(
        mut self,
        tar_len: u64,
        reused: Vec<Entry>,
        save: &mut dyn FnMut(&Catalog) -> std::io::Result<()>,
    ) -> Result<Vec<PathBuf>, WriteError> {
        if self.disc.is_none() {
            self.open_disc(tar_len)?;
        }
        // The last disc's index lists the entries completed on it: a range of `entries` as long
        // as sorting leaves them in place (a full archive: the stream is in tree order already);
        // otherwise a copy of that range is taken first.
        let first = self.disc.as_ref().map_or(0, |d| d.first_entry);
        let in_tree_order = |v: &[Entry]| {
            v.windows(2)
                .all(|w| crate::format::catalog::tree_order(&w[0].path, &w[1].path).is_le())
        };
        let last_disc_entries = if reused.is_empty() && in_tree_order(&self.entries) {
            None
        } else {
            Some(self.entries[first.min(self.entries.len())..].to_vec())
        };
        self.entries.extend(reused);
        if last_disc_entries.is_some() {
            self.entries
                .sort_by(|a, b| crate::format::catalog::tree_order(&a.path, &b.path));
        }
        // The catalog lists every disc; the last one's record is finalised after its image size
        // is known, so reserve with a provisional record and patch it in the catalog copy in OUT.
        // The entry list moves into the catalog (it is the largest thing held; never copied).
        let mut catalog = self.catalog(tar_len);
        catalog.entries = std::mem::take(&mut self.entries);
        let d = self.disc.as_ref().expect("opened above");
        let provisional = self.disc_record(d, 0);
        catalog.discs.push(provisional);
        // Measured by compressing into a counter: the encoded catalog is never held in memory.
        let catalog_len = records::record_len(&catalog).map_err(io_err(&d.tmp_path))?;
        let fits = Self::projected_protected(d, 0, 0, catalog_len + SECTOR_SIZE as u64)
            <= self.max_protected;
        let own = |catalog: &Catalog| -> Vec<Entry> {
            match &last_disc_entries {
                Some(v) => v.clone(),
                None => catalog.entries.get(first..).unwrap_or(&[]).to_vec(),
            }
        };
        if !fits {
            // Rare (the catalog does not fit beside the data): a copy of this disc's entries is fine.
            let ents = own(&catalog);
            self.close_disc(None, &ents)?;
            self.open_disc(tar_len)?;
        }
        // Final disc and part lists (the catalog disc may be a new, data-less disc).
        let skeleton = self.catalog(tar_len);
        catalog.discs = skeleton.discs;
        catalog.parts = skeleton.parts;
        catalog.chunks = skeleton.chunks;
        let d = self.disc.as_ref().expect("opened above");
        catalog.discs.push(self.disc_record(d, 0));
        // A disc opened for the catalog alone holds no entries of its own.
        let ents: &[Entry] = match (&last_disc_entries, fits) {
            (_, false) => &[],
            (Some(v), true) => v,
            (None, true) => catalog.entries.get(first..).unwrap_or(&[]),
        };
        let written = self.write_disc(Some(&catalog), ents)?;
        if let Some(last) = catalog.discs.last_mut() {
            last.image_sectors = written.total;
        }
        save(&catalog).map_err(WriteError::SaveCatalog)?;
        drop(catalog);
        drop(last_disc_entries);
        self.seal_disc(written)?;
        Ok(self.completed)
    }

    fn catalog(&self, tar_len: u64) -> Catalog {
        let mut parts = self.parts.clone();
        if let Some(d) = &self.disc {
            parts.extend(d.parts.iter().cloned());
            if let Some(p) = &d.part {
                parts.push(p.record.clone());
            }
        }
        Catalog {
            chain: self.cfg.chain.clone(),
            tar_len,
            discs: self.discs.clone(),
            parts,
            chunks: self.chunks.clone(),
            entries: Vec::new(),
            disc_map: self.cfg.disc_map.clone(),
        }
    }

    /// Finishes the open disc: index, optional catalog, filesystem, headers, FEC, fsync, rename.
    /// Returns the image's sector count.
    /// `own` are the entries completed while the disc was open.
    fn close_disc(&mut self, catalog: Option<&Catalog>, own: &[Entry]) -> Result<u64, WriteError> {
        let written = self.write_disc(catalog, own)?;
        self.seal_disc(written)
    }

    /// First half of [`DiscSetWriter::close_disc`]: everything but the FEC. After it the entries
    /// need not be held any more, so the caller can free them before the FEC takes its memory.
    fn write_disc(
        &mut self,
        catalog: Option<&Catalog>,
        own: &[Entry],
    ) -> Result<WrittenDisc, WriteError> {
        let mut d = self.disc.take().expect("close_disc needs an open disc");
        if let Some(p) = d.part.take() {
            d.parts.push(p.record);
        }
        let open = d.open_entry.take();
        let record = self.disc_record(&d, 0);
        let (mut files, section, protected) =
            self.write_records(&d, &record, catalog, own, open.as_ref())?;
        if let Some(open) = open {
            self.carry = Some(open);
        }
        let layout = self
            .fec_layout(protected)
            .map_err(|e| WriteError::Fec(d.final_path.clone(), e))?;
        let fec_sectors = layout.region_sectors();
        let total =
            (protected + fec_sectors + TRAILER_SECTORS).div_ceil(CLUSTER_SECTORS) * CLUSTER_SECTORS;
        // Planning guarantees this; checked anyway because an oversize image fails only at the end
        // of a burn, the worst moment to find out.
        if total > self.cfg.capacity_sectors {
            return Err(WriteError::Oversize(
                d.final_path.clone(),
                total,
                self.cfg.capacity_sectors,
            ));
        }
        let stem = format!("{0}/{0}", self.gen_dir());
        files.push(ImageFile {
            path: format!("{stem}-disc{:04}.fec", d.number),
            lba: protected,
            size: fec_sectors * SECTOR_SIZE as u64,
            mtime: self.cfg.chain.created_unix,
            executable: false,
        });
        // Every non-zero sector after the data is described by a file, so tools that check for
        // trailing garbage (7-Zip) accept the image; the header copy is readable by name too.
        files.push(ImageFile {
            path: format!("{stem}-disc{:04}.hdr", d.number),
            lba: total - 2,
            size: SECTOR_SIZE as u64,
            mtime: self.cfg.chain.created_unix,
            executable: false,
        });
        self.write_image(&d, &record, &files, section, protected, fec_sectors, total)?;
        Ok(WrittenDisc {
            d,
            layout,
            record,
            protected,
            total,
        })
    }

    /// Writes the disc's index (and, on the last disc, the catalog) after its data parts; returns
    /// the image's files so far, its disc-header section and the end of the protected region.
    fn write_records(
        &self,
        d: &OpenDisc,
        record: &DiscRecord,
        catalog: Option<&Catalog>,
        own: &[Entry],
        open: Option<&Entry>,
    ) -> Result<(Vec<ImageFile>, DiscSection, u64), WriteError> {
        let mut lba = d
            .parts
            .last()
            .map(|p| p.lba + sectors_for(p.bytes))
            .unwrap_or(d.data_start_lba);
        let index = DiscIndexView {
            chain: &self.cfg.chain,
            disc: record,
            parts: &d.parts,
            chunks: &d.chunks,
            entries: EntriesView(own, open),
        };
        let gen_dir = self.gen_dir();
        let stem = format!("{gen_dir}/{gen_dir}");
        // Index and catalog are compressed straight into the image file, never held whole.
        let idx_len = records::write_record_at(
            &d.file,
            lba * SECTOR_SIZE as u64,
            records::INDEX_MAGIC,
            self.identity(d.number),
            &index,
        )
        .map_err(io_err(&d.tmp_path))?;
        let mut files = d.fixed_files.clone();
        for p in &d.parts {
            files.push(ImageFile {
                path: format!("{stem}.{:04}.tar.zst", p.part),
                lba: p.lba,
                size: p.bytes,
                mtime: self.cfg.chain.created_unix,
                executable: false,
            });
        }
        let mut section = DiscSection {
            generation: self.cfg.chain.generation,
            disc: d.number,
            flags: 0,
            first_part: d
                .parts
                .first()
                .map(|p| p.part)
                .unwrap_or(self.parts.len() as u32 + 1),
            part_count: d.parts.len() as u32,
            data_discs: self.cfg.parity_discs, // on a data disc: P (FORMAT.md §2)
            index_lba: lba,
            index_bytes: idx_len,
            catalog_lba: 0,
            catalog_bytes: 0,
            first_chunk: d.first_chunk,
        };
        files.push(ImageFile {
            path: format!("{stem}-disc{:04}.idx", d.number),
            lba,
            size: idx_len,
            mtime: self.cfg.chain.created_unix,
            executable: false,
        });
        lba += sectors_for(idx_len);
        if let Some(cat) = catalog {
            let cat_len = records::write_record_at(
                &d.file,
                lba * SECTOR_SIZE as u64,
                records::CATALOG_MAGIC,
                self.identity(0),
                cat,
            )
            .map_err(io_err(&d.tmp_path))?;
            files.push(ImageFile {
                path: format!("{stem}.catalog"),
                lba,
                size: cat_len,
                mtime: self.cfg.chain.created_unix,
                executable: false,
            });
            section.flags |= SECTION_LAST_DISC;
            section.catalog_lba = lba;
            section.catalog_bytes = cat_len;
            lba += sectors_for(cat_len);
        }
        Ok((files, section, lba))
    }

    /// Sizes the image file, writes its filesystem and the disc header (LBA 0 and N−2).
    #[allow(clippy::too_many_arguments)]
    fn write_image(
        &self,
        d: &OpenDisc,
        record: &DiscRecord,
        files: &[ImageFile],
        section: DiscSection,
        protected: u64,
        fec_sectors: u64,
        total: u64,
    ) -> Result<(), WriteError> {
        let spec = VolumeSpec {
            volume_id: record.volume_label.clone(),
            publisher: "bd-archive".into(),
            application: format!("bd-archive {}", env!("CARGO_PKG_VERSION")),
            created_unix: self.cfg.chain.created_unix,
        };
        d.file
            .set_len(total * SECTOR_SIZE as u64)
            .map_err(io_err(&d.tmp_path))?;
        image::write_filesystem(&d.file, &spec, files, total)
            .map_err(|e| WriteError::Image(d.final_path.clone(), e))?;
        let header = DiscHeader {
            chain_id: self.cfg.chain.chain_id,
            name: self.cfg.chain.name.clone(),
            image_sectors: total,
            capacity_sectors: self.cfg.capacity_sectors,
            fec_lba: protected,
            fec_sectors,
            created_unix: self.cfg.chain.created_unix,
            sections: match (d.number, &self.cfg.carry_in) {
                (1, Some(carry)) => carry.sections.iter().cloned().chain([section]).collect(),
                _ => vec![section],
            },
        };
        let hb = header.encode();
        d.file.write_all_at(&hb, 0).map_err(io_err(&d.tmp_path))?;
        d.file
            .write_all_at(&hb, (total - 2) * SECTOR_SIZE as u64)
            .map_err(io_err(&d.tmp_path))?;
        Ok(())
    }

    /// Second half of [`DiscSetWriter::close_disc`]: FEC, fsync, rename. Returns the image's
    /// sector count.
    fn seal_disc(&mut self, w: WrittenDisc) -> Result<u64, WriteError> {
        let WrittenDisc {
            d,
            layout,
            record,
            protected,
            total,
        } = w;
        (self.on_event)(DiscEvent::FecStarted(d.number, protected));
        self.fec
            .encode(&d.file, &layout, &|_| {})
            .map_err(|e| WriteError::Fec(d.final_path.clone(), e))?;
        d.file.sync_all().map_err(io_err(&d.tmp_path))?;
        if d.final_path.exists() {
            return Err(WriteError::Exists(d.final_path));
        }
        fs::rename(&d.tmp_path, &d.final_path).map_err(io_err(&d.final_path))?;
        if let Ok(dir) = File::open(&self.cfg.images_dir) {
            let _ = dir.sync_all();
        }
        let mut rec = record;
        rec.image_sectors = total;
        self.discs.push(rec);
        self.parts.extend(d.parts);
        self.completed.push(d.final_path.clone());
        (self.on_event)(DiscEvent::DiscCompleted(d.number, d.final_path, total));
        Ok(total)
    }

    fn fec_layout(&self, protected: u64) -> Result<FecLayout, fec::FecError> {
        if self.cfg.fill_parity {
            let avail = self.cfg.capacity_sectors - TRAILER_SECTORS - protected;
            fec::plan_fill(protected, avail)
        } else {
            fec::plan_for_loss(protected, self.cfg.redundancy_pct)
        }
    }
}

/// An image whose contents are written, waiting for its FEC ([`DiscSetWriter::seal_disc`]).
struct WrittenDisc {
    d: OpenDisc,
    layout: FecLayout,
    record: DiscRecord,
    protected: u64,
    total: u64,
}

#[cfg(test)]
mod index_view_tests {
    use super::*;
    use crate::format::catalog::{DataRef, EntryKind};

    fn entry(p: &[u8]) -> Entry {
        Entry {
            path: p.to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime_sec: -3,
            mtime_nsec: 4,
            size: 5,
            link_target: b"t".to_vec(),
            rdev: 6,
            sha256: [7; 32],
            data: DataRef {
                generation: 8,
                header_offset: 9,
                content_offset: 10,
            },
            stamp: Default::default(),
        }
    }

    #[test]
    fn index_view_encodes_exactly_like_disc_index() {
        let chain = ChainInfo {
            name: "n".into(),
            chain_id: [1; 16],
            generation: 2,
            base_generation: 1,
            created_unix: 3,
            tool_version: "v".into(),
            compression: "zstd-3".into(),
            redundancy_pct: 10,
        };
        let disc = DiscRecord {
            disc: 1,
            volume_label: "L".into(),
            image_sectors: 2,
            capacity_sectors: 3,
            first_chunk: 4,
            chunk_count: 5,
            tar_start: 6,
            tar_end: 7,
        };
        let parts = vec![PartRecord {
            part: 1,
            disc: 1,
            lba: 2,
            bytes: 3,
        }];
        let own = vec![entry(b"a"), entry(b"b/c")];
        let open = entry(b"d");
        let full = DiscIndex {
            chain: chain.clone(),
            disc: disc.clone(),
            parts: parts.clone(),
            chunks: Vec::new(),
            entries: vec![own[0].clone(), own[1].clone(), open.clone()],
        };
        let view = DiscIndexView {
            chain: &chain,
            disc: &disc,
            parts: &parts,
            chunks: &[],
            entries: EntriesView(&own, Some(&open)),
        };
        let cfg = records::bincode_config();
        assert_eq!(
            bincode::serde::encode_to_vec(&full, cfg).unwrap(),
            bincode::serde::encode_to_vec(&view, cfg).unwrap()
        );
        let id = RecordIdentity {
            chain_id: [1; 16],
            generation: 2,
            disc: 1,
            set_id: [5; 16],
        };
        let bytes = records::encode_record(records::INDEX_MAGIC, id, &view).unwrap();
        let (h, back): (_, DiscIndex) =
            records::decode_record(records::INDEX_MAGIC, "index", &bytes).unwrap();
        assert_eq!(back, full);
        assert_eq!(h.id.disc, 1);
    }
}
