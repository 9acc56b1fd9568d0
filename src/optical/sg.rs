//! [`SgDrive`]: the real drive, one SCSI command per Linux `SG_IO` ioctl.
//!
//! This is the only code in bd-archive that talks to optical hardware. It opens `/dev/srN` (or a
//! `/dev/sgN` node), hands each CDB to the kernel in a `struct sg_io_hdr` (the "version 3" SCSI
//! generic interface, `interface_id = 'S'`, which the sr block driver accepts as well as sg) and
//! turns what comes back into the [`Drive`] trait's answer:
//!
//! * the ioctl itself failed (`errno`) → [`TransportError::Other`] naming the errno;
//! * the host adapter or the kernel's SCSI layer reported a problem (`host_status`,
//!   `driver_status`) → [`TransportError::Timeout`] / [`TransportError::Reset`] (worth a retry)
//!   or [`TransportError::Other`] (the drive may never have seen the command);
//! * otherwise the SCSI status byte: GOOD → bytes moved (`dxfer_len − resid`), CHECK CONDITION →
//!   the decoded sense data, BUSY / RESERVATION CONFLICT / TASK SET FULL → busy.
//!
//! How other tools do it (read for understanding, not copied): libburn's `sg-linux.c` opens
//! `O_RDWR | O_NDELAY | O_EXCL`, retries a busy open a few times, asks for 32 bytes of sense
//! and treats any non-zero host/driver status as suspect; growisofs' `transport.hxx` checks the
//! `SG_INFO_OK_MASK` bit of `info` and the masked status for CHECK CONDITION, and insists on a
//! block device. We do the same checks, decoded into typed errors, and keep the one `unsafe`
//! ioctl wrapper (plus two tiny ioctls for probing) in this file.
//!
//! Write commands need a file descriptor opened for writing: since Linux 5.x the block layer's
//! SCSI command filter lets read-only descriptors send only reading commands (without
//! `CAP_SYS_RAWIO`). [`Access::Read`] therefore falls back to read-only when the user may not
//! write the node, while [`Access::Burn`] insists on `O_RDWR | O_EXCL` (exclusive: the kernel
//! refuses it while the disc is mounted or another program holds the drive exclusively).
//! `O_NONBLOCK` matters twice: the open succeeds with no disc in the drive, and the cdrom layer
//! skips its "is this medium writable through the block device" test that would otherwise fail
//! a read-write open of a pressed or blank disc with `EROFS`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::drive::{CommandStatus, DataPhase, Drive, TransportError};
use super::sense::Sense;
use super::transfer::KernelLimits;

/// How the drive will be used, which decides the open flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Identify, query and read: `O_RDWR | O_NONBLOCK`, falling back to `O_RDONLY | O_NONBLOCK`
    /// when the node is not writable for this user.
    Read,
    /// Burn: `O_RDWR | O_NONBLOCK | O_EXCL`, no fallback.
    Burn,
}

/// Why a drive could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path}: no such device; list drives with `ls /sys/block | grep sr` and pass -D /dev/srN"
    )]
    NotFound { path: String },
    #[error("{path}: permission denied; add yourself to the group that owns it (usually `cdrom`: `sudo usermod -aG cdrom $USER`, then log in again), or run with CAP_SYS_RAWIO in a container")]
    Permission { path: String },
    #[error("{path}: the drive is busy (the disc is mounted or another program holds the drive); unmount it or close that program")]
    Busy { path: String },
    #[error(
        "{path}: is not a device; to read an image file pass it as a TARGET/SOURCE instead of -D"
    )]
    NotADevice { path: String },
    #[error("{path}: is not a SCSI/MMC device (the SG_IO interface is missing); pass an optical drive such as /dev/sr0")]
    NotScsi { path: String },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// `struct sg_io_hdr` from `<scsi/sg.h>` (the SG version 3 interface). Field order and types
