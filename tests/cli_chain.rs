//! Incremental chains end to end: three generations with every kind of change, restored from
//! all images in shuffled order; a missing middle generation; wrong bases refused.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::*;

/// `create` of generation N of the chain "chain" (`--base` when given).
fn create_gen(src: &Path, out: &Path, base: Option<&Path>, extra: &[&str]) -> std::process::Output {
    let mut a = vec!["-b", "32M", "-y", "-q"];
    if let Some(b) = base {
        a.push("--base");
        a.push(b.to_str().unwrap());
    }
    a.extend_from_slice(extra);
    create(src, out, "chain", &a)
}

fn all_images(outs: &[&Path]) -> Vec<PathBuf> {
    outs.iter().flat_map(|o| images(o)).collect()
}

fn extract(images: &[PathBuf], to: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec!["extract", "-o", to.to_str().unwrap()];
    a.extend_from_slice(extra);
    a.extend(images.iter().map(|p| p.to_str().unwrap()));
    bd(&a)
}

fn data_bytes(out: &Path) -> u64 {
    images(out)
        .iter()
        .map(|img| {
            let d = bd_archive::disc::reader::Disc::open_path(img, &Default::default()).unwrap();
            d.index.unwrap().parts.iter().map(|p| p.bytes).sum::<u64>()
        })
        .sum()
}

#[test]
fn three_generations_restore_the_newest_state_from_shuffled_discs() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("keep.txt"), b"unchanged");
    write(&src.join("modify-mtime.txt"), b"version 1");
    write(&src.join("modify-same-mtime.txt"), b"AAAAAAAAA");
    write(&src.join("to-delete.txt"), b"bye");
    write(&src.join("dir-to-delete/a.txt"), b"a");
    write(&src.join("chmod.txt"), b"mode");
    write(&src.join("becomes-symlink"), b"file first");
    write(&src.join("dir-becomes-file/x"), b"x");
    write(&src.join("big/original.bin"), &noise(8 << 20, 1));
    write(&src.join("photos/2024.raw"), &noise(3 << 20, 2));
    set_mtime(&src.join("modify-same-mtime.txt"), 1_500_000_000, 5);
    let out1 = t.path().join("out1");
    expect_code(&create_gen(&src, &out1, None, &[]), 0);

    // Generation 2: every kind of change.
    write(&src.join("new/added.txt"), b"new in gen 2");
    write(&src.join("modify-mtime.txt"), b"version 2");
    write(&src.join("modify-same-mtime.txt"), b"BBBBBBBBB");
    set_mtime(&src.join("modify-same-mtime.txt"), 1_500_000_000, 5);
    fs::remove_file(src.join("to-delete.txt")).unwrap();
    fs::remove_dir_all(src.join("dir-to-delete")).unwrap();
    fs::set_permissions(src.join("chmod.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(src.join("becomes-symlink")).unwrap();
    symlink("keep.txt", src.join("becomes-symlink")).unwrap();
    fs::remove_dir_all(src.join("dir-becomes-file")).unwrap();
    write(&src.join("dir-becomes-file"), b"now a file");
    fs::rename(src.join("big/original.bin"), src.join("big/renamed.bin")).unwrap();
    let out2 = t.path().join("out2");
    expect_code(&create_gen(&src, &out2, Some(&out1), &["--checksum"]), 0);
    assert!(
        data_bytes(&out2) < 1 << 20,
        "renamed 8 MiB file stored again: {}",
        data_bytes(&out2)
    );

    // Generation 3: more changes, base given as a catalog file.
    write(&src.join("photos/2025.raw"), &noise(2 << 20, 3));
    write(&src.join("new/added.txt"), b"changed in gen 3");
    fs::remove_file(src.join("keep.txt")).unwrap();
    let out3 = t.path().join("out3");
    expect_code(
        &create_gen(&src, &out3, Some(&out2.join("chain-gen2.catalog")), &[]),
        0,
    );

    let mut imgs = all_images(&[&out1, &out2, &out3]);
    imgs.reverse();
    let n = imgs.len();
    imgs.swap(0, n / 2);
    let restored = t.path().join("restored");
    expect_code(&extract(&imgs, &restored, &[]), 0);
    assert_same_tree(&src, &restored);

    // list on the newest catalog shows the complete current tree.
    let o = bd(&["list", out3.join("chain-gen3.catalog").to_str().unwrap()]);
    expect_code(&o, 0);
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("big/renamed.bin") && listing.contains("dir-becomes-file"));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert!(
        !paths.contains(&"to-delete.txt") && !paths.contains(&"keep.txt"),
        "{listing}"
    );

    // Without generation 2's discs: gens 1 and 3 restore what they hold; the gap is reported.
    let partial: Vec<PathBuf> = all_images(&[&out1, &out3]);
    let r2 = t.path().join("r2");
    let o = extract(&partial, &r2, &[]);
    expect_code(&o, 1);
    let report = fs::read_to_string(r2.join("corrupted-files.txt")).unwrap();
    assert!(report.contains("generation 2"), "{report}");
    assert!(report.contains("modify-mtime.txt"), "{report}");
    assert_eq!(
        fs::read(r2.join("photos/2025.raw")).unwrap(),
        fs::read(src.join("photos/2025.raw")).unwrap()
    );
    assert_eq!(
        fs::read(r2.join("photos/2024.raw")).unwrap(),
        fs::read(src.join("photos/2024.raw")).unwrap()
    );

    // --generation 1 restores the first state.
    let r1 = t.path().join("r1");
    expect_code(&extract(&imgs, &r1, &["--generation", "1"]), 0);
    assert_eq!(fs::read(r1.join("to-delete.txt")).unwrap(), b"bye");
    assert_eq!(
        fs::read(r1.join("modify-same-mtime.txt")).unwrap(),
        b"AAAAAAAAA"
    );
    assert!(!r1.join("new").exists());
}

