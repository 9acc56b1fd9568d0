//! The create pipeline proper: the source reader (tar stream), the compress workers and the
//! disc writer, all overlapping (see the module doc of [`crate::archive`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use crate::archive::error::CreateError;

use crate::archive::disc_writer::{DiscEvent, DiscSetConfig, DiscSetWriter};
use crate::archive::scan::SourceEntry;
use crate::archive::tar_stream::{SourceProblem, StreamChunk, StreamStop, TarStreamBuilder};
use crate::format::catalog::{Catalog, DiscIndex, Entry};
use crate::format::chunk::{encode_chunk, new_compressor, Compression, EncodedChunk};
use crate::format::records::{self, RecordIdentity};
use crate::util::capacity::human_bytes;
use crate::util::progress::{Meter, Progress};

/// Output of the pipeline: the images and the source problems met.
pub(crate) type Built = (Vec<PathBuf>, Vec<SourceProblem>);

/// One chunk after compression, with the entry bookkeeping that travels with it.
struct Compressed {
    seq: u64,
    /// The encoded chunk, or for a chunk a resumed run already holds: (length, content CRC).
    chunk: Result<EncodedChunk, (usize, u32)>,
    completed: Vec<Entry>,
    open: Option<Entry>,
}

/// Runs reader → compressors → disc writer, all overlapping.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_images(
    cfg: DiscSetConfig,
    (catalog_path, catalog_id): (&Path, RecordIdentity),
    source_root: &Path,
    entries: Vec<SourceEntry>,
    reuse: Vec<Entry>,
    compression: Compression,
    total: u64,
    done: Vec<(DiscIndex, PathBuf)>,
    progress: &dyn Progress,
) -> Result<Built, CreateError> {
    let chain_id = cfg.chain.chain_id;
    let generation = cfg.chain.generation;
    let mut writer = DiscSetWriter::new(cfg)?;
    writer.resume_with(done)?;
    writer.reserve_entries(entries.len() + reuse.len());
    let replay_below = writer.resumed_chunks();
    let pb = progress.meter(Some(total), "archiving");
    writer.on_event = disc_events(Arc::clone(&pb));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (raw_tx, raw_rx) = sync_channel::<StreamChunk>(threads * 2);
    let (res_tx, res_rx) = sync_channel::<Result<Compressed, CreateError>>(threads * 2);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let mut problems = Vec::new();
    let outcome = std::thread::scope(|s| -> Result<Vec<PathBuf>, CreateError> {
        let pb_reader = Arc::clone(&pb);
        let problems_ref = &mut problems;
        let reader = s.spawn(move || {
            let mut emit = |c: StreamChunk| {
                if crate::util::interrupt::requested() {
                    return Err(StreamStop::Cancelled);
                }
                raw_tx.send(c).map_err(|_| StreamStop::Cancelled)
            };
            let mut on_problem = |p: SourceProblem| problems_ref.push(p);
            let mut on_bytes = |n: u64| pb_reader.inc(n);
            let content_path = |rel: &[u8]| crate::archive::scan::join_rel(source_root, rel);
            TarStreamBuilder::new(
                generation,
                &content_path,
                &mut emit,
                &mut on_problem,
                &mut on_bytes,
            )
            .run_owned(entries)
        });
        // Moving both receivers into this closure means an early return (an error while
        // writing) drops them: workers then stop, which drops the raw receiver, which stops
        // the reader. No thread is left blocked on a full channel.
        let (raw_rx, res_rx) = (raw_rx, res_rx);
        for _ in 0..threads {
            let rx = Arc::clone(&raw_rx);
            let tx = res_tx.clone();
            s.spawn(move || {
                compress_worker(rx, tx, compression, chain_id, generation, replay_below)
            });
        }
        drop(raw_rx);
        drop(res_tx);
        write_in_order(&res_rx, &mut writer)?;
        let tar_len = reader
            .join()
            .map_err(|_| CreateError::ReaderPanicked)?
            .map_err(|_| {
                crate::util::interrupt::Interrupted(
                    "; complete images are kept: re-run the same command with --resume".into(),
                )
            })?;
        let images = writer.finish(tar_len, reuse, &mut |c| {
            save_catalog(catalog_path, catalog_id, c)
        })?;
        Ok(images)
    });
    pb.finish();
    let images = outcome?;
    Ok((images, problems))
}

/// The disc writer's events shown on the progress meter.
fn disc_events(pb: Arc<dyn Meter>) -> Box<dyn FnMut(DiscEvent) + Send> {
    Box::new(move |ev| match ev {
        DiscEvent::DiscStarted(n) => pb.set_message(format!("disc {n}")),
        DiscEvent::FecStarted(n, _) => pb.set_message(format!("disc {n}: parity")),
        DiscEvent::DiscCompleted(n, p, sectors) => {
            pb.println(format!(
                "disc {n} complete: {} ({})",
                p.display(),
                human_bytes(sectors * 2048)
            ));
        }
    })
}

/// Hands the compressed chunks to the disc writer in stream order (the workers finish them in
/// any order); ends when every worker has hung up.
fn write_in_order(
    res_rx: &Receiver<Result<Compressed, CreateError>>,
    writer: &mut DiscSetWriter,
) -> Result<(), CreateError> {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for r in res_rx.iter() {
        let c = r?;
        pending.insert(c.seq, c);
        while let Some(c) = pending.remove(&next) {
            match c.chunk {
                Ok(chunk) => writer.push_chunk(chunk, c.completed, c.open)?,
                Err((len, crc)) => writer.replay_chunk(c.seq, len, crc, c.completed, c.open)?,
            }
            next += 1;
        }
    }
    Ok(())
}

fn compress_worker(
    rx: Arc<Mutex<Receiver<StreamChunk>>>,
    tx: std::sync::mpsc::SyncSender<Result<Compressed, CreateError>>,
    compression: Compression,
    chain_id: [u8; 16],
    generation: u32,
    replay_below: u64,
) {
    let mut compressor = match compression {
        Compression::Zstd(l) => match new_compressor(l) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = tx.send(Err(CreateError::Compress(format!("zstd: {e}"))));
                return;
            }
        },
        Compression::None => None,
    };
    loop {
        let next = rx.lock().map(|r| r.recv());
        let Ok(Ok(c)) = next else { return };
        if c.seq < replay_below {
            let r = Compressed {
                seq: c.seq,
                chunk: Err((c.data.len(), crc32c::crc32c(&c.data))),
                completed: c.completed,
                open: c.open,
            };
            if tx.send(Ok(r)).is_err() {
                return;
            }
            continue;
        }
        let r = encode_chunk(
            &c.data,
            compression,
            compressor.as_mut(),
            chain_id,
            generation,
            c.seq,
            c.tar_offset,
        )
        .map(|chunk| Compressed {
            seq: c.seq,
            chunk: Ok(chunk),
            completed: c.completed,
            open: c.open,
        })
        .map_err(|e| CreateError::Compress(format!("compressing chunk {}: {e}", c.seq)));
        if tx.send(r).is_err() {
            return;
        }
    }
}

/// Writes `catalog` as a record file at `path` and syncs it, compressing straight into the file
/// (the encoded catalog of a large tree is never held in memory).
fn save_catalog(path: &Path, id: RecordIdentity, catalog: &Catalog) -> std::io::Result<()> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let f = std::fs::File::create(path).map_err(named)?;
    records::write_record_at(&f, 0, records::CATALOG_MAGIC, id, catalog)
        .and_then(|_| f.sync_all())
        .map_err(named)
}

pub(crate) fn remove_partials(images_dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(images_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
