//! The write pipeline: one generation of a chain, from a source tree to disc images.
//!
//! ```text
//! create(job):
//!     prepare:  scan the source            (scan.rs, the calling thread)
//!               delta against --base       (delta.rs: store new/changed, reuse the rest)
//!               estimate, defer, overview  (plan.rs: sizing; the caller shows it and asks)
//!     build:    tar stream  --chunks-->  compress workers  --in order-->  disc writer
//!               (tar_stream.rs + pax.rs,  (build.rs, one per core:       (disc_writer.rs, this
//!                one reader thread)        zstd + framing, format/chunk)   thread: images, index,
//!                                                                           catalog, FEC per disc)
//!     finish:   catalog renamed into place, source problems and deferred files listed
//! ```
//!
//! Channels between the stages are bounded (2 chunks per core), so memory does not grow with the
//! source; an error anywhere drops the channels and every thread stops. `resume.rs` keeps the
//! state an interrupted create needs, `pack.rs` opens the image a `--pack-with` generation joins.
//! Nothing here prints: the caller passes a [`Progress`].
pub mod delta;
pub mod disc_writer;
mod pax;
pub mod plan;
pub mod reserve;
pub mod scan;
pub mod tar_stream;

mod build;
mod error;
mod output;
mod pack;
pub mod parity_disc;
mod parity_pass;
mod resume;

use std::path::{Path, PathBuf};

pub use error::{CreateError, ResumeSetting};

pub use output::write_atomically;
pub use pack::open_pack;

use crate::archive::delta::{plan_delta, DeltaStats, Planned};
use crate::archive::disc_writer::{CarryIn, DiscSetConfig};
use crate::archive::plan::{defer_for_fill, overview, sample_ratio_with_margin, Overview};
use crate::archive::reserve::DiscShape;
use crate::archive::scan::{scan_tree, ScanOptions, SourceEntry};
use crate::archive::tar_stream::SourceProblem;
use crate::format::catalog::{Catalog, ChainInfo, Entry};
use crate::format::chunk::Compression;
use crate::format::records::RecordIdentity;
use crate::util::capacity::human_bytes;
use crate::util::progress::Progress;

/// FORMAT.md, copied onto every disc.
pub const FORMAT_MD: &str = include_str!("../../FORMAT.md");

/// How the compression ratio of the overview is found.
#[derive(Debug, Clone)]
pub enum RatioEstimate {
    /// Given by the user (compressed/original).
    Given(f64),
    /// Sampled from this directory.
    Sample(PathBuf),
    /// Sampled from the source itself.
    FromSource,
}

/// The base generation a new generation continues (`--base`, or the catalog of a `--pack-with` image).
#[derive(Debug, Clone)]
pub struct Base {
    /// Where it was loaded from (kept in the resume state).
    pub path: PathBuf,
    /// Its catalog.
    pub catalog: Catalog,
}

/// The unburned last image a new generation joins (`--pack-with`).
#[derive(Debug, Clone)]
pub struct Pack {
    /// The image's protected files, carried onto the new image.
    pub carry: CarryIn,
    /// Its catalog: the new generation's base.
    pub catalog: Catalog,
}

