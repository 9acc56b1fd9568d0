//! Incremental generations decide "unchanged" by size, mtime, ctime and inode, confirm a
//! changed ctime/inode by content hash (#19), and every catalog names the discs of earlier
//! generations holding its entries (the carried disc map, FORMAT.md §6.1).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bd_archive::format::catalog::Catalog;
use bd_archive::format::records::{decode_record, encode_record, RecordIdentity, CATALOG_MAGIC};
use serde_json::Value;

use crate::common::*;

fn gen(src: &Path, out: &Path, base: Option<&Path>, extra: &[&str]) -> std::process::Output {
    let mut a = vec!["-b", "32M", "-y", "-q", "-c", "none"];
    if let Some(b) = base {
        a.extend(["--base", b.to_str().unwrap()]);
    }
    a.extend_from_slice(extra);
    create(src, out, "chg", &a)
}

/// The "changes" of `create --dry-run --json` against `base`.
fn changes(src: &Path, out: &Path, base: &Path) -> Value {
    let o = gen(
        src,
        out,
        Some(base),
        &["--dry-run", "--json", "--allow-empty"],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| {
        panic!("{e}: {}", stdout(&o));
    });
    v["changes"].clone()
}

/// `list --json` of `sources`: path → entry.
fn listing(sources: &[&Path]) -> std::collections::BTreeMap<String, Value> {
    let mut a = vec!["list", "--json"];
    a.extend(sources.iter().map(|p| p.to_str().unwrap()));
    let o = bd(&a);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn count(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

#[test]
fn touch_r_edit_is_stored_chmod_is_confirmed_by_hash() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("edited.txt"), &[b'A'; 4096]);
    write(&src.join("chmod.txt"), b"mode only");
    write(&src.join("same.txt"), b"untouched");
    write(&src.join("big.bin"), &noise(100_000, 5));
    let out1 = t.path().join("out1");
    expect_code(&gen(&src, &out1, None, &[]), 0);
    let cat1 = out1.join("chg-gen1.catalog");

    // An edit that keeps size and mtime (`touch -r`), and a chmod.
    let edited = src.join("edited.txt");
    let before = fs::metadata(&edited).unwrap();
    fs::write(&edited, [b'B'; 4096]).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        set_mtime(&edited, before.mtime(), before.mtime_nsec());
    }
    fs::set_permissions(src.join("chmod.txt"), fs::Permissions::from_mode(0o600)).unwrap();

    let out2 = t.path().join("out2");
    let c = changes(&src, &out2, &cat1);
    assert_eq!(count(&c, "changed"), 1, "{c}");
    assert_eq!(count(&c, "metadata_only"), 1, "{c}");
    assert_eq!(
        count(&c, "hashed"),
        2,
        "only the two files whose ctime moved: {c}"
    );
    assert_eq!(count(&c, "bytes_to_store"), 4096, "{c}");
    expect_code(&gen(&src, &out2, Some(&cat1), &[]), 0);

    let cat2 = out2.join("chg-gen2.catalog");
    let l = listing(&[&cat2]);
    assert_eq!(l["edited.txt"]["generation"], 2, "edit kept size and mtime");
    assert_eq!(l["chmod.txt"]["generation"], 1, "chmod stored again");
    assert_eq!(l["chmod.txt"]["mode"], "600", "new mode not recorded");
    assert_eq!(l["same.txt"]["generation"], 1);
    assert_eq!(l["big.bin"]["generation"], 1);

    // Both generations restore the current tree, the new mode included.
    let restored = t.path().join("restored");
    let mut a = vec!["extract", "-o", restored.to_str().unwrap()];
    let imgs: Vec<PathBuf> = images(&out1).into_iter().chain(images(&out2)).collect();
    a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    expect_code(&bd(&a), 0);
    assert_same_tree(&src, &restored);

    // Generation 2 recorded the new stamps: nothing is hashed, nothing changed.
    let out3 = t.path().join("out3");
    let c = changes(&src, &out3, &cat2);
    assert_eq!(count(&c, "hashed"), 0, "{c}");
    let o = gen(&src, &out3, Some(&cat2), &[]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("Nothing changed"), "{}", stdout(&o));

    // --checksum still hashes every file.
    let o = gen(
        &src,
        &out3,
        Some(&cat2),
        &["--checksum", "--dry-run", "--json", "--allow-empty"],
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(count(&v["changes"], "hashed"), 4, "{v}");
}

