//! `create`: scan → overview → confirm → stream → compress (parallel) → images (+FEC) → catalog.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};

use crate::archive_stream::{SourceProblem, StreamChunk, StreamStop, TarStreamBuilder};
use crate::capacity::{human_bytes, parse_capacity};
use crate::catalog::{Catalog, ChainInfo, DiscIndex, Entry};
use crate::chain::{load_base, plan_delta, DeltaStats, Planned};
use crate::cli::{CompressionArg, CreateArgs};
use crate::commands::{confirm, parse_memory, progress_bar, Ui};
use crate::container::chunk::{encode_chunk, new_compressor, Compression, EncodedChunk};
use crate::container::records::{self, RecordIdentity};
use crate::disc_writer::{CarryIn, DiscEvent, DiscSetConfig, DiscSetWriter};
use crate::plan::{defer_for_fill, overview, sample_ratio, Overview};
use crate::restore::escape_path;
use crate::scan::{scan_tree, ScanOptions, SourceEntry};

/// FORMAT.md, copied onto every disc.
pub const FORMAT_MD: &str = include_str!("../../FORMAT.md");

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

fn random_chain_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    let mut f =
        std::fs::File::open("/dev/urandom").context("reading /dev/urandom for the chain id")?;
    std::io::Read::read_exact(&mut f, &mut id).context("reading /dev/urandom for the chain id")?;
    Ok(id)
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

/// What the new generation is: identity plus what to store and what to reuse.
struct GenerationPlan {
    chain_id: [u8; 16],
    base_generation: u32,
    store: Vec<SourceEntry>,
    reuse: Vec<Entry>,
    delta: Option<DeltaStats>,
}

