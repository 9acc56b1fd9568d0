//! The column pass of `create --parity-discs` (FORMAT.md §10): every data image is read once, in
//! windows of w columns, hashed, encoded with the column code, and the parity written — the
//! stages overlapped, each on its own thread, handing buffers round in bounded channels:
//!
//! ```text
//! reader i (one thread per data image, all at once):
//!     for each window [c, c+w): take a free buffer of disc i, read its sectors (zeros past D_i),
//!         SHA-256 what was read, hand the buffer to the encoder
//!     right after the window that reaches D_i: SHA-256 [D_i, N_i) — the image's hash is then
//!         complete, in LBA order, and no sector was read twice
//! encoder (the calling thread):
//!     for each window: take window k from every reader (column 0 zeroed: FORMAT.md §10.1),
//!         encode it into a free parity set, hand the set to the writer, give the buffers back
//! writer: write parity set k at column LBA + c of each parity image, give the set back
//! ```
//! Memory in flight, in windows of w sectors: two buffers per data disc (one being read while the
//! encoder holds the other), two parity sets of P, and the codec's work (≤ 2(n + P) shards, see
//! [`window_for_encode`]) — nothing else grows with the images. A stage that fails drops its
//! channel ends; the others see the hang-up, stop, and the first real error is returned.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::archive::disc_writer::WriteError;
use crate::archive::error::CreateError;
use crate::fec::column::{window_for_encode, ColumnCodec};
use crate::format::parity_manifest::DataDiscRecord;
use crate::sector::SECTOR_SIZE;
use crate::util::progress::Meter;

const SS: u64 = SECTOR_SIZE as u64;

/// Buffers per data disc and parity sets in flight: one being filled while the next stage works
/// on the other.
const IN_FLIGHT: usize = 2;

/// One data image as the column pass reads it.
pub(super) struct DataImage {
    pub path: PathBuf,
    pub file: File,
    /// Its manifest record; `sha256` is filled in by the pass.
    pub record: DataDiscRecord,
}

/// Where one parity image receives its column parity.
#[derive(Clone, Copy)]
pub(super) struct ParityTarget<'a> {
    /// Parity index p (1..=P): the code's recovery shard p − 1.
    pub index: u32,
    /// LBA of the image's column parity (its column 0).
    pub column_lba: u64,
    pub file: &'a File,
    /// The image's temporary path (for errors).
    pub path: &'a Path,
}

/// Busy time of each stage (seconds; shown with -v). They overlap: their sum exceeds the wall.
#[derive(Default)]
pub(super) struct PassTimes {
    /// The busiest reader: read + SHA-256 of one data image.
    pub read_hash: f64,
    pub encode: f64,
    pub write: f64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |err| WriteError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Windows [c, c + cols) of the pass over `columns` columns, w at a time.
fn windows(columns: u64, w: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..columns)
        .step_by(w.max(1) as usize)
        .map(move |c| (c, w.min(columns - c)))
}

/// A window's buffers on their way from the encoder to the writer.
struct ParitySet {
    /// First column of the window.
    column: u64,
    /// Bytes of each buffer that hold the window (cols · 2048, at most the buffer length).
    bytes: usize,
    /// Parity shard p − 1 of the window in `buffers[p − 1]`, for every p of the code.
    buffers: Vec<Vec<u8>>,
}

/// Runs the pass over `discs` (in disc order) for a code with `parity` parity discs, writing into
/// `targets` (the parity images not yet complete) and leaving each disc's SHA-256 in its record.
/// `budget` bounds the buffers (see the module doc).
pub(super) fn column_pass(
    discs: &mut [DataImage],
    parity: usize,
    columns: u64,
    targets: &[ParityTarget],
    budget: u64,
    meter: &dyn Meter,
) -> Result<PassTimes, CreateError> {
    let w = window_for_encode(discs.len(), parity, budget);
    column_pass_in_windows(discs, parity, columns, targets, w, meter)
}