/// Everything `create` needs to know: the options of one run, already parsed and checked.
/// A plain value rather than flags, so that the CLI, the fuzz `roundtrip` target and the tests
/// drive the same engine the user runs.
#[derive(Debug, Clone)]
pub struct CreateJob {
    /// Chain name (checked by the caller: 1..=64 bytes, no '/' or control characters).
    pub name: String,
    /// Source directory.
    pub source: PathBuf,
    /// Output directory (OUT/images, OUT/<name>-gen<G>.catalog).
    pub output: PathBuf,
    /// Work directory (excluded from the scan when inside the source).
    pub workdir: Option<PathBuf>,
    /// Capacity of one disc in 2048-byte sectors.
    pub capacity_sectors: u64,
    /// Chunk compression.
    pub compression: Compression,
    /// Share of each disc's sectors that may be lost (FEC), percent.
    pub redundancy_pct: u32,
    /// Spend the last disc's free space on parity.
    pub fill_parity: bool,
    /// Memory budget for the FEC, bytes.
    pub memory_budget: u64,
    /// The previous generation (`--base`), if any.
    pub base: Option<Base>,
    /// The image to pack onto (`--pack-with`), if any.
    pub pack: Option<Pack>,
    /// How to estimate the compression ratio.
    pub ratio: RatioEstimate,
    /// Defer the newest files so the last disc is at least this full (percent, 0 = off).
    pub min_last_disc_fill: u32,
    /// Compare unchanged-looking files by content hash against the base.
    pub checksum: bool,
    /// Write a generation even when the source is empty or nothing changed.
    pub allow_empty: bool,
    /// Continue the interrupted create in OUT.
    pub resume: bool,
    /// Do not copy the running binary onto the discs.
    pub no_binary: bool,
    /// Only the overview will be used (no warning about the binary).
    pub dry_run: bool,
    /// `--exclude` / `--exclude-file` patterns (see [`ScanOptions::exclude_patterns`]).
    pub exclude_patterns: Vec<String>,
    /// `--exclude-caches`.
    pub exclude_caches: bool,
    /// `--one-file-system`.
    pub one_file_system: bool,
    /// Parity discs per generation (`--parity-discs`, FORMAT.md §10); 0 = none.
    pub parity_discs: u32,
    /// Warn when the binary cannot be copied onto the discs (else it is only a `-v` detail:
    /// the command line says it once per binary, not on every run).
    pub warn_binary_not_carried: bool,
}

impl CreateJob {
    fn base_path(&self) -> Option<&Path> {
        self.base.as_ref().map(|b| b.path.as_path())
    }

    fn pack_path(&self) -> Option<&Path> {
        self.pack.as_ref().map(|p| p.carry.image.as_path())
    }

    /// The compression as recorded in the catalog ("none", "zstd-3").
    fn compression_name(&self) -> String {
        match self.compression {
            Compression::None => "none".into(),
            Compression::Zstd(l) => format!("zstd-{l}"),
        }
    }
}

/// What [`prepare`] found: nothing to do, or a generation ready to be built.
pub enum Preparation {
    /// An incremental generation would hold no change since `base_generation`.
    Unchanged {
        /// The base generation.
        base_generation: u32,
    },
    /// Ready: show [`Prepared::overview`], then call [`create`].
    Ready(Box<Prepared>),
}

/// A generation decided but not yet written.
pub struct Prepared {
    /// The new generation's number.
    pub generation: u32,
    /// Sizes, discs, fill, ratio (shown before anything is written).
    pub overview: Overview,
    /// Counts of what changed since the base (incremental generations only).
    pub delta: Option<DeltaStats>,
    /// Files deferred by `min_last_disc_fill` (newest first), not in this generation.
    pub deferred: Vec<SourceEntry>,
    /// Whether this generation continues a base.
    pub incremental: bool,
    plan: GenerationPlan,
    /// Objects the scan could not read (already reported through `progress`).
    scan_problems: Vec<SourceProblem>,
    resume_state: Option<resume::CreateState>,
    binary: Option<Vec<u8>>,
}

/// What `create` wrote.
pub struct CreateReport {
    /// The new generation's number.
    pub generation: u32,
    /// The images, in burn order.
    pub images: Vec<PathBuf>,
    /// OUT/images.
    pub images_dir: PathBuf,
    /// The generation's catalog (the next `--base`).
    pub catalog: PathBuf,
    /// Source files not archived exactly as they are now: those the scan could not read first
    /// (reported through `progress` when met: the first `scan_problems` of them), then those
    /// unreadable or changed while being read.
    pub problems: Vec<SourceProblem>,
    /// How many of `problems` the scan found (and reported already).
    pub scan_problems: usize,
    /// Where `problems` are listed (when there are any).
    pub problems_file: Option<PathBuf>,
}

