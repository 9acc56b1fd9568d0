//! Foundation acceptance: create → images → extract round trips, byte for byte, and bad input.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::common::*;

/// A tree with every kind of entry the issue names (the 300 MB file is in its own test).
fn rich_tree(src: &Path, small_files: usize) {
    write(&src.join("empty-file"), b"");
    write(&src.join("one-chunk.bin"), &noise(1 << 20, 1));
    write(
        &src.join("text/log.txt"),
        "line of a log file\n".repeat(100_000).as_bytes(),
    );
    write(&src.join("photos/raw.nef"), &noise(3_000_000, 2));
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    write(&bpath(src, b"caf\xe9-latin1.txt"), b"non-UTF-8 name");
    write(&src.join("nested/a/b/c/d/deep.txt"), b"deep");
    let long = "x".repeat(200);
    write(&src.join("long").join(&long), b"long name");
    symlink("text/log.txt", src.join("link-to-log")).unwrap();
    symlink("does/not/exist", src.join("dangling")).unwrap();
    fs::hard_link(
        src.join("photos/raw.nef"),
        src.join("photos/raw-hardlink.nef"),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::set_permissions(src.join("text/log.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    for i in 0..small_files {
        write(
            &src.join(format!("many/{:02}/f{i:05}.txt", i % 50)),
            format!("small file {i}\n").as_bytes(),
        );
    }
    // Fixed nanosecond mtimes, also on directories (set last, children first).
    let t = nix::sys::time::TimeSpec::new(1_600_000_000, 123_456_789);
    let set = |p: &Path| {
        nix::sys::stat::utimensat(
            None,
            p,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap()
    };
    set(&src.join("text/log.txt"));
    set(&src.join("dangling"));
    set(&src.join("text"));
}

/// `create -n test -y` plus `extra`.
fn create_test(src: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-y"];
    args.extend_from_slice(extra);
    create(src, out, "test", &args)
}

fn extract(out: &Path, sources: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("extract"),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--special-files"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.extend(sources.iter().map(|p| p.as_os_str()));
    run(&args)
}

#[test]
fn many_discs_round_trip_in_shuffled_order() {
    let t = tmp();
    let src = t.path().join("src");
    rich_tree(&src, 20_000);
    write(&src.join("big/incompressible.bin"), &noise(300 << 20, 9));
    let out = t.path().join("out");
    expect_code(&create_test(&src, &out, &["-b", "64M"]), 0);
    let mut imgs = images(&out);
    assert!(
        imgs.len() >= 3,
        "expected several discs, got {}",
        imgs.len()
    );
    assert!(out.join("test-gen1.catalog").is_file());
    imgs.reverse();
    imgs.swap(0, 1);
    let refs: Vec<&Path> = imgs.iter().map(|p| p.as_path()).collect();
    let restored = t.path().join("restored");
    expect_code(&extract(&restored, &refs, &[]), 0);
    assert!(!restored.join("corrupted-files.txt").exists());
    assert_same_tree(&src, &restored);
}

#[test]
fn compression_none_and_level_19_round_trip() {
    for (i, flags) in [&["-c", "none"][..], &["-c", "zstd", "-l", "19"][..]]
        .iter()
        .enumerate()
    {
        let t = tmp();
        let src = t.path().join("src");
        rich_tree(&src, 50);
        let out = t.path().join("out");
        let mut f = vec!["-b", "64M"];
        f.extend_from_slice(flags);
        expect_code(&create_test(&src, &out, &f), 0);
        let restored = t.path().join("r");
        let imgs = images(&out);
        let refs: Vec<&Path> = imgs.iter().map(|p| p.as_path()).collect();
        expect_code(&extract(&restored, &refs, &[]), 0);
        assert_same_tree(&src, &restored);
        let _ = i;
    }
}

#[test]
fn incompressible_data_costs_under_half_a_percent() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("noise.bin"), &noise(100 << 20, 5));
    let out = t.path().join("out");
    expect_code(&create_test(&src, &out, &["-b", "bd25", "-r", "1"]), 0);
    // Sum of the data parts as recorded in the catalog (list --json gives entries; parts via list of files)
    let o = bd(&[
        "list",
        out.join("test-gen1.catalog").to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 0);
    let img = &images(&out)[0];
    let stored = data_part_bytes(img);
    let overhead = stored as f64 / (100u64 << 20) as f64 - 1.0;
    assert!(overhead < 0.005, "overhead {:.4}%", overhead * 100.0);
}

/// Sum of the data part sizes, read from the per-disc index through the library.
fn data_part_bytes(img: &Path) -> u64 {
    let disc = bd_archive::disc::reader::Disc::open_path(img, &Default::default()).unwrap();
    disc.index.unwrap().parts.iter().map(|p| p.bytes).sum()
}

#[test]
fn only_restores_selected_paths() {
    let t = tmp();
    let src = t.path().join("src");
    rich_tree(&src, 10);
    let out = t.path().join("out");
    expect_code(&create_test(&src, &out, &["-b", "64M"]), 0);
    let restored = t.path().join("r");
    let img_dir = out.join("images");
    expect_code(&extract(&restored, &[&img_dir], &["--only", "nested/a"]), 0);
    assert!(restored.join("nested/a/b/c/d/deep.txt").is_file());
    assert!(!restored.join("text").exists());
}

#[test]
fn existing_files_are_not_overwritten_without_flag() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"archived");
    let out = t.path().join("out");
    expect_code(&create_test(&src, &out, &["-b", "64M"]), 0);
    let restored = t.path().join("r");
    write(&restored.join("a.txt"), b"precious");
    let img_dir = out.join("images");
    let o = extract(&restored, &[&img_dir], &[]);
    expect_code(&o, 3);
    assert_eq!(fs::read(restored.join("a.txt")).unwrap(), b"precious");
    expect_code(&extract(&restored, &[&img_dir], &["--overwrite"]), 0);
    assert_eq!(fs::read(restored.join("a.txt")).unwrap(), b"archived");
}