/// Runs `create`.
pub fn run(args: &CreateArgs, ui: &Ui) -> Result<i32> {
    validate_name(&args.name)?;
    let compression = compression(args)?;
    refuse_unavailable(args)?;
    let capacity_sectors = match (&args.bytes, &args.device) {
        (Some(bytes), _) => parse_capacity(bytes)?,
        (None, Some(dev)) => super::drive::capacity_from_drive(dev, ui)?,
        (None, None) => bail!("no disc capacity: pass -b bd25|bd50|bd100|bd128, a size such as -b 64M, or -D DEV with a blank BD-R"),
    };
    if !(1..=crate::fec::MAX_LOSS_PCT).contains(&args.redundancy) {
        bail!(
            "-r {}: redundancy is the share of a disc's sectors that may be lost, 1 to {} percent (default 10); --fill-parity adds more",
            args.redundancy,
            crate::fec::MAX_LOSS_PCT
        );
    }
    let memory_budget = parse_memory(args.memory.as_deref())?;
    let pack = match &args.pack_with {
        Some(p) => Some(open_pack(p, &args.name)?),
        None => None,
    };
    let base = match (&args.base, &pack) {
        (Some(b), pack) => {
            let base = load_base(b, &args.name)?;
            if let Some((carry, cat)) = pack {
                if cat.chain.chain_id != base.chain.chain_id
                    || cat.chain.generation != base.chain.generation
                {
                    bail!(
                        "--pack-with {}: holds generation {} of its chain, but --base is generation {}; pack onto the last disc of the --base generation",
                        carry.image.display(),
                        cat.chain.generation,
                        base.chain.generation
                    );
                }
            }
            Some(base)
        }
        (None, Some((_, cat))) => Some(cat.clone()),
        (None, None) => None,
    };
    let out = &args.output;
    let images_dir = out.join("images");
    let generation = base.as_ref().map_or(1, |b| b.chain.generation + 1);
    let catalog_path = out.join(format!("{}-gen{generation}.catalog", args.name));
    let resume_state = if args.resume {
        Some(read_state(out, args, capacity_sectors)?)
    } else {
        check_output(out, &images_dir, &catalog_path)?;
        None
    };

    let src = &args.source;
    let (scanned, scan_problems) = scan_source(src, out, args.workdir.as_deref(), ui)?;
    if scanned.is_empty() && !args.allow_empty {
        bail!(
            "{}: the source directory is empty; pass --allow-empty to archive it anyway",
            src.display()
        );
    }
    let mut plan = plan_generation(base.as_ref(), scanned, src, args.checksum)?;
    if let Some(st) = &resume_state {
        if st.generation != generation {
            bail!("--resume: the interrupted create made generation {}, this one would be {generation}", st.generation);
        }
        plan.chain_id = parse_hex_id(&st.chain_id)?;
    }
    if let Some(d) = &plan.delta {
        if d.is_empty() && !args.allow_empty {
            ui.info(&format!(
                "Nothing changed since generation {}; no new generation written (pass --allow-empty to write one anyway).",
                plan.base_generation
            ));
            return Ok(crate::exit::OK);
        }
    }
    let binary = carried_binary(args, capacity_sectors, ui);
    let (ratio, ratio_source) = estimate_ratio(args, &plan.store, compression)?;
    let fixed_bytes = binary.as_ref().map_or(0, |b| b.len() as u64);
    let est = |store: &[SourceEntry]| {
        overview(
            store,
            capacity_sectors,
            args.redundancy,
            ratio,
            ratio_source.clone(),
            fixed_bytes,
        )
    };
    let base_paths: std::collections::HashSet<&[u8]> = base
        .iter()
        .flat_map(|b| b.entries.iter().map(|e| e.path.as_slice()))
        .collect();
    let deferred = defer_for_fill(
        &mut plan.store,
        &|e| !base_paths.contains(e.rel_path.as_slice()),
        args.min_last_disc_fill,
        &est,
    );
    let ov = est(&plan.store);
    report_deferred(ui, &deferred, base.is_some(), args.min_last_disc_fill);
    if args.json && args.dry_run {
        let doc =
            serde_json::json!({ "generation": generation, "overview": ov, "changes": plan.delta });
        ui.info(&serde_json::to_string_pretty(&doc)?);
        return Ok(crate::exit::OK);
    }
    print_overview(ui, &ov, args, generation, plan.delta.as_ref());
    report_deferred(ui, &deferred, base.is_some(), args.min_last_disc_fill);
    if args.dry_run {
        return Ok(crate::exit::OK);
    }
    if !args.yes && !confirm("Create the images?", "-y/--yes")? {
        ui.say("Cancelled; nothing written.");
        return Ok(crate::exit::OK);
    }

    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("creating {}", images_dir.display()))?;
    let chain = ChainInfo {
        name: args.name.clone(),
        chain_id: plan.chain_id,
        generation,
        base_generation: plan.base_generation,
        created_unix: resume_state
            .as_ref()
            .map_or_else(now_unix, |st| st.created_unix),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        compression: match compression {
            Compression::None => "none".into(),
            Compression::Zstd(l) => format!("zstd-{l}"),
        },
        redundancy_pct: args.redundancy,
    };
    let cfg = DiscSetConfig {
        images_dir: images_dir.clone(),
        chain: chain.clone(),
        capacity_sectors,
        redundancy_pct: args.redundancy,
        fill_parity: args.fill_parity,
        memory_budget,
        format_md: FORMAT_MD.as_bytes().to_vec(),
        first_image_number: 1,
        carry_in: pack.as_ref().map(|(c, _)| c.clone()),
        binary,
    };
    remove_partials(&images_dir);
    let done = match &resume_state {
        Some(_) => completed_discs(&images_dir, ui)?,
        None => Vec::new(),
    };
    write_state(out, &CreateState::new(args, &chain, capacity_sectors))?;
    // The catalog is saved as catalog_tmp by the writer before the last image's FEC (so the
    // entries are freed first), and renamed into place once every image is complete.
    let catalog_tmp = catalog_path.with_extension("partial");
    let id = RecordIdentity {
        chain_id: chain.chain_id,
        generation,
        disc: 0,
    };
    let result = build_images(
        cfg,
        (&catalog_tmp, id),
        src,
        std::mem::take(&mut plan.store),
        plan.reuse,
        compression,
        ov.data_bytes,
        done,
        ui,
    );
    let (images, build_problems) = match result {
        Ok(r) => r,
        Err(e) => {
            remove_partials(&images_dir);
            let _ = std::fs::remove_file(&catalog_tmp);
            return Err(e);
        }
    };
    std::fs::rename(&catalog_tmp, &catalog_path)
        .with_context(|| format!("renaming {} into place", catalog_tmp.display()))?;
    // Scan problems were shown when found; all are listed in the file.
    let warned = scan_problems.len();
    let problems: Vec<SourceProblem> = scan_problems.into_iter().chain(build_problems).collect();
    report_problems(out, &args.name, generation, &problems, warned, ui)?;
    write_deferred(out, &deferred)?;
    let _ = std::fs::remove_file(out.join(STATE_FILE));
    if let (Some(p), Some(first)) = (&args.pack_with, images.first()) {
        ui.info(&format!(
            "{} now holds {} and generation {generation}: burn it instead of {} (which is left untouched)",
            first.display(),
            p.display(),
            p.display()
        ));
    }
    ui.say(&format!(
        "Done: {} image(s) in {}, catalog {}",
        images.len(),
        images_dir.display(),
        catalog_path.display()
    ));
    // As tar: files unreadable or changed while read make the run "finished with damage".
    Ok(if problems.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::DAMAGED
    })
}

