//! Writing one image to a blank BD-R through any [`Drive`], and reading it back for the check.
//!
//! The sequence (docs/optical.md lists it command by command, with the libburn / growisofs
//! behaviour each step follows): identify the medium (GET CONFIGURATION, READ DISC INFORMATION,
//! READ TRACK INFORMATION of the last track, READ FORMAT CAPACITIES), refuse anything but a
//! blank, unformatted BD-R (SRM, no Pseudo-Overwrite), check the fit, choose a write speed the
//! drive lists (`-S`), lock the tray, WRITE(10) from LBA 0 in transfers sized by
//! [`super::transfer`] (no FORMAT UNIT: SRM without spare areas, growisofs' `spare=none`), then
//! SYNCHRONIZE CACHE, CLOSE TRACK and CLOSE SESSION (finalise), each sent once with Immed=1 and
//! followed by TEST UNIT READY polling for up to an hour, unlock.
//!
//! Retries: a WRITE the drive refused because its buffer is full (2/04/08) is sent again after a
//! few milliseconds, without other commands in between (libburn); a WRITE lost to a reset or
//! timeout is repeated only after READ TRACK INFORMATION says the drive did not take it. A long
//! command (cache flush, close) is never sent again after a timeout: the drive may still be
//! working on it, so we poll, then check the disc status. Nothing here prints: the command
//! layer does.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Duration;

use super::capacity::{blank_free_sectors, padded_sectors};
use super::cdb::TrackAddress;
use super::drive::{Drive, TransportError};
use super::mmc::{Mmc, MmcError, LONG_TIMEOUT};
use super::response::{profile_name, DiscInfo, DiscStatus};
use super::sense::{Action, SenseKey};
use super::transfer;
use crate::sector::{SectorSource, SECTOR_SIZE};

/// BD 1x in kB/s (MMC-6 speeds: 1 kB = 1000 bytes).
pub const BD_1X_KBS: u32 = 4495;
/// How long transient conditions of quick commands and WRITE are retried before giving up.
pub const RETRY_LIMIT: Duration = Duration::from_secs(600);
/// How long a flush or close may keep the drive busy (libburn polls up to 3600 s after an
/// Immed SYNCHRONIZE CACHE or CLOSE: mmc.c:3573, mmc.c:646).
pub const LONG_OPERATION_LIMIT: Duration = Duration::from_secs(3600);
/// Pause before re-sending a WRITE refused with 2/04/08 (buffer full): doubles up to
/// [`BUFFER_FULL_MAX_PAUSE`]. libburn re-sends after 0, 2, 4 … ms, at most 25 ms (spc.h
/// `Libburn_scsi_write_retry_*`); a 0.1 s pause would drain 3.6 MB at 8x, the whole buffer of
/// many drives, and stop the laser on every fill.
const BUFFER_FULL_FIRST_PAUSE: Duration = Duration::from_millis(2);
const BUFFER_FULL_MAX_PAUSE: Duration = Duration::from_millis(25);
/// TEST UNIT READY interval while a long operation runs (libburn: 2 Hz).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// libburn counts 2/04/00 ("not ready, cause not reportable") lasting this long as ready: some
/// adapters never report anything better (spc.c:150, "clueless adapter").
const CLUELESS_NOT_READY: Duration = Duration::from_secs(5);

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
    /// BD-R formatted for Pseudo-Overwrite (GET CONFIGURATION feature 0038h current).
    pub pow: bool,
}

