//! How many sectors one SG_IO command moves: the one place that decides it.
//!
//! Linux refuses an SG_IO data phase longer than the device queue's `max_hw_sectors` with EIO
//! before the drive sees the command (`sg_io()`: `dxfer_len > queue_max_hw_sectors(q) << 9`).
//! libata gives ATAPI drives 128 KiB (`ATA_MAX_SECTORS` = 256 × 512 B), usb-storage bridges
//! often 120 KiB or even 32 KiB. Every writer and reader of a drive — burn writes, the post-burn
//! read-back, `verify -D`, `extract -D`, `drive --read-to`, and through them the FEC scans of a
//! drive — asks here, with the limit its [`Drive`](super::drive::Drive) reports.
//!
//! Sizes are whole multiples of 32 KiB (16 sectors; growisofs' `DVD_BLOCK`, half a BD ECC
//! cluster), never above the limit. Writes prefer 64 KiB (one BD cluster, libburn's BD-R
//! `Libburn_bd_r_obS`, write.c:88); reads take as much as the limit allows up to 2 MiB.

/// Sectors of 2048 bytes in 32 KiB: every transfer is a multiple of this.
pub const TRANSFER_ALIGN_SECTORS: u64 = 16;
/// Sectors per WRITE when the drive allows it: one 64 KiB BD ECC cluster.
pub const PREFERRED_WRITE_SECTORS: u64 = 32;
/// Most sectors per READ we ever send (2 MiB).
pub const MAX_READ_SECTORS: u64 = 1024;
/// Limit assumed when the kernel does not say (the smallest common bridge limit, 64 KiB).
pub const UNKNOWN_LIMIT: usize = 64 << 10;
/// Largest limit we believe, whatever the kernel reports (1 MiB).
pub const LIMIT_CAP: usize = 1 << 20;

const SECTOR: usize = 2048;

/// Sectors per command for a device accepting at most `limit` bytes per command, at most
/// `want`: the largest multiple of 32 KiB within both, or — on a device below 32 KiB — the
/// whole sectors that fit (at least 1, the smallest READ/WRITE possible).
pub fn sectors_per_command(limit: usize, want: u64) -> u64 {
    let fit = (limit / SECTOR) as u64;
    let aligned = fit / TRANSFER_ALIGN_SECTORS * TRANSFER_ALIGN_SECTORS;
    let n = if aligned > 0 { aligned } else { fit.max(1) };
    n.min(want.max(1))
}

/// Sectors per WRITE on a device with this limit.
pub fn write_sectors(limit: usize) -> u64 {
    sectors_per_command(limit, PREFERRED_WRITE_SECTORS)
}

/// Sectors per READ on a device with this limit.
pub fn read_sectors(limit: usize) -> u64 {
    sectors_per_command(limit, MAX_READ_SECTORS)
}

/// Where a kernel limit came from, for `burn`'s one-line report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLimits {
    /// `BLKSECTGET` on the block device, in bytes.
    pub blksectget: Option<usize>,
    /// `queue/max_hw_sectors_kb` × 1024: the limit `sg_io()` enforces.
    pub max_hw_sectors: Option<usize>,
    /// `queue/max_sectors_kb` × 1024: the soft limit for file-system requests (≤ the hard one).
    pub max_sectors: Option<usize>,
    /// `queue/max_segments` and `queue/max_segment_size`: the kernel maps our buffer page by
    /// page, and pages that happen not to be physically adjacent each take a segment, so a
    /// transfer longer than (segments − 1) pages fails with EINVAL now and then (seen in the
    /// QEMU guest: 1 MiB READs on virtio-scsi, 254 segments, failed in one run of three).
    pub max_segments: Option<usize>,
    pub max_segment_size: Option<usize>,
}

/// The smallest page the kernel maps a user buffer in (x86-64, arm64 with 4 KiB pages).
const PAGE: usize = 4096;

