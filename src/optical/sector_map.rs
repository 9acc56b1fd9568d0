//! [`SectorMap`]: which sectors of a disc have been read, failed, or not been tried yet —
//! persisted in GNU ddrescue's mapfile format so a later pass (the same disc re-inserted, or the
//! same disc in another drive, or `ddrescue` itself) reads only what is still missing.
//!
//! Mapfile format (GNU ddrescue manual, "Mapfile structure"): `#` comment lines; one status line
//! `current_pos current_status [current_pass]`; then one line per block `pos size status`, with
//! positions and sizes in bytes (we write `0x`-prefixed hex, as ddrescue does, and accept decimal
//! too). Blocks are contiguous and cover the whole disc. Block status characters:
//! `?` non-tried, `*` failed block not yet trimmed, `/` failed block not yet scraped (we use it
//! for sectors we skipped after neighbouring failures), `-` bad sector(s) tried one by one,
//! `+` finished (read and stored).
//!
//! We work in 2048-byte sectors; a mapfile block not aligned to sectors is rounded so that a
//! partly finished sector counts as not finished (never trusting bytes we do not have).

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::sector::SECTOR_SIZE;

/// Status of a run of sectors, with ddrescue's characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectorStatus {
    /// `?`: never tried.
    NonTried,
    /// `*`: a multi-sector read covering it failed; not yet tried alone.
    NonTrimmed,
    /// `/`: skipped after failures around it; not yet tried alone.
    NonScraped,
    /// `-`: tried alone and unreadable.
    Bad,
    /// `+`: read successfully (and stored, when there is a rescue copy).
    Finished,
}

impl SectorStatus {
    /// The mapfile character.
    pub fn as_char(self) -> char {
        match self {
            SectorStatus::NonTried => '?',
            SectorStatus::NonTrimmed => '*',
            SectorStatus::NonScraped => '/',
            SectorStatus::Bad => '-',
            SectorStatus::Finished => '+',
        }
    }

    fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '?' => SectorStatus::NonTried,
            '*' => SectorStatus::NonTrimmed,
            '/' => SectorStatus::NonScraped,
            '-' => SectorStatus::Bad,
            '+' => SectorStatus::Finished,
            _ => return None,
        })
    }
}

/// A run of sectors `[start, start + len)` sharing one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub len: u64,
    pub status: SectorStatus,
}

impl Run {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The status of every sector of one disc, as sorted, contiguous, coalesced runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorMap {
    sectors: u64,
    runs: Vec<Run>,
}

/// A mapfile that cannot be used: names the line and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} line {line}: {what} (not a GNU ddrescue mapfile?)")]
    Syntax {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{path} describes {theirs} sectors but this disc has {ours}: it belongs to another disc; use another --map file")]
    SizeMismatch {
        path: String,
        theirs: u64,
        ours: u64,
    },
}

impl SectorMap {
    /// A map of `sectors` sectors, none tried yet.
    pub fn new(sectors: u64) -> Self {
        let runs = if sectors == 0 {
            Vec::new()
        } else {
            vec![Run {
                start: 0,
                len: sectors,
                status: SectorStatus::NonTried,
            }]
        };
        SectorMap { sectors, runs }
    }

    /// Sectors the map covers.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The runs, in order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Index of the run holding `lba` (which must be < `sectors`).
    fn run_index(&self, lba: u64) -> usize {
        self.runs.partition_point(|r| r.end() <= lba)
    }

    /// Status of one sector (`Bad` past the end, which cannot be read either).
    pub fn status(&self, lba: u64) -> SectorStatus {
        if lba >= self.sectors {
            return SectorStatus::Bad;
        }
        self.runs[self.run_index(lba)].status
    }

    /// The run containing `lba`, clipped to start at `lba`.
    pub fn run_at(&self, lba: u64) -> Option<Run> {
        if lba >= self.sectors {
            return None;
        }
        let r = self.runs[self.run_index(lba)];
        Some(Run {
            start: lba,
            len: r.end() - lba,
            status: r.status,
        })
    }

    /// Sets `[start, start + len)` (clipped to the disc) to `status`, keeping runs coalesced.
    pub fn set(&mut self, start: u64, len: u64, status: SectorStatus) {
        let end = start.saturating_add(len).min(self.sectors);
        if start >= end {
            return;
        }
        let first = self.run_index(start);
        let last = self.run_index(end - 1);
        let mut replacement = Vec::with_capacity(3);
        let head = self.runs[first];
        if head.start < start {
            replacement.push(Run {
                len: start - head.start,
                ..head
            });
        }
        replacement.push(Run {
            start,
            len: end - start,
            status,
        });
        let tail = self.runs[last];
        if tail.end() > end {
            replacement.push(Run {
                start: end,
                len: tail.end() - end,
                status: tail.status,
            });
        }
        self.runs.splice(first..=last, replacement);
        self.coalesce_around(first.saturating_sub(1), first + 3);
    }