impl MediumInfo {
    /// One line for messages: "BD-R (SRM), complete, 1 session(s), 512.0 MiB used".
    pub fn describe(&self) -> String {
        let mut s = profile_name(self.profile).to_string();
        if self.pow {
            s.push_str(" formatted for Pseudo-Overwrite (POW)");
        }
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
    #[error("the disc in the drive is a {0}: bd-archive writes unformatted BD-R sequentially (SRM), and a POW disc cannot be finalised that way; use a new, unformatted BD-R")]
    Pow(String),
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
    #[error("{step} was interrupted ({cause}) and the disc is {status} afterwards; the disc may be unusable: read it back with `bd-archive verify -D`")]
    NotFinalised {
        step: &'static str,
        cause: String,
        status: String,
    },
    #[error("reading the image: {0}")]
    Image(#[from] std::io::Error),
    #[error(transparent)]
    Mmc(#[from] MmcError),
}

/// Runs `f` until it succeeds or fails with something other than a transient condition,
/// sleeping (drive clock) 0.1 s, 0.2 s, … up to 2 s between tries, for at most [`RETRY_LIMIT`].
/// Only for commands that are safe to send twice (queries, reads).
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

/// The track to address on BD-R: LAST TRACK IN LAST SESSION from READ DISC INFORMATION (1 on a
/// blank disc). Track FFh is defined for CD and DVD+R only; BD drives may refuse it (libburn
/// `mmc_read_track_info`, mmc.c:405-440; growisofs `get_2k_capacity` case 0x41).
pub fn last_track(d: &mut dyn Drive) -> Result<u16, MmcError> {
    Ok(with_retry(d, |d| d.disc_information())?.last_track.max(1))
}

/// Identifies the medium: profile, disc information, free or used space, POW.
pub fn identify(d: &mut dyn Drive) -> Result<MediumInfo, MmcError> {
    let profile = with_retry(d, |d| d.current_profile())?;
    if profile == 0 {
        return Ok(MediumInfo {
            profile,
            disc: None,
            free_sectors: None,
            used_sectors: None,
            pow: false,
        });
    }
    let disc = with_retry(d, |d| d.disc_information()).ok();
    let track = match &disc {
        Some(di) => {
            let t = TrackAddress::Track(u32::from(di.last_track.max(1)));
            with_retry(d, |d| d.track_information(t)).ok()
        }
        None => None,
    };
    let formats = with_retry(d, |d| d.format_capacities()).unwrap_or_default();
    let free_sectors = disc
        .as_ref()
        .and_then(|di| blank_free_sectors(di, track.as_ref(), &formats));
    let used_sectors = match disc.as_ref().map(|d| d.status) {
        Some(DiscStatus::Blank) | None => None,
        _ => with_retry(d, |d| d.read_capacity()).ok().map(|(n, _)| n),
    };
    // libburn refuses a POW-formatted BD-R (write.c:1501, drive.c:3617); growisofs sets
    // `bdr_plus_pow` from the same feature (growisofs_mmc.cpp:267-283).
    let pow = matches!(profile, 0x41 | 0x42) && with_retry(d, |d| d.pow_current()).unwrap_or(false);
    Ok(MediumInfo {
        profile,
        disc,
        free_sectors,
        used_sectors,
        pow,
    })
}

/// Accepts only a blank, unformatted BD-R (SRM); returns its free sectors (`None` when the
/// drive did not say).
pub fn check_blank_bd_r(info: &MediumInfo) -> Result<Option<u64>, BurnError> {
    match info.profile {
        0 => return Err(BurnError::NoMedium),
        0x41 => {}
        _ => return Err(BurnError::NotBdR(info.describe())),
    }
    if info.pow {
        return Err(BurnError::Pow(info.describe()));
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

/// Read speed for SET STREAMING when the drive listed none: libburn's "maximum" (mmc.c:2791).
/// Never FFFFFFFFh, which some firmware reads as −1.
pub const MAX_READ_KBS: u32 = 0x1000_0000;

/// What the drive was asked for and what it says it uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpeedChoice {
    /// `-S` as given, kB/s.
    pub requested_kbs: u32,
    /// Write speeds the drive listed (GET PERFORMANCE type 03h), kB/s; empty when it listed none.
    pub listed_kbs: Vec<u32>,
    /// What SET STREAMING asked for: the listed speed closest to `-S` from below (the slowest
    /// listed one when all are faster), or `-S` itself when nothing was listed.
    pub sent_kbs: u32,
    /// The drive refused SET STREAMING and SET CD SPEED: it picks its own speed.
    pub refused: Option<String>,
}

/// Snaps `requested` to the write speeds the drive lists (growisofs `set_speed_B6h`,
/// growisofs_mmc.cpp:1087): the fastest not above it (2 % tolerance for rounding of "4x"), else
/// the slowest. Returns the index into `listed`.
pub fn snap_speed(requested: u32, listed: &[u32]) -> Option<usize> {
    let limit = u64::from(requested) * 102 / 100;
    let below = listed
        .iter()
        .enumerate()
        .filter(|(_, &k)| k > 0 && u64::from(k) <= limit)
        .max_by_key(|(_, &k)| k)
        .map(|(i, _)| i);
    below.or_else(|| {
        listed
            .iter()
            .enumerate()
            .filter(|(_, &k)| k > 0)
            .min_by_key(|(_, &k)| k)
            .map(|(i, _)| i)
    })
}

/// Sets the write speed for `-S`: GET PERFORMANCE (03h) → snap → SET STREAMING from LBA 0 to
/// the listed descriptor's end LBA (else `disc_end_lba`, the disc's last sector, as libburn and
/// growisofs do), read speed from the same descriptor (else [`MAX_READ_KBS`]).
pub fn set_write_speed(d: &mut dyn Drive, requested_kbs: u32, disc_end_lba: u32) -> SpeedChoice {
    let listed = with_retry(d, |d| d.write_speeds()).unwrap_or_default();
    let listed_kbs: Vec<u32> = listed.iter().map(|&(_, _, w)| w).collect();
    let (end, read, write) = match snap_speed(requested_kbs, &listed_kbs) {
        Some(i) => {
            let (end, read, write) = listed[i];
            let end = if end > 0 { end } else { disc_end_lba };
            let read = if read > 0 { read } else { MAX_READ_KBS };
            (end, read, write)
        }
        None => (disc_end_lba, MAX_READ_KBS, requested_kbs),
    };
    let refused = d.set_speed(end, read, write).err().map(|e| e.to_string());
    SpeedChoice {
        requested_kbs,
        listed_kbs,
        sent_kbs: write,
        refused,
    }
}

impl SpeedChoice {
    /// "-S 4x: asked for 4.0x of the listed 2.0x, 4.0x, 6.0x, 8.0x".
    pub fn describe(&self) -> String {
        let x = |k: u32| format!("{:.1}x", f64::from(k) / f64::from(BD_1X_KBS));
        let listed = if self.listed_kbs.is_empty() {
            "the drive lists no write speeds".to_string()
        } else {
            let v: Vec<String> = self.listed_kbs.iter().map(|&k| x(k)).collect();
            format!("of the listed {}", v.join(", "))
        };
        let mut s = format!(
            "-S {}: asked the drive for {} ({} kB/s) {listed}",
            x(self.requested_kbs),
            x(self.sent_kbs),
            self.sent_kbs
        );
        if let Some(e) = &self.refused {
            s.push_str(&format!("; the drive refused it ({e}) and picks its own"));
        }
        s
    }
}

/// What `burn` reports once per disc, so a bug report carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveLimits {
    /// Largest transfer of one command (bytes), and the sectors per WRITE / READ chosen from it.
    pub max_transfer: usize,
    pub write_sectors: u64,
    pub read_sectors: u64,
    /// Write speed in effect (GET PERFORMANCE type 00h), kB/s.
    pub write_kbs: Option<u32>,
    /// Write buffer size (READ BUFFER CAPACITY), bytes.
    pub buffer_bytes: Option<u32>,
}

impl DriveLimits {
    /// Asks the drive (two quick queries; either may be unsupported).
    pub fn query(d: &mut dyn Drive) -> DriveLimits {
        let max_transfer = d.max_transfer();
        DriveLimits {
            max_transfer,
            write_sectors: transfer::write_sectors(max_transfer),
            read_sectors: transfer::read_sectors(max_transfer),
            write_kbs: with_retry(d, |d| d.current_write_speed()).ok().flatten(),
            buffer_bytes: with_retry(d, |d| d.buffer_capacity())
                .ok()
                .map(|(size, _)| size)
                .filter(|&b| b > 0),
        }
    }

    /// "transfer limit 128 KiB (WRITE 64 KiB, READ 128 KiB), write speed 8.0x (35960 kB/s),
    /// buffer 4.0 MiB".
    pub fn describe(&self) -> String {
        let ss = SECTOR_SIZE;
        let speed = match self.write_kbs {
            Some(k) => format!("{:.1}x ({k} kB/s)", f64::from(k) / f64::from(BD_1X_KBS)),
            None => "not reported".into(),
        };
        let buffer = match self.buffer_bytes {
            Some(b) => crate::util::capacity::human_bytes(u64::from(b)),
            None => "not reported".into(),
        };
        format!(
            "transfer limit {} (WRITE {}, READ {}), write speed {speed}, buffer {buffer}",
            transfer::describe_limit(self.max_transfer),
            transfer::describe_limit(self.write_sectors as usize * ss),
            transfer::describe_limit(self.read_sectors as usize * ss),
        )
    }
}

/// What happened while writing, for the log line after the disc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Sectors written (the image padded to whole 64 KiB clusters).
    pub sectors: u64,
    /// WRITEs the drive refused with 2/04/08 (buffer full) and that were sent again.
    pub buffer_full: u64,
    /// WRITEs repeated after a reset or timeout, once READ TRACK INFORMATION showed the drive
    /// had not taken them.
    pub repeated: u64,
}

/// Writes `image_sectors` sectors of `image` from LBA 0, padding the last cluster with zeros.
/// `progress(sectors_written)` after every command.
pub fn write_image(
    d: &mut dyn Drive,
    image: &File,
    image_sectors: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<WriteStats, BurnError> {
    let total = padded_sectors(image_sectors);
    let track = u32::from(last_track(d)?);
    let per_command = transfer::write_sectors(d.max_transfer());
    let ss = SECTOR_SIZE as u64;
    let mut buf = vec![0u8; (per_command * ss) as usize];
    let mut stats = WriteStats::default();
    let mut lba = 0u64;
    while lba < total {
        let n = per_command.min(total - lba);
        let chunk = &mut buf[..(n * ss) as usize];
        let real = image_sectors.saturating_sub(lba).min(n);
        chunk.fill(0);
        if real > 0 {
            image.read_exact_at(&mut chunk[..(real * ss) as usize], lba * ss)?;
        }
        write_chunk(d, track, lba, chunk, &mut stats)?;
        lba += n;
        progress(lba);
    }
    stats.sectors = total;
    Ok(stats)
}

/// How a failed WRITE is handled.
enum WriteFailure {
    /// The drive refused it without taking the data (NOT READY 04/xx: buffer full, busy;
    /// BUSY status): send the same WRITE again at once.
    Refused,
    /// A reset or timeout may have hidden a success: ask for the next writable address.
    Uncertain,
    /// Medium error, illegal request, anything else: stop.
    Fatal,
}

fn classify_write_failure(e: &MmcError) -> WriteFailure {
    match e {
        MmcError::Busy { .. } => WriteFailure::Refused,
        MmcError::Check { sense: Some(s), .. }
            if s.key == SenseKey::NotReady && s.asc == 0x04 && s.action() == Action::Retry =>
        {
            WriteFailure::Refused
        }
        e if e.action() == Action::Retry => WriteFailure::Uncertain,
        _ => WriteFailure::Fatal,
    }
}

/// The next writable address of `track`, when the drive reports one.
fn next_writable(d: &mut dyn Drive, track: u32) -> Option<u64> {
    with_retry(d, |d| d.track_information(TrackAddress::Track(track)))
        .ok()
        .and_then(|t| t.next_writable)
        .map(u64::from)
}

/// One WRITE(10). Refused for a full buffer (2/04/08): sent again after 2–25 ms, nothing in
/// between. Lost to a reset or timeout: repeated only when the NWA shows the drive did not take
/// it (NWA moved by the chunk: done; unchanged: write again; anything else: stop).
fn write_chunk(
    d: &mut dyn Drive,
    track: u32,
    lba: u64,
    chunk: &[u8],
    stats: &mut WriteStats,
) -> Result<(), BurnError> {
    let n = (chunk.len() / SECTOR_SIZE) as u64;
    let lba32 = u32::try_from(lba).map_err(|_| BurnError::Position {
        expected: lba,
        got: None,
    })?;
    let mut waited = Duration::ZERO;
    let mut pause = BUFFER_FULL_FIRST_PAUSE;
    let mut backoff = Duration::from_millis(100);
    loop {
        let err = match d.write_sectors(lba32, chunk) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let failure = if waited < RETRY_LIMIT {
            classify_write_failure(&err)
        } else {
            WriteFailure::Fatal
        };
        match failure {
            WriteFailure::Refused => {
                stats.buffer_full += 1;
                d.sleep(pause);
                waited += pause;
                pause = (pause * 2).min(BUFFER_FULL_MAX_PAUSE);
            }
            WriteFailure::Uncertain => {
                d.sleep(backoff);
                waited += backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                match next_writable(d, track) {
                    Some(w) if w == lba + n => return Ok(()),
                    Some(w) if w == lba => stats.repeated += 1,
                    None => stats.repeated += 1,
                    got => {
                        return Err(BurnError::Position {
                            expected: lba,
                            got: got.map(|g| g as u32),
                        })
                    }
                }
            }
            WriteFailure::Fatal => {
                // Where the drive stopped, if it can say (the failing sector on write-once media).
                let at = next_writable(d, track)
                    .filter(|&w| w >= lba && w < lba + n)
                    .unwrap_or(lba);
                return Err(BurnError::Write {
                    lba: at,
                    source: err,
                });
            }
        }
    }
}

/// A step of finalising, for progress messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizeStep {
    SynchronizeCache,
    CloseTrack,
    CloseSession,
}

impl FinalizeStep {
    pub fn name(self) -> &'static str {
        match self {
            FinalizeStep::SynchronizeCache => "SYNCHRONIZE CACHE",
            FinalizeStep::CloseTrack => "CLOSE TRACK",
            FinalizeStep::CloseSession => "CLOSE SESSION",
        }
    }
}

/// How a long command went.
enum Sent {
    /// The drive accepted it (with Immed it now works in the background).
    Accepted,
    /// The transport timed out or was reset: the drive may or may not be doing it. Never sent
    /// again; the caller polls and checks the result.
    Uncertain(String),
}

/// Sends a long command (Immed) once. A drive that refuses it because it is still busy with the
/// previous one (2/04/07, 2/04/08) or reports a unit attention did not take it: wait until it
/// is ready and send again. A transport timeout or reset is never answered by sending again.
fn send_long(
    d: &mut dyn Drive,
    step: FinalizeStep,
    send: &mut dyn FnMut(&mut dyn Drive) -> Result<(), MmcError>,
    progress: &mut dyn FnMut(FinalizeStep, Option<f64>),
) -> Result<Sent, MmcError> {
    // A drive that keeps refusing after it said it was ready, eight times over, is not going
    // to take the command: its last refusal is the error.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match send(d) {
            Ok(()) => return Ok(Sent::Accepted),
            Err(MmcError::Transport {
                source: s @ (TransportError::Timeout(_) | TransportError::Reset),
                ..
            }) => return Ok(Sent::Uncertain(s.to_string())),
            Err(e) if e.action() == Action::Retry && attempts < 8 => poll_ready(d, step, progress)?,
            Err(e) => return Err(e),
        }
    }
}

