//! `drive --read-to FILE`: a plain whole-disc copy with READ(12), no retries and no repair.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::cli::{progress_bar, Ui};
use bd_archive::optical::drive::Drive;
use bd_archive::optical::medium::MediumReport;
use bd_archive::optical::mmc::{Mmc, LONG_TIMEOUT};
use bd_archive::sector::SECTOR_SIZE;
use bd_archive::util::capacity::human_bytes;

/// Copies sectors 0..READ CAPACITY to `out` with plain READ(12)s, printing size, speed, SHA-256.
pub(super) fn read_whole_disc(
    drive: &mut Box<dyn Drive>,
    r: &MediumReport,
    out: &Path,
    ui: &Ui,
) -> Result<()> {
    let Some((sectors, block)) = r.readable else {
        bail!(
            "{}: the drive reports no readable sectors (blank or no disc)",
            r.drive
        );
    };
    if block as usize != SECTOR_SIZE {
        bail!(
            "{}: the disc has {block}-byte blocks; bd-archive reads 2048-byte data discs",
            r.drive
        );
    }
    let Ok(total) = u32::try_from(sectors) else {
        bail!("{}: implausible disc size of {sectors} sectors", r.drive);
    };
    let mut file = std::fs::File::create(out)
        .with_context(|| format!("--read-to {}: cannot create", out.display()))?;
    let mut hash = Sha256::new();
    // A plain copy: as many sectors per READ(12) as the kernel's limit for the drive allows.
    let per_read = bd_archive::optical::transfer::read_sectors(drive.max_transfer()) as u32;
    let mut buf = vec![0u8; per_read as usize * SECTOR_SIZE];
    let pb = progress_bar(ui, Some(u64::from(total) * SECTOR_SIZE as u64), "reading");
    let start = Instant::now();
    let mut lba = 0u32;
    while lba < total {
        if bd_archive::util::interrupt::requested() {
            return Err(bd_archive::util::interrupt::Interrupted(format!(
                ": stopped after {lba} of {total} sectors; {} is incomplete",
                out.display()
            ))
            .into());
        }
        let n = per_read.min(total - lba);
        let chunk = &mut buf[..n as usize * SECTOR_SIZE];
        drive.read_sectors(lba, chunk, LONG_TIMEOUT).with_context(|| {
            format!(
                "{}: reading sectors {lba}..{} (for damaged discs use `bd-archive verify`/`extract`, which retry and repair)",
                r.drive,
                lba + n
            )
        })?;
        hash.update(&*chunk);
        file.write_all(chunk)
            .with_context(|| format!("--read-to {}: write failed", out.display()))?;
        lba += n;
        pb.set_position(u64::from(lba) * SECTOR_SIZE as u64);
    }
    pb.finish_and_clear();
    file.sync_all()
        .with_context(|| format!("--read-to {}: write failed", out.display()))?;
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let bytes = u64::from(total) * SECTOR_SIZE as u64;
    ui.info(&format!(
        "read {total} sectors ({}) to {} in {secs:.1} s ({:.1} MB/s)",
        human_bytes(bytes),
        out.display(),
        bytes as f64 / secs / 1e6
    ));
    ui.info(&format!("sha256:     {:x}", hash.finalize()));
    Ok(())
}