/// Decides what the new generation holds: checks OUT, scans the source, compares with the base
/// and sizes the discs. Writes nothing.
///
/// Separate from [`create`] so that the caller can show the overview (how many discs, how full
/// the last) and let the user change their mind — or stop for `--dry-run` — before a single byte
/// is written; [`create`] then builds exactly the [`Prepared`] generation that was shown.
pub fn prepare(job: &CreateJob, progress: &dyn Progress) -> Result<Preparation, CreateError> {
    if job.parity_discs > 0 && job.pack.is_some() {
        return Err(CreateError::ParityWithPack);
    }
    let base = base_catalog(job)?;
    let out = &job.output;
    let images_dir = out.join("images");
    let generation = base.as_ref().map_or(1, |b| b.chain.generation + 1);
    let resume_state = if job.resume {
        Some(resume::read_state(job)?)
    } else {
        output::check_output(out, &images_dir, &catalog_path(job, generation))?;
        None
    };
    let src = &job.source;
    let (scanned, scan_problems, excluded) = scan_source(job, progress)?;
    if scanned.is_empty() && !job.allow_empty {
        return Err(CreateError::EmptySource(src.clone()));
    }
    let mut plan = plan_generation(base, scanned, src, job.checksum)?;
    if let Some(st) = &resume_state {
        if st.generation != generation {
            return Err(CreateError::ResumeGeneration {
                made: st.generation,
                would: generation,
            });
        }
        plan.chain_id = resume::parse_hex_id(&st.chain_id)?;
    }
    if let Some(d) = &plan.delta {
        if d.is_empty() && !job.allow_empty {
            return Ok(Preparation::Unchanged {
                base_generation: plan.base_generation,
            });
        }
    }
    let (ratio, ratio_margin, ratio_source) = estimate_ratio(job, &plan.store)?;
    // The discs as create will write them, so the parity reserve is bounded with the real sizes.
    let disc_map = plan.base.as_ref().map_or_else(Vec::new, |b| {
        crate::format::catalog::DiscMap::carried_from(b).0
    });
    let cfg = disc_set_config(
        job,
        &images_dir,
        &chain_info(job, &plan, generation, resume_state.as_ref()),
        [0; 16],
        carried_binary(job, progress),
        0,
        disc_map,
    );
    let shape = DiscShape::new(&cfg, &plan.reuse);
    let est = |store: &[SourceEntry]| {
        overview(
            store,
            job.capacity_sectors,
            job.redundancy_pct,
            ratio,
            ratio_margin,
            ratio_source.clone(),
            &shape,
            job.parity_discs,
        )
    };
    let base_paths: std::collections::HashSet<&[u8]> = plan
        .base
        .iter()
        .flat_map(|b| b.entries.iter().map(|e| e.path.as_slice()))
        .collect();
    let deferred = defer_for_fill(
        &mut plan.store,
        &|e| !base_paths.contains(e.rel_path.as_slice()),
        job.min_last_disc_fill,
        &est,
    );
    let mut overview = est(&plan.store);
    overview.excluded = excluded;
    check_parity_count(job.parity_discs, overview.discs)?;
    // Parity discs whose catalog copy leaves the data discs nothing: said now, not by the writer.
    const SECTOR_BYTES: u64 = crate::sector::SECTOR_SIZE as u64;
    let max_protected = crate::fec::max_protected_for_loss(
        job.capacity_sectors - disc_writer::TRAILER_SECTORS,
        job.redundancy_pct,
    );
    if job.parity_discs > 0 && overview.parity_reserve_bytes >= max_protected * SECTOR_BYTES {
        return Err(CreateError::ParityCatalogTooLarge(overview.capacity_bytes));
    }
    let binary = cfg.binary;
    Ok(Preparation::Ready(Box::new(Prepared {
        generation,
        overview,
        delta: plan.delta.clone(),
        deferred,
        incremental: plan.base.is_some(),
        plan,
        scan_problems,
        resume_state,
        binary,
    })))
}

/// Refuses more parity discs than a reader accepts for `data` data discs (FORMAT.md §10.3).
pub(crate) fn check_parity_count(parity: u32, data: u64) -> Result<(), CreateError> {
    let max =
        crate::format::parity_manifest::max_parity_discs(data.min(u64::from(u32::MAX)) as u32);
    if parity > max {
        return Err(CreateError::TooManyParityDiscs { parity, data, max });
    }
    Ok(())
}

