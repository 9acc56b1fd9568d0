//! Parsers for drive responses. Every parser takes whatever bytes the drive returned (possibly
//! short or garbage) and returns `None` instead of panicking; [`fuzz_responses`] runs them all.

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}
fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
fn text(d: &[u8], from: usize, to: usize) -> String {
    let end = to.min(d.len());
    let start = from.min(end);
    String::from_utf8_lossy(&d[start..end]).trim().to_string()
}

/// Standard INQUIRY data (SPC-4 Table 148): byte 0 bits 4–0 PERIPHERAL DEVICE TYPE (5 = MMC),
/// bytes 8–15 VENDOR, 16–31 PRODUCT, 32–35 REVISION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inquiry {
    pub device_type: u8,
    pub vendor: String,
    pub product: String,
    pub revision: String,
}

pub fn parse_inquiry(d: &[u8]) -> Option<Inquiry> {
    if d.len() < 16 {
        return None;
    }
    Some(Inquiry {
        device_type: d[0] & 0x1F,
        vendor: text(d, 8, 16),
        product: text(d, 16, 32),
        revision: text(d, 32, 36),
    })
}

/// READ CAPACITY(10) data (SBC-3 Table 65): bytes 0–3 RETURNED LOGICAL BLOCK ADDRESS (last
/// LBA), bytes 4–7 BLOCK LENGTH IN BYTES. Returns (number of blocks, block length).
pub fn parse_read_capacity(d: &[u8]) -> Option<(u64, u32)> {
    Some((u64::from(be32(d, 0)?) + 1, be32(d, 4)?))
}

/// Current profile from the GET CONFIGURATION feature header (MMC-6 Table 258): bytes 6–7.
pub fn parse_current_profile(d: &[u8]) -> Option<u16> {
    be16(d, 6)
}

/// Name of an MMC profile (MMC-6 Table 91).
pub fn profile_name(p: u16) -> &'static str {
    match p {
        0x0000 => "no current profile",
        0x0008 => "CD-ROM",
        0x0009 => "CD-R",
        0x000A => "CD-RW",
        0x0010 => "DVD-ROM",
        0x0011 => "DVD-R",
        0x0012 => "DVD-RAM",
        0x0013 | 0x0014 => "DVD-RW",
        0x001A => "DVD+RW",
        0x001B => "DVD+R",
        0x002B => "DVD+R DL",
        0x0040 => "BD-ROM",
        0x0041 => "BD-R (SRM)",
        0x0042 => "BD-R (RRM)",
        0x0043 => "BD-RE",
        _ => "unknown profile",
    }
}

/// Disc status (READ DISC INFORMATION byte 2 bits 1–0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscStatus {
    Blank,
    Appendable,
    Complete,
    Other,
}

/// Standard disc information (MMC-6 Table 446): byte 2 bit 4 ERASABLE, bits 3–2 STATE OF LAST
/// SESSION, bits 1–0 DISC STATUS; byte 4 NUMBER OF SESSIONS (LSB); byte 6 LAST TRACK IN LAST
/// SESSION (LSB), byte 11 its MSB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscInfo {
    pub status: DiscStatus,
    pub erasable: bool,
    pub last_session_state: u8,
    pub sessions: u8,
    /// Last track in the last session: the track READ TRACK INFORMATION and CLOSE TRACK
    /// address on BD-R (1 on a blank disc, its invisible track).
    pub last_track: u16,
}

pub fn parse_disc_information(d: &[u8]) -> Option<DiscInfo> {
    let b2 = *d.get(2)?;
    Some(DiscInfo {
        status: match b2 & 0x03 {
            0 => DiscStatus::Blank,
            1 => DiscStatus::Appendable,
            2 => DiscStatus::Complete,
            _ => DiscStatus::Other,
        },
        erasable: b2 & 0x10 != 0,
        last_session_state: (b2 >> 2) & 0x03,
        sessions: d.get(4).copied().unwrap_or(0),
        last_track: u16::from_be_bytes([
            d.get(11).copied().unwrap_or(0),
            d.get(6).copied().unwrap_or(0),
        ]),
    })
}

