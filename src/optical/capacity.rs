//! Usable capacity of a blank disc as the drive reports it, and the pre-burn fit check.

use super::response::{DiscInfo, DiscStatus, FormatCapacity, TrackInfo};

/// BD writes go in whole 64 KiB ECC clusters: the image is padded up to this many sectors.
pub const WRITE_ALIGN_SECTORS: u64 = 32;

/// Free user sectors of a blank medium: READ TRACK INFORMATION's FREE BLOCKS of the invisible
/// track when the disc is blank; otherwise the unformatted READ FORMAT CAPACITIES descriptor
/// (descriptor type 1 = unformatted medium: the full capacity without spare areas).
pub fn blank_free_sectors(
    disc: &DiscInfo,
    track: Option<&TrackInfo>,
    formats: &[FormatCapacity],
) -> Option<u64> {
    if disc.status != DiscStatus::Blank {
        return None;
    }
    if let Some(t) = track {
        if t.free_blocks > 0 {
            return Some(u64::from(t.free_blocks));
        }
    }
    formats
        .first()
        .filter(|f| f.type_byte & 0x03 == 1 && f.blocks > 0)
        .map(|f| u64::from(f.blocks))
}

/// Sectors the burn will actually write for an image: rounded up to whole ECC clusters.
pub fn padded_sectors(image_sectors: u64) -> u64 {
    image_sectors.div_ceil(WRITE_ALIGN_SECTORS) * WRITE_ALIGN_SECTORS
}

/// Why an image does not fit the medium.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("the image needs {needed} sectors (incl. padding to 64 KiB) but the disc has only {free} free; it was planned for {planned} sectors")]
    TooBig {
        needed: u64,
        free: u64,
        planned: u64,
    },
}

/// Checks the padded image against the free sectors the drive reports. `planned` (the header's
/// `capacity_sectors`) is only reported: a partly filled last disc fits whatever it was planned for.
pub fn fit_check(image_sectors: u64, planned: u64, free: u64) -> Result<u64, FitError> {
    let needed = padded_sectors(image_sectors);
    if needed > free {
        return Err(FitError::TooBig {
            needed,
            free,
            planned,
        });
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> DiscInfo {
        DiscInfo {
            status: DiscStatus::Blank,
            erasable: false,
            last_session_state: 0,
            sessions: 1,
            last_track: 1,
        }
    }

    #[test]
    fn free_sectors_from_track_or_format_capacities() {
        let t = TrackInfo {
            start: 0,
            next_writable: Some(0),
            free_blocks: 12_219_392,
            size: 12_219_392,
        };
        assert_eq!(
            blank_free_sectors(&blank(), Some(&t), &[]),
            Some(12_219_392)
        );
        let f = [FormatCapacity {
            blocks: 12_219_392,
            type_byte: 1,
            param: 2048,
        }];
        assert_eq!(blank_free_sectors(&blank(), None, &f), Some(12_219_392));
        let formatted = [FormatCapacity {
            blocks: 11_826_176,
            type_byte: 2,
            param: 2048,
        }];
        assert_eq!(blank_free_sectors(&blank(), None, &formatted), None);
        let mut full = blank();
        full.status = DiscStatus::Complete;
        assert_eq!(blank_free_sectors(&full, Some(&t), &f), None);
    }

    #[test]
    fn fit_is_exact_to_the_sector_including_padding() {
        assert_eq!(padded_sectors(0), 0);
        assert_eq!(padded_sectors(1), 32);
        assert_eq!(padded_sectors(12_219_392), 12_219_392);
        assert_eq!(
            fit_check(12_219_392, 12_219_392, 12_219_392),
            Ok(12_219_392)
        );
        assert_eq!(
            fit_check(12_219_361, 12_219_392, 12_219_392),
            Ok(12_219_392)
        );
        assert_eq!(
            fit_check(12_219_393, 12_219_392, 12_219_392),
            Err(FitError::TooBig {
                needed: 12_219_424,
                free: 12_219_392,
                planned: 12_219_392
            })
        );
        // A partly filled last disc fits a smaller medium than it was planned for.
        assert!(fit_check(1000, 12_219_392, 1024).is_ok());
    }
}
