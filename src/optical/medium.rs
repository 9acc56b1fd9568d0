//! What is in the drive: identity, current profile, disc status and capacity — the facts
//! `bd-archive drive` prints (like dvd+rw-mediainfo) and `create -D` sizes discs from.
//!
//! Commands, in order: INQUIRY; TEST UNIT READY (polled until the medium settles); GET
//! CONFIGURATION (current profile); READ DISC INFORMATION; READ CAPACITY; for a blank or
//! appendable disc READ TRACK INFORMATION of the last track (the invisible track of a blank
//! disc); READ FORMAT CAPACITIES. A drive that refuses one of the optional queries (QEMU's
//! CD-ROM has no READ TRACK INFORMATION, blank discs have no READ CAPACITY) gets a note, not
//! an error.

use std::time::Duration;

use super::capacity::blank_free_sectors;
use super::cdb::TrackAddress;
use super::drive::Drive;
use super::mmc::{Mmc, MmcError};
use super::response::{profile_name, DiscInfo, DiscStatus, FormatCapacity, Inquiry, TrackInfo};

/// Everything one probe learned. `None` fields: the drive did not answer that query (see `notes`).
#[derive(Clone, Debug)]
pub struct MediumReport {
    /// The drive as [`Drive::name`] shows it.
    pub drive: String,
    pub inquiry: Inquiry,
    /// False when the drive settled with no medium (tray open or empty).
    pub medium_present: bool,
    /// Current MMC profile (0x41 BD-R SRM, 0x43 BD-RE, 0x08 CD-ROM, …).
    pub profile: Option<u16>,
    pub disc: Option<DiscInfo>,
    /// READ CAPACITY: (readable sectors, block length).
    pub readable: Option<(u64, u32)>,
    pub track: Option<TrackInfo>,
    pub formats: Vec<FormatCapacity>,
    /// Free user sectors of a blank disc ([`blank_free_sectors`]), `None` unless blank.
    pub blank_free: Option<u64>,
    /// Queries the drive refused, with what it said.
    pub notes: Vec<String>,
}

/// Profiles bd-archive can burn in v1: BD-R in sequential (SRM) or random (RRM) recording mode.
pub fn burnable_profile(p: u16) -> bool {
    matches!(p, 0x0041 | 0x0042)
}

/// Text of a disc status for reports.
pub fn status_text(d: &DiscInfo) -> String {
    let status = match d.status {
        DiscStatus::Blank => "blank",
        DiscStatus::Appendable => "appendable",
        DiscStatus::Complete => "complete",
        DiscStatus::Other => "other (random-access/formatted)",
    };
    let sessions = if d.sessions == 1 {
        "1 session".to_string()
    } else {
        format!("{} sessions", d.sessions)
    };
    format!("{status}, {sessions}, last track {}", d.last_track)
}

/// Queries the drive (see the module doc for the command order). Waits up to `settle` for a
/// medium that is still spinning up. Fails only when the drive does not identify itself or
/// its readiness cannot be determined.
pub fn probe<D: Drive + ?Sized>(d: &mut D, settle: Duration) -> Result<MediumReport, MmcError> {
    let inquiry = d.inquiry()?;
    let mut notes = Vec::new();
    // An open tray answers at once (GET EVENT STATUS NOTIFICATION); otherwise TEST UNIT READY
    // is polled, which also waits for a disc that is still spinning up. ("Not present" alone is
    // not trusted: a drive with no event to report may send an all-zero descriptor.)
    let medium_present = match d.media_status() {
        Ok(m) if m.tray_open => false,
        _ => d.wait_ready(settle)?,
    };
    let mut r = MediumReport {
        drive: d.name(),
        inquiry,
        medium_present,
        profile: None,
        disc: None,
        readable: None,
        track: None,
        formats: Vec::new(),
        blank_free: None,
        notes: Vec::new(),
    };
    if !medium_present {
        return Ok(r);
    }
    let mut note = |what: &str, e: MmcError| notes.push(format!("{what}: {e}"));
    match d.current_profile() {
        Ok(p) => r.profile = Some(p),
        Err(e) => note("profile", e),
    }
    match d.disc_information() {
        Ok(i) => r.disc = Some(i),
        Err(e) => note("disc information", e),
    }
    match d.read_capacity() {
        Ok(c) => r.readable = Some(c),
        // A blank disc has nothing readable; not worth a note.
        Err(_) if r.disc.is_some_and(|i| i.status == DiscStatus::Blank) => {}
        Err(e) => note("readable capacity", e),
    }
    if let Some(info) = r
        .disc
        .filter(|i| matches!(i.status, DiscStatus::Blank | DiscStatus::Appendable))
    {
        match d.track_information(TrackAddress::Track(u32::from(info.last_track.max(1)))) {
            Ok(t) => r.track = Some(t),
            Err(e) => note("track information", e),
        }
        match d.format_capacities() {
            Ok(f) => r.formats = f,
            Err(e) => note("format capacities", e),
        }
        r.blank_free = blank_free_sectors(&info, r.track.as_ref(), &r.formats);
    }
    r.notes = notes;
    Ok(r)
}