#[test]
fn a_tree_copied_with_cp_a_is_not_stored_again() {
    require(&["cp"]);
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a/one.txt"), b"one");
    write(&src.join("a/two.bin"), &noise(200_000, 9));
    write(&src.join("b/three.txt"), b"three");
    std::os::unix::fs::symlink("../a/one.txt", src.join("b/link")).unwrap();
    let out1 = t.path().join("out1");
    expect_code(&gen(&src, &out1, None, &[]), 0);

    let copy = t.path().join("copy");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let out2 = t.path().join("out2");
    let cat1 = out1.join("chg-gen1.catalog");
    let c = changes(&copy, &out2, &cat1);
    assert_eq!(count(&c, "hashed"), 3, "every file has a new inode: {c}");
    assert_eq!(
        (
            count(&c, "new"),
            count(&c, "changed"),
            count(&c, "bytes_to_store")
        ),
        (0, 0, 0),
        "{c}"
    );
    let o = gen(&copy, &out2, Some(&cat1), &[]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("Nothing changed"), "{}", stdout(&o));
}

/// The format-version-1 golden image (tests/fixtures/v1) decompressed into `dir`.
fn v1_image(dir: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/gen1.iso.zst");
    let bytes = zstd::decode_all(&fs::read(fixture).unwrap()[..]).unwrap();
    let img = dir.join("golden-v1.iso");
    fs::write(&img, bytes).unwrap();
    img
}

#[test]
fn a_version_1_generation_restores_and_serves_as_base() {
    let t = tmp();
    let img = v1_image(t.path());
    expect_code(&bd(&["verify", img.to_str().unwrap()]), 0);
    let tree = t.path().join("tree");
    expect_code(
        &bd(&[
            "extract",
            "-o",
            tree.to_str().unwrap(),
            img.to_str().unwrap(),
        ]),
        0,
    );
    let sums = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/gen1.sha256"),
    )
    .unwrap();
    for line in sums.lines() {
        let (hash, path) = line.split_once("  ").unwrap();
        let data = fs::read(tree.join(path.trim_start_matches("./"))).unwrap();
        let got: String = <sha2::Sha256 as sha2::Digest>::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, hash, "{path}");
    }

    // Version-1 entries have no stamps: every file with data is confirmed by hash, none stored.
    let out2 = t.path().join("out2");
    let o = create(
        &tree,
        &out2,
        "golden",
        &[
            "-b",
            "32M",
            "-y",
            "--base",
            img.to_str().unwrap(),
            "--dry-run",
            "--json",
            "--allow-empty",
        ],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = &v["changes"];
    assert_eq!(count(c, "hashed"), 4, "{c}");
    assert_eq!(
        (count(c, "changed"), count(c, "bytes_to_store")),
        (0, 0),
        "{c}"
    );

    // One real change: only it is stored; the rest points at the version-1 generation, whose
    // disc the new catalog names by itself (its map was built from the v1 chunk table).
    write(&tree.join("docs/numbers.txt"), b"changed in generation 2\n");
    expect_code(
        &create(
            &tree,
            &out2,
            "golden",
            &["-b", "32M", "-y", "-q", "--base", img.to_str().unwrap()],
        ),
        0,
    );
    let l = listing(&[&out2.join("golden-gen2.catalog")]);
    assert_eq!(l["docs/numbers.txt"]["holder"], "g2:d1");
    assert_eq!(l["docs/a.txt"]["holder"], "g1:d1");
    assert_eq!(l["photos/noise.raw"]["holder"], "g1:d1");
}

