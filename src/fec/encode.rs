//! Writing the FEC region: runs of adjacent stripes sized to the memory budget, one per thread at a
//! time, each read straight into its encoders' working space (one preadv per row, CRC32C while the
//! sectors are hot), encoded, and its parity written row by row from where the encoders leave it
//! (one pwritev per row); encoders are reused run after run.

use super::layout::{
    seal_table_parity, sector_crcs, set_table_entry, table_shard_of, write_meta_sector, FecLayout,
    MetaKind, ENTRIES_PER_TABLE_SECTOR, TABLE_PARITY_FACTOR,
};
use super::stripe_encoder::StripeEncoder;
use super::{io_err, FecError};
use crate::sector::SECTOR_SIZE;
use crate::util::positional_io::{read_exact_vectored_at, write_all_vectored_at};
use rayon::prelude::*;
use reed_solomon_simd::engine::DefaultEngine;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

const SS: usize = SECTOR_SIZE;

/// A pool of codec instances, one per concurrently running task, reused across stripes and passes
/// (creating one allocates its working memory, ≈ a stripe's size).
pub(crate) struct Pool<T>(Mutex<Vec<T>>);

impl<T> Pool<T> {
    pub(crate) fn new() -> Self {
        Pool(Mutex::new(Vec::new()))
    }
    pub(crate) fn take(&self) -> Option<T> {
        self.0.lock().ok().and_then(|mut v| v.pop())
    }
    pub(crate) fn give(&self, t: T) {
        if let Ok(mut v) = self.0.lock() {
            v.push(t);
        }
    }
    /// Runs `f` on the pooled instances (none are lent out between encode calls).
    fn inspect<R: Default>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        self.0.lock().map(|mut v| f(&mut v)).unwrap_or_default()
    }
}

/// Stripes per pass for a budget: what remains after the CRC table and the per-thread codecs, divided
/// by the bytes a stripe needs (`per_stripe`), at least 1 and at most S.
pub(crate) fn stripes_per_pass(
    layout: &FecLayout,
    budget: u64,
    fixed: u64,
    per_stripe: u64,
) -> Result<u64, FecError> {
    let threads = rayon::current_num_threads() as u64;
    let needed = fixed + threads * layout.codec_bytes() + per_stripe;
    if budget < needed {
        return Err(FecError::Memory { budget, needed });
    }
    let w = (budget - fixed - threads * layout.codec_bytes()) / per_stripe;
    Ok(w.clamp(1, layout.stripes()))
}

/// Runs per thread the stripes are cut into at least, so that all threads stay busy to the end.
const MIN_RUNS_PER_THREAD: u64 = 4;

/// reed-solomon-simd's global lookup tables (multiplication tables of 8 MiB for the SIMD engines,
/// plus exp/log/skew), allocated on first use and then resident for the life of the process.
const CODEC_TABLES_BYTES: u64 = 17 << 20;

/// Stripes per run for a budget. Each thread holds one run at a time: an encoder's working space per
/// stripe (the image is read into it, parity written from it); the checksum table (4 bytes per
/// sector) comes off the top. At least 1, at most what leaves every thread [`MIN_RUNS_PER_THREAD`] runs.
pub(crate) fn stripes_per_run(layout: &FecLayout, budget: u64) -> Result<u64, FecError> {
    let threads = rayon::current_num_threads() as u64;
    let table = layout.table_entries() * 4;
    let per_stripe = threads * layout.encoder_bytes();
    let needed = table + per_stripe;
    if budget < needed {
        return Err(FecError::Memory { budget, needed });
    }
    let s = layout.stripes();
    let w = (budget - table) / per_stripe;
    Ok(w.min(s.div_ceil(threads * MIN_RUNS_PER_THREAD)).max(1))
}

/// Computes the FEC region for the protected sectors [0, D) already written to `image` and writes it
/// at LBA D (extending the file to D + F sectors), with a fresh [`RegionEncoder`] (see there).
pub fn encode(
    image: &File,
    layout: &FecLayout,
    memory_budget: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), FecError> {
    RegionEncoder::new(memory_budget).encode(image, layout, progress)
}