/// Builds the images of a prepared generation: OUT/images/<name>-gen<GGGG>-disc<NNNN>.iso (see
/// [`crate::disc::image_name`]), each complete when it appears, then the catalog and the lists of source problems and deferred files.
pub fn create(
    job: &CreateJob,
    prepared: Prepared,
    progress: &dyn Progress,
) -> Result<CreateReport, CreateError> {
    let Prepared {
        generation,
        overview,
        deferred,
        mut plan,
        scan_problems,
        resume_state,
        binary,
        ..
    } = prepared;
    let out = &job.output;
    let images_dir = out.join("images");
    let catalog_path = catalog_path(job, generation);
    std::fs::create_dir_all(&images_dir)
        .map_err(|e| CreateError::Output(format!("creating {}", images_dir.display()), e))?;
    let chain = chain_info(job, &plan, generation, resume_state.as_ref());
    // A resumed run keeps its set id, so the kept images and the rest are one set.
    let set_id = match &resume_state {
        Some(st) => st.set_id()?,
        None => random_chain_id()?,
    };
    build::remove_partials(&images_dir);
    let done = match &resume_state {
        Some(_) => resume::completed_discs(&images_dir, &chain, progress)?,
        None => Vec::new(),
    };
    let finished = finished_generation(&done, resume_state.is_some(), &chain);
    // Kept data discs bind the rest to their reserve (a finished generation's does not matter).
    let keeps_discs = !done.is_empty() && finished.is_none();
    let planned = overview.parity_reserve_bytes;
    let reserve = resume::parity_reserve(out, resume_state.as_ref(), planned, keeps_discs)?;
    let cfg = disc_set_config(
        job,
        &images_dir,
        &chain,
        set_id,
        binary,
        reserve,
        carried_disc_map(plan.base.as_ref(), progress),
    );
    resume::write_state(out, &resume::CreateState::new(job, &chain, set_id, reserve))?;
    // The catalog is saved as catalog_tmp by the writer before the last image's FEC (so the
    // entries are freed first), and renamed into place once every image is complete.
    let catalog_tmp = catalog_path.with_extension("partial");
    let id = RecordIdentity {
        chain_id: chain.chain_id,
        generation,
        disc: 0,
        set_id,
    };
    let result = match finished {
        Some(cat) => build::save_catalog(&catalog_tmp, id, &cat)
            .map_err(|e| CreateError::Output(format!("writing {}", catalog_tmp.display()), e))
            .map(|_| (done.iter().map(|(_, p)| p.clone()).collect(), Vec::new())),
        None => build::build_images(
            cfg.clone(),
            (&catalog_tmp, id),
            &job.source,
            std::mem::take(&mut plan.store),
            plan.reuse,
            job.compression,
            overview.data_bytes,
            done,
            progress,
        ),
    };
    let result = result.and_then(|built| with_parity_discs(job, &cfg, built, progress));
    let (images, build_problems) = match result {
        Ok(r) => r,
        Err(e) => {
            build::remove_partials(&images_dir);
            let _ = std::fs::remove_file(&catalog_tmp);
            return Err(e);
        }
    };
    std::fs::rename(&catalog_tmp, &catalog_path).map_err(|e| {
        CreateError::Output(format!("renaming {} into place", catalog_tmp.display()), e)
    })?;
    let scanned_problems = scan_problems.len();
    let problems: Vec<SourceProblem> = scan_problems.into_iter().chain(build_problems).collect();
    let problems_file = output::write_problems(out, &job.name, generation, &problems)?;
    output::write_deferred(out, &deferred)?;
    let _ = std::fs::remove_file(out.join(resume::STATE_FILE));
    Ok(CreateReport {
        generation,
        images,
        images_dir,
        catalog: catalog_path,
        problems,
        scan_problems: scanned_problems,
        problems_file,
    })
}

/// A resumed create whose data images are all complete (it stopped during the parity discs)
/// takes the catalog from the last image instead of writing the generation again.
fn finished_generation(
    done: &[(crate::format::catalog::DiscIndex, PathBuf)],
    resumed: bool,
    chain: &ChainInfo,
) -> Option<Catalog> {
    match done.last() {
        Some((_, last)) if resumed => {
            resume::finished_catalog(last, chain.chain_id, chain.generation)
        }
        _ => None,
    }
}

/// The parity discs (if any were asked for) after the data discs, in burn order.
fn with_parity_discs(
    job: &CreateJob,
    cfg: &DiscSetConfig,
    (data, problems): (Vec<PathBuf>, Vec<SourceProblem>),
    progress: &dyn Progress,
) -> Result<(Vec<PathBuf>, Vec<SourceProblem>), CreateError> {
    if job.parity_discs == 0 {
        return Ok((data, problems));
    }
    let parity = parity_disc::write_parity_discs(cfg, job.parity_discs, &data, progress)?;
    Ok((data.into_iter().chain(parity).collect(), problems))
}

