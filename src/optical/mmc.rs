//! The MMC-6 command set over any [`Drive`]: typed requests, sense mapped to [`MmcError`].
//!
//! [`Mmc`] is implemented for every `Drive`, so `drive.disc_information()` works the same on
//! SG_IO hardware and on the simulated drive. Each method sends exactly one command (no hidden
//! retries) except [`Mmc::wait_ready`], whose whole job is waiting; retry policy for reads and
//! writes belongs to the burner and the damaged-disc reader, which know what a retry costs.

use std::time::{Duration, Instant};

use super::cdb::{self, TrackAddress};
use super::drive::{CommandStatus, DataPhase, Drive, TransportError};
use super::response::{self, DiscInfo, FormatCapacity, Inquiry, TrackInfo};
use super::sense::{Action, Sense};

/// Timeout for quick commands (inquiry, status, configuration).
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout for reads/writes of one transfer and for tray movements.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(600);
/// Timeout of SYNCHRONIZE CACHE / CLOSE TRACK/SESSION sent with Immed=1, which return as soon
/// as the drive has accepted them (libburn: 200 s, spc.h `Libburn_mmc_sync_timeouT`).
pub const IMMED_TIMEOUT: Duration = Duration::from_secs(200);
/// Timeout of the same commands without Immed: they return when finished, which can take most
/// of an hour on a BD-R (libburn `Libburn_mmc_sync_noim_timeouT`, `…close_noim_timeouT`: 3600 s).
pub const NO_IMMED_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why an MMC command failed.
#[derive(Debug, thiserror::Error)]
pub enum MmcError {
    /// CHECK CONDITION: `command` names the CDB, `sense` what the drive said.
    #[error("{command} failed: {}", sense.map(|s| s.describe()).unwrap_or_else(|| "no sense data".into()))]
    Check {
        command: &'static str,
        sense: Option<Sense>,
    },
    #[error("{command}: drive busy")]
    Busy { command: &'static str },
    #[error("{command}: {source}")]
    Transport {
        command: &'static str,
        #[source]
        source: TransportError,
    },
    #[error("{command}: the drive returned a malformed response")]
    Malformed { command: &'static str },
    #[error("drive not ready after {0:?}")]
    NotReady(Duration),
}

impl MmcError {
    /// What the caller should do: the sense table's action, `Retry` for busy/transport hiccups.
    pub fn action(&self) -> Action {
        match self {
            MmcError::Check { sense: Some(s), .. } => s.action(),
            MmcError::Check { sense: None, .. } => Action::Fail,
            MmcError::Busy { .. } => Action::Retry,
            MmcError::Transport { source, .. } => match source {
                TransportError::Reset | TransportError::Timeout(_) => Action::Retry,
                TransportError::Other(_) => Action::Fail,
            },
            MmcError::Malformed { .. } | MmcError::NotReady(_) => Action::Fail,
        }
    }

    /// The sense data, when the failure was a CHECK CONDITION that carried some.
    pub fn sense(&self) -> Option<Sense> {
        match self {
            MmcError::Check { sense, .. } => *sense,
            _ => None,
        }
    }
}

/// State of the drive as TEST UNIT READY sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Becoming ready, long write in progress, unit attention (medium changed): ask again.
    NotYet,
    /// No medium (tray open or closed-empty).
    NoMedium,
}

/// Outcome of reading the drive's tray/medium state (GET EVENT STATUS NOTIFICATION, media class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaStatus {
    pub tray_open: bool,
    pub present: bool,
}

