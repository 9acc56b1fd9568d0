//! Sense data decoding (SPC-4 §4.5): fixed (0x70/0x71) and descriptor (0x72/0x73) formats,
//! with a table of the ASC/ASCQ pairs an optical drive reports while burning and reading.

/// Sense keys (SPC-4 Table 54).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenseKey {
    NoSense,
    RecoveredError,
    NotReady,
    MediumError,
    HardwareError,
    IllegalRequest,
    UnitAttention,
    DataProtect,
    BlankCheck,
    AbortedCommand,
    Other(u8),
}

impl SenseKey {
    pub fn from_u8(k: u8) -> Self {
        match k & 0x0F {
            0x0 => Self::NoSense,
            0x1 => Self::RecoveredError,
            0x2 => Self::NotReady,
            0x3 => Self::MediumError,
            0x4 => Self::HardwareError,
            0x5 => Self::IllegalRequest,
            0x6 => Self::UnitAttention,
            0x7 => Self::DataProtect,
            0x8 => Self::BlankCheck,
            0xB => Self::AbortedCommand,
            other => Self::Other(other),
        }
    }
}

/// What the caller should do about a sense condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Not an error (recovered / no sense).
    Ok,
    /// Transient: wait a moment and send the same command again.
    Retry,
    /// No medium in the drive / tray open.
    NoMedium,
    /// Unrecoverable error on the medium (read or write).
    Medium,
    /// The command or its parameters are wrong for this drive/medium.
    Illegal,
    /// Anything else: give up with the message.
    Fail,
}

/// Decoded sense: key, additional sense code and qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: SenseKey,
    pub asc: u8,
    pub ascq: u8,
    /// PROGRESS INDICATION of a NOT READY answer while a long operation runs (sense-key
    /// specific bytes with SKSV set): done fraction × 65 536. `None` when the drive gave none.
    pub progress: Option<u16>,
}

/// (ASC, ASCQ or None for "any qualifier", action, text) — SPC-4 Annex D (Table D.1) and
/// MMC-6 Annex F, restricted to what optical drives use.
const TABLE: &[(u8, Option<u8>, Action, &str)] = &[
    (
        0x00,
        Some(0x00),
        Action::Ok,
        "no additional sense information",
    ),
    (
        0x04,
        Some(0x00),
        Action::Retry,
        "logical unit not ready, cause not reportable",
    ),
    (
        0x04,
        Some(0x01),
        Action::Retry,
        "logical unit is in process of becoming ready",
    ),
    // 04/02 and 04/03 never clear by themselves: libburn's spc_wait_unit_attention (spc.c:150)
    // fails at once instead of waiting out its limit.
    (
        0x04,
        Some(0x02),
        Action::Fail,
        "logical unit not ready, initializing command required",
    ),
    (
        0x04,
        Some(0x03),
        Action::Fail,
        "logical unit not ready, manual intervention required",
    ),
    (
        0x04,
        Some(0x04),
        Action::Retry,
        "logical unit not ready, format in progress",
    ),
    (
        0x04,
        Some(0x07),
        Action::Retry,
        "logical unit not ready, operation in progress",
    ),
    (
        0x04,
        Some(0x08),
        Action::Retry,
        "logical unit not ready, long write in progress",
    ),
    (0x0C, Some(0x00), Action::Medium, "write error"),
    (
        0x0C,
        Some(0x07),
        Action::Medium,
        "write error, recovery needed",
    ),
    (
        0x0C,
        Some(0x09),
        Action::Medium,
        "write error, loss of streaming",
    ),
    (0x0C, None, Action::Medium, "write error"),
    (0x11, Some(0x00), Action::Medium, "unrecovered read error"),
    (0x11, None, Action::Medium, "unrecovered read error"),
    (0x15, None, Action::Medium, "positioning error"),
    (
        0x20,
        Some(0x00),
        Action::Illegal,
        "invalid command operation code",
    ),
    (
        0x21,
        Some(0x00),
        Action::Illegal,
        "logical block address out of range",
    ),
    (
        0x21,
        Some(0x02),
        Action::Illegal,
        "invalid address for write",
    ),
    (0x24, Some(0x00), Action::Illegal, "invalid field in CDB"),
    (
        0x26,
        None,
        Action::Illegal,
        "invalid field in parameter list",
    ),
    (0x27, None, Action::Fail, "write protected"),
    (0x28, Some(0x00), Action::Retry, "medium may have changed"),
    (
        0x29,
        None,
        Action::Retry,
        "power on, reset or bus device reset occurred",
    ),
    (0x2C, Some(0x00), Action::Illegal, "command sequence error"),
    (
        0x30,
        Some(0x00),
        Action::Illegal,
        "incompatible medium installed",
    ),
    (
        0x30,
        Some(0x05),
        Action::Illegal,
        "cannot write medium, incompatible format",
    ),
    (0x30, None, Action::Illegal, "incompatible medium"),
    (0x31, None, Action::Medium, "medium format corrupted"),
    (0x3A, None, Action::NoMedium, "medium not present"),
    // 3E/xx: the logical unit failed (self-test, timeout): libburn gives up (spc.c, FAIL), and
    // so do we rather than repeat a command the drive could not finish.
    (0x3E, Some(0x02), Action::Fail, "timeout on logical unit"),
    (0x3E, None, Action::Fail, "logical unit failure"),
    (0x44, None, Action::Fail, "internal target failure"),
    (0x53, Some(0x02), Action::Fail, "medium removal prevented"),
    (
        0x57,
        Some(0x00),
        Action::Medium,
        "unable to recover table of contents",
    ),
    (0x64, None, Action::Illegal, "illegal mode for this track"),
    (0x72, None, Action::Medium, "session fixation error"),
    (
        0x73,
        None,
        Action::Medium,
        "power calibration area or RMA error",
    ),
];

