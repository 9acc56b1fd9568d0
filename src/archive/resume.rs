//! `create --resume`: the state file an interrupted create leaves in OUT, and the images it kept.

use std::path::{Path, PathBuf};

use crate::archive::disc_writer::WriteError;
use crate::archive::error::{CreateError, ResumeSetting};

use crate::archive::output::write_atomically;
use crate::archive::CreateJob;
use crate::disc::image_name::{image_file_name, legacy_image_file_name, ImageKind};
use crate::disc::reader::{Disc, RepairSettings};
use crate::format::catalog::{ChainInfo, DiscIndex};
use crate::util::progress::Progress;

/// Records an unfinished create in OUT, so `--resume` can continue it with the same identity.
pub(crate) const STATE_FILE: &str = ".bd-archive-create.json";

/// What `--resume` must find unchanged (and the identity it must reuse).
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
pub(crate) struct CreateState {
    name: String,
    pub(crate) generation: u32,
    pub(crate) chain_id: String,
    pub(crate) created_unix: i64,
    source: PathBuf,
    capacity_sectors: u64,
    compression: String,
    redundancy: u32,
    fill_parity: bool,
    base: Option<PathBuf>,
    pack_with: Option<PathBuf>,
    min_last_disc_fill: u32,
    checksum: bool,
    /// Parity discs (absent in states written before they existed: none).
    #[serde(default)]
    parity_discs: u32,
    /// Exclusions (absent in states written before they existed: none).
    #[serde(default)]
    exclusions: (Vec<String>, bool, bool),
    /// The run's set id, hex (absent in states written before set ids: the kept images carry
    /// none, so the rest is written without one too).
    #[serde(default)]
    set_id: String,
    /// Bytes each data disc leaves for the parity discs (absent in states written before it was
    /// recorded: unknown).
    #[serde(default)]
    parity_reserve_bytes: u64,
}

impl CreateState {
    pub(crate) fn new(
        job: &CreateJob,
        chain: &ChainInfo,
        set_id: [u8; 16],
        parity_reserve_bytes: u64,
    ) -> Self {
        CreateState {
            name: job.name.clone(),
            generation: chain.generation,
            chain_id: hex(&chain.chain_id),
            created_unix: chain.created_unix,
            source: absolute(&job.source),
            capacity_sectors: job.capacity_sectors,
            compression: chain.compression.clone(),
            redundancy: job.redundancy_pct,
            fill_parity: job.fill_parity,
            base: job.base_path().map(absolute),
            pack_with: job.pack_path().map(absolute),
            min_last_disc_fill: job.min_last_disc_fill,
            checksum: job.checksum,
            parity_discs: job.parity_discs,
            exclusions: exclusions(job),
            set_id: hex(&set_id),
            parity_reserve_bytes,
        }
    }

    /// The set id the interrupted run wrote its images with.
    pub(crate) fn set_id(&self) -> Result<[u8; 16], CreateError> {
        match self.set_id.as_str() {
            "" => Ok([0; 16]),
            s => parse_hex_id(s),
        }
    }
}

