//! Discs made by the Python bd-archive ("seed"): dar slices `<name>[-gen<N>].NNNN.dar` (legacy
//! `<name>.NNNN.dar` = generation 1), isolated catalogues `…-catalog.NNNN.dar`, `.sha512` sidecars
//! and `<slice>.par2` + `<slice>.volNN+MM.par2`, on ISO9660+UDF images or mounted/copied discs.
//!
//! Flow per slice: sha512 sidecar → on mismatch par2 verify/repair (into the work directory) →
//! dar restore of every generation in ascending order into OUT through the safe `Restorer`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::Sha512;

use super::dar::extract::{restore_archive, DarRestoreReport};
use super::dar::{DarArchive, DarEntry, DarError, DarKind};
use super::par2::{Par2Set, Par2Status};
use crate::legacy::SeedError;
use crate::restore::verify::Health;
use crate::restore::writer::{RestoreOptions, Restorer};
use crate::sector::FileSectorSource;

/// Parsed name of a seed dar file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DarName {
    /// Chain name.
    pub chain: String,
    /// Generation (1 for legacy names).
    pub generation: u32,
    /// An isolated catalogue.
    pub catalog: bool,
    /// Slice number.
    pub slice: u32,
    /// dar basename (`<name>[-gen<N>][-catalog]`).
    pub basename: String,
}

/// Parses `<name>[-gen<N>][-catalog].<digits>.dar` like the seed's (non-greedy) regex.
pub fn parse_dar_name(file: &str) -> Option<DarName> {
    let stem = file.strip_suffix(".dar")?;
    let dot = stem.rfind('.')?;
    let (base, num) = (&stem[..dot], &stem[dot + 1..]);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let slice: u32 = num.parse().ok()?;
    let (rest, catalog) = match base.strip_suffix("-catalog") {
        Some(r) => (r, true),
        None => (base, false),
    };
    let (chain, generation) = match rest.rfind("-gen") {
        Some(i)
            if i > 0 && rest.len() > i + 4 && rest[i + 4..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            (&rest[..i], rest[i + 4..].parse().ok()?)
        }
        _ => (rest, 1),
    };
    if chain.is_empty() {
        return None;
    }
    Some(DarName {
        chain: chain.to_string(),
        generation,
        catalog,
        slice,
        basename: base.to_string(),
    })
}

/// A file found on a seed source.
#[derive(Clone, Debug)]
enum Origin {
    /// A plain file (mounted disc or copy).
    Plain(PathBuf),
    /// Contiguous bytes inside an image file.
    Image {
        image: PathBuf,
        offset: u64,
        size: u64,
    },
}

/// Every file of the seed sources, by file name (the disc folder is only a hint).
#[derive(Debug, Default)]
pub struct SeedFiles {
    files: BTreeMap<String, Origin>,
}