/// are the kernel's; `#[repr(C)]` gives the same layout (88 bytes on 64-bit targets).
#[repr(C)]
struct SgIoHdr {
    /// Always `'S'`.
    interface_id: libc::c_int,
    /// `SG_DXFER_NONE` (−1), `SG_DXFER_TO_DEV` (−2) or `SG_DXFER_FROM_DEV` (−3).
    dxfer_direction: libc::c_int,
    /// CDB length, 6..=16; `cmdp` points at that many bytes.
    cmd_len: libc::c_uchar,
    /// Size of the buffer at `sbp`; the kernel writes at most this many sense bytes.
    mx_sb_len: libc::c_uchar,
    /// 0: `dxferp` is one flat buffer, not a scatter-gather list.
    iovec_count: libc::c_ushort,
    /// Length of the buffer at `dxferp` (0 with `SG_DXFER_NONE`).
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    /// Milliseconds; the kernel aborts the command (and resets if needed) after it.
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    // Outputs:
    /// SCSI status byte (SAM-5 Table 39).
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    /// Sense bytes actually written to `sbp` (≤ `mx_sb_len`).
    sb_len_wr: libc::c_uchar,
    /// `DID_*` code of the host adapter (0 = `DID_OK`).
    host_status: libc::c_ushort,
    /// `DRIVER_*` code of the mid-layer (low nibble), suggestions in the high nibble.
    driver_status: libc::c_ushort,
    /// `dxfer_len` minus the bytes actually transferred (may be unreliable on some HBAs).
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_TO_DEV: libc::c_int = -2;
const SG_DXFER_FROM_DEV: libc::c_int = -3;

/// `SG_IO` (0x2285), `SG_GET_VERSION_NUM` (0x2282) from `<scsi/sg.h>`; `BLKSECTGET` from
/// `<linux/fs.h>` (`_IO(0x12, 103)`).
const SG_IO: libc::c_ulong = 0x2285;
const SG_GET_VERSION_NUM: libc::c_ulong = 0x2282;
const BLKSECTGET: libc::c_ulong = 0x1267;

nix::ioctl_readwrite_bad!(sg_io_ioctl, SG_IO, SgIoHdr);
nix::ioctl_read_bad!(sg_get_version_num, SG_GET_VERSION_NUM, libc::c_int);
nix::ioctl_read_bad!(blk_sect_get, BLKSECTGET, libc::c_ushort);

/// Sense buffer size: SPC-4 allows up to 252 bytes; fixed-format sense with the fields we read
/// fits in 18, descriptor format in a few more. 64 leaves room for vendor descriptors.
const SENSE_LEN: usize = 64;

/// A real optical drive opened through Linux SG_IO.
pub struct SgDrive {
    /// The open device node; every command goes through it.
    file: File,
    /// What the user passed (e.g. `/dev/sr0`), for messages.
    path: PathBuf,
    /// "VENDOR PRODUCT" from INQUIRY (empty when the drive did not answer it).
    ident: String,
    /// Whether `file` was opened for writing (write commands need it).
    writable: bool,
    /// Largest data phase the kernel accepts for this device in one command, in bytes: the
    /// smallest of BLKSECTGET and the queue's `max_hw_sectors_kb` / `max_sectors_kb`; a
    /// multiple of 2048, at least 2048, at most [`super::transfer::LIMIT_CAP`].
    max_transfer: usize,
}

impl SgDrive {
    /// Opens `path` for `access` and identifies the drive (INQUIRY).
    pub fn open(path: &Path, access: Access) -> Result<SgDrive, OpenError> {
        let shown = path.display().to_string();
        let (file, writable) = open_node(path, access)?;
        let meta = file.metadata().map_err(|err| OpenError::Io {
            path: shown.clone(),
            err,
        })?;
        let ft = meta.file_type();
        if !ft.is_block_device() && !ft.is_char_device() {
            return Err(OpenError::NotADevice { path: shown });
        }
        let mut version: libc::c_int = 0;
        // SAFETY: `file` is an open descriptor for the lifetime of the call and `version` is a
        // valid, writable c_int — exactly what SG_GET_VERSION_NUM writes.
        if unsafe { sg_get_version_num(file.as_raw_fd(), &mut version) }.is_err() {
            return Err(OpenError::NotScsi { path: shown });
        }
        let limits = kernel_limits(&file, &meta);
        let max_transfer = limits.effective();
        let mut drive = SgDrive {
            file,
            path: path.to_path_buf(),
            ident: String::new(),
            writable,
            max_transfer,
        };
        use super::mmc::Mmc;
        if let Ok(inq) = drive.inquiry() {
            drive.ident = format!("{} {}", inq.vendor, inq.product).trim().to_string();
        }
        Ok(drive)
    }