fn run<D: Drive + ?Sized>(
    d: &mut D,
    command: &'static str,
    cdb: &[u8],
    data: DataPhase<'_>,
    timeout: Duration,
) -> Result<usize, MmcError> {
    let offered = match &data {
        DataPhase::None => 0,
        DataPhase::In(b) => b.len(),
        DataPhase::Out(b) => b.len(),
    };
    match d.execute(cdb, data, timeout) {
        Ok(CommandStatus::Good { transferred }) => Ok(transferred),
        Ok(CommandStatus::CheckCondition(sense)) => match sense {
            // RECOVERED ERROR / NO SENSE: the command completed and its data is good (libburn:
            // GO_ON with the data). The transport counted no residue, so all of it arrived.
            Some(s) if s.action() == Action::Ok => Ok(offered),
            sense => Err(MmcError::Check { command, sense }),
        },
        Ok(CommandStatus::Busy) => Err(MmcError::Busy { command }),
        Err(source) => Err(MmcError::Transport { command, source }),
    }
}

fn read_in<D: Drive + ?Sized>(
    d: &mut D,
    command: &'static str,
    cdb: &[u8],
    alloc: usize,
) -> Result<Vec<u8>, MmcError> {
    let mut buf = vec![0u8; alloc];
    let n = run(d, command, cdb, DataPhase::In(&mut buf), SHORT_TIMEOUT)?;
    buf.truncate(n.min(alloc));
    Ok(buf)
}

/// MMC commands, available on every [`Drive`].
pub trait Mmc: Drive {
    /// TEST UNIT READY, classified.
    fn readiness(&mut self) -> Result<Readiness, MmcError> {
        match run(
            self,
            "TEST UNIT READY",
            &cdb::test_unit_ready(),
            DataPhase::None,
            SHORT_TIMEOUT,
        ) {
            Ok(_) => Ok(Readiness::Ready),
            Err(e) => match e.action() {
                Action::Retry => Ok(Readiness::NotYet),
                Action::NoMedium => Ok(Readiness::NoMedium),
                _ => Err(e),
            },
        }
    }

    /// TEST UNIT READY, unclassified: the sense says why the drive is not ready.
    fn test_unit_ready(&mut self) -> Result<(), MmcError> {
        run(
            self,
            "TEST UNIT READY",
            &cdb::test_unit_ready(),
            DataPhase::None,
            SHORT_TIMEOUT,
        )
        .map(|_| ())
    }

    /// Polls TEST UNIT READY until the medium is ready (or `limit` passes). `Ok(false)` when the
    /// drive settled with no medium in it.
    fn wait_ready(&mut self, limit: Duration) -> Result<bool, MmcError> {
        let start = Instant::now();
        let mut waited = Duration::ZERO;
        loop {
            match self.readiness()? {
                Readiness::Ready => return Ok(true),
                Readiness::NoMedium if waited >= Duration::from_secs(5) => return Ok(false),
                _ => {}
            }
            if waited >= limit || start.elapsed() >= limit {
                return Err(MmcError::NotReady(limit));
            }
            let step = Duration::from_millis(500);
            self.sleep(step);
            waited += step;
        }
    }

    /// INQUIRY: vendor, product, revision.
    fn inquiry(&mut self) -> Result<Inquiry, MmcError> {
        let d = read_in(self, "INQUIRY", &cdb::inquiry(None, 96), 96)?;
        response::parse_inquiry(&d).ok_or(MmcError::Malformed { command: "INQUIRY" })
    }

    /// GET CONFIGURATION: the current profile (0x41 BD-R SRM, 0x43 BD-RE, …; 0 = no medium).
    fn current_profile(&mut self) -> Result<u16, MmcError> {
        let alloc = cdb::GET_CONFIGURATION_MIN_ALLOC.max(64);
        let c = cdb::get_configuration(1, 0, alloc);
        let d = read_in(self, "GET CONFIGURATION", &c, usize::from(alloc))?;
        response::parse_current_profile(&d).ok_or(MmcError::Malformed {
            command: "GET CONFIGURATION",
        })
    }

    /// READ DISC INFORMATION (standard disc information).
    fn disc_information(&mut self) -> Result<DiscInfo, MmcError> {
        let d = read_in(
            self,
            "READ DISC INFORMATION",
            &cdb::read_disc_information(0, 34),
            34,
        )?;
        response::parse_disc_information(&d).ok_or(MmcError::Malformed {
            command: "READ DISC INFORMATION",
        })
    }