    /// Merges neighbouring runs of equal status within `[from, to]` (indices, clipped).
    fn coalesce_around(&mut self, from: usize, to: usize) {
        let mut i = from;
        let mut to = to.min(self.runs.len().saturating_sub(1));
        while i < to {
            if self.runs[i].status == self.runs[i + 1].status {
                self.runs[i].len += self.runs[i + 1].len;
                self.runs.remove(i + 1);
                to -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// Total sectors with `status`.
    pub fn count(&self, status: SectorStatus) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.len)
            .sum()
    }

    /// True when every sector has been read.
    pub fn is_complete(&self) -> bool {
        self.count(SectorStatus::Finished) == self.sectors
    }

    /// Sectors not read (yet): everything but `Finished`.
    pub fn missing(&self) -> u64 {
        self.sectors - self.count(SectorStatus::Finished)
    }

    /// The mapfile text. `current` is the position the next pass would continue from.
    pub fn to_mapfile(&self, current: u64, comment: &str) -> String {
        let ss = SECTOR_SIZE as u64;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Mapfile. Created by bd-archive {}",
            env!("CARGO_PKG_VERSION")
        );
        for line in comment.lines() {
            let _ = writeln!(s, "# {line}");
        }
        let phase = if self.is_complete() { '+' } else { '?' };
        let _ = writeln!(s, "# current_pos  current_status  current_pass");
        let _ = writeln!(s, "0x{:08X}     {phase}               1", current * ss);
        let _ = writeln!(s, "#      pos        size  status");
        for r in &self.runs {
            let _ = writeln!(
                s,
                "0x{:08X}  0x{:08X}  {}",
                r.start * ss,
                r.len * ss,
                r.status.as_char()
            );
        }
        s
    }

    /// Parses mapfile text for a disc of `sectors` sectors. Blocks outside the disc are an error
    /// (a map of another disc); sectors the file does not mention stay non-tried.
    pub fn parse(text: &str, sectors: u64, path: &str) -> Result<SectorMap, MapError> {
        let ss = SECTOR_SIZE as u64;
        let syntax = |line: usize, what: &str| MapError::Syntax {
            path: path.to_string(),
            line,
            what: what.to_string(),
        };
        let mut map = SectorMap::new(sectors);
        let mut seen_status_line = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !seen_status_line {
                seen_status_line = true;
                if fields.len() < 2 || parse_number(fields[0]).is_none() {
                    return Err(syntax(i + 1, "expected `current_pos current_status`"));
                }
                continue;
            }
            let [pos, size, status, ..] = fields[..] else {
                return Err(syntax(i + 1, "expected `pos size status`"));
            };
            let pos = parse_number(pos).ok_or_else(|| syntax(i + 1, "bad position"))?;
            let size = parse_number(size).ok_or_else(|| syntax(i + 1, "bad size"))?;
            let status = status
                .chars()
                .next()
                .and_then(SectorStatus::from_char)
                .ok_or_else(|| syntax(i + 1, "unknown status character"))?;
            let end = pos
                .checked_add(size)
                .ok_or_else(|| syntax(i + 1, "size overflows"))?;
            if end > sectors * ss && status != SectorStatus::NonTried {
                return Err(MapError::SizeMismatch {
                    path: path.to_string(),
                    theirs: end.div_ceil(ss),
                    ours: sectors,
                });
            }
            // Finished only for whole sectors inside the block; anything else conservatively
            // covers every sector it touches.
            let (first, last) = if status == SectorStatus::Finished {
                (pos.div_ceil(ss), end / ss)
            } else {
                (pos / ss, end.div_ceil(ss))
            };
            if last > first {
                map.set(first, last - first, status);
            }
        }
        Ok(map)
    }

