//! Continuing a seed (dar) chain in our format: `create --base <name>-gen<N>-catalog.0001.dar`
//! (or `--base` a directory / images holding the seed discs) makes generation N+1 as bd-archive
//! discs. FORMAT.md §6.2 describes what such a "migrated" chain records:
//!
//! - its chain id is derived, not random: the first 16 bytes of
//!   SHA-256(`"bd-archive dar chain\n"` ‖ name ‖ `"\n"` ‖ data name of dar generation 1, the
//!   label that starts its catalogue), so every
//!   continuation of the same seed chain gets the same id, whichever generation it starts from;
//! - an entry whose content is still the one the dar chain holds has `DataRef.generation == 0`
//!   ([`SEED_DATA_GENERATION`](crate::format::catalog::SEED_DATA_GENERATION)) and `DataRef.header_offset` = the number of dar generations N;
//!   generation 0 never exists in a native chain, so this also marks the chain as a seed chain.
//!
//! Restoring such a generation replays dar generations 1..N from the seed discs first, then applies
//! the bd-archive generation's catalog on top (new and changed files, metadata, deletions).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::legacy::error::{BaseProblem, SeedError};
use sha2::{Digest, Sha256};

use super::dar::{DarEntry, DarKind};
use super::seed_disc::{detect, parse_dar_name, SeedChain};
use crate::format::catalog::{Catalog, ChainInfo, DataRef, Entry, EntryKind, SEED_DATA_GENERATION};

/// The chain id of a bd-archive chain that continues seed chain `name`, from the data name of its
/// dar generation 1 (the 10-byte label that starts the catalogue of an archive and of the isolated
/// catalogue made from it).
pub fn seed_chain_id(name: &str, gen1_data_name: &[u8; 10]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"bd-archive dar chain\n");
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(gen1_data_name);
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// The seed chain found on `sources`, which must be chain `name`.
fn chain_named(sources: &[PathBuf], name: &str, what: &Path) -> Result<SeedChain, SeedError> {
    let base = |problem| SeedError::Base {
        path: what.to_path_buf(),
        problem,
    };
    let chain = detect(sources)?.ok_or_else(|| base(BaseProblem::NotFound))?;
    if chain.name != name {
        return Err(base(BaseProblem::OtherChain {
            found: chain.name,
            name: name.to_string(),
        }));
    }
    Ok(chain)
}