fn column_pass_in_windows(
    discs: &mut [DataImage],
    parity: usize,
    columns: u64,
    targets: &[ParityTarget],
    w: u64,
    meter: &dyn Meter,
) -> Result<PassTimes, CreateError> {
    let n = discs.len();
    let err_path = targets
        .first()
        .map_or_else(|| discs[0].path.clone(), |t| t.path.into());
    let codec = ColumnCodec::new(n, parity).map_err(|e| WriteError::Fec(err_path.clone(), e))?;
    let buffer = (w * SS) as usize;
    let (set_free_tx, set_free_rx) = sync_channel::<Vec<Vec<u8>>>(IN_FLIGHT);
    let (set_full_tx, set_full_rx) = sync_channel::<ParitySet>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let _ = set_free_tx.send(vec![vec![0u8; buffer]; parity]);
    }
    let mut to_readers = Vec::new();
    let mut from_readers = Vec::new();
    let mut reader_ends = Vec::new();
    for _ in 0..n {
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            let _ = free_tx.send(vec![0u8; buffer]);
        }
        to_readers.push(free_tx);
        from_readers.push(full_rx);
        reader_ends.push((free_rx, full_tx));
    }
    let protected: Vec<u64> = discs.iter().map(|d| d.record.protected).collect();
    let mut times = PassTimes::default();
    let (encoded, reader_results, written) = std::thread::scope(|s| {
        let readers: Vec<_> = discs
            .iter_mut()
            .zip(reader_ends)
            .map(|(d, (free, full))| s.spawn(move || read_stage(d, columns, w, free, full)))
            .collect();
        let writer = s.spawn(move || write_stage(targets, set_full_rx, set_free_tx));
        let encoder = EncodeStage {
            codec,
            err_path,
            protected,
            from_readers,
            to_readers,
            sets: set_free_rx,
            to_writer: set_full_tx,
            meter,
        };
        let encoded = encoder.run(columns, w, &mut times.encode);
        let reader_results: Vec<_> = readers.into_iter().map(join).collect();
        (encoded, reader_results, join(writer))
    });
    // A stage's own error first: the others only saw it hang up.
    for r in reader_results {
        times.read_hash = times.read_hash.max(r?);
    }
    times.write = written?;
    let done = encoded?;
    if done != windows(columns, w).count() {
        return Err(CreateError::ParityInput(format!(
            "parity pass stopped after {done} window(s) without an error"
        )));
    }
    Ok(times)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Reader of one data image: window after window into its free buffers, hashed as read; its
/// tail [D, N) hashed right after the window that reaches D. Returns its busy seconds.
fn read_stage(
    d: &mut DataImage,
    columns: u64,
    w: u64,
    free: Receiver<Vec<u8>>,
    full: SyncSender<Vec<u8>>,
) -> Result<f64, WriteError> {
    let mut hasher = Sha256::new();
    let mut busy = 0f64;
    let mut spare: Option<Vec<u8>> = None;
    let mut tail_hashed = false;
    let (protected, total) = (d.record.protected, d.record.image_sectors);
    for (c, cols) in windows(columns, w) {
        let Some(mut buf) = spare.take().or_else(|| free.recv().ok()) else {
            return Ok(busy); // the encoder stopped
        };
        let t = Instant::now();
        read_window(d, &mut buf[..(cols * SS) as usize], c, &mut hasher)?;
        busy += t.elapsed().as_secs_f64();
        if full.send(buf).is_err() {
            return Ok(busy);
        }
        if !tail_hashed && c + cols >= protected {
            let Ok(mut buf) = free.recv() else {
                return Ok(busy);
            };
            let t = Instant::now();
            hash_range(d, protected, total, &mut buf, &mut hasher)?;
            busy += t.elapsed().as_secs_f64();
            tail_hashed = true;
            spare = Some(buf);
        }
    }
    if !tail_hashed {
        // No window reached D (no columns at all): the whole image is the tail.
        let mut buf = vec![0u8; 64 * SECTOR_SIZE];
        hash_range(d, protected.min(columns), total, &mut buf, &mut hasher)?;
    }
    d.record.sha256 = hasher.finalize().into();
    Ok(busy)
}

/// Sectors [c, c + len) of a data disc's protected region into `buf` (zeros past D); what was
/// read goes into `hasher`.
fn read_window(
    d: &DataImage,
    buf: &mut [u8],
    c: u64,
    hasher: &mut Sha256,
) -> Result<(), WriteError> {
    let have = d
        .record
        .protected
        .saturating_sub(c)
        .min(buf.len() as u64 / SS);
    let (data, rest) = buf.split_at_mut((have * SS) as usize);
    d.file
        .read_exact_at(data, c * SS)
        .map_err(io_err(&d.path))?;
    rest.fill(0);
    hasher.update(&*data);
    Ok(())
}