/// Writes FEC regions image after image, keeping its stripe encoders from one image to the next.
///
/// The encoders are the bulk of the FEC stage's memory (up to the budget): allocating and faulting
/// in that much fresh working space for every disc of a set cost ≈ 7 % of the stage on 1 GB
/// images. Holding them between discs does not raise the peak — the FEC stage is the peak, and
/// the rest of `create` waits while it runs.
pub struct RegionEncoder {
    memory_budget: u64,
    /// An engine and its stripe encoders, one set per thread at most, reused run after run.
    sets: Pool<EncoderSet>,
}

/// What one thread encodes a run with.
struct EncoderSet {
    engine: DefaultEngine,
    encoders: Vec<StripeEncoder>,
}

impl RegionEncoder {
    /// An encoder whose work stays within `memory_budget` bytes of process RSS (see
    /// [`encode`](Self::encode)).
    pub fn new(memory_budget: u64) -> Self {
        RegionEncoder {
            memory_budget,
            sets: Pool::new(),
        }
    }

    /// Computes the FEC region for the protected sectors [0, D) already written to `image` and
    /// writes it at LBA D (extending the file to D + F sectors).
    ///
    /// The stripes are cut into runs of w adjacent stripes ([`stripes_per_run`]); each thread takes
    /// a run, reads row r's w sectors (one preadv, CRC while hot) straight into the run's encoders
    /// for r = 0..k, encodes them and writes parity row p of the run as one pwritev for p = 0..m.
    /// Threads drift apart, so one's reads overlap another's encoding and writes.
    ///
    /// The memory budget bounds the process's resident memory while encoding: what is already
    /// resident (the caller's buffers, code, allocator caches — but not this encoder's own
    /// encoders) and the codec's global tables are taken off it, and the rest holds the CRC table
    /// and one run per thread. Should that leave too little for even one stripe per thread, the
    /// whole budget goes to the FEC (better over than fail). `progress` receives the number of
    /// protected sectors processed so far.
    pub fn encode(
        &self,
        image: &File,
        layout: &FecLayout,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), FecError> {
        let d = layout.protected_sectors();
        let s = layout.stripes();
        let have = image
            .metadata()
            .map_err(io_err("reading the image size"))?
            .len()
            / SS as u64;
        if have < d {
            return Err(FecError::Geometry(format!(
                "image holds {have} sectors but the layout protects {d}"
            )));
        }
        let budget = self.memory_budget;
        let elsewhere = resident_bytes().saturating_sub(self.held_bytes()) + CODEC_TABLES_BYTES;
        let w = stripes_per_run(layout, budget.saturating_sub(elsewhere))
            .or_else(|_| stripes_per_run(layout, budget))?;
        self.trim(w as usize, layout);
        let crcs: Vec<AtomicU32> = (0..layout.table_entries())
            .map(|_| AtomicU32::new(0))
            .collect();
        let runs = Runner {
            image,
            layout,
            crcs: &crcs,
            sets: &self.sets,
            done: AtomicU64::new(0),
            progress,
        };
        // Runs of near-equal size (w or w − 1 stripes), as many as a multiple of the thread count,
        // so that no thread is left alone with the last run.
        let threads = rayon::current_num_threads() as u64;
        let n = s.div_ceil(w).next_multiple_of(threads).min(s);
        (0..n)
            .into_par_iter()
            .try_for_each(|i| runs.run((i * s / n, (i + 1) * s / n)))?;

        write_metadata(image, layout, &|g| crcs[g as usize].load(Ordering::Relaxed))
    }

    /// Bytes of working space the kept encoders hold.
    fn held_bytes(&self) -> u64 {
        self.sets.inspect(|sets| {
            sets.iter()
                .flat_map(|set| &set.encoders)
                .map(StripeEncoder::held_bytes)
                .sum()
        })
    }