fn name_of(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn is_seed_name(n: &str) -> bool {
    parse_dar_name(n).is_some()
}

impl SeedFiles {
    /// Collects files from images and directories (root and one folder level, as the seed lays
    /// them out). Returns None when no source holds a dar slice.
    pub fn collect(sources: &[PathBuf]) -> io::Result<Option<SeedFiles>> {
        let mut s = SeedFiles::default();
        for src in sources {
            if src.is_dir() {
                s.add_dir(src, 0)?;
            } else if src.is_file() {
                s.add_image(src);
            }
        }
        if s.files.keys().any(|k| is_seed_name(k)) {
            Ok(Some(s))
        } else {
            Ok(None)
        }
    }

    fn add_dir(&mut self, dir: &Path, depth: u32) -> io::Result<()> {
        let mut items: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        items.sort();
        for p in items {
            if p.is_dir() && depth == 0 {
                self.add_dir(&p, 1)?;
            } else if p.is_file() {
                if let Some(n) = name_of(&p) {
                    if depth == 0 && n.to_ascii_lowercase().ends_with(".iso") {
                        self.add_image(&p);
                    } else {
                        self.files.entry(n).or_insert(Origin::Plain(p));
                    }
                }
            }
        }
        Ok(())
    }

    fn add_image(&mut self, img: &Path) {
        let Ok(src) = FileSectorSource::open(img) else {
            return;
        };
        let Ok(fs) = crate::image::read_filesystem(&src) else {
            return;
        };
        for f in fs.files {
            let n = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
            self.files.entry(n).or_insert(Origin::Image {
                image: img.to_path_buf(),
                offset: f.lba * 2048,
                size: f.size,
            });
        }
    }

    fn reader(&self, name: &str) -> io::Result<Box<dyn Read>> {
        match self.files.get(name) {
            Some(Origin::Plain(p)) => Ok(Box::new(File::open(p)?)),
            Some(Origin::Image {
                image,
                offset,
                size,
            }) => {
                let f = File::open(image)?;
                Ok(Box::new(ImageRead {
                    f,
                    pos: *offset,
                    left: *size,
                }))
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        }
    }

    /// Where `name`'s bytes are: (file, offset, length), without copying.
    fn location(&self, name: &str) -> io::Result<(PathBuf, u64, u64)> {
        match self.files.get(name) {
            Some(Origin::Plain(p)) => Ok((p.clone(), 0, std::fs::metadata(p)?.len())),
            Some(Origin::Image {
                image,
                offset,
                size,
            }) => Ok((image.clone(), *offset, *size)),
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        }
    }

    /// Puts `name` as a plain file into `dir` (copying from an image) and returns its path; plain
    /// files already on a directory source are used in place.
    fn materialize(&self, name: &str, dir: &Path) -> io::Result<PathBuf> {
        if let Some(Origin::Plain(p)) = self.files.get(name) {
            return Ok(p.clone());
        }
        std::fs::create_dir_all(dir)?;
        let dst = dir.join(name);
        let mut r = self.reader(name)?;
        let mut w = File::create(&dst)?;
        io::copy(&mut r, &mut w)?;
        w.flush()?;
        Ok(dst)
    }
}

struct ImageRead {
    f: File,
    pos: u64,
    left: u64,
}

impl Read for ImageRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.f.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "image truncated",
            ));
        }
        self.pos += got as u64;
        self.left -= got as u64;
        Ok(got)
    }
}

/// What happened to one slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SliceState {
    /// sha512 sidecar matched.
    Ok,
    /// No sidecar, par2 says intact.
    Par2Ok,
    /// Neither a sha512 sidecar nor par2 files: only dar's own per-file checks apply.
    Unchecked,
    /// par2 repaired it (into the work directory).
    Repaired,
    /// Damaged, and par2 can repair it (verify only; extract repairs).
    Repairable(String),
    /// Damaged and not repairable with the recovery data at hand.
    Unrepairable(String),
}

impl std::fmt::Display for SliceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SliceState::Ok => write!(f, "OK (sha512)"),
            SliceState::Par2Ok => write!(f, "OK (par2; no sha512 sidecar)"),
            SliceState::Unchecked => write!(f, "not checked (no sha512 sidecar, no par2 files)"),
            SliceState::Repaired => write!(f, "repaired with par2"),
            SliceState::Repairable(why) => write!(f, "damaged, repairable: {why}"),
            SliceState::Unrepairable(why) => write!(f, "DAMAGED: {why}"),
        }
    }
}

/// One generation of the chain.
#[derive(Debug)]
pub struct SeedGeneration {
    /// Generation number.
    pub generation: u32,
    /// dar basename.
    pub basename: String,
    /// Slice files by number.
    pub slices: BTreeMap<u32, String>,
    /// Isolated catalogue slices by number.
    pub catalogs: BTreeMap<u32, String>,
}

/// A seed chain found on the sources.
#[derive(Debug)]
pub struct SeedChain {
    /// Chain name.
    pub name: String,
    /// Generations, ascending.
    pub generations: Vec<SeedGeneration>,
    files: SeedFiles,
}

/// Outcome of `extract` on seed discs.
#[derive(Debug, Default)]
pub struct SeedOutcome {
    /// Per-slice state (file name, state).
    pub slices: Vec<(String, SliceState)>,
    /// Restore report over all generations.
    pub report: DarRestoreReport,
    /// Generations restored.
    pub generations: Vec<u32>,
    /// Entries considered.
    pub entries: usize,
    /// Every path a generation restored (deleted later or not), for a continuing chain's deletions.
    pub paths: Vec<Vec<u8>>,
}

