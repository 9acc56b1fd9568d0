//! Hostile archives, truncated images and full filesystems: refused or neutralised, never a panic,
//! never a write outside OUT, never an image that looks complete but is not.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use bd_archive::archive::disc_writer::{DiscSetConfig, DiscSetWriter};
use bd_archive::archive::scan::SourceEntry;
use bd_archive::archive::tar_stream::TarStreamBuilder;
use bd_archive::format::catalog::{ChainInfo, EntryKind};
use bd_archive::format::chunk::{encode_chunk, Compression};

/// A hand-made source entry; its content (for a file) is read from `abs`, whatever `rel` says.
fn source(rel: &[u8], kind: EntryKind, abs: &Path, target: &[u8]) -> (SourceEntry, PathBuf) {
    let e = SourceEntry {
        rel_path: rel.to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime_sec: 1_600_000_000,
        mtime_nsec: 0,
        size: if kind == EntryKind::File {
            fs::metadata(abs).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        },
        link_target: target.to_vec(),
        rdev: 0,
        stamp: Default::default(),
    };
    (e, abs.to_path_buf())
}

/// Builds images from hand-made (possibly hostile) source entries through the real writer.
fn build(entries: &[(SourceEntry, PathBuf)], out: &Path) -> Vec<PathBuf> {
    build_with(entries, out, None)
}

/// Like [`build`], optionally carrying `binary` on every disc.
fn build_with(
    entries: &[(SourceEntry, PathBuf)],
    out: &Path,
    binary: Option<Vec<u8>>,
) -> Vec<PathBuf> {
    let images = out.join("images");
    fs::create_dir_all(&images).unwrap();
    let chain = ChainInfo {
        name: "evil".into(),
        chain_id: [7; 16],
        generation: 1,
        base_generation: 0,
        created_unix: 1_600_000_000,
        tool_version: "test".into(),
        compression: "zstd-3".into(),
        redundancy_pct: 10,
    };
    let cfg = DiscSetConfig {
        images_dir: images,
        chain,
        set_id: [6; 16],
        capacity_sectors: 32768,
        redundancy_pct: 10,
        fill_parity: false,
        memory_budget: 64 << 20,
        format_md: b"format".to_vec(),
        first_image_number: 1,
        carry_in: None,
        binary,
        parity_reserve_sectors: 0,
        parity_discs: 0,
        disc_map: Vec::new(),
    };
    let mut writer = DiscSetWriter::new(cfg).unwrap();
    let mut chunks = Vec::new();
    let mut emit = |c| {
        chunks.push(c);
        Ok(())
    };
    let content_path = |rel: &[u8]| {
        let (_, abs) = entries.iter().find(|(e, _)| e.rel_path == rel).unwrap();
        abs.clone()
    };
    let list: Vec<SourceEntry> = entries.iter().map(|(e, _)| e.clone()).collect();
    let len = TarStreamBuilder::new(1, &content_path, &mut emit, &mut |_| {}, &mut |_| {})
        .run(&list)
        .unwrap();
    for c in chunks {
        let enc = encode_chunk(
            &c.data,
            Compression::None,
            None,
            [7; 16],
            1,
            c.seq,
            c.tar_offset,
        )
        .unwrap();
        writer.push_chunk(enc, c.completed, c.open).unwrap();
    }
    writer.finish(len, Vec::new(), &mut |_| Ok(())).unwrap()
}