/// The room for the parity discs a run leaves on its data discs: `planned` (the bound for the
/// source as scanned now), except in a resumed run that keeps data discs — those were written
/// with the interrupted run's reserve, which the rest keeps so long as it still covers the
/// parity disc. If the source grew so that it no longer does, the resume is refused before
/// anything is written (the kept discs may leave too little room).
pub(crate) fn parity_reserve(
    out: &Path,
    state: Option<&CreateState>,
    planned: u64,
    keeps_discs: bool,
) -> Result<u64, CreateError> {
    let Some(st) = state.filter(|st| keeps_discs && st.parity_discs > 0) else {
        return Ok(planned);
    };
    match st.parity_reserve_bytes {
        0 => Ok(planned),
        kept if kept >= planned => Ok(kept),
        _ => Err(WriteError::Resume(format!(
            "{}: the source grew since the interrupted create, and its catalog now needs more \
             room on the parity disc than the kept data discs left; start again without \
             --resume in a new output directory",
            out.display()
        ))
        .into()),
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn write_state(out: &Path, st: &CreateState) -> Result<(), CreateError> {
    let json = serde_json::to_vec_pretty(st)?;
    write_atomically(&out.join(STATE_FILE), &json)
}

/// Reads the state of an interrupted create and checks that this run asks for the same archive.
pub(crate) fn read_state(job: &CreateJob) -> Result<CreateState, CreateError> {
    let out = &job.output;
    let path = out.join(STATE_FILE);
    let raw = std::fs::read(&path).map_err(|_| CreateError::NothingToResume {
        out: out.to_path_buf(),
        file: STATE_FILE,
    })?;
    let st: CreateState = serde_json::from_slice(&raw)
        .map_err(|e| CreateError::ResumeStateDamaged(path.clone(), e))?;
    let compression = job.compression_name();
    let checks: [(ResumeSetting, bool); 12] = [
        (ResumeSetting::Name, st.name == job.name),
        (ResumeSetting::Source, st.source == absolute(&job.source)),
        (
            ResumeSetting::Capacity,
            st.capacity_sectors == job.capacity_sectors,
        ),
        (ResumeSetting::Compression, st.compression == compression),
        (
            ResumeSetting::Redundancy,
            st.redundancy == job.redundancy_pct,
        ),
        (ResumeSetting::FillParity, st.fill_parity == job.fill_parity),
        (
            ResumeSetting::Base,
            st.base == job.base_path().map(absolute),
        ),
        (
            ResumeSetting::PackWith,
            st.pack_with == job.pack_path().map(absolute),
        ),
        (
            ResumeSetting::MinLastDiscFill,
            st.min_last_disc_fill == job.min_last_disc_fill,
        ),
        (ResumeSetting::Checksum, st.checksum == job.checksum),
        (ResumeSetting::Exclusions, st.exclusions == exclusions(job)),
        (
            ResumeSetting::ParityDiscs,
            st.parity_discs == job.parity_discs,
        ),
    ];
    if let Some(&(setting, _)) = checks.iter().find(|(_, same)| !same) {
        return Err(CreateError::ResumeSettingDiffers {
            setting,
            out: out.to_path_buf(),
        });
    }
    Ok(st)
}

pub(crate) fn parse_hex_id(s: &str) -> Result<[u8; 16], CreateError> {
    let mut id = [0u8; 16];
    if s.len() != 32 {
        return Err(CreateError::ResumeChainIdDamaged(STATE_FILE));
    }
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| CreateError::ResumeChainIdDamaged(STATE_FILE))?;
    }
    Ok(id)
}

/// The images a resumed create keeps: discs 1, 2, … of this generation while they are
/// consecutive and intact (named as `create` names them, or `disc_NNNN.iso` when an older
/// bd-archive began the create); anything after a gap is left alone and rebuilt under its name
/// (refused if present).
pub(crate) fn completed_discs(
    images_dir: &Path,
    chain: &ChainInfo,
    progress: &dyn Progress,
) -> Result<Vec<(DiscIndex, PathBuf)>, CreateError> {
    let mut done = Vec::new();
    for n in 1.. {
        let named = images_dir.join(image_file_name(
            &chain.name,
            chain.generation,
            ImageKind::Data,
            n,
        ));
        let old = images_dir.join(legacy_image_file_name(n));
        let Some(p) = [named, old].into_iter().find(|p| p.exists()) else {
            break;
        };
        // A `--pack-with` disc 1 holds the packed generation's section first: this run's
        // generation is matched by its own section.
        let disc = Disc::open_all(&p, &RepairSettings::default())
            .map_err(|e| CreateError::ResumeImageUnreadable(p.clone(), e))?
            .into_iter()
            .find(|d| d.header.chain_id == chain.chain_id && d.generation() == chain.generation)
            .ok_or_else(|| CreateError::ResumeImageForeign(p.clone()))?;
        let (None, Some(index)) = (disc.repair_summary(), disc.index) else {
            return Err(CreateError::ResumeImageDamaged(p));
        };
        done.push((index, p));
    }
    progress.step(&format!("Resuming after {} complete image(s)", done.len()));
    Ok(done)
}

/// The catalog of generation `generation` of chain `chain_id` when `last` is that generation's
/// complete last data image (it holds the catalog), with that disc's image size filled in as the
/// catalog in OUT has it; None otherwise. A `--pack-with` disc also holds the catalog of the
/// generation it was packed onto: only this generation's section counts.
pub(crate) fn finished_catalog(
    last: &Path,
    chain_id: [u8; 16],
    generation: u32,
) -> Option<crate::format::catalog::Catalog> {
    let discs = Disc::open_all(last, &RepairSettings::default()).ok()?;
    let disc = discs
        .into_iter()
        .find(|d| d.header.chain_id == chain_id && d.generation() == generation)?;
    let mut cat = disc.catalog?;
    if let Some(rec) = cat.discs.last_mut() {
        rec.image_sectors = disc.header.image_sectors;
    }
    Some(cat)
}

pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// What decides which source paths are left out.
fn exclusions(job: &CreateJob) -> (Vec<String>, bool, bool) {
    (
        job.exclude_patterns.clone(),
        job.exclude_caches,
        job.one_file_system,
    )
}
