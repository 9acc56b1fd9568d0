//! `SimDrive`: a simulated BD writer that implements [`Drive`] at the CDB level.
//!
//! It answers the MMC-6 / SPC-4 commands bd-archive sends the way a real BD-RE/BD-R drive does
//! (same response layouts, same sense codes), keeps a simulated clock instead of sleeping, and
//! can inject the failures real drives and discs produce: write errors (3/0C/00), unreadable
//! sectors (3/11/00), silently corrupted sectors, slow sectors, "becoming ready" (2/04/01) after a
//! load, "long write in progress" (2/04/08) after SYNCHRONIZE CACHE / CLOSE, and a unit attention
//! (6/29/00, bus reset) after N commands.
//!
//! It also refuses what real drives and the Linux kernel refuse, so tests catch code that only
//! works on a forgiving simulator: a transfer above `max_transfer` fails with EIO before the
//! drive sees it; READ TRACK INFORMATION of track FFh on BD media gets 5/24/00; flushes and
//! closes take simulated time (Immed=1: answered at once, then 2/04/08 or 2/04/07 with progress;
//! without Immed: a transport timeout past the command's timeout while the drive carries on); a
//! POW-formatted BD-R cannot be closed; SET STREAMING with FFFFFFFFh sizes is refused; a
//! modelled write buffer answers 2/04/08 when full and counts underruns; chosen answers can be
//! lost (`lost_answers`).
//!
//! Two ways to build one:
//! - in memory ([`SimDrive::in_memory`]): for unit tests; contents live in `Vec`s;
//! - file-backed ([`SimDrive::open_dir`], `-D sim:DIR` on the command line): the drive is
//!   described by `DIR/drive.json` (format: [`SimConfig`], documented in docs/optical.md), media
//!   contents are sparse files in DIR, every command is appended to `DIR/commands.log`, and the
//!   state (tray, loaded medium, what was written) persists across invocations, so a test can
//!   `burn -D sim:DIR`, then `verify -D sim:DIR`.
//!
//! Tray model: the drive holds at most one medium. Opening the tray (START STOP UNIT LoEj) leaves
//! the medium in the tray, out of reach; closing the tray with media waiting in `queue` swaps:
//! the medium in the tray goes to `removed` and the first queued one is loaded. With an empty
//! queue, closing the tray reloads whatever is in it (the user pushed the tray back in).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cdb::op;
use super::drive::{CommandStatus, DataPhase, Drive, TransportError};
use super::sense::{Sense, SenseKey};
use crate::sector::SECTOR_SIZE;

/// BD 1x in kB/s (MMC speeds count 1000 bytes per kB).
pub const BD_1X_KBS: u32 = 4495;
const SS: u64 = SECTOR_SIZE as u64;
/// Host → drive transfer rate when the write buffer is modelled (SATA, about 150 MB/s).
const HOST_BYTES_PER_SEC: f64 = 150e6;

/// Errors opening or saving a file-backed simulated drive.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulated drive {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("simulated drive {path}: invalid drive.json: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("simulated drive {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

/// Medium type, by MMC profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// 0x41 BD-R sequential recording mode: write once, sequential at the NWA.
    #[serde(rename = "bd-r")]
    BdR,
    /// 0x43 BD-RE: rewritable, random writes, formatted.
    #[serde(rename = "bd-re")]
    BdRe,
    /// 0x1B DVD+R: write once, sequential.
    #[serde(rename = "dvd+r")]
    DvdPlusR,
    /// 0x40 BD-ROM: read only.
    #[serde(rename = "bd-rom")]
    BdRom,
}

impl Profile {
    /// MMC profile number (MMC-6 Table 91).
    pub fn number(self) -> u16 {
        match self {
            Profile::BdR => 0x41,
            Profile::BdRe => 0x43,
            Profile::DvdPlusR => 0x1B,
            Profile::BdRom => 0x40,
        }
    }
    fn is_bd(self) -> bool {
        matches!(self, Profile::BdR | Profile::BdRe | Profile::BdRom)
    }
    fn write_once(self) -> bool {
        matches!(self, Profile::BdR | Profile::DvdPlusR)
    }
    fn default_capacity(self) -> u64 {
        match self {
            Profile::BdR => 12_219_392,
            Profile::BdRe => 11_826_176,
            Profile::DvdPlusR => 2_295_104,
            Profile::BdRom => 0,
        }
    }
    fn one_x_kbs(self) -> u32 {
        match self {
            Profile::DvdPlusR => 1385,
            _ => BD_1X_KBS,
        }
    }
}

/// Recording state of a medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MediumState {
    #[default]
    Blank,
    /// Written but not finalised: another session/track may follow.
    Appendable,
    /// Finalised (closed): nothing more can be written.
    Complete,
}

/// A medium's capacity: sectors, or a preset name (`bd25`, `bd50`, `bd100`, `bd128`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Capacity {
    Sectors(u64),
    Preset(String),
}

/// One LBA or a half-open range `[start, end)` of LBAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LbaRange {
    One(u64),
    Range([u64; 2]),
}

impl LbaRange {
    fn bounds(self) -> (u64, u64) {
        match self {
            LbaRange::One(l) => (l, l + 1),
            LbaRange::Range([a, b]) => (a, b.max(a)),
        }
    }
    /// First LBA of `[lba, lba+n)` inside this range.
    fn first_in(self, lba: u64, n: u64) -> Option<u64> {
        let (a, b) = self.bounds();
        let lo = a.max(lba);
        let hi = b.min(lba + n);
        (lo < hi).then_some(lo)
    }
    fn overlap(self, lba: u64, n: u64) -> u64 {
        let (a, b) = self.bounds();
        b.min(lba + n).saturating_sub(a.max(lba))
    }
}

/// Sectors that read slowly: each costs `ms` of simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowRange {
    pub lba: LbaRange,
    pub ms: u64,
}

/// Deterministic scattered damage: the disc is cut into runs of `run` sectors and each run is
/// unreadable with probability `fraction` (a hash of `seed` and the run number decides), so
/// about `fraction` of all sectors are lost in bursts of `run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomDamage {
    pub fraction: f64,
    #[serde(default = "default_run")]
    pub run: u64,
    #[serde(default)]
    pub seed: u64,
}

fn default_run() -> u64 {
    16
}

impl RandomDamage {
    /// Whether `lba` lies in a damaged run.
    pub fn is_bad(&self, lba: u64) -> bool {
        let mut x = (lba / self.run.max(1)) ^ self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64 finaliser
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        ((x >> 11) as f64 / (1u64 << 53) as f64) < self.fraction
    }

    /// First damaged LBA of `[lba, lba + n)`.
    fn first_in(&self, lba: u64, n: u64) -> Option<u64> {
        (lba..lba + n).find(|&l| self.is_bad(l))
    }
}

/// One disc: what it is, what is on it, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Medium {
    /// Name used in the log and for the default contents file (`<label>.img`).
    pub label: String,
    pub profile: Profile,
    /// Total user sectors; default per profile (BD-R 25 GB, BD-RE 25 GB formatted, DVD+R 4.7 GB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    #[serde(default)]
    pub state: MediumState,
    /// Sectors recorded (the next writable address on write-once media). Default: 0 when blank,
    /// otherwise the length of the contents file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
    /// Number of sessions on the disc (default 1).
    #[serde(default = "one")]
    pub sessions: u8,
    /// A track is open for writing (written, not yet closed).
    #[serde(default)]
    pub track_open: bool,
    /// Contents file, relative to DIR (file-backed drives); default `<label>.img`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
    /// WRITE covering one of these fails with 3/0C/00 (the sectors before it are recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_errors: Vec<LbaRange>,
    /// READ covering one of these fails with 3/11/00 and transfers nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<LbaRange>,
    /// READ returns these sectors with bytes flipped (a drive whose EDC let damage through).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<LbaRange>,
    /// Sectors that cost extra simulated time to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow: Vec<SlowRange>,
    /// Simulated time a READ failing on an unreadable sector costs (the drive's own retries
    /// before it gives up), in ms. Default 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_ms: u64,
    /// Scattered unreadable sectors without listing them: see [`RandomDamage`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_unreadable: Option<RandomDamage>,
    /// A BD-R formatted for Pseudo-Overwrite: GET CONFIGURATION reports feature 0038h current,
    /// READ FORMAT CAPACITIES a formatted disc, and closing the session fails with 5/24/00
    /// (Debian #713016).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pow: bool,
    /// In-memory contents (in-memory drives only).
    #[serde(skip)]
    pub data: Vec<u8>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn one() -> u8 {
    1
}

impl Medium {
    /// A blank medium of `profile` with `sectors` capacity.
    pub fn blank(label: &str, profile: Profile, sectors: u64) -> Medium {
        Medium {
            label: label.to_string(),
            profile,
            capacity: Some(Capacity::Sectors(sectors)),
            state: MediumState::Blank,
            written: None,
            sessions: 1,
            track_open: false,
            contents: None,
            write_errors: Vec::new(),
            unreadable: Vec::new(),
            corrupt: Vec::new(),
            slow: Vec::new(),
            unreadable_ms: 0,
            random_unreadable: None,
            pow: false,
            data: Vec::new(),
        }
    }

    /// A finalised medium holding `data` (padded to whole sectors).
    pub fn recorded(label: &str, profile: Profile, data: Vec<u8>) -> Medium {
        let mut m = Medium::blank(label, profile, 0);
        let sectors = (data.len() as u64).div_ceil(SS);
        m.capacity = Some(Capacity::Sectors(sectors.max(profile.default_capacity())));
        m.state = MediumState::Complete;
        m.written = Some(sectors);
        m.data = data;
        m
    }

    /// Capacity in sectors (presets resolved; unknown preset names give 0).
    pub fn capacity_sectors(&self) -> u64 {
        match &self.capacity {
            Some(Capacity::Sectors(n)) => *n,
            Some(Capacity::Preset(p)) => crate::util::capacity::PRESETS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(p))
                .map(|&(_, s)| s)
                .unwrap_or(0),
            None => self.profile.default_capacity().max(self.written()),
        }
    }

    /// Recorded sectors (the NWA of write-once media).
    pub fn written(&self) -> u64 {
        match self.written {
            Some(w) => w,
            None if self.state == MediumState::Blank => 0,
            None => (self.data.len() as u64).div_ceil(SS),
        }
    }

    fn contents_name(&self) -> String {
        self.contents
            .clone()
            .unwrap_or_else(|| format!("{}.img", self.label))
    }

    /// Sectors a READ may address: what is recorded (write-once/ROM) or the whole formatted
    /// capacity (BD-RE).
    fn readable(&self) -> u64 {
        if self.profile == Profile::BdRe {
            self.capacity_sectors()
        } else {
            self.written()
        }
    }
}