/// Finds the seed chain on `sources`; None if they hold no seed slice. Several chains: error.
pub fn detect(sources: &[PathBuf]) -> Result<Option<SeedChain>, SeedError> {
    let Some(files) = SeedFiles::collect(sources)? else {
        return Ok(None);
    };
    let mut chains: BTreeMap<String, BTreeMap<u32, SeedGeneration>> = BTreeMap::new();
    for name in files.files.keys() {
        let Some(p) = parse_dar_name(name) else {
            continue;
        };
        let g = chains
            .entry(p.chain.clone())
            .or_default()
            .entry(p.generation)
            .or_insert_with(|| SeedGeneration {
                generation: p.generation,
                basename: if p.catalog {
                    p.basename
                        .strip_suffix("-catalog")
                        .unwrap_or(&p.basename)
                        .to_string()
                } else {
                    p.basename.clone()
                },
                slices: BTreeMap::new(),
                catalogs: BTreeMap::new(),
            });
        if p.catalog {
            g.catalogs.insert(p.slice, name.clone());
        } else {
            g.slices.insert(p.slice, name.clone());
        }
    }
    if chains.len() > 1 {
        return Err(SeedError::SeveralChains(
            chains.keys().cloned().collect::<Vec<_>>().join(", "),
        ));
    }
    let Some((name, gens)) = chains.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(SeedChain {
        name,
        generations: gens.into_values().collect(),
        files,
    }))
}

fn sha512_ok(files: &SeedFiles, name: &str) -> io::Result<Option<bool>> {
    let side = format!("{name}.sha512");
    let Ok(mut r) = files.reader(&side) else {
        return Ok(None);
    };
    let mut text = String::new();
    r.by_ref().take(4096).read_to_string(&mut text)?;
    let first = text.lines().next().unwrap_or("");
    let want = first
        .split("  ")
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if want.is_empty() {
        return Ok(Some(false));
    }
    let digest = crate::util::digest_read::digest_reader::<Sha512>(files.reader(name)?)?;
    let got: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(got == want))
}

fn par2_files(files: &SeedFiles, slice: &str) -> Vec<String> {
    let idx = format!("{slice}.par2");
    let vol = format!("{slice}.vol");
    files
        .files
        .keys()
        .filter(|k| **k == idx || (k.starts_with(&vol) && k.ends_with(".par2")))
        .cloned()
        .collect()
}

impl SeedChain {
    /// Where generation `g`'s catalogue is read from: its isolated catalogue slices when the
    /// seed wrote them, else the archive slices themselves (dar's catalogue is at their end).
    fn catalogue_locations(
        &self,
        g: &SeedGeneration,
    ) -> io::Result<Vec<Option<(PathBuf, u64, u64)>>> {
        let names: Vec<&String> = if g.catalogs.is_empty() {
            g.slices.values().collect()
        } else {
            g.catalogs.values().collect()
        };
        names
            .into_iter()
            .map(|n| self.files.location(n).map(Some))
            .collect()
    }

    /// Checks one slice; repairs it into `work` if needed. Returns its state and the path to use.
    fn check_slice(
        &self,
        name: &str,
        work: &Path,
        repair: bool,
    ) -> Result<(SliceState, Option<PathBuf>), SeedError> {
        self.check_slice_ranges(name, work, repair, &mut Vec::new())
    }