/// Decides identity and content of the new generation: a full archive, or the delta to `base`.
fn plan_generation(
    base: Option<&Catalog>,
    scanned: Vec<SourceEntry>,
    root: &Path,
    checksum: bool,
) -> Result<GenerationPlan> {
    let Some(base) = base else {
        return Ok(GenerationPlan {
            chain_id: random_chain_id()?,
            base_generation: 0,
            store: scanned,
            reuse: Vec::new(),
            delta: None,
        });
    };
    let (planned, stats) = plan_delta(base, scanned, root, checksum);
    let mut store = Vec::new();
    let mut reuse = Vec::new();
    for p in planned {
        match p {
            Planned::Store(s) => store.push(s),
            Planned::Reuse(e) => reuse.push(e),
        }
    }
    Ok(GenerationPlan {
        chain_id: base.chain.chain_id,
        base_generation: base.chain.generation,
        store,
        reuse,
        delta: Some(stats),
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Records an unfinished create in OUT, so `--resume` can continue it with the same identity.
const STATE_FILE: &str = ".bd-archive-create.json";

/// What `--resume` must find unchanged (and the identity it must reuse).
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct CreateState {
    name: String,
    generation: u32,
    chain_id: String,
    created_unix: i64,
    source: PathBuf,
    capacity_sectors: u64,
    compression: String,
    redundancy: u32,
    fill_parity: bool,
    base: Option<PathBuf>,
    pack_with: Option<PathBuf>,
    min_last_disc_fill: u32,
    checksum: bool,
}

impl CreateState {
    fn new(args: &CreateArgs, chain: &ChainInfo, capacity_sectors: u64) -> Self {
        CreateState {
            name: args.name.clone(),
            generation: chain.generation,
            chain_id: chain.chain_id.iter().map(|b| format!("{b:02x}")).collect(),
            created_unix: chain.created_unix,
            source: absolute(&args.source),
            capacity_sectors,
            compression: chain.compression.clone(),
            redundancy: args.redundancy,
            fill_parity: args.fill_parity,
            base: args.base.as_deref().map(absolute),
            pack_with: args.pack_with.as_deref().map(absolute),
            min_last_disc_fill: args.min_last_disc_fill,
            checksum: args.checksum,
        }
    }
}

fn write_state(out: &Path, st: &CreateState) -> Result<()> {
    let json = serde_json::to_vec_pretty(st)?;
    write_atomically(&out.join(STATE_FILE), &json)
}

/// Reads the state of an interrupted create and checks that this run asks for the same archive.
fn read_state(out: &Path, args: &CreateArgs, capacity_sectors: u64) -> Result<CreateState> {
    let path = out.join(STATE_FILE);
    let raw = std::fs::read(&path).map_err(|_| {
        anyhow!(
            "--resume: {} has no interrupted create to resume ({} missing)",
            out.display(),
            STATE_FILE
        )
    })?;
    let st: CreateState = serde_json::from_slice(&raw)
        .with_context(|| format!("--resume: {} is damaged", path.display()))?;
    let level = args.level.unwrap_or(3);
    let compression = match args.compression {
        CompressionArg::None => "none".to_string(),
        _ => format!("zstd-{level}"),
    };
    let checks: [(&str, bool); 10] = [
        ("-n", st.name == args.name),
        ("-s", st.source == absolute(&args.source)),
        ("-b/-D", st.capacity_sectors == capacity_sectors),
        ("-c/-l", st.compression == compression),
        ("-r", st.redundancy == args.redundancy),
        ("--fill-parity", st.fill_parity == args.fill_parity),
        ("--base", st.base == args.base.as_deref().map(absolute)),
        (
            "--pack-with",
            st.pack_with == args.pack_with.as_deref().map(absolute),
        ),
        (
            "--min-last-disc-fill",
            st.min_last_disc_fill == args.min_last_disc_fill,
        ),
        ("--checksum", st.checksum == args.checksum),
    ];
    if let Some((flag, _)) = checks.iter().find(|(_, same)| !same) {
        bail!(
            "--resume: {flag} differs from the interrupted create in {}; repeat its exact options",
            out.display()
        );
    }
    Ok(st)
}

fn parse_hex_id(s: &str) -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    if s.len() != 32 {
        bail!("--resume: chain id in {STATE_FILE} is damaged");
    }
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| anyhow!("--resume: chain id in {STATE_FILE} is damaged"))?;
    }
    Ok(id)
}