/// The sense-key specific field (3 bytes): SKSV (byte 0 bit 7) and a 16-bit value.
fn progress_field(b: Option<&[u8]>) -> Option<u16> {
    let b = b?;
    (b.len() == 3 && b[0] & 0x80 != 0).then(|| u16::from_be_bytes([b[1], b[2]]))
}

impl Sense {
    /// Sense without progress indication.
    pub fn new(key: SenseKey, asc: u8, ascq: u8) -> Sense {
        Sense {
            key,
            asc,
            ascq,
            progress: None,
        }
    }

    /// Parse sense data in fixed or descriptor format. `None` when there is nothing usable
    /// (too short, unknown response code). Never panics.
    pub fn parse(data: &[u8]) -> Option<Sense> {
        let code = *data.first()? & 0x7F;
        match code {
            0x70 | 0x71 => {
                let key = *data.get(2)?;
                // ASC/ASCQ exist only when the ADDITIONAL SENSE LENGTH (byte 7) covers them.
                let add_len = usize::from(data.get(7).copied().unwrap_or(0));
                let (asc, ascq) = if add_len >= 6 {
                    (
                        data.get(12).copied().unwrap_or(0),
                        data.get(13).copied().unwrap_or(0),
                    )
                } else {
                    (0, 0)
                };
                // Sense-key specific bytes 15–17 exist when the additional length covers them.
                let progress = if add_len >= 10 {
                    progress_field(data.get(15..18))
                } else {
                    None
                };
                Some(Sense {
                    key: SenseKey::from_u8(key),
                    asc,
                    ascq,
                    progress,
                })
            }
            0x72 | 0x73 => {
                // Descriptors from byte 8: type 02h is the sense-key specific one (SPC-4 §4.5.2.3).
                let mut progress = None;
                let mut at = 8usize;
                while let (Some(&ty), Some(&len)) = (data.get(at), data.get(at + 1)) {
                    if ty == 0x02 {
                        progress = progress_field(data.get(at + 4..at + 7));
                    }
                    at += 2 + usize::from(len);
                }
                Some(Sense {
                    key: SenseKey::from_u8(*data.get(1)?),
                    asc: data.get(2).copied().unwrap_or(0),
                    ascq: data.get(3).copied().unwrap_or(0),
                    progress,
                })
            }
            _ => None,
        }
    }

