//! The sources of `extract` and `list`: every SOURCE opened as discs of one chain.

use std::collections::BTreeMap;

use crate::restore::ExtractError;

use crate::disc::reader::{expand_sources, section_set_ids, Disc, ReadError, RepairSettings};
use crate::format::disc_header::DiscHeader;
use crate::sector::SectorSource;
use crate::util::progress::Progress;

/// Opens every source, keeping only discs of one chain; returns discs grouped by generation.
/// The one place where SOURCE arguments become discs, shared by `extract`, `list` and the
/// fuzz round trip, so all of them accept the same sources and refuse the same mixes.
/// Two different sets claiming one generation (two `create --base GEN1` runs) are refused,
/// naming both, unless `pick` (`--set ID`) chooses one: a mix is never restored by guess.
pub fn open_discs(
    sources: &[std::path::PathBuf],
    settings: &RepairSettings,
    pick: Option<&str>,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, Vec<Disc>>, ExtractError> {
    if sources.is_empty() {
        return Err(ExtractError::NoSources);
    }
    let paths = expand_sources(sources)?;
    let mut by_gen: BTreeMap<u32, Vec<Disc>> = BTreeMap::new();
    let mut chain: Option<([u8; 16], String)> = None;
    for p in &paths {
        let discs = match Disc::open_all(p, settings) {
            Ok(d) => d,
            Err(e @ ReadError::NotOurs(_)) => return Err(e.into()),
            Err(e @ ReadError::ParityDisc(..)) => {
                progress.detail(&format!(
                    "{e}; not needed while the data discs are readable"
                ));
                continue;
            }
            Err(e) => {
                progress.warn(&format!("{e}; this disc is skipped"));
                continue;
            }
        };
        if let Some(Ok(r)) = discs[0].repair_summary() {
            progress.warn(&match r.unrepaired {
                0 => format!(
                    "{}: damaged ({} sectors lost), repaired with its FEC data",
                    p.display(),
                    r.lost_sectors
                ),
                n => format!(
                    "{}: damaged ({} sectors lost, {n} of them beyond what its FEC data can rebuild)",
                    p.display(),
                    r.lost_sectors
                ),
            });
        }
        for disc in discs {
            for problem in &disc.problems {
                progress.warn(&format!("{}: {problem}", p.display()));
            }
            match &chain {
                None => chain = Some((disc.header.chain_id, disc.header.name.clone())),
                Some((id, name)) if *id != disc.header.chain_id => {
                    return Err(ExtractError::MixedChains {
                        path: p.clone(),
                        found: disc.header.name.clone(),
                        first: name.clone(),
                    });
                }
                _ => {}
            }
            progress.detail(&format!(
                "{}: {} generation {} disc {} (set {})",
                p.display(),
                disc.header.name,
                disc.generation(),
                disc.number(),
                set_id(&disc).map_or_else(|| "unknown".into(), |s| s.full())
            ));
            by_gen.entry(disc.generation()).or_default().push(disc);
        }
    }
    if by_gen.is_empty() {
        return Err(ExtractError::NothingReadable);
    }
    resolve_sets(by_gen, pick, progress)
}

/// Which set (create run) of its generation a disc belongs to. Two `create --base GEN1` runs
/// make two different sets of generation 2; extract must never mix them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetId {
    /// The random set id in the record headers of the run's indexes and catalog (format 2).
    Random([u8; 16]),
    /// Discs of format version 1 carry no set id: the generation's creation time (seconds
    /// since 1970) stands in (two runs within one second are not told apart).
    Created(i64),
}

impl serde::Serialize for SetId {
    /// In JSON a set id is a string: its 32 hex digits, or the creation time of a format-1 set.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full())
    }
}

/// Hex digits of a random set id shown at least (more when two ids given share them).
pub const SET_ID_SHOWN: usize = 8;

impl SetId {
    /// The set id of a record header (`None` for the all-zero id of format version 1).
    pub fn from_record(set_id: [u8; 16]) -> Option<SetId> {
        (set_id != [0; 16]).then_some(SetId::Random(set_id))
    }

    /// Written out whole: 32 hex digits, or the creation time.
    pub fn full(&self) -> String {
        match self {
            SetId::Random(b) => b.iter().map(|b| format!("{b:02x}")).collect(),
            SetId::Created(t) => t.to_string(),
        }
    }

    /// As shown to the user: the first `digits` hex digits of a random id, or the creation time.
    pub fn shown(&self, digits: usize) -> String {
        let mut s = self.full();
        if let SetId::Random(_) = self {
            s.truncate(digits);
        }
        s
    }

    /// Whether `given` (`--set ID`) names this set: a prefix of at least 4 hex digits of a
    /// random id (any case), or the creation time of a format-1 set.
    pub fn matches(&self, given: &str) -> bool {
        match self {
            SetId::Random(_) => {
                given.len() >= 4 && self.full().starts_with(&given.to_ascii_lowercase())
            }
            SetId::Created(t) => given.parse::<i64>() == Ok(*t),
        }
    }
}

/// How many hex digits tell every one of `ids` apart (at least [`SET_ID_SHOWN`]).
pub fn shown_digits<'a>(ids: impl IntoIterator<Item = &'a SetId> + Clone) -> usize {
    (SET_ID_SHOWN..32)
        .find(|&n| {
            let shown: std::collections::BTreeSet<String> =
                ids.clone().into_iter().map(|i| i.shown(n)).collect();
            shown.len() == ids.clone().into_iter().count()
        })
        .unwrap_or(32)
}

