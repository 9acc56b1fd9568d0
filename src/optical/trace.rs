//! [`Traced`]: a [`Drive`] wrapper that reports every command, its CDB bytes and its outcome —
//! what `-v` shows, so a user can send us exactly what their drive answered.

use std::time::{Duration, Instant};

use super::cdb::op;
use super::drive::{CommandStatus, DataPhase, Drive, TransportError};

/// Name of a command by opcode (the ones bd-archive sends; others as hex).
pub fn command_name(opcode: u8) -> &'static str {
    match opcode {
        op::TEST_UNIT_READY => "TEST UNIT READY",
        op::INQUIRY => "INQUIRY",
        op::START_STOP_UNIT => "START STOP UNIT",
        op::PREVENT_ALLOW_MEDIUM_REMOVAL => "PREVENT ALLOW MEDIUM REMOVAL",
        op::READ_FORMAT_CAPACITIES => "READ FORMAT CAPACITIES",
        op::READ_CAPACITY_10 => "READ CAPACITY(10)",
        op::READ_10 => "READ(10)",
        op::WRITE_10 => "WRITE(10)",
        op::SYNCHRONIZE_CACHE_10 => "SYNCHRONIZE CACHE",
        op::GET_CONFIGURATION => "GET CONFIGURATION",
        op::GET_EVENT_STATUS_NOTIFICATION => "GET EVENT STATUS NOTIFICATION",
        op::READ_DISC_INFORMATION => "READ DISC INFORMATION",
        op::READ_TRACK_INFORMATION => "READ TRACK INFORMATION",
        op::MODE_SENSE_10 => "MODE SENSE(10)",
        op::CLOSE_TRACK_SESSION => "CLOSE TRACK/SESSION",
        op::READ_BUFFER_CAPACITY => "READ BUFFER CAPACITY",
        op::GET_PERFORMANCE => "GET PERFORMANCE",
        op::READ_12 => "READ(12)",
        op::WRITE_12 => "WRITE(12)",
        op::SET_STREAMING => "SET STREAMING",
        op::SET_CD_SPEED => "SET CD SPEED",
        _ => "command",
    }
}

/// One trace line: name, CDB bytes, outcome, duration.
pub fn describe(
    cdb: &[u8],
    result: &Result<CommandStatus, TransportError>,
    took: Duration,
) -> String {
    let hex: Vec<String> = cdb.iter().map(|b| format!("{b:02X}")).collect();
    let outcome = match result {
        Ok(CommandStatus::Good { transferred }) => format!("GOOD, {transferred} bytes"),
        Ok(CommandStatus::CheckCondition(Some(s))) => format!("CHECK CONDITION: {}", s.describe()),
        Ok(CommandStatus::CheckCondition(None)) => "CHECK CONDITION without sense data".into(),
        Ok(CommandStatus::Busy) => "BUSY".into(),
        Err(e) => format!("transport error: {e}"),
    };
    format!(
        "scsi: {} [{}] -> {outcome} ({:.1} ms)",
        cdb.first().map_or("empty CDB", |&o| command_name(o)),
        hex.join(" "),
        took.as_secs_f64() * 1e3
    )
}

/// Passes every command to `inner` and hands a [`describe`] line to `sink`.
pub struct Traced<D, F> {
    inner: D,
    sink: F,
}

impl<D: Drive, F: FnMut(&str) + Send> Traced<D, F> {
    pub fn new(inner: D, sink: F) -> Self {
        Traced { inner, sink }
    }
}

impl<D: Drive, F: FnMut(&str) + Send> Drive for Traced<D, F> {
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataPhase<'_>,
        timeout: Duration,
    ) -> Result<CommandStatus, TransportError> {
        let start = Instant::now();
        let r = self.inner.execute(cdb, data, timeout);
        (self.sink)(&describe(cdb, &r, start.elapsed()));
        r
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn max_transfer(&self) -> usize {
        self.inner.max_transfer()
    }
    fn sleep(&mut self, d: Duration) {
        self.inner.sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optical::sense::Sense;

    #[test]
    fn lines_name_the_command_bytes_and_outcome() {
        let l = describe(
            &[0x12, 0, 0, 0, 0x60, 0],
            &Ok(CommandStatus::Good { transferred: 36 }),
            Duration::from_micros(1500),
        );
        assert_eq!(
            l,
            "scsi: INQUIRY [12 00 00 00 60 00] -> GOOD, 36 bytes (1.5 ms)"
        );
        let s = Sense::parse(&[0x70, 0, 2, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x3A, 0, 0, 0, 0, 0]);
        let l = describe(
            &[0; 6],
            &Ok(CommandStatus::CheckCondition(s)),
            Duration::ZERO,
        );
        assert!(
            l.starts_with(
                "scsi: TEST UNIT READY [00 00 00 00 00 00] -> CHECK CONDITION: NOT READY"
            ),
            "{l}"
        );
        let l = describe(&[], &Err(TransportError::Reset), Duration::ZERO);
        assert!(l.contains("empty CDB") && l.contains("reset"), "{l}");
        assert_eq!(command_name(0xFF), "command");
    }
}