/// Write speed descriptors of GET PERFORMANCE type 03h (MMC-6 Table 341): an 8-byte header,
/// then 16-byte descriptors, bytes 4–7 END LBA, 8–11 READ SPEED, 12–15 WRITE SPEED (kB/s).
/// Returns (end LBA, read kB/s, write kB/s) per descriptor, in the drive's order.
pub fn parse_write_speeds(d: &[u8]) -> Option<Vec<(u32, u32, u32)>> {
    let len = usize::try_from(be32(d, 0)?).ok()?;
    let end = (len.saturating_add(4)).min(d.len());
    let body = d.get(8..end)?;
    Some(
        body.chunks_exact(16)
            .filter_map(|c| Some((be32(c, 4)?, be32(c, 8)?, be32(c, 12)?)))
            .collect(),
    )
}

/// Nominal performance of GET PERFORMANCE type 00h (MMC-6 Table 339): 8-byte header, then
/// 16-byte descriptors, bytes 4–7 START PERFORMANCE, 12–15 END PERFORMANCE (kB/s). Returns the
/// highest END PERFORMANCE (the speed the drive will use at the outer edge).
pub fn parse_nominal_performance(d: &[u8]) -> Option<u32> {
    let len = usize::try_from(be32(d, 0)?).ok()?;
    let end = (len.saturating_add(4)).min(d.len());
    d.get(8..end)?
        .chunks_exact(16)
        .filter_map(|c| be32(c, 12))
        .max()
}

/// READ BUFFER CAPACITY (MMC-6 Table 517): bytes 4–7 LENGTH OF BUFFER, 8–11 BLANK LENGTH OF
/// BUFFER, in bytes. Returns (size, free).
pub fn parse_buffer_capacity(d: &[u8]) -> Option<(u32, u32)> {
    Some((be32(d, 4)?, be32(d, 8)?))
}

/// Whether GET CONFIGURATION (RT=2, starting feature 0038h) reports feature 0038h "BD-R
/// Pseudo-Overwrite" as current: feature descriptor from byte 8, code in bytes 0–1, bit 0 of
/// byte 2 CURRENT.
pub fn parse_pow_current(d: &[u8]) -> bool {
    be16(d, 8) == Some(0x0038) && d.get(10).is_some_and(|b| b & 0x01 != 0)
}

/// Track information (MMC-6 Table 540): byte 7 bit 0 NWA_V, bytes 8–11 LOGICAL TRACK START
/// ADDRESS, 12–15 NEXT WRITABLE ADDRESS, 16–19 FREE BLOCKS, 24–27 LOGICAL TRACK SIZE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    pub start: u32,
    pub next_writable: Option<u32>,
    pub free_blocks: u32,
    pub size: u32,
}

pub fn parse_track_information(d: &[u8]) -> Option<TrackInfo> {
    let nwa_valid = *d.get(7)? & 0x01 != 0;
    Some(TrackInfo {
        start: be32(d, 8)?,
        next_writable: if nwa_valid { Some(be32(d, 12)?) } else { None },
        free_blocks: be32(d, 16)?,
        size: be32(d, 24).unwrap_or(0),
    })
}

/// One capacity descriptor of READ FORMAT CAPACITIES (MMC-6 Tables 481–483): bytes 0–3
/// NUMBER OF BLOCKS, byte 4 bits 7–2 FORMAT TYPE (formattable descriptors) or bits 1–0
/// DESCRIPTOR TYPE (current/maximum: 1 unformatted, 2 formatted, 3 no media), bytes 5–7
/// BLOCK LENGTH / TYPE DEPENDENT PARAMETER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatCapacity {
    pub blocks: u32,
    pub type_byte: u8,
    pub param: u32,
}