    /// Drops kept encoders beyond `w` per thread or of another geometry, so that what is held never
    /// exceeds what this image's runs are budgeted for.
    fn trim(&self, w: usize, layout: &FecLayout) {
        let (k, m) = (
            layout.data_per_stripe() as usize,
            layout.parity_per_stripe() as usize,
        );
        self.sets.inspect(|sets| {
            for set in sets.iter_mut() {
                set.encoders.retain(|e| e.is_for(k, m));
                set.encoders.truncate(w);
            }
        });
    }
}

/// Resident set size of this process (Linux /proc/self/statm), 0 where unknown.
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// What the runs share.
struct Runner<'a> {
    image: &'a File,
    layout: &'a FecLayout,
    /// Table entry g (protected sectors, then parity), filled by the runs as they go.
    crcs: &'a [AtomicU32],
    sets: &'a Pool<EncoderSet>,
    done: AtomicU64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Runner<'_> {
    /// Reads, encodes and writes the parity of stripes [a, b).
    fn run(&self, (a, b): (u64, u64)) -> Result<(), FecError> {
        let l = self.layout;
        let (d, s) = (l.protected_sectors(), l.stripes());
        let (k, m) = (l.data_per_stripe() as u64, l.parity_per_stripe() as u64);
        let w = (b - a) as usize;
        let mut set = self.sets.take().unwrap_or_else(|| EncoderSet {
            engine: DefaultEngine::new(),
            encoders: Vec::new(),
        });
        while set.encoders.len() < w {
            set.encoders
                .push(StripeEncoder::new(k as usize, m as usize)?);
        }
        let engine = &set.engine;
        let encs = &mut set.encoders[..w];

        // Row r of the run = the one or two stretches of row r holding stripes [a, b) (FORMAT.md
        // §3.1: each row is rotated), zero past D: shard r of each stripe, read with one preadv per
        // stretch straight into the encoders.
        for r in 0..k {
            let row = r as usize;
            for (col, t0, len) in l.row_parts(r, a, w as u64) {
                let start = r * s + col;
                let n = (start + len as u64).min(d).saturating_sub(start) as usize;
                let part = &mut encs[t0..t0 + len];
                if n > 0 {
                    let mut iov: Vec<IoSliceMut> = part[..n]
                        .iter_mut()
                        .map(|e| IoSliceMut::new(e.original_mut(row)))
                        .collect();
                    read_exact_vectored_at(self.image, &mut iov, start * SS as u64).map_err(
                        |e| {
                            io_err(format!(
                                "reading sectors {start}..{} of the image",
                                start + n as u64
                            ))(e)
                        },
                    )?;
                }
                for e in &mut part[n..] {
                    e.original_mut(row).fill(0); // virtual zero sectors past D
                }
                let part = &*part;
                sector_crcs(
                    start,
                    n,
                    |i| part[i].original(row),
                    |t, crc| self.crcs[start as usize + t].store(crc, Ordering::Relaxed),
                );
            }
        }
        for e in encs.iter_mut() {
            e.encode(engine);
        }

        // Parity row p of the run: one pwritev per stretch.
        for p in 0..m {
            for (col, t0, len) in l.row_parts(k + p, a, w as u64) {
                if len == 0 {
                    continue;
                }
                let lba = l.parity_row_lba(p) + col;
                let entry = (d + p * s + col) as usize;
                let part = &encs[t0..t0 + len];
                sector_crcs(
                    lba,
                    len,
                    |i| part[i].recovery(p as usize),
                    |t, crc| self.crcs[entry + t].store(crc, Ordering::Relaxed),
                );
                let mut iov: Vec<IoSlice> = part
                    .iter()
                    .map(|e| IoSlice::new(e.recovery(p as usize)))
                    .collect();
                write_all_vectored_at(self.image, &mut iov, lba * SS as u64)
                    .map_err(|e| io_err(format!("writing parity sectors at LBA {lba}"))(e))?;
            }
        }
        self.sets.give(set);

        let covered = (0..k)
            .map(|r| (0..w as u64).filter(|&t| l.data_lba(r, a + t) < d).count() as u64)
            .sum::<u64>();
        (self.progress)(self.done.fetch_add(covered, Ordering::Relaxed) + covered);
        Ok(())
    }
}