    /// The device node this drive was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether write commands can be sent (the node was opened read-write).
    pub fn writable(&self) -> bool {
        self.writable
    }
}

/// The kernel's limits for one command to this device: BLKSECTGET on a block device, and the
/// request queue's `max_hw_sectors_kb` (what `sg_io()` enforces), `max_sectors_kb`,
/// `max_segments` and `max_segment_size` from sysfs — `/sys/dev/block/MAJ:MIN/queue` for `/dev/srN`, the `device/block/*/queue` of
/// `/sys/dev/char/MAJ:MIN` for `/dev/sgN`.
fn kernel_limits(file: &File, meta: &std::fs::Metadata) -> KernelLimits {
    use std::os::unix::fs::MetadataExt;
    let ft = meta.file_type();
    let blksectget = if ft.is_block_device() {
        let mut sectors: libc::c_ushort = 0;
        // SAFETY: valid open descriptor; BLKSECTGET writes one unsigned short to `sectors`.
        match unsafe { blk_sect_get(file.as_raw_fd(), &mut sectors) } {
            Ok(_) if sectors > 0 => Some(usize::from(sectors) * 512),
            _ => None,
        }
    } else {
        None
    };
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let queue = if ft.is_block_device() {
        Some(PathBuf::from(format!(
            "/sys/dev/block/{major}:{minor}/queue"
        )))
    } else {
        std::fs::read_dir(format!("/sys/dev/char/{major}:{minor}/device/block"))
            .ok()
            .and_then(|mut rd| rd.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("queue"))
    };
    let read_number = |name: &str| {
        queue
            .as_ref()
            .and_then(|q| std::fs::read_to_string(q.join(name)).ok())
            .and_then(|t| t.trim().parse::<usize>().ok())
    };
    let kb = |name: &str| read_number(name).and_then(|v| v.checked_mul(1024));
    KernelLimits {
        blksectget,
        max_hw_sectors: kb("max_hw_sectors_kb"),
        max_sectors: kb("max_sectors_kb"),
        max_segments: read_number("max_segments"),
        max_segment_size: read_number("max_segment_size"),
    }
}

/// Whether the kernel grants an exclusive (burning) open of `path` right now: `Ok(true)` yes,
/// `Ok(false)` refused as busy (mounted, or held exclusively by another program). Opens and
/// closes the node without sending any command.
pub fn exclusive_open_possible(path: &Path) -> Result<bool, OpenError> {
    match open_node(path, Access::Burn) {
        Ok(_) => Ok(true),
        Err(OpenError::Busy { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens the node with the flags for `access`; returns the file and whether it is writable.
fn open_node(path: &Path, access: Access) -> Result<(File, bool), OpenError> {
    let shown = path.display().to_string();
    let open = |write: bool, excl: bool| {
        let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
        if excl {
            flags |= libc::O_EXCL;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(flags)
            .open(path)
    };
    let classify = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => OpenError::NotFound {
            path: shown.clone(),
        },
        Some(libc::EACCES) | Some(libc::EPERM) => OpenError::Permission {
            path: shown.clone(),
        },
        Some(libc::EBUSY) => OpenError::Busy {
            path: shown.clone(),
        },
        Some(libc::EISDIR) => OpenError::NotADevice {
            path: shown.clone(),
        },
        _ => OpenError::Io {
            path: shown.clone(),
            err: e,
        },
    };
    match access {
        Access::Burn => open(true, true).map(|f| (f, true)).map_err(classify),
        Access::Read => match open(true, false) {
            Ok(f) => Ok((f, true)),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
                ) =>
            {
                open(false, false).map(|f| (f, false)).map_err(classify)
            }
            Err(e) => Err(classify(e)),
        },
    }
}

impl Drive for SgDrive {
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataPhase<'_>,
        timeout: Duration,
    ) -> Result<CommandStatus, TransportError> {
        if !(6..=16).contains(&cdb.len()) {
            return Err(TransportError::Other(format!(
                "a CDB of {} bytes cannot be sent (6 to 16)",
                cdb.len()
            )));
        }
        let (direction, ptr, len) = match data {
            DataPhase::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0usize),
            DataPhase::In(buf) => (
                SG_DXFER_FROM_DEV,
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            ),
            DataPhase::Out(buf) => (
                SG_DXFER_TO_DEV,
                // The kernel only reads from a TO_DEV buffer; the field is `void *` in C.
                buf.as_ptr().cast_mut().cast::<libc::c_void>(),
                buf.len(),
            ),
        };
        let dxfer_len = libc::c_uint::try_from(len).map_err(|_| {
            TransportError::Other(format!("a transfer of {len} bytes is too large for SG_IO"))
        })?;
        let timeout_ms =
            libc::c_uint::try_from(timeout.as_millis()).unwrap_or(libc::c_uint::MAX - 1);
        let mut sense = [0u8; SENSE_LEN];
        let mut hdr = SgIoHdr {
            interface_id: libc::c_int::from(b'S'),
            dxfer_direction: direction,
            cmd_len: cdb.len() as libc::c_uchar, // 6..=16, checked above
            mx_sb_len: SENSE_LEN as libc::c_uchar,
            iovec_count: 0,
            dxfer_len,
            dxferp: if len == 0 { std::ptr::null_mut() } else { ptr },
            cmdp: cdb.as_ptr(),
            sbp: sense.as_mut_ptr(),
            timeout: timeout_ms.max(1),
            flags: 0,
            pack_id: 0,
            usr_ptr: std::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        };
        // SAFETY: every pointer in `hdr` is valid for the whole (synchronous) call: `cmdp` points
        // at `cdb` (cmd_len bytes), `sbp` at `sense` (mx_sb_len bytes), and `dxferp` at the
        // caller's buffer of exactly `dxfer_len` bytes — mutable for FROM_DEV (the kernel writes
        // at most dxfer_len bytes into it), only read by the kernel for TO_DEV — or is null with
        // dxfer_len 0. SG_IO does not retain any pointer after it returns.
        let r = unsafe { sg_io_ioctl(self.file.as_raw_fd(), &mut hdr) };
        if let Err(errno) = r {
            return Err(ioctl_error(errno, cdb[0], len, self.writable));
        }
        let sense_len = usize::from(hdr.sb_len_wr).min(SENSE_LEN);
        classify(
            &Outcome {
                status: hdr.status,
                host_status: hdr.host_status,
                driver_status: hdr.driver_status,
                resid: hdr.resid,
                dxfer_len: len,
                sense: &sense[..sense_len],
            },
            timeout,
        )
    }

    fn max_transfer(&self) -> usize {
        self.max_transfer
    }

    fn name(&self) -> String {
        if self.ident.is_empty() {
            self.path.display().to_string()
        } else {
            format!("{} ({})", self.path.display(), self.ident)
        }
    }
}

/// Explains a failed SG_IO ioctl (the command did not run or its result could not be returned).
fn ioctl_error(errno: nix::errno::Errno, opcode: u8, len: usize, writable: bool) -> TransportError {
    use nix::errno::Errno;
    let what = match errno {
        Errno::EPERM | Errno::EACCES if !writable => format!(
            "the kernel refused command 0x{opcode:02X}: the drive was opened read-only (write access to the device node is needed)"
        ),
        Errno::EPERM | Errno::EACCES => format!(
            "the kernel refused command 0x{opcode:02X} (permission; CAP_SYS_RAWIO may be needed)"
        ),
        Errno::EINVAL | Errno::ENOMEM | Errno::EOVERFLOW => format!(
            "the kernel rejected command 0x{opcode:02X} with a {len}-byte transfer ({errno}); the transfer may be too large for this drive"
        ),
        Errno::EIO if len > 0 => format!(
            "SG_IO failed: {errno} (drive disconnected, or the {len}-byte transfer of command 0x{opcode:02X} is above the kernel's limit for this drive)"
        ),
        Errno::ENODEV | Errno::ENXIO | Errno::EIO => {
            format!("SG_IO failed: {errno} (drive disconnected?)")
        }
        other => format!("SG_IO failed: {other}"),
    };
    TransportError::Other(what)
}

/// The output fields of one SG_IO call that decide its outcome.
struct Outcome<'a> {
    status: u8,
    host_status: u16,
    driver_status: u16,
    resid: i32,
    /// Size of the data phase buffer that was offered.
    dxfer_len: usize,
    /// The sense bytes the kernel wrote (`sb_len_wr` of them).
    sense: &'a [u8],
}

/// Linux host byte codes (`DID_*`, include/scsi/scsi_status.h).
mod did {
    pub const OK: u16 = 0x00;
    pub const NO_CONNECT: u16 = 0x01;
    pub const BUS_BUSY: u16 = 0x02;
    pub const TIME_OUT: u16 = 0x03;
    pub const BAD_TARGET: u16 = 0x04;
    pub const ABORT: u16 = 0x05;
    pub const PARITY: u16 = 0x06;
    pub const ERROR: u16 = 0x07;
    pub const RESET: u16 = 0x08;
    pub const BAD_INTR: u16 = 0x09;
    pub const SOFT_ERROR: u16 = 0x0B;
    pub const IMM_RETRY: u16 = 0x0C;
    pub const REQUEUE: u16 = 0x0D;
    pub const TRANSPORT_DISRUPTED: u16 = 0x0E;
    pub const TRANSPORT_FAILFAST: u16 = 0x0F;
}

/// Linux driver byte codes (low nibble of `driver_status`).
mod driver {
    pub const OK: u16 = 0x00;
    pub const TIMEOUT: u16 = 0x06;
    /// Sense data is present: informational, the status byte says CHECK CONDITION.
    pub const SENSE: u16 = 0x08;
}

/// GOOD with the bytes actually moved (`dxfer_len − resid`, a nonsense residue clamped).
fn good(o: &Outcome<'_>) -> CommandStatus {
    let resid = usize::try_from(o.resid).unwrap_or(0).min(o.dxfer_len);
    CommandStatus::Good {
        transferred: o.dxfer_len - resid,
    }
}

/// Decides what one SG_IO round trip means. Pure, so the whole table is unit-tested.
fn classify(o: &Outcome<'_>, timeout: Duration) -> Result<CommandStatus, TransportError> {
    match o.host_status {
        did::OK => {}
        did::TIME_OUT => return Err(TransportError::Timeout(timeout)),
        did::RESET | did::ABORT | did::TRANSPORT_DISRUPTED => return Err(TransportError::Reset),
        // Transient conditions of the path to the drive: the command can simply be sent again.
        did::BUS_BUSY | did::SOFT_ERROR | did::IMM_RETRY | did::REQUEUE => {
            return Err(TransportError::Reset)
        }
        h => {
            let name = match h {
                did::NO_CONNECT => "DID_NO_CONNECT: the drive does not answer",
                did::BAD_TARGET => "DID_BAD_TARGET",
                did::PARITY => "DID_PARITY: bus parity error",
                did::ERROR => "DID_ERROR: the host adapter reported an internal error",
                did::BAD_INTR => "DID_BAD_INTR",
                did::TRANSPORT_FAILFAST => "DID_TRANSPORT_FAILFAST: the drive is unreachable",
                _ => "unknown host status",
            };
            return Err(TransportError::Other(format!(
                "host adapter error 0x{h:02X} ({name})"
            )));
        }
    }
    match o.driver_status & 0x0F {
        driver::OK | driver::SENSE => {}
        driver::TIMEOUT => return Err(TransportError::Timeout(timeout)),
        d => {
            return Err(TransportError::Other(format!(
                "SCSI driver error 0x{d:02X}"
            )))
        }
    }
    // SAM-5 Table 39 status codes (bit 0 is reserved, so it is masked off).
    match o.status & 0xFE {
        0x00 | 0x04 => {
            // Some bridges report GOOD yet deliver sense describing a real error; trust the
            // sense then (a recovered error or "no sense" stays GOOD).
            if let Some(s) = Sense::parse(o.sense) {
                if s.action() != super::sense::Action::Ok {
                    return Ok(CommandStatus::CheckCondition(Some(s)));
                }
            }
            Ok(good(o))
        }
        // RECOVERED ERROR (or NO SENSE) with CHECK CONDITION: the command completed and its
        // data is good — keep what was transferred (libburn: GO_ON, spc.c).
        0x02 => match Sense::parse(o.sense) {
            Some(s) if s.action() == super::sense::Action::Ok => Ok(good(o)),
            sense => Ok(CommandStatus::CheckCondition(sense)),
        },
        0x08 | 0x18 | 0x28 => Ok(CommandStatus::Busy),
        0x40 => Err(TransportError::Reset), // TASK ABORTED: another initiator's reset
        s => Err(TransportError::Other(format!(
            "the drive answered with an unexpected SCSI status 0x{s:02X}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optical::sense::SenseKey;

    fn outcome(status: u8, host: u16, driver: u16, resid: i32, sense: &[u8]) -> Outcome<'_> {
        Outcome {
            status,
            host_status: host,
            driver_status: driver,
            resid,
            dxfer_len: 2048,
            sense,
        }
    }

    const T: Duration = Duration::from_secs(7);
    /// Fixed-format sense: MEDIUM ERROR, unrecovered read error (3/11/00).
    const MEDIUM: [u8; 18] = [
        0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0,
    ];

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn header_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<SgIoHdr>(), 88);
        assert_eq!(std::mem::offset_of!(SgIoHdr, dxfer_len), 12);
        assert_eq!(std::mem::offset_of!(SgIoHdr, dxferp), 16);
        assert_eq!(std::mem::offset_of!(SgIoHdr, timeout), 40);
        assert_eq!(std::mem::offset_of!(SgIoHdr, usr_ptr), 56);
        assert_eq!(std::mem::offset_of!(SgIoHdr, status), 64);
        assert_eq!(std::mem::offset_of!(SgIoHdr, host_status), 68);
        assert_eq!(std::mem::offset_of!(SgIoHdr, resid), 72);
        assert_eq!(std::mem::offset_of!(SgIoHdr, info), 80);
    }

    #[test]
    fn good_status_counts_transferred_bytes() {
        assert_eq!(
            classify(&outcome(0, 0, 0, 0, &[]), T).unwrap(),
            CommandStatus::Good { transferred: 2048 }
        );
        assert_eq!(
            classify(&outcome(0, 0, 0, 2000, &[]), T).unwrap(),
            CommandStatus::Good { transferred: 48 }
        );
        // Nonsense residues never underflow.
        assert_eq!(
            classify(&outcome(0, 0, 0, 99_999, &[]), T).unwrap(),
            CommandStatus::Good { transferred: 0 }
        );
        assert_eq!(
            classify(&outcome(0, 0, 0, -5, &[]), T).unwrap(),
            CommandStatus::Good { transferred: 2048 }
        );
    }

    #[test]
    fn check_condition_carries_decoded_sense() {
        let r = classify(&outcome(0x02, 0, driver::SENSE, 2048, &MEDIUM), T).unwrap();
        let CommandStatus::CheckCondition(Some(s)) = r else {
            panic!("{r:?}")
        };
        assert_eq!((s.key, s.asc, s.ascq), (SenseKey::MediumError, 0x11, 0));
        // Garbage or no sense: still a check condition, without sense.
        assert_eq!(
            classify(&outcome(0x02, 0, 0, 0, &[0x00, 0x01]), T).unwrap(),
            CommandStatus::CheckCondition(None)
        );
        // GOOD with real sense (some USB bridges) is an error; GOOD with recovered error is not.
        assert!(matches!(
            classify(&outcome(0, 0, driver::SENSE, 0, &MEDIUM), T).unwrap(),
            CommandStatus::CheckCondition(Some(_))
        ));
        let mut recovered = MEDIUM;
        recovered[2] = 0x01;
        assert_eq!(
            classify(&outcome(0, 0, 0, 0, &recovered), T).unwrap(),
            CommandStatus::Good { transferred: 2048 }
        );
        // CHECK CONDITION with RECOVERED ERROR: the data arrived and is kept.
        assert_eq!(
            classify(&outcome(0x02, 0, driver::SENSE, 48, &recovered), T).unwrap(),
            CommandStatus::Good { transferred: 2000 }
        );
    }

    #[test]
    fn busy_statuses() {
        for s in [0x08, 0x18, 0x28] {
            assert_eq!(
                classify(&outcome(s, 0, 0, 0, &[]), T).unwrap(),
                CommandStatus::Busy
            );
        }
        assert!(matches!(
            classify(&outcome(0x40, 0, 0, 0, &[]), T),
            Err(TransportError::Reset)
        ));
        assert!(matches!(
            classify(&outcome(0x22, 0, 0, 0, &[]), T),
            Err(TransportError::Other(_))
        ));
    }

    #[test]
    fn host_and_driver_errors_are_transport_errors() {
        assert!(matches!(
            classify(&outcome(0, did::TIME_OUT, 0, 0, &[]), T),
            Err(TransportError::Timeout(d)) if d == T
        ));
        for h in [
            did::RESET,
            did::ABORT,
            did::BUS_BUSY,
            did::TRANSPORT_DISRUPTED,
        ] {
            assert!(matches!(
                classify(&outcome(0, h, 0, 0, &[]), T),
                Err(TransportError::Reset)
            ));
        }
        // QEMU's virtio-scsi answers a too-short GET CONFIGURATION with DID_ERROR: it must not
        // look like success even though the status byte is GOOD.
        let e = classify(&outcome(0, did::ERROR, 0, 0, &[]), T).unwrap_err();
        assert!(e.to_string().contains("DID_ERROR"), "{e}");
        assert!(matches!(
            classify(&outcome(0, did::NO_CONNECT, 0, 0, &[]), T),
            Err(TransportError::Other(_))
        ));
        assert!(matches!(
            classify(&outcome(0, 0, driver::TIMEOUT, 0, &[]), T),
            Err(TransportError::Timeout(_))
        ));
        assert!(matches!(
            classify(&outcome(0, 0, 0x04, 0, &[]), T),
            Err(TransportError::Other(_))
        ));
        // Host errors win over a status byte that says CHECK CONDITION.
        assert!(matches!(
            classify(&outcome(0x02, did::RESET, driver::SENSE, 0, &MEDIUM), T),
            Err(TransportError::Reset)
        ));
    }

    #[test]
    fn any_kernel_answer_is_classified_without_panicking() {
        // xorshift: every status/host/driver byte, wild residues, random sense of any length.
        let mut rng = crate::util::xorshift::Xorshift64::new(0x2545_F491_4F6C_DD1D);
        let mut next = || rng.next_u64();
        for _ in 0..20_000 {
            let r = next();
            let sense: Vec<u8> = (0..(r % 70) as usize).map(|_| next() as u8).collect();
            let o = Outcome {
                status: (r >> 8) as u8,
                host_status: ((r >> 16) % 20) as u16,
                driver_status: ((r >> 24) % 16) as u16,
                resid: (r >> 32) as i32,
                dxfer_len: (r >> 40) as usize % 70_000,
                sense: &sense,
            };
            if let Ok(CommandStatus::Good { transferred }) = classify(&o, T) {
                assert!(transferred <= o.dxfer_len);
            }
        }
    }

    #[test]
    fn opening_things_that_are_not_drives_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("disc.iso");
        std::fs::write(&f, [0u8; 4096]).unwrap();
        assert!(matches!(
            SgDrive::open(&f, Access::Read),
            Err(OpenError::NotADevice { .. })
        ));
        assert!(matches!(
            SgDrive::open(&dir.path().join("missing"), Access::Read),
            Err(OpenError::NotFound { .. })
        ));
        // /dev/null is a device but not a SCSI one.
        if Path::new("/dev/null").exists() {
            assert!(matches!(
                SgDrive::open(Path::new("/dev/null"), Access::Read),
                Err(OpenError::NotScsi { .. })
            ));
        }
    }

    #[test]
    fn bad_cdb_lengths_are_refused_before_the_kernel() {
        // A drive object around /dev/null is enough: the length check runs first.
        let Ok(file) = File::open("/dev/null") else {
            return;
        };
        let mut d = SgDrive {
            file,
            path: "/dev/null".into(),
            ident: String::new(),
            writable: false,
            max_transfer: 2048,
        };
        for len in [0usize, 5, 17] {
            let cdb = vec![0u8; len];
            assert!(matches!(
                d.execute(&cdb, DataPhase::None, T),
                Err(TransportError::Other(_))
            ));
        }
        // A valid CDB on a non-SCSI node: the ioctl fails and says so, no panic.
        assert!(matches!(
            d.execute(&[0u8; 6], DataPhase::None, T),
            Err(TransportError::Other(_))
        ));
        assert_eq!(d.name(), "/dev/null");
    }
}