/// Returns the current/maximum descriptor followed by the formattable descriptors.
pub fn parse_format_capacities(d: &[u8]) -> Option<Vec<FormatCapacity>> {
    let list_len = usize::from(*d.get(3)?);
    let end = (4 + list_len).min(d.len());
    let mut out = Vec::new();
    let mut at = 4;
    while at + 8 <= end {
        let blocks = be32(d, at)?;
        let type_byte = d[at + 4];
        let param = u32::from_be_bytes([0, d[at + 5], d[at + 6], d[at + 7]]);
        out.push(FormatCapacity {
            blocks,
            type_byte,
            param,
        });
        at += 8;
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Fuzz entry point: every response parser on the same bytes. Must never panic.
pub fn fuzz_responses(data: &[u8]) {
    let _ = parse_inquiry(data);
    let _ = parse_read_capacity(data);
    let _ = parse_current_profile(data).map(profile_name);
    let _ = parse_disc_information(data);
    let _ = parse_track_information(data);
    let _ = parse_format_capacities(data);
    let _ = parse_write_speeds(data);
    let _ = parse_nominal_performance(data);
    let _ = parse_buffer_capacity(data);
    let _ = parse_pow_current(data);
    let _ = super::sense::Sense::parse(data).map(|s| (s.action(), s.describe()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_shaped_responses() {
        let mut inq = vec![0u8; 36];
        inq[0] = 0x05;
        inq[8..16].copy_from_slice(b"QEMU    ");
        inq[16..32].copy_from_slice(b"QEMU CD-ROM     ");
        inq[32..36].copy_from_slice(b"2.5+");
        let i = parse_inquiry(&inq).unwrap();
        assert_eq!(
            (i.device_type, &*i.vendor, &*i.product, &*i.revision),
            (5, "QEMU", "QEMU CD-ROM", "2.5+")
        );

        assert_eq!(
            parse_read_capacity(&[0, 0xBA, 0x74, 0xFF, 0, 0, 8, 0]),
            Some((0xBA_7500, 2048))
        );
        assert_eq!(
            parse_current_profile(&[0, 0, 0, 40, 0, 0, 0x00, 0x41]),
            Some(0x41)
        );
        assert_eq!(profile_name(0x41), "BD-R (SRM)");

        let di = parse_disc_information(&[0, 32, 0x0E, 1, 1, 1, 1]).unwrap();
        assert_eq!(di.status, DiscStatus::Complete);
        assert_eq!(di.last_session_state, 3);
        assert!(!di.erasable);
        assert_eq!(
            parse_disc_information(&[0, 32, 0x10]).unwrap().status,
            DiscStatus::Blank
        );

        let mut ti = vec![0u8; 48];
        ti[7] = 1;
        ti[16..20].copy_from_slice(&12_219_392u32.to_be_bytes());
        let t = parse_track_information(&ti).unwrap();
        assert_eq!((t.next_writable, t.free_blocks), (Some(0), 12_219_392));

        let fc = [
            0,
            0,
            0,
            16,
            0,
            0xBA,
            0x75,
            0x00,
            0x01,
            0,
            8,
            0,
            0,
            0xB8,
            0,
            0,
            0x32 << 2,
            0,
            0x30,
            0,
        ];
        let v = parse_format_capacities(&fc).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].blocks, v[0].type_byte & 3, v[0].param),
            (0xBA_7500, 1, 2048)
        );
        assert_eq!(v[1].type_byte >> 2, 0x32);
    }

    #[test]
    fn short_and_random_responses_never_panic() {
        let mut rng = crate::util::xorshift::Xorshift64::new(0x9E37_79B9_7F4A_7C15);
        for len in 0..300usize {
            let d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            fuzz_responses(&d);
            for cut in 0..len.min(40) {
                fuzz_responses(&d[..cut]);
            }
        }
        assert_eq!(parse_inquiry(&[5; 15]), None);
        assert_eq!(parse_track_information(&[0; 19]), None);
        assert_eq!(parse_format_capacities(&[0, 0, 0, 200, 1, 2]), None);
    }
}