/// The images a resumed create keeps: disc_0001.iso, disc_0002.iso, … while they are consecutive
/// and intact; anything after a gap is left alone and rebuilt under its name (refused if present).
fn completed_discs(images_dir: &Path, ui: &Ui) -> Result<Vec<(DiscIndex, PathBuf)>> {
    use crate::disc_reader::{Disc, RepairSettings};
    let mut done = Vec::new();
    for n in 1.. {
        let p = images_dir.join(format!("disc_{n:04}.iso"));
        if !p.exists() {
            break;
        }
        let disc = Disc::open_path(&p, &RepairSettings::default())
            .with_context(|| format!("--resume: reading {}", p.display()))?;
        let (true, Some(index)) = (disc.repair_summary().is_none(), disc.index) else {
            bail!(
                "--resume: {} is damaged; remove it and the images after it, then resume",
                p.display()
            );
        };
        done.push((index, p));
    }
    ui.say(&format!("Resuming after {} complete image(s)", done.len()));
    Ok(done)
}

/// Refuses an OUT that already holds images or this generation's catalog.
fn check_output(out: &Path, images_dir: &Path, catalog: &Path) -> Result<()> {
    if out.join(STATE_FILE).exists() {
        bail!(
            "{} holds an interrupted create; continue it with --resume (same options), or choose another -o (nothing was changed)",
            out.display()
        );
    }
    if out.exists() && !out.is_dir() {
        bail!("-o {}: exists and is not a directory", out.display());
    }
    if catalog.exists() {
        bail!(
            "{} already exists; choose another -o (nothing was changed)",
            catalog.display()
        );
    }
    if let Ok(rd) = std::fs::read_dir(images_dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("disc_") && n.ends_with(".iso") {
                bail!(
                    "{} already holds disc images ({n}); choose an empty -o or remove them (nothing was changed)",
                    images_dir.display()
                );
            }
        }
    }
    Ok(())
}

