//! `list`: the entries of an archive with size, mtime and the discs holding each, from a catalog
//! file or from disc images.
//!
//! - `catalogs`: catalog files given as sources; `render`: the lines and the JSON document.

mod catalogs;
mod render;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cli::args::ListArgs;
use crate::cli::Ui;
use bd_archive::disc::reader::GenerationSet;
use bd_archive::format::catalog::{ChunkRecord, DiscMap, DiscSpan, Entry};
use bd_archive::legacy::seed_disc::{kind_letter, SeedChain};
use bd_archive::legacy::{self, Sources};
use bd_archive::restore::sources::open_discs;
use bd_archive::util::escape::escape_path;
use catalogs::{is_catalog, read_catalogs};
pub use render::utc;
use render::{line, print_json, Holders};

/// Chunk tables by generation: which discs of that generation hold what.
type ChunkTables = BTreeMap<u32, Vec<ChunkRecord>>;

/// What is listed: the newest generation's entries and the chunk tables that say where they are.
struct Listing {
    name: String,
    generation: u32,
    entries: Vec<Entry>,
    /// The listed generation's chunk table.
    chunks: Vec<ChunkRecord>,
    /// Chunk tables of earlier generations whose catalogs were given too, else the newest
    /// catalog's disc map: they say which of their discs hold the entries it reuses.
    earlier: ChunkTables,
    /// The listed catalog's disc map as read (empty without a catalog; checked before use).
    disc_map: Vec<DiscSpan>,
    /// False when the catalog disc is not among the sources (only what the discs hold is listed).
    complete: bool,
    /// A disc whose index or catalog could not be read: the listing may lack entries.
    damaged: bool,
}

/// Runs `list`.
pub fn run(args: &ListArgs, ui: &Ui) -> Result<i32> {
    // Sets the decode budget for catalogs and indexes too when given.
    let memory_budget = crate::cli::parse_memory(args.memory.as_deref())?;
    let sources = match legacy::classify_sources(&args.sources)? {
        Sources::Seed(chain) => return list_seed(&chain, ui),
        // A continued chain: the bd-archive generation's catalog lists the whole tree.
        Sources::Continued { ours, .. } => ours,
        Sources::Ours(sources) => sources,
    };
    let Listing {
        name,
        generation,
        entries,
        chunks,
        mut earlier,
        disc_map,
        complete,
        mut damaged,
    } = if sources.iter().all(|p| is_catalog(p)) {
        from_catalogs(&sources, ui)?
    } else {
        from_discs(&sources, args, memory_budget, ui)?
    };
    if !complete {
        ui.warn(
            "the catalog disc is not among the sources: listing only what the given discs hold",
        );
    }
    let (map, problems) = DiscMap::checked(&disc_map, generation);
    for p in &problems {
        ui.warn(&format!(
            "the catalog's disc map of generation {} breaks FORMAT.md §6.1 ({}): its discs are not named",
            p.generation, p.rule
        ));
        damaged = true;
    }
    earlier.insert(generation, chunks);
    let holders = Holders {
        tables: earlier,
        map,
    };
    if args.json {
        print_json(&name, generation, &entries, &holders)?;
    } else {
        // Buffered: a million entries are one write per 8 KiB, and a closed pipe stops the loop.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for e in &entries {
            let text = line(e, &holders.holder(e));
            writeln!(out, "{}", bd_archive::util::escape::terminal_text(&text))?;
        }
        out.flush()?;
    }
    Ok(if damaged {
        crate::cli::exit::DAMAGED
    } else {
        crate::cli::exit::OK
    })
}

/// The listing of catalog files (the newest generation given; the others for the disc column).
fn from_catalogs(sources: &[PathBuf], ui: &Ui) -> Result<Listing> {
    let mut catalogs = read_catalogs(sources)?;
    for c in &mut catalogs {
        let mut seqs: Vec<u64> = (0..c.chunks.len() as u64).collect();
        if bd_archive::format::catalog::retain_valid_chunks(&mut c.chunks, &mut seqs) > 0 {
            ui.warn("chunk records that break FORMAT.md §5 are ignored (disc column)");
        }
    }
    let mut c = catalogs.pop().expect("at least one source");
    let disc_map = std::mem::take(&mut c.disc_map);
    let earlier = catalogs
        .into_iter()
        .map(|c| (c.chain.generation, c.chunks))
        .collect();
    Ok(Listing {
        name: c.chain.name,
        generation: c.chain.generation,
        entries: c.entries,
        chunks: c.chunks,
        earlier,
        disc_map,
        complete: true,
        damaged: false,
    })
}

/// The listing of disc images or disc directories (their newest generation).
fn from_discs(
    sources: &[PathBuf],
    args: &ListArgs,
    memory_budget: u64,
    ui: &Ui,
) -> Result<Listing> {
    let mut by_gen = open_discs(
        sources,
        &bd_archive::disc::reader::RepairSettings {
            memory_budget,
            spill_dir: None,
        },
        args.set.as_deref(),
        ui,
    )
    .map_err(crate::cli::explain::extract)?;
    let Some((_, discs)) = by_gen.pop_last() else {
        bail!("no discs found")
    };
    let mut set = GenerationSet::new(discs)?;
    let complete = set.catalog.is_some();
    let disc_map = set
        .catalog
        .as_mut()
        .map(|c| std::mem::take(&mut c.disc_map))
        .unwrap_or_default();
    for n in &set.notes {
        ui.warn(n);
    }
    let damaged = set.discs.values().any(|d| !d.problems.is_empty()) || !set.notes.is_empty();
    Ok(Listing {
        name: set.name,
        generation: set.generation,
        entries: set.entries,
        chunks: set.chunks,
        earlier: BTreeMap::new(),
        disc_map,
        complete,
        damaged,
    })
}

/// `list` of seed discs: the newest generation's catalogue.
fn list_seed(chain: &SeedChain, ui: &Ui) -> Result<i32> {
    let (generation, entries) = legacy::list(chain)?;
    ui.say(&format!(
        "Seed chain '{}', generation {generation}: {} entries",
        chain.name,
        entries.len()
    ));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in entries {
        let status = if e.data_present() { ' ' } else { '.' };
        writeln!(
            out,
            "{}{status} {:>12} {} {}",
            kind_letter(&e.kind),
            e.size,
            utc(i64::try_from(e.mtime.0).unwrap_or(i64::MAX)),
            escape_path(&e.path)
        )?;
    }
    out.flush()?;
    Ok(crate::cli::exit::OK)
}
