//! [`DriveSectorSource`]: a disc in a drive as a [`SectorSource`], built for damaged discs.
//!
//! Reading strategy (after GNU ddrescue, adapted to a disc that carries its own FEC):
//! - Requests are served with one large READ(12). Only when it fails are its sectors tried one
//!   by one ("trimming"), and after [`ReadPolicy::skip_after`] consecutive unreadable sectors the
//!   rest of the failed request and a growing stretch after it are *skipped* (marked `/`), so a
//!   scratch costs a few slow failures rather than one per sector.
//! - Known-bad and skipped sectors fail at once, without touching the drive: the FEC scan and
//!   repair read each sector as often as they like.
//! - Sectors read once are kept in an optional rescue copy (a sparse image file) and never read
//!   from the drive again; the [`SectorMap`] of what was read is saved as a GNU ddrescue mapfile.
//! - Retries of bad and skipped sectors happen only on request ([`DriveSectorSource::retry`]),
//!   and the caller asks only for sectors the FEC cannot do without.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::drive::Drive;
use super::mmc::{Mmc, MmcError};
use super::sector_map::{MapError, SectorMap, SectorStatus};
use crate::sector::{SectorSource, SECTOR_SIZE};

/// How hard to try.
#[derive(Clone, Debug)]
pub struct ReadPolicy {
    /// Most sectors per READ command (64 KiB = one BD ECC cluster is the unit of damage);
    /// lowered at [`DriveSectorSource::open`] to the drive's transfer limit.
    pub max_block: u32,
    /// Consecutive unreadable sectors after which the rest of a failing area is skipped.
    pub skip_after: u32,
    /// First skip length in sectors; doubles on each further failure, up to `max_skip`.
    pub first_skip: u64,
    /// Longest skip in sectors.
    pub max_skip: u64,
    /// Timeout of one READ command.
    pub timeout: Duration,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy {
            max_block: 32,
            skip_after: 2,
            first_skip: 32,
            max_skip: 4096,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What one drive contributed, for "which drive read what".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Sectors read successfully from the drive in this session.
    pub read_ok: u64,
    /// READ commands that failed.
    pub failed_commands: u64,
    /// Sectors marked skipped.
    pub skipped: u64,
    /// Sectors recovered by retries.
    pub recovered_by_retry: u64,
}

struct State {
    drive: Box<dyn Drive>,
    map: SectorMap,
    copy: Option<File>,
    consecutive_bad: u32,
    next_skip: u64,
    stats: ReadStats,
    last_lba: u64,
}

/// A disc in a drive, read defensively, with an optional rescue copy and mapfile.
pub struct DriveSectorSource {
    state: Mutex<State>,
    sectors: u64,
    name: String,
    policy: ReadPolicy,
    map_path: Option<PathBuf>,
}

fn io_other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl DriveSectorSource {
    /// Wraps a drive whose medium is ready. Disc size from READ CAPACITY. With `rescue`
    /// (`image`, `mapfile`): sectors read are stored in `image` (created sparse if missing) and
    /// the map in `mapfile`; an existing map of the same disc is continued, so only what is still
    /// missing is read from this drive.
    pub fn open(
        mut drive: Box<dyn Drive>,
        mut policy: ReadPolicy,
        rescue: Option<(&Path, &Path)>,
    ) -> Result<Self, DiscSourceError> {
        let name = drive.name();
        // Never above what the kernel lets through for this drive (32 KiB multiples).
        policy.max_block =
            super::transfer::sectors_per_command(drive.max_transfer(), u64::from(policy.max_block))
                as u32;
        let (sectors, block) = drive.read_capacity().map_err(|e| DiscSourceError::Drive {
            drive: name.clone(),
            source: e,
        })?;
        if block as usize != SECTOR_SIZE {
            return Err(DiscSourceError::BlockSize { drive: name, block });
        }
        let mut map = SectorMap::new(sectors);
        let mut copy = None;
        let mut map_path = None;
        if let Some((image, mapfile)) = rescue {
            if let Some(old) = SectorMap::load(mapfile, sectors)? {
                map = old.clone();
                // What an earlier pass could not read is worth one more look from this drive.
                for r in old
                    .runs()
                    .iter()
                    .filter(|r| matches!(r.status, SectorStatus::Bad | SectorStatus::NonScraped))
                {
                    map.set(r.start, r.len, SectorStatus::NonTrimmed);
                }
            }
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(image)
                .map_err(|e| DiscSourceError::Copy(image.display().to_string(), e))?;
            f.set_len(sectors * SECTOR_SIZE as u64)
                .map_err(|e| DiscSourceError::Copy(image.display().to_string(), e))?;
            copy = Some(f);
            map_path = Some(mapfile.to_path_buf());
        }
        let next_skip = policy.first_skip;
        Ok(DriveSectorSource {
            state: Mutex::new(State {
                drive,
                map,
                copy,
                consecutive_bad: 0,
                next_skip,
                stats: ReadStats::default(),
                last_lba: 0,
            }),
            sectors,
            name,
            policy,
            map_path,
        })
    }

    /// A snapshot of the sector map.
    pub fn map(&self) -> SectorMap {
        self.lock().map.clone()
    }

    /// What this drive has done so far.
    pub fn stats(&self) -> ReadStats {
        self.lock().stats.clone()
    }

    /// Gives the drive back (to eject the disc).
    pub fn into_drive(self) -> Box<dyn Drive> {
        let st = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        st.drive
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another reader thread must not make the disc unreadable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the mapfile (no-op without a rescue copy).
    pub fn save_map(&self) -> Result<(), MapError> {
        let st = self.lock();
        if let (Some(path), Some(copy)) = (&self.map_path, &st.copy) {
            let _ = copy.sync_data();
            let comment = format!("disc read by {}", self.name);
            st.map.save(path, st.last_lba, &comment)?;
        }
        Ok(())
    }

    /// Tries the given sectors again, up to `attempts` times each, one sector per command, and
    /// returns how many are now readable. Sectors already read are skipped.
    pub fn retry(&self, lbas: &[u64], attempts: u32) -> u64 {
        let mut st = self.lock();
        let mut recovered = 0;
        let mut buf = vec![0u8; SECTOR_SIZE];
        for &lba in lbas {
            if lba >= self.sectors || st.map.status(lba) == SectorStatus::Finished {
                continue;
            }
            for _ in 0..attempts.max(1) {
                if self.read_from_drive(&mut st, lba, &mut buf).is_ok() {
                    recovered += 1;
                    st.stats.recovered_by_retry += 1;
                    break;
                }
            }
            if st.map.status(lba) != SectorStatus::Finished {
                st.map.set(lba, 1, SectorStatus::Bad);
            }
        }
        recovered
    }

    /// Reads every sector not read yet, in order (fills the rescue copy and the map); unreadable
    /// areas are trimmed and skipped as described in the module docs. `progress` gets the LBA.
    pub fn read_all(&self, progress: &dyn Fn(u64)) {
        let block = 256u64;
        let mut buf = vec![0u8; block as usize * SECTOR_SIZE];
        let mut lba = 0;
        while lba < self.sectors {
            let n = block.min(self.sectors - lba);
            let part = &mut buf[..n as usize * SECTOR_SIZE];
            if self.read_sectors(lba, part).is_err() {
                // Classify the failed request sector by sector (trims and skips).
                for i in 0..n {
                    let _ = self.read_sectors(lba + i, &mut part[..SECTOR_SIZE]);
                }
            }
            lba += n;
            progress(lba);
        }
    }

    /// After an FEC scan of this disc: re-reads (up to `attempts` times each) the unreadable
    /// sectors of stripes that lost more than their parity — no others, since the FEC rebuilds
    /// them anyway. Returns how many were recovered (then scan again).
    pub fn retry_for_fec(&self, scan: &crate::fec::FecScan, attempts: u32) -> u64 {
        let map = self.map();
        let lbas: Vec<u64> = scan
            .lost_lbas_in_unrepairable_stripes()
            .into_iter()
            .filter(|&l| map.status(l) != SectorStatus::Finished)
            .collect();
        if lbas.is_empty() || attempts == 0 {
            return 0;
        }
        self.retry(&lbas, attempts)
    }

    /// One READ from the drive; on success the sectors are marked finished and stored.
    fn read_from_drive(&self, st: &mut State, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        let n = (buf.len() / SECTOR_SIZE) as u64;
        let lba32 = u32::try_from(lba).map_err(io_other)?;
        st.last_lba = lba + n;
        match st.drive.read_sectors(lba32, buf, self.policy.timeout) {
            Ok(()) => {
                st.map.set(lba, n, SectorStatus::Finished);
                st.stats.read_ok += n;
                st.consecutive_bad = 0;
                st.next_skip = self.policy.first_skip;
                if let Some(copy) = &st.copy {
                    copy.write_all_at(buf, lba * SECTOR_SIZE as u64)?;
                }
                Ok(())
            }
            Err(e) => {
                st.stats.failed_commands += 1;
                Err(io_other(e))
            }
        }
    }

    /// Serves `[lba, lba+n)` where every sector has the same status.
    fn read_run(
        &self,
        st: &mut State,
        lba: u64,
        status: SectorStatus,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let unreadable = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sector {lba} of {} {what}", self.name),
            ))
        };
        match status {
            SectorStatus::Finished => match &st.copy {
                Some(copy) => copy.read_exact_at(buf, lba * SECTOR_SIZE as u64),
                None => self.read_from_drive(st, lba, buf),
            },
            SectorStatus::Bad => unreadable("is unreadable"),
            SectorStatus::NonScraped => unreadable("was skipped (unreadable area)"),
            SectorStatus::NonTried | SectorStatus::NonTrimmed => {
                if st.consecutive_bad >= self.policy.skip_after {
                    self.skip_from(st, lba);
                    return unreadable("was skipped (unreadable area)");
                }
                if self.read_from_drive(st, lba, buf).is_ok() {
                    return Ok(());
                }
                let n = (buf.len() / SECTOR_SIZE) as u64;
                let mark = if n == 1 {
                    SectorStatus::Bad
                } else {
                    SectorStatus::NonTrimmed
                };
                st.map.set(lba, n, mark);
                st.consecutive_bad += 1;
                unreadable("is unreadable")
            }
        }
    }

    /// Marks the rest of the failing area and a growing stretch after it as skipped.
    fn skip_from(&self, st: &mut State, lba: u64) {
        let area_end = match st.map.run_at(lba) {
            Some(r) if r.status == SectorStatus::NonTrimmed => r.start + r.len,
            _ => lba + 1,
        };
        let end = area_end.saturating_add(st.next_skip).min(self.sectors);
        let mut at = lba;
        while at < end {
            let Some(r) = st.map.run_at(at) else { break };
            let n = r.len.min(end - at);
            if matches!(r.status, SectorStatus::NonTried | SectorStatus::NonTrimmed) {
                st.map.set(at, n, SectorStatus::NonScraped);
                st.stats.skipped += n;
            }
            at += n;
        }
        st.next_skip = (st.next_skip * 2).min(self.policy.max_skip);
        // One probe after the skipped stretch: success ends the unreadable area, failure skips
        // again, twice as far.
        st.consecutive_bad = self.policy.skip_after.saturating_sub(1);
    }
}

