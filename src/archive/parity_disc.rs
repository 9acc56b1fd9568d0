//! Parity discs (FORMAT.md §10): after the last data image of a generation is complete, one
//! sequential pass over the data images computes the column code window by window and writes
//! the P parity images, each an ordinary disc (header, filesystem, README, FORMAT.md, own FEC).
//!
//! ```text
//! write_parity_discs:
//!     read each data image's header, FEC header copy, sectors N−2, N−1; the catalog bytes of
//!     the last data disc; size the parity discs and refuse if one would not fit the medium
//!     the column pass (parity_pass.rs), its stages overlapped on their own threads:
//!         each data image read once, window by window, and SHA-256'd (one thread per image);
//!         each window encoded with the column code; parity shard p written at column LBA + c
//!         of parity image p
//!     per parity image: manifest, catalog copy, filesystem, headers, FEC, fsync, rename
//! ```
//! Parity images are built under `.NAME.partial` names and renamed when complete, so `create
//! --resume` finds each either complete or absent; those present are kept.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::archive::disc_writer::{DiscSetConfig, WriteError, PART_MAX_BYTES, TRAILER_SECTORS};
use crate::archive::error::CreateError;
use crate::archive::parity_pass::{column_pass, DataImage, ParityTarget};
use crate::fec::{self, FecLayout};
use crate::format::disc_header::{DiscHeader, DiscSection, ParitySection};
use crate::format::parity_manifest::{DataDiscRecord, ParityManifest};
use crate::image::{self, ImageFile, VolumeSpec, FIRST_DATA_LBA};
use crate::sector::{CLUSTER_SECTORS, SECTOR_SIZE};
use crate::util::progress::Progress;

const SS: u64 = SECTOR_SIZE as u64;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |err| WriteError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// `OUT/images/<NAME>-gen<GGGG>-parity<NNNN>.iso` (sorts after the generation's data images).
pub fn parity_image_name(name: &str, generation: u32, p: u32) -> String {
    use crate::disc::image_name::{image_file_name, ImageKind};
    image_file_name(name, generation, ImageKind::Parity, p)
}

/// Sectors a parity disc needs besides the column parity itself: filesystem area, README,
/// FORMAT.md, binary, manifest for `n` data discs, the catalog copy. The data discs are planned
/// `reserve` smaller than the medium allows so that L + this fits (`catalog_bytes` estimated).
pub fn parity_overhead_sectors(cfg: &DiscSetConfig, n: usize, catalog_bytes: u64) -> u64 {
    let readme = parity_readme(&cfg.chain, 1, n as u32).len() as u64 + 64;
    FIRST_DATA_LBA
        + readme.div_ceil(SS)
        + (cfg.format_md.len() as u64).div_ceil(SS)
        + cfg
            .binary
            .as_ref()
            .map_or(0, |b| b.len() as u64)
            .div_ceil(SS)
        + (ParityManifest::encoded_len(n) as u64).div_ceil(SS)
        + catalog_bytes.div_ceil(SS)
}

