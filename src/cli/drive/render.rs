//! What `drive` prints about the drive and its medium, as text (like dvd+rw-mediainfo) or JSON.

use crate::cli::Ui;
use bd_archive::optical::medium::{self, MediumReport};
use bd_archive::optical::response::profile_name;
use bd_archive::sector::SECTOR_SIZE;
use bd_archive::util::capacity::human_bytes;

pub(super) fn print_report(r: &MediumReport, ui: &Ui) {
    ui.info(&format!("drive:      {}", r.drive));
    if !r.inquiry.revision.is_empty() {
        ui.info(&format!("firmware:   {}", r.inquiry.revision));
    }
    if !r.medium_present {
        ui.info("medium:     none (tray open or empty)");
        return;
    }
    if let Some(p) = r.profile {
        ui.info(&format!(
            "medium:     {} (profile 0x{p:04X})",
            profile_name(p)
        ));
    }
    if let Some(d) = &r.disc {
        ui.info(&format!("disc:       {}", medium::status_text(d)));
    }
    if let Some((n, bl)) = r.readable {
        ui.info(&format!(
            "readable:   {n} sectors of {bl} bytes ({})",
            human_bytes(n.saturating_mul(u64::from(bl)))
        ));
    }
    if let Some(t) = &r.track {
        ui.info(&format!(
            "track:      start {}, next writable {}, free {} sectors",
            t.start,
            t.next_writable
                .map_or_else(|| "none".to_string(), |n| n.to_string()),
            t.free_blocks
        ));
    }
    if let Some(f) = r.formats.first() {
        ui.info(&format!(
            "format:     {} sectors (descriptor type {})",
            f.blocks,
            f.type_byte & 0x03
        ));
    }
    match medium::blank_bd_r_sectors(r) {
        Ok(free) => ui.info(&format!(
            "blank:      {free} sectors free ({}); `create -D` sizes discs to this",
            human_bytes(free * SECTOR_SIZE as u64)
        )),
        Err(_) if r.blank_free.is_some() => ui.info(&format!(
            "blank:      {} sectors free, but bd-archive burns only BD-R",
            r.blank_free.unwrap_or(0)
        )),
        Err(_) => {}
    }
    for n in &r.notes {
        ui.detail(&format!("note:       {n}"));
    }
}

pub(super) fn json_report(r: &MediumReport) -> serde_json::Value {
    serde_json::json!({
        "drive": r.drive,
        "vendor": r.inquiry.vendor,
        "product": r.inquiry.product,
        "revision": r.inquiry.revision,
        "medium_present": r.medium_present,
        "profile": r.profile,
        "profile_name": r.profile.map(profile_name),
        "disc_status": r.disc.as_ref().map(medium::status_text),
        "readable_sectors": r.readable.map(|(n, _)| n),
        "block_length": r.readable.map(|(_, b)| b),
        "blank_free_sectors": r.blank_free,
        "burnable_blank_sectors": medium::blank_bd_r_sectors(r).ok(),
        "notes": r.notes,
    })
}
