//! FEC throughput: our `encode` — the path `create` runs, over a (page-cached) image file, including
//! its reads, CRCs, parity writes and checksum tables, under the memory budget `create` uses by
//! default, with its encoders kept from round to round as `create` keeps them from disc to disc
//! (a second line gives the first disc of a set, which allocates them) — next to plain `reed_solomon_simd::encode` of the very same stripes (same k, m, S, the
//! same interleaved sectors) held in RAM, parallel over stripes on the same rayon pool; and our
//! `repair` next to plain `reed_solomon_simd::decode`. Geometries: `-r 10` as `create` plans it
//! (loss-based) and plain 5 / 10 / 20 % ratios.
//!
//! Before the criterion groups, each geometry is timed `BENCH_FEC_ROUNDS` times (default 5), ours
//! and plain alternating, and the ratio of the best times is printed (the machines are shared and
//! noisy; alternating and taking the best of each cancels most of that).
//! `BENCH_FEC_MB` sets the image size (default 2048: the smallest size at which a thread's runs
//! are nearly as long as the memory budget makes them on a real 25–100 GB disc; on smaller images
//! runs are shorter, so more system calls and fresh encoder memory per byte), `BENCH_FEC_MEMORY` the budget in MiB
//! (default 768, what `create` uses on a machine with ≥ 3 GiB RAM). Loss for decode = one burst of
//! 90 % of the per-stripe budget, so every stripe decodes ≈ 0.9·m erasures. Pass a filter that
//! matches no benchmark (`cargo bench --bench fec -- none`) to get only the side-by-side lines.
//!
//! Group `column_code`: the column code of parity discs (FORMAT.md §10) on one thread, one window
//! of 2048 columns (4 MiB shards, the window `create` uses at the default budget) per call —
//! encode (create's parity pass) and decode of one lost data disc (a rebuild), for 4 + 1 and
//! 12 + 2 discs; throughput counts the data discs' bytes. Alone and quickly:
//! `BENCH_FEC_MB=16 cargo bench --bench fec -- column_code`.

use bd_archive::fec;
use bd_archive::sector::{FileSectorSource, SECTOR_SIZE};
use criterion::{criterion_group, Criterion, Throughput};
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const SS: usize = SECTOR_SIZE;
const BUDGET: u64 = 1 << 30;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The budget `create` gives the FEC stage by default (min(25 % RAM, 768 MiB)).
fn encode_budget() -> u64 {
    env_u64("BENCH_FEC_MEMORY", 768) << 20
}

fn protected_sectors() -> u64 {
    let mb = env_u64("BENCH_FEC_MB", 2048);
    mb * (1 << 20) / SS as u64 + 7 // not a multiple of S
}

fn random_data(sectors: u64) -> Vec<u8> {
    let mut v = vec![0u8; sectors as usize * SS];
    bd_archive::util::xorshift::Xorshift64::new(0x2545_F491_4F6C_DD1D).fill(&mut v);
    v
}

struct Setup {
    layout: fec::FecLayout,
    data: Vec<u8>,
    file: tempfile::NamedTempFile,
    /// Kept across rounds as `create` keeps it across the discs of a set.
    encoder: fec::RegionEncoder,
}

fn setup(layout: fec::FecLayout, data: &[u8]) -> Setup {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(data).unwrap();
    file.as_file()
        .set_len(layout.region_end() * SS as u64)
        .unwrap();
    Setup {
        layout,
        data: data.to_vec(),
        file,
        encoder: fec::RegionEncoder::new(encode_budget()),
    }
}

/// Our encode as `create` runs it for the second and later discs of a set (encoders kept).
fn our_encode(s: &Setup) {
    s.encoder
        .encode(s.file.as_file(), &s.layout, &|_| {})
        .unwrap();
}

/// Our encode with fresh encoders, as for the first disc of a set (allocation included).
fn our_encode_fresh(s: &Setup) {
    fec::encode(s.file.as_file(), &s.layout, encode_budget(), &|_| {}).unwrap();
}

/// The same stripes encoded straight from RAM: shard r of stripe j = sector `data_lba(r, j)` (row r
/// rotated, FORMAT.md §3.1; zero past D), one `reed_solomon_simd::encode` call per stripe, stripes
/// in parallel.
fn plain_encode(s: &Setup) {
    let k = s.layout.data_per_stripe() as usize;
    let m = s.layout.parity_per_stripe() as usize;
    let stride = s.layout.stripes() as usize;
    let zero = vec![0u8; SS];
    (0..stride).into_par_iter().for_each(|j| {
        let shards = (0..k).map(|r| {
            let g = s.layout.data_lba(r as u64, j as u64) as usize;
            s.data.get(g * SS..(g + 1) * SS).unwrap_or(&zero)
        });
        std::hint::black_box(reed_solomon_simd::encode(k, m, shards).unwrap());
    });
}

/// CPU seconds this process has used so far (all threads, user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall and CPU seconds of one run.
#[derive(Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
}

