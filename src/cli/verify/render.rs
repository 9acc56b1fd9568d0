//! What `verify` prints for each disc: its verdict, the lost files, and the conflict when images
//! of one generation come from different sets.

use crate::cli::Ui;
use bd_archive::restore::verify::{Health, VerifyReport};
use bd_archive::sector::SECTOR_SIZE;
use bd_archive::util::capacity::human_bytes;

pub(super) fn print_report(r: &VerifyReport, ui: &Ui) {
    let who = match (&r.chain, r.generation, r.disc) {
        (Some(c), Some(g), _) if r.parity_disc.is_some() => format!(
            "'{c}' generation {g} parity disc {}",
            r.parity_disc.unwrap_or(0)
        ),
        (Some(c), Some(g), Some(d)) => format!("'{c}' generation {g} disc {d}"),
        _ => "disc header unreadable".into(),
    };
    let size = human_bytes(r.sectors * SECTOR_SIZE as u64);
    match (&r.directory, r.health) {
        (Some(d), health) => {
            let verdict = match health {
                Health::Ok => "OK",
                Health::Repairable => "DAMAGED, REPAIRABLE",
                Health::Broken => "BROKEN",
            };
            ui.info(&format!(
                "{}: {verdict} — {who} (disc directory): {} data chunk(s) checked against their checksums, {} damaged, {} of them rebuilt through the FEC file",
                r.image, d.chunks_checked, d.chunks_damaged, d.chunks_rebuilt
            ));
            for n in &d.not_checked {
                ui.info(&format!("  not checked: {n}"));
            }
        }
        (None, Health::Ok) => ui.info(&format!("{}: OK — {who}, {size}, every sector intact", r.image)),
        (None, Health::Repairable) => ui.info(&format!(
            "{}: DAMAGED, REPAIRABLE — {who}: {} data and {} parity sector(s) lost; worst stripe lost {} of {} (margin {})",
            r.image,
            r.lost_data_sectors,
            r.lost_parity_sectors,
            r.worst_stripe_loss,
            r.parity_per_stripe,
            i64::from(r.parity_per_stripe) - i64::from(r.worst_stripe_loss)
        )),
        (None, Health::Broken) => ui.info(&format!(
            "{}: BROKEN — {who}: {} data sector(s) lost; worst stripe lost {} but only {} can be rebuilt",
            r.image, r.lost_data_sectors, r.worst_stripe_loss, r.parity_per_stripe
        )),
    }
    if !r.affected_disc_files.is_empty() {
        ui.info(&format!(
            "  affected files on the disc: {}",
            r.affected_disc_files.join(", ")
        ));
    }
    if let Some(p) = &r.repaired_to {
        ui.info(&format!("  repaired copy written to {p}"));
    }
}

/// The lost archived entries of a broken disc (after the catalog, if any, has named them).
pub(super) fn print_lost(r: &VerifyReport, ui: &Ui) {
    if r.index_destroyed && !r.lost_entries.is_empty() {
        ui.info(&format!(
            "{}: lost files (from the disc's index or the catalog):",
            r.image
        ));
    }
    for e in r.lost_entries.iter().take(50) {
        ui.info(&format!("  lost: {e}"));
    }
    if r.lost_entries.len() > 50 {
        ui.info(&format!(
            "  … and {} more archived entries lost",
            r.lost_entries.len() - 50
        ));
    }
}

/// Names the sets when images of one generation come from two different create runs (extract
/// refuses such a mix; each image's own verdict above still stands).
pub(super) fn set_conflict(reports: &[VerifyReport]) -> Option<String> {
    use bd_archive::restore::sources::{describe_set, shown_digits, SetId};
    use std::collections::BTreeMap;
    // Every generation a disc holds counts: a --pack-with disc belongs to several sets.
    let mut sets: BTreeMap<(&str, u32), BTreeMap<SetId, Vec<&str>>> = BTreeMap::new();
    for r in reports {
        let Some(c) = &r.chain else { continue };
        for s in &r.sections {
            if let Some(id) = s.set {
                let images = sets.entry((c, s.generation)).or_default().entry(id);
                images.or_default().push(&r.image);
            }
        }
    }
    let ((chain, generation), ids) = sets.into_iter().find(|(_, ids)| ids.len() > 1)?;
    let digits = shown_digits(ids.keys());
    let described: Vec<String> = ids
        .iter()
        .map(|(id, images)| format!("set {}: {}", describe_set(id, digits), images.join(", ")))
        .collect();
    Some(format!(
        "these images hold generation {generation} of chain '{chain}' from {} different sets (separate create runs): {}; they are not one set — extract refuses the mix unless --set ID picks one",
        ids.len(),
        described.join("; ")
    ))
}

/// One disc in the `verify --json` document: its report, and the verdict of its parity set.
#[derive(serde::Serialize)]
struct DiscJson<'a> {
    #[serde(flatten)]
    report: &'a VerifyReport,
    parity_set: Option<&'a super::set::SetJson>,
}

/// The `verify --json` document: one object per disc; a disc of a parity set also carries the
/// set's verdict as `parity_set` (null otherwise), so the array keeps its shape.
pub(super) fn json(
    reports: &[VerifyReport],
    sets: &[super::set::SetVerdict],
) -> anyhow::Result<String> {
    let doc: Vec<DiscJson> = reports
        .iter()
        .map(|r| DiscJson {
            report: r,
            parity_set: sets
                .iter()
                .find(|s| s.covered.contains(&r.image))
                .map(|s| &s.json),
        })
        .collect();
    Ok(serde_json::to_string_pretty(&doc)?)
}
