//! The [`Drive`] trait: the one seam between bd-archive and optical hardware.
//!
//! A drive executes one SCSI command descriptor block (CDB) with an optional data phase and
//! returns the SCSI status and, on CHECK CONDITION, the sense data. Everything above it (the MMC
//! command set in [`super::mmc`], burning, damaged-disc reading) is written once against this
//! trait, so the same code drives real hardware through SG_IO (`SgDrive`) and the simulated MMC
//! drive the tests use (`SimDrive`). Keeping the seam at the CDB level, rather than at "read
//! sectors"/"write image", means the simulator exercises our sense handling, retries and command
//! encoding exactly as a real drive would.

use std::time::Duration;

use super::sense::Sense;

/// Direction and buffer of a command's data phase.
pub enum DataPhase<'a> {
    /// No data transfer (TEST UNIT READY, START STOP UNIT, SYNCHRONIZE CACHE, …).
    None,
    /// Device → host; the drive fills at most `buf.len()` bytes.
    In(&'a mut [u8]),
    /// Host → device.
    Out(&'a [u8]),
}

/// What the device answered, when the command reached it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    /// GOOD status; `transferred` bytes of the data phase were moved.
    Good { transferred: usize },
    /// CHECK CONDITION with decoded sense data (`None` when the drive sent none or garbage).
    CheckCondition(Option<Sense>),
    /// BUSY / RESERVATION CONFLICT / TASK SET FULL: try again later.
    Busy,
}

/// The command did not complete at the transport level (SG_IO failed, host/driver error,
/// timeout, bus reset). Distinct from a SCSI error: the drive may not have seen the command.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    #[error("bus or device reset")]
    Reset,
    #[error("{0}")]
    Other(String),
}

/// An MMC device that executes one command at a time.
pub trait Drive: Send {
    /// Sends `cdb` with its data phase and waits for completion (at most `timeout`).
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataPhase<'_>,
        timeout: Duration,
    ) -> Result<CommandStatus, TransportError>;

    /// How the user knows this drive, e.g. "/dev/sr0 (HL-DT-ST BD-RE WH16NS60)".
    fn name(&self) -> String;

    /// Largest data phase, in bytes, one command may carry on the path to this drive (the
    /// kernel's queue limit for SG_IO: a longer one fails with EIO and moves nothing). Transfer
    /// sizes are decided from it in [`super::transfer`], nowhere else. No default: a wrapper
    /// that forgot to pass it on would silently lift the limit.
    fn max_transfer(&self) -> usize;

    /// Lets waiting loops sleep: the simulated drive advances its own clock instead, so tests
    /// of "becoming ready" and slow sectors run in milliseconds.
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

impl<D: Drive + ?Sized> Drive for Box<D> {
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataPhase<'_>,
        timeout: Duration,
    ) -> Result<CommandStatus, TransportError> {
        (**self).execute(cdb, data, timeout)
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn max_transfer(&self) -> usize {
        (**self).max_transfer()
    }
    fn sleep(&mut self, d: Duration) {
        (**self).sleep(d)
    }
}
