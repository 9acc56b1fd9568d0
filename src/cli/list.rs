//! `list`: the entries of an archive with size, mtime and the discs holding each, from a catalog
//! file or from disc images.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::cli::args::ListArgs;
use crate::cli::Ui;
use bd_archive::disc::reader::GenerationSet;
use bd_archive::format::catalog::{discs_of, Catalog, DiscMap, Entry, EntryKind};
use bd_archive::format::records::{self, decode_record};
use bd_archive::legacy::seed_disc::{kind_letter, SeedChain};
use bd_archive::legacy::{self, Sources};
use bd_archive::restore::sources::open_discs;
use bd_archive::util::escape::escape_path;

/// Runs `list`.
pub fn run(args: &ListArgs, ui: &Ui) -> Result<i32> {
    let sources = match legacy::classify_sources(&args.sources)? {
        Sources::Seed(chain) => return list_seed(&chain, ui),
        // A continued chain: the bd-archive generation's catalog lists the whole tree.
        Sources::Continued { ours, .. } => ours,
        Sources::Ours(sources) => sources,
    };
    // Chunk tables of earlier generations whose catalogs were given too, else the newest
    // catalog's disc map: they say which of their discs hold the entries it reuses.
    let mut earlier = BTreeMap::new();
    let mut raw_map = Vec::new();
    let (name, generation, entries, chunks, complete, mut damaged) =
        if sources.iter().all(|p| is_catalog(p)) {
            let mut catalogs = read_catalogs(&sources)?;
            for c in &mut catalogs {
                let mut seqs: Vec<u64> = (0..c.chunks.len() as u64).collect();
                if bd_archive::format::catalog::retain_valid_chunks(&mut c.chunks, &mut seqs) > 0 {
                    ui.warn("chunk records that break FORMAT.md §5 are ignored (disc column)");
                }
            }
            let mut c = catalogs.pop().expect("at least one source");
            raw_map = std::mem::take(&mut c.disc_map);
            earlier = catalogs
                .into_iter()
                .map(|c| (c.chain.generation, c.chunks))
                .collect();
            (
                c.chain.name,
                c.chain.generation,
                c.entries,
                c.chunks,
                true,
                false,
            )
        } else {
            let mut by_gen = open_discs(
                &sources,
                &bd_archive::disc::reader::RepairSettings::default(),
                args.set.as_deref(),
                ui,
            )
            .map_err(crate::cli::explain::extract)?;
            let Some((_, discs)) = by_gen.pop_last() else {
                bail!("no discs found")
            };
            let mut set = GenerationSet::new(discs)?;
            let complete = set.catalog.is_some();
            if let Some(c) = &mut set.catalog {
                raw_map = std::mem::take(&mut c.disc_map);
            }
            for n in &set.notes {
                ui.warn(n);
            }
            // A disc whose index or catalog could not be read: the listing may lack entries.
            let damaged =
                set.discs.values().any(|d| !d.problems.is_empty()) || !set.notes.is_empty();
            (
                set.name,
                set.generation,
                set.entries,
                set.chunks,
                complete,
                damaged,
            )
        };
    if !complete {
        ui.warn(
            "the catalog disc is not among the sources: listing only what the given discs hold",
        );
    }
    let (map, problems) = DiscMap::checked(&raw_map, generation);
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

/// Chunk tables by generation: which discs of that generation hold what.
type ChunkTables = BTreeMap<u32, Vec<bd_archive::format::catalog::ChunkRecord>>;

/// Reads catalogs of one chain, oldest generation first; two of one generation must be the same
/// set (see `extract --set`).
fn read_catalogs(paths: &[std::path::PathBuf]) -> Result<Vec<Catalog>> {
    let mut by_gen: BTreeMap<u32, (Catalog, &Path)> = BTreeMap::new();
    for p in paths {
        let raw = std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        let (_, c): (_, Catalog) = decode_record(records::CATALOG_MAGIC, "catalog", &raw)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        if let Some((first, fp)) = by_gen.values().next() {
            if first.chain.chain_id != c.chain.chain_id {
                bail!(
                    "{}: belongs to chain '{}', but {} to '{}'; list one chain at a time",
                    p.display(),
                    c.chain.name,
                    fp.display(),
                    first.chain.name
                );
            }
        }
        if let Some((other, op)) = by_gen.get(&c.chain.generation) {
            if other.chain.created_unix != c.chain.created_unix {
                bail!(
                    "{} and {} are two different sets of generation {} (separate create runs); list them one at a time",
                    op.display(),
                    p.display(),
                    c.chain.generation
                );
            }
        }
        by_gen.insert(c.chain.generation, (c, p));
    }
    Ok(by_gen.into_values().map(|(c, _)| c).collect())
}

fn is_catalog(p: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == records::CATALOG_MAGIC
}

fn kind_char(k: EntryKind) -> char {
    match k {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::HardLink => 'h',
        EntryKind::Fifo => 'p',
        EntryKind::CharDevice => 'c',
        EntryKind::BlockDevice => 'b',
        EntryKind::Socket => 's',
    }
}

fn mode_string(e: &Entry) -> String {
    let mut s = String::new();
    s.push(kind_char(e.kind));
    for shift in [6, 3, 0] {
        let b = (e.mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Formats a unix time as UTC "YYYY-MM-DD HH:MM:SS".
pub fn utc(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = bd_archive::util::civil_time::civil_from_unix(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

/// What says which disc of a generation holds an entry: chunk tables at hand (the listed
/// generation's, earlier catalogs given), else the listed catalog's disc map.
struct Holders {
    tables: ChunkTables,
    map: DiscMap,
}

impl Holders {
    /// Discs of the entry's generation holding its tar record; `None` when unknown.
    fn discs(&self, e: &Entry) -> Option<Vec<u32>> {
        let g = e.data.generation;
        match self.tables.get(&g) {
            Some(chunks) => Some(discs_of(chunks, e)),
            None => self.map.has(g).then(|| self.map.discs_of(e)),
        }
    }

    /// "g2:d1,2" — generation and disc(s) holding the entry's tar record; "g1" when no table
    /// or map describes that generation.
    fn holder(&self, e: &Entry) -> String {
        let g = e.data.generation;
        match self.discs(e) {
            Some(discs) => {
                let discs: Vec<String> = discs.iter().map(u32::to_string).collect();
                format!("g{g}:d{}", discs.join(","))
            }
            None => format!("g{g}"),
        }
    }
}

fn line(e: &Entry, holder: &str) -> String {
    let mut s = format!(
        "{} {:>14} {} {:<9} {}",
        mode_string(e),
        e.size,
        utc(e.mtime_sec),
        holder,
        escape_path(&e.path)
    );
    if !e.link_target.is_empty() {
        s.push_str(if e.kind == EntryKind::HardLink {
            " link to "
        } else {
            " -> "
        });
        s.push_str(&escape_path(&e.link_target));
    }
    s
}

fn print_json(name: &str, generation: u32, entries: &[Entry], holders: &Holders) -> Result<()> {
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "path": escape_path(&e.path),
                "kind": format!("{:?}", e.kind).to_lowercase(),
                "size": e.size,
                "mode": format!("{:o}", e.mode),
                "mtime": e.mtime_sec,
                "mtime_nsec": e.mtime_nsec,
                "link_target": escape_path(&e.link_target),
                "discs": holders.discs(e).unwrap_or_default(),
                "generation": e.data.generation,
                "holder": holders.holder(e),
            })
        })
        .collect();
    let doc = serde_json::json!({ "chain": name, "generation": generation, "entries": list });
    super::out_line(&serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
