//! One sweep of the column code (FORMAT.md §10) for the set rebuild ([`super::parity`]): every
//! run of columns where 1..=P members of the set are unknown is decoded window by window, the
//! stages overlapped, each on its own thread, handing two buffer sets round in bounded channels:
//!
//! ```text
//! reader:  for each window [c, c+w) of each run: take a free set, read the window of every
//!          member known there (in parallel); unknown members are not read — the decoder fills them
//! decoder (the calling thread): rebuild the window's unknown shards in place
//! writer:  write the rebuilt shards into the members' working copies — and, for a data disc
//!          being rebuilt whole, into the running SHA-256 of its image, in LBA order, so that the
//!          final check need not read that disc's protected region back — and give the set back
//! ```
//! Memory: two sets of n + P windows of w sectors and the codec's work
//! ([`window_for_decode`]). A stage that fails drops its channel ends; the others see the hang-up
//! and stop, and the first real error is returned.

use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::parity::{io, subtract, Member, ParityError, Ranges};
use crate::fec::column::{window_for_decode, ColumnCodec};
use crate::sector::SECTOR_SIZE;

const SS: u64 = SECTOR_SIZE as u64;

/// Buffer sets in flight: one being read or written while the decoder works on the other.
const IN_FLIGHT: usize = 2;

/// The SHA-256 of sectors [0, `upto`) of a data disc's working copy, taken as they were written,
/// in LBA order (a missing disc rebuilt by the column code in one sweep). Valid as long as
/// nothing below `upto` is written again: the rebuild writes each column once it is known, and
/// never again.
pub(super) struct WrittenPrefix {
    pub hasher: Sha256,
    /// Sectors hashed; the next write must start here to extend the prefix.
    pub upto: u64,
}

/// A run of columns [from, to) whose unknown members (`lost[i]`, 1..=P of them) are the same.
struct Run {
    from: u64,
    to: u64,
    lost: Vec<bool>,
}

/// A window of a run and the set holding it: `bufs[i]` is member i's shard (`cols` sectors).
struct Window {
    run: usize,
    c: u64,
    cols: u64,
    bufs: Vec<Vec<u8>>,
}

/// Decodes every run of columns with 1..=P unknown members and marks them known.
pub(super) fn column_step(
    members: &mut [Member],
    n: usize,
    codec: &mut ColumnCodec,
    memory: u64,
) -> Result<(), ParityError> {
    let parity = members.len() - n;
    let runs = decodable_runs(members, parity);
    if runs.is_empty() {
        return Ok(());
    }
    sweep(members, &runs, codec, window_for_decode(n, parity, memory))?;
    for (i, m) in members.iter_mut().enumerate() {
        let solved: Ranges = runs
            .iter()
            .filter(|r| r.lost[i])
            .map(|r| (r.from, r.to))
            .collect();
        m.unknown = subtract(&m.unknown, &solved);
    }
    Ok(())
}

/// The runs between the ends of all unknown ranges that the code can decode.
fn decodable_runs(members: &[Member], parity: usize) -> Vec<Run> {
    let mut cuts: Vec<u64> = members
        .iter()
        .flat_map(|m| m.unknown.iter().flat_map(|&(a, b)| [a, b]))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|seg| Run {
            from: seg[0],
            to: seg[1],
            lost: members
                .iter()
                .map(|m| m.unknown.iter().any(|&(x, y)| x <= seg[0] && seg[0] < y))
                .collect(),
        })
        .filter(|r| (1..=parity).contains(&r.lost.iter().filter(|l| **l).count()))
        .collect()
}

