//! Disc capacities: `-b` values, BD-R presets, and the minimum we accept.

use thiserror::Error;

use crate::sector::{CLUSTER_SECTORS, SECTOR_SIZE};

/// BD-R user capacities (unformatted, no spare area), in 2048-byte sectors.
pub const PRESETS: &[(&str, u64)] = &[
    ("bd25", 12_219_392),
    ("bd50", 24_438_784),
    ("bd100", 48_878_592),
    ("bd128", 62_500_864),
];

/// The preset a capacity just exceeds (by at most 10 %): `-b 25G` is 26.8 GB, more than a BD-25
/// holds, and almost certainly meant `bd25`. None for a preset itself or anything else.
pub fn preset_just_below(sectors: u64) -> Option<(&'static str, u64)> {
    PRESETS
        .iter()
        .find(|(_, p)| sectors > *p && sectors * 10 <= *p * 11)
        .copied()
}

/// Smallest disc capacity accepted (32 MiB): room for filesystem, headers, index, FEC and data.
pub const MIN_CAPACITY_BYTES: u64 = 32 << 20;

/// Errors parsing a disc capacity.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CapacityError {
    /// Not a number, suffix or preset.
    #[error("{0}: not a size; give bytes (e.g. 25025314816), K/M/G (KiB/MiB/GiB, e.g. 64M) or a preset: bd25, bd50, bd100, bd128")]
    Syntax(String),
    /// Below the minimum.
    #[error("{0}: smaller than the minimum disc size of 32M")]
    TooSmall(String),
}

/// Parses a `-b` value into usable sectors, rounded down to whole 64 KiB ECC clusters.
pub fn parse_capacity(s: &str) -> Result<u64, CapacityError> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, sectors)) = PRESETS
        .iter()
        .find(|(n, _)| *n == t || n.replace("bd", "bd-") == t)
    {
        return Ok(*sectors);
    }
    let bytes = parse_size(&t).ok_or_else(|| CapacityError::Syntax(s.to_string()))?;
    if bytes < MIN_CAPACITY_BYTES {
        return Err(CapacityError::TooSmall(s.to_string()));
    }
    Ok(bytes / SECTOR_SIZE as u64 / CLUSTER_SECTORS * CLUSTER_SECTORS)
}

/// Parses a byte count with an optional K/M/G/T suffix (KiB/MiB/GiB/TiB), case-insensitive;
/// None if it is not a number or overflows. Shared by `-b` and `--memory`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (&t[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Human-readable binary size ("23.3 GiB", "512 B"), as the seed printed.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gib_sizes_just_above_a_preset_are_noticed() {
        for (given, preset) in [
            ("25G", "bd25"),
            ("50G", "bd50"),
            ("100G", "bd100"),
            ("128G", "bd128"),
        ] {
            let sectors = parse_capacity(given).unwrap();
            assert_eq!(
                preset_just_below(sectors).map(|p| p.0),
                Some(preset),
                "{given}"
            );
        }
        for fine in ["bd25", "bd128", "23G", "64M", "200G"] {
            assert_eq!(
                preset_just_below(parse_capacity(fine).unwrap()),
                None,
                "{fine}"
            );
        }
    }

    #[test]
    fn presets_and_suffixes() {
        assert_eq!(parse_capacity("bd25").unwrap() * 2048, 25_025_314_816);
        assert_eq!(parse_capacity("BD128").unwrap(), 62_500_864);
        assert_eq!(parse_capacity("64M").unwrap(), 32768);
        assert_eq!(parse_capacity("1g").unwrap(), 524_288);
        assert_eq!(parse_capacity("25025314816").unwrap(), 12_219_392);
        assert!(matches!(
            parse_capacity("1M"),
            Err(CapacityError::TooSmall(_))
        ));
        assert!(matches!(
            parse_capacity("lots"),
            Err(CapacityError::Syntax(_))
        ));
        assert!(matches!(
            parse_capacity("99999999999999999999G"),
            Err(CapacityError::Syntax(_))
        ));
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(25 << 30), "25.0 GiB");
    }
}
