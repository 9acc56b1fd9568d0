//! `create`: options → [`archive::prepare`] → overview and confirmation → [`archive::create`] →
//! summary. The pipeline itself is in the library (`bd_archive::archive`).

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::cli::args::{CompressionArg, CreateArgs};
use crate::cli::{confirm, parse_memory, Ui};
use bd_archive::archive::delta::{load_base, ChainError, DeltaStats};
use bd_archive::archive::plan::Overview;
use bd_archive::archive::scan::SourceEntry;
use bd_archive::archive::{self, Base, CreateJob, Pack, Preparation, RatioEstimate};
use bd_archive::format::catalog::Catalog;
use bd_archive::format::chunk::Compression;
use bd_archive::legacy::{BaseProblem, SeedError};
use bd_archive::util::capacity::{human_bytes, parse_capacity};
use bd_archive::util::escape::escape_path;

/// Runs `create`.
pub fn run(args: &CreateArgs, ui: &Ui) -> Result<i32> {
    let job = job(args, ui)?;
    let prepared = match archive::prepare(&job, ui).map_err(crate::cli::explain::create)? {
        Preparation::Unchanged { base_generation } => {
            ui.info(&format!(
                "Nothing changed since generation {base_generation}; no new generation written (pass --allow-empty to write one anyway)."
            ));
            return Ok(crate::cli::exit::OK);
        }
        Preparation::Ready(p) => *p,
    };
    let (generation, deferred) = (prepared.generation, &prepared.deferred);
    let pct = args.min_last_disc_fill;
    report_deferred(ui, deferred, prepared.incremental, pct);
    if args.json && args.dry_run {
        let doc = serde_json::json!({ "generation": generation, "overview": prepared.overview, "changes": prepared.delta });
        ui.info(&serde_json::to_string_pretty(&doc)?);
        return Ok(crate::cli::exit::OK);
    }
    print_overview(
        ui,
        &prepared.overview,
        args,
        generation,
        prepared.delta.as_ref(),
    );
    report_deferred(ui, deferred, prepared.incremental, pct);
    if args.dry_run {
        return Ok(crate::cli::exit::OK);
    }
    if !args.yes && !confirm("Create the images?", "-y/--yes")? {
        ui.say("Cancelled; nothing written.");
        return Ok(crate::cli::exit::OK);
    }
    let report = archive::create(&job, prepared, ui).map_err(crate::cli::explain::create)?;
    if job.warn_binary_not_carried {
        binary_note::remember();
    }
    // The scan's problems were shown when met.
    for p in report.problems.iter().skip(report.scan_problems) {
        ui.warn(&format!("{}: {}", escape_path(&p.path), p.message));
    }
    if let Some(path) = &report.problems_file {
        ui.warn(&format!(
            "{} source problem(s) listed in {} (exit 1: finished with damage)",
            report.problems.len(),
            path.display()
        ));
    }
    if let (Some(p), Some(first)) = (&args.pack_with, report.images.first()) {
        ui.info(&format!(
            "{} now holds {} and generation {generation}: burn it instead of {} (which is left untouched)",
            first.display(),
            p.display(),
            p.display()
        ));
    }
    ui.say(&format!(
        "Done: {} image(s) in {}, catalog {}",
        report.images.len(),
        report.images_dir.display(),
        report.catalog.display()
    ));
    // As tar: files unreadable or changed while read make the run "finished with damage".
    Ok(if report.problems.is_empty() {
        crate::cli::exit::OK
    } else {
        crate::cli::exit::DAMAGED
    })
}

