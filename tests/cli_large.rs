//! A source file larger than 4 GiB: split into data parts below the ISO9660 extent limit, read
//! right by other tools, restored byte-exact — all sparse, so the test is fast and small on disk.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::*;

#[test]
fn file_over_4_gib_round_trips_sparse() {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let big = src.join("huge.img");
    let f = fs::File::create(&big).unwrap();
    let size = (4u64 << 30) + (300 << 20) + 12345;
    f.set_len(size).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"marker at 4.1 GiB", (4u64 << 30) + (100 << 20))
        .unwrap();
    drop(f);
    write(&src.join("small.txt"), b"small");
    let out = t.path().join("out");
    let o = create(&src, &out, "big", &["-b", "bd25", "-c", "none", "-y", "-q"]);
    expect_code(&o, 0);
    let img = &images(&out)[0];
    let m = fs::metadata(img).unwrap();
    assert!(m.len() > size, "image too small: {}", m.len());
    assert!(
        m.blocks() * 512 < 1 << 30,
        "image not sparse: {} bytes allocated",
        m.blocks() * 512
    );

    // Our reader and xorriso both see two data parts below 4 GiB whose sizes add up.
    let fsys = bd_archive::image::read_filesystem(
        &bd_archive::sector::FileSectorSource::open(img).unwrap(),
    )
    .unwrap();
    let parts: Vec<_> = fsys
        .files
        .iter()
        .filter(|f| f.path.ends_with(".tar.zst"))
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.size < 4 << 30));
    if Command::new("xorriso").arg("-version").output().is_ok() {
        let o = Command::new("xorriso")
            .args([
                "-indev",
                img.to_str().unwrap(),
                "-find",
                "/",
                "-exec",
                "lsdl",
            ])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&o.stdout);
        for p in &parts {
            let line = listing
                .lines()
                .find(|l| l.contains(&p.path))
                .unwrap_or_else(|| panic!("{} missing:\n{listing}", p.path));
            assert!(
                line.contains(&format!(" {} ", p.size)),
                "size of {} wrong: {line}",
                p.path
            );
        }
        // xorriso extracts the second part with the same bytes as the image holds.
        let x = t.path().join("part2");
        let o = Command::new("xorriso")
            .args([
                "-osirrox",
                "on",
                "-indev",
                img.to_str().unwrap(),
                "-extract",
                &format!("/{}", parts[1].path),
                x.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ours = {
            let f = fs::File::open(img).unwrap();
            let mut b = vec![0u8; parts[1].size as usize];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, parts[1].lba * 2048).unwrap();
            b
        };
        assert!(fs::read(&x).unwrap() == ours, "xorriso's bytes differ");
    } else {
        eprintln!(
            "SKIPPED xorriso part of file_over_4_gib_round_trips_sparse: xorriso not installed"
        );
    }

    let r = t.path().join("r");
    expect_code(
        &bd(&["extract", "-o", r.to_str().unwrap(), img.to_str().unwrap()]),
        0,
    );
    let rm = fs::metadata(r.join("huge.img")).unwrap();
    assert_eq!(rm.len(), size);
    assert!(rm.blocks() * 512 < 64 << 20, "restored file not sparse");
    let mut marker = [0u8; 17];
    std::os::unix::fs::FileExt::read_exact_at(
        &fs::File::open(r.join("huge.img")).unwrap(),
        &mut marker,
        (4u64 << 30) + (100 << 20),
    )
    .unwrap();
    assert_eq!(&marker, b"marker at 4.1 GiB");
}
