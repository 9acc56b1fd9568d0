//! Reading discs from a drive for `verify` and `extract`: choosing the drive, waiting for a disc,
//! identifying it, reading it defensively (optionally into a rescue copy with a ddrescue
//! mapfile), and spending retries only where the FEC needs them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::disc::reader::find_disc_header;
use crate::format::disc_header::DiscHeader;
use crate::optical::detect::{select_drive, DetectError};
use crate::optical::device::{open_device, DeviceError};
use crate::optical::disc_source::{DiscSourceError, DriveSectorSource, ReadPolicy, ReadStats};
use crate::optical::drive::Drive;
use crate::optical::mmc::{Mmc, MmcError, Readiness};
use crate::optical::sector_map::SectorStatus;
use crate::optical::sg::Access;
use crate::sector::{SectorSource, SECTOR_SIZE};
use crate::util::capacity::human_bytes;
use crate::util::progress::Progress;

/// Why a disc could not be read from a drive. The messages name the drive and the files; the
/// command line adds which flag answers them (a mapfile's name is `--map`'s, for instance).
#[derive(Debug, Error)]
pub enum DriveReadError {
    /// No drive was named and none could be chosen.
    #[error(transparent)]
    NoDrive(DetectError),
    /// The drive could not be opened.
    #[error(transparent)]
    Open(#[from] DeviceError),
    /// The drive failed while the disc was becoming ready.
    #[error("{drive}: waiting for the disc")]
    Wait {
        /// The drive.
        drive: String,
        /// What it answered.
        #[source]
        source: MmcError,
    },
    /// A rescue mapfile not named `*.map`: its copy (`.iso` beside it) would be the mapfile itself.
    #[error("{}: name the mapfile *.map; the sectors read are kept in the .iso beside it", .0.display())]
    MapName(PathBuf),
    /// The disc could not be opened as a sector source (or its rescue copy / mapfile not used).
    #[error(transparent)]
    Source(#[from] DiscSourceError),
}

type Result<T, E = DriveReadError> = std::result::Result<T, E>;

/// How long a freshly inserted disc may take to become ready.
const SPIN_UP: Duration = Duration::from_secs(60);

/// Options shared by `verify -D` and `extract -D`.
#[derive(Clone, Debug)]
pub struct DriveReadOptions {
    /// `-D`, or None to detect.
    pub device: Option<PathBuf>,
    /// `--retries`: attempts per sector the FEC cannot do without.
    pub retries: u32,
    /// `--read-speed` in × (1× BD = 4 495 kB/s), None = the drive's default.
    pub read_speed: Option<u32>,
}

/// Opens the drive (`-D` or detected) for reading.
pub fn open_drive(opts: &DriveReadOptions) -> Result<Box<dyn Drive>> {
    let dev = select_drive(opts.device.as_deref()).map_err(DriveReadError::NoDrive)?;
    Ok(open_device(&dev, Access::Read)?)
}

/// Waits for a readable disc. `Ok(false)` when the drive settled with no disc in it.
pub fn wait_for_disc(drive: &mut dyn Drive) -> Result<bool> {
    let name = drive.name();
    if drive.readiness().ok() == Some(Readiness::NoMedium)
        && drive.media_status().is_ok_and(|m| m.tray_open)
    {
        // The disc may sit in the open tray (e.g. just ejected by burn): pull it in.
        let _ = drive.tray(false);
    }
    drive
        .wait_ready(SPIN_UP)
        .map_err(|source| DriveReadError::Wait {
            drive: name,
            source,
        })
}

/// Asks the drive for the read speed of `opts` (none set: nothing asked). A refusal is the
/// caller's to report, as a warning at most: many drives pick their own read speed.
pub fn apply_read_speed(drive: &mut dyn Drive, opts: &DriveReadOptions) -> Result<(), MmcError> {
    match opts.read_speed {
        Some(x) => drive.set_speed(u32::MAX, x.saturating_mul(4495), 0),
        None => Ok(()),
    }
}

/// Reads the disc header (LBA 0, else N−2) through the drive without keeping a copy.
pub fn identify(drive: Box<dyn Drive>) -> Result<(Option<DiscHeader>, Box<dyn Drive>)> {
    let src = DriveSectorSource::open(drive, ReadPolicy::default(), None)?;
    let header = find_disc_header(&src);
    Ok((header, src.into_drive()))
}

/// Where a rescue copy and its mapfile go for `--map FILE`: FILE is the mapfile, the copy is
/// FILE with extension `.iso` (the pair `ddrescue /dev/sr0 X.iso X.map` would use).
pub fn rescue_paths(map: &Path) -> Result<(PathBuf, PathBuf)> {
    let image = map.with_extension("iso");
    if image == map {
        return Err(DriveReadError::MapName(map.to_path_buf()));
    }
    Ok((image, map.to_path_buf()))
}

/// Reads every sector once (into the copy), then reports the drive's view.
pub fn read_disc(src: &DriveSectorSource, progress: &dyn Progress) {
    let pb = progress.meter(Some(src.sector_count() * SECTOR_SIZE as u64), "reading");
    src.read_all(&|lba| pb.set_position(lba * SECTOR_SIZE as u64));
    pb.finish();
}

/// A retry hook for `verify_source`: re-reads the unreadable sectors of unrepairable stripes.
pub fn fec_retry<'a>(
    src: &'a DriveSectorSource,
    retries: u32,
    progress: &'a dyn Progress,
) -> impl Fn(&crate::fec::FecScan) -> bool + 'a {
    move |scan| {
        let want = scan.lost_lbas_in_unrepairable_stripes().len();
        if retries == 0 || want == 0 {
            return false;
        }
        progress.step(&format!(
            "{}: the FEC cannot rebuild {want} lost sector(s) alone; retrying them (up to {retries} times each)",
            src.describe()
        ));
        let got = src.retry_for_fec(scan, retries);
        progress.step(&format!("{}: {got} of them read on retry", src.describe()));
        got > 0
    }
}

/// One line saying what this drive read: "which drive read what".
pub fn describe_reading(src: &DriveSectorSource) -> String {
    let map = src.map();
    let ReadStats {
        read_ok,
        failed_commands,
        skipped,
        recovered_by_retry,
    } = src.stats();
    let unreadable = map.count(SectorStatus::Bad);
    let not_tried = map.missing() - unreadable;
    format!(
        "{} read {} sector(s) ({}) this time; {} unreadable, {} skipped or not tried ({} skipped after errors, {} failed commands, {} recovered by retries)",
        src.describe(),
        read_ok,
        human_bytes(read_ok * SECTOR_SIZE as u64),
        unreadable,
        not_tried,
        skipped,
        failed_commands,
        recovered_by_retry
    )
}

/// Opens the disc in the drive as a sector source (with a rescue copy when `rescue` is given).
pub fn open_source(
    drive: Box<dyn Drive>,
    rescue: Option<(&Path, &Path)>,
) -> Result<Arc<DriveSectorSource>> {
    Ok(Arc::new(DriveSectorSource::open(
        drive,
        ReadPolicy::default(),
        rescue,
    )?))
}
