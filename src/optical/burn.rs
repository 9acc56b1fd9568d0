//! Writing one image to a blank BD-R through any [`Drive`], and reading it back for the check.
//!
//! The sequence (docs/optical.md lists it command by command): identify the medium (GET
//! CONFIGURATION, READ DISC INFORMATION, READ TRACK INFORMATION, READ FORMAT CAPACITIES), refuse
//! anything but a blank BD-R, check the fit, SET STREAMING for `-S`, lock the tray, WRITE(10) in
//! 64 KiB clusters from LBA 0 (no FORMAT UNIT: SRM without spare areas, growisofs' `spare=none`),
//! SYNCHRONIZE CACHE, CLOSE TRACK, CLOSE SESSION with finalisation, unlock. Transient conditions
//! (long write in progress, becoming ready, unit attention, busy) are retried with backoff; a
//! medium error aborts with the LBA. Nothing here prints: the command layer does.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Duration;

use super::capacity::{blank_free_sectors, padded_sectors, WRITE_ALIGN_SECTORS};
use super::cdb::TrackAddress;
use super::drive::Drive;
use super::mmc::{Mmc, MmcError, LONG_TIMEOUT};
use super::response::{profile_name, DiscInfo, DiscStatus};
use super::sense::Action;
use crate::sector::{SectorSource, SECTOR_SIZE};

/// BD 1x in kB/s (MMC-6 speeds: 1 kB = 1000 bytes).
pub const BD_1X_KBS: u32 = 4495;
/// Sectors per WRITE(10): one 64 KiB BD cluster. Small enough for every SG_IO path (USB
/// bridges often cap a transfer at 120 KiB), aligned so the drive never has to merge clusters.
pub const WRITE_CHUNK_SECTORS: u64 = WRITE_ALIGN_SECTORS;
/// Sectors per READ(12) of the read-back check (2 MiB).
pub const READ_CHUNK_SECTORS: u64 = 1024;
/// How long transient "not ready" conditions are retried before giving up.
pub const RETRY_LIMIT: Duration = Duration::from_secs(600);

/// What is in the drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediumInfo {
    /// Current MMC profile (0 = none).
    pub profile: u16,
    /// READ DISC INFORMATION, when the drive answered it.
    pub disc: Option<DiscInfo>,
    /// Free sectors of a blank medium (track information / format capacities).
    pub free_sectors: Option<u64>,
    /// Recorded sectors (READ CAPACITY) of a non-blank medium.
    pub used_sectors: Option<u64>,
}

impl MediumInfo {
    /// One line for messages: "BD-R (SRM), complete, 1 session(s), 512.0 MiB used".
    pub fn describe(&self) -> String {
        let mut s = profile_name(self.profile).to_string();
        if let Some(d) = &self.disc {
            let status = match d.status {
                DiscStatus::Blank => "blank",
                DiscStatus::Appendable => "appendable (not finalised)",
                DiscStatus::Complete => "complete (finalised)",
                DiscStatus::Other => "in an unknown state",
            };
            s.push_str(&format!(", {status}, {} session(s)", d.sessions));
        }
        if let Some(u) = self.used_sectors.filter(|_| {
            self.disc
                .as_ref()
                .is_some_and(|d| d.status != DiscStatus::Blank)
        }) {
            s.push_str(&format!(
                ", {} used ({u} sectors)",
                crate::util::capacity::human_bytes(u * SECTOR_SIZE as u64)
            ));
        }
        if let Some(f) = self.free_sectors {
            s.push_str(&format!(
                ", {} free ({f} sectors)",
                crate::util::capacity::human_bytes(f * SECTOR_SIZE as u64)
            ));
        }
        s
    }
}