fn scan_source(
    src: &Path,
    out: &Path,
    workdir: Option<&Path>,
    ui: &Ui,
) -> Result<(Vec<SourceEntry>, Vec<SourceProblem>)> {
    let mut exclude = vec![absolute(out)];
    if let Some(w) = workdir {
        exclude.push(absolute(w));
    }
    let opts = ScanOptions {
        exclude,
        one_file_system: false,
    };
    let pb = progress_bar(ui, None, "scanning");
    let mut problems = Vec::new();
    let entries = scan_tree(src, &opts, &mut |p| problems.push(p), &mut |n| {
        if n % 1024 == 0 {
            pb.set_position(n)
        }
    })?;
    pb.finish_and_clear();
    let problems = problems
        .into_iter()
        .map(|p| {
            ui.warn(&format!(
                "{}: {} (not archived)",
                p.path.display(),
                p.message
            ));
            let rel = p.path.strip_prefix(src).unwrap_or(&p.path);
            SourceProblem {
                path: rel.as_os_str().as_encoded_bytes().to_vec(),
                message: format!("{} (not archived)", p.message),
                archived: false,
            }
        })
        .collect();
    Ok((entries, problems))
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

fn estimate_ratio(
    args: &CreateArgs,
    entries: &[SourceEntry],
    c: Compression,
) -> Result<(f64, String)> {
    let level = match c {
        Compression::None => return Ok((1.0, "-c none".into())),
        Compression::Zstd(l) => l,
    };
    if let Some(r) = args.ratio {
        if !(0.0..=1.5).contains(&r) || r == 0.0 {
            bail!("--ratio {r}: give compressed/original between 0 and 1 (e.g. 0.6)");
        }
        return Ok((r, "--ratio".into()));
    }
    if let Some(dir) = &args.sample {
        let sample = scan_tree(dir, &ScanOptions::default(), &mut |_| {}, &mut |_| {})?;
        let (r, n) = sample_ratio(&sample, dir, Some(level));
        if n == 0 {
            bail!("--sample {}: holds no readable file content", dir.display());
        }
        return Ok((r, format!("sampled {} of --sample", human_bytes(n))));
    }
    let (r, n) = sample_ratio(entries, &args.source, Some(level));
    Ok((r, format!("sampled {} of the source", human_bytes(n))))
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
        format!(
            "Compression:   ratio {:.3} ({}) → about {}",
            o.ratio,
            o.ratio_source,
            human_bytes(o.est_stored_bytes)
        ),
        format!(
            "Disc:          {} each, FEC {} % → {} of data per disc",
            human_bytes(o.capacity_bytes),
            o.redundancy_pct,
            human_bytes(o.data_per_disc)
        ),
        format!(
            "Discs:         {} (last disc about {:.0} % full)",
            o.discs,
            o.last_disc_fill_pct.min(100.0)
        ),
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
    if let Some(d) = delta {
        ui.info(&format!(
            "Changes:       {} new, {} changed, {} renamed/copied (not stored again), {} metadata only, {} deleted, {} unchanged; only new and changed entries are stored (counted above)",
            d.new, d.changed, d.renamed, d.metadata_only, d.deleted, d.unchanged
        ));
    }
}

/// Output of the pipeline: the images and the source problems met.
type Built = (Vec<PathBuf>, Vec<SourceProblem>);

/// One chunk after compression, with the entry bookkeeping that travels with it.
struct Compressed {
    seq: u64,
    /// The encoded chunk, or for a chunk a resumed run already holds: (length, content CRC).
    chunk: Result<EncodedChunk, (usize, u32)>,
    completed: Vec<Entry>,
    open: Option<Entry>,
}

/// Runs reader → compressors → disc writer, all overlapping.
#[allow(clippy::too_many_arguments)]
fn build_images(
    cfg: DiscSetConfig,
    (catalog_path, catalog_id): (&Path, RecordIdentity),
    source_root: &Path,
    entries: Vec<SourceEntry>,
    reuse: Vec<Entry>,
    compression: Compression,
    total: u64,
    done: Vec<(DiscIndex, PathBuf)>,
    ui: &Ui,
) -> Result<Built> {
    let chain_id = cfg.chain.chain_id;
    let generation = cfg.chain.generation;
    let mut writer = DiscSetWriter::new(cfg)?;
    writer.resume_with(done)?;
    writer.reserve_entries(entries.len() + reuse.len());
    let replay_below = writer.resumed_chunks();
    let pb = progress_bar(ui, Some(total), "archiving");
    let pb2 = pb.clone();
    let quiet = ui.quiet;
    writer.on_event = Box::new(move |ev| match ev {
        DiscEvent::DiscStarted(n) => pb2.set_message(format!("disc {n}")),
        DiscEvent::FecStarted(n, _) => pb2.set_message(format!("disc {n}: parity")),
        DiscEvent::DiscCompleted(n, p, sectors) => {
            if !quiet {
                pb2.println(format!(
                    "disc {n} complete: {} ({})",
                    p.display(),
                    human_bytes(sectors * 2048)
                ));
            }
        }
    });
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (raw_tx, raw_rx) = sync_channel::<StreamChunk>(threads * 2);
    let (res_tx, res_rx) = sync_channel::<Result<Compressed>>(threads * 2);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let mut problems = Vec::new();
    let outcome = std::thread::scope(|s| -> Result<Vec<PathBuf>> {
        let pb_reader = pb.clone();
        let problems_ref = &mut problems;
        let reader = s.spawn(move || {
            let mut emit = |c: StreamChunk| {
                if crate::interrupt::requested() {
                    return Err(StreamStop::Cancelled);
                }
                raw_tx.send(c).map_err(|_| StreamStop::Cancelled)
            };
            let mut on_problem = |p: SourceProblem| problems_ref.push(p);
            let mut on_bytes = |n: u64| pb_reader.inc(n);
            let content_path = |rel: &[u8]| crate::scan::join_rel(source_root, rel);
            TarStreamBuilder::new(
                generation,
                &content_path,
                &mut emit,
                &mut on_problem,
                &mut on_bytes,
            )
            .run_owned(entries)
        });
        // Moving both receivers into this closure means an early return (an error while
        // writing) drops them: workers then stop, which drops the raw receiver, which stops
        // the reader. No thread is left blocked on a full channel.
        let (raw_rx, res_rx) = (raw_rx, res_rx);
        for _ in 0..threads {
            let rx = Arc::clone(&raw_rx);
            let tx = res_tx.clone();
            s.spawn(move || {
                compress_worker(rx, tx, compression, chain_id, generation, replay_below)
            });
        }
        drop(raw_rx);
        drop(res_tx);
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for r in res_rx.iter() {
            let c = r?;
            pending.insert(c.seq, c);
            while let Some(c) = pending.remove(&next) {
                match c.chunk {
                    Ok(chunk) => writer.push_chunk(chunk, c.completed, c.open)?,
                    Err((len, crc)) => writer.replay_chunk(c.seq, len, crc, c.completed, c.open)?,
                }
                next += 1;
            }
        }
        let tar_len = reader
            .join()
            .map_err(|_| anyhow!("the source reader thread panicked"))?
            .map_err(|_| -> anyhow::Error {
                crate::interrupt::Interrupted(
                    "; complete images are kept: re-run the same command with --resume".into(),
                )
                .into()
            })?;
        let images = writer.finish(tar_len, reuse, &mut |c| {
            save_catalog(catalog_path, catalog_id, c)
        })?;
        Ok(images)
    });
    pb.finish_and_clear();
    let images = outcome?;
    Ok((images, problems))
}

fn compress_worker(
    rx: Arc<Mutex<Receiver<StreamChunk>>>,
    tx: std::sync::mpsc::SyncSender<Result<Compressed>>,
    compression: Compression,
    chain_id: [u8; 16],
    generation: u32,
    replay_below: u64,
) {
    let mut compressor = match compression {
        Compression::Zstd(l) => match new_compressor(l) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = tx.send(Err(anyhow!("zstd: {e}")));
                return;
            }
        },
        Compression::None => None,
    };
    loop {
        let next = rx.lock().map(|r| r.recv());
        let Ok(Ok(c)) = next else { return };
        if c.seq < replay_below {
            let r = Compressed {
                seq: c.seq,
                chunk: Err((c.data.len(), crc32c::crc32c(&c.data))),
                completed: c.completed,
                open: c.open,
            };
            if tx.send(Ok(r)).is_err() {
                return;
            }
            continue;
        }
        let r = encode_chunk(
            &c.data,
            compression,
            compressor.as_mut(),
            chain_id,
            generation,
            c.seq,
            c.tar_offset,
        )
        .map(|chunk| Compressed {
            seq: c.seq,
            chunk: Ok(chunk),
            completed: c.completed,
            open: c.open,
        })
        .map_err(|e| anyhow!("compressing chunk {}: {e}", c.seq));
        if tx.send(r).is_err() {
            return;
        }
    }
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename, so `path` is complete or absent.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// Writes `catalog` as a record file at `path` and syncs it, compressing straight into the file
/// (the encoded catalog of a large tree is never held in memory).
fn save_catalog(path: &Path, id: RecordIdentity, catalog: &Catalog) -> std::io::Result<()> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let f = std::fs::File::create(path).map_err(named)?;
    records::write_record_at(&f, 0, records::CATALOG_MAGIC, id, catalog)
        .and_then(|_| f.sync_all())
        .map_err(named)
}