/// The drive: identity, timing, failure injection, tray and media. This is `DIR/drive.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimConfig {
    #[serde(default = "default_vendor")]
    pub vendor: String,
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Maximum write speed as a multiple of the medium's 1x (BD: 4495 kB/s). Default 8.
    #[serde(default = "default_write_x")]
    pub max_write_x: f64,
    /// Read speed at the inner edge / outer edge (CAV), multiples of 1x. Default 4 / 12.
    #[serde(default = "default_read_inner")]
    pub read_x_inner: f64,
    #[serde(default = "default_read_outer")]
    pub read_x_outer: f64,
    /// After every load, this many commands answer 2/04/01 "becoming ready".
    #[serde(default)]
    pub becoming_ready_turs: u32,
    /// After SYNCHRONIZE CACHE / CLOSE TRACK/SESSION, this many commands answer 2/04/08.
    #[serde(default)]
    pub long_write_turs: u32,
    /// Once, after this many commands in total, the next command gets 6/29/00 (bus reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after_commands: Option<u64>,
    #[serde(default)]
    pub tray_open: bool,
    #[serde(default)]
    pub locked: bool,
    /// The medium in the drive (or in the open tray).
    #[serde(default)]
    pub medium: Option<Medium>,
    /// Media the "user" inserts, one per tray close.
    #[serde(default)]
    pub queue: Vec<Medium>,
    /// Media taken out of the tray, oldest first.
    #[serde(default)]
    pub removed: Vec<Medium>,
    /// Commands executed so far (persisted).
    #[serde(default)]
    pub commands: u64,
    /// Simulated time elapsed, in microseconds (persisted).
    #[serde(default)]
    pub clock_us: u64,
    /// Remaining "becoming ready" / "long write" answers.
    #[serde(default)]
    pub pending_not_ready: u32,
    #[serde(default)]
    pub pending_long_write: u32,
    /// A unit attention 6/28/00 (medium may have changed) is pending.
    #[serde(default)]
    pub pending_medium_changed: bool,
    /// Current write speed limit in kB/s (SET STREAMING / SET CD SPEED); 0 = maximum.
    #[serde(default)]
    pub write_kbs: u32,
    /// Real milliseconds each WRITE takes (default 0): lets a test interrupt a burn midway.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub real_ms_per_write: u64,
    /// Largest data phase of one command, in bytes (default 131 072, libata's ATAPI limit). A
    /// longer command fails as Linux fails it: EIO from SG_IO, nothing transferred, the drive
    /// never sees it.
    #[serde(default = "default_max_transfer")]
    pub max_transfer: u64,
    /// Simulated milliseconds SYNCHRONIZE CACHE, CLOSE TRACK and CLOSE SESSION (finalising)
    /// take. With Immed=1 the command returns at once and the drive answers 2/04/08 (flush) or
    /// 2/04/07 (close) with a progress indication until the time has passed; without Immed the
    /// command takes the time, and past its timeout it fails as a transport timeout while the
    /// drive carries on.
    #[serde(default = "default_sync_ms")]
    pub sync_cache_ms: u64,
    #[serde(default = "default_sync_ms")]
    pub close_track_ms: u64,
    #[serde(default = "default_close_session_ms")]
    pub close_session_ms: u64,
    /// Write speeds offered (GET PERFORMANCE type 03h), × 1x; SET STREAMING snaps to the
    /// fastest not above the request. Default 2, 4, 6, 8 (capped at `max_write_x`).
    #[serde(default = "default_write_speeds")]
    pub write_speeds_x: Vec<f64>,
    /// Write buffer size in KiB (READ BUFFER CAPACITY). Default 4096.
    #[serde(default = "default_buffer_kb")]
    pub buffer_kb: u64,
    /// Model the write buffer: WRITEs fill it at host speed, the laser drains it at the write
    /// speed, and a WRITE that does not fit is refused with 2/04/08 "long write in progress",
    /// as Pioneer drives do on every buffer fill. A buffer that runs empty before the last
    /// WRITE counts as an underrun.
    #[serde(default, skip_serializing_if = "is_false")]
    pub buffer_full_long_write: bool,
    /// State: bytes in the write buffer at `buffer_clock_us`; buffer underruns so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub buffer_level: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub buffer_clock_us: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub underruns: u64,
    /// State: a long operation runs from `busy_since_us` to `busy_until_us` (simulated clock);
    /// media access meanwhile answers 2/04/`busy_ascq`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy_since_us: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy_until_us: u64,
    #[serde(default)]
    pub busy_ascq: u8,
    /// Commands the drive executes but whose answer is lost (the host sees a transport timeout
    /// after the command's timeout), each once: prefixes of the log's command text, e.g.
    /// `"WRITE10 lba=640"` or `"CLOSE_TRACK_SESSION function=6"`. With a `reset:` prefix the
    /// command is lost to a bus reset before the drive acts on it (the host sees a reset, the
    /// next command a unit attention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_answers: Vec<String>,
}

fn default_sync_ms() -> u64 {
    2000
}
fn default_close_session_ms() -> u64 {
    30_000
}
fn default_write_speeds() -> Vec<f64> {
    vec![2.0, 4.0, 6.0, 8.0]
}
fn default_buffer_kb() -> u64 {
    4096
}