/// Writes the four header copies, the checksum table and the table code's parity; `entry(g)`
/// gives table entry g.
pub(crate) fn write_metadata(
    image: &File,
    layout: &FecLayout,
    entry: &(dyn Fn(u64) -> u32 + Sync),
) -> Result<(), FecError> {
    let d = layout.protected_sectors();
    let mut sec = vec![0u8; SS];
    for off in layout.header_offsets() {
        sec.fill(0);
        write_meta_sector(layout, MetaKind::Header, off, 0, &mut sec);
        image
            .write_all_at(&sec, (d + off) * SS as u64)
            .map_err(io_err(format!(
                "writing FEC header copy at LBA {}",
                d + off
            )))?;
    }
    // Table sectors, then the table code stripe by stripe from the sectors just built.
    let (t, kt, st) = (
        layout.table_sectors(),
        layout.table_k(),
        layout.table_stripes(),
    );
    for jt in 0..st {
        let mut sectors = vec![vec![0u8; SS]; kt as usize];
        sectors.par_iter_mut().enumerate().for_each(|(r, sec)| {
            let i = r as u64 * st + jt;
            if i < t {
                table_sector(layout, i, entry, sec);
            }
        });
        let mut shards = vec![vec![0u8; SS]; kt as usize];
        for (r, sec) in sectors.iter().enumerate() {
            if (r as u64 * st + jt) < t {
                let lba = layout.table_shard_lba(r as u64, jt);
                image
                    .write_all_at(sec, lba * SS as u64)
                    .map_err(io_err(format!("writing checksum table at LBA {lba}")))?;
                table_shard_of(sec, &mut shards[r]);
            }
        }
        drop(sectors);
        let parity =
            reed_solomon_simd::encode(kt as usize, (TABLE_PARITY_FACTOR * kt) as usize, &shards)?;
        for (p, sec) in parity.into_iter().enumerate() {
            let lba = layout.table_shard_lba(kt + p as u64, jt);
            let mut sec = sec;
            let sealed = seal_table_parity(lba, &mut sec);
            debug_assert!(sealed, "table parity not zero where the table shards are");
            image
                .write_all_at(&sec, lba * SS as u64)
                .map_err(io_err(format!(
                    "writing checksum-table parity at LBA {lba}"
                )))?;
        }
    }
    Ok(())
}