/// The flags checked and turned into the engine's job (in the order the errors were always given).
fn job(args: &CreateArgs, ui: &Ui) -> Result<CreateJob> {
    validate_name(&args.name)?;
    let compression = compression(args)?;
    refuse_unavailable(args)?;
    let capacity_sectors = match (&args.bytes, &args.device) {
        (Some(bytes), _) => {
            let sectors = parse_capacity(bytes).map_err(|e| anyhow!("-b {e}"))?;
            warn_near_preset(bytes, sectors, ui);
            sectors
        }
        (None, Some(dev)) => super::drive::capacity_from_drive(dev, ui)?,
        (None, None) => bail!("no disc capacity: pass -b bd25|bd50|bd100|bd128, a size such as -b 64M, or -D DEV with a blank BD-R"),
    };
    if !(1..=bd_archive::fec::MAX_LOSS_PCT).contains(&args.redundancy) {
        bail!(
            "-r {}: redundancy is the share of a disc's sectors that may be lost, 1 to {} percent (default 10); --fill-parity adds more",
            args.redundancy,
            bd_archive::fec::MAX_LOSS_PCT
        );
    }
    let memory_budget = parse_memory(args.memory.as_deref())?;
    let pack = match &args.pack_with {
        Some(p) => {
            let (carry, catalog) =
                archive::open_pack(p, &args.name).map_err(crate::cli::explain::create)?;
            Some(Pack { carry, catalog })
        }
        None => None,
    };
    let base = match &args.base {
        Some(b) => Some(Base {
            path: b.clone(),
            catalog: base_catalog(b, &args.name)?,
        }),
        None => None,
    };
    let ratio = match (args.ratio, &args.sample) {
        (Some(r), _) => RatioEstimate::Given(r),
        (None, Some(dir)) => RatioEstimate::Sample(dir.clone()),
        (None, None) => RatioEstimate::FromSource,
    };
    Ok(CreateJob {
        name: args.name.clone(),
        source: args.source.clone(),
        output: args.output.clone(),
        workdir: args.workdir.clone(),
        capacity_sectors,
        compression,
        redundancy_pct: args.redundancy,
        fill_parity: args.fill_parity,
        memory_budget,
        base,
        pack,
        ratio,
        min_last_disc_fill: args.min_last_disc_fill,
        checksum: args.checksum,
        allow_empty: args.allow_empty,
        resume: args.resume,
        no_binary: args.no_binary,
        dry_run: args.dry_run,
        exclude_patterns: exclude_patterns(args)?,
        exclude_caches: args.exclude_caches,
        one_file_system: args.one_file_system,
        parity_discs: args.parity_discs,
        warn_binary_not_carried: !binary_note::given(),
    })
}

/// `--exclude` patterns plus those of `--exclude-file`.
fn exclude_patterns(args: &CreateArgs) -> Result<Vec<String>> {
    let mut patterns = args.exclude.clone();
    if let Some(f) = &args.exclude_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("--exclude-file {}: {e}", f.display()))?;
        patterns.extend(
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(patterns)
}

/// `-b 25G` (GiB) is what people type for a BD-25, but it is 26.8 GB: discs that would not fit
/// (found out only at `burn`). Said before anything is written.
fn warn_near_preset(given: &str, sectors: u64, ui: &Ui) {
    let Some((preset, preset_sectors)) = bd_archive::util::capacity::preset_just_below(sectors)
    else {
        return;
    };
    let gb = |s: u64| s as f64 * 2048.0 / 1e9;
    ui.warn(&format!(
        "-b {given}: did you mean -b {preset}? ({given} = {:.1} GB > {}'s {:.1} GB; K/M/G are KiB/MiB/GiB) — images this size will not fit a {}",
        gb(sectors),
        preset.to_uppercase().replace("BD", "BD-"),
        gb(preset_sectors),
        preset.to_uppercase().replace("BD", "BD-"),
    ));
}

/// `--base`: a seed chain's dar catalogue (or its discs) is continued in our format; otherwise a
/// catalog of ours, or an OUT directory holding one. The format is decided here, once.
fn base_catalog(path: &Path, name: &str) -> Result<Catalog> {
    let seed = bd_archive::legacy::seed_chain::load_seed_base(path, name).map_err(|e| match e {
        SeedError::Base {
            problem: BaseProblem::OtherChain { ref found, .. },
            ..
        } => anyhow!("--base {e}; a continued chain keeps its name (-n {found})"),
        SeedError::Base { .. } => anyhow!("--base {e}"),
        e => anyhow::Error::new(e),
    })?;
    if let Some(c) = seed {
        return Ok(c);
    }
    match load_base(path, name) {
        Ok(c) => Ok(c),
        // The previous generation's last disc image (or a directory of its images) carries
        // the catalog too.
        Err(e) => match catalog_from_images(path, name)? {
            Some(c) => Ok(c),
            None => Err(match e {
                ChainError::OtherChain(..) => {
                    anyhow!("--base {e}; all generations of a chain must use the same -n")
                }
                e => anyhow!("--base {e}"),
            }),
        },
    }
}

