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

/// `create --resume` keeps the interrupted run's data discs and so their reserve: a source that
/// grew meanwhile (here: long symlinks after everything the kept disc holds) could need more room
/// than they left, so that resume is refused before anything is written; once the source is as
/// it was, the resume completes the set.
#[test]
fn resume_with_a_catalog_grown_past_the_kept_reserve_is_refused_early() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let t = crate::common::tmp();
    let src = t.path().join("src");
    for i in 0..9u64 {
        write(&src.join(format!("f{i}.bin")), &noise(8 << 20, 700 + i));
    }
    let out = t.path().join("out");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "create",
            "-s",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        a.extend([
            "-n",
            "res",
            "-b",
            "32M",
            "-c",
            "none",
            "--parity-discs",
            "1",
            "-y",
            "-q",
        ]);
        a.extend(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(args(&[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = out.join("images/res-gen0001-disc0001.iso");
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(120) {
        if first.exists() {
            let _ = child.kill();
            killed = true;
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(killed, "create finished before disc 1 could be seen");
    assert!(!out.join("images/res-gen0001-parity0001.iso").exists());
    let links = src.join("zz-links");
    fs::create_dir_all(&links).unwrap();
    let mut rng = Rng(3);
    for i in 0..1500 {
        symlink(random_name(&mut rng, 4000), links.join(format!("l{i:05}"))).unwrap();
    }
    let o = crate::common::bd(
        &args(&["--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    expect_code(&o, 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the source grew"), "{err}");
    assert!(first.exists(), "the kept disc stays");
    fs::remove_dir_all(&links).unwrap();
    let o = crate::common::bd(
        &args(&["--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    expect_code(&o, 0);
    assert_parity_set(&out, 3);
}

/// A catalog that leaves a data disc no room beside the parity disc's copy is refused before the
/// overview, naming the flag, instead of an overview of millions of discs and a writer error.
#[test]
fn a_catalog_too_large_for_the_medium_is_refused_up_front() {
    let t = crate::common::tmp();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let target = "t".repeat(4000);
    for i in 0..12_000 {
        symlink(&target, src.join(format!("l{i:05}"))).unwrap();
    }
    let out = t.path().join("out");
    let o = create(
        &src,
        &out,
        "big",
        &["-b", "32M", "--parity-discs", "1", "-y"],
    );
    expect_code(&o, 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--parity-discs") && err.contains("too large"),
        "{err}"
    );
    assert!(!out.join("images").exists());
    // Without parity discs the same tree is archived.
    expect_code(&create(&src, &out, "big", &["-b", "32M", "-y", "-q"]), 0);
}