impl SectorSource for DriveSectorSource {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> io::Result<()> {
        let n = crate::sector::check_request(lba, buf.len(), self.sectors, &self.name)?;
        let mut st = self.lock();
        let mut at = lba;
        let mut result = Ok(());
        while at < lba + n {
            let Some(run) = st.map.run_at(at) else { break };
            // After a failure, probe sector by sector until something reads again.
            let block = if st.consecutive_bad > 0 {
                1
            } else {
                u64::from(self.policy.max_block)
            };
            let len = run.len.min(lba + n - at).min(block);
            let off = ((at - lba) as usize) * SECTOR_SIZE;
            let part = &mut buf[off..off + len as usize * SECTOR_SIZE];
            if let Err(e) = self.read_run(&mut st, at, run.status, part) {
                // Keep going: the rest of the request may still be readable, but the caller
                // learns that the request as a whole failed (and asks sector by sector).
                result = Err(e);
            }
            at += len;
        }
        result
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn parallel_reads(&self) -> bool {
        false
    }
}

/// Why a disc cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscSourceError {
    #[error("{drive}: {source}")]
    Drive {
        drive: String,
        #[source]
        source: MmcError,
    },
    #[error("{drive}: block size {block} is not 2048 bytes; is this a data disc?")]
    BlockSize { drive: String, block: u32 },
    #[error("rescue copy {0}: {1}")]
    Copy(String, #[source] io::Error),
    #[error(transparent)]
    Map(#[from] MapError),
}
