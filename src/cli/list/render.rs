//! How `list` prints entries: one `ls -l`-like line each (mode, size, mtime in UTC, the
//! generation and discs holding it, path), or one JSON document.

use anyhow::Result;

use bd_archive::format::catalog::{discs_of, DiscMap, Entry, EntryKind};
use bd_archive::util::escape::escape_path;

use super::ChunkTables;

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
pub(super) struct Holders {
    pub(super) tables: ChunkTables,
    pub(super) map: DiscMap,
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
    pub(super) fn holder(&self, e: &Entry) -> String {
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

pub(super) fn line(e: &Entry, holder: &str) -> String {
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

pub(super) fn print_json(
    name: &str,
    generation: u32,
    entries: &[Entry],
    holders: &Holders,
) -> Result<()> {
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
    crate::cli::out_line(&serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
