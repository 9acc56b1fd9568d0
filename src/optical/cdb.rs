//! CDB builders for the SPC-4 / MMC-6 commands the burner and reader use.
//!
//! Every builder returns the exact bytes of the command descriptor block. Multi-byte fields are
//! big-endian (SPC-4 §4.3.1). The CONTROL byte (last byte) is always 0.

/// Operation codes (SPC-4 / MMC-6 command tables).
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const INQUIRY: u8 = 0x12;
    pub const START_STOP_UNIT: u8 = 0x1B;
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub const READ_FORMAT_CAPACITIES: u8 = 0x23;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2A;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const READ_TRACK_INFORMATION: u8 = 0x52;
    pub const MODE_SENSE_10: u8 = 0x5A;
    pub const CLOSE_TRACK_SESSION: u8 = 0x5B;
    pub const READ_BUFFER_CAPACITY: u8 = 0x5C;
    pub const GET_PERFORMANCE: u8 = 0xAC;
    pub const READ_12: u8 = 0xA8;
    pub const WRITE_12: u8 = 0xAA;
    pub const SET_STREAMING: u8 = 0xB6;
    pub const SET_CD_SPEED: u8 = 0xBB;
}

/// Minimum allocation length for GET CONFIGURATION: QEMU's virtio-scsi `scsi-cd` rejects
/// shorter buffers, so every request asks for at least this much.
pub const GET_CONFIGURATION_MIN_ALLOC: u16 = 40;

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}
fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// TEST UNIT READY (SPC-4 Table 197): 6 bytes, all zero except the opcode.
pub fn test_unit_ready() -> [u8; 6] {
    [op::TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// INQUIRY (SPC-4 Table 142): byte 1 bit 0 EVPD, byte 2 PAGE CODE, bytes 3–4 ALLOCATION LENGTH.
pub fn inquiry(evpd_page: Option<u8>, alloc: u16) -> [u8; 6] {
    let [a, b] = be16(alloc);
    let (evpd, page) = match evpd_page {
        Some(p) => (1, p),
        None => (0, 0),
    };
    [op::INQUIRY, evpd, page, a, b, 0]
}

/// READ CAPACITY(10) (SBC-3 Table 64 / MMC-6 §6.23): 10 bytes, no parameters used.
pub fn read_capacity_10() -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::READ_CAPACITY_10;
    c
}

/// GET CONFIGURATION (MMC-6 Table 257): byte 1 bits 1–0 RT, bytes 2–3 STARTING FEATURE NUMBER,
/// bytes 7–8 ALLOCATION LENGTH (raised to [`GET_CONFIGURATION_MIN_ALLOC`]).
pub fn get_configuration(rt: u8, starting_feature: u16, alloc: u16) -> [u8; 10] {
    let alloc = alloc.max(GET_CONFIGURATION_MIN_ALLOC);
    let mut c = [0u8; 10];
    c[0] = op::GET_CONFIGURATION;
    c[1] = rt & 0x03;
    c[2..4].copy_from_slice(&be16(starting_feature));
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// READ DISC INFORMATION (MMC-6 Table 445): byte 1 bits 2–0 DATA TYPE (0 = standard disc
/// information), bytes 7–8 ALLOCATION LENGTH.
pub fn read_disc_information(data_type: u8, alloc: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::READ_DISC_INFORMATION;
    c[1] = data_type & 0x07;
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// Address types of READ TRACK INFORMATION (MMC-6 Table 539).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackAddress {
    /// The track containing this LBA.
    Lba(u32),
    /// Logical track number (0xFF = the invisible/incomplete track).
    Track(u32),
    /// Session number.
    Session(u32),
}

/// READ TRACK INFORMATION (MMC-6 Table 538): byte 1 bit 2 OPEN, bits 1–0 ADDRESS/NUMBER TYPE,
/// bytes 2–5 LOGICAL BLOCK ADDRESS/TRACK/SESSION NUMBER, bytes 7–8 ALLOCATION LENGTH.
pub fn read_track_information(addr: TrackAddress, alloc: u16) -> [u8; 10] {
    let (ty, v) = match addr {
        TrackAddress::Lba(v) => (0, v),
        TrackAddress::Track(v) => (1, v),
        TrackAddress::Session(v) => (2, v),
    };
    let mut c = [0u8; 10];
    c[0] = op::READ_TRACK_INFORMATION;
    c[1] = ty;
    c[2..6].copy_from_slice(&be32(v));
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// READ FORMAT CAPACITIES (MMC-6 Table 479): bytes 7–8 ALLOCATION LENGTH.
pub fn read_format_capacities(alloc: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::READ_FORMAT_CAPACITIES;
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// MODE SENSE(10) (SPC-4 Table 100): byte 1 bit 3 DBD, byte 2 bits 7–6 PC and bits 5–0 PAGE
/// CODE, byte 3 SUBPAGE CODE, bytes 7–8 ALLOCATION LENGTH.
pub fn mode_sense_10(dbd: bool, pc: u8, page: u8, subpage: u8, alloc: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::MODE_SENSE_10;
    c[1] = if dbd { 0x08 } else { 0 };
    c[2] = ((pc & 0x03) << 6) | (page & 0x3F);
    c[3] = subpage;
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// SET CD SPEED (MMC-6 Table 621): bytes 2–3 READ SPEED, bytes 4–5 WRITE SPEED, in kB/s
/// (0xFFFF = maximum).
pub fn set_cd_speed(read_kbs: u16, write_kbs: u16) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = op::SET_CD_SPEED;
    c[2..4].copy_from_slice(&be16(read_kbs));
    c[4..6].copy_from_slice(&be16(write_kbs));
    c
}

/// SET STREAMING (MMC-6 Table 624): byte 8 TYPE (0 = performance descriptor), bytes 9–10
/// PARAMETER LIST LENGTH.
pub fn set_streaming(param_len: u16) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = op::SET_STREAMING;
    c[8] = 0;
    c[9..11].copy_from_slice(&be16(param_len));
    c
}

/// SET STREAMING performance descriptor (MMC-6 Table 625), 28 bytes: byte 0 bits 4–3 WRC,
/// bit 2 RDD, bit 1 EXACT, bit 0 RA; bytes 4–7 START LBA, 8–11 END LBA, 12–15 READ SIZE (kB),
/// 16–19 READ TIME (ms), 20–23 WRITE SIZE (kB), 24–27 WRITE TIME (ms).
pub fn streaming_descriptor(end_lba: u32, read_kbs: u32, write_kbs: u32) -> [u8; 28] {
    let mut d = [0u8; 28];
    d[8..12].copy_from_slice(&be32(end_lba));
    d[12..16].copy_from_slice(&be32(read_kbs));
    d[16..20].copy_from_slice(&be32(1000));
    d[20..24].copy_from_slice(&be32(write_kbs));
    d[24..28].copy_from_slice(&be32(1000));
    d
}

/// READ BUFFER CAPACITY (MMC-6 §6.20): byte 1 bit 0 BLOCK (0 = sizes in bytes), bytes 7–8
/// ALLOCATION LENGTH. Answer: bytes 4–7 LENGTH OF BUFFER, 8–11 BLANK LENGTH OF BUFFER.
pub fn read_buffer_capacity(alloc: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::READ_BUFFER_CAPACITY;
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

/// GET PERFORMANCE (MMC-6 §6.8): byte 1 DATA TYPE (type 00h: bits 4–3 TOLERANCE, bit 2 WRITE,
/// bits 1–0 EXCEPT), bytes 2–5 STARTING LBA, 8–9 MAXIMUM NUMBER OF DESCRIPTORS, byte 10 TYPE
/// (00h performance, 03h write speed).
pub fn get_performance(data_type: u8, lba: u32, max_descriptors: u16, ty: u8) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = op::GET_PERFORMANCE;
    c[1] = data_type;
    c[2..6].copy_from_slice(&be32(lba));
    c[8..10].copy_from_slice(&be16(max_descriptors));
    c[10] = ty;
    c
}

/// READ(10) (SBC-3 Table 97 / MMC-6 §6.15): bytes 2–5 LBA, bytes 7–8 TRANSFER LENGTH.
pub fn read_10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(op::READ_10, lba, blocks)
}

/// WRITE(10) (MMC-6 Table 659): bytes 2–5 LBA, bytes 7–8 TRANSFER LENGTH.
pub fn write_10(lba: u32, blocks: u16) -> [u8; 10] {
    rw10(op::WRITE_10, lba, blocks)
}

fn rw10(opc: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = opc;
    c[2..6].copy_from_slice(&be32(lba));
    c[7..9].copy_from_slice(&be16(blocks));
    c
}

/// READ(12) (MMC-6 Table 460): bytes 2–5 LBA, bytes 6–9 TRANSFER LENGTH.
pub fn read_12(lba: u32, blocks: u32) -> [u8; 12] {
    rw12(op::READ_12, lba, blocks)
}

/// WRITE(12) (MMC-6 Table 663): bytes 2–5 LBA, bytes 6–9 TRANSFER LENGTH.
pub fn write_12(lba: u32, blocks: u32) -> [u8; 12] {
    rw12(op::WRITE_12, lba, blocks)
}

fn rw12(opc: u8, lba: u32, blocks: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = opc;
    c[2..6].copy_from_slice(&be32(lba));
    c[6..10].copy_from_slice(&be32(blocks));
    c
}

/// SYNCHRONIZE CACHE(10) (MMC-6 Table 641): byte 1 bit 1 IMMED.
pub fn synchronize_cache(immed: bool) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::SYNCHRONIZE_CACHE_10;
    c[1] = if immed { 0x02 } else { 0 };
    c
}

/// CLOSE TRACK/SESSION (MMC-6 Table 206): byte 1 bit 0 IMMED, byte 2 bits 2–0 CLOSE FUNCTION,
/// bytes 4–5 LOGICAL TRACK/SESSION NUMBER. Function 1 closes a track, 2 closes the session
/// (finalizes a BD-R when it is the last one), 6 finalizes.
pub fn close_track_session(immed: bool, function: u8, number: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::CLOSE_TRACK_SESSION;
    c[1] = u8::from(immed);
    c[2] = function & 0x07;
    c[4..6].copy_from_slice(&be16(number));
    c
}

/// START STOP UNIT (SBC-3 Table 117 / MMC-6 §6.40): byte 1 bit 0 IMMED, byte 4 bit 1 LOEJ,
/// bit 0 START. (LOEJ, START) = (1, 0) ejects, (1, 1) loads.
pub fn start_stop_unit(immed: bool, loej: bool, start: bool) -> [u8; 6] {
    [
        op::START_STOP_UNIT,
        u8::from(immed),
        0,
        0,
        (u8::from(loej) << 1) | u8::from(start),
        0,
    ]
}

/// PREVENT ALLOW MEDIUM REMOVAL (SPC-4 Table 120 / MMC-6 §6.11): byte 4 bits 1–0 PREVENT.
pub fn prevent_allow_medium_removal(prevent: bool) -> [u8; 6] {
    [
        op::PREVENT_ALLOW_MEDIUM_REMOVAL,
        0,
        0,
        0,
        u8::from(prevent),
        0,
    ]
}

/// GET EVENT STATUS NOTIFICATION (MMC-6 Table 273): byte 1 bit 0 POLLED, byte 4
/// NOTIFICATION CLASS REQUEST (bit 4 = media class), bytes 7–8 ALLOCATION LENGTH.
pub fn get_event_status_notification(class_mask: u8, alloc: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = op::GET_EVENT_STATUS_NOTIFICATION;
    c[1] = 0x01;
    c[4] = class_mask;
    c[7..9].copy_from_slice(&be16(alloc));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_byte_commands() {
        assert_eq!(test_unit_ready(), [0, 0, 0, 0, 0, 0]);
        assert_eq!(inquiry(None, 96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(inquiry(Some(0x80), 0x1234), [0x12, 1, 0x80, 0x12, 0x34, 0]);
        assert_eq!(
            start_stop_unit(false, true, false),
            [0x1B, 0, 0, 0, 0x02, 0]
        );
        assert_eq!(start_stop_unit(true, true, true), [0x1B, 1, 0, 0, 0x03, 0]);
        assert_eq!(prevent_allow_medium_removal(true), [0x1E, 0, 0, 0, 1, 0]);
        assert_eq!(prevent_allow_medium_removal(false), [0x1E, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn get_configuration_layout_and_virtio_minimum() {
        let c = get_configuration(2, 0x0107, 8);
        assert_eq!(c, [0x46, 0x02, 0x01, 0x07, 0, 0, 0, 0, 40, 0]);
        let c = get_configuration(0xFF, 0, 0x0800);
        assert_eq!(c, [0x46, 0x03, 0, 0, 0, 0, 0, 0x08, 0x00, 0]);
    }

    #[test]
    fn information_commands() {
        assert_eq!(read_capacity_10(), [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            read_disc_information(0, 34),
            [0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]
        );
        assert_eq!(
            read_track_information(TrackAddress::Track(0xFF), 48),
            [0x52, 1, 0, 0, 0, 0xFF, 0, 0, 48, 0]
        );
        assert_eq!(
            read_track_information(TrackAddress::Lba(0x0102_0304), 48),
            [0x52, 0, 1, 2, 3, 4, 0, 0, 48, 0]
        );
        assert_eq!(read_track_information(TrackAddress::Session(1), 48)[1], 2);
        assert_eq!(
            read_format_capacities(0xFC),
            [0x23, 0, 0, 0, 0, 0, 0, 0, 0xFC, 0]
        );
        assert_eq!(
            mode_sense_10(true, 0, 0x2A, 0, 0x0100),
            [0x5A, 0x08, 0x2A, 0, 0, 0, 0, 0x01, 0x00, 0]
        );
        assert_eq!(mode_sense_10(false, 3, 0xFF, 0, 8)[2], 0xFF);
        assert_eq!(
            get_event_status_notification(0x10, 8),
            [0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]
        );
    }

    #[test]
    fn read_write_commands() {
        assert_eq!(
            read_10(0x00AB_CDEF, 32),
            [0x28, 0, 0x00, 0xAB, 0xCD, 0xEF, 0, 0, 32, 0]
        );
        assert_eq!(
            write_10(0x00BA_74FF, 0x0100),
            [0x2A, 0, 0x00, 0xBA, 0x74, 0xFF, 0, 0x01, 0x00, 0]
        );
        assert_eq!(
            read_12(7, 0x0001_0000),
            [0xA8, 0, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(write_12(1, 2), [0xAA, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]);
        assert_eq!(synchronize_cache(true), [0x35, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_buffer_capacity(12), [0x5C, 0, 0, 0, 0, 0, 0, 0, 12, 0]);
        assert_eq!(
            get_performance(0, 0, 16, 3),
            [0xAC, 0, 0, 0, 0, 0, 0, 0, 0, 16, 3, 0]
        );
        assert_eq!(get_performance(0x14, 0, 1, 0)[1], 0x14);
        assert_eq!(
            close_track_session(true, 2, 1),
            [0x5B, 1, 2, 0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn speed_commands() {
        assert_eq!(
            set_cd_speed(0xFFFF, 4495 * 4),
            [0xBB, 0, 0xFF, 0xFF, 0x46, 0x3C, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(set_streaming(28), [0xB6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28, 0]);
        let d = streaming_descriptor(12_219_391, 0xFFFF_FFFF, 17_980);
        assert_eq!(d[0], 0);
        assert_eq!(&d[8..12], &12_219_391u32.to_be_bytes());
        assert_eq!(&d[12..16], &[0xFF; 4]);
        assert_eq!(&d[16..20], &1000u32.to_be_bytes());
        assert_eq!(&d[20..24], &17_980u32.to_be_bytes());
        assert_eq!(&d[24..28], &1000u32.to_be_bytes());
    }
}