/// Sectors [from, to) of a data image into `hasher`, read through `buf`.
fn hash_range(
    d: &DataImage,
    from: u64,
    to: u64,
    buf: &mut [u8],
    hasher: &mut Sha256,
) -> Result<(), WriteError> {
    let (mut pos, end) = (from * SS, to * SS);
    while pos < end {
        let len = ((end - pos) as usize).min(buf.len());
        d.file
            .read_exact_at(&mut buf[..len], pos)
            .map_err(io_err(&d.path))?;
        hasher.update(&buf[..len]);
        pos += len as u64;
    }
    Ok(())
}

/// The encoder's ends of the channels.
struct EncodeStage<'m> {
    codec: ColumnCodec,
    /// Named in a column-code error.
    err_path: PathBuf,
    /// D of each data disc (for the progress meter).
    protected: Vec<u64>,
    /// Filled window buffers, one channel per data disc.
    from_readers: Vec<Receiver<Vec<u8>>>,
    /// Buffers given back, one channel per data disc.
    to_readers: Vec<SyncSender<Vec<u8>>>,
    /// Free parity sets.
    sets: Receiver<Vec<Vec<u8>>>,
    to_writer: SyncSender<ParitySet>,
    meter: &'m dyn Meter,
}

impl EncodeStage<'_> {
    /// Encodes window after window; returns how many were handed to the writer (fewer only
    /// when another stage hung up, whose error is the one to report). `busy` gets its seconds.
    fn run(mut self, columns: u64, w: u64, busy: &mut f64) -> Result<usize, CreateError> {
        for (k, (c, cols)) in windows(columns, w).enumerate() {
            if crate::util::interrupt::requested() {
                return Err(crate::util::interrupt::Interrupted(
                    "; complete images are kept: re-run the same command with --resume".into(),
                )
                .into());
            }
            let bytes = (cols * SS) as usize;
            let mut bufs = Vec::with_capacity(self.from_readers.len());
            for rx in &self.from_readers {
                let Ok(b) = rx.recv() else { return Ok(k) };
                bufs.push(b);
            }
            let Ok(mut set) = self.sets.recv() else {
                return Ok(k);
            };
            let t = Instant::now();
            if c == 0 {
                // Column 0 (the disc headers) is not coded (FORMAT.md §10.1): the manifest holds
                // each header, and a code over records ending in their own CRC32C could yield a
                // parity sector whose checksum equals a zero sector's, so a lost copy would pass
                // as intact. The readers hashed the headers before this.
                for b in bufs.iter_mut() {
                    b[..SECTOR_SIZE].fill(0);
                }
            }
            let originals: Vec<&[u8]> = bufs.iter().map(|b| &b[..bytes]).collect();
            let mut outs: Vec<&mut [u8]> = set.iter_mut().map(|b| &mut b[..bytes]).collect();
            self.codec
                .encode(&originals, &mut outs)
                .map_err(|e| WriteError::Fec(self.err_path.clone(), e))?;
            *busy += t.elapsed().as_secs_f64();
            let set = ParitySet {
                column: c,
                bytes,
                buffers: set,
            };
            if self.to_writer.send(set).is_err() {
                return Ok(k);
            }
            for (tx, b) in self.to_readers.iter().zip(bufs) {
                let _ = tx.send(b); // a reader that has finished no longer listens
            }
            let read = self.protected.iter();
            self.meter.inc(
                read.map(|d| (*d).min(c + cols).saturating_sub(c) * SS)
                    .sum(),
            );
        }
        Ok(windows(columns, w).count())
    }
}