/// Why the disc in the drive cannot size a `create` run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlankError {
    #[error("{drive}: no disc in the drive; insert a blank BD-R, or give the disc size with -b bd25|bd50|bd100|bd128")]
    NoDisc { drive: String },
    #[error("{drive}: the disc is {medium} ({status}), not a blank BD-R; insert a blank BD-R, or give the disc size with -b bd25|bd50|bd100|bd128")]
    NotBlank {
        drive: String,
        medium: String,
        status: String,
    },
    #[error("{drive}: the drive did not report the blank disc's capacity ({why}); give the disc size with -b bd25|bd50|bd100|bd128")]
    Unknown { drive: String, why: String },
}

/// Free sectors of the blank BD-R in the drive, or why there is none.
pub fn blank_bd_r_sectors(r: &MediumReport) -> Result<u64, BlankError> {
    let drive = r.drive.clone();
    if !r.medium_present || r.profile == Some(0) {
        return Err(BlankError::NoDisc { drive });
    }
    let medium = r
        .profile
        .map(|p| format!("{} (profile 0x{p:04X})", profile_name(p)))
        .unwrap_or_else(|| "of unknown type".into());
    let status = r
        .disc
        .as_ref()
        .map(status_text)
        .unwrap_or_else(|| "status unknown".into());
    let blank = r.disc.is_some_and(|d| d.status == DiscStatus::Blank);
    if !blank || !r.profile.is_some_and(burnable_profile) {
        return Err(BlankError::NotBlank {
            drive,
            medium,
            status,
        });
    }
    r.blank_free.ok_or_else(|| BlankError::Unknown {
        drive,
        why: if r.notes.is_empty() {
            "no free-blocks figure in its answers".into()
        } else {
            r.notes.join("; ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optical::drive::{CommandStatus, DataPhase, TransportError};
    use crate::optical::sense::Sense;

    /// A drive with canned answers per opcode, as a blank 25 GB BD-R in a BD writer answers
    /// (or QEMU's CD-ROM, which has no READ TRACK INFORMATION). Unknown opcodes: ILLEGAL REQUEST.
    struct Canned {
        answers: Vec<(u8, Option<Vec<u8>>)>,
        sent: Vec<u8>,
    }

    impl Drive for Canned {
        fn execute(
            &mut self,
            cdb: &[u8],
            data: DataPhase<'_>,
            _timeout: Duration,
        ) -> Result<CommandStatus, TransportError> {
            self.sent.push(cdb[0]);
            let invalid =
                Sense::parse(&[0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0]);
            match self.answers.iter().find(|(op, _)| *op == cdb[0]) {
                Some((_, Some(bytes))) => {
                    let n = match data {
                        DataPhase::In(buf) => {
                            let n = buf.len().min(bytes.len());
                            buf[..n].copy_from_slice(&bytes[..n]);
                            n
                        }
                        _ => 0,
                    };
                    Ok(CommandStatus::Good { transferred: n })
                }
                _ => Ok(CommandStatus::CheckCondition(invalid)),
            }
        }
        fn max_transfer(&self) -> usize {
            128 << 10
        }
        fn name(&self) -> String {
            "/dev/sr0 (PIONEER BD-RW BDR-XD08)".into()
        }
        fn sleep(&mut self, _d: Duration) {}
    }

    fn inquiry_bytes() -> Vec<u8> {
        let mut v = vec![0u8; 36];
        v[0] = 5;
        v[8..16].copy_from_slice(b"PIONEER ");
        v[16..32].copy_from_slice(b"BD-RW   BDR-XD08");
        v[32..36].copy_from_slice(b"1.04");
        v
    }

    #[test]
    fn probe_of_a_blank_bd_r_finds_its_free_sectors() {
        let mut track = vec![0u8; 48];
        track[7] = 1; // NWA valid
        track[16..20].copy_from_slice(&12_219_392u32.to_be_bytes());
        track[24..28].copy_from_slice(&12_219_392u32.to_be_bytes());
        let mut formats = vec![0, 0, 0, 8];
        formats.extend_from_slice(&12_219_392u32.to_be_bytes());
        formats.extend_from_slice(&[0x01, 0, 0x08, 0]);
        let mut disc = vec![0u8; 34];
        disc[2] = 0x00; // blank
        disc[4] = 1;
        disc[6] = 1;
        let mut d = Canned {
            answers: vec![
                (0x12, Some(inquiry_bytes())),
                (0x00, Some(vec![])),
                (0x46, Some(vec![0, 0, 0, 8, 0, 0, 0x00, 0x41])),
                (0x51, Some(disc)),
                (0x52, Some(track)),
                (0x23, Some(formats)),
            ],
            sent: Vec::new(),
        };
        let r = probe(&mut d, Duration::from_secs(1)).unwrap();
        assert_eq!(r.inquiry.vendor, "PIONEER");
        assert_eq!(r.profile, Some(0x41));
        assert_eq!(r.blank_free, Some(12_219_392));
        assert_eq!(blank_bd_r_sectors(&r), Ok(12_219_392));
        // READ CAPACITY fails on a blank disc: no note for that.
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert_eq!(d.sent, [0x12, 0x4A, 0x00, 0x46, 0x51, 0x25, 0x52, 0x23]);
    }

    #[test]
    fn probe_of_a_pressed_cd_rom_reports_and_refuses() {
        // What QEMU's scsi-cd answers for a 673-sector ISO (see qemu-cdrom.md).
        let mut d = Canned {
            answers: vec![
                (0x12, Some(inquiry_bytes())),
                (0x00, Some(vec![])),
                (0x46, Some(vec![0, 0, 0, 36, 0, 0, 0x00, 0x08])),
                (0x51, Some(vec![0, 0x20, 0x0E, 1, 1, 1, 1, 0x20])),
                (0x25, Some(vec![0, 0, 0x02, 0xA0, 0, 0, 0x08, 0])),
            ],
            sent: Vec::new(),
        };
        let r = probe(&mut d, Duration::from_secs(1)).unwrap();
        assert_eq!(r.readable, Some((673, 2048)));
        assert_eq!(r.profile, Some(8));
        assert!(r.track.is_none() && r.blank_free.is_none());
        assert!(matches!(
            blank_bd_r_sectors(&r),
            Err(BlankError::NotBlank { .. })
        ));
    }

    fn report(profile: u16, status: DiscStatus, free: Option<u64>) -> MediumReport {
        MediumReport {
            drive: "/dev/sr0 (X Y)".into(),
            inquiry: Inquiry {
                device_type: 5,
                vendor: "X".into(),
                product: "Y".into(),
                revision: "1".into(),
            },
            medium_present: true,
            profile: Some(profile),
            disc: Some(DiscInfo {
                status,
                erasable: false,
                last_session_state: 0,
                sessions: 1,
                last_track: 1,
            }),
            readable: None,
            track: None,
            formats: Vec::new(),
            blank_free: free,
            notes: Vec::new(),
        }
    }

    #[test]
    fn only_a_blank_bd_r_sizes_a_disc() {
        assert_eq!(
            blank_bd_r_sectors(&report(0x41, DiscStatus::Blank, Some(12_219_392))),
            Ok(12_219_392)
        );
        let e = blank_bd_r_sectors(&report(0x08, DiscStatus::Complete, None)).unwrap_err();
        assert!(e.to_string().contains("CD-ROM (profile 0x0008)"), "{e}");
        assert!(e.to_string().contains("complete, 1 session"), "{e}");
        assert!(e.to_string().contains("-b bd25"), "{e}");
        assert!(matches!(
            blank_bd_r_sectors(&report(0x43, DiscStatus::Blank, Some(1))),
            Err(BlankError::NotBlank { .. })
        ));
        assert!(matches!(
            blank_bd_r_sectors(&report(0x41, DiscStatus::Appendable, Some(1))),
            Err(BlankError::NotBlank { .. })
        ));
        assert!(matches!(
            blank_bd_r_sectors(&report(0x41, DiscStatus::Blank, None)),
            Err(BlankError::Unknown { .. })
        ));
        let mut empty = report(0, DiscStatus::Blank, None);
        assert!(matches!(
            blank_bd_r_sectors(&empty),
            Err(BlankError::NoDisc { .. })
        ));
        empty.medium_present = false;
        empty.profile = None;
        assert!(matches!(
            blank_bd_r_sectors(&empty),
            Err(BlankError::NoDisc { .. })
        ));
    }
}