    fn lookup(&self) -> Option<(Action, &'static str)> {
        TABLE
            .iter()
            .find(|(asc, ascq, _, _)| *asc == self.asc && ascq.is_none_or(|q| q == self.ascq))
            .map(|&(_, _, a, t)| (a, t))
    }

    /// What to do about this condition: the ASC table first, then the sense key.
    pub fn action(&self) -> Action {
        if matches!(self.key, SenseKey::NoSense | SenseKey::RecoveredError) {
            return Action::Ok;
        }
        if let Some((a, _)) = self.lookup() {
            if a != Action::Ok {
                return a;
            }
        }
        match self.key {
            SenseKey::NotReady | SenseKey::UnitAttention => Action::Retry,
            SenseKey::MediumError => Action::Medium,
            SenseKey::IllegalRequest => Action::Illegal,
            _ => Action::Fail,
        }
    }

    /// One-line human description, e.g. "MEDIUM ERROR: write error (3/0C/00)".
    pub fn describe(&self) -> String {
        let text = self
            .lookup()
            .map(|(_, t)| t)
            .unwrap_or("unlisted additional sense code");
        let key = match self.key {
            SenseKey::NoSense => "NO SENSE",
            SenseKey::RecoveredError => "RECOVERED ERROR",
            SenseKey::NotReady => "NOT READY",
            SenseKey::MediumError => "MEDIUM ERROR",
            SenseKey::HardwareError => "HARDWARE ERROR",
            SenseKey::IllegalRequest => "ILLEGAL REQUEST",
            SenseKey::UnitAttention => "UNIT ATTENTION",
            SenseKey::DataProtect => "DATA PROTECT",
            SenseKey::BlankCheck => "BLANK CHECK",
            SenseKey::AbortedCommand => "ABORTED COMMAND",
            SenseKey::Other(_) => "SENSE",
        };
        format!(
            "{key}: {text} ({:X}/{:02X}/{:02X})",
            self.key_code(),
            self.asc,
            self.ascq
        )
    }