#[test]
fn the_newest_catalog_alone_names_the_discs_of_every_generation() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..10 {
        write(
            &src.join(format!("g1/f{i:02}.bin")),
            &noise(4_000_000, 40 + i),
        );
    }
    let out1 = t.path().join("out1");
    expect_code(&gen(&src, &out1, None, &[]), 0);
    assert!(images(&out1).len() >= 2, "generation 1 needs two discs");
    write(&src.join("g2.txt"), b"added in generation 2");
    let out2 = t.path().join("out2");
    expect_code(&gen(&src, &out2, Some(&out1), &[]), 0);
    write(&src.join("g3.txt"), b"added in generation 3");
    let out3 = t.path().join("out3");
    expect_code(&gen(&src, &out3, Some(&out2), &[]), 0);
    let cats: Vec<PathBuf> = (1..=3)
        .map(|g| [&out1, &out2, &out3][g - 1].join(format!("chg-gen{g}.catalog")))
        .collect();

    // The third catalog alone says what generation 1's own catalog says about its entries.
    let own1 = listing(&[&cats[0]]);
    let alone = listing(&[&cats[2]]);
    let mut on_disc_2 = 0;
    for (path, e) in &alone {
        match e["generation"].as_u64().unwrap() {
            1 => {
                assert_eq!(e["discs"], own1[path]["discs"], "{path}");
                assert!(!e["discs"].as_array().unwrap().is_empty(), "{path}");
                on_disc_2 += usize::from(e["discs"].as_array().unwrap().contains(&2.into()));
            }
            2 | 3 => assert_eq!(e["discs"], serde_json::json!([1]), "{path}"),
            g => panic!("{path}: generation {g}"),
        }
    }
    assert!(on_disc_2 > 0, "no entry of generation 1 on its disc 2");
    assert_eq!(alone["g2.txt"]["holder"], "g2:d1");
    assert_eq!(alone["g3.txt"]["holder"], "g3:d1");

    // The text listing of the newest catalog alone equals the one with every catalog given.
    let text = |cats: &[&PathBuf]| {
        let mut a = vec!["list"];
        a.extend(cats.iter().map(|p| p.to_str().unwrap()));
        let o = bd(&a);
        expect_code(&o, 0);
        stdout(&o)
    };
    let newest = text(&[&cats[2]]);
    assert_eq!(newest, text(&[&cats[0], &cats[1], &cats[2]]));
    assert!(
        newest.contains(" g1:d2 ") || newest.contains(" g1:d1,2 "),
        "{newest}"
    );

    // extract without generation 1 names the discs to fetch from the newest catalog's map;
    // with only its first disc (not the one holding its catalog), the missing disc.
    let newer: Vec<PathBuf> = images(&out2).into_iter().chain(images(&out3)).collect();
    let restore = |extra: &[PathBuf]| {
        let to = tmp();
        let dest = to.path().join("r");
        let mut a = vec!["extract", "-o", dest.to_str().unwrap()];
        a.extend(newer.iter().chain(extra).map(|p| p.to_str().unwrap()));
        let o = bd(&a);
        expect_code(&o, 1);
        stderr(&o)
    };
    let err = restore(&[]);
    assert!(
        err.contains("generation 1 is missing") && err.contains("(they are on g1:d1,2)"),
        "{err}"
    );
    let err = restore(&images(&out1)[..1]);
    assert!(
        err.contains("disc(s) [2] of generation 1 not given"),
        "{err}"
    );

    // A crafted map (valid checksums, a disc claiming chunks past its generation's stream)
    // is flagged, and its generation's discs are not named.
    let raw = fs::read(&cats[2]).unwrap();
    let (h, mut c): (_, Catalog) = decode_record(CATALOG_MAGIC, "catalog", &raw).unwrap();
    assert!(c.disc_map.iter().any(|s| s.generation == 1));
    let s = c.disc_map.iter_mut().find(|s| s.generation == 1).unwrap();
    s.chunk_count += 1000;
    let id = RecordIdentity { disc: 0, ..h.id };
    let bad = t.path().join("bad.catalog");
    fs::write(&bad, encode_record(CATALOG_MAGIC, id, &c).unwrap()).unwrap();
    let o = bd(&["list", "--json", bad.to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("disc map of generation 1"),
        "{}",
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    for e in v["entries"].as_array().unwrap() {
        if e["generation"] == 1 {
            assert_eq!(e["discs"], serde_json::json!([]), "{e}");
            assert_eq!(e["holder"], "g1");
        } else {
            assert_eq!(e["discs"], serde_json::json!([1]));
        }
    }
}

#[test]
fn the_golden_second_generation_names_the_first_generations_disc() {
    let t = tmp();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/gen2.iso.zst");
    let img = t.path().join("gen2.iso");
    fs::write(
        &img,
        zstd::decode_all(&fs::read(fixture).unwrap()[..]).unwrap(),
    )
    .unwrap();
    let l = listing(&[&img]);
    let kept: Vec<&Value> = l.values().filter(|e| e["generation"] == 1).collect();
    assert!(!kept.is_empty(), "{l:?}");
    for e in kept {
        assert_eq!(e["holder"], "g1:d1", "{e}");
    }
}