/// The chain and generation every disc and the catalog of this run describe; a resumed run keeps
/// its creation time, so kept and new images agree.
fn chain_info(
    job: &CreateJob,
    plan: &GenerationPlan,
    generation: u32,
    resume_state: Option<&resume::CreateState>,
) -> ChainInfo {
    ChainInfo {
        name: job.name.clone(),
        chain_id: plan.chain_id,
        generation,
        base_generation: plan.base_generation,
        created_unix: resume_state.map_or_else(now_unix, |st| st.created_unix),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        compression: job.compression_name(),
        redundancy_pct: job.redundancy_pct,
    }
}

/// The settings the disc writer needs from the job, in one place; the parity discs' reserve
/// only counts when there are parity discs.
fn disc_set_config(
    job: &CreateJob,
    images_dir: &Path,
    chain: &ChainInfo,
    set_id: [u8; 16],
    binary: Option<Vec<u8>>,
    parity_reserve_bytes: u64,
    disc_map: Vec<crate::format::catalog::DiscSpan>,
) -> DiscSetConfig {
    DiscSetConfig {
        images_dir: images_dir.to_path_buf(),
        chain: chain.clone(),
        set_id,
        capacity_sectors: job.capacity_sectors,
        redundancy_pct: job.redundancy_pct,
        fill_parity: job.fill_parity,
        memory_budget: job.memory_budget,
        format_md: FORMAT_MD.as_bytes().to_vec(),
        first_image_number: 1,
        carry_in: job.pack.as_ref().map(|p| p.carry.clone()),
        binary,
        parity_reserve_sectors: if job.parity_discs > 0 {
            parity_reserve_bytes / crate::sector::SECTOR_SIZE as u64
        } else {
            0
        },
        disc_map,
        parity_discs: job.parity_discs,
    }
}

/// The disc map the new catalog carries (FORMAT §6.1); a generation the base cannot describe
/// is left out with a warning (its entries then show no disc number).
fn carried_disc_map(
    base: Option<&Catalog>,
    progress: &dyn Progress,
) -> Vec<crate::format::catalog::DiscSpan> {
    let Some(base) = base else {
        return Vec::new();
    };
    let (spans, problems) = crate::format::catalog::DiscMap::carried_from(base);
    for p in problems {
        progress.warn(&format!(
            "the base catalog cannot say which discs of generation {} hold what ({}): the new catalog leaves them unnamed",
            p.generation, p.rule
        ));
    }
    spans
}

/// OUT/<name>-gen<G>.catalog.
fn catalog_path(job: &CreateJob, generation: u32) -> PathBuf {
    job.output
        .join(format!("{}-gen{generation}.catalog", job.name))
}

/// The catalog the new generation continues: `--base`, or the packed image's own.
fn base_catalog(job: &CreateJob) -> Result<Option<Catalog>, CreateError> {
    Ok(match (&job.base, &job.pack) {
        (Some(base), pack) => {
            if let Some(Pack {
                carry,
                catalog: cat,
            }) = pack
            {
                let base = &base.catalog;
                if cat.chain.chain_id != base.chain.chain_id
                    || cat.chain.generation != base.chain.generation
                {
                    return Err(CreateError::PackNotOnBase {
                        image: carry.image.clone(),
                        packed: cat.chain.generation,
                        base: base.chain.generation,
                    });
                }
            }
            Some(base.catalog.clone())
        }
        (None, Some(p)) => Some(p.catalog.clone()),
        (None, None) => None,
    })
}

/// What the new generation is: identity plus what to store and what to reuse.
struct GenerationPlan {
    chain_id: [u8; 16],
    base_generation: u32,
    store: Vec<SourceEntry>,
    reuse: Vec<Entry>,
    delta: Option<DeltaStats>,
    /// The base catalog (for deferral: files it has are never deferred).
    base: Option<Catalog>,
}

/// Decides identity and content of the new generation: a full archive, or the delta to `base`.
fn plan_generation(
    base: Option<Catalog>,
    scanned: Vec<SourceEntry>,
    root: &Path,
    checksum: bool,
) -> Result<GenerationPlan, CreateError> {
    let Some(base) = base else {
        return Ok(GenerationPlan {
            chain_id: random_chain_id()?,
            base_generation: 0,
            store: scanned,
            reuse: Vec::new(),
            delta: None,
            base: None,
        });
    };
    let (planned, stats) = plan_delta(&base, scanned, root, checksum);
    let mut store = Vec::new();
    let mut reuse = Vec::new();
    for p in planned {
        match p {
            Planned::Store(s) => store.push(s),
            Planned::Reuse(e) => reuse.push(e),
        }
    }
    Ok(GenerationPlan {
        chain_id: base.chain.chain_id,
        base_generation: base.chain.generation,
        store,
        reuse,
        delta: Some(stats),
        base: Some(base),
    })
}