    /// [`Self::check_slice`], also giving the byte ranges par2 found damaged and left unrepaired.
    fn check_slice_ranges(
        &self,
        name: &str,
        work: &Path,
        repair: bool,
        bad_out: &mut Vec<(u64, u64)>,
    ) -> Result<(SliceState, Option<PathBuf>), SeedError> {
        let sha = sha512_ok(&self.files, name)?;
        if sha == Some(true) {
            return Ok((SliceState::Ok, None));
        }
        let pars = par2_files(&self.files, name);
        if pars.is_empty() {
            return Ok(match sha {
                Some(false) => (
                    SliceState::Unrepairable("sha512 mismatch and no par2 files".into()),
                    None,
                ),
                _ => (SliceState::Unchecked, None),
            });
        }
        let pdir = work.join("par2");
        std::fs::create_dir_all(&pdir)?;
        let mut ppaths = Vec::new();
        for p in &pars {
            ppaths.push(self.files.materialize(p, &pdir)?);
        }
        let set = match Par2Set::load(&ppaths) {
            Ok(s) => s,
            Err(e) => return Ok((SliceState::Unrepairable(format!("par2: {e}")), None)),
        };
        // par2 looks files up by name in one directory: stage the slice beside a link-free copy.
        let sdir = work.join("slices");
        std::fs::create_dir_all(&sdir)?;
        let slice_path = self.files.materialize(name, &sdir)?;
        let look = slice_path.parent().unwrap_or(&sdir).to_path_buf();
        let status = set.verify(&look)?;
        if !matches!(status, Par2Status::Ok) {
            *bad_out = set.damaged_ranges(&look, name)?;
        }
        match status {
            Par2Status::Ok => Ok((
                if sha.is_none() {
                    SliceState::Par2Ok
                } else {
                    SliceState::Unrepairable(
                        "sha512 mismatch although par2 finds the slice intact".into(),
                    )
                },
                Some(slice_path),
            )),
            Par2Status::Repairable { damaged, .. } if repair => {
                let out = work.join("repaired");
                match set.repair(&look, &out) {
                    Ok(_) => {
                        bad_out.clear();
                        Ok((SliceState::Repaired, Some(out.join(name))))
                    }
                    Err(e) => Ok((
                        SliceState::Unrepairable(format!(
                            "par2 repair of {damaged} block(s) failed: {e}"
                        )),
                        Some(slice_path),
                    )),
                }
            }
            Par2Status::Repairable { damaged, available } => Ok((
                SliceState::Repairable(format!(
                    "{damaged} damaged block(s), {available} recovery block(s)"
                )),
                Some(slice_path),
            )),
            Par2Status::Broken { damaged, available } => Ok((
                SliceState::Unrepairable(format!(
                    "{damaged} damaged block(s), only {available} recovery block(s)"
                )),
                Some(slice_path),
            )),
        }
    }

    /// `verify`: 0 when every slice passes sha512 (or par2), 1 when damage is repairable, 2 when not.
    pub fn verify(&self, work: &Path, mut say: impl FnMut(&str)) -> Result<Health, SeedError> {
        let mut worst = Health::Ok;
        for g in &self.generations {
            for name in g.slices.values().chain(g.catalogs.values()) {
                let (st, _) = self
                    .check_slice(name, work, false)
                    .map_err(SeedError::of(name.as_str()))?;
                let code = match &st {
                    SliceState::Ok | SliceState::Par2Ok | SliceState::Unchecked => Health::Ok,
                    SliceState::Repairable(_) => Health::Repairable,
                    _ => Health::Broken,
                };
                say(&format!("{name}: {st}"));
                worst = worst.max(code);
            }
        }
        Ok(worst)
    }

    /// Opens generation `generation`'s isolated catalogue if at hand, else its slices (read in
    /// place, unchecked: dar's own checks and the catalogue parser apply).
    pub fn open_catalogue(&self, generation: u32) -> Result<DarArchive, SeedError> {
        let g = self
            .generations
            .iter()
            .find(|g| g.generation == generation)
            .ok_or(SeedError::NoGeneration(generation))?;
        let paths = self.catalogue_locations(g)?;
        DarArchive::open_ranges(&paths).map_err(|e| SeedError::of(g.basename.as_str())(e.into()))
    }

    /// Entries of the newest generation's catalogue (isolated catalogue if present, else the archive).
    pub fn list(&self, work: &Path) -> Result<(u32, Vec<DarEntry>), SeedError> {
        let g = self.generations.last().ok_or(SeedError::NoGenerations)?;
        let dir = work.join("slices");
        std::fs::create_dir_all(&dir)?;
        let paths = self.catalogue_locations(g)?;
        let a = DarArchive::open_ranges(&paths)?;
        Ok((g.generation, a.catalogue()?))
    }