/// Builds table sector i (< T): entries [479·i, 479·i + 479) ∩ [0, E), unused tail zero.
pub(crate) fn table_sector(
    layout: &FecLayout,
    i: u64,
    entry: &(dyn Fn(u64) -> u32 + Sync),
    sec: &mut [u8],
) {
    sec.fill(0);
    let e = layout.table_entries();
    for (slot, g) in
        (i * ENTRIES_PER_TABLE_SECTOR..((i + 1) * ENTRIES_PER_TABLE_SECTOR).min(e)).enumerate()
    {
        set_table_entry(sec, slot, entry(g));
    }
    write_meta_sector(layout, MetaKind::Table, layout.table_offset() + i, i, sec);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fec::layout::sector_crc;

    fn image(d: u64, layout: &FecLayout) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut rng = crate::util::xorshift::Xorshift64::new(0x9E37_79B9_7F4A_7C15);
        let data: Vec<u8> = (0..d as usize * SS).map(|_| rng.next_u64() as u8).collect();
        f.as_file().write_all_at(&data, 0).unwrap();
        f.as_file()
            .set_len(layout.region_end() * SS as u64)
            .unwrap();
        f
    }

    /// The region a straightforward encoder writes: every stripe gathered by its definition in
    /// FORMAT.md §3.1 (shard r of stripe j at `data_lba(r, j)`, zero past D),
    /// `reed_solomon_simd::encode`, parity p of stripe j at `parity_lba(p, j)`, then the table.
    fn reference(layout: &FecLayout, img: &File) -> Vec<u8> {
        let (d, s) = (layout.protected_sectors(), layout.stripes());
        let (k, m) = (
            layout.data_per_stripe() as u64,
            layout.parity_per_stripe() as usize,
        );
        let mut all = vec![0u8; layout.region_end() as usize * SS];
        img.read_exact_at(&mut all[..d as usize * SS], 0).unwrap();
        let mut crcs: Vec<u32> = (0..d)
            .map(|g| sector_crc(g, &all[g as usize * SS..][..SS]))
            .collect();
        crcs.resize(layout.table_entries() as usize, 0);
        for j in 0..s {
            let shards: Vec<Vec<u8>> = (0..k)
                .map(|r| {
                    let g = layout.data_lba(r, j);
                    if g < d {
                        all[g as usize * SS..][..SS].to_vec()
                    } else {
                        vec![0u8; SS]
                    }
                })
                .collect();
            let par = reed_solomon_simd::encode(k as usize, m, &shards).unwrap();
            for (p, shard) in par.iter().enumerate() {
                let lba = layout.parity_lba(p as u64, j);
                all[lba as usize * SS..][..SS].copy_from_slice(shard);
                crcs[(d + layout.parity_position(p as u64, j)) as usize] = sector_crc(lba, shard);
            }
        }
        let f = tempfile::tempfile().unwrap();
        f.set_len(all.len() as u64).unwrap();
        f.write_all_at(&all, 0).unwrap();
        write_metadata(&f, layout, &|g| crcs[g as usize]).unwrap();
        f.read_exact_at(&mut all, 0).unwrap();
        all
    }

    #[test]
    fn pipeline_matches_reference_for_any_budget() {
        for (d, stride, m) in [
            (1000u64, 7u64, 3u32),
            (5003, 40, 17),
            (300, 300, 2),
            (50, 1, 9),
            (70_000, 64, 5), // 3 table sectors; w > 1 runs that wrap past column S − 1
        ] {
            let layout = FecLayout::from_geometry(d, stride, m).unwrap();
            let img = image(d, &layout);
            let want = reference(&layout, img.as_file());
            let min = layout.table_entries() * 4
                + rayon::current_num_threads() as u64 * layout.encoder_bytes();
            assert!(matches!(
                encode(img.as_file(), &layout, min - 1, &|_| {}),
                Err(FecError::Memory { .. })
            ));
            for budget in [min, min * 3, 1 << 30] {
                let img = image(d, &layout);
                let last = std::sync::atomic::AtomicU64::new(0);
                encode(img.as_file(), &layout, budget, &|n| {
                    last.store(n, Ordering::Relaxed)
                })
                .unwrap();
                assert_eq!(last.load(Ordering::Relaxed), d);
                let mut got = vec![0u8; want.len()];
                img.as_file().read_exact_at(&mut got, 0).unwrap();
                assert!(got == want, "D={d} S={stride} m={m} budget={budget}");
            }
        }
    }

    #[test]
    fn kept_encoders_serve_images_of_other_geometries() {
        let shared = RegionEncoder::new(1 << 30);
        for (d, stride, m) in [
            (5003u64, 40u64, 17u32),
            (1000, 7, 3),
            (5003, 40, 17),
            (300, 300, 2),
        ] {
            let layout = FecLayout::from_geometry(d, stride, m).unwrap();
            let img = image(d, &layout);
            let want = reference(&layout, img.as_file());
            shared.encode(img.as_file(), &layout, &|_| {}).unwrap();
            let mut got = vec![0u8; want.len()];
            img.as_file().read_exact_at(&mut got, 0).unwrap();
            assert!(got == want, "D={d} S={stride} m={m}");
        }
    }
}