fn default_max_transfer() -> u64 {
    128 << 10
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_vendor() -> String {
    "BDSIM".into()
}
fn default_model() -> String {
    "BD-RE SIMULATOR".into()
}
fn default_revision() -> String {
    "1.00".into()
}
fn default_write_x() -> f64 {
    8.0
}
fn default_read_inner() -> f64 {
    4.0
}
fn default_read_outer() -> f64 {
    12.0
}

impl Default for SimConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

impl SimConfig {
    /// A closed drive holding `medium`.
    pub fn with_medium(medium: Medium) -> SimConfig {
        SimConfig {
            medium: Some(medium),
            ..SimConfig::default()
        }
    }

    /// Reads `DIR/drive.json`.
    pub fn load(dir: &Path) -> Result<SimConfig, SimError> {
        let path = dir.join("drive.json");
        let text = std::fs::read_to_string(&path).map_err(|source| SimError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| SimError::Json { path, source })
    }

    /// Writes `DIR/drive.json` (atomically: temporary file, then rename).
    pub fn save(&self, dir: &Path) -> Result<(), SimError> {
        let path = dir.join("drive.json");
        let tmp = dir.join("drive.json.tmp");
        let io = |source| SimError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|source| SimError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Puts the removed medium `label` back at the front of the queue (the user re-inserts a
    /// disc taken out earlier); returns whether it was found.
    pub fn reinsert(&mut self, label: &str) -> bool {
        match self.removed.iter().rposition(|m| m.label == label) {
            Some(i) => {
                let m = self.removed.remove(i);
                self.queue.insert(0, m);
                true
            }
            None => false,
        }
    }

    /// The user puts medium `label` (from `removed` or `queue`) into the drive and closes the
    /// tray: the medium that was there goes to `removed`, a unit attention is raised. Returns
    /// whether the medium was found.
    pub fn insert(&mut self, label: &str) -> bool {
        let m = if let Some(i) = self.removed.iter().rposition(|m| m.label == label) {
            self.removed.remove(i)
        } else if let Some(i) = self.queue.iter().position(|m| m.label == label) {
            self.queue.remove(i)
        } else {
            return self.medium.as_ref().is_some_and(|m| m.label == label) && {
                self.tray_open = false;
                true
            };
        };
        if let Some(old) = self.medium.replace(m) {
            self.removed.push(old);
        }
        self.tray_open = false;
        self.pending_medium_changed = true;
        self.pending_not_ready = self.becoming_ready_turs;
        true
    }

    /// Finds a medium by label wherever it is (drive, queue, removed).
    pub fn find(&self, label: &str) -> Option<&Medium> {
        self.medium
            .iter()
            .chain(self.queue.iter())
            .chain(self.removed.iter())
            .find(|m| m.label == label)
    }

    /// Simulated time elapsed.
    pub fn clock(&self) -> Duration {
        Duration::from_micros(self.clock_us)
    }
}

/// The simulated drive.
pub struct SimDrive {
    pub config: SimConfig,
    dir: Option<PathBuf>,
    log_file: Option<File>,
    files: HashMap<String, File>,
    /// In-memory command log (both kinds keep it; file-backed drives also append to the file).
    pub log: Vec<String>,
    dirty: bool,
}

type Reply = Result<CommandStatus, Sense>;

fn sense(key: u8, asc: u8, ascq: u8) -> Sense {
    Sense::new(SenseKey::from_u8(key), asc, ascq)
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}
fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Copies `resp` into the data-in buffer, truncated to the allocation length and buffer size.
fn reply_in(data: &mut DataPhase<'_>, resp: &[u8], alloc: usize) -> Reply {
    match data {
        DataPhase::In(buf) => {
            let n = resp.len().min(alloc).min(buf.len());
            buf[..n].copy_from_slice(&resp[..n]);
            Ok(CommandStatus::Good { transferred: n })
        }
        _ => Err(sense(5, 0x24, 0)),
    }
}

fn command_name(opcode: u8) -> &'static str {
    match opcode {
        op::TEST_UNIT_READY => "TEST_UNIT_READY",
        op::INQUIRY => "INQUIRY",
        op::START_STOP_UNIT => "START_STOP_UNIT",
        op::PREVENT_ALLOW_MEDIUM_REMOVAL => "PREVENT_ALLOW_MEDIUM_REMOVAL",
        op::READ_FORMAT_CAPACITIES => "READ_FORMAT_CAPACITIES",
        op::READ_CAPACITY_10 => "READ_CAPACITY",
        op::READ_10 => "READ10",
        op::WRITE_10 => "WRITE10",
        op::SYNCHRONIZE_CACHE_10 => "SYNCHRONIZE_CACHE",
        op::GET_CONFIGURATION => "GET_CONFIGURATION",
        op::GET_EVENT_STATUS_NOTIFICATION => "GET_EVENT_STATUS_NOTIFICATION",
        op::READ_DISC_INFORMATION => "READ_DISC_INFORMATION",
        op::READ_TRACK_INFORMATION => "READ_TRACK_INFORMATION",
        op::MODE_SENSE_10 => "MODE_SENSE10",
        op::CLOSE_TRACK_SESSION => "CLOSE_TRACK_SESSION",
        op::READ_BUFFER_CAPACITY => "READ_BUFFER_CAPACITY",
        op::GET_PERFORMANCE => "GET_PERFORMANCE",
        op::READ_12 => "READ12",
        op::WRITE_12 => "WRITE12",
        op::SET_STREAMING => "SET_STREAMING",
        op::SET_CD_SPEED => "SET_CD_SPEED",
        _ => "UNKNOWN",
    }
}

/// Minimum CDB length per opcode group (SPC-4 §4.2.5.1).
fn cdb_len(opcode: u8) -> usize {
    match opcode >> 5 {
        0 => 6,
        1 | 2 => 10,
        4 => 16,
        5 => 12,
        _ => 6,
    }
}

impl SimDrive {
    /// A drive living in memory only.
    pub fn in_memory(config: SimConfig) -> SimDrive {
        SimDrive {
            config,
            dir: None,
            log_file: None,
            files: HashMap::new(),
            log: Vec::new(),
            dirty: false,
        }
    }

    /// Opens the file-backed drive in DIR (`DIR/drive.json` must exist).
    pub fn open_dir(dir: &Path) -> Result<SimDrive, SimError> {
        if !dir.join("drive.json").is_file() {
            return Err(SimError::Invalid {
                path: dir.to_path_buf(),
                msg: "no drive.json in this directory (see docs/optical.md for its format)".into(),
            });
        }
        let mut config = SimConfig::load(dir)?;
        // Recorded media without an explicit `written`: what their contents file holds.
        let media = config
            .medium
            .iter_mut()
            .chain(config.queue.iter_mut())
            .chain(config.removed.iter_mut());
        for m in media {
            if m.written.is_none() && m.state != MediumState::Blank {
                let len = std::fs::metadata(dir.join(m.contents_name()))
                    .map(|md| md.len())
                    .unwrap_or(0);
                m.written = Some(len.div_ceil(SS));
            }
        }
        let log_path = dir.join("commands.log");
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| SimError::Io {
                path: log_path,
                source,
            })?;
        Ok(SimDrive {
            config,
            dir: Some(dir.to_path_buf()),
            log_file: Some(log_file),
            files: HashMap::new(),
            log: Vec::new(),
            dirty: false,
        })
    }

    /// Creates DIR with a fresh `drive.json` for `config` (tests' setup helper).
    pub fn create_dir(dir: &Path, config: &SimConfig) -> Result<(), SimError> {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        config.save(dir)
    }

    /// Saves the persistent state now (file-backed drives; also done on drop).
    pub fn save(&mut self) -> Result<(), SimError> {
        if let Some(dir) = &self.dir {
            self.config.save(dir)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Simulated time elapsed.
    pub fn clock(&self) -> Duration {
        self.config.clock()
    }

    fn advance(&mut self, d: Duration) {
        self.config.clock_us = self
            .config
            .clock_us
            .saturating_add(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Contents of the loaded medium, `sectors` from `lba` (unwritten parts read as zeros).
    pub fn medium_bytes(&mut self, lba: u64, sectors: u64) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; (sectors * SS) as usize];
        self.read_raw(lba, &mut out)?;
        Ok(out)
    }

    fn contents_file(&mut self, name: &str) -> std::io::Result<&File> {
        let dir = self.dir.clone().unwrap_or_default();
        if !self.files.contains_key(name) {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(name))?;
            self.files.insert(name.to_string(), f);
        }
        self.files
            .get(name)
            .ok_or_else(|| std::io::Error::other("contents file vanished"))
    }

    fn read_raw(&mut self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let off = lba * SS;
        buf.fill(0);
        let Some(m) = self.config.medium.as_ref() else {
            return Ok(());
        };
        if self.dir.is_none() {
            let start = (off as usize).min(m.data.len());
            let end = (off as usize + buf.len()).min(m.data.len());
            buf[..end - start].copy_from_slice(&m.data[start..end]);
            return Ok(());
        }
        let name = m.contents_name();
        let f = self.contents_file(&name)?;
        let mut done = 0;
        while done < buf.len() {
            let n = f.read_at(&mut buf[done..], off + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(())
    }

    fn write_raw(&mut self, lba: u64, data: &[u8]) -> std::io::Result<()> {
        let off = (lba * SS) as usize;
        if self.dir.is_none() {
            if let Some(m) = self.config.medium.as_mut() {
                if m.data.len() < off + data.len() {
                    m.data.resize(off + data.len(), 0);
                }
                m.data[off..off + data.len()].copy_from_slice(data);
            }
            return Ok(());
        }
        let Some(name) = self.config.medium.as_ref().map(|m| m.contents_name()) else {
            return Ok(());
        };
        self.contents_file(&name)?.write_all_at(data, off as u64)
    }

    fn record(&mut self, line: String) {
        if let Some(f) = self.log_file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        self.log.push(line);
    }

    fn one_x(&self) -> u32 {
        self.config
            .medium
            .as_ref()
            .map(|m| m.profile.one_x_kbs())
            .unwrap_or(BD_1X_KBS)
    }

    fn max_write_kbs(&self) -> u32 {
        (f64::from(self.one_x()) * self.config.max_write_x) as u32
    }

    fn write_kbs(&self) -> u32 {
        let max = self.max_write_kbs();
        match self.config.write_kbs {
            0 => max,
            v => v.min(max).max(1),
        }
    }

    fn read_kbs(&self, lba: u64) -> f64 {
        let cap = self
            .config
            .medium
            .as_ref()
            .map(|m| m.capacity_sectors())
            .unwrap_or(1)
            .max(1);
        let frac = (lba as f64 / cap as f64).clamp(0.0, 1.0);
        let x =
            self.config.read_x_inner + (self.config.read_x_outer - self.config.read_x_inner) * frac;
        f64::from(self.one_x()) * x.max(0.1)
    }

    /// Checks that a medium is loaded and ready for media access.
    fn need_medium(&mut self) -> Result<(), Sense> {
        if self.config.tray_open {
            return Err(sense(2, 0x3A, 0x02));
        }
        if self.config.medium.is_none() {
            return Err(sense(2, 0x3A, 0x01));
        }
        if self.config.pending_not_ready > 0 {
            self.config.pending_not_ready -= 1;
            return Err(sense(2, 0x04, 0x01));
        }
        if self.config.pending_long_write > 0 {
            self.config.pending_long_write -= 1;
            return Err(sense(2, 0x04, 0x08));
        }
        let (now, since, until) = (
            self.config.clock_us,
            self.config.busy_since_us,
            self.config.busy_until_us,
        );
        if now < until {
            let done = (now.saturating_sub(since)) as f64 / (until - since).max(1) as f64;
            let mut s = sense(2, 0x04, self.config.busy_ascq);
            s.progress = Some((done * 65536.0).min(65535.0) as u16);
            return Err(s);
        }
        Ok(())
    }

    /// A long operation (flush, close) of `ms` simulated milliseconds. With `immed` it runs in
    /// the background; without, the command waits for it — up to its timeout, after which the
    /// kernel gives up on the command (transport timeout) while the drive carries on.
    fn long_operation(&mut self, ms: u64, ascq: u8, immed: bool, timeout: Duration) -> Reply {
        let start = self.config.clock_us;
        let end = start.saturating_add(ms.saturating_mul(1000));
        if immed {
            self.config.busy_since_us = start;
            self.config.busy_until_us = end;
            self.config.busy_ascq = ascq;
            return Ok(CommandStatus::Good { transferred: 0 });
        }
        let d = Duration::from_millis(ms);
        if d > timeout {
            self.advance(timeout);
            self.config.busy_since_us = start;
            self.config.busy_until_us = end;
            self.config.busy_ascq = ascq;
            return Err(sense(0xB, 0x3E, 0x02));
        }
        self.advance(d);
        Ok(CommandStatus::Good { transferred: 0 })
    }

    /// Drains the write buffer for the time passed since the last look; returns whether it ran
    /// empty meanwhile.
    fn drain_buffer(&mut self) -> bool {
        let now = self.config.clock_us;
        let elapsed = now.saturating_sub(self.config.buffer_clock_us);
        self.config.buffer_clock_us = now;
        let drained = (elapsed as f64 / 1e6 * f64::from(self.write_kbs()) * 1000.0) as u64;
        let level = self.config.buffer_level;
        self.config.buffer_level = level.saturating_sub(drained);
        level > 0 && drained > level
    }

    fn dispatch(&mut self, cdb: &[u8], data: &mut DataPhase<'_>, timeout: Duration) -> Reply {
        let opcode = cdb[0];
        // Unit attentions first (never for INQUIRY, per SPC-4 §5.6 / REQUEST SENSE).
        if opcode != op::INQUIRY {
            self.unit_attention()?;
        }
        match opcode {
            op::TEST_UNIT_READY => {
                self.need_medium()?;
                Ok(CommandStatus::Good { transferred: 0 })
            }
            op::INQUIRY => self.cmd_inquiry(cdb, data),
            op::GET_CONFIGURATION => self.cmd_get_configuration(cdb, data),
            op::READ_DISC_INFORMATION => {
                self.need_medium()?;
                self.cmd_disc_information(cdb, data)
            }
            op::READ_TRACK_INFORMATION => {
                self.need_medium()?;
                self.cmd_track_information(cdb, data)
            }
            op::READ_FORMAT_CAPACITIES => self.cmd_format_capacities(cdb, data),
            op::READ_CAPACITY_10 => {
                self.need_medium()?;
                self.cmd_read_capacity(data)
            }
            op::READ_10 | op::READ_12 => {
                let (lba, n) = if opcode == op::READ_10 {
                    (be32(cdb, 2), u32::from(be16(cdb, 7)))
                } else {
                    (be32(cdb, 2), be32(cdb, 6))
                };
                self.need_medium()?;
                self.cmd_read(u64::from(lba), u64::from(n), data, timeout)
            }
            op::WRITE_10 | op::WRITE_12 => {
                let (lba, n) = if opcode == op::WRITE_10 {
                    (be32(cdb, 2), u32::from(be16(cdb, 7)))
                } else {
                    (be32(cdb, 2), be32(cdb, 6))
                };
                self.need_medium()?;
                self.cmd_write(u64::from(lba), u64::from(n), data, timeout)
            }
            op::SYNCHRONIZE_CACHE_10 => {
                self.need_medium()?;
                self.cmd_synchronize_cache(cdb, timeout)
            }
            op::CLOSE_TRACK_SESSION => {
                self.need_medium()?;
                self.cmd_close(cdb, timeout)
            }
            op::GET_PERFORMANCE => self.cmd_get_performance(cdb, data),
            op::READ_BUFFER_CAPACITY => self.cmd_buffer_capacity(cdb, data),
            op::START_STOP_UNIT => self.cmd_start_stop(cdb),
            op::PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.config.locked = cdb[4] & 0x01 != 0;
                Ok(CommandStatus::Good { transferred: 0 })
            }
            op::GET_EVENT_STATUS_NOTIFICATION => self.cmd_event_status(cdb, data),
            op::SET_STREAMING => self.cmd_set_streaming(cdb, data),
            op::SET_CD_SPEED => {
                let w = be16(cdb, 4);
                self.config.write_kbs = if w == 0xFFFF { 0 } else { u32::from(w) };
                Ok(CommandStatus::Good { transferred: 0 })
            }
            op::MODE_SENSE_10 => self.cmd_mode_sense(cdb, data),
            _ => Err(sense(5, 0x20, 0x00)),
        }
    }

    /// A pending unit attention (a reset after `reset_after_commands`, a medium change) is the
    /// answer to the next command, once.
    fn unit_attention(&mut self) -> Result<(), Sense> {
        if let Some(n) = self.config.reset_after_commands {
            if self.config.commands >= n {
                self.config.reset_after_commands = None;
                self.config.pending_medium_changed = false;
                return Err(sense(6, 0x29, 0x00));
            }
        }
        if self.config.pending_medium_changed {
            self.config.pending_medium_changed = false;
            return Err(sense(6, 0x28, 0x00));
        }
        Ok(())
    }

    fn cmd_read_capacity(&mut self, data: &mut DataPhase<'_>) -> Reply {
        let m = self.config.medium.as_ref().ok_or(sense(2, 0x3A, 0))?;
        let last = m.readable().saturating_sub(1).min(u64::from(u32::MAX)) as u32;
        let mut r = [0u8; 8];
        r[0..4].copy_from_slice(&last.to_be_bytes());
        r[4..8].copy_from_slice(&(SECTOR_SIZE as u32).to_be_bytes());
        reply_in(data, &r, 8)
    }

    fn cmd_synchronize_cache(&mut self, cdb: &[u8], timeout: Duration) -> Reply {
        self.config.pending_long_write = self.config.long_write_turs;
        // Flushing takes at least what the buffer still holds.
        self.drain_buffer();
        let flush_ms =
            self.config.buffer_level * 1000 / (u64::from(self.write_kbs()) * 1000).max(1);
        self.config.buffer_level = 0;
        let ms = self.config.sync_cache_ms.max(flush_ms);
        self.long_operation(ms, 0x08, cdb[1] & 0x02 != 0, timeout)
    }

    fn cmd_buffer_capacity(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        self.drain_buffer();
        let size = self
            .config
            .buffer_kb
            .saturating_mul(1024)
            .min(u64::from(u32::MAX));
        let free = size.saturating_sub(self.config.buffer_level);
        let mut r = vec![0u8; 12];
        r[0..2].copy_from_slice(&10u16.to_be_bytes());
        r[4..8].copy_from_slice(&(size as u32).to_be_bytes());
        r[8..12].copy_from_slice(&(free as u32).to_be_bytes());
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    fn cmd_inquiry(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        if cdb[1] & 0x01 != 0 {
            return Err(sense(5, 0x24, 0));
        }
        let mut r = vec![0u8; 96];
        r[0] = 0x05; // MMC device
        r[1] = 0x80; // removable
        r[2] = 0x05; // SPC-3
        r[3] = 0x32; // HiSup, response data format 2
        r[4] = (r.len() - 5) as u8;
        let put = |r: &mut [u8], at: usize, len: usize, s: &str| {
            let mut field = vec![b' '; len];
            let b = s.as_bytes();
            let n = b.len().min(len);
            field[..n].copy_from_slice(&b[..n]);
            r[at..at + len].copy_from_slice(&field);
        };
        put(&mut r, 8, 8, &self.config.vendor);
        put(&mut r, 16, 16, &self.config.model);
        put(&mut r, 32, 4, &self.config.revision);
        reply_in(data, &r, usize::from(be16(cdb, 3)))
    }

    fn cmd_current_profile(&self) -> u16 {
        match (&self.config.medium, self.config.tray_open) {
            (Some(m), false) => m.profile.number(),
            _ => 0,
        }
    }

    /// GET CONFIGURATION (MMC-6 §6.6): feature header + Profile List (0x0000) + Core (0x0001).
    fn cmd_get_configuration(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        let rt = cdb[1] & 0x03;
        let start = be16(cdb, 2);
        let current = self.cmd_current_profile();
        let mut features: Vec<(u16, Vec<u8>)> = Vec::new();
        // Profile List: every profile the drive supports, highest first; CurrentP bit.
        let mut pl = Vec::new();
        for p in [0x43u16, 0x41, 0x40, 0x1B, 0x1A, 0x10, 0x08] {
            pl.extend_from_slice(&p.to_be_bytes());
            pl.push(u8::from(p == current));
            pl.push(0);
        }
        features.push((0x0000, pl));
        // Core: physical interface 7 (SATA/ATAPI), DBE.
        features.push((0x0001, vec![0, 0, 0, 7, 0x01, 0, 0, 0]));
        // BD-R Pseudo-Overwrite (MMC-6 §5.3.34): current only on a POW-formatted BD-R.
        let pow = matches!(&self.config.medium, Some(m) if m.pow && m.profile == Profile::BdR)
            && !self.config.tray_open;
        features.push((0x0038, vec![0, 0, 0, 0]));
        let mut r = vec![0u8; 8];
        r[6..8].copy_from_slice(&current.to_be_bytes());
        for (code, body) in features {
            let keep = match rt {
                2 => code == start,
                _ => code >= start,
            };
            if !keep {
                continue;
            }
            r.extend_from_slice(&code.to_be_bytes());
            // version 0; Core and Profile List persistent and current; POW current when formatted.
            r.push(match code {
                0x0038 => u8::from(pow),
                _ => 0x03,
            });
            r.push(body.len() as u8);
            r.extend_from_slice(&body);
        }
        let len = (r.len() - 4) as u32;
        r[0..4].copy_from_slice(&len.to_be_bytes());
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    /// READ DISC INFORMATION, standard disc information (MMC-6 Table 446).
    fn cmd_disc_information(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        if cdb[1] & 0x07 != 0 {
            return Err(sense(5, 0x24, 0));
        }
        let m = self.config.medium.as_ref().ok_or(sense(2, 0x3A, 0))?;
        let mut r = vec![0u8; 34];
        r[0..2].copy_from_slice(&32u16.to_be_bytes());
        let (status, last_state) = match m.state {
            MediumState::Blank => (0u8, 0u8),
            MediumState::Appendable => (1, if m.track_open { 1 } else { 0 }),
            MediumState::Complete => (2, 3),
        };
        let erasable = u8::from(m.profile == Profile::BdRe) << 4;
        r[2] = erasable | (last_state << 2) | status;
        r[3] = 1; // first track on disc
        let tracks = self.tracks();
        let last_track = tracks.len() as u8;
        r[4] = m.sessions;
        r[5] = last_track; // first track in last session
        r[6] = last_track; // last track in last session
        r[7] = 0x20; // URU: unrestricted use
        r[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        r[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    /// The tracks of the loaded medium: (start, size, open-or-invisible).
    fn tracks(&self) -> Vec<(u64, u64, bool)> {
        let Some(m) = &self.config.medium else {
            return Vec::new();
        };
        let cap = m.capacity_sectors();
        let w = m.written();
        match m.state {
            MediumState::Blank => vec![(0, cap, true)],
            MediumState::Complete => vec![(0, w.max(1), false)],
            MediumState::Appendable if m.track_open => vec![(0, cap, true)],
            MediumState::Appendable => vec![(0, w, false), (w, cap - w.min(cap), true)],
        }
    }

    /// READ TRACK INFORMATION (MMC-6 Table 540).
    fn cmd_track_information(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        let m = self.config.medium.as_ref().ok_or(sense(2, 0x3A, 0))?;
        let cap = m.capacity_sectors();
        let written = m.written();
        let writable = m.profile.write_once() || m.profile == Profile::BdRe;
        let tracks = self.tracks();
        let v = u64::from(be32(cdb, 2));
        // Track FFh (the invisible track) is defined for CD, DVD+R and DVD+R DL only (libburn
        // mmc.c:437, after mmc5r03c): BD drives refuse it.
        if cdb[1] & 0x03 == 1 && v == 0xFF && m.profile.is_bd() {
            return Err(sense(5, 0x24, 0x00));
        }
        let idx = match cdb[1] & 0x03 {
            0 => tracks
                .iter()
                .position(|&(s, n, _)| v >= s && v < s + n.max(1)),
            1 if v == 0xFF => Some(tracks.len() - 1),
            1 if v >= 1 => Some(v as usize - 1).filter(|&i| i < tracks.len()),
            2 if v == 1 => Some(tracks.len() - 1),
            _ => None,
        };
        let Some(i) = idx else {
            return Err(sense(5, 0x24, 0));
        };
        let (start, size, open) = tracks[i];
        let mut r = vec![0u8; 48];
        r[0..2].copy_from_slice(&46u16.to_be_bytes());
        r[2] = (i + 1) as u8;
        r[3] = m.sessions;
        r[5] = 0x04; // track mode: data, uninterrupted
        let blank = open && (written <= start);
        r[6] = (u8::from(blank) << 6) | 0x01; // Blank, data mode 1
        let nwa_valid = open && writable && m.profile != Profile::BdRe;
        r[7] = u8::from(nwa_valid);
        r[8..12].copy_from_slice(&(start as u32).to_be_bytes());
        let nwa = written.max(start);
        if nwa_valid {
            r[12..16].copy_from_slice(&(nwa as u32).to_be_bytes());
        }
        let free = if open && writable {
            cap.saturating_sub(nwa)
        } else {
            0
        };
        r[16..20].copy_from_slice(&(free as u32).to_be_bytes());
        r[20..24].copy_from_slice(&32u32.to_be_bytes()); // fixed packet size (cluster)
        r[24..28].copy_from_slice(&(size as u32).to_be_bytes());
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    /// READ FORMAT CAPACITIES (MMC-6 §6.24).
    fn cmd_format_capacities(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        let mut descs: Vec<(u32, u8, u32)> = Vec::new();
        match (&self.config.medium, self.config.tray_open) {
            (Some(m), false) => {
                let cap = m.capacity_sectors().min(u64::from(u32::MAX)) as u32;
                match (m.profile, m.state) {
                    (Profile::BdR, _) if m.pow => {
                        descs.push((cap.saturating_sub(393_216), 2, 2048));
                    }
                    (Profile::BdR, MediumState::Blank) => {
                        descs.push((cap, 1, 2048));
                        // Format type 0x32: BD-R with the default spare areas (SL: 393 216).
                        descs.push((cap.saturating_sub(393_216), 0x32 << 2, 393_216 / 32));
                    }
                    (Profile::BdRe, _) => {
                        descs.push((cap, 2, 2048));
                        descs.push((cap, 0x30 << 2, 0));
                    }
                    (_, MediumState::Blank) => descs.push((cap, 1, 2048)),
                    _ => descs.push((m.written().min(u64::from(u32::MAX)) as u32, 2, 2048)),
                }
            }
            _ => descs.push((0, 3, 2048)),
        }
        let mut r = vec![0u8; 4];
        r[3] = (descs.len() * 8) as u8;
        for (blocks, ty, param) in descs {
            r.extend_from_slice(&blocks.to_be_bytes());
            r.push(ty);
            r.extend_from_slice(&param.to_be_bytes()[1..]);
        }
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    fn cmd_read(&mut self, lba: u64, n: u64, data: &mut DataPhase<'_>, timeout: Duration) -> Reply {
        let m = self.config.medium.as_ref().ok_or(sense(2, 0x3A, 0))?;
        if lba + n > m.readable() {
            return Err(sense(5, 0x21, 0x00));
        }
        let DataPhase::In(buf) = data else {
            return Err(sense(5, 0x24, 0));
        };
        let bytes = (n * SS) as usize;
        if buf.len() < bytes {
            return Err(sense(5, 0x24, 0));
        }
        // The drive reads up to the first unreadable sector: transfer time at the zone's speed,
        // slow sectors on the way, and its own retries on the bad one.
        let bad = m
            .unreadable
            .iter()
            .filter_map(|r| r.first_in(lba, n))
            .chain(
                m.random_unreadable
                    .as_ref()
                    .and_then(|r| r.first_in(lba, n)),
            )
            .min();
        let touched = bad.map_or(n, |b| b - lba + 1);
        let slow_ms: u64 = m
            .slow
            .iter()
            .map(|s| s.lba.overlap(lba, touched) * s.ms)
            .sum();
        let retry_ms = if bad.is_some() { m.unreadable_ms } else { 0 };
        let corrupt: Vec<LbaRange> = m.corrupt.clone();
        let xfer = Duration::from_secs_f64((touched * SS) as f64 / (self.read_kbs(lba) * 1000.0));
        let cost = xfer + Duration::from_millis(slow_ms + retry_ms);
        if cost > timeout {
            self.advance(timeout);
            return Err(sense(0xB, 0x3E, 0x02));
        }
        self.advance(cost);
        if bad.is_some() {
            return Err(sense(3, 0x11, 0x00));
        }
        let mut tmp = vec![0u8; bytes];
        self.read_raw(lba, &mut tmp)
            .map_err(|_| sense(4, 0x44, 0x00))?;
        for r in corrupt {
            let (a, b) = r.bounds();
            for s in a.max(lba)..b.min(lba + n) {
                let off = ((s - lba) * SS) as usize;
                for k in (0..SECTOR_SIZE).step_by(97) {
                    tmp[off + k] ^= 0x5A;
                }
            }
        }
        buf[..bytes].copy_from_slice(&tmp);
        Ok(CommandStatus::Good { transferred: bytes })
    }

    fn cmd_write(
        &mut self,
        lba: u64,
        n: u64,
        data: &mut DataPhase<'_>,
        timeout: Duration,
    ) -> Reply {
        let m = self.config.medium.as_ref().ok_or(sense(2, 0x3A, 0))?;
        let DataPhase::Out(buf) = data else {
            return Err(sense(5, 0x24, 0));
        };
        let bytes = (n * SS) as usize;
        if buf.len() != bytes {
            return Err(sense(5, 0x24, 0));
        }
        match m.profile {
            Profile::BdRom => return Err(sense(7, 0x27, 0x00)),
            p if p.write_once() => {
                if m.state == MediumState::Complete {
                    return Err(sense(5, 0x21, 0x02));
                }
                if lba + n > m.capacity_sectors() {
                    return Err(sense(5, 0x21, 0x00));
                }
                if lba != m.written() {
                    return Err(sense(5, 0x21, 0x02));
                }
            }
            _ => {
                if lba + n > m.capacity_sectors() {
                    return Err(sense(5, 0x21, 0x00));
                }
            }
        }
        let bad = m
            .write_errors
            .iter()
            .filter_map(|r| r.first_in(lba, n))
            .min();
        let good = bad.map_or(n, |b| b - lba);
        let cost = if self.config.buffer_full_long_write {
            // The host fills the buffer; the laser drains it at the write speed.
            if self.drain_buffer() {
                self.config.underruns += 1;
            }
            let size = self.config.buffer_kb.saturating_mul(1024);
            if self.config.buffer_level + bytes as u64 > size {
                return Err(sense(2, 0x04, 0x08));
            }
            self.config.buffer_level += bytes as u64;
            Duration::from_secs_f64(bytes as f64 / HOST_BYTES_PER_SEC)
        } else {
            let secs = (bytes as f64) / (f64::from(self.write_kbs()) * 1000.0);
            Duration::from_secs_f64(secs)
        };
        if cost > timeout {
            self.advance(timeout);
            return Err(sense(0xB, 0x3E, 0x02));
        }
        self.advance(cost);
        if self.config.real_ms_per_write > 0 {
            std::thread::sleep(Duration::from_millis(self.config.real_ms_per_write));
        }
        let chunk = buf[..(good * SS) as usize].to_vec();
        self.write_raw(lba, &chunk)
            .map_err(|_| sense(4, 0x44, 0x00))?;
        if let Some(m) = self.config.medium.as_mut() {
            if m.profile.write_once() {
                m.written = Some(lba + good);
                m.track_open = true;
                m.state = MediumState::Appendable;
            } else {
                m.written = Some(m.written().max(lba + good));
                if m.state == MediumState::Blank {
                    m.state = MediumState::Complete;
                }
            }
        }
        self.dirty = true;
        if bad.is_some() {
            return Err(sense(3, 0x0C, 0x00));
        }
        Ok(CommandStatus::Good { transferred: bytes })
    }

    fn cmd_close(&mut self, cdb: &[u8], timeout: Duration) -> Reply {
        let function = cdb[2] & 0x07;
        let immed = cdb[1] & 0x01 != 0;
        let m = self.config.medium.as_mut().ok_or(sense(2, 0x3A, 0))?;
        if !m.profile.write_once() {
            // BD-RE: closing is a no-op (MMC-6 §6.3 for random-writable media).
            return Ok(CommandStatus::Good { transferred: 0 });
        }
        if m.pow && function != 1 {
            return Err(sense(5, 0x24, 0x00));
        }
        match (function, m.state) {
            (_, MediumState::Blank) => return Err(sense(5, 0x2C, 0x00)),
            (1, _) => m.track_open = false,
            (2 | 6, MediumState::Appendable) => {
                m.track_open = false;
                m.state = MediumState::Complete;
            }
            (2 | 6, MediumState::Complete) => {}
            _ => return Err(sense(5, 0x24, 0x00)),
        }
        self.config.pending_long_write = self.config.long_write_turs;
        self.dirty = true;
        let ms = if function == 1 {
            self.config.close_track_ms
        } else {
            self.config.close_session_ms
        };
        self.long_operation(ms, 0x07, immed, timeout)
    }

    fn cmd_start_stop(&mut self, cdb: &[u8]) -> Reply {
        let loej = cdb[4] & 0x02 != 0;
        let start = cdb[4] & 0x01 != 0;
        if !loej {
            return Ok(CommandStatus::Good { transferred: 0 });
        }
        if !start {
            if self.config.locked {
                return Err(sense(5, 0x53, 0x02));
            }
            if !self.config.tray_open {
                self.advance(Duration::from_secs(2));
            }
            self.config.tray_open = true;
            self.config.pending_not_ready = 0;
            self.config.pending_long_write = 0;
        } else if self.config.tray_open {
            self.advance(Duration::from_secs(2));
            self.config.tray_open = false;
            if !self.config.queue.is_empty() {
                let next = self.config.queue.remove(0);
                if let Some(old) = self.config.medium.replace(next) {
                    self.config.removed.push(old);
                }
            }
            if self.config.medium.is_some() {
                self.config.pending_not_ready = self.config.becoming_ready_turs;
                self.config.pending_medium_changed = true;
            }
        }
        self.dirty = true;
        Ok(CommandStatus::Good { transferred: 0 })
    }

    /// GET EVENT STATUS NOTIFICATION, polled, media class (MMC-6 Table 156).
    fn cmd_event_status(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        if cdb[1] & 0x01 == 0 {
            return Err(sense(5, 0x24, 0));
        }
        let mut r = vec![0u8; 8];
        r[3] = 0x10; // supported classes: media
        if cdb[4] & 0x10 != 0 {
            r[0..2].copy_from_slice(&6u16.to_be_bytes());
            r[2] = 0x04; // media class
            let present = self.config.medium.is_some() && !self.config.tray_open;
            r[5] = u8::from(self.config.tray_open) | (u8::from(present) << 1);
        } else {
            r[0..2].copy_from_slice(&2u16.to_be_bytes());
            r[2] = 0x80; // NEA: no event available
            r.truncate(4);
        }
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }

    /// SET STREAMING (MMC-6 §6.39): the write size / write time of the performance descriptor.
    fn cmd_set_streaming(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        if cdb[8] != 0 {
            return Err(sense(5, 0x24, 0));
        }
        let DataPhase::Out(d) = data else {
            return Err(sense(5, 0x24, 0));
        };
        if d.len() < 28 {
            return Err(sense(5, 0x26, 0));
        }
        // Firmware that reads the 32-bit sizes as signed takes FFFFFFFFh for −1 (the review's
        // row 14): refuse it, as such a drive would.
        if be32(d, 12) >= 0x8000_0000 || be32(d, 20) >= 0x8000_0000 {
            return Err(sense(5, 0x26, 0x00));
        }
        let size_kb = u64::from(be32(d, 20));
        let time_ms = u64::from(be32(d, 24)).max(1);
        let kbs = (size_kb * 1000 / time_ms).min(u64::from(u32::MAX)) as u32;
        // Drives snap to a speed they support: the fastest listed one not above the request.
        let listed = self.listed_write_kbs();
        let snapped = listed
            .iter()
            .copied()
            .filter(|&k| k <= kbs.saturating_add(kbs / 50))
            .max()
            .or_else(|| listed.iter().copied().min())
            .unwrap_or(kbs);
        self.config.write_kbs = if snapped >= self.max_write_kbs() {
            0
        } else {
            snapped
        };
        Ok(CommandStatus::Good { transferred: 0 })
    }

    /// Write speeds offered for the loaded medium, kB/s, fastest first.
    fn listed_write_kbs(&self) -> Vec<u32> {
        let one = f64::from(self.one_x());
        let mut v: Vec<u32> = self
            .config
            .write_speeds_x
            .iter()
            .filter(|&&x| x > 0.0 && x <= self.config.max_write_x)
            .map(|&x| (one * x) as u32)
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    }

    /// GET PERFORMANCE (MMC-6 §6.8): type 03h write speed descriptors, type 00h nominal
    /// performance (write when byte 1 bit 2 is set: the speed in effect).
    fn cmd_get_performance(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        self.need_medium()?;
        let max = usize::from(be16(cdb, 8));
        let end_lba = self
            .config
            .medium
            .as_ref()
            .map(|m| {
                m.capacity_sectors()
                    .saturating_sub(1)
                    .min(u64::from(u32::MAX)) as u32
            })
            .unwrap_or(0);
        let mut descs: Vec<[u8; 16]> = Vec::new();
        match cdb[10] {
            0x03 => {
                let read = (f64::from(self.one_x()) * self.config.read_x_outer) as u32;
                for w in self.listed_write_kbs() {
                    let mut d = [0u8; 16];
                    d[4..8].copy_from_slice(&end_lba.to_be_bytes());
                    d[8..12].copy_from_slice(&read.to_be_bytes());
                    d[12..16].copy_from_slice(&w.to_be_bytes());
                    descs.push(d);
                }
            }
            0x00 => {
                let kbs = if cdb[1] & 0x04 != 0 {
                    self.write_kbs()
                } else {
                    (f64::from(self.one_x()) * self.config.read_x_outer) as u32
                };
                let mut d = [0u8; 16];
                d[4..8].copy_from_slice(&kbs.to_be_bytes());
                d[8..12].copy_from_slice(&end_lba.to_be_bytes());
                d[12..16].copy_from_slice(&kbs.to_be_bytes());
                descs.push(d);
            }
            _ => return Err(sense(5, 0x24, 0)),
        }
        descs.truncate(max);
        let mut r = vec![0u8; 8];
        for d in &descs {
            r.extend_from_slice(d);
        }
        let len = (r.len() - 4) as u32;
        r[0..4].copy_from_slice(&len.to_be_bytes());
        reply_in(data, &r, usize::MAX)
    }

    /// MODE SENSE(10) page 2A, the MM capabilities page (minimal, MMC-6 Table 771 of MMC-3).
    fn cmd_mode_sense(&mut self, cdb: &[u8], data: &mut DataPhase<'_>) -> Reply {
        if cdb[2] & 0x3F != 0x2A {
            return Err(sense(5, 0x24, 0));
        }
        let mut page = vec![0u8; 30];
        page[0] = 0x2A;
        page[1] = (page.len() - 2) as u8;
        page[2] = 0x3F; // reads CD-R/RW, DVD-ROM/R/RAM
        page[3] = 0x37; // writes CD-R/RW, DVD-R/RAM
        page[6] = 0x29 | (u8::from(self.config.locked) << 1); // tray loader, eject, lock
        let kbs = self.max_write_kbs().min(0xFFFF) as u16;
        page[8..10].copy_from_slice(&kbs.to_be_bytes());
        let mut r = vec![0u8; 8];
        r.extend_from_slice(&page);
        let len = (r.len() - 2) as u16;
        r[0..2].copy_from_slice(&len.to_be_bytes());
        reply_in(data, &r, usize::from(be16(cdb, 7)))
    }
}

impl SimDrive {
    /// Whether the executed command `what` is one whose answer is to be lost (`lost_answers`);
    /// the entry is used up.
    fn take_lost_answer(&mut self, what: &str) -> bool {
        match self
            .config
            .lost_answers
            .iter()
            .position(|p| what.starts_with(p.as_str()))
        {
            Some(i) => {
                self.config.lost_answers.remove(i);
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    /// drive.json is rewritten after every state-changing command, except that a run of
    /// writes saves every 256 commands (and on drop): a 25 GB burn is 380 000 WRITEs.
    fn save_if_due(&mut self, opcode: u8) {
        let quiet = matches!(opcode, op::READ_10 | op::READ_12 | op::TEST_UNIT_READY);
        let write = matches!(opcode, op::WRITE_10 | op::WRITE_12);
        let due = if write {
            self.config.commands % 256 == 0
        } else {
            self.dirty || !quiet
        };
        if self.dir.is_some() && due {
            let _ = self.save();
        }
    }
}

/// The parameters a trace line shows after the command's name (LBA and count, eject/load, ...).
fn command_detail(opcode: u8, cdb: &[u8]) -> String {
    match opcode {
        op::READ_10 | op::WRITE_10 if cdb.len() >= 10 => {
            format!(" lba={} n={}", be32(cdb, 2), be16(cdb, 7))
        }
        op::READ_12 | op::WRITE_12 if cdb.len() >= 12 => {
            format!(" lba={} n={}", be32(cdb, 2), be32(cdb, 6))
        }
        op::START_STOP_UNIT if cdb.len() >= 6 => match cdb[4] & 0x03 {
            2 => " eject".into(),
            3 => " load".into(),
            _ => String::new(),
        },
        op::PREVENT_ALLOW_MEDIUM_REMOVAL if cdb.len() >= 6 => {
            if cdb[4] & 1 != 0 { " lock" } else { " unlock" }.into()
        }
        op::CLOSE_TRACK_SESSION if cdb.len() >= 6 => format!(
            " function={} number={}{}",
            cdb[2] & 7,
            be16(cdb, 4),
            if cdb[1] & 0x01 != 0 { " immed" } else { "" }
        ),
        op::SYNCHRONIZE_CACHE_10 if cdb.len() >= 10 && cdb[1] & 0x02 != 0 => " immed".into(),
        _ => String::new(),
    }
}

impl Drive for SimDrive {
    fn execute(
        &mut self,
        cdb: &[u8],
        mut data: DataPhase<'_>,
        timeout: Duration,
    ) -> Result<CommandStatus, TransportError> {
        let opcode = cdb.first().copied().unwrap_or(0xFF);
        let len = match &data {
            DataPhase::None => 0,
            DataPhase::In(b) => b.len(),
            DataPhase::Out(b) => b.len(),
        };
        if len as u64 > self.config.max_transfer {
            // The kernel's sg_io() check: the command never reaches the drive.
            self.record(format!(
                "{:.3} {} len={len} -> EIO (above max_transfer {})",
                self.config.clock_us as f64 / 1e6,
                command_name(opcode),
                self.config.max_transfer
            ));
            return Err(TransportError::Other(format!(
                "SG_IO failed: EIO (drive disconnected, or the {len}-byte transfer of command 0x{opcode:02X} is above the kernel's limit for this drive)"
            )));
        }
        let detail = command_detail(opcode, cdb);
        let what = format!("{}{}", command_name(opcode), detail);
        // A bus reset that wipes the command before the drive acts on it (`lost_answers`
        // entries starting with "reset:").
        if let Some(i) = self.config.lost_answers.iter().position(|p| {
            p.strip_prefix("reset:")
                .is_some_and(|p| what.starts_with(p))
        }) {
            self.config.lost_answers.remove(i);
            self.config.pending_medium_changed = true;
            self.record(format!(
                "{:.3} {what} -> RESET (not executed)",
                self.config.clock_us as f64 / 1e6
            ));
            let _ = self.save();
            return Err(TransportError::Reset);
        }
        let reply = if cdb.is_empty() || cdb.len() < cdb_len(opcode) {
            Err(sense(5, 0x24, 0x00))
        } else {
            self.dispatch(cdb, &mut data, timeout)
        };
        self.config.commands += 1;
        self.advance(Duration::from_micros(200));
        let outcome = match &reply {
            Ok(CommandStatus::Good { transferred }) => format!("GOOD {transferred}"),
            Ok(CommandStatus::CheckCondition(_)) | Ok(CommandStatus::Busy) => "OTHER".into(),
            Err(s) => format!("CHECK {}", s.describe()),
        };
        // A command the drive executed whose answer never reached the host (`lost_answers`).
        let lost = matches!(reply, Ok(CommandStatus::Good { .. })) && self.take_lost_answer(&what);
        let line = format!(
            "{:.3} {what} -> {outcome}{}",
            self.config.clock_us as f64 / 1e6,
            if lost { " (answer lost: timeout)" } else { "" }
        );
        self.record(line);
        if lost {
            self.advance(timeout);
            let _ = self.save();
            return Err(TransportError::Timeout(timeout));
        }
        self.save_if_due(opcode);
        match reply {
            Ok(s) => Ok(s),
            Err(s) if s.key == SenseKey::AbortedCommand && s.asc == 0x3E => {
                Err(TransportError::Timeout(timeout))
            }
            Err(s) => Ok(CommandStatus::CheckCondition(Some(s))),
        }
    }

    fn name(&self) -> String {
        let what = match &self.dir {
            Some(d) => format!("sim:{}", d.display()),
            None => "sim:memory".into(),
        };
        format!("{what} ({} {})", self.config.vendor, self.config.model)
    }

    fn sleep(&mut self, d: Duration) {
        self.advance(d);
    }

    fn max_transfer(&self) -> usize {
        usize::try_from(self.config.max_transfer)
            .unwrap_or(usize::MAX)
            .max(SECTOR_SIZE)
    }
}

impl Drop for SimDrive {
    fn drop(&mut self) {
        if self.dir.is_some() {
            let _ = self.save();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optical::cdb::{self, TrackAddress};
    use crate::optical::mmc::{Mmc, MmcError, Readiness};
    use crate::optical::response::DiscStatus;
    use crate::optical::sense::Action;

    fn blank_bdr(sectors: u64) -> SimDrive {
        SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "b1",
            Profile::BdR,
            sectors,
        )))
    }

    fn check(e: MmcError) -> (u8, u8, u8) {
        let s = e.sense().expect("sense");
        let key = match s.key {
            SenseKey::NotReady => 2,
            SenseKey::MediumError => 3,
            SenseKey::IllegalRequest => 5,
            SenseKey::UnitAttention => 6,
            SenseKey::DataProtect => 7,
            _ => 0xF,
        };
        (key, s.asc, s.ascq)
    }

    #[test]
    fn blank_bd_r_reports_nwa_zero_and_full_free_blocks() {
        let mut d = blank_bdr(12_219_392);
        assert_eq!(d.readiness().unwrap(), Readiness::Ready);
        assert_eq!(d.current_profile().unwrap(), 0x41);
        let di = d.disc_information().unwrap();
        assert_eq!(di.status, DiscStatus::Blank);
        let t = d.track_information(TrackAddress::Track(1)).unwrap();
        assert_eq!((t.next_writable, t.free_blocks), (Some(0), 12_219_392));
        let f = d.format_capacities().unwrap();
        assert_eq!((f[0].blocks, f[0].type_byte & 3), (12_219_392, 1));
        let free = crate::optical::capacity::blank_free_sectors(&di, Some(&t), &f);
        assert_eq!(free, Some(12_219_392));
        let inq = d.inquiry().unwrap();
        assert_eq!((inq.device_type, &*inq.vendor), (5, "BDSIM"));
    }

    #[test]
    fn presets_match_src_capacity() {
        for &(name, sectors) in crate::util::capacity::PRESETS {
            let mut m = Medium::blank("x", Profile::BdR, 0);
            m.capacity = Some(Capacity::Preset(name.into()));
            assert_eq!(m.capacity_sectors(), sectors);
        }
    }

    #[test]
    fn sequential_writes_only_and_close_completes() {
        let mut d = blank_bdr(1024);
        d.config.max_transfer = 4 << 20;
        let chunk = vec![7u8; 32 * 2048];
        d.write_sectors(0, &chunk).unwrap();
        // Not at the NWA: 5/21/02.
        assert_eq!(
            check(d.write_sectors(64, &chunk).unwrap_err()),
            (5, 0x21, 2)
        );
        assert_eq!(check(d.write_sectors(0, &chunk).unwrap_err()), (5, 0x21, 2));
        d.write_sectors(32, &chunk).unwrap();
        let t = d.track_information(TrackAddress::Track(1)).unwrap();
        assert_eq!((t.next_writable, t.free_blocks), (Some(64), 960));
        assert_eq!(d.disc_information().unwrap().status, DiscStatus::Appendable);
        // Beyond the capacity: 5/21/00.
        let big = vec![0u8; 1024 * 2048];
        assert_eq!(check(d.write_sectors(64, &big).unwrap_err()), (5, 0x21, 0));
        d.synchronize_cache(false).unwrap();
        d.close_track_session(false, 1, 1).unwrap();
        d.close_track_session(false, 2, 1).unwrap();
        let di = d.disc_information().unwrap();
        assert_eq!(di.status, DiscStatus::Complete);
        assert_eq!(d.read_capacity().unwrap(), (64, 2048));
        let mut buf = vec![0u8; 64 * 2048];
        d.read_sectors(0, &mut buf, Duration::from_secs(30))
            .unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        assert_eq!(
            check(d.write_sectors(64, &chunk).unwrap_err()),
            (5, 0x21, 2)
        );
        // Reading past the recorded area: 5/21/00.
        assert_eq!(
            check(
                d.read_sectors(60, &mut buf, Duration::from_secs(30))
                    .unwrap_err()
            ),
            (5, 0x21, 0)
        );
    }

    #[test]
    fn unreadable_corrupt_and_slow_sectors() {
        let mut m = Medium::recorded("r", Profile::BdR, vec![1u8; 100 * 2048]);
        m.unreadable.push(LbaRange::One(50));
        m.corrupt.push(LbaRange::Range([10, 12]));
        m.slow.push(SlowRange {
            lba: LbaRange::Range([80, 90]),
            ms: 3000,
        });
        let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
        let mut buf = vec![0xEEu8; 32 * 2048];
        let e = d
            .read_sectors(40, &mut buf, Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(check(e), (3, 0x11, 0));
        assert!(buf.iter().all(|&b| b == 0xEE), "nothing transferred");
        assert_eq!(e_action(&mut d, 50), Action::Medium);
        d.read_sectors(0, &mut buf, Duration::from_secs(30))
            .unwrap();
        assert!(buf[..10 * 2048].iter().all(|&b| b == 1));
        assert!(buf[10 * 2048..12 * 2048].iter().any(|&b| b != 1));
        assert!(buf[12 * 2048..].iter().all(|&b| b == 1));
        let t0 = d.clock();
        let mut one = vec![0u8; 2048];
        d.read_sectors(85, &mut one, Duration::from_secs(30))
            .unwrap();
        assert!(d.clock() - t0 >= Duration::from_secs(3));
        // Ten slow sectors in one READ exceed a 10 s timeout: transport timeout.
        let mut ten = vec![0u8; 10 * 2048];
        let e = d
            .read_sectors(80, &mut ten, Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(e.action(), Action::Retry);
    }

    #[test]
    fn random_damage_is_deterministic_and_near_its_fraction() {
        let mut m = Medium::recorded("r", Profile::BdR, vec![0u8; 200_000 * 2048]);
        m.random_unreadable = Some(RandomDamage {
            fraction: 0.03,
            run: 16,
            seed: 5,
        });
        m.unreadable_ms = 4000;
        let r = m.random_unreadable.clone().unwrap();
        let bad = (0..200_000u64).filter(|&l| r.is_bad(l)).count() as f64 / 200_000.0;
        assert!((bad - 0.03).abs() < 0.005, "{bad}");
        let first = (0..200_000u64).find(|&l| r.is_bad(l)).unwrap();
        assert_eq!(first % 16, 0);
        assert!(r.is_bad(first + 15) && (first == 0 || !r.is_bad(first - 1)));
        let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
        let mut one = vec![0u8; 2048];
        let t0 = d.clock();
        let e = d
            .read_sectors(first as u32, &mut one, Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(check(e), (3, 0x11, 0));
        assert!(d.clock() - t0 >= Duration::from_secs(4));
        if first > 0 {
            d.read_sectors(first as u32 - 1, &mut one, Duration::from_secs(30))
                .unwrap();
        }
    }

    #[test]
    fn random_cdbs_never_panic() {
        let mut rng = crate::util::xorshift::Xorshift64::new(0x2545_F491_4F6C_DD1D);
        let mut rnd = move || rng.next_u64();
        let ops = [
            0x00u8, 0x12, 0x1B, 0x1E, 0x23, 0x25, 0x28, 0x2A, 0x35, 0x46, 0x4A, 0x51, 0x52, 0x5A,
            0x5B, 0xA8, 0xAA, 0xB6, 0xBB, 0xFF,
        ];
        for profile in [
            Profile::BdR,
            Profile::BdRe,
            Profile::DvdPlusR,
            Profile::BdRom,
        ] {
            let mut m = Medium::blank("f", profile, 256);
            m.random_unreadable = Some(RandomDamage {
                fraction: 0.1,
                run: 4,
                seed: 1,
            });
            let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
            for _ in 0..3000 {
                let len = (rnd() % 14) as usize;
                let mut cdb: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
                if let Some(c) = cdb.first_mut() {
                    *c = ops[(rnd() % ops.len() as u64) as usize];
                }
                if rnd() % 2 == 0 && cdb.len() > 8 {
                    // Small transfer lengths so some reads/writes succeed.
                    let end = cdb.len() - 1;
                    for b in &mut cdb[2..end] {
                        *b &= 0x01;
                    }
                }
                let mut buf = vec![0u8; (rnd() % 5) as usize * 2048 + (rnd() % 3) as usize];
                let out = buf.clone();
                let phase = match rnd() % 3 {
                    0 => DataPhase::None,
                    1 => DataPhase::In(&mut buf),
                    _ => DataPhase::Out(&out),
                };
                let _ = d.execute(&cdb, phase, Duration::from_secs(30));
            }
        }
    }

    fn e_action(d: &mut SimDrive, lba: u32) -> Action {
        let mut one = vec![0u8; 2048];
        d.read_sectors(lba, &mut one, Duration::from_secs(30))
            .unwrap_err()
            .action()
    }

    #[test]
    fn write_error_at_lba() {
        let mut m = Medium::blank("w", Profile::BdR, 1024);
        m.write_errors.push(LbaRange::One(40));
        let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
        let chunk = vec![3u8; 32 * 2048];
        d.write_sectors(0, &chunk).unwrap();
        let e = d.write_sectors(32, &chunk).unwrap_err();
        assert_eq!(check(e), (3, 0x0C, 0));
        assert_eq!(d.config.medium.as_ref().unwrap().written(), 40);
    }

    #[test]
    fn tray_lock_queue_and_readiness() {
        let mut cfg = SimConfig::with_medium(Medium::blank("a", Profile::BdR, 1024));
        cfg.queue.push(Medium::blank("b", Profile::BdRe, 2048));
        cfg.becoming_ready_turs = 3;
        cfg.long_write_turs = 2;
        let mut d = SimDrive::in_memory(cfg);
        d.lock_tray(true).unwrap();
        assert_eq!(check(d.tray(true).unwrap_err()), (5, 0x53, 2));
        d.lock_tray(false).unwrap();
        d.tray(true).unwrap();
        assert_eq!(d.readiness().unwrap(), Readiness::NoMedium);
        let st = d.media_status().unwrap();
        assert!(st.tray_open && !st.present);
        assert_eq!(d.current_profile().unwrap(), 0);
        d.tray(false).unwrap();
        // Unit attention, then three "becoming ready", then ready.
        let t0 = d.clock();
        assert!(d.wait_ready(Duration::from_secs(60)).unwrap());
        assert!(d.clock() - t0 >= Duration::from_millis(1500));
        assert!(
            d.log
                .iter()
                .filter(|l| l.contains("TEST_UNIT_READY") && l.contains("04/01"))
                .count()
                == 3
        );
        assert_eq!(d.current_profile().unwrap(), 0x43);
        assert_eq!(d.config.removed[0].label, "a");
        // Long write in progress after SYNCHRONIZE CACHE.
        d.synchronize_cache(false).unwrap();
        assert_eq!(d.readiness().unwrap(), Readiness::NotYet);
        assert_eq!(d.readiness().unwrap(), Readiness::NotYet);
        assert_eq!(d.readiness().unwrap(), Readiness::Ready);
        // Empty queue: closing reloads the same disc.
        d.tray(true).unwrap();
        d.tray(false).unwrap();
        assert!(d.wait_ready(Duration::from_secs(60)).unwrap());
        assert_eq!(d.current_profile().unwrap(), 0x43);
    }

    #[test]
    fn bus_reset_once_and_unknown_commands() {
        let mut cfg = SimConfig::with_medium(Medium::blank("a", Profile::BdR, 1024));
        cfg.reset_after_commands = Some(2);
        let mut d = SimDrive::in_memory(cfg);
        d.readiness().unwrap();
        d.readiness().unwrap();
        let e = d.disc_information().unwrap_err();
        assert_eq!(check(e), (6, 0x29, 0));
        d.disc_information().unwrap();
        let mut buf = [0u8; 8];
        let r = d
            .execute(
                &[0x04, 0, 0, 0, 0, 0],
                DataPhase::In(&mut buf),
                Duration::from_secs(1),
            )
            .unwrap();
        assert!(matches!(r, CommandStatus::CheckCondition(Some(s)) if s.asc == 0x20));
        // Short CDB: invalid field, no panic.
        let r = d
            .execute(&[0x28, 0], DataPhase::None, Duration::from_secs(1))
            .unwrap();
        assert!(matches!(r, CommandStatus::CheckCondition(Some(s)) if s.asc == 0x24));
        let r = d
            .execute(&[], DataPhase::None, Duration::from_secs(1))
            .unwrap();
        assert!(matches!(r, CommandStatus::CheckCondition(_)));
    }

    #[test]
    fn speed_and_write_timing() {
        let mut d = blank_bdr(100_000);
        d.config.max_transfer = 1 << 20;
        let chunk = vec![0u8; 32 * 2048 * 16];
        let t0 = d.clock();
        for i in 0..100u32 {
            d.write_sectors(i * 512, &chunk).unwrap();
        }
        let secs = (d.clock() - t0).as_secs_f64();
        let mbps = 100.0 * chunk.len() as f64 / secs / 1e6;
        assert!((mbps - 35.96).abs() < 1.0, "8x = 36 MB/s, got {mbps}");
        d.set_speed(100_000, 0x1000_0000, 2 * BD_1X_KBS).unwrap();
        let t0 = d.clock();
        d.write_sectors(51_200, &chunk).unwrap();
        let mbps = chunk.len() as f64 / (d.clock() - t0).as_secs_f64() / 1e6;
        assert!((mbps - 8.99).abs() < 0.5, "2x, got {mbps}");
        // SET CD SPEED also works.
        let c = cdb::set_cd_speed(0xFFFF, 0xFFFF);
        d.execute(&c, DataPhase::None, Duration::from_secs(1))
            .unwrap();
        assert_eq!(d.config.write_kbs, 0);
        // Mode page 2A.
        let mut buf = vec![0u8; 64];
        let c = cdb::mode_sense_10(true, 0, 0x2A, 0, 64);
        let r = d
            .execute(&c, DataPhase::In(&mut buf), Duration::from_secs(1))
            .unwrap();
        assert!(matches!(r, CommandStatus::Good { transferred: 38 }));
        assert_eq!(buf[8], 0x2A);
    }

    #[test]
    fn other_profiles() {
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::recorded(
            "rom",
            Profile::BdRom,
            vec![9u8; 4096],
        )));
        assert_eq!(d.current_profile().unwrap(), 0x40);
        assert_eq!(
            check(d.write_sectors(2, &[0u8; 2048]).unwrap_err()),
            (7, 0x27, 0)
        );
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "dvd",
            Profile::DvdPlusR,
            1000,
        )));
        assert_eq!(d.current_profile().unwrap(), 0x1B);
        let mut d = SimDrive::in_memory(SimConfig::default());
        assert_eq!(d.readiness().unwrap(), Readiness::NoMedium);
        assert_eq!(d.current_profile().unwrap(), 0);
    }

    #[test]
    fn file_backed_state_persists() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sim");
        let mut cfg = SimConfig::with_medium(Medium::blank("d1", Profile::BdR, 4096));
        cfg.queue.push(Medium::blank("d2", Profile::BdR, 4096));
        SimDrive::create_dir(&dir, &cfg).unwrap();
        {
            let mut d = SimDrive::open_dir(&dir).unwrap();
            d.write_sectors(0, &vec![5u8; 64 * 2048]).unwrap();
            d.close_track_session(false, 1, 1).unwrap();
            d.close_track_session(false, 2, 1).unwrap();
            d.tray(true).unwrap();
        }
        {
            let mut d = SimDrive::open_dir(&dir).unwrap();
            assert_eq!(d.readiness().unwrap(), Readiness::NoMedium);
            d.tray(false).unwrap();
            assert!(d.wait_ready(Duration::from_secs(10)).unwrap());
            assert_eq!(
                d.disc_information().unwrap().status,
                DiscStatus::Blank,
                "d2 loaded"
            );
        }
        let mut cfg = SimConfig::load(&dir).unwrap();
        assert_eq!(cfg.removed[0].label, "d1");
        assert_eq!(cfg.removed[0].state, MediumState::Complete);
        assert!(cfg.reinsert("d1"));
        cfg.save(&dir).unwrap();
        let img = std::fs::read(dir.join("d1.img")).unwrap();
        assert_eq!(img.len(), 64 * 2048);
        let log = std::fs::read_to_string(dir.join("commands.log")).unwrap();
        assert!(log.contains("WRITE10 lba=0 n=64 -> GOOD"));
        assert!(log.contains("START_STOP_UNIT eject"));
    }

    #[test]
    fn transfers_above_max_transfer_fail_like_linux() {
        let mut d = blank_bdr(4096);
        assert_eq!(d.max_transfer(), 128 << 10);
        let e = d.write_sectors(0, &vec![1u8; 65 * 2048]).unwrap_err();
        assert!(
            matches!(&e, MmcError::Transport { source: TransportError::Other(m), .. } if m.contains("EIO")),
            "{e}"
        );
        // Nothing reached the drive.
        assert_eq!(d.config.medium.as_ref().unwrap().written(), 0);
        assert_eq!(d.config.commands, 0);
        d.write_sectors(0, &vec![1u8; 64 * 2048]).unwrap();
        let mut buf = vec![0u8; 128 * 2048];
        assert!(d
            .read_sectors(0, &mut buf, Duration::from_secs(30))
            .is_err());
        d.read_sectors(0, &mut buf[..64 * 2048], Duration::from_secs(30))
            .unwrap();
        assert!(d.log.iter().any(|l| l.contains("READ12 len=262144 -> EIO")));
    }

    #[test]
    fn track_ffh_is_refused_on_bd_media_only() {
        let mut d = blank_bdr(4096);
        let e = d.track_information(TrackAddress::Track(0xFF)).unwrap_err();
        assert_eq!(check(e), (5, 0x24, 0));
        let t = d.track_information(TrackAddress::Track(1)).unwrap();
        assert_eq!((t.next_writable, t.free_blocks), (Some(0), 4096));
        let mut d = SimDrive::in_memory(SimConfig::with_medium(Medium::blank(
            "p",
            Profile::DvdPlusR,
            4096,
        )));
        assert!(d.track_information(TrackAddress::Track(0xFF)).is_ok());
    }

    #[test]
    fn immed_long_commands_return_at_once_and_report_progress() {
        let mut d = blank_bdr(4096);
        d.config.close_session_ms = 15 * 60 * 1000;
        d.write_sectors(0, &vec![1u8; 32 * 2048]).unwrap();
        d.synchronize_cache(true).unwrap();
        assert_eq!(check(d.test_unit_ready().unwrap_err()), (2, 4, 8));
        d.sleep(Duration::from_secs(3));
        d.test_unit_ready().unwrap();
        d.close_track_session(true, 1, 1).unwrap();
        d.sleep(Duration::from_secs(3));
        let t0 = d.clock();
        d.close_track_session(true, 6, 0).unwrap();
        assert!(d.clock() - t0 < Duration::from_secs(1));
        d.sleep(Duration::from_secs(450));
        let s = d.test_unit_ready().unwrap_err().sense().unwrap();
        assert_eq!((s.asc, s.ascq), (4, 7));
        let p = s.progress.unwrap();
        assert!((32_000..33_600).contains(&p), "about half done: {p}");
        // Media access waits too; a second CLOSE is refused, not executed twice.
        assert_eq!(check(d.disc_information().unwrap_err()), (2, 4, 7));
        assert_eq!(
            check(d.close_track_session(true, 6, 0).unwrap_err()),
            (2, 4, 7)
        );
        d.sleep(Duration::from_secs(451));
        d.test_unit_ready().unwrap();
        assert_eq!(d.disc_information().unwrap().status, DiscStatus::Complete);
    }

    #[test]
    fn without_immed_a_long_command_times_out_and_the_drive_carries_on() {
        let mut d = blank_bdr(4096);
        d.config.sync_cache_ms = 700_000;
        d.write_sectors(0, &vec![1u8; 32 * 2048]).unwrap();
        let r = d.execute(
            &cdb::synchronize_cache(false),
            DataPhase::None,
            Duration::from_secs(600),
        );
        assert!(matches!(r, Err(TransportError::Timeout(_))), "{r:?}");
        assert_eq!(check(d.test_unit_ready().unwrap_err()), (2, 4, 8));
        d.sleep(Duration::from_secs(101));
        d.test_unit_ready().unwrap();
    }

    #[test]
    fn lost_answers_hide_a_command_that_was_executed() {
        let mut d = blank_bdr(4096);
        d.config.lost_answers = vec!["WRITE10 lba=32".into()];
        let chunk = vec![1u8; 32 * 2048];
        d.write_sectors(0, &chunk).unwrap();
        let e = d.write_sectors(32, &chunk).unwrap_err();
        assert!(matches!(e, MmcError::Transport { .. }), "{e}");
        let t = d.track_information(TrackAddress::Track(1)).unwrap();
        assert_eq!(t.next_writable, Some(64));
        assert!(d.config.lost_answers.is_empty());
    }

    #[test]
    fn write_speeds_are_listed_snapped_and_reported() {
        let mut d = blank_bdr(4096);
        let listed: Vec<u32> = d.write_speeds().unwrap().iter().map(|w| w.2).collect();
        assert_eq!(listed, [35_960, 26_970, 17_980, 8_990]);
        // A read size of FFFFFFFFh is refused (5/26/00), 0x10000000 is not.
        let desc = cdb::streaming_descriptor(4095, u32::MAX, 17_980);
        let c = cdb::set_streaming(28);
        let r = d
            .execute(&c, DataPhase::Out(&desc), Duration::from_secs(30))
            .unwrap();
        assert!(matches!(r, CommandStatus::CheckCondition(Some(s)) if s.asc == 0x26));
        // 5x is not offered: the drive takes 4x.
        d.set_speed(4095, 0x1000_0000, 5 * BD_1X_KBS).unwrap();
        assert_eq!(d.current_write_speed().unwrap(), Some(17_980));
        d.set_speed(4095, 0x1000_0000, 100 * BD_1X_KBS).unwrap();
        assert_eq!(d.current_write_speed().unwrap(), Some(35_960));
        assert_eq!(d.buffer_capacity().unwrap(), (4 << 20, 4 << 20));
    }

    #[test]
    fn pow_formatted_bd_r() {
        let mut m = Medium::blank("pow", Profile::BdR, 4096);
        m.pow = true;
        let mut d = SimDrive::in_memory(SimConfig::with_medium(m));
        assert!(d.pow_current().unwrap());
        let f = d.format_capacities().unwrap();
        assert_eq!(f[0].type_byte & 3, 2, "formatted");
        d.write_sectors(0, &vec![1u8; 32 * 2048]).unwrap();
        assert_eq!(
            check(d.close_track_session(false, 6, 0).unwrap_err()),
            (5, 0x24, 0)
        );
        assert!(!blank_bdr(4096).pow_current().unwrap());
    }

    #[test]
    fn a_full_buffer_refuses_writes_with_long_write_in_progress() {
        let mut d = blank_bdr(100_000);
        d.config.buffer_full_long_write = true;
        d.config.buffer_kb = 256;
        let chunk = vec![1u8; 32 * 2048];
        // Host speed fills faster than 8x drains: within a few WRITEs one does not fit.
        let mut lba = 0;
        let refused = loop {
            match d.write_sectors(lba, &chunk) {
                Ok(()) => lba += 32,
                Err(e) => break e,
            }
            assert!(lba < 32 * 20, "the buffer never filled");
        };
        assert_eq!(check(refused), (2, 4, 8));
        assert_eq!(d.config.medium.as_ref().unwrap().written(), u64::from(lba));
        let (size, free) = d.buffer_capacity().unwrap();
        assert_eq!(size, 256 << 10);
        assert!(free < 64 << 10, "{free}");
        d.sleep(Duration::from_millis(3));
        d.write_sectors(lba, &chunk).unwrap();
        assert_eq!(d.config.underruns, 0);
        // Waiting until the buffer is empty, then writing again: one underrun.
        d.sleep(Duration::from_secs(1));
        d.write_sectors(lba + 32, &chunk).unwrap();
        assert_eq!(d.config.underruns, 1);
    }
}