fn random_chain_id() -> Result<[u8; 16], CreateError> {
    let mut id = [0u8; 16];
    let mut f = std::fs::File::open("/dev/urandom").map_err(CreateError::Random)?;
    std::io::Read::read_exact(&mut f, &mut id).map_err(CreateError::Random)?;
    Ok(id)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Scans the source; returns its entries, what could not be read, and how many paths the
/// exclusions (patterns, caches, other filesystems) left out.
fn scan_source(
    job: &CreateJob,
    progress: &dyn Progress,
) -> Result<(Vec<SourceEntry>, Vec<SourceProblem>, u64), CreateError> {
    let src = &job.source;
    let mut exclude = vec![resume::absolute(&job.output)];
    if let Some(w) = &job.workdir {
        exclude.push(resume::absolute(w));
    }
    let opts = ScanOptions {
        exclude,
        one_file_system: job.one_file_system,
        exclude_patterns: job.exclude_patterns.clone(),
        exclude_caches: job.exclude_caches,
        ..ScanOptions::default()
    };
    let pb = progress.meter(None, "scanning");
    let mut problems = Vec::new();
    let entries = scan_tree(src, &opts, &mut |p| problems.push(p), &mut |n| {
        if n % 1024 == 0 {
            pb.set_position(n)
        }
    })?;
    pb.finish();
    let problems = problems
        .into_iter()
        .map(|p| {
            progress.warn(&format!(
                "{}: {} (not archived)",
                p.path.display(),
                p.message
            ));
            let rel = p.path.strip_prefix(src).unwrap_or(&p.path);
            SourceProblem {
                path: rel.as_os_str().as_encoded_bytes().to_vec(),
                message: format!("{} (not archived)", p.message),
                archived: false,
            }
        })
        .collect();
    let excluded = opts.excluded.load(std::sync::atomic::Ordering::Relaxed);
    Ok((entries, problems, excluded))
}

/// (ratio, its margin, where it comes from).
fn estimate_ratio(
    job: &CreateJob,
    entries: &[SourceEntry],
) -> Result<(f64, f64, String), CreateError> {
    let level = match job.compression {
        Compression::None => return Ok((1.0, 0.0, "-c none".into())),
        Compression::Zstd(l) => l,
    };
    if let RatioEstimate::Given(r) = job.ratio {
        if !(0.0..=1.5).contains(&r) || r == 0.0 {
            return Err(CreateError::BadRatio(r));
        }
        return Ok((r, 0.0, "--ratio".into()));
    }
    if let RatioEstimate::Sample(dir) = &job.ratio {
        let sample = scan_tree(dir, &ScanOptions::default(), &mut |_| {}, &mut |_| {})?;
        let s = sample_ratio_with_margin(&sample, dir, Some(level));
        if s.bytes == 0 {
            return Err(CreateError::EmptySample(dir.clone()));
        }
        return Ok((
            s.ratio,
            s.margin,
            format!("sampled {} of --sample", human_bytes(s.bytes)),
        ));
    }
    let s = sample_ratio_with_margin(entries, &job.source, Some(level));
    Ok((
        s.ratio,
        s.margin,
        format!("sampled {} of the source", human_bytes(s.bytes)),
    ))
}

/// The static binary to put on every disc, or None with a one-line warning saying why not.
fn carried_binary(job: &CreateJob, progress: &dyn Progress) -> Option<Vec<u8>> {
    let exe = std::env::current_exe().unwrap_or_default();
    match crate::util::self_binary::load(&exe, job.capacity_sectors * 2048, job.no_binary) {
        Ok(b) => Some(b),
        Err(crate::util::self_binary::NotCarried::Disabled) => None,
        Err(why) => {
            let msg = format!("the bd-archive binary is not copied onto the discs: {why}");
            if job.warn_binary_not_carried && !job.dry_run {
                progress.warn(&format!("{msg} (said once for this binary)"));
            } else {
                progress.detail(&msg);
            }
            None
        }
    }
}
