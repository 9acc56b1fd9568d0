//! `verify`: read every sector of each image once, check it against the FEC checksum tables
//! (data and parity alike), and say: intact (0), damaged but repairable (1), not repairable (2).
//! `--repair -o` writes a repaired copy; the input is never modified.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::args::VerifyArgs;
use crate::cli::{parse_memory, Ui};
use bd_archive::disc::reader::expand_sources;
use bd_archive::format::catalog::Catalog;
use bd_archive::format::records::{self, decode_record};
use bd_archive::legacy::{self, Sources};
use bd_archive::restore::verify::{
    lost_entries_from_catalog, verify_disc_dir, verify_image, verify_source, Health, VerifyReport,
};
use bd_archive::sector::{SectorSource, SECTOR_SIZE};
use bd_archive::util::capacity::human_bytes;
use bd_archive::util::escape::terminal_text;

/// Runs `verify`.
pub fn run(args: &VerifyArgs, ui: &Ui) -> Result<i32> {
    let targets = match legacy::classify_sources(&args.targets)? {
        Sources::Ours(targets) => targets,
        Sources::Seed(chain) => {
            let health = legacy::verify(&chain, ui)?;
            ui.say(match health {
                Health::Ok => "Verification passed",
                Health::Repairable => {
                    "Repair needed — can be fixed with PAR2 (extract repairs automatically)"
                }
                Health::Broken => "Verification FAILED",
            });
            return Ok(crate::cli::exit::of_health(health));
        }
        Sources::Continued { seed, ours } => {
            // A continued chain: the seed discs here, then ours by our verify.
            if args.json || args.repair {
                bail!("--json/--repair: pass the seed (dar) discs and the bd-archive discs to separate verify runs");
            }
            let a = legacy::verify(&seed, ui)?;
            let ours_args = VerifyArgs {
                targets: ours,
                device: None,
                map: None,
                retries: args.retries,
                read_speed: args.read_speed,
                repair: false,
                output: None,
                json: false,
                memory: args.memory.clone(),
                catalog: args.catalog.clone(),
            };
            let b = run(&ours_args, ui)?;
            return Ok(crate::cli::exit::of_health(a).max(b));
        }
    };
    let memory = parse_memory(args.memory.as_deref())?;
    let (drives, files): (Vec<PathBuf>, Vec<PathBuf>) = targets
        .iter()
        .cloned()
        .partition(|p| bd_archive::optical::device::is_drive_path(p));
    let mut drives: Vec<Option<PathBuf>> = drives.into_iter().map(Some).collect();
    if args.device.is_some() || args.targets.is_empty() {
        drives.push(args.device.clone());
    }
    if args.map.is_some() && drives.len() != 1 {
        bail!("--map: give exactly one drive to read (the map describes one disc)");
    }
    let images = if files.is_empty() {
        Vec::new()
    } else {
        expand_sources(&files)?
    };
    if args.repair && images.len() > 1 {
        if let Some(o) = &args.output {
            if !o.is_dir() {
                bail!(
                    "--repair -o {}: with several images, -o must be an existing directory",
                    o.display()
                );
            }
        }
    }
    let mut reports = Vec::new();
    for img in &images {
        let out = args
            .output
            .as_ref()
            .filter(|_| args.repair)
            .map(|o| repair_target(o, img));
        let r = if img.is_dir() {
            if args.repair {
                bail!(
                    "--repair: {} is a disc directory; repair works on image files",
                    img.display()
                );
            }
            verify_disc_dir(img, memory).map_err(crate::cli::explain::verify)?
        } else {
            verify_image(img, out.as_deref(), memory, ui).map_err(crate::cli::explain::verify)?
        };
        if !args.json {
            print_report(&r, ui);
            if !r.index_destroyed {
                print_lost(&r, ui);
            }
        }
        reports.push(r);
    }
    for dev in drives {
        let out = args.output.as_deref().filter(|_| args.repair);
        let r = verify_drive(dev, args, out, memory, ui)?;
        if !args.json {
            print_report(&r, ui);
        }
        reports.push(r);
    }
    let mut catalogs = Vec::new();
    if reports.iter().any(|r| r.index_destroyed) {
        catalogs = catalogs_for(args, &files)?;
        if catalogs.is_empty() {
            catalogs = catalogs_on_discs(&images, &reports, memory);
        }
    }
    for r in reports.iter_mut().filter(|r| r.index_destroyed) {
        apply_catalog(r, &catalogs, args.catalog.is_some())?;
        if !args.json {
            print_lost(r, ui);
        }
    }
    if args.json {
        ui.info(&serde_json::to_string_pretty(&reports)?);
    }
    if let Some(conflict) = set_conflict(&reports) {
        bail!("{conflict}");
    }
    let worst = reports.iter().map(|r| r.health).max().unwrap_or(Health::Ok);
    Ok(crate::cli::exit::of_health(worst))
}

/// Names the sets when images of one generation come from two different create runs (extract
/// refuses such a mix; each image's own verdict above still stands).
fn set_conflict(reports: &[VerifyReport]) -> Option<String> {
    use std::collections::BTreeMap;
    let mut sets: BTreeMap<(&str, u32), BTreeMap<i64, Vec<&str>>> = BTreeMap::new();
    for r in reports {
        if let (Some(c), Some(g), Some(id)) = (&r.chain, r.generation, r.set) {
            sets.entry((c, g))
                .or_default()
                .entry(id)
                .or_default()
                .push(&r.image);
        }
    }
    let ((chain, generation), ids) = sets.into_iter().find(|(_, ids)| ids.len() > 1)?;
    let described: Vec<String> = ids
        .iter()
        .map(|(id, images)| {
            format!(
                "set {id} (created {} UTC): {}",
                super::list::utc(*id),
                images.join(", ")
            )
        })
        .collect();
    Some(format!(
        "these images hold generation {generation} of chain '{chain}' from {} different sets (separate create runs): {}; they are not one set — extract refuses the mix unless --set ID picks one",
        ids.len(),
        described.join("; ")
    ))
}