/// Reads a seed `--base`: `<name>[-gen<N>]-catalog.NNNN.dar` (generation 1's catalogue or slices
/// must be beside it, or in a sibling folder, for the chain id), or a directory or image(s) holding
/// the seed discs (the newest generation found is the base). `Ok(None)` when `path` is not a seed
/// base, so the caller reads it as one of ours.
pub fn load_seed_base(path: &Path, name: &str) -> Result<Option<Catalog>, SeedError> {
    let base = |problem| SeedError::Base {
        path: path.to_path_buf(),
        problem,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (chain, base_gen) = if path.is_file() && file_name.ends_with(".dar") {
        let Some(p) = parse_dar_name(&file_name) else {
            return Err(base(BaseProblem::NotASeedName));
        };
        if !p.catalog {
            return Err(base(BaseProblem::DataSlice {
                chain: p.chain,
                generation: p.generation,
            }));
        }
        if p.chain != name {
            return Err(base(BaseProblem::OtherChain {
                found: p.chain,
                name: name.to_string(),
            }));
        }
        // Generation 1 (for the chain id) is beside the catalogue, or in a sibling disc folder.
        let parent = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut chain = chain_named(std::slice::from_ref(&parent), name, path)?;
        if !chain.generations.iter().any(|g| g.generation == 1) {
            if let Some(gp) = parent.parent() {
                chain = chain_named(&[gp.to_path_buf()], name, path)?;
            }
        }
        (chain, p.generation)
    } else {
        let probe = super::seed_disc::SeedFiles::collect(&[path.to_path_buf()])
            .map_err(|e| base(BaseProblem::Unreadable(e)))?;
        if probe.is_none() {
            return Ok(None);
        }
        let chain = chain_named(&[path.to_path_buf()], name, path)?;
        let newest = chain
            .generations
            .iter()
            .map(|g| g.generation)
            .max()
            .unwrap_or(1);
        (chain, newest)
    };
    if !chain.generations.iter().any(|g| g.generation == 1) {
        return Err(base(BaseProblem::NoGeneration1(name.to_string())));
    }
    let generation = |g: u32| move |e: SeedError| base(BaseProblem::Generation(g, Box::new(e)));
    let gen1 = chain.open_catalogue(1).map_err(generation(1))?;
    let data_name = gen1.data_name().map_err(|e| generation(1)(e.into()))?;
    let newest = chain
        .open_catalogue(base_gen)
        .map_err(generation(base_gen))?;
    let entries = newest
        .catalogue()
        .map_err(|e| generation(base_gen)(e.into()))?;
    Ok(Some(Catalog {
        chain: ChainInfo {
            name: name.to_string(),
            chain_id: seed_chain_id(name, &data_name),
            generation: base_gen,
            base_generation: base_gen.saturating_sub(1),
            created_unix: 0,
            tool_version: "dar (Python bd-archive)".into(),
            compression: "dar".into(),
            redundancy_pct: 0,
        },
        tar_len: 0,
        discs: Vec::new(),
        parts: Vec::new(),
        chunks: Vec::new(),
        entries: base_entries(&entries, base_gen),
        disc_map: Vec::new(),
    }))
}

/// The tree as of dar generation `seed_gens`, as catalog entries whose content points into the
/// dar chain. What dar does not record for unchanged entries (a symlink's target, a device number)
/// stays empty, so the next generation simply stores those small entries again.
fn base_entries(dar: &[DarEntry], seed_gens: u32) -> Vec<Entry> {
    // A hard-link group's file entry is its first path in tree order, as our scan makes it (dar
    // lists the group in its own walk order); the others link to it.
    let mut first_link: HashMap<u64, Vec<u8>> = HashMap::new();
    for d in dar {
        if let (Some(tag), DarKind::File) = (d.hardlink, &d.kind) {
            let f = first_link.entry(tag).or_insert_with(|| d.path.clone());
            if crate::format::catalog::tree_order(&d.path, f) == std::cmp::Ordering::Less {
                *f = d.path.clone();
            }
        }
    }
    let mut out = Vec::new();
    for d in dar {
        let kind = match (&d.kind, d.status) {
            (DarKind::Deleted(_), _) | (DarKind::Door, _) => continue,
            (DarKind::File, _) if d.hardlink.is_some() => {
                match d.hardlink.and_then(|t| first_link.get(&t)) {
                    Some(f) if *f != d.path => EntryKind::HardLink,
                    _ => EntryKind::File,
                }
            }
            (DarKind::File, _) => EntryKind::File,
            (DarKind::Dir, _) => EntryKind::Dir,
            (DarKind::Symlink, _) => EntryKind::Symlink,
            (DarKind::CharDev, _) => EntryKind::CharDevice,
            (DarKind::BlockDev, _) => EntryKind::BlockDevice,
            (DarKind::Fifo, _) => EntryKind::Fifo,
            (DarKind::Socket, _) => EntryKind::Socket,
        };
        let mut link_target = d.link_target.clone().unwrap_or_default();
        if kind == EntryKind::HardLink {
            match d.hardlink.and_then(|t| first_link.get(&t)) {
                Some(t) => link_target = t.clone(),
                None => continue,
            }
        }
        out.push(Entry {
            link_target,
            data: DataRef {
                generation: SEED_DATA_GENERATION,
                header_offset: u64::from(seed_gens),
                content_offset: 0,
            },
            ..crate::legacy::dar::extract::to_entry(d, kind)
        });
    }
    out
}

/// Splits command-line sources into seed sources (dar files, seed images) and ours (bd-archive
/// images, disc folders, output directories), by looking for our disc header.
pub fn split_sources(sources: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut seed = Vec::new();
    let mut ours = Vec::new();
    for s in sources {
        if crate::optical::device::is_drive_path(s) {
            ours.push(s.clone()); // a drive: read by our drive code, never probed here
            continue;
        }
        match crate::disc::reader::expand_sources(std::slice::from_ref(s)) {
            Ok(paths) => {
                for p in paths {
                    if is_ours(&p) {
                        ours.push(p);
                    } else {
                        seed.push(p);
                    }
                }
            }
            Err(_) => seed.push(s.clone()),
        }
    }
    (seed, ours)
}

fn is_ours(p: &Path) -> bool {
    if p.is_dir() {
        return !crate::disc::dir::header_files(p).is_empty();
    }
    match crate::sector::FileSectorSource::open(p) {
        Ok(src) => crate::disc::reader::find_disc_header(&src).is_some(),
        Err(_) => false,
    }
}