/// Why a burn step failed.
#[derive(Debug, thiserror::Error)]
pub enum BurnError {
    #[error("no disc in the drive")]
    NoMedium,
    #[error("the disc in the drive is a {0}; this version burns blank BD-R only (BD-RE and DVD need formatting rules it does not implement)")]
    NotBdR(String),
    #[error("the disc in the drive is not blank: {0}")]
    NotBlank(String),
    #[error("the drive did not report the free space of the disc ({0})")]
    NoFreeSpace(String),
    #[error("writing sector {lba} failed: {source}")]
    Write {
        lba: u64,
        #[source]
        source: MmcError,
    },
    #[error("the drive lost its write position: expected the next writable address {expected}, the drive reports {got:?}")]
    Position { expected: u64, got: Option<u32> },
    #[error("reading the image: {0}")]
    Image(#[from] std::io::Error),
    #[error(transparent)]
    Mmc(#[from] MmcError),
}

/// Runs `f` until it succeeds or fails with something other than a transient condition,
/// sleeping (drive clock) 0.1 s, 0.2 s, … up to 2 s between tries, for at most [`RETRY_LIMIT`].
pub fn with_retry<T>(
    d: &mut dyn Drive,
    mut f: impl FnMut(&mut dyn Drive) -> Result<T, MmcError>,
) -> Result<T, MmcError> {
    let mut waited = Duration::ZERO;
    let mut step = Duration::from_millis(100);
    loop {
        match f(d) {
            Err(e) if e.action() == Action::Retry && waited < RETRY_LIMIT => {
                d.sleep(step);
                waited += step;
                step = (step * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

/// Identifies the medium: profile, disc information, free or used space.
pub fn identify(d: &mut dyn Drive) -> Result<MediumInfo, MmcError> {
    let profile = with_retry(d, |d| d.current_profile())?;
    if profile == 0 {
        return Ok(MediumInfo {
            profile,
            disc: None,
            free_sectors: None,
            used_sectors: None,
        });
    }
    let disc = with_retry(d, |d| d.disc_information()).ok();
    let track = with_retry(d, |d| d.track_information(TrackAddress::Track(0xFF))).ok();
    let formats = with_retry(d, |d| d.format_capacities()).unwrap_or_default();
    let free_sectors = disc
        .as_ref()
        .and_then(|di| blank_free_sectors(di, track.as_ref(), &formats));
    let used_sectors = match disc.as_ref().map(|d| d.status) {
        Some(DiscStatus::Blank) | None => None,
        _ => with_retry(d, |d| d.read_capacity()).ok().map(|(n, _)| n),
    };
    Ok(MediumInfo {
        profile,
        disc,
        free_sectors,
        used_sectors,
    })
}

/// Accepts only a blank BD-R (SRM); returns its free sectors (`None` when the drive did not say).
pub fn check_blank_bd_r(info: &MediumInfo) -> Result<Option<u64>, BurnError> {
    match info.profile {
        0 => return Err(BurnError::NoMedium),
        0x41 => {}
        _ => return Err(BurnError::NotBdR(info.describe())),
    }
    match &info.disc {
        Some(d) if d.status == DiscStatus::Blank => Ok(info.free_sectors),
        Some(_) => Err(BurnError::NotBlank(info.describe())),
        None => Err(BurnError::NoFreeSpace(info.describe())),
    }
}

/// `-S` value ("4", "4x", "6.0X") → write speed in kB/s for SET STREAMING.
pub fn parse_speed(s: &str) -> Option<u32> {
    let t = s.trim().trim_end_matches(['x', 'X']);
    let x: f64 = t.parse().ok()?;
    (x.is_finite() && x > 0.0 && x <= 64.0).then(|| (x * f64::from(BD_1X_KBS)).round() as u32)
}

/// Writes `image_sectors` sectors of `image` from LBA 0, padding the last cluster with zeros.
/// `progress(sectors_written)` after every command. Returns the sectors written (padded).
pub fn write_image(
    d: &mut dyn Drive,
    image: &File,
    image_sectors: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, BurnError> {
    let total = padded_sectors(image_sectors);
    let ss = SECTOR_SIZE as u64;
    let mut buf = vec![0u8; (WRITE_CHUNK_SECTORS * ss) as usize];
    let mut lba = 0u64;
    while lba < total {
        let n = WRITE_CHUNK_SECTORS.min(total - lba);
        let chunk = &mut buf[..(n * ss) as usize];
        let real = image_sectors.saturating_sub(lba).min(n);
        chunk.fill(0);
        if real > 0 {
            image.read_exact_at(&mut chunk[..(real * ss) as usize], lba * ss)?;
        }
        write_chunk(d, lba, chunk)?;
        lba += n;
        progress(lba);
    }
    Ok(total)
}

/// One WRITE(10), retried on transient conditions. Before a retry the next writable address
/// tells whether the drive already took the data (a reset or timeout can hide a success).
fn write_chunk(d: &mut dyn Drive, lba: u64, chunk: &[u8]) -> Result<(), BurnError> {
    let n = (chunk.len() / SECTOR_SIZE) as u64;
    let lba32 = u32::try_from(lba).map_err(|_| BurnError::Position {
        expected: lba,
        got: None,
    })?;
    let mut waited = Duration::ZERO;
    let mut step = Duration::from_millis(100);
    loop {
        let err = match d.write_sectors(lba32, chunk) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match err.action() {
            Action::Retry if waited < RETRY_LIMIT => {}
            _ => {
                // Where the drive stopped, if it can say (the failing sector on write-once media).
                let at = d
                    .track_information(TrackAddress::Track(0xFF))
                    .ok()
                    .and_then(|t| t.next_writable)
                    .map(u64::from)
                    .filter(|&w| w >= lba && w < lba + n)
                    .unwrap_or(lba);
                return Err(BurnError::Write {
                    lba: at,
                    source: err,
                });
            }
        }
        d.sleep(step);
        waited += step;
        step = (step * 2).min(Duration::from_secs(2));
        let nwa = with_retry(d, |d| d.track_information(TrackAddress::Track(0xFF)))
            .ok()
            .and_then(|t| t.next_writable);
        match nwa.map(u64::from) {
            Some(w) if w == lba + n => return Ok(()),
            Some(w) if w == lba => {}
            None => {}
            got => {
                return Err(BurnError::Position {
                    expected: lba,
                    got: got.map(|g| g as u32),
                })
            }
        }
    }
}

/// SYNCHRONIZE CACHE, CLOSE TRACK (track 1), then close the session finalising the disc
/// (function 110b; 010b on drives that reject it), and wait until the drive is ready again.
pub fn finalize(d: &mut dyn Drive) -> Result<(), BurnError> {
    with_retry(d, |d| d.synchronize_cache())?;
    with_retry(d, |d| d.close_track_session(1, 1))?;
    match with_retry(d, |d| d.close_track_session(6, 0)) {
        Ok(()) => {}
        Err(e) if e.action() == Action::Illegal => with_retry(d, |d| d.close_track_session(2, 0))?,
        Err(e) => return Err(e.into()),
    }
    if !d.wait_ready(RETRY_LIMIT)? {
        return Err(BurnError::NoMedium);
    }
    Ok(())
}

/// A minimal read-back [`SectorSource`] over a drive, for the post-burn check only: one READ(12)
/// per request, retried on transient conditions, no error recovery (an unreadable sector is
/// reported, and the FEC scan's own sector-by-sector fallback finds which). The robust
/// damaged-disc reader is a separate module.
pub struct BurnReadback<'a> {
    drive: Mutex<&'a mut dyn Drive>,
    sectors: u64,
    name: String,
}

impl<'a> BurnReadback<'a> {
    /// Reads the first `sectors` sectors of the disc in `drive`.
    pub fn new(drive: &'a mut dyn Drive, sectors: u64) -> Self {
        let name = drive.name();
        BurnReadback {
            drive: Mutex::new(drive),
            sectors,
            name,
        }
    }
}

impl SectorSource for BurnReadback<'_> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let n = (buf.len() / SECTOR_SIZE) as u64;
        if buf.len() % SECTOR_SIZE != 0 || lba + n > self.sectors {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the burned image",
            ));
        }
        let mut d = self
            .drive
            .lock()
            .map_err(|_| std::io::Error::other("drive lock poisoned"))?;
        let d: &mut dyn Drive = &mut **d;
        for (i, part) in buf
            .chunks_mut(READ_CHUNK_SECTORS as usize * SECTOR_SIZE)
            .enumerate()
        {
            let at = lba + i as u64 * READ_CHUNK_SECTORS;
            let at = u32::try_from(at).map_err(|_| std::io::Error::other("LBA out of range"))?;
            with_retry(d, |d| d.read_sectors(at, part, LONG_TIMEOUT))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }

    fn parallel_reads(&self) -> bool {
        false // a disc in a drive: read in order
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optical::sim::{LbaRange, Medium, Profile, SimConfig, SimDrive};

    fn image(sectors: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..sectors * 2048).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &data).unwrap();
        (f, data)
    }

    #[test]
    fn burns_pads_and_finalises() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.long_write_turs = 4;
        let mut d = SimDrive::in_memory(cfg);
        let info = identify(&mut d).unwrap();
        assert_eq!(check_blank_bd_r(&info).unwrap(), Some(4096));
        let (f, data) = image(1000);
        let mut last = 0;
        let n = write_image(&mut d, f.as_file(), 1000, &mut |s| last = s).unwrap();
        assert_eq!((n, last), (1024, 1024));
        finalize(&mut d).unwrap();
        let info = identify(&mut d).unwrap();
        assert!(matches!(
            check_blank_bd_r(&info),
            Err(BurnError::NotBlank(_))
        ));
        assert!(info.describe().contains("complete"), "{}", info.describe());
        let got = d.medium_bytes(0, 1024).unwrap();
        assert_eq!(&got[..data.len()], &data[..]);
        assert!(got[data.len()..].iter().all(|&b| b == 0));
        let rb = BurnReadback::new(&mut d, 1000);
        let mut buf = vec![0u8; 1000 * 2048];
        rb.read_sectors(0, &mut buf).unwrap();
        assert_eq!(buf, data);
    }

    #[test]
    fn write_error_names_the_lba_and_resets_are_retried() {
        let mut m = Medium::blank("b", Profile::BdR, 4096);
        m.write_errors.push(LbaRange::One(100));
        let mut cfg = SimConfig::with_medium(m);
        cfg.reset_after_commands = Some(3);
        let mut d = SimDrive::in_memory(cfg);
        let (f, _) = image(200);
        match write_image(&mut d, f.as_file(), 200, &mut |_| {}) {
            Err(BurnError::Write { lba, source }) => {
                assert_eq!(lba, 100);
                assert!(source.to_string().contains("3/0C/00"), "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert!(d.log.iter().any(|l| l.contains("29/00")));
    }

    #[test]
    fn refuses_other_media() {
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "re",
            Profile::BdRe,
            4096,
        )));
        let info = identify(&mut d).unwrap();
        let e = check_blank_bd_r(&info).unwrap_err();
        assert!(e.to_string().contains("BD-RE"), "{e}");
        let mut d = SimDrive::in_memory(SimConfig::default());
        let info = identify(&mut d).unwrap();
        assert!(matches!(check_blank_bd_r(&info), Err(BurnError::NoMedium)));
    }

    #[test]
    fn speeds() {
        assert_eq!(parse_speed("1"), Some(4495));
        assert_eq!(parse_speed("4x"), Some(17_980));
        assert_eq!(parse_speed("2.5X"), Some(11_238));
        assert_eq!(parse_speed("0"), None);
        assert_eq!(parse_speed("fast"), None);
    }
}