/// Best of `rounds` alternating runs of each (after one warm-up each): (ours, plain, ours with
/// fresh encoders). Wall and CPU time are each the minimum over the rounds.
fn side_by_side(s: &Setup, rounds: u64) -> (Cost, Cost, Cost) {
    let once = |f: &dyn Fn(&Setup)| {
        let (t, c) = (Instant::now(), cpu_seconds());
        f(s);
        Cost {
            wall: t.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - c,
        }
    };
    let best = |a: Cost, b: Cost| Cost {
        wall: a.wall.min(b.wall),
        cpu: a.cpu.min(b.cpu),
    };
    once(&our_encode);
    once(&plain_encode);
    let mut ours = Cost {
        wall: f64::MAX,
        cpu: f64::MAX,
    };
    let (mut plain, mut fresh) = (ours, ours);
    for _ in 0..rounds {
        ours = best(ours, once(&our_encode));
        plain = best(plain, once(&plain_encode));
        fresh = best(fresh, once(&our_encode_fresh));
    }
    (ours, plain, fresh)
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
    let rounds = env_u64("BENCH_FEC_ROUNDS", 5).max(1);
    let geometries = [
        ("create -r 10", fec::plan_for_loss(d, 10).unwrap()),
        ("5 %", fec::plan(d, 5).unwrap()),
        ("10 %", fec::plan(d, 10).unwrap()),
        ("20 %", fec::plan(d, 20).unwrap()),
    ];
    for (name, layout) in geometries {
        let pct = name.trim_start_matches("create -r ").trim_end_matches(" %");
        let s = setup(layout, &data);
        let l = &s.layout;
        eprintln!(
            "\n== {name}: D={} S={} k={} m={} ({:.1} % parity, {:.0} MB protected, {} threads, budget {} MiB)",
            l.protected_sectors(),
            l.stripes(),
            l.data_per_stripe(),
            l.parity_per_stripe(),
            l.redundancy_pct(),
            mb,
            rayon::current_num_threads(),
            encode_budget() >> 20,
        );
        let (ours, plain, fresh) = side_by_side(&s, rounds);
        eprintln!(
            "encode (best of {rounds}): ours {:.0} MB/s, plain reed_solomon_simd {:.0} MB/s, ours/plain = {:.2} \
             | per CPU-second: ours {:.0} MB/s, plain {:.0} MB/s, ours/plain = {:.2}",
            mb / ours.wall,
            mb / plain.wall,
            plain.wall / ours.wall,
            mb / ours.cpu,
            mb / plain.cpu,
            plain.cpu / ours.cpu
        );
        eprintln!(
            "  first disc of a set (fresh encoders): ours {:.0} MB/s, ours/plain = {:.2} | per CPU-second {:.2}",
            mb / fresh.wall,
            plain.wall / fresh.wall,
            plain.cpu / fresh.cpu
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

        let mut g = c.benchmark_group(if name.starts_with("create") {
            format!("fec_create_r{pct}")
        } else {
            format!("fec_{pct}pct")
        });
        g.sample_size(10)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Bytes(d * SS as u64));
        g.bench_function("encode_ours", |b| b.iter(|| our_encode(&s)));
        g.bench_function("encode_ours_first_disc", |b| {
            b.iter(|| our_encode_fresh(&s))
        });
        g.bench_function("encode_plain_rs_simd", |b| b.iter(|| plain_encode(&s)));
        g.bench_function("repair_ours", |b| b.iter(|| our_repair(bad.path())));
        g.bench_function("decode_plain_rs_simd", |b| {
            b.iter(|| plain_decode(&s, &parity))
        });
        g.finish();
    }
}

/// The column code of parity discs, one window per call (see the module doc).
fn column_bench(c: &mut Criterion) {
    use bd_archive::fec::column::ColumnCodec;
    const W: usize = 2048 * SS;
    let mut g = c.benchmark_group("column_code");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for (n, p) in [(4usize, 1usize), (12, 2)] {
        let data = random_data((n * 2048) as u64);
        let discs: Vec<&[u8]> = data.chunks(W).collect();
        let mut codec = ColumnCodec::new(n, p).unwrap();
        let mut parity = vec![vec![0u8; W]; p];
        g.throughput(Throughput::Bytes((n * W) as u64));
        g.bench_function(format!("encode_{n}+{p}"), |b| {
            b.iter(|| {
                let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|v| &mut v[..]).collect();
                codec.encode(&discs, &mut outs).unwrap();
            })
        });
        let mut shards: Vec<Vec<u8>> = discs.iter().map(|d| d.to_vec()).collect();
        shards.extend(parity.iter().cloned());
        let known: Vec<bool> = (0..n + p).map(|i| i != 1).collect();
        g.bench_function(format!("decode_{n}+{p}_one_lost"), |b| {
            b.iter(|| {
                let mut refs: Vec<&mut [u8]> = shards.iter_mut().map(|v| &mut v[..]).collect();
                codec.decode(&mut refs, &known).unwrap();
            })
        });
        assert_eq!(shards[1], discs[1], "the lost disc decodes to its bytes");
    }
    g.finish();
}

criterion_group!(benches, column_bench, bench);

/// `BENCH_FEC_FILE=PATH`: encode PATH in place as one disc's protected sectors (its length rounded
/// down to whole sectors) with `create`'s `-r 10` plan and default budget, appending the FEC region
/// (the file is modified), and print the time; used by benches/fec_compare.sh next to par2.
fn encode_file(path: &str) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let d = f.metadata().unwrap().len() / SS as u64;
    let layout = fec::plan_for_loss(d, 10).unwrap();
    f.set_len(layout.region_end() * SS as u64).unwrap();
    let (t, c) = (Instant::now(), cpu_seconds());
    fec::encode(&f, &layout, encode_budget(), &|_| {}).unwrap();
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    let mb = d as f64 * SS as f64 / 1e6;
    println!(
        "bd-archive FEC encode: {mb:.0} MB, S={} k={} m={} ({:.1} % parity), {} threads, budget {} MiB: \
         {wall:.2} s wall ({:.0} MB/s), {cpu:.2} s CPU",
        layout.stripes(),
        layout.data_per_stripe(),
        layout.parity_per_stripe(),
        layout.redundancy_pct(),
        rayon::current_num_threads(),
        encode_budget() >> 20,
        mb / wall
    );
}

fn main() {
    if let Ok(path) = std::env::var("BENCH_FEC_FILE") {
        return encode_file(&path);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
