//! Whole-disc FEC end to end: a multi-disc set is damaged in many ways; within the budget `verify`
//! says 1 and `extract` restores everything bit-exact (exit 0); over the budget `verify` says 2 and
//! `extract` restores every file whose data survives and lists exactly the others (exit 1).

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;
use bd_archive::util::xorshift::Xorshift64;

const SS: u64 = 2048;

/// One archive built once and copied for every damage pattern: (source, images).
fn fixture() -> &'static (PathBuf, Vec<PathBuf>) {
    static F: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();
    F.get_or_init(|| {
        // Under the target dir with a fixed name, replaced on every run: a static fixture is
        // never dropped, so a temp dir would leak 130 MB per run.
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_damage_fixture");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let src = root.join("src");
        for i in 0..12 {
            write(
                &src.join(format!("photos/img{i:02}.raw")),
                &noise(5_000_000, 100 + i),
            );
        }
        for i in 0..300 {
            write(
                &src.join(format!("docs/{:02}/note{i}.txt", i % 7)),
                format!("note {i}\n").repeat(50 + i as usize).as_bytes(),
            );
        }
        let out = root.join("out");
        let o = create(&src, &out, "dmg", &["-b", "32M", "-y", "-q"]);
        expect_code(&o, 0);
        let imgs = images(&out);
        assert!(imgs.len() >= 2, "want a multi-disc set, got {}", imgs.len());
        (src, imgs)
    })
}

fn copy_set(dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    fixture()
        .1
        .iter()
        .map(|p| {
            let to = dir.join(p.file_name().unwrap());
            fs::copy(p, &to).unwrap();
            to
        })
        .collect()
}

fn sectors(img: &Path) -> u64 {
    fs::metadata(img).unwrap().len() / SS
}

fn zero_sectors(img: &Path, lbas: impl Iterator<Item = u64>) {
    let f = fs::OpenOptions::new().write(true).open(img).unwrap();
    let z = [0u8; SS as usize];
    for l in lbas {
        f.write_all_at(&z, l * SS).unwrap();
    }
}

fn random_lbas(n: u64, pct: f64, seed: u64) -> Vec<u64> {
    let mut r = Xorshift64::new(seed | 1);
    let want = (n as f64 * pct / 100.0) as usize;
    let mut set = std::collections::BTreeSet::new();
    while set.len() < want {
        set.insert(r.next_u64() % n);
    }
    set.into_iter().collect()
}

