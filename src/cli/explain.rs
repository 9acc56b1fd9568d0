//! The engines' errors as the user has always read them: one line, naming the flag that
//! answers it. The library's messages name files and discs only; the flags are the command
//! line's business.

use anyhow::anyhow;
use bd_archive::archive::disc_writer::WriteError;
use bd_archive::archive::scan::ScanError;
use bd_archive::archive::{CreateError, ResumeSetting};
use bd_archive::optical::drive::Drive;
use bd_archive::restore::drive::{DriveReadError, DriveReadOptions};
use bd_archive::restore::{ExtractError, VerifyError};

use crate::cli::Ui;

/// `create`'s errors.
pub fn create(e: CreateError) -> anyhow::Error {
    use CreateError as E;
    let resume = |e: E| anyhow::Error::new(e).context("--resume");
    match e {
        E::UnfinishedCreate(out) => anyhow!(
            "{} holds an interrupted create; continue it with --resume (same options), or choose another -o (nothing was changed)",
            out.display()
        ),
        E::OutputNotADirectory(_) => anyhow!("-o {e}"),
        E::CatalogExists(_) | E::ImagesExist { .. } => {
            let what = if matches!(e, E::CatalogExists(_)) {
                "choose another -o"
            } else {
                "choose an empty -o or remove them"
            };
            anyhow!("{e}; {what} (nothing was changed)")
        }
        E::EmptySource(_) => anyhow!("{e}; pass --allow-empty to archive it anyway"),
        E::Scan(ScanError::Root { path, source }) => {
            let msg = format!(
                "source directory {}: {source} (check the -s path)",
                path.display()
            );
            anyhow::Error::new(source).context(msg)
        }
        E::Scan(ScanError::NotADirectory { .. }) => {
            anyhow!("{e} (-s must name a directory)")
        }
        E::BadRatio(_) => anyhow!("--ratio {e}"),
        E::EmptySample(_) => anyhow!("--sample {e}"),
        E::PackNotOnBase {
            image,
            packed,
            base,
        } => anyhow!(
            "--pack-with {}: holds generation {packed} of its chain, but --base is generation {base}; pack onto the last disc of the --base generation",
            image.display()
        ),
        E::ResumeSettingDiffers { setting, out } => anyhow!(
            "--resume: {} differs from the interrupted create in {}; repeat its exact options",
            resume_flag(setting),
            out.display()
        ),
        E::NothingToResume { .. }
        | E::ResumeStateDamaged(..)
        | E::ResumeChainIdDamaged(_)
        | E::ResumeGeneration { .. }
        | E::ResumeImageUnreadable(..)
        | E::ResumeImageDamaged(_)
        | E::Write(WriteError::Resume(_)) => resume(e),
        E::PackUnreadable(path, source) => {
            anyhow::Error::new(source).context(format!("--pack-with {}", path.display()))
        }
        E::PackDamaged(_) => {
            anyhow!("--pack-with {e}; run `bd-archive verify --repair` first")
        }
        E::PackOtherChain { .. }
        | E::PackNotLastDisc { .. }
        | E::PackFull(..)
        | E::PackFilesystem(..) => anyhow!("--pack-with {e}"),
        E::ParityWithPack => anyhow!(
            "--parity-discs with --pack-with: {e}; pack without parity discs, or write this generation on discs of its own with --base and --parity-discs"
        ),
        E::Write(WriteError::ParityDiscTooLarge { .. }) => anyhow!("--parity-discs: {e}"),
        E::ParityCatalogTooLarge(_) => {
            anyhow!("--parity-discs: {e}; use larger discs (-b) or no parity discs")
        }
        E::Write(WriteError::Exists(_)) => anyhow!("{e} (choose another -o or remove it)"),
        E::Interrupted(i) => anyhow::Error::new(i),
        e => anyhow::Error::new(e),
    }
}

/// The flag that sets what a resumed create must repeat.
fn resume_flag(s: ResumeSetting) -> &'static str {
    match s {
        ResumeSetting::Name => "-n",
        ResumeSetting::Source => "-s",
        ResumeSetting::Capacity => "-b/-D",
        ResumeSetting::Compression => "-c/-l",
        ResumeSetting::Redundancy => "-r",
        ResumeSetting::FillParity => "--fill-parity",
        ResumeSetting::Base => "--base",
        ResumeSetting::PackWith => "--pack-with",
        ResumeSetting::MinLastDiscFill => "--min-last-disc-fill",
        ResumeSetting::Checksum => "--checksum",
        ResumeSetting::ParityDiscs => "--parity-discs",
        ResumeSetting::Exclusions => "--exclude/--exclude-file/--exclude-caches/--one-file-system",
    }
}

/// `extract`'s and `list`'s errors.
pub fn extract(e: ExtractError) -> anyhow::Error {
    use ExtractError as E;
    match e {
        E::NoSources => anyhow!("no SOURCE given: pass disc images or directories of images (reading from a drive is not available yet)"),
        E::GenerationMissing { .. } => anyhow!("--generation {e}"),
        E::NoMatch(_) => anyhow!("--only: {e}"),
        E::Exists(_) => anyhow!(
            "{e} (after an interrupted extract, re-run with --resume to continue it; --overwrite replaces existing files; or choose an empty -o)"
        ),
        E::NoSuchSet(_) => anyhow!(
            "--set {e} (the ids are named when two sets of one generation are given; `-v` shows each disc's)"
        ),
        E::Prelude(b) => anyhow::Error::from_boxed(b),
        E::Interrupted(i) => anyhow::Error::new(i),
        e => anyhow::Error::new(e),
    }
}

/// `verify`'s errors.
pub fn verify(e: VerifyError) -> anyhow::Error {
    match e {
        VerifyError::RepairTargetExists(_) => anyhow!("--repair -o {e}"),
        e => anyhow::Error::new(e),
    }
}

/// Reading from a drive (`verify`/`extract` with `-D` or no SOURCE).
pub fn drive_read(e: DriveReadError) -> anyhow::Error {
    match e {
        // With no SOURCE at all the user may simply have forgotten the images.
        DriveReadError::NoDrive(d) => {
            anyhow!("{d}, or give image files or directories of images")
        }
        DriveReadError::MapName(_) => anyhow!("--map {e}"),
        e => anyhow::Error::new(e),
    }
}

/// `--read-speed X`: a drive that refuses it is only warned about (many drives pick their own
/// read speed).
pub fn apply_read_speed(drive: &mut dyn Drive, opts: &DriveReadOptions, ui: &Ui) {
    if let Err(e) = bd_archive::restore::drive::apply_read_speed(drive, opts) {
        let x = opts.read_speed.unwrap_or_default();
        ui.warn(&format!("{}: --read-speed {x}: {e}", drive.name()));
    }
}