    /// READ TRACK INFORMATION for a track, session or LBA.
    fn track_information(&mut self, addr: TrackAddress) -> Result<TrackInfo, MmcError> {
        let d = read_in(
            self,
            "READ TRACK INFORMATION",
            &cdb::read_track_information(addr, 48),
            48,
        )?;
        response::parse_track_information(&d).ok_or(MmcError::Malformed {
            command: "READ TRACK INFORMATION",
        })
    }

    /// READ FORMAT CAPACITIES: current/maximum descriptor first, then the formattable ones.
    fn format_capacities(&mut self) -> Result<Vec<FormatCapacity>, MmcError> {
        let d = read_in(
            self,
            "READ FORMAT CAPACITIES",
            &cdb::read_format_capacities(252),
            252,
        )?;
        response::parse_format_capacities(&d).ok_or(MmcError::Malformed {
            command: "READ FORMAT CAPACITIES",
        })
    }

    /// READ CAPACITY(10): (number of readable blocks, block length).
    fn read_capacity(&mut self) -> Result<(u64, u32), MmcError> {
        let d = read_in(self, "READ CAPACITY", &cdb::read_capacity_10(), 8)?;
        response::parse_read_capacity(&d).ok_or(MmcError::Malformed {
            command: "READ CAPACITY",
        })
    }

