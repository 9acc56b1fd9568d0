//! Golden images: two small discs of the current format (a chain of two generations), committed
//! compressed with `sha256sum` lists of the tree at each generation. Every later change is held to
//! them: they must verify clean, restore bit-exact, and — damaged the ways discs get damaged —
//! report repairable, repair to the very same bytes and still restore bit-exact.
//! Regenerate after a deliberate format change with `tests/fixtures/golden/make.sh`.

use crate::common::*;
use bd_archive::fec;
use bd_archive::sector::{FileSectorSource, SECTOR_SIZE};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

const SS: usize = SECTOR_SIZE;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

/// Decompresses gen`g`.iso.zst into `dir` and returns the image path.
fn image(dir: &Path, g: u32) -> PathBuf {
    let packed = fs::read(fixture(&format!("gen{g}.iso.zst"))).expect("golden image");
    let bytes = zstd::decode_all(&packed[..]).expect("zstd");
    let path = dir.join(format!("gen{g}.iso"));
    fs::write(&path, bytes).unwrap();
    path
}

/// Checks every file listed in gen`g`.sha256 under `root`, and that nothing else is there.
fn check_tree(root: &Path, g: u32) {
    let list = fs::read_to_string(fixture(&format!("gen{g}.sha256"))).unwrap();
    let mut want = Vec::new();
    for line in list.lines() {
        let (hash, path) = line.split_once("  ").expect("sha256sum line");
        let path = path.trim_start_matches("./");
        let data = fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let got: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, hash, "generation {g}: {path} differs");
        want.push(path.to_string());
    }
    let mut have = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".bd-archive") {
                continue;
            }
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                have.push(rel);
            }
        }
    }
    want.sort();
    have.sort();
    assert_eq!(have, want, "generation {g}: restored files");
}

fn extract(out: &Path, extra: &[&str], images: &[&Path]) -> std::process::Output {
    let mut a = vec!["extract", "-q", "-o", out.to_str().unwrap()];
    a.extend_from_slice(extra);
    a.extend(images.iter().map(|p| p.to_str().unwrap()));
    bd(&a)
}

#[test]
fn golden_images_verify_and_restore_bit_exact() {
    let t = tmp();
    let (g1, g2) = (image(t.path(), 1), image(t.path(), 2));
    for img in [&g1, &g2] {
        expect_code(&bd(&["verify", "-q", img.to_str().unwrap()]), 0);
    }
    let out = t.path().join("latest");
    expect_code(&extract(&out, &[], &[&g2, &g1]), 0);
    check_tree(&out, 2);
    let out = t.path().join("first");
    expect_code(&extract(&out, &["--generation", "1"], &[&g1, &g2]), 0);
    check_tree(&out, 1);
}

/// Overwrites sector `lba` of the image with garbage (detectably bad: its CRC no longer matches,
/// even where the sector was all zeros).
fn zero(img: &mut [u8], lba: u64) {
    img[lba as usize * SS..][..SS].fill(0xA5);
}

#[test]
fn damaged_golden_image_repairs_to_the_same_bytes() {
    let t = tmp();
    let (g1, g2) = (image(t.path(), 1), image(t.path(), 2));
    let clean = fs::read(&g1).unwrap();
    let src = FileSectorSource::open(&g1).unwrap();
    let l = fec::locate(&src, None).unwrap().layout;
    let d = l.protected_sectors();
    let s = l.stripes();
    let m = u64::from(l.parity_per_stripe());
    let mut img = clean.clone();
    // A burst of m − 2 rows in the data (each stripe loses at most m − 1 shards there), the
    // first header copy, the whole checksum table (rebuilt from its parity) and parity row 0.
    let burst = 16..16 + (m - 2) * s;
    for x in burst {
        zero(&mut img, x);
    }
    for x in d..d + 1 + l.table_sectors() {
        zero(&mut img, x);
    }
    for x in l.parity_row_lba(0)..l.parity_row_lba(0) + s {
        zero(&mut img, x);
    }
    let bad = t.path().join("bad.iso");
    fs::write(&bad, &img).unwrap();
    expect_code(&bd(&["verify", "-q", bad.to_str().unwrap()]), 1);

    let fixed = t.path().join("fixed.iso");
    let o = bd(&[
        "verify",
        "-q",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert!(matches!(code(&o), 0 | 1), "{o:?}");
    assert!(fs::read(&fixed).unwrap() == clean, "repaired image differs");

    let out = t.path().join("restored");
    expect_code(&extract(&out, &[], &[&bad, &g2]), 0);
    check_tree(&out, 2);

    // Three more rows: beyond the parity of every stripe: broken, said so.
    let extra = 16 + (m - 2) * s..16 + (m + 1) * s;
    for x in extra {
        zero(&mut img, x);
    }
    fs::write(&bad, &img).unwrap();
    expect_code(&bd(&["verify", "-q", bad.to_str().unwrap()]), 2);
}