/// Damages, then checks verify's exit code and extract's result.
fn check(name: &str, damage: impl Fn(&[PathBuf]), within_budget: bool) {
    let t = tmp();
    let imgs = copy_set(&t.path().join("imgs"));
    damage(&imgs);
    let v = bd(&["verify", t.path().join("imgs").to_str().unwrap()]);
    expect_code(&v, if within_budget { 1 } else { 2 });
    let restored = t.path().join("restored");
    let mut args = vec!["extract", "-o", restored.to_str().unwrap()];
    let mut shuffled: Vec<&str> = imgs.iter().map(|p| p.to_str().unwrap()).collect();
    shuffled.reverse();
    args.extend(shuffled);
    let o = bd(&args);
    let src = &fixture().0;
    if within_budget {
        expect_code(&o, 0);
        assert_same_tree(src, &restored);
    } else {
        expect_code(&o, 1);
        let report = fs::read_to_string(restored.join("corrupted-files.txt")).unwrap();
        let listed: Vec<&str> = report
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert!(!listed.is_empty(), "{name}: nothing listed");
        // Every file not listed is bit-exact; every listed file really differs or is missing.
        let mut exact = 0;
        for e in walk_files(src) {
            let rel = e.strip_prefix(src).unwrap().to_str().unwrap().to_string();
            let got = fs::read(restored.join(&rel)).ok();
            let same = got.as_deref() == Some(&fs::read(&e).unwrap()[..]);
            if listed.contains(&rel.as_str()) {
                assert!(!same, "{name}: {rel} listed but intact");
            } else {
                assert!(same, "{name}: {rel} not listed but differs");
                exact += 1;
            }
        }
        assert!(exact > 0, "{name}: nothing restored");
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk_files(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn random_scatter_1_5_9_percent() {
    for (pct, seed) in [(1.0, 1u64), (5.0, 2), (9.0, 3)] {
        check(
            &format!("random {pct}%"),
            |imgs| {
                for (i, img) in imgs.iter().enumerate() {
                    zero_sectors(
                        img,
                        random_lbas(sectors(img), pct, seed + i as u64 * 17).into_iter(),
                    );
                }
            },
            true,
        );
    }
}

#[test]
fn one_burst_of_9_percent() {
    check(
        "burst",
        |imgs| {
            let n = sectors(&imgs[0]);
            let len = n * 9 / 100;
            zero_sectors(&imgs[0], n / 3..n / 3 + len);
        },
        true,
    );
}

#[test]
fn truncated_tail_9_percent() {
    check(
        "truncated",
        |imgs| {
            let img = &imgs[imgs.len() - 1];
            let n = sectors(img);
            let f = fs::OpenOptions::new().write(true).open(img).unwrap();
            f.set_len((n - n * 9 / 100) * SS).unwrap();
        },
        true,
    );
}

#[test]
fn first_mib_zeroed_filesystem_and_header() {
    check("first MiB", |imgs| zero_sectors(&imgs[0], 0..512), true);
}

#[test]
fn bit_flips_in_a_tenth_of_a_percent() {
    check(
        "bit flips",
        |imgs| {
            for (i, img) in imgs.iter().enumerate() {
                let f = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(img)
                    .unwrap();
                let mut r = Xorshift64::new(77 + i as u64);
                for l in random_lbas(sectors(img), 0.1, 5 + i as u64) {
                    let off = l * SS + r.next_u64() % SS;
                    let mut b = [0u8];
                    f.read_exact_at(&mut b, off).unwrap();
                    b[0] ^= 1 << (r.next_u64() % 8);
                    f.write_all_at(&b, off).unwrap();
                }
            }
        },
        true,
    );
}

#[test]
fn damaged_parity_region() {
    check(
        "parity",
        |imgs| {
            let disc = bd_archive::disc::reader::find_disc_header(
                &bd_archive::sector::FileSectorSource::open(&imgs[0]).unwrap(),
            )
            .unwrap();
            let (a, n) = (disc.fec_lba, disc.fec_sectors);
            // Half of the parity region in one burst plus 2 % scattered data sectors.
            zero_sectors(&imgs[0], a..a + n / 2);
            zero_sectors(&imgs[0], random_lbas(a, 2.0, 9).into_iter());
        },
        true,
    );
}

#[test]
fn over_budget_lists_exactly_the_lost_files() {
    check(
        "over budget",
        |imgs| {
            let img = &imgs[0];
            zero_sectors(
                img,
                random_lbas(sectors(img), 25.0, 11)
                    .into_iter()
                    .filter(|&l| l >= 1024),
            );
        },
        false,
    );
}

#[test]
fn verify_repair_writes_a_clean_copy_and_json_parses() {
    let t = tmp();
    let imgs = copy_set(&t.path().join("imgs"));
    zero_sectors(
        &imgs[0],
        random_lbas(sectors(&imgs[0]), 5.0, 21).into_iter(),
    );
    let before = fs::read(&imgs[0]).unwrap();
    let fixed = t.path().join("fixed.iso");
    let o = bd(&[
        "verify",
        imgs[0].to_str().unwrap(),
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["health"], "repairable");
    assert_eq!(fs::read(&imgs[0]).unwrap(), before, "input modified");
    assert_eq!(
        fs::read(&fixed).unwrap(),
        fs::read(&fixture().1[0]).unwrap(),
        "repaired copy differs from the original"
    );
    expect_code(&bd(&["verify", fixed.to_str().unwrap()]), 0);
}
