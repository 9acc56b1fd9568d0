//! `create --parity-discs` never fails late: the data discs leave room for the parity disc's
//! catalog copy by a true upper bound of the catalog, not an estimate. Each tree here makes a
//! catalog far larger than the old estimate (entries × 160 + path bytes + chunks × 48) allowed
//! for; with the estimate, create stopped after writing every data image ("a parity disc of this
//! set would need …").

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::common::rng::Rng;
use crate::common::{bd, create, expect_code, images, noise, write};

/// Printable random bytes (no NUL, no '/'), as in a random file name or link target.
fn random_name(rng: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| CHARS[rng.index(CHARS.len())] as char)
        .collect()
}

/// Asserts a finished parity set: data and parity images all within the 32 MiB medium, and
/// `verify` of the set says it is whole.
fn assert_parity_set(out: &Path, min_data: usize) {
    let all = images(out);
    let (parity, data): (Vec<PathBuf>, Vec<PathBuf>) = all
        .iter()
        .cloned()
        .partition(|i| i.to_string_lossy().contains("-parity"));
    assert!(data.len() >= min_data, "data discs: {data:?}");
    assert_eq!(parity.len(), 1, "{all:?}");
    for img in &all {
        assert!(fs::metadata(img).unwrap().len() <= 32 << 20, "{img:?}");
    }
    let o = bd(&["verify", out.to_str().unwrap()]);
    expect_code(&o, 0);
}

/// Long random symlink targets: the old estimate left link targets out entirely.
#[test]
fn long_symlink_targets_do_not_overflow_the_parity_disc() {
    let t = crate::common::tmp();
    let src = t.path().join("src");
    let mut rng = Rng(7);
    for i in 0..3u64 {
        write(&src.join(format!("data{i}.bin")), &noise(20 << 20, 300 + i));
    }
    fs::create_dir_all(src.join("links")).unwrap();
    for i in 0..1500 {
        let target = random_name(&mut rng, 4000);
        symlink(&target, src.join(format!("links/l{i:05}"))).unwrap();
    }
    let out = t.path().join("out");
    let o = create(
        &src,
        &out,
        "lnk",
        &["-b", "32M", "-c", "none", "--parity-discs", "1", "-y"],
    );
    expect_code(&o, 0);
    assert_parity_set(&out, 2);
}

/// An incremental generation whose catalog lists many unchanged entries (reused from the base,
/// never streamed) beside a few large new files: the old estimate counted only what is stored.
#[test]
fn reused_entries_of_a_chain_do_not_overflow_the_parity_disc() {
    let t = crate::common::tmp();
    let src = t.path().join("src");
    let mut rng = Rng(11);
    for d in 0..40 {
        for f in 0..500 {
            let name = random_name(&mut rng, 120);
            write(
                &src.join(format!("d{d:02}/{f:03}-{name}")),
                format!("{d} {f}").as_bytes(),
            );
        }
    }
    let out1 = t.path().join("out1");
    let o = create(&src, &out1, "chn", &["-b", "32M", "-c", "none", "-y"]);
    expect_code(&o, 0);
    for i in 0..3u64 {
        write(
            &src.join(format!("new/data{i}.bin")),
            &noise(20 << 20, 500 + i),
        );
    }
    let out2 = t.path().join("out2");
    let o = create(
        &src,
        &out2,
        "chn",
        &[
            "--base",
            out1.to_str().unwrap(),
            "-b",
            "32M",
            "-c",
            "none",
            "--parity-discs",
            "1",
            "-y",
        ],
    );
    expect_code(&o, 0);
    assert_parity_set(&out2, 2);
}
