//! What `create` shows before it writes: the overview of the planned discs and the files that
//! `--min-last-disc-fill` deferred.

use crate::cli::args::CreateArgs;
use crate::cli::Ui;
use bd_archive::archive::delta::DeltaStats;
use bd_archive::archive::plan::Overview;
use bd_archive::archive::scan::SourceEntry;
use bd_archive::util::capacity::human_bytes;
use bd_archive::util::escape::escape_path;

pub(super) fn print_overview(
    ui: &Ui,
    o: &Overview,
    args: &CreateArgs,
    generation: u32,
    delta: Option<&DeltaStats>,
) {
    let lines = [
        format!("Archive:       {} (generation {generation})", args.name),
        format!(
            "Source:        {} — {} entries ({} files, {} dirs, {} other)",
            args.source.display(),
            o.entries,
            o.files,
            o.dirs,
            o.others
        ),
        format!("Data:          {}", human_bytes(o.data_bytes)),
        if o.ratio_margin > 0.0 {
            format!(
                "Compression:   ratio {:.3} ± {:.3} ({}) → about {}",
                o.ratio,
                o.ratio_margin,
                o.ratio_source,
                human_bytes(o.est_stored_bytes)
            )
        } else {
            format!(
                "Compression:   ratio {:.3} ({}) → about {}",
                o.ratio,
                o.ratio_source,
                human_bytes(o.est_stored_bytes)
            )
        },
        format!(
            "Disc:          {} each, FEC {} % → {} of data per disc",
            human_bytes(o.capacity_bytes),
            o.redundancy_pct,
            human_bytes(o.data_per_disc)
        ),
        match o.discs_range {
            (lo, hi) if lo < hi => format!(
                "Discs:         {} (last disc about {:.0} % full); {lo} to {hi} within the ratio's ± range",
                o.discs,
                o.last_disc_fill_pct.min(100.0)
            ),
            _ => format!(
                "Discs:         {} (last disc about {:.0} % full; the same across the ratio's ± range)",
                o.discs,
                o.last_disc_fill_pct.min(100.0)
            ),
        },
        if args.fill_parity {
            format!(
                "Fill parity:   on — any {} % of the last disc may be lost (other discs: {} %)",
                o.fill_parity_loss_pct, o.redundancy_pct
            )
        } else if o.fill_parity_loss_pct > o.redundancy_pct {
            format!(
                "Fill parity:   off — with --fill-parity any {} % of the last disc may be lost (now {} %)",
                o.fill_parity_loss_pct, o.redundancy_pct
            )
        } else {
            format!(
                "Fill parity:   off — the last disc is too full for --fill-parity to add protection (any {} % may be lost)",
                o.redundancy_pct
            )
        },
    ];
    if ui.quiet {
        return;
    }
    for l in lines {
        ui.info(&l);
    }
    if o.excluded > 0 {
        ui.info(&format!(
            "Excluded:      {} path(s) left out by --exclude/--exclude-file/--exclude-caches/--one-file-system (a directory counts once)",
            o.excluded
        ));
    }
    if let Some(d) = delta {
        ui.info(&format!(
            "Changes:       {} new, {} changed, {} renamed/copied (not stored again), {} metadata only, {} deleted, {} unchanged; only new and changed entries are stored (counted above)",
            d.new, d.changed, d.renamed, d.metadata_only, d.deleted, d.unchanged
        ));
        if d.hashed > 0 {
            ui.info(&format!(
                "               {} file(s) read to compare content with the base (ctime/inode changed or not recorded, or --checksum): only those that differ are stored",
                d.hashed
            ));
        }
    }
}

/// Shows what `--min-last-disc-fill` deferred.
pub(super) fn report_deferred(ui: &Ui, deferred: &[SourceEntry], incremental: bool, pct: u32) {
    if deferred.is_empty() {
        return;
    }
    let bytes: u64 = deferred.iter().map(|e| e.size).sum();
    ui.info(&format!(
        "Deferred:      {} newest file(s), {} — so the last disc is at least {pct} % full (listed in OUT/deferred-files.txt)",
        deferred.len(),
        human_bytes(bytes)
    ));
    for e in deferred.iter().take(10) {
        ui.info(&format!("                 {}", escape_path(&e.rel_path)));
    }
    if deferred.len() > 10 {
        ui.info(&format!(
            "                 … and {} more",
            deferred.len() - 10
        ));
    }
    if !incremental {
        ui.warn("deferred files are NOT archived in this full archive; they will be included by the next incremental generation (--base)");
    }
}