    /// Restores every generation in ascending order into `out` (later wins, deletions honoured).
    pub fn extract(
        &self,
        out: &Path,
        work: &Path,
        opts: RestoreOptions,
        mut say: impl FnMut(&str),
    ) -> Result<SeedOutcome, SeedError> {
        std::fs::create_dir_all(out)?;
        let mut r = Restorer::new(out, opts)?;
        let outcome = self.extract_into(&mut r, work, &mut say)?;
        for n in r.finish()? {
            say(&n);
        }
        Ok(outcome)
    }

    /// [`Self::extract`] through the caller's restorer (which then finishes it): a continued chain
    /// applies its bd-archive generations on top with the same one.
    pub fn extract_into(
        &self,
        r: &mut Restorer,
        work: &Path,
        mut say: impl FnMut(&str),
    ) -> Result<SeedOutcome, SeedError> {
        let mut outcome = SeedOutcome::default();
        for g in &self.generations {
            if g.slices.is_empty() {
                say(&format!(
                    "generation {}: only a catalogue, no data slices at hand; skipped",
                    g.generation
                ));
                continue;
            }
            let last = *g.slices.keys().next_back().unwrap_or(&1);
            let mut paths: Vec<Option<(PathBuf, u64, u64)>> = Vec::new();
            let mut bad_ranges: Vec<(u32, Vec<(u64, u64)>)> = Vec::new();
            for n in 1..=last {
                let Some(name) = g.slices.get(&n) else {
                    say(&format!("{}.{n:04}.dar: missing", g.basename));
                    outcome.slices.push((
                        format!("{}.{n:04}.dar", g.basename),
                        SliceState::Unrepairable("slice missing".into()),
                    ));
                    paths.push(None);
                    continue;
                };
                let mut ranges = Vec::new();
                let (st, p) = self
                    .check_slice_ranges(name, work, true, &mut ranges)
                    .map_err(SeedError::of(name.as_str()))?;
                if !ranges.is_empty() {
                    bad_ranges.push((n, ranges));
                }
                if st != SliceState::Ok {
                    say(&format!("{name}: {st}"));
                }
                // Intact slices are read in place (inside the image); checked/repaired ones from
                // the work directory.
                let path = match p {
                    Some(p) => {
                        let len = std::fs::metadata(&p)?.len();
                        (p, 0, len)
                    }
                    None => self.files.location(name)?,
                };
                outcome.slices.push((name.clone(), st));
                paths.push(Some(path));
            }
            let mut a = match DarArchive::open_ranges(&paths) {
                Ok(a) => a,
                Err(e) => {
                    let what = format!("generation {} ({})", g.generation, g.basename);
                    return Err(SeedError::of(what)(e.into()));
                }
            };
            for (slice, ranges) in &bad_ranges {
                a.mark_damaged(*slice, ranges);
            }
            if let Ok(c) = a.catalogue() {
                outcome.entries = outcome.entries.max(c.len());
                outcome.paths.extend(
                    c.into_iter()
                        .filter(|e| !matches!(e.kind, DarKind::Deleted(_)))
                        .map(|e| e.path),
                );
            }
            restore_archive(&a, r, &mut outcome.report).map_err(|e: DarError| {
                SeedError::of(format!("generation {}", g.generation))(e.into())
            })?;
            outcome.generations.push(g.generation);
            say(&format!(
                "generation {} restored ({} slice(s))",
                g.generation,
                paths.len()
            ));
        }
        Ok(outcome)
    }
}

/// Short kind letter for listings.
pub fn kind_letter(k: &DarKind) -> char {
    match k {
        DarKind::File => '-',
        DarKind::Dir => 'd',
        DarKind::Symlink => 'l',
        DarKind::CharDev => 'c',
        DarKind::BlockDev => 'b',
        DarKind::Fifo => 'p',
        DarKind::Socket => 's',
        DarKind::Door => 'D',
        DarKind::Deleted(_) => 'x',
    }
}