fn remove_partials(images_dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(images_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Writes OUT/<name>-gen<G>-source-problems.txt listing files that were not archived exactly.
fn report_problems(
    out: &Path,
    name: &str,
    generation: u32,
    problems: &[SourceProblem],
    warned: usize,
    ui: &Ui,
) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let path = out.join(format!("{name}-gen{generation}-source-problems.txt"));
    let mut text = String::from("# bd-archive: source files not archived exactly as they are now\n# path<TAB>what happened\n");
    for (i, p) in problems.iter().enumerate() {
        text.push_str(&format!("{}\t{}\n", escape_path(&p.path), p.message));
        if i >= warned {
            ui.warn(&format!("{}: {}", escape_path(&p.path), p.message));
        }
    }
    write_atomically(&path, text.as_bytes())?;
    ui.warn(&format!(
        "{} source problem(s) listed in {} (exit 1: finished with damage)",
        problems.len(),
        path.display()
    ));
    Ok(())
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

/// Writes OUT/deferred-files.txt (one escaped path per line) when files were deferred.
fn write_deferred(out: &Path, deferred: &[SourceEntry]) -> Result<()> {
    if deferred.is_empty() {
        return Ok(());
    }
    let mut text = String::from(
        "# bd-archive: files deferred by --min-last-disc-fill (not in this generation)\n",
    );
    for e in deferred {
        text.push_str(&escape_path(&e.rel_path));
        text.push('\n');
    }
    write_atomically(&out.join("deferred-files.txt"), text.as_bytes())
}

/// Opens the unburned image for `--pack-with`: it must be an intact last disc of its generation
/// (it holds the catalog, which becomes the base of the new generation).
fn open_pack(path: &Path, name: &str) -> Result<(CarryIn, Catalog)> {
    use crate::disc_reader::{Disc, RepairSettings};
    let discs = Disc::open_all(path, &RepairSettings::default())
        .with_context(|| format!("--pack-with {}", path.display()))?;
    let last = discs.last().expect("open_all returns at least one section");
    if last.repair_summary().is_some() || !last.problems.is_empty() {
        bail!(
            "--pack-with {}: the image is damaged; run `bd-archive verify --repair` first",
            path.display()
        );
    }
    if last.header.name != name {
        bail!(
            "--pack-with {}: belongs to chain '{}', not '{name}'",
            path.display(),
            last.header.name
        );
    }
    let Some(catalog) = last.catalog.clone() else {
        bail!(
            "--pack-with {}: is disc {} of generation {} but not its last disc (no catalog); only the unburned last disc can be packed",
            path.display(),
            last.number(),
            last.generation()
        );
    };
    if last.header.sections.len() >= crate::container::disc_header::MAX_SECTIONS {
        bail!(
            "--pack-with {}: already holds {} generations, the most one disc can",
            path.display(),
            last.header.sections.len()
        );
    }
    let fs = crate::image::read_filesystem(last.source().as_ref()).map_err(|e| {
        anyhow!(
            "--pack-with {}: cannot read its filesystem: {e}",
            path.display()
        )
    })?;
    let protected_end = last.header.fec_lba;
    let files = fs
        .files
        .into_iter()
        .filter(|f| f.size > 0 && f.lba >= crate::image::FIRST_DATA_LBA && f.lba < protected_end)
        .collect();
    let carry = CarryIn {
        image: path.to_path_buf(),
        files,
        protected_end,
        sections: last.header.sections.clone(),
    };
    Ok((carry, catalog))
}

/// The static binary to put on every disc, or None with a one-line warning saying why not.
fn carried_binary(args: &CreateArgs, capacity_sectors: u64, ui: &Ui) -> Option<Vec<u8>> {
    let exe = std::env::current_exe().unwrap_or_default();
    match crate::self_binary::load(&exe, capacity_sectors * 2048, args.no_binary) {
        Ok(b) => Some(b),
        Err(crate::self_binary::NotCarried::Disabled) => None,
        Err(why) => {
            if !args.dry_run {
                ui.warn(&format!(
                    "the bd-archive binary is not copied onto the discs: {why}"
                ));
            }
            None
        }
    }
}