    /// Loads a mapfile if it exists (`Ok(None)` when it does not).
    pub fn load(path: &Path, sectors: u64) -> Result<Option<SectorMap>, MapError> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => SectorMap::parse(&text, sectors, &name).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MapError::Io { path: name, source }),
        }
    }

    /// Writes the mapfile atomically (temporary file + rename), so an interruption never
    /// leaves a truncated map that would claim less than we read.
    pub fn save(&self, path: &Path, current: u64, comment: &str) -> Result<(), MapError> {
        let name = path.display().to_string();
        let tmp = path.with_extension("map-tmp");
        let io_err = |source| MapError::Io {
            path: name.clone(),
            source,
        };
        // The temporary name is created exclusively (a stale one is unlinked, never followed),
        // and rename replaces whatever is at `path` without following it.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(e)),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err)?;
        std::io::Write::write_all(&mut f, self.to_mapfile(current, comment).as_bytes())
            .map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)
    }
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SectorStatus::*;

    fn check_invariants(m: &SectorMap) {
        let mut at = 0;
        for (i, r) in m.runs().iter().enumerate() {
            assert_eq!(r.start, at, "runs contiguous");
            assert!(r.len > 0);
            if i > 0 {
                assert_ne!(m.runs()[i - 1].status, r.status, "coalesced");
            }
            at += r.len;
        }
        assert_eq!(at, m.sectors());
    }

    #[test]
    fn set_splits_and_coalesces() {
        let mut m = SectorMap::new(100);
        m.set(10, 5, Bad);
        m.set(0, 10, Finished);
        m.set(15, 85, Finished);
        check_invariants(&m);
        assert_eq!(m.runs().len(), 3);
        assert_eq!(m.count(Bad), 5);
        m.set(10, 5, Finished);
        check_invariants(&m);
        assert_eq!(m.runs().len(), 1);
        assert!(m.is_complete());
        m.set(99, 10, Bad); // clipped at the end
        check_invariants(&m);
        assert_eq!(m.status(99), Bad);
        assert_eq!(m.status(200), Bad);
    }

    #[test]
    fn random_sets_match_a_per_sector_model() {
        let mut m = SectorMap::new(257);
        let mut model = vec![NonTried; 257];
        let statuses = [NonTried, NonTrimmed, NonScraped, Bad, Finished];
        let mut x: u64 = 12345;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let start = (x >> 33) % 257;
            let len = (x >> 20) % 40;
            let st = statuses[((x >> 8) % 5) as usize];
            m.set(start, len, st);
            for s in model.iter_mut().skip(start as usize).take(len as usize) {
                *s = st;
            }
            check_invariants(&m);
        }
        for (i, s) in model.iter().enumerate() {
            assert_eq!(m.status(i as u64), *s);
        }
    }

    #[test]
    fn mapfile_round_trip_and_ddrescue_syntax() {
        let mut m = SectorMap::new(1000);
        m.set(0, 600, Finished);
        m.set(600, 3, Bad);
        m.set(603, 50, NonScraped);
        m.set(700, 300, Finished);
        let text = m.to_mapfile(653, "disc 1");
        assert!(text.contains("0x00000000  0x0012C000  +"), "{text}");
        let back = SectorMap::parse(&text, 1000, "m").unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn parses_a_mapfile_written_by_ddrescue() {
        // As GNU ddrescue 1.27 writes it (byte positions, 512-byte-aligned bad area).
        let text = "# Mapfile. Created by GNU ddrescue version 1.27\n\
                    # Command line: ddrescue -b2048 /dev/sr0 disc.iso disc.map\n\
                    # current_pos  current_status  current_pass\n\
                    0x00001000     +               1\n\
                    #      pos        size  status\n\
                    0x00000000  0x00000A00  +\n\
                    0x00000A00  0x00000200  -\n\
                    0x00000C00  0x00001400  +\n";
        let m = SectorMap::parse(text, 4, "disc.map").unwrap();
        // Sector 1 (bytes 2048..4095) is only partly finished: not trusted.
        assert_eq!(m.status(0), Finished);
        assert_eq!(m.status(1), Bad);
        assert_eq!(m.status(2), Finished);
        assert_eq!(m.status(3), Finished);
    }

    #[test]
    fn bad_mapfiles_are_errors_not_panics() {
        assert!(SectorMap::parse("0x0 ?\n0x0 zz +\n", 4, "m").is_err());
        assert!(SectorMap::parse("garbage\n", 4, "m").is_err());
        assert!(SectorMap::parse("0 ?\n0 8192 ~\n", 4, "m").is_err());
        let e = SectorMap::parse("0 ?\n0 16384 +\n", 4, "m").unwrap_err();
        assert!(matches!(e, MapError::SizeMismatch { .. }));
        assert!(SectorMap::parse("0 ?\n0xFFFFFFFFFFFFFFFF 0x10 -\n", 4, "m").is_err());
    }
}