/// Verifies the disc in a drive: reads it defensively (trimming and skipping unreadable areas),
/// checks it against its FEC, and retries only the sectors the FEC cannot rebuild.
fn verify_drive(
    device: Option<PathBuf>,
    args: &VerifyArgs,
    repair_to: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<VerifyReport> {
    use bd_archive::restore::drive as dr;
    let opts = dr::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let mut drive = dr::open_drive(&opts)?;
    if !dr::wait_for_disc(drive.as_mut())? {
        bail!(
            "{}: no disc in the drive; insert the disc to verify and run again",
            drive.name()
        );
    }
    dr::apply_read_speed(drive.as_mut(), &opts, ui);
    let rescue = args.map.as_deref().map(dr::rescue_paths).transpose()?;
    let src = dr::open_source(
        drive,
        rescue.as_ref().map(|(i, m)| (i.as_path(), m.as_path())),
    )?;
    if rescue.is_some() {
        // A rescue copy is a whole image (like ddrescue's): read everything once into it, then
        // check the copy; the drive is asked again only for what is missing.
        dr::read_disc(&src, ui);
    }
    let name = src.describe();
    let retry = dr::fec_retry(&src, opts.retries, ui);
    let result = verify_source(&name, src.clone(), repair_to, memory, ui, Some(&retry))
        .map_err(crate::cli::explain::verify);
    if let Err(e) = src.save_map() {
        ui.warn(&e.to_string());
    }
    ui.say(&dr::describe_reading(&src));
    result
}

fn repair_target(out: &Path, img: &Path) -> PathBuf {
    if out.is_dir() {
        out.join(img.file_name().unwrap_or_default())
    } else {
        out.to_path_buf()
    }
}

fn print_report(r: &VerifyReport, ui: &Ui) {
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
fn print_lost(r: &VerifyReport, ui: &Ui) {
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

/// The catalogs to map destroyed indexes through: `--catalog CAT`, else every
/// `<NAME>-gen<G>.catalog` beside the images/ directory of an OUT dir given as a target.
fn catalogs_for(args: &VerifyArgs, files: &[PathBuf]) -> Result<Vec<(PathBuf, Catalog)>> {
    let paths: Vec<PathBuf> = match &args.catalog {
        Some(c) => vec![c.clone()],
        None => files
            .iter()
            .filter(|f| f.join("images").is_dir())
            .filter_map(|f| std::fs::read_dir(f).ok())
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "catalog") && p.is_file())
            .collect(),
    };
    let read = |p: PathBuf| -> Result<(PathBuf, Catalog)> {
        let raw = std::fs::read(&p).map_err(|e| anyhow!("--catalog {}: {e}", p.display()))?;
        let (_, c): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
            .map_err(|e| anyhow!("--catalog {}: not a bd-archive catalog ({e}); give the <NAME>-gen<G>.catalog file of the disc's generation", p.display()))?;
        Ok((p, c))
    };
    if args.catalog.is_some() {
        paths.into_iter().map(read).collect()
    } else {
        // Catalogs found by themselves: an unreadable one is no reason to fail the verify.
        Ok(paths.into_iter().filter_map(|p| read(p).ok()).collect())
    }
}

/// The catalogs held by the other discs given (the catalog disc of a set among the targets),
/// when neither --catalog nor an OUT dir's catalog is there; discs that cannot be read are skipped.
fn catalogs_on_discs(
    images: &[PathBuf],
    reports: &[VerifyReport],
    memory: u64,
) -> Vec<(PathBuf, Catalog)> {
    use bd_archive::disc::reader::{Disc, RepairSettings};
    let settings = RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    };
    images
        .iter()
        .zip(reports)
        .filter(|(img, r)| !r.index_destroyed && img.is_file())
        .filter_map(|(img, _)| {
            Disc::open_path(img, &settings)
                .ok()?
                .catalog
                .map(|c| (img.clone(), c))
        })
        .collect()
}

/// Lists a destroyed-index disc's lost files from the catalog of its chain and generation;
/// a catalog given with --catalog (`explicit`) that is of another chain or generation is
/// refused; catalogs found by themselves that do not fit leave the hint in place.
fn apply_catalog(
    r: &mut VerifyReport,
    catalogs: &[(PathBuf, Catalog)],
    explicit: bool,
) -> Result<()> {
    if catalogs.is_empty() {
        return Ok(());
    }
    let (Some(id), Some(generation), Some(disc)) = (r.chain_id, r.generation, r.disc) else {
        r.lost_entries = vec![
            "(the disc index and header are destroyed: the catalog cannot be matched to the disc)"
                .into(),
        ];
        return Ok(());
    };
    let fitting = catalogs
        .iter()
        .find(|(_, c)| c.chain.chain_id == id && c.chain.generation == generation);
    let Some((_, cat)) = fitting else {
        if !explicit {
            return Ok(());
        }
        let (p, c) = &catalogs[0];
        bail!(
            "--catalog {}: it is the catalog of '{}' generation {}, but {} is a disc of '{}' generation {}; give that generation's catalog",
            p.display(),
            terminal_text(&c.chain.name),
            c.chain.generation,
            r.image,
            terminal_text(r.chain.as_deref().unwrap_or("?")),
            generation
        );
    };
    r.lost_entries = lost_entries_from_catalog(cat, disc, &r.unrepaired_lbas);
    Ok(())
}