impl KernelLimits {
    /// The limit to obey: the smallest one reported (each is a limit of some path the command
    /// may take), [`UNKNOWN_LIMIT`] when none is, never above [`LIMIT_CAP`]; whole sectors,
    /// at least one.
    pub fn effective(&self) -> usize {
        // An unaligned buffer spans one page more than its length; each page may be a segment.
        let by_segments = self
            .max_segments
            .map(|n| n.saturating_sub(1) * self.max_segment_size.unwrap_or(PAGE).clamp(512, PAGE));
        let smallest = [
            self.blksectget,
            self.max_hw_sectors,
            self.max_sectors,
            by_segments,
        ]
        .into_iter()
        .flatten()
        .filter(|&v| v > 0)
        .min()
        .unwrap_or(UNKNOWN_LIMIT);
        (smallest.min(LIMIT_CAP) / SECTOR).max(1) * SECTOR
    }
}

/// "128 KiB" for messages.
pub fn describe_limit(limit: usize) -> String {
    if limit % 1024 == 0 {
        format!("{} KiB", limit / 1024)
    } else {
        format!("{limit} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_32k_multiples_within_the_limit() {
        // libata ATAPI: 128 KiB → 64-sector reads, 64 KiB writes.
        assert_eq!(read_sectors(128 << 10), 64);
        assert_eq!(write_sectors(128 << 10), 32);
        // usb-storage 120 KiB → 96 KiB reads (not 120: 32 KiB multiples), 64 KiB writes.
        assert_eq!(read_sectors(120 << 10), 48);
        assert_eq!(write_sectors(120 << 10), 32);
        // US_FL_MAX_SECTORS_64 bridges: 32 KiB.
        assert_eq!(read_sectors(32 << 10), 16);
        assert_eq!(write_sectors(32 << 10), 16);
        // Big queues are capped at 2 MiB reads.
        assert_eq!(read_sectors(1 << 30), 1024);
        // Odd, tiny limits still move whole sectors, at least one.
        assert_eq!(read_sectors(6 << 10), 3);
        assert_eq!(read_sectors(100), 1);
        for limit in (2048..(4 << 20)).step_by(4096 + 512) {
            for n in [read_sectors(limit), write_sectors(limit)] {
                assert!(n as usize * SECTOR <= limit.max(SECTOR), "{limit}: {n}");
                if limit >= 32 << 10 {
                    assert_eq!(n % TRANSFER_ALIGN_SECTORS, 0, "{limit}");
                }
            }
        }
    }

    #[test]
    fn effective_limit_is_the_smallest_reported() {
        let k = |a, b, c| KernelLimits {
            blksectget: a,
            max_hw_sectors: b,
            max_sectors: c,
            max_segments: None,
            max_segment_size: None,
        };
        assert_eq!(k(None, None, None).effective(), UNKNOWN_LIMIT);
        assert_eq!(
            k(Some(512 << 10), Some(128 << 10), Some(1280 << 10)).effective(),
            128 << 10
        );
        assert_eq!(k(Some(120 << 10), None, None).effective(), 120 << 10);
        assert_eq!(k(None, Some(32767 << 10), None).effective(), LIMIT_CAP);
        // Below one sector: one sector (a READ of 1 sector is the smallest command there is).
        assert_eq!(k(Some(0), Some(1000), None).effective(), 2048);
        // virtio-scsi in the QEMU guest: 32766 / 1280 KiB, but 254 segments of a page each.
        let virtio = KernelLimits {
            max_segments: Some(254),
            max_segment_size: Some(65536),
            ..k(Some(1280 << 10), Some(32766 << 10), Some(1280 << 10))
        };
        assert_eq!(virtio.effective(), 253 * 4096);
        assert_eq!(read_sectors(virtio.effective()), 496);
        // libata ATAPI in the guest: 127 segments, 128 KiB: the sector limit decides.
        let ata = KernelLimits {
            max_segments: Some(127),
            max_segment_size: Some(65536),
            ..k(Some(128 << 10), Some(128 << 10), Some(128 << 10))
        };
        assert_eq!(ata.effective(), 128 << 10);
        assert_eq!(describe_limit(128 << 10), "128 KiB");
    }
}