#[test]
fn missing_disc_is_reported_with_byte_ranges() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("big.bin"), &noise(90 << 20, 3));
    write(&src.join("small.txt"), b"small");
    let out = t.path().join("out");
    expect_code(&create_test(&src, &out, &["-b", "64M"]), 0);
    let imgs = images(&out);
    assert!(imgs.len() >= 2);
    // Leave out disc 1: big.bin starts there.
    let refs: Vec<&Path> = imgs[1..].iter().map(|p| p.as_path()).collect();
    let restored = t.path().join("r");
    let o = extract(&restored, &refs, &[]);
    expect_code(&o, 1);
    let report = fs::read_to_string(restored.join("corrupted-files.txt")).unwrap();
    let line = report
        .lines()
        .find(|l| l.starts_with("big.bin\t"))
        .expect("big.bin listed");
    assert!(line.contains("disc 1 not available"), "{line}");
    let ranges = line.split('\t').nth(1).unwrap();
    assert!(ranges.starts_with("0-"), "{ranges}");
    assert!(restored.join("small.txt").is_file());
    assert_eq!(fs::read(restored.join("small.txt")).unwrap(), b"small");
}

#[test]
fn bad_input_gives_one_line_errors() {
    let t = tmp();
    let out = t.path().join("out");
    // Missing source.
    let o = bd(&[
        "create",
        "-s",
        "/nonexistent/src",
        "-o",
        out.to_str().unwrap(),
        "-n",
        "x",
        "-b",
        "64M",
        "-y",
    ]);
    expect_code(&o, 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("/nonexistent/src"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    // -b below the minimum.
    let src = t.path().join("src");
    write(&src.join("f"), b"x");
    let o = create(&src, &out, "x", &["-b", "1M", "-y"]);
    expect_code(&o, 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("-b 1M"));
    // No -b at all.
    let o = create(&src, &out, "x", &["-y"]);
    expect_code(&o, 3);
    // Bad name.
    let o = create(&src, &out, "a/b", &["-b", "64M", "-y"]);
    expect_code(&o, 3);
    // Without a terminal and without -y: refuses, naming --yes.
    let o = create(&src, &out, "x", &["-b", "64M"]);
    expect_code(&o, 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert!(!out.join("images").exists());
    // Unsupported compression.
    let o = create(&src, &out, "x", &["-b", "64M", "-c", "lzma", "-y"]);
    expect_code(&o, 3);
    // A non-image file passed to extract.
    let junk = t.path().join("junk.iso");
    fs::write(&junk, noise(100_000, 4)).unwrap();
    let o = bd(&[
        "extract",
        "-o",
        t.path().join("r").to_str().unwrap(),
        junk.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a bd-archive disc image"));
    // Usage errors map to 3, not clap's 2.
    expect_code(&bd(&["create", "--no-such-flag"]), 3);
}

#[test]
fn dry_run_writes_nothing_and_json_parses() {
    let t = tmp();
    let src = t.path().join("src");
    rich_tree(&src, 10);
    let out = t.path().join("out");
    let o = create(&src, &out, "x", &["-b", "bd25", "--dry-run", "--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["overview"]["discs"], 1);
    assert_eq!(v["generation"], 1);
    assert!(!out.exists());
}