/// The newest catalog of chain `name` on the images at `path` (an image, or a directory of
/// images or disc directories); None when there is none.
fn catalog_from_images(path: &Path, name: &str) -> Result<Option<Catalog>> {
    use bd_archive::disc::reader::{expand_sources, Disc, RepairSettings};
    let Ok(images) = expand_sources(&[path.to_path_buf()]) else {
        return Ok(None);
    };
    let mut newest: Option<Catalog> = None;
    for image in images {
        let Ok(discs) = Disc::open_all(&image, &RepairSettings::default()) else {
            continue;
        };
        for c in discs.into_iter().filter_map(|d| d.catalog) {
            if c.chain.name == name
                && newest
                    .as_ref()
                    .is_none_or(|n| c.chain.generation > n.chain.generation)
            {
                newest = Some(c);
            }
        }
    }
    Ok(newest)
}

/// Checks a chain name: UTF-8 (guaranteed by the CLI), 1..=64 bytes, no '/', NUL or control characters.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        bail!("-n {name:?}: the archive name must be 1 to 64 bytes long");
    }
    if name.chars().any(|c| c == '/' || c.is_control()) || name == "." || name == ".." {
        bail!("-n {name:?}: the archive name must not contain '/', NUL or control characters");
    }
    Ok(())
}

fn compression(args: &CreateArgs) -> Result<Compression> {
    let level = args.level.unwrap_or(3);
    match args.compression {
        CompressionArg::Zstd => {
            if !(1..=22).contains(&level) {
                bail!("-l {level}: zstd levels are 1 to 22 (default 3; 19 for a high ratio)");
            }
            Ok(Compression::Zstd(level))
        }
        CompressionArg::None => Ok(Compression::None),
        other => bail!(
            "-c {other:?}: bd-archive compresses with zstd only (readable everywhere with `zstd -d`); \
use -c zstd -l 19 for a high ratio or -l 1 for speed"
        ),
    }
}

/// Refuses unsupported flags with a clear message instead of silently ignoring them.
fn refuse_unavailable(args: &CreateArgs) -> Result<()> {
    if args.min_last_disc_fill > 100 {
        bail!(
            "--min-last-disc-fill {}: must be 0 to 100",
            args.min_last_disc_fill
        );
    }
    Ok(())
}

fn print_overview(
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
    ui.info(&parity_line(o));
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
    }
}

/// What parity discs cost and protect (and, without them, what one would).
fn parity_line(o: &Overview) -> String {
    let cost = human_bytes(o.parity_reserve_bytes);
    match o.parity_discs {
        0 => format!(
            "Parity discs:  none — --parity-discs 1 would add 1 disc ({cost} less data per disc): any 1 of the {} discs could then be lost",
            o.discs + 1
        ),
        p => {
            let set = o.discs + u64::from(p);
            let mirror = if o.discs == 1 && p == 1 {
                " (with one data disc the parity disc is a mirror of it)"
            } else {
                ""
            };
            format!(
                "Parity discs:  +{p} disc(s) ({cost} less data per disc): any {p} of the {set} discs may be lost{mirror}"
            )
        }
    }
}

/// Shows what `--min-last-disc-fill` deferred.
fn report_deferred(ui: &Ui, deferred: &[SourceEntry], incremental: bool, pct: u32) {
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

/// Whether the note "the binary is not copied onto the discs" was given for this very binary
/// (path and mtime) already: it is said once, not on every run. Kept in
/// `$XDG_STATE_HOME/bd-archive/binary-noted` (default `~/.local/state`); without a home, always said.
mod binary_note {
    use std::path::PathBuf;

    fn marker() -> Option<PathBuf> {
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
        Some(state.join("bd-archive").join("binary-noted"))
    }

    fn this_binary() -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let exe = std::env::current_exe().ok()?;
        let m = std::fs::metadata(&exe).ok()?;
        Some(format!("{} {}", exe.display(), m.mtime()))
    }

    /// True when the note was given for this binary.
    pub fn given() -> bool {
        match (marker(), this_binary()) {
            (Some(m), Some(b)) => std::fs::read_to_string(m).is_ok_and(|t| t.trim() == b),
            _ => false,
        }
    }

    /// Records that the note was given (best effort).
    pub fn remember() {
        if let (Some(m), Some(b)) = (marker(), this_binary()) {
            if let Some(dir) = m.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(m, b + "\n");
        }
    }
}
