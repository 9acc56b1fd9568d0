//! Writing the FEC region: passes over the stripes that fit the memory budget, parallel reads, parallel
//! encoding, then the checksum tables and header copies.

use super::layout::{
    sector_crc, set_table_entry, write_meta_sector, FecLayout, MetaKind, ENTRIES_PER_TABLE_SECTOR,
};
use super::{io_err, FecError};
use crate::sector::SECTOR_SIZE;
use rayon::prelude::*;
use reed_solomon_simd::ReedSolomonEncoder;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Computes the FEC region for the protected sectors [0, D) already written to `image` and writes it
/// at LBA D (extending the file to D + F sectors).
///
/// Memory stays under `memory_budget` (CRC table of 4 bytes per sector + one codec per thread + the
/// stripes of one pass); `progress` receives the number of protected sectors processed so far.
pub fn encode(
    image: &File,
    layout: &FecLayout,
    memory_budget: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), FecError> {
    let d = layout.protected_sectors();
    let s = layout.stripes();
    let k = layout.data_per_stripe() as usize;
    let m = layout.parity_per_stripe() as usize;
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
    let table_bytes = layout.table_entries() * 4;
    let w_max = stripes_per_pass(layout, memory_budget, table_bytes, layout.stripe_bytes())?;
    let mut crcs = vec![0u32; layout.table_entries() as usize];
    let mut data = vec![0u8; k * w_max as usize * SS];
    let mut parity = vec![0u8; m * w_max as usize * SS];
    let encoders: Pool<ReedSolomonEncoder> = Pool::new();
    let done = AtomicU64::new(0);
    let parity_base = d + layout.parity_offset();

    let mut a = 0u64;
    while a < s {
        let b = (a + w_max).min(s);
        let w = (b - a) as usize;
        let data = &mut data[..k * w * SS];
        let parity = &mut parity[..m * w * SS];

        // 1. Read row r = sectors [r·S + a, r·S + b) ∩ [0, D) in one pread per row; CRC as we go.
        let row_crcs: Vec<(u64, Vec<u32>)> = data
            .par_chunks_mut(w * SS)
            .enumerate()
            .map(|(r, row)| -> Result<(u64, Vec<u32>), FecError> {
                let start = r as u64 * s + a;
                let end = (r as u64 * s + b).min(d);
                let n = end.saturating_sub(start) as usize;
                image
                    .read_exact_at(&mut row[..n * SS], start * SS as u64)
                    .map_err(io_err(format!(
                        "reading sectors {start}..{end} of the image"
                    )))?;
                row[n * SS..].fill(0); // virtual zero sectors past D
                let c = row[..n * SS]
                    .chunks_exact(SS)
                    .enumerate()
                    .map(|(i, sec)| sector_crc(start + i as u64, sec))
                    .collect();
                Ok((start, c))
            })
            .collect::<Result<_, _>>()?;
        for (start, c) in row_crcs {
            crcs[start as usize..start as usize + c.len()].copy_from_slice(&c);
        }

        // 2. Encode the w stripes in parallel; stripe t's parity goes to parity[t·m .. (t+1)·m].
        let data_ro: &[u8] = data;
        let par_crcs: Vec<Vec<u32>> = parity
            .par_chunks_mut(m * SS)
            .enumerate()
            .map(|(t, out)| -> Result<Vec<u32>, FecError> {
                let mut enc = match encoders.take() {
                    Some(mut e) => {
                        e.reset(k, m, SS)?;
                        e
                    }
                    None => ReedSolomonEncoder::new(k, m, SS)?,
                };
                for r in 0..k {
                    enc.add_original_shard(&data_ro[(r * w + t) * SS..][..SS])?;
                }
                let j = a + t as u64;
                let mut c = Vec::with_capacity(m);
                {
                    let res = enc.encode()?;
                    for (p, shard) in res.recovery_iter().enumerate() {
                        out[p * SS..(p + 1) * SS].copy_from_slice(shard);
                        c.push(sector_crc(parity_base + p as u64 * s + j, shard));
                    }
                }
                encoders.give(enc);
                Ok(c)
            })
            .collect::<Result<_, _>>()?;
        for (t, c) in par_crcs.into_iter().enumerate() {
            for (p, crc) in c.into_iter().enumerate() {
                crcs[(d + p as u64 * s + a + t as u64) as usize] = crc;
            }
        }

        // 3. Write parity row p = region parity positions [p·S + a, p·S + b) as one run.
        let parity_ro: &[u8] = parity;
        (0..m).into_par_iter().try_for_each_init(
            || vec![0u8; w * SS],
            |row, p| -> Result<(), FecError> {
                for t in 0..w {
                    row[t * SS..(t + 1) * SS].copy_from_slice(&parity_ro[(t * m + p) * SS..][..SS]);
                }
                let lba = parity_base + p as u64 * s + a;
                image
                    .write_all_at(row, lba * SS as u64)
                    .map_err(io_err(format!("writing parity sectors at LBA {lba}")))
            },
        )?;
        let covered: u64 = (0..k as u64)
            .map(|r| (r * s + b).min(d).saturating_sub(r * s + a))
            .sum();
        progress(done.fetch_add(covered, Ordering::Relaxed) + covered);
        a = b;
    }

    write_metadata(image, layout, &|g| crcs[g as usize])
}

/// Writes the four header copies and both checksum-table copies; `entry(g)` gives table entry g.
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
    const CHUNK: u64 = 512;
    let t = layout.table_sectors();
    let e = layout.table_entries();
    let mut buf = vec![0u8; CHUNK as usize * SS];
    let mut i0 = 0;
    while i0 < t {
        let n = CHUNK.min(t - i0);
        let buf = &mut buf[..n as usize * SS];
        buf.par_chunks_mut(SS).enumerate().for_each(|(x, sec)| {
            let i = i0 + x as u64;
            sec.fill(0);
            for (slot, g) in (i * ENTRIES_PER_TABLE_SECTOR
                ..((i + 1) * ENTRIES_PER_TABLE_SECTOR).min(e))
                .enumerate()
            {
                set_table_entry(sec, slot, entry(g));
            }
        });
        for (kind, base) in [
            (MetaKind::TableA, layout.table_a_offset()),
            (MetaKind::TableB, layout.table_b_offset()),
        ] {
            for (x, sec) in buf.chunks_mut(SS).enumerate() {
                let i = i0 + x as u64;
                write_meta_sector(layout, kind, base + i, i, sec);
            }
            let lba = d + base + i0;
            image
                .write_all_at(buf, lba * SS as u64)
                .map_err(io_err(format!("writing checksum table at LBA {lba}")))?;
        }
        i0 += n;
    }
    Ok(())
}
