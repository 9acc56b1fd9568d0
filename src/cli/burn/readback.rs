//! The burned disc read back through the drive and checked against its FEC checksum tables.

use anyhow::Result;

use crate::cli::{progress_bar, Ui};
use bd_archive::disc::reader::find_disc_header;
use bd_archive::fec;
use bd_archive::optical::burn::BurnReadback;
use bd_archive::optical::drive::Drive;
use bd_archive::restore::verify::Health;
use bd_archive::sector::{SectorSource, SECTOR_SIZE};

/// Reads the burned image back through the drive and checks every sector against the FEC
/// checksum tables (the same check as `verify IMAGE`).
pub(super) fn read_back(
    d: &mut dyn Drive,
    ui: &Ui,
    sectors: u64,
    num: u32,
    last: u32,
) -> Result<Health> {
    let rb = BurnReadback::new(d, sectors);
    let header = find_disc_header(&rb);
    let Ok(located) = fec::locate(&rb, header.as_ref().map(|h| h.fec_lba)) else {
        return Ok(Health::Broken);
    };
    let total = located.layout.protected_sectors() + located.layout.region_sectors();
    let pb = progress_bar(
        ui,
        Some(total * SECTOR_SIZE as u64),
        &format!("checking disc {num}/{last}"),
    );
    let scan = fec::scan(&rb as &dyn SectorSource, &located, &|n| {
        pb.set_position(n * SECTOR_SIZE as u64)
    });
    pb.finish_and_clear();
    let Ok(scan) = scan else {
        return Ok(Health::Broken);
    };
    Ok(if scan.is_clean() {
        Health::Ok
    } else if scan.is_repairable() {
        ui.detail(&format!(
            "disc {num}: {} data and {} parity sector(s) bad",
            scan.lost_data_sectors(),
            scan.lost_parity_sectors()
        ));
        Health::Repairable
    } else {
        Health::Broken
    })
}