/// Writes the missing parity images of the generation whose data images are `data` (in disc
/// order, all complete). Returns every parity image (kept and new), in order.
pub fn write_parity_discs(
    cfg: &DiscSetConfig,
    parity_discs: u32,
    data: &[PathBuf],
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, CreateError> {
    let finals: Vec<PathBuf> = (1..=parity_discs)
        .map(|p| {
            cfg.images_dir
                .join(parity_image_name(&cfg.chain.name, cfg.chain.generation, p))
        })
        .collect();
    super::check_parity_count(parity_discs, data.len() as u64)?;
    let todo: Vec<u32> = (1..=parity_discs)
        .filter(|p| !finals[*p as usize - 1].exists())
        .collect();
    write_parity_images(cfg, parity_discs, &todo, data, progress)?;
    Ok(finals)
}

/// Writes parity images `todo` (numbers p of 1..=`parity_discs`) of the generation whose data
/// images are `data` (in disc order, all complete and intact) into `cfg.images_dir` under
/// create's names; returns their paths in `todo`'s order. Everything a parity image holds comes
/// from `data` and `cfg` — which is how `verify --repair` rebuilds a lost one bit-identical:
/// it fills `cfg` from the set's own discs (FORMAT.md §10.6), never from the running binary.
pub fn write_parity_images(
    cfg: &DiscSetConfig,
    parity_discs: u32,
    todo: &[u32],
    data: &[PathBuf],
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, CreateError> {
    let finals: Vec<PathBuf> = todo
        .iter()
        .map(|&p| {
            cfg.images_dir
                .join(parity_image_name(&cfg.chain.name, cfg.chain.generation, p))
        })
        .collect();
    if todo.is_empty() {
        return Ok(finals);
    }
    let (mut discs, last_header) = open_data_images(data)?;
    let catalog = last_disc_catalog(&discs, &last_header)?;
    let columns = discs.iter().map(|d| d.record.protected).max().unwrap_or(0);
    let n = discs.len();
    let layout_of =
        |p: u32| ParityDiscLayout::new(cfg, (n, parity_discs), p, columns, catalog.len() as u64);
    for &p in todo {
        layout_of(p).check_fits(cfg)?;
    }
    let mut outs: Vec<(u32, ParityDiscLayout, File, PathBuf)> = Vec::new();
    for &p in todo {
        let l = layout_of(p);
        let tmp = cfg.images_dir.join(format!(
            ".{}.partial",
            parity_image_name(&cfg.chain.name, cfg.chain.generation, p)
        ));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        l.write_fixed_files(cfg, &f, &tmp)?;
        outs.push((p, l, f, tmp));
    }
    let started = std::time::Instant::now();
    let read: u64 = discs.iter().map(|d| d.record.image_sectors * SS).sum();
    let targets: Vec<ParityTarget> = outs
        .iter()
        .map(|(p, l, f, tmp)| ParityTarget {
            index: *p,
            column_lba: l.column_lba,
            file: f,
            path: tmp,
        })
        .collect();
    let meter = progress.meter(Some(read), "parity discs");
    let parity = parity_discs as usize;
    let budget = cfg.memory_budget;
    let times = column_pass(
        &mut discs,
        parity,
        columns,
        &targets,
        budget,
        meter.as_ref(),
    )?;
    meter.finish();
    let secs = started.elapsed().as_secs_f64();
    progress.detail(&format!(
        "parity: column code of {n} data image(s) ({} MB read) in {secs:.1} s ({:.0} MB/s; overlapped stages busy: read and SHA-256 {:.1} s (busiest image), encode {:.1} s, write {:.1} s)",
        read / 1_000_000,
        read as f64 / 1e6 / secs.max(1e-9),
        times.read_hash,
        times.encode,
        times.write,
    ));
    let records: Vec<DataDiscRecord> = discs.into_iter().map(|d| d.record).collect();
    for ((p, l, f, tmp), final_path) in outs.into_iter().zip(&finals) {
        let manifest = ParityManifest {
            chain_id: cfg.chain.chain_id,
            generation: cfg.chain.generation,
            index: p,
            parity_discs,
            columns,
            discs: records.clone(),
        };
        let started = std::time::Instant::now();
        l.seal(cfg, &f, &tmp, final_path, &manifest.encode(), &catalog)?;
        progress.step(&format!(
            "parity disc {p} of {parity_discs} complete: {} (filesystem and own FEC in {:.1} s)",
            final_path.display(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(finals)
}

/// The data images, opened, with their records (SHA-256 still zero), and the last one's header.
fn open_data_images(data: &[PathBuf]) -> Result<(Vec<DataImage>, DiscHeader), CreateError> {
    let mut out = Vec::new();
    let mut last = None;
    for (i, path) in data.iter().enumerate() {
        let file = File::open(path).map_err(io_err(path))?;
        let mut sector = vec![0u8; SECTOR_SIZE];
        file.read_exact_at(&mut sector, 0).map_err(io_err(path))?;
        let header = DiscHeader::decode(&sector).map_err(|e| {
            CreateError::ParityInput(format!("{}: disc header unreadable: {e}", path.display()))
        })?;
        let (n_sec, d, f) = (header.image_sectors, header.fec_lba, header.fec_sectors);
        if d == 0 || d.saturating_add(f).saturating_add(2) > n_sec {
            return Err(CreateError::ParityInput(format!(
                "{}: disc header claims a layout that does not fit its {n_sec} sectors",
                path.display()
            )));
        }
        let read = |lba: u64| -> Result<Vec<u8>, WriteError> {
            let mut s = vec![0u8; SECTOR_SIZE];
            file.read_exact_at(&mut s, lba * SS).map_err(io_err(path))?;
            Ok(s)
        };
        let record = DataDiscRecord {
            disc: i as u32 + 1,
            image_sectors: n_sec,
            protected: d,
            fec_sectors: f,
            sha256: [0; 32],
            fec_header: read(d)?,
            sector_n2: read(n_sec - 2)?,
            sector_n1: read(n_sec - 1)?,
        };
        out.push(DataImage {
            path: path.clone(),
            file,
            record,
        });
        last = Some(header);
    }
    let last = last.ok_or_else(|| CreateError::ParityInput("no data images".into()))?;
    Ok((out, last))
}

/// The catalog record file exactly as the last data disc holds it.
fn last_disc_catalog(discs: &[DataImage], header: &DiscHeader) -> Result<Vec<u8>, CreateError> {
    let last = discs
        .last()
        .ok_or_else(|| CreateError::ParityInput("no data images".into()))?;
    let s = header
        .sections
        .last()
        .filter(|s| s.catalog_bytes > 0)
        .ok_or_else(|| {
            CreateError::ParityInput(format!("{}: holds no catalog", last.path.display()))
        })?;
    let mut buf = vec![0u8; s.catalog_bytes as usize];
    last.file
        .read_exact_at(&mut buf, s.catalog_lba * SS)
        .map_err(io_err(&last.path))?;
    Ok(buf)
}

/// Where everything lies on parity disc p.
struct ParityDiscLayout {
    section: ParitySection,
    readme: String,
    /// LBA of the column parity (L sectors).
    column_lba: u64,
    columns: u64,
    /// End of the protected region (D of the parity disc).
    protected: u64,
    fec: FecLayout,
    /// N.
    total: u64,
}

impl ParityDiscLayout {
    fn new(
        cfg: &DiscSetConfig,
        (n, parity_discs): (usize, u32),
        p: u32,
        columns: u64,
        catalog: u64,
    ) -> Self {
        let readme = parity_readme(&cfg.chain, p, n as u32);
        let mut lba = FIRST_DATA_LBA + (readme.len() as u64).div_ceil(SS);
        lba += (cfg.format_md.len() as u64).div_ceil(SS);
        lba += cfg
            .binary
            .as_ref()
            .map_or(0, |b| b.len() as u64)
            .div_ceil(SS);
        let column_lba = lba;
        let manifest_lba = column_lba + columns;
        let manifest_bytes = ParityManifest::encoded_len(n) as u64;
        let catalog_lba = manifest_lba + manifest_bytes.div_ceil(SS);
        let protected = catalog_lba + catalog.div_ceil(SS);
        let fec = if cfg.fill_parity {
            let avail = cfg
                .capacity_sectors
                .saturating_sub(TRAILER_SECTORS + protected);
            fec::plan_fill(protected, avail)
        } else {
            fec::plan_for_loss(protected, cfg.redundancy_pct)
        }
        .or_else(|_| fec::plan_for_loss(protected, cfg.redundancy_pct))
        .unwrap_or_else(|_| FecLayout::from_geometry(protected, protected, 1).expect("1 stripe"));
        let total = (protected + fec.region_sectors() + TRAILER_SECTORS).div_ceil(CLUSTER_SECTORS)
            * CLUSTER_SECTORS;
        ParityDiscLayout {
            section: ParitySection {
                generation: cfg.chain.generation,
                index: p,
                parity_discs,
                data_discs: n as u32,
                manifest: (manifest_lba, manifest_bytes),
                catalog: (catalog_lba, catalog),
                column_lba,
            },
            readme,
            column_lba,
            columns,
            protected,
            fec,
            total,
        }
    }

    /// Refuses a parity disc that would not fit the medium: never a silently oversized image.
    fn check_fits(&self, cfg: &DiscSetConfig) -> Result<(), WriteError> {
        if self.total > cfg.capacity_sectors {
            return Err(WriteError::ParityDiscTooLarge {
                sectors: self.total,
                capacity: cfg.capacity_sectors,
            });
        }
        Ok(())
    }

    fn write_fixed_files(
        &self,
        cfg: &DiscSetConfig,
        f: &File,
        tmp: &Path,
    ) -> Result<(), WriteError> {
        let mut lba = FIRST_DATA_LBA;
        for bytes in self.fixed(cfg) {
            f.write_all_at(bytes.1, lba * SS).map_err(io_err(tmp))?;
            lba += (bytes.1.len() as u64).div_ceil(SS);
        }
        Ok(())
    }

    fn fixed<'a>(&'a self, cfg: &'a DiscSetConfig) -> Vec<(&'static str, &'a [u8])> {
        let mut v: Vec<(&str, &[u8])> = vec![
            ("README.txt", self.readme.as_bytes()),
            ("FORMAT.md", &cfg.format_md[..]),
        ];
        if let Some(b) = &cfg.binary {
            v.push(("bd-archive", &b[..]));
        }
        v
    }

    /// Manifest, catalog copy, filesystem, disc headers, FEC, fsync, rename.
    fn seal(
        self,
        cfg: &DiscSetConfig,
        f: &File,
        tmp: &Path,
        final_path: &Path,
        manifest: &[u8],
        catalog: &[u8],
    ) -> Result<(), WriteError> {
        let s = self.section;
        f.write_all_at(manifest, s.manifest.0 * SS)
            .map_err(io_err(tmp))?;
        f.write_all_at(catalog, s.catalog.0 * SS)
            .map_err(io_err(tmp))?;
        let files = self.image_files(cfg);
        let spec = VolumeSpec {
            volume_id: image::volume_label(
                &cfg.chain.name,
                cfg.chain.generation,
                s.data_discs + s.index,
            ),
            publisher: "bd-archive".into(),
            // The version that made the set (create sets it to its own), so a rebuilt parity
            // disc carries what the original carried whatever binary rebuilds it.
            application: format!("bd-archive {}", cfg.chain.tool_version),
            created_unix: cfg.chain.created_unix,
        };
        f.set_len(self.total * SS).map_err(io_err(tmp))?;
        image::write_filesystem(f, &spec, &files, self.total)
            .map_err(|e| WriteError::Image(final_path.to_path_buf(), e))?;
        self.write_headers_and_fec(cfg, f, tmp, final_path)?;
        publish(cfg, f, tmp, final_path)
    }

    /// The ISO9660/UDF directory of the disc: fixed files, the column parity in pieces,
    /// manifest, catalog copy, FEC region and trailing header, each at the sector it occupies.
    fn image_files(&self, cfg: &DiscSetConfig) -> Vec<ImageFile> {
        let s = self.section;
        let mtime = cfg.chain.created_unix;
        let file = |path: String, lba: u64, size: u64, executable: bool| ImageFile {
            path,
            lba,
            size,
            mtime,
            executable,
        };
        let mut files = Vec::new();
        let mut lba = FIRST_DATA_LBA;
        for (name, bytes) in self.fixed(cfg) {
            files.push(file(
                name.into(),
                lba,
                bytes.len() as u64,
                name == "bd-archive",
            ));
            lba += (bytes.len() as u64).div_ceil(SS);
        }
        let g = format!("{}-gen{}", cfg.chain.name, cfg.chain.generation);
        let stem = format!("{g}/{g}-parity{:04}", s.index);
        // The column parity as pieces below 4 GiB (one ISO9660 extent each), in name order.
        let piece = PART_MAX_BYTES / SS;
        let mut at = 0;
        let mut i = 1;
        while at < self.columns {
            let len = piece.min(self.columns - at);
            files.push(file(
                format!("{stem}.{i:04}.bin"),
                self.column_lba + at,
                len * SS,
                false,
            ));
            at += len;
            i += 1;
        }
        files.push(file(
            format!("{stem}.manifest"),
            s.manifest.0,
            s.manifest.1,
            false,
        ));
        files.push(file(
            format!("{g}/{g}.catalog"),
            s.catalog.0,
            s.catalog.1,
            false,
        ));
        files.push(file(
            format!("{stem}.fec"),
            self.protected,
            self.fec.region_sectors() * SS,
            false,
        ));
        files.push(file(format!("{stem}.hdr"), self.total - 2, SS, false));
        files
    }

    /// Both disc headers (first and next-to-last sector), then the FEC over everything before it:
    /// the headers must be in place before the FEC is computed.
    fn write_headers_and_fec(
        &self,
        cfg: &DiscSetConfig,
        f: &File,
        tmp: &Path,
        final_path: &Path,
    ) -> Result<(), WriteError> {
        let header = DiscHeader {
            chain_id: cfg.chain.chain_id,
            name: cfg.chain.name.clone(),
            image_sectors: self.total,
            capacity_sectors: cfg.capacity_sectors,
            fec_lba: self.protected,
            fec_sectors: self.fec.region_sectors(),
            created_unix: cfg.chain.created_unix,
            sections: vec![DiscSection::from_parity(&self.section)],
        };
        let hb = header.encode();
        f.write_all_at(&hb, 0).map_err(io_err(tmp))?;
        f.write_all_at(&hb, (self.total - 2) * SS)
            .map_err(io_err(tmp))?;
        fec::encode(f, &self.fec, cfg.memory_budget, &|_| {})
            .map_err(|e| WriteError::Fec(final_path.to_path_buf(), e))
    }
}

/// fsync, then rename the finished temporary image to its final name (never over an existing
/// file) and fsync the directory: an image under its final name is always complete.
fn publish(cfg: &DiscSetConfig, f: &File, tmp: &Path, final_path: &Path) -> Result<(), WriteError> {
    f.sync_all().map_err(io_err(tmp))?;
    if final_path.exists() {
        return Err(WriteError::Exists(final_path.to_path_buf()));
    }
    std::fs::rename(tmp, final_path).map_err(io_err(final_path))?;
    if let Ok(dir) = File::open(&cfg.images_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// README.txt of parity disc p of a generation of n data discs.
pub fn parity_readme(chain: &crate::format::catalog::ChainInfo, p: u32, n: u32) -> String {
    let g = chain.generation;
    let name = &chain.name;
    let id: String = chain.chain_id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "BD-ARCHIVE | {name} | Gen {g} | PARITY disc {p} (set disc {d}) | created {created} (unix time)\n\
\n\
This is parity disc {p} of generation {g} of the bd-archive chain '{name}' (chain id {id}).\n\
It holds no files of the archive itself: it holds a Reed-Solomon code across the {n} data\n\
discs of generation {g}, so that whole data discs that are lost, or damaged beyond their own\n\
repair data, can be rebuilt bit for bit (FORMAT.md section 10). It also holds a copy of the\n\
generation's catalog ({name}-gen{g}/{name}-gen{g}.catalog), the list of every archived file.\n\
\n\
CHECK THE SET / REBUILD MISSING OR BROKEN DISC IMAGES:\n\
    bd-archive verify DIR_OF_IMAGES                      (reports which discs can be rebuilt)\n\
    bd-archive verify --repair -o FIXED_DIR DIR_OF_IMAGES (writes the rebuilt images)\n\
",
        d = n + p,
        created = chain.created_unix,
    )
}