#[test]
fn hostile_entries_never_touch_anything_outside_out() {
    let t = tmp();
    let payload = t.path().join("payload.txt");
    fs::write(&payload, b"owned").unwrap();
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let canary = t.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    let entries = vec![
        source(b"../escape.txt", EntryKind::File, &payload, b""),
        source(
            format!("{}/abs.txt", canary.display()).as_bytes(),
            EntryKind::File,
            &payload,
            b"",
        ),
        source(b"a/../../dotdot.txt", EntryKind::File, &payload, b""),
        source(
            b"link",
            EntryKind::Symlink,
            &payload,
            outside.to_str().unwrap().as_bytes(),
        ),
        source(b"link/through-symlink.txt", EntryKind::File, &payload, b""),
        source(b"hard", EntryKind::HardLink, &payload, b"/etc/passwd"),
        source(b"hard2", EntryKind::HardLink, &payload, b"../payload.txt"),
        source(b"good.txt", EntryKind::File, &payload, b""),
    ];
    let out = t.path().join("out");
    let imgs = build(&entries, &out);
    let restored = t.path().join("restored");
    let o = bd(&[
        "extract",
        "-o",
        restored.to_str().unwrap(),
        imgs[0].to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(!t.path().join("escape.txt").exists());
    assert!(!t.path().join("dotdot.txt").exists());
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "canary dir touched"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "write through planted symlink"
    );
    assert_eq!(fs::read(restored.join("good.txt")).unwrap(), b"owned");
    let report = fs::read_to_string(restored.join("corrupted-files.txt")).unwrap();
    for bad in [
        "../escape.txt",
        "a/../../dotdot.txt",
        "link/through-symlink.txt",
        "hard\t",
        "hard2",
    ] {
        assert!(report.contains(bad), "{bad} not reported:\n{report}");
    }
    // The symlink itself is restored verbatim (it is data), but never followed.
    assert!(fs::symlink_metadata(restored.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn truncated_image_is_an_error_not_a_panic() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.bin"), &noise(5 << 20, 1));
    let out = t.path().join("out");
    expect_code(&create(&src, &out, "t", &["-b", "64M", "-y"]), 0);
    let img = &images(&out)[0];
    let f = fs::OpenOptions::new().write(true).open(img).unwrap();
    f.set_len(1 << 20).unwrap();
    let o = bd(&[
        "extract",
        "-o",
        t.path().join("r").to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_ne!(code(&o), 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
#[ignore = "needs permission to mount a tmpfs (root); CI runs it"]
fn full_filesystem_leaves_no_complete_looking_image() {
    let t = tmp();
    let small = t.path().join("small-fs");
    fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=24m",
            "tmpfs",
            small.to_str().unwrap(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        mounted,
        "prerequisite missing: cannot mount a tmpfs here (needs root); this test is #[ignore]d \
         for that reason and was run explicitly"
    );
    let src = t.path().join("src");
    write(&src.join("a.bin"), &noise(40 << 20, 2));
    let out = small.join("out");
    let o = create(&src, &out, "t", &["-b", "64M", "-y"]);
    let imgs: Vec<_> = fs::read_dir(out.join("images"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let _ = std::process::Command::new("umount").arg(&small).status();
    expect_code(&o, 3);
    let err = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(
        errors.len() == 1
            && errors[0].starts_with("error: ")
            && errors[0].contains("No space left"),
        "{err}"
    );
    assert_eq!(
        errors[0].matches("No space left").count(),
        1,
        "cause printed twice: {err}"
    );
    assert!(imgs.is_empty(), "images left behind: {imgs:?}");
}

#[test]
fn carried_binary_is_on_every_disc_and_executable() {
    let t = tmp();
    let payload = t.path().join("p.bin");
    fs::write(&payload, noise(1 << 20, 3)).unwrap();
    let entries = vec![source(b"p.bin", EntryKind::File, &payload, b"")];
    let fake_binary = noise(300_000, 4);
    let imgs = build_with(&entries, &t.path().join("out"), Some(fake_binary.clone()));
    let src = bd_archive::sector::FileSectorSource::open(&imgs[0]).unwrap();
    let fsys = bd_archive::image::read_filesystem(&src).unwrap();
    let f = fsys
        .files
        .iter()
        .find(|f| f.path == "bd-archive")
        .expect("binary on the disc");
    assert!(f.executable, "binary not executable");
    let mut got = vec![0u8; f.size as usize];
    std::os::unix::fs::FileExt::read_exact_at(
        &fs::File::open(&imgs[0]).unwrap(),
        &mut got,
        f.lba * 2048,
    )
    .unwrap();
    assert_eq!(got, fake_binary);
}
