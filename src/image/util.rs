//! Byte-level helpers shared by the writers and readers: endian fields, dates, the UDF CRC and
//! OSTA CS0 strings. Readers only use the `get`-based accessors, which never panic.

/// Writes `v` little-endian at `off`. Writer-side only: offsets are computed by us.
pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes the ISO9660 both-endian form of a u16 (4 bytes: LE then BE).
pub(crate) fn put_u16_both(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    b[off + 2..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Writes the ISO9660 both-endian form of a u32 (8 bytes: LE then BE).
pub(crate) fn put_u32_both(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    b[off + 4..off + 8].copy_from_slice(&v.to_be_bytes());
}

/// Reads a little-endian u16, `None` if out of bounds.
pub(crate) fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a little-endian u32, `None` if out of bounds.
pub(crate) fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a little-endian u64, `None` if out of bounds.
pub(crate) fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    let lo = get_u32(b, off)? as u64;
    let hi = get_u32(b, off.checked_add(4)?)? as u64;
    Some(lo | (hi << 32))
}

pub(crate) use crate::util::civil_time::{civil_from_unix, unix_from_civil};

/// The UDF descriptor CRC: CRC-ITU-T (CCITT), polynomial 0x1021, initial value 0, not reflected.
pub(crate) fn crc_itu(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// OSTA CS0 encoding of `s` without a length byte: compression id 8 (Latin-1) when every char is
/// below U+0100, else 16 (UTF-16BE). At most `max` bytes; truncation never splits a character or
/// a surrogate pair. Returns the bytes and whether `s` was truncated.
pub(crate) fn cs0_encode(s: &str, max: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    if max == 0 {
        return (out, !s.is_empty());
    }
    if s.chars().all(|c| (c as u32) < 0x100) {
        out.push(8);
        for c in s.chars() {
            if out.len() + 1 > max {
                return (out, true);
            }
            out.push(c as u32 as u8);
        }
    } else {
        out.push(16);
        for c in s.chars() {
            let mut units = [0u16; 2];
            let enc = c.encode_utf16(&mut units);
            if out.len() + 2 * enc.len() > max {
                return (out, true);
            }
            for u in enc.iter() {
                out.extend_from_slice(&u.to_be_bytes());
            }
        }
    }
    (out, false)
}

/// A CS0 dstring field of `len` bytes: content (≤ len-1 bytes), zero padding, last byte = content
/// length. An empty string is all zeros.
pub(crate) fn dstring(s: &str, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    if s.is_empty() {
        return f;
    }
    let (enc, _) = cs0_encode(s, len - 1);
    f[..enc.len()].copy_from_slice(&enc);
    f[len - 1] = enc.len() as u8;
    f
}

/// Decodes CS0 bytes (compression id first). `None` for an unknown compression id or odd UTF-16.
pub(crate) fn cs0_decode(b: &[u8]) -> Option<String> {
    let (&comp, rest) = b.split_first()?;
    match comp {
        8 | 254 => Some(rest.iter().map(|&c| c as char).collect()),
        16 | 255 => {
            if rest.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Decodes a dstring field (length in the last byte).
pub(crate) fn dstring_decode(f: &[u8]) -> Option<String> {
    let (&n, body) = f.split_last()?;
    if n == 0 {
        return Some(String::new());
    }
    cs0_decode(body.get(..n as usize)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // CRC-16/XMODEM check value.
        assert_eq!(crc_itu(b"123456789"), 0x31C3);
    }

    #[test]
    fn civil_round_trip() {
        for t in [0i64, 951_782_400, 1_700_000_000, -86_401, 4_102_444_800] {
            let (y, m, d, hh, mm, ss) = civil_from_unix(t);
            assert_eq!(unix_from_civil(y, m, d, hh, mm, ss), t);
        }
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn cs0_round_trip() {
        for s in ["abc", "Grüße", "日本語 😀"] {
            let (e, t) = cs0_encode(s, 255);
            assert!(!t);
            assert_eq!(cs0_decode(&e).unwrap(), s);
        }
        let (e, t) = cs0_encode("😀😀", 4);
        assert!(t);
        assert_eq!(e.len(), 1); // a surrogate pair is never split
        assert_eq!(dstring_decode(&dstring("Vol", 32)).unwrap(), "Vol");
    }
}