/// Writer: each parity set into the parity images it is for, then back to the encoder. Returns
/// its busy seconds.
fn write_stage(
    targets: &[ParityTarget],
    sets: Receiver<ParitySet>,
    free: SyncSender<Vec<Vec<u8>>>,
) -> Result<f64, WriteError> {
    let mut busy = 0f64;
    for set in sets {
        let t = Instant::now();
        for target in targets {
            let shard = &set.buffers[target.index as usize - 1][..set.bytes];
            target
                .file
                .write_all_at(shard, (target.column_lba + set.column) * SS)
                .map_err(io_err(target.path))?;
        }
        busy += t.elapsed().as_secs_f64();
        let _ = free.send(set.buffers);
    }
    Ok(busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::progress::{Progress, Silent};
    use crate::util::xorshift::noise;

    /// Data images of `sizes` (D, N) sectors of noise, as the pass opens them.
    fn images(dir: &Path, sizes: &[(u64, u64)]) -> Vec<DataImage> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &(d, n))| {
                let path = dir.join(format!("disc{i}.iso"));
                std::fs::write(&path, noise((n * SS) as usize, 40 + i as u64)).unwrap();
                DataImage {
                    file: File::open(&path).unwrap(),
                    path,
                    record: DataDiscRecord {
                        disc: i as u32 + 1,
                        image_sectors: n,
                        protected: d,
                        fec_sectors: 1,
                        sha256: [0; 32],
                        fec_header: Vec::new(),
                        sector_n2: Vec::new(),
                        sector_n1: Vec::new(),
                    },
                }
            })
            .collect()
    }

    /// The column parity by definition: one library call over whole columns [0, L), each disc's
    /// protected region padded with zeros, column 0 zeroed.
    fn reference(discs: &[DataImage], parity: usize, columns: u64) -> Vec<Vec<u8>> {
        let shards: Vec<Vec<u8>> = discs
            .iter()
            .map(|d| {
                let mut s = std::fs::read(&d.path).unwrap();
                s.truncate((d.record.protected * SS) as usize);
                s.resize((columns * SS) as usize, 0);
                s[..SECTOR_SIZE].fill(0);
                s
            })
            .collect();
        reed_solomon_simd::encode(discs.len(), parity, &shards).unwrap()
    }

    /// Any window size gives the parity of the definition and each image's whole SHA-256,
    /// also when only some parity images are written (a resumed run).
    #[test]
    fn any_window_gives_the_same_parity_and_hashes() {
        let t = tempfile::tempdir().unwrap();
        let sizes = [(37, 45), (50, 61), (12, 15), (50, 52)];
        for parity in [1, 2] {
            window_sizes_agree(t.path(), &sizes, parity);
        }
    }

    fn window_sizes_agree(dir: &Path, sizes: &[(u64, u64)], parity: usize) {
        let (columns, lba) = (50u64, 3u64);
        let expected = reference(&images(dir, sizes), parity, columns);
        for w in [1, 3, 7, 49, 50, 2048] {
            let mut discs = images(dir, sizes);
            let outs: Vec<(PathBuf, File)> = (1..=parity)
                .map(|p| {
                    let path = dir.join(format!("w{w}-parity{p}-of-{parity}"));
                    (path.clone(), File::create(&path).unwrap())
                })
                .collect();
            let targets: Vec<ParityTarget> = outs
                .iter()
                .enumerate()
                .filter(|(p, _)| w != 7 || *p + 1 == parity) // w = 7: the last parity image only
                .map(|(p, (path, file))| ParityTarget {
                    index: p as u32 + 1,
                    column_lba: lba,
                    file,
                    path,
                })
                .collect();
            let meter = Silent.meter(None, "");
            let pass = column_pass_in_windows(&mut discs, parity, columns, &targets, w, &*meter);
            pass.unwrap();
            for target in &targets {
                let got = std::fs::read(target.path).unwrap();
                let want = &expected[target.index as usize - 1];
                assert_eq!(
                    &got[(lba * SS) as usize..],
                    &want[..],
                    "w {w}, parity {}",
                    target.index
                );
            }
            for d in &discs {
                let whole: [u8; 32] = Sha256::digest(std::fs::read(&d.path).unwrap()).into();
                assert_eq!(d.record.sha256, whole, "w {w}, disc {}", d.record.disc);
            }
        }
    }

    /// A data image shorter than its header says: the reader's I/O error is returned, naming
    /// the image — not a hang, not a panic, not a "stopped" without cause.
    #[test]
    fn a_reader_error_stops_the_pass_with_that_error() {
        let t = tempfile::tempdir().unwrap();
        let mut discs = images(t.path(), &[(40, 45), (40, 45), (40, 45)]);
        let cut = &discs[1].path;
        std::fs::OpenOptions::new()
            .write(true)
            .open(cut)
            .unwrap()
            .set_len(20 * SS)
            .unwrap();
        let path = t.path().join("parity");
        let file = File::create(&path).unwrap();
        let target = ParityTarget {
            index: 1,
            column_lba: 0,
            file: &file,
            path: &path,
        };
        let meter = Silent.meter(None, "");
        for w in [1, 8] {
            let err = column_pass_in_windows(&mut discs, 1, 40, &[target], w, &*meter)
                .err()
                .expect("the pass fails");
            assert!(err.to_string().contains("disc1.iso"), "{err}");
        }
    }
}