fn sweep(
    members: &mut [Member],
    runs: &[Run],
    codec: &mut ColumnCodec,
    w: u64,
) -> Result<(), ParityError> {
    let mut prefixes: Vec<Option<WrittenPrefix>> =
        members.iter_mut().map(|m| m.written.take()).collect();
    let shared: &[Member] = members;
    let (free_tx, free_rx) = sync_channel::<Vec<Vec<u8>>>(IN_FLIGHT);
    let (full_tx, full_rx) = sync_channel::<Window>(IN_FLIGHT);
    let (done_tx, done_rx) = sync_channel::<Window>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let _ = free_tx.send(vec![vec![0u8; (w * SS) as usize]; shared.len()]);
    }
    let prefixes_ref = &mut prefixes;
    let (decoded, read, written) = std::thread::scope(|s| {
        let reader = s.spawn(move || read_stage(shared, runs, w, free_rx, full_tx));
        let writer = s.spawn(move || write_stage(shared, runs, prefixes_ref, done_rx, free_tx));
        let decoded = decode_stage(shared, runs, codec, full_rx, done_tx);
        (decoded, join(reader), join(writer))
    });
    for (m, p) in members.iter_mut().zip(prefixes) {
        m.written = p;
    }
    // A stage's own error first: the others only saw it hang up.
    read?;
    written?;
    let done = decoded?;
    let expected: u64 = runs.iter().map(|r| (r.to - r.from).div_ceil(w)).sum();
    if done != expected {
        return Err(ParityError::Io(
            members[0].path.clone(),
            std::io::Error::other(format!(
                "column sweep stopped after {done} of {expected} window(s) without an error"
            )),
        ));
    }
    Ok(())
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn read_stage(
    members: &[Member],
    runs: &[Run],
    w: u64,
    free: Receiver<Vec<Vec<u8>>>,
    full: SyncSender<Window>,
) -> Result<(), ParityError> {
    for (r, run) in runs.iter().enumerate() {
        for c in (run.from..run.to).step_by(w as usize) {
            super::parity::stop_if_interrupted()?; // Ctrl+C: the sweep ends with this error
            let cols = w.min(run.to - c);
            let bytes = (cols * SS) as usize;
            let Ok(mut bufs) = free.recv() else {
                return Ok(()); // the decoder stopped
            };
            bufs.par_iter_mut()
                .zip(members.par_iter())
                .zip(run.lost.par_iter())
                .filter(|(_, lost)| !**lost)
                .try_for_each(|((buf, m), _)| read_columns(m, c, &mut buf[..bytes]))?;
            let window = Window {
                run: r,
                c,
                cols,
                bufs,
            };
            if full.send(window).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Decodes window after window; returns how many it handed on (fewer only when another stage
/// hung up, whose error is the one to report).
fn decode_stage(
    members: &[Member],
    runs: &[Run],
    codec: &mut ColumnCodec,
    full: Receiver<Window>,
    done: SyncSender<Window>,
) -> Result<u64, ParityError> {
    let mut count = 0;
    for mut window in full {
        let bytes = (window.cols * SS) as usize;
        let known: Vec<bool> = runs[window.run].lost.iter().map(|l| !l).collect();
        let mut shards: Vec<&mut [u8]> = window.bufs.iter_mut().map(|b| &mut b[..bytes]).collect();
        codec
            .decode(&mut shards, &known)
            .map_err(|e| ParityError::Fec(members[0].path.clone(), e))?;
        if done.send(window).is_err() {
            break;
        }
        count += 1;
    }
    Ok(count)
}

fn write_stage(
    members: &[Member],
    runs: &[Run],
    prefixes: &mut [Option<WrittenPrefix>],
    done: Receiver<Window>,
    free: SyncSender<Vec<Vec<u8>>>,
) -> Result<(), ParityError> {
    for window in done {
        let bytes = (window.cols * SS) as usize;
        let lost = &runs[window.run].lost;
        for (i, m) in members.iter().enumerate().filter(|(i, _)| lost[*i]) {
            let written = write_columns(m, window.c, &window.bufs[i][..bytes])?;
            let prefix = &mut prefixes[i];
            match prefix {
                Some(p) if p.upto == window.c => {
                    p.hasher.update(written);
                    p.upto += written.len() as u64 / SS;
                }
                // Written out of order: the final check reads the image back instead.
                _ => *prefix = None,
            }
        }
        let _ = free.send(window.bufs);
    }
    Ok(())
}

/// Columns [c, c + len) of a member into `buf`: zeros past its columns.
pub(super) fn read_columns(m: &Member, c: u64, buf: &mut [u8]) -> Result<(), ParityError> {
    let have = m.columns.saturating_sub(c).min(buf.len() as u64 / SS);
    let (data, rest) = buf.split_at_mut((have * SS) as usize);
    match &m.file {
        Some(f) if have > 0 => f
            .read_exact_at(data, (m.offset + c) * SS)
            .map_err(io(&m.path))?,
        _ => data.fill(0),
    }
    rest.fill(0);
    Ok(())
}

/// The part of `buf` that lies within the member's columns, written at column c; returns it.
pub(super) fn write_columns<'b>(
    m: &Member,
    c: u64,
    buf: &'b [u8],
) -> Result<&'b [u8], ParityError> {
    let have = m.columns.saturating_sub(c).min(buf.len() as u64 / SS);
    let part = &buf[..(have * SS) as usize];
    if let (Some(f), true) = (&m.file, have > 0) {
        f.write_all_at(part, (m.offset + c) * SS)
            .map_err(io(&m.path))?;
    }
    Ok(part)
}