/// The set a disc belongs to: the set id in its index's (else catalog's) record header; on a
/// disc of format version 1 (all-zero id) the generation's creation time, from its index or
/// catalog, else from the header when this is the header's own (newest) section. None when
/// nothing says (records unreadable): such a disc is not counted as a set of its own.
pub fn set_id(d: &Disc) -> Option<SetId> {
    let recorded = d.set_id?;
    if let Some(id) = SetId::from_record(recorded) {
        return Some(id);
    }
    d.index
        .as_ref()
        .map(|i| i.chain.created_unix)
        .or_else(|| d.catalog.as_ref().map(|c| c.chain.created_unix))
        .or_else(|| (d.section + 1 == d.header.sections.len()).then_some(d.header.created_unix))
        .map(SetId::Created)
}

/// The set of each generation section of a disc known only by its header (verify): from the
/// record headers of the section's index or catalog; a format-1 disc's creation time only for
/// the header's own (newest) section.
pub fn section_sets(source: &dyn SectorSource, header: &DiscHeader) -> Vec<Option<SetId>> {
    let newest = header.sections.len().saturating_sub(1);
    section_set_ids(source, header)
        .into_iter()
        .enumerate()
        .map(|(i, recorded)| {
            let recorded = recorded?;
            SetId::from_record(recorded)
                .or_else(|| (i == newest).then_some(SetId::Created(header.created_unix)))
        })
        .collect()
}

/// Refuses a generation given as two different sets, or keeps the one `pick` names.
fn resolve_sets(
    by_gen: BTreeMap<u32, Vec<Disc>>,
    pick: Option<&str>,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, Vec<Disc>>, ExtractError> {
    let mut picked = false;
    let mut out = BTreeMap::new();
    for (g, discs) in by_gen {
        let mut sets: BTreeMap<SetId, Vec<String>> = BTreeMap::new();
        for d in &discs {
            if let Some(id) = set_id(d) {
                sets.entry(id).or_default().push(d.name.clone());
            }
        }
        // The set `pick` names, when it names exactly one of this generation's.
        let chosen = pick.and_then(|p| {
            let mut named = sets.keys().filter(|id| id.matches(p));
            match (named.next(), named.next()) {
                (Some(id), None) => Some(*id),
                _ => None,
            }
        });
        if sets.len() < 2 {
            picked |= chosen.is_some();
            out.insert(g, discs);
            continue;
        }
        let Some(p) = chosen else {
            return Err(ExtractError::SetConflict(describe_conflict(
                &discs[0].header.name,
                g,
                &sets,
            )));
        };
        picked = true;
        let shown = p.shown(shown_digits(sets.keys()));
        let (keep, drop): (Vec<Disc>, Vec<Disc>) =
            discs.into_iter().partition(|d| set_id(d) == Some(p));
        for d in drop {
            progress.step(&format!("{}: not of set {shown} (--set); left out", d.name));
        }
        out.insert(g, keep);
    }
    if let (Some(p), false) = (pick, picked) {
        return Err(ExtractError::NoSuchSet(p.to_string()));
    }
    Ok(out)
}

/// The refusal of a generation given as several sets: each set's id (as many hex digits as tell
/// them apart), creation time and images.
pub fn describe_conflict(
    chain: &str,
    generation: u32,
    sets: &BTreeMap<SetId, Vec<String>>,
) -> String {
    let digits = shown_digits(sets.keys());
    let described: Vec<String> = sets
        .iter()
        .map(|(id, names)| format!("set {}: {}", describe_set(id, digits), names.join(", ")))
        .collect();
    let picks: Vec<String> = sets
        .keys()
        .map(|id| format!("--set {}", id.shown(digits)))
        .collect();
    format!(
        "generation {generation} of chain '{chain}' is given as {} different sets (separate create runs): {}; pass {} to choose one, or give the images of one set only",
        sets.len(),
        described.join("; "),
        picks.join(" or ")
    )
}

/// A set id as shown, with the creation time when that is what it is.
pub fn describe_set(id: &SetId, digits: usize) -> String {
    match id {
        SetId::Random(_) => id.shown(digits),
        SetId::Created(t) => {
            let (y, m, d, hh, mm, ss) = crate::util::civil_time::civil_from_unix(*t);
            format!("{t} (created {y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_are_shown_as_long_as_needed_and_matched_by_prefix() {
        let mut a = [0x3f; 16];
        let b = [0x3f; 16];
        a[15] = 0x40;
        let (a, b) = (SetId::Random(a), SetId::Random(b));
        let old = SetId::Created(1_765_000_000);
        assert_eq!(SetId::from_record([0; 16]), None);
        assert_eq!(shown_digits([&a, &old].iter().copied()), 8);
        // Equal up to the last byte's high digit: 31 digits tell them apart.
        assert_eq!(shown_digits([&a, &b].iter().copied()), 31);
        assert_eq!(a.shown(8), "3f3f3f3f");
        assert!(a.matches("3F3F") && !a.matches("3f3") && !a.matches("40"));
        assert!(old.matches("1765000000") && !old.matches("3f3f"));
        assert_eq!(old.shown(8), "1765000000");
    }
}
