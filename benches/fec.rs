//! FEC throughput: our `encode` (reads the image, CRCs, encodes, writes parity and tables) next to
//! plain `reed_solomon_simd::encode` on the same stripes held in memory, and our `repair` next to plain
//! `reed_solomon_simd::decode`, at 5 / 10 / 20 % redundancy.
//!
//! `BENCH_FEC_MB` sets the image size (default 256). Loss for decode = one burst of 90 % of the
//! per-stripe budget, so every stripe decodes ≈ 0.9·m erasures.

use bd_archive::fec;
use bd_archive::sector::{FileSectorSource, SECTOR_SIZE};
use criterion::{criterion_group, Criterion, Throughput};
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const SS: usize = SECTOR_SIZE;
const BUDGET: u64 = 1 << 30;

fn protected_sectors() -> u64 {
    let mb: u64 = std::env::var("BENCH_FEC_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    mb * (1 << 20) / SS as u64 + 7 // not a multiple of S
}

fn random_data(sectors: u64) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut v = vec![0u8; sectors as usize * SS];
    for c in v.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    v
}

struct Setup {
    layout: fec::FecLayout,
    data: Vec<u8>,
    file: tempfile::NamedTempFile,
}

fn setup(pct: u32, data: &[u8]) -> Setup {
    let d = (data.len() / SS) as u64;
    let layout = fec::plan(d, pct).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(data).unwrap();
    file.as_file()
        .set_len(layout.region_end() * SS as u64)
        .unwrap();
    Setup {
        layout,
        data: data.to_vec(),
        file,
    }
}

fn our_encode(s: &Setup) {
    fec::encode(s.file.as_file(), &s.layout, BUDGET, &|_| {}).unwrap();
}

/// The same k/m/S geometry encoded straight from memory (stripe = k consecutive sectors here; the
/// codec does not care which sectors form a stripe).
fn plain_encode(s: &Setup) {
    let k = s.layout.data_per_stripe() as usize;
    let m = s.layout.parity_per_stripe() as usize;
    let zero = vec![0u8; SS];
    (0..s.layout.stripes() as usize)
        .into_par_iter()
        .for_each(|j| {
            let shards = (0..k).map(|r| {
                s.data
                    .get((j * k + r) * SS..(j * k + r + 1) * SS)
                    .unwrap_or(&zero)
            });
            std::hint::black_box(reed_solomon_simd::encode(k, m, shards).unwrap());
        });
}

/// Damaged copy of the encoded image: a burst of 0.9·m·S protected sectors zeroed.
fn damaged(s: &Setup) -> (tempfile::NamedTempFile, u64) {
    let burst = s.layout.parity_sectors() * 9 / 10;
    let out = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(s.file.path(), out.path()).unwrap();
    out.as_file()
        .write_all_at(&vec![0u8; burst as usize * SS], 1000 * SS as u64)
        .unwrap();
    (out, burst)
}

fn our_repair(path: &std::path::Path) -> u64 {
    let src = FileSectorSource::open(path).unwrap();
    let found = fec::locate(&src, None).unwrap();
    let scan = fec::scan(&src, &found, &|_| {}).unwrap();
    let rep = fec::repair(&src, &found, &scan, BUDGET, &mut |_, _| Ok(())).unwrap();
    assert!(rep.is_complete());
    rep.repaired_protected
}

/// Plain decode of the same geometry with 0.9·m original shards missing in every stripe.
fn plain_decode(s: &Setup, parity: &[Vec<Vec<u8>>]) {
    let k = s.layout.data_per_stripe() as usize;
    let lost = s.layout.parity_per_stripe() as usize * 9 / 10;
    let zero = vec![0u8; SS];
    parity.par_iter().enumerate().for_each(|(j, rec)| {
        let orig = (lost..k).map(|r| {
            (
                r,
                s.data
                    .get((j * k + r) * SS..(j * k + r + 1) * SS)
                    .unwrap_or(&zero),
            )
        });
        let recv = rec
            .iter()
            .enumerate()
            .take(lost)
            .map(|(p, v)| (p, v.as_slice()));
        std::hint::black_box(reed_solomon_simd::decode(k, rec.len(), orig, recv).unwrap());
    });
}

fn plain_parity(s: &Setup) -> Vec<Vec<Vec<u8>>> {
    let k = s.layout.data_per_stripe() as usize;
    let m = s.layout.parity_per_stripe() as usize;
    let zero = vec![0u8; SS];
    (0..s.layout.stripes() as usize)
        .into_par_iter()
        .map(|j| {
            let shards = (0..k).map(|r| {
                s.data
                    .get((j * k + r) * SS..(j * k + r + 1) * SS)
                    .unwrap_or(&zero)
            });
            reed_solomon_simd::encode(k, m, shards).unwrap()
        })
        .collect()
}

fn time<F: FnMut()>(mut f: F) -> f64 {
    f(); // warm up (page cache, codec tables)
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let d = protected_sectors();
    let data = random_data(d);
    let mb = d as f64 * SS as f64 / 1e6;
    for pct in [5u32, 10, 20] {
        let s = setup(pct, &data);
        let l = &s.layout;
        eprintln!(
            "\n== {pct} %: D={} S={} k={} m={} ({:.0} MB protected, {} threads)",
            l.protected_sectors(),
            l.stripes(),
            l.data_per_stripe(),
            l.parity_per_stripe(),
            mb,
            rayon::current_num_threads()
        );
        let ours = time(|| our_encode(&s));
        let plain = time(|| plain_encode(&s));
        eprintln!(
            "encode: ours {:.0} MB/s, plain reed_solomon_simd {:.0} MB/s, ours/plain = {:.2}",
            mb / ours,
            mb / plain,
            plain / ours
        );
        let (bad, burst) = damaged(&s);
        let parity = plain_parity(&s);
        let ours_d = time(|| assert_eq!(our_repair(bad.path()), burst));
        let plain_d = time(|| plain_decode(&s, &parity));
        eprintln!(
            "decode ({burst} sectors lost): ours (scan+repair) {:.0} MB/s, plain decode {:.0} MB/s, ours/plain = {:.2}",
            mb / ours_d,
            mb / plain_d,
            plain_d / ours_d
        );

        let mut g = c.benchmark_group(format!("fec_{pct}pct"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Bytes(d * SS as u64));
        g.bench_function("encode_ours", |b| b.iter(|| our_encode(&s)));
        g.bench_function("encode_plain_rs_simd", |b| b.iter(|| plain_encode(&s)));
        g.bench_function("repair_ours", |b| b.iter(|| our_repair(bad.path())));
        g.bench_function("decode_plain_rs_simd", |b| {
            b.iter(|| plain_decode(&s, &parity))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
