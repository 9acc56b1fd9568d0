//! Throughput of each stage of the pipeline on its own, so a regression in one is visible:
//! scan, tar stream (read + SHA-256), chunk compression, chunk decode, filesystem write, and a
//! whole small create → extract through the library. Short by default (`cargo bench --bench stages`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use bd_archive::archive::scan::{scan_tree, ScanOptions};
use bd_archive::archive::tar_stream::TarStreamBuilder;
use bd_archive::format::chunk::{
    decode_chunk, encode_chunk, new_compressor, ChunkHeader, Compression, CHUNK_FRAME_OVERHEAD,
    CHUNK_SIZE,
};
use bd_archive::image::{write_filesystem, ImageFile, VolumeSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Half text-like, half random bytes: typical of a mixed archive.
fn mixed(len: usize) -> Vec<u8> {
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(0x9e37_79b9_7f4a_7c15);
    let words = b"the quick brown fox jumps over the lazy dog 0123456789 ";
    (0..len)
        .map(|i| {
            if (i / 65536) % 2 == 0 {
                words[i % words.len()]
            } else {
                rng.next_u64() as u8
            }
        })
        .collect()
}

fn tree(root: &Path, files: usize, size: usize) {
    let data = mixed(size);
    for i in 0..files {
        let d = root.join(format!("d{}/e{}", i % 20, i % 7));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), &data).unwrap();
    }
}

fn stages(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    tree(&small, 5000, 2048);
    let big = tmp.path().join("big");
    tree(&big, 32, 4 << 20);

    let mut g = c.benchmark_group("stages");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));

    g.throughput(Throughput::Elements(5000));
    g.bench_function("scan 5000 files", |b| {
        b.iter(|| scan_tree(&small, &ScanOptions::default(), &mut |_| {}, &mut |_| {}).unwrap())
    });

    let entries = scan_tree(&big, &ScanOptions::default(), &mut |_| {}, &mut |_| {}).unwrap();
    g.throughput(Throughput::Bytes(32 * (4 << 20)));
    g.bench_function("tar stream: read + SHA-256 (128 MiB)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut emit = |c: bd_archive::archive::tar_stream::StreamChunk| {
                n += c.data.len() as u64;
                Ok(())
            };
            let content_path = |rel: &[u8]| bd_archive::archive::scan::join_rel(&big, rel);
            TarStreamBuilder::new(1, &content_path, &mut emit, &mut |_| {}, &mut |_| {})
                .run(&entries)
                .unwrap();
            n
        })
    });

    let chunk = mixed(CHUNK_SIZE);
    let mut comp = new_compressor(3).unwrap();
    g.throughput(Throughput::Bytes(CHUNK_SIZE as u64));
    g.bench_function("compress one 1 MiB chunk (zstd -3, one core)", |b| {
        b.iter(|| {
            encode_chunk(
                &chunk,
                Compression::Zstd(3),
                Some(&mut comp),
                [0; 16],
                1,
                0,
                0,
            )
            .unwrap()
        })
    });
    let enc = encode_chunk(
        &chunk,
        Compression::Zstd(3),
        Some(&mut comp),
        [0; 16],
        1,
        0,
        0,
    )
    .unwrap();
    let h = ChunkHeader::decode(&enc.bytes).unwrap();
    g.bench_function("decode + check one 1 MiB chunk (one core)", |b| {
        let mut out = Vec::new();
        b.iter(|| decode_chunk(&h, &enc.bytes[CHUNK_FRAME_OVERHEAD..], &mut out).unwrap())
    });

    let img = tmp.path().join("fs.img");
    let total = 1 << 20; // a 2 GiB volume, only metadata written
    let files: Vec<ImageFile> = (0..100)
        .map(|i| ImageFile {
            path: format!("gen/part.{i:04}"),
            lba: 1024 + i * 10_000,
            size: 20_000_000,
            mtime: 0,
            executable: false,
        })
        .collect();
    let spec = VolumeSpec {
        volume_id: "BENCH_G01_0001".into(),
        publisher: "b".into(),
        application: "b".into(),
        created_unix: 0,
    };
    g.throughput(Throughput::Elements(100));
    g.bench_function("filesystem metadata for 100 files", |b| {
        b.iter(|| {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&img)
                .unwrap();
            f.set_len(total * 2048).unwrap();
            write_filesystem(&f, &spec, &files, total).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