/// Polls TEST UNIT READY every 0.5 s until the drive is ready, for up to
/// [`LONG_OPERATION_LIMIT`] (libburn `spc_wait_unit_attention`, spc.c:150): 2/04/xx and unit
/// attentions mean wait (reporting the drive's progress indication), 2/04/02 and 2/04/03 fail at
/// once, 2/04/00 for more than 5 s counts as ready, no medium fails.
pub fn poll_ready(
    d: &mut dyn Drive,
    step: FinalizeStep,
    progress: &mut dyn FnMut(FinalizeStep, Option<f64>),
) -> Result<(), MmcError> {
    let mut waited = Duration::ZERO;
    let mut cause_unknown = Duration::ZERO;
    loop {
        match d.test_unit_ready() {
            Ok(()) => return Ok(()),
            Err(e) => {
                let sense = e.sense();
                match e.action() {
                    Action::Retry => {
                        let s = sense.filter(|s| s.key == SenseKey::NotReady);
                        if s.is_some_and(|s| s.asc == 0x04 && s.ascq == 0x00) {
                            cause_unknown += POLL_INTERVAL;
                            if cause_unknown > CLUELESS_NOT_READY {
                                return Ok(());
                            }
                        }
                        progress(
                            step,
                            s.and_then(|s| s.progress).map(|p| f64::from(p) / 65536.0),
                        );
                    }
                    Action::NoMedium => return Err(e),
                    _ => return Err(e),
                }
            }
        }
        if waited >= LONG_OPERATION_LIMIT {
            return Err(MmcError::NotReady(LONG_OPERATION_LIMIT));
        }
        d.sleep(POLL_INTERVAL);
        waited += POLL_INTERVAL;
    }
}