    /// READ(12) of `buf.len() / 2048` sectors starting at `lba`.
    fn read_sectors(
        &mut self,
        lba: u32,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(), MmcError> {
        let blocks = (buf.len() / 2048) as u32;
        run(
            self,
            "READ(12)",
            &cdb::read_12(lba, blocks),
            DataPhase::In(buf),
            timeout,
        )
        .map(|_| ())
    }

    /// WRITE(10) of `data.len() / 2048` sectors at `lba` (≤ 65 535 sectors per command).
    fn write_sectors(&mut self, lba: u32, data: &[u8]) -> Result<(), MmcError> {
        let blocks = u16::try_from(data.len() / 2048).unwrap_or(u16::MAX);
        run(
            self,
            "WRITE(10)",
            &cdb::write_10(lba, blocks),
            DataPhase::Out(data),
            LONG_TIMEOUT,
        )
        .map(|_| ())
    }

    /// SYNCHRONIZE CACHE: flush the drive's write buffer to the medium. With `immed` the drive
    /// answers at once and reports 2/04/08 to TEST UNIT READY until the flush is done.
    fn synchronize_cache(&mut self, immed: bool) -> Result<(), MmcError> {
        run(
            self,
            "SYNCHRONIZE CACHE",
            &cdb::synchronize_cache(immed),
            DataPhase::None,
            if immed {
                IMMED_TIMEOUT
            } else {
                NO_IMMED_TIMEOUT
            },
        )
        .map(|_| ())
    }

    /// CLOSE TRACK/SESSION with `function` (1 = close track, 2 = close session, 6 = finalise
    /// a BD-R) for track/session `number`. With `immed` the drive answers at once and reports
    /// 2/04/07 (or 2/04/08) to TEST UNIT READY until it is done.
    fn close_track_session(
        &mut self,
        immed: bool,
        function: u8,
        number: u16,
    ) -> Result<(), MmcError> {
        run(
            self,
            "CLOSE TRACK/SESSION",
            &cdb::close_track_session(immed, function, number),
            DataPhase::None,
            if immed {
                IMMED_TIMEOUT
            } else {
                NO_IMMED_TIMEOUT
            },
        )
        .map(|_| ())
    }

    /// GET PERFORMANCE type 03h: the write speeds the drive offers for the loaded medium, as
    /// (end LBA, read kB/s, write kB/s), fastest first as drives list them.
    fn write_speeds(&mut self) -> Result<Vec<(u32, u32, u32)>, MmcError> {
        let max: u16 = 16;
        let alloc = 8 + 16 * usize::from(max);
        let d = read_in(
            self,
            "GET PERFORMANCE",
            &cdb::get_performance(0, 0, max, 3),
            alloc,
        )?;
        response::parse_write_speeds(&d).ok_or(MmcError::Malformed {
            command: "GET PERFORMANCE",
        })
    }

    /// GET PERFORMANCE type 00h, write, nominal: the write speed in effect (kB/s).
    fn current_write_speed(&mut self) -> Result<Option<u32>, MmcError> {
        let d = read_in(
            self,
            "GET PERFORMANCE",
            &cdb::get_performance(0x14, 0, 4, 0),
            8 + 16 * 4,
        )?;
        Ok(response::parse_nominal_performance(&d))
    }

    /// READ BUFFER CAPACITY: (buffer size, free bytes) of the drive's write buffer.
    fn buffer_capacity(&mut self) -> Result<(u32, u32), MmcError> {
        let d = read_in(
            self,
            "READ BUFFER CAPACITY",
            &cdb::read_buffer_capacity(12),
            12,
        )?;
        response::parse_buffer_capacity(&d).ok_or(MmcError::Malformed {
            command: "READ BUFFER CAPACITY",
        })
    }

    /// Whether the medium is formatted for BD-R Pseudo-Overwrite (feature 0038h current).
    fn pow_current(&mut self) -> Result<bool, MmcError> {
        let alloc = cdb::GET_CONFIGURATION_MIN_ALLOC.max(64);
        let d = read_in(
            self,
            "GET CONFIGURATION",
            &cdb::get_configuration(2, 0x0038, alloc),
            usize::from(alloc),
        )?;
        Ok(response::parse_pow_current(&d))
    }

    /// SET STREAMING with one performance descriptor from LBA 0 to `end_lba` (read and write
    /// speeds in kB/s). Falls back to SET CD SPEED when the drive rejects SET STREAMING.
    fn set_speed(&mut self, end_lba: u32, read_kbs: u32, write_kbs: u32) -> Result<(), MmcError> {
        let desc = cdb::streaming_descriptor(end_lba, read_kbs, write_kbs);
        let c = cdb::set_streaming(desc.len() as u16);
        match run(
            self,
            "SET STREAMING",
            &c,
            DataPhase::Out(&desc),
            SHORT_TIMEOUT,
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.action() == Action::Illegal => {
                let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                let c = cdb::set_cd_speed(clamp(read_kbs), clamp(write_kbs));
                run(self, "SET CD SPEED", &c, DataPhase::None, SHORT_TIMEOUT).map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// START STOP UNIT with LoEj: `eject` opens the tray, otherwise closes it (loads).
    fn tray(&mut self, eject: bool) -> Result<(), MmcError> {
        run(
            self,
            "START STOP UNIT",
            &cdb::start_stop_unit(false, true, !eject),
            DataPhase::None,
            LONG_TIMEOUT,
        )
        .map(|_| ())
    }

    /// PREVENT/ALLOW MEDIUM REMOVAL: lock the tray while burning.
    fn lock_tray(&mut self, prevent: bool) -> Result<(), MmcError> {
        run(
            self,
            "PREVENT ALLOW MEDIUM REMOVAL",
            &cdb::prevent_allow_medium_removal(prevent),
            DataPhase::None,
            SHORT_TIMEOUT,
        )
        .map(|_| ())
    }

    /// GET EVENT STATUS NOTIFICATION (polled, media class): tray open / medium present.
    fn media_status(&mut self) -> Result<MediaStatus, MmcError> {
        let d = read_in(
            self,
            "GET EVENT STATUS NOTIFICATION",
            &cdb::get_event_status_notification(0x10, 8),
            8,
        )?;
        // Media event descriptor (MMC-6 Table 156): byte 5 bit 0 Door/Tray Open, bit 1 Media Present.
        let b = *d.get(5).ok_or(MmcError::Malformed {
            command: "GET EVENT STATUS NOTIFICATION",
        })?;
        Ok(MediaStatus {
            tray_open: b & 0x01 != 0,
            present: b & 0x02 != 0,
        })
    }
}

impl<D: Drive + ?Sized> Mmc for D {}
