//! `create`'s flags checked and turned into the engine's [`CreateJob`] (in the order the errors
//! were always given).

use anyhow::{anyhow, bail, Result};

use super::base::base_catalog;
use super::binary_note;
use crate::cli::args::{CompressionArg, CreateArgs};
use crate::cli::{parse_memory, Ui};
use bd_archive::archive::{self, Base, CreateJob, Pack, RatioEstimate};
use bd_archive::format::chunk::Compression;
use bd_archive::util::capacity::parse_capacity;

/// The flags checked and turned into the engine's job (in the order the errors were always given).
pub(super) fn job(args: &CreateArgs, ui: &Ui) -> Result<CreateJob> {
    validate_name(&args.name)?;
    let compression = compression(args)?;
    refuse_unavailable(args)?;
    let capacity_sectors = match (&args.bytes, &args.device) {
        (Some(bytes), _) => {
            let sectors = parse_capacity(bytes).map_err(|e| anyhow!("-b {e}"))?;
            warn_near_preset(bytes, sectors, ui);
            sectors
        }
        (None, Some(dev)) => crate::cli::drive::capacity_from_drive(dev, ui)?,
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