    fn key_code(&self) -> u8 {
        match self.key {
            SenseKey::NoSense => 0,
            SenseKey::RecoveredError => 1,
            SenseKey::NotReady => 2,
            SenseKey::MediumError => 3,
            SenseKey::HardwareError => 4,
            SenseKey::IllegalRequest => 5,
            SenseKey::UnitAttention => 6,
            SenseKey::DataProtect => 7,
            SenseKey::BlankCheck => 8,
            SenseKey::AbortedCommand => 0xB,
            SenseKey::Other(k) => k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
        let mut s = vec![0u8; 18];
        s[0] = 0x70;
        s[2] = key;
        s[7] = 10;
        s[12] = asc;
        s[13] = ascq;
        s
    }

    #[test]
    fn decodes_fixed_and_descriptor_formats() {
        let s = Sense::parse(&fixed(0x02, 0x04, 0x08)).unwrap();
        assert_eq!(s, Sense::new(SenseKey::NotReady, 0x04, 0x08));
        let s = Sense::parse(&[0x72, 0x03, 0x11, 0x00, 0, 0, 0, 0]).unwrap();
        assert_eq!(s, Sense::new(SenseKey::MediumError, 0x11, 0));
        // Progress indication of a long operation (SKSV + 16 bits), both formats.
        let mut f = fixed(0x02, 0x04, 0x07);
        f[15..18].copy_from_slice(&[0x80, 0x40, 0x00]);
        assert_eq!(Sense::parse(&f).unwrap().progress, Some(0x4000));
        f[15] = 0;
        assert_eq!(Sense::parse(&f).unwrap().progress, None);
        let d = [
            0x72, 0x02, 0x04, 0x08, 0, 0, 0, 8, 0x02, 6, 0, 0, 0x80, 0x80, 0x00, 0,
        ];
        assert_eq!(Sense::parse(&d).unwrap().progress, Some(0x8000));
        // The valid bit (0x80) does not change the format.
        let mut f = fixed(0x05, 0x24, 0);
        f[0] = 0xF0;
        assert_eq!(Sense::parse(&f).unwrap().key, SenseKey::IllegalRequest);
    }

    #[test]
    fn table_driven_actions() {
        let cases: &[(u8, u8, u8, Action, &str)] = &[
            (0x02, 0x04, 0x08, Action::Retry, "long write in progress"),
            (0x02, 0x04, 0x01, Action::Retry, "becoming ready"),
            (
                0x02,
                0x04,
                0x02,
                Action::Fail,
                "initializing command required",
            ),
            (0x02, 0x04, 0x03, Action::Fail, "manual intervention"),
            (0x02, 0x04, 0x07, Action::Retry, "operation in progress"),
            (0x0B, 0x3E, 0x02, Action::Fail, "timeout on logical unit"),
            (0x04, 0x3E, 0x01, Action::Fail, "logical unit failure"),
            (0x02, 0x3A, 0x01, Action::NoMedium, "medium not present"),
            (0x02, 0x3A, 0x02, Action::NoMedium, "medium not present"),
            (0x03, 0x0C, 0x00, Action::Medium, "write error"),
            (0x03, 0x0C, 0x42, Action::Medium, "write error"),
            (0x03, 0x11, 0x05, Action::Medium, "unrecovered read error"),
            (0x05, 0x21, 0x00, Action::Illegal, "out of range"),
            (0x05, 0x24, 0x00, Action::Illegal, "invalid field in CDB"),
            (0x05, 0x30, 0x05, Action::Illegal, "incompatible format"),
            (0x06, 0x29, 0x00, Action::Retry, "reset"),
            (0x06, 0x28, 0x00, Action::Retry, "may have changed"),
            (0x01, 0x17, 0x01, Action::Ok, "unlisted"),
            (0x04, 0x44, 0x00, Action::Fail, "internal target failure"),
            (0x03, 0x99, 0x99, Action::Medium, "unlisted"),
        ];
        for &(k, asc, ascq, action, text) in cases {
            let s = Sense::parse(&fixed(k, asc, ascq)).unwrap();
            assert_eq!(s.action(), action, "{k:x}/{asc:x}/{ascq:x}");
            assert!(s.describe().contains(text), "{}", s.describe());
        }
        let s = Sense::parse(&fixed(0x03, 0x0C, 0x00)).unwrap();
        assert_eq!(s.describe(), "MEDIUM ERROR: write error (3/0C/00)");
    }

    #[test]
    fn short_or_malformed_sense_never_panics() {
        assert_eq!(Sense::parse(&[]), None);
        assert_eq!(Sense::parse(&[0x70]), None);
        assert_eq!(Sense::parse(&[0x72]), None);
        assert_eq!(Sense::parse(&[0x12, 0x34]), None);
        // Fixed format with a too-short additional length: key only.
        let s = Sense::parse(&[0x70, 0, 0x02, 0, 0, 0, 0, 2]).unwrap();
        assert_eq!((s.asc, s.ascq), (0, 0));
        for len in 0..=32usize {
            for fill in [0u8, 0x70, 0x72, 0xFF] {
                let mut d = vec![fill; len];
                if let Some(b) = d.first_mut() {
                    *b = 0x70 | (fill & 0x03);
                }
                if let Some(s) = Sense::parse(&d) {
                    let _ = (s.action(), s.describe());
                }
            }
        }
    }
}