#[test]
fn unchanged_tree_writes_nothing_unless_allowed() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"a");
    let out1 = t.path().join("out1");
    expect_code(&create_gen(&src, &out1, None, &[]), 0);
    let out2 = t.path().join("out2");
    let o = create_gen(&src, &out2, Some(&out1), &[]);
    expect_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Nothing changed"));
    assert!(!out2.join("images").exists());
    expect_code(&create_gen(&src, &out2, Some(&out1), &["--allow-empty"]), 0);
    assert!(out2.join("chain-gen2.catalog").is_file());
}

#[test]
fn wrong_bases_are_refused_and_out_untouched() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"a");
    let out1 = t.path().join("out1");
    expect_code(&create_gen(&src, &out1, None, &[]), 0);
    let cat = out1.join("chain-gen1.catalog");
    let out2 = t.path().join("out2");
    // Wrong -n.
    let o = create(
        &src,
        &out2,
        "other",
        &["-b", "32M", "-y", "--base", cat.to_str().unwrap()],
    );
    expect_code(&o, 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("same -n"));
    // Truncated catalog.
    let bad = t.path().join("chain-gen1.catalog");
    let raw = fs::read(&cat).unwrap();
    fs::write(&bad, &raw[..raw.len() / 2]).unwrap();
    expect_code(&create_gen(&src, &out2, Some(&bad), &[]), 3);
    // Not a catalog at all.
    fs::write(&bad, b"junk").unwrap();
    expect_code(&create_gen(&src, &out2, Some(&bad), &[]), 3);
    // A directory without catalogs.
    expect_code(&create_gen(&src, &out2, Some(t.path()), &[]), 3);
    assert!(!out2.exists(), "OUT touched");
    // A generation that already exists in OUT.
    write(&src.join("b.txt"), b"b");
    expect_code(&create_gen(&src, &out2, Some(&out1), &[]), 0);
    write(&src.join("c.txt"), b"c");
    expect_code(&create_gen(&src, &out2, Some(&out1), &[]), 3);
}

#[test]
fn min_last_disc_fill_defers_the_newest_files() {
    let t = tmp();
    let src = t.path().join("src");
    // About 1.2 discs of incompressible data at -b 32M (≈ 24 MiB of data per disc: a 32 MiB
    // image needs ≈ 21 % parity for -r 10, FORMAT.md §3.5); the newest files are the small ones.
    for i in 0..4 {
        let p = src.join(format!("old/{i}.bin"));
        write(&p, &noise(5 << 20, 40 + i));
        set_mtime(&p, 1_600_000_000 + i as i64, 0);
    }
    for i in 0..4 {
        let p = src.join(format!("new/{i}.bin"));
        write(&p, &noise(5 << 19, 60 + i));
        set_mtime(&p, 1_700_000_000 + i as i64, 0);
    }
    let out = t.path().join("out");
    let o = create_gen(
        &src,
        &out,
        None,
        &["--min-last-disc-fill", "60", "-c", "none"],
    );
    expect_code(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("NOT archived"), "{err}");
    let deferred = fs::read_to_string(out.join("deferred-files.txt")).unwrap();
    assert!(deferred.contains("new/3.bin"), "{deferred}");
    assert!(!deferred.contains("old/"), "{deferred}");
    assert_eq!(images(&out).len(), 1);
    // The deferred files are new in the next generation.
    let out2 = t.path().join("out2");
    expect_code(&create_gen(&src, &out2, Some(&out), &[]), 0);
    let mut imgs = images(&out);
    imgs.extend(images(&out2));
    let r = t.path().join("r");
    expect_code(&extract(&imgs, &r, &[]), 0);
    assert_same_tree(&src, &r);
}

#[test]
fn pack_with_puts_the_next_generation_on_the_unburned_last_disc() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"generation one");
    write(&src.join("photo.raw"), &noise(2 << 20, 8));
    let out1 = t.path().join("out1");
    expect_code(&create_gen(&src, &out1, None, &[]), 0);
    let old = images(&out1)[0].clone();
    let old_bytes = fs::read(&old).unwrap();
    write(&src.join("b.txt"), b"generation two");
    fs::remove_file(src.join("a.txt")).unwrap();
    let out2 = t.path().join("out2");
    let o = create(
        &src,
        &out2,
        "chain",
        &["-b", "32M", "-y", "--pack-with", old.to_str().unwrap()],
    );
    expect_code(&o, 0);
    assert_eq!(
        fs::read(&old).unwrap(),
        old_bytes,
        "the packed image must not change"
    );
    let packed = images(&out2);
    assert_eq!(packed.len(), 1);
    expect_code(&bd(&["verify", packed[0].to_str().unwrap()]), 0);
    // The combined disc alone restores generation 2's state (and generation 1's with --generation).
    let r = t.path().join("r");
    expect_code(&extract(&packed, &r, &[]), 0);
    assert_same_tree(&src, &r);
    let r1 = t.path().join("r1");
    expect_code(&extract(&packed, &r1, &["--generation", "1"]), 0);
    assert_eq!(fs::read(r1.join("a.txt")).unwrap(), b"generation one");
    // A disc that is not the last of its generation cannot be packed.
    let junk = t.path().join("junk.iso");
    fs::write(&junk, noise(1 << 20, 1)).unwrap();
    let o = create(
        &src,
        &t.path().join("o3"),
        "chain",
        &["-b", "32M", "-y", "--pack-with", junk.to_str().unwrap()],
    );
    expect_code(&o, 3);
}