/// SYNCHRONIZE CACHE, CLOSE TRACK (the last track, from READ DISC INFORMATION), then CLOSE
/// SESSION finalising the disc (function 110b, as libburn for BD-R; 010b on drives that refuse
/// it), each with Immed=1 followed by TEST UNIT READY polling; then READ DISC INFORMATION must
/// show the disc closed. `progress(step, fraction)` while the drive works.
pub fn finalize(
    d: &mut dyn Drive,
    progress: &mut dyn FnMut(FinalizeStep, Option<f64>),
) -> Result<(), BurnError> {
    let track = last_track(d)?;
    let mut uncertain: Option<(FinalizeStep, String)> = None;
    let mut note = |step, sent| {
        if let Sent::Uncertain(cause) = sent {
            uncertain = Some((step, cause));
        }
    };
    let step = FinalizeStep::SynchronizeCache;
    note(
        step,
        send_long(d, step, &mut |d| d.synchronize_cache(true), progress)?,
    );
    poll_ready(d, step, progress)?;
    let step = FinalizeStep::CloseTrack;
    note(
        step,
        send_long(
            d,
            step,
            &mut |d| d.close_track_session(true, 1, track),
            progress,
        )?,
    );
    poll_ready(d, step, progress)?;
    let step = FinalizeStep::CloseSession;
    let sent = match send_long(
        d,
        step,
        &mut |d| d.close_track_session(true, 6, 0),
        progress,
    ) {
        Err(e) if e.action() == Action::Illegal => send_long(
            d,
            step,
            &mut |d| d.close_track_session(true, 2, 0),
            progress,
        )?,
        r => r?,
    };
    note(step, sent);
    poll_ready(d, step, progress)?;
    let disc = with_retry(d, |d| d.disc_information())?;
    let closed = disc.status == DiscStatus::Complete
        || (disc.status == DiscStatus::Appendable && disc.last_session_state == 3);
    if !closed {
        let (step, cause) = uncertain.unwrap_or((step, "no error reported".into()));
        return Err(BurnError::NotFinalised {
            step: step.name(),
            cause,
            status: match disc.status {
                DiscStatus::Blank => "blank",
                DiscStatus::Appendable => "still open (appendable)",
                DiscStatus::Complete => "complete",
                DiscStatus::Other => "in an unknown state",
            }
            .into(),
        });
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
    /// Sectors per READ(12), from the drive's transfer limit ([`transfer::read_sectors`]).
    per_command: u64,
}

impl<'a> BurnReadback<'a> {
    /// Reads the first `sectors` sectors of the disc in `drive`.
    pub fn new(drive: &'a mut dyn Drive, sectors: u64) -> Self {
        let name = drive.name();
        let per_command = transfer::read_sectors(drive.max_transfer());
        BurnReadback {
            drive: Mutex::new(drive),
            sectors,
            name,
            per_command,
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
            .chunks_mut(self.per_command as usize * SECTOR_SIZE)
            .enumerate()
        {
            let at = lba + i as u64 * self.per_command;
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
        assert_eq!((n.sectors, last), (1024, 1024));
        finalize(&mut d, &mut |_, _| {}).unwrap();
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

    fn commands(d: &SimDrive, name: &str) -> usize {
        d.log.iter().filter(|l| l.contains(name)).count()
    }

    #[test]
    fn writes_and_reads_stay_within_the_transfer_limit() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.max_transfer = 32 << 10;
        let mut d = SimDrive::in_memory(cfg);
        let (f, data) = image(300);
        write_image(&mut d, f.as_file(), 300, &mut |_| {}).unwrap();
        finalize(&mut d, &mut |_, _| {}).unwrap();
        let rb = BurnReadback::new(&mut d, 300);
        let mut buf = vec![0u8; 300 * 2048];
        rb.read_sectors(0, &mut buf).unwrap();
        assert_eq!(buf, data);
        assert!(d.log.iter().all(|l| !l.contains("EIO")), "{:?}", d.log);
        assert!(d
            .log
            .iter()
            .filter(|l| l.contains("WRITE10") || l.contains("READ12"))
            .all(|l| l.contains(" n=16 ") || l.contains(" n=12 ")));
        let limits = DriveLimits::query(&mut d);
        assert_eq!((limits.write_sectors, limits.read_sectors), (16, 16));
        assert!(limits.describe().starts_with("transfer limit 32 KiB"));
    }

    #[test]
    fn a_fifteen_minute_finalise_is_polled_not_resent() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.close_session_ms = 15 * 60 * 1000;
        let mut d = SimDrive::in_memory(cfg);
        let (f, _) = image(64);
        write_image(&mut d, f.as_file(), 64, &mut |_| {}).unwrap();
        let t0 = d.clock();
        let mut seen = Vec::new();
        finalize(&mut d, &mut |step, p| seen.push((step, p))).unwrap();
        assert!(d.clock() - t0 >= Duration::from_secs(900));
        assert_eq!(
            commands(&d, "CLOSE_TRACK_SESSION function=6 number=0 immed"),
            1
        );
        assert_eq!(
            commands(&d, "CLOSE_TRACK_SESSION function=1 number=1 immed"),
            1
        );
        assert_eq!(commands(&d, "SYNCHRONIZE_CACHE immed"), 1);
        // Progress climbs while finalising.
        let p: Vec<f64> = seen
            .iter()
            .filter(|(s, _)| *s == FinalizeStep::CloseSession)
            .filter_map(|(_, p)| *p)
            .collect();
        assert!(
            p.len() > 1000 && p.windows(2).all(|w| w[0] <= w[1]),
            "{}",
            p.len()
        );
        assert!(identify(&mut d).unwrap().describe().contains("complete"));
    }

    #[test]
    fn a_lost_close_answer_is_checked_not_resent() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.lost_answers = vec!["CLOSE_TRACK_SESSION function=6".into()];
        let mut d = SimDrive::in_memory(cfg);
        let (f, _) = image(64);
        write_image(&mut d, f.as_file(), 64, &mut |_| {}).unwrap();
        finalize(&mut d, &mut |_, _| {}).unwrap();
        assert_eq!(commands(&d, "function=6"), 1);
        assert_eq!(commands(&d, "function=2"), 0);
        // A reset that wiped the close before the drive acted on it: not sent again, and
        // the disc status says so.
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.lost_answers = vec!["reset:CLOSE_TRACK_SESSION function=6".into()];
        let mut d = SimDrive::in_memory(cfg);
        write_image(&mut d, f.as_file(), 64, &mut |_| {}).unwrap();
        let e = finalize(&mut d, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, BurnError::NotFinalised { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("CLOSE SESSION was interrupted (bus or device reset)"),
            "{msg}"
        );
        assert_eq!(commands(&d, "function=6"), 1);
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_not_written_twice() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 4096));
        cfg.lost_answers = vec!["WRITE10 lba=64".into()];
        let mut d = SimDrive::in_memory(cfg);
        let (f, data) = image(200);
        let stats = write_image(&mut d, f.as_file(), 200, &mut |_| {}).unwrap();
        assert_eq!((stats.repeated, stats.buffer_full), (0, 0));
        assert_eq!(commands(&d, "WRITE10 lba=64 "), 1);
        // The NWA came from track 1, which a BD drive answers (FFh it refuses).
        assert!(
            d.log.iter().all(|l| !l.contains("CHECK ILLEGAL")),
            "{:?}",
            d.log
        );
        finalize(&mut d, &mut |_, _| {}).unwrap();
        assert_eq!(&d.medium_bytes(0, 200).unwrap()[..], &data[..]);
    }

    #[test]
    fn a_drive_that_reports_every_buffer_fill_is_fed_without_underruns() {
        let mut cfg = SimConfig::with_medium(Medium::blank("b", Profile::BdR, 100_000));
        cfg.buffer_full_long_write = true;
        cfg.buffer_kb = 2048;
        let mut d = SimDrive::in_memory(cfg);
        let sectors = 20_000; // 40 MB: about 20 buffer fills
        let (f, data) = image(sectors);
        let t0 = d.clock();
        let stats = write_image(&mut d, f.as_file(), sectors, &mut |_| {}).unwrap();
        let secs = (d.clock() - t0).as_secs_f64();
        assert!(stats.buffer_full > 20, "{stats:?}");
        assert_eq!(d.config.underruns, 0, "the laser stopped");
        // Close to the drive's 8x (36 MB/s) despite the refusals.
        let mbps = (sectors * 2048) as f64 / secs / 1e6;
        assert!(mbps > 32.0, "{mbps} MB/s");
        // No NWA query between WRITEs: 2/04/08 means the drive did not take the data.
        let first = d.log.iter().position(|l| l.contains("WRITE10")).unwrap();
        assert!(d.log[first..]
            .iter()
            .all(|l| !l.contains("READ_TRACK_INFORMATION")));
        finalize(&mut d, &mut |_, _| {}).unwrap();
        assert_eq!(&d.medium_bytes(0, sectors).unwrap()[..], &data[..]);
    }

    #[test]
    fn pow_media_are_refused_before_writing() {
        let mut m = Medium::blank("pow", Profile::BdR, 4096);
        m.pow = true;
        let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
        let info = identify(&mut d).unwrap();
        let e = check_blank_bd_r(&info).unwrap_err();
        assert!(matches!(e, BurnError::Pow(_)), "{e}");
        assert!(e.to_string().contains("Pseudo-Overwrite"), "{e}");
    }

    #[test]
    fn speed_snapping() {
        let listed = [35_960, 26_970, 17_980, 8_990];
        assert_eq!(snap_speed(17_980, &listed), Some(2));
        assert_eq!(snap_speed(17_900, &listed), Some(2), "within 2 %");
        assert_eq!(snap_speed(22_000, &listed), Some(2));
        assert_eq!(snap_speed(1_000_000, &listed), Some(0));
        assert_eq!(
            snap_speed(4_495, &listed),
            Some(3),
            "slowest when all are faster"
        );
        assert_eq!(snap_speed(4_495, &[]), None);
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "b",
            Profile::BdR,
            4096,
        )));
        let c = set_write_speed(&mut d, 6 * BD_1X_KBS + 100, 4095);
        assert_eq!((c.sent_kbs, c.refused.clone()), (26_970, None));
        assert!(c.describe().contains("6.0x"), "{}", c.describe());
        assert_eq!(DriveLimits::query(&mut d).write_kbs, Some(26_970));
    }

    #[test]
    fn polling_fails_fast_on_conditions_that_never_clear() {
        // A drive stuck in 2/04/02 (initializing command required): one poll, then the error.
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "b",
            Profile::BdR,
            4096,
        )));
        d.config.busy_until_us = u64::MAX;
        d.config.busy_ascq = 0x02;
        let t0 = d.clock();
        let e = poll_ready(&mut d, FinalizeStep::CloseSession, &mut |_, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("initializing command required"),
            "{e}"
        );
        assert!(d.clock() - t0 < Duration::from_secs(1));
        // 2/04/00 ("cause not reportable") for more than 5 s counts as ready (libburn).
        d.config.busy_ascq = 0x00;
        let t0 = d.clock();
        poll_ready(&mut d, FinalizeStep::CloseSession, &mut |_, _| {}).unwrap();
        let waited = d.clock() - t0;
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(7));
        // Anything that clears is waited out, up to the hour.
        d.config.busy_until_us = d.config.clock_us + 3_000_000_000; // 50 minutes
        d.config.busy_ascq = 0x07;
        poll_ready(&mut d, FinalizeStep::CloseSession, &mut |_, _| {}).unwrap();
        d.config.busy_until_us = d.config.clock_us + 4_000_000_000; // 67 minutes: too long
        let e = poll_ready(&mut d, FinalizeStep::CloseSession, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, MmcError::NotReady(_)), "{e}");
    }
}
