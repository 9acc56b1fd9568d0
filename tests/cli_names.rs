//! Image names unique within a chain (`<name>-gen<GGGG>-disc<NNNN>.iso`): a shelf folder holding
//! several generations keeps every image and restores the newest; old `disc_NNNN.iso` OUT
//! directories still resume, verify and extract.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Generation 1 (two 32 MiB discs) in `t/out1`, generation 2 (`--base out1`) in `t/out2`;
/// returns the source as generation 2 saw it.
fn two_generations(t: &Path) -> PathBuf {
    let src = t.join("src");
    write(&src.join("big.bin"), &noise(40 << 20, 3));
    write(&src.join("notes.txt"), b"generation 1");
    let out1 = t.join("out1");
    expect_code(&create(&src, &out1, "shelf", &["-b", "32M", "-y", "-q"]), 0);
    write(&src.join("notes.txt"), b"generation 2, longer");
    write(&src.join("new.txt"), b"added in generation 2");
    let out2 = t.join("out2");
    let base = out1.to_str().unwrap();
    expect_code(
        &create(
            &src,
            &out2,
            "shelf",
            &["-b", "32M", "-y", "-q", "--base", base],
        ),
        0,
    );
    src
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn generations_copied_into_one_folder_keep_every_image_and_restore_the_newest() {
    let t = tmp();
    let src = two_generations(t.path());
    let (g1, g2) = (
        images(&t.path().join("out1")),
        images(&t.path().join("out2")),
    );
    assert_eq!(
        file_names(&g1),
        ["shelf-gen0001-disc0001.iso", "shelf-gen0001-disc0002.iso"]
    );
    assert_eq!(file_names(&g2), ["shelf-gen0002-disc0001.iso"]);
    // The shelf: every image of the chain copied into one folder, as a user would.
    let shelf = t.path().join("shelf");
    fs::create_dir(&shelf).unwrap();
    for img in g1.iter().chain(&g2) {
        fs::copy(img, shelf.join(img.file_name().unwrap())).unwrap();
    }
    assert_eq!(
        fs::read_dir(&shelf).unwrap().count(),
        3,
        "an image was overwritten"
    );
    let restored = t.path().join("restored");
    let o = bd(&[
        "extract",
        "-o",
        restored.to_str().unwrap(),
        shelf.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    assert_same_tree(&src, &restored);
    expect_code(&bd(&["verify", shelf.to_str().unwrap()]), 0);
}

#[test]
fn an_out_directory_with_old_image_names_still_verifies_and_extracts() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.bin"), &noise(40 << 20, 9));
    let out = t.path().join("out");
    expect_code(&create(&src, &out, "old", &["-b", "32M", "-y", "-q"]), 0);
    for (i, img) in images(&out).iter().enumerate() {
        fs::rename(img, out.join(format!("images/disc_{:04}.iso", i + 1))).unwrap();
    }
    assert_eq!(
        file_names(&images(&out)),
        ["disc_0001.iso", "disc_0002.iso"]
    );
    expect_code(&bd(&["verify", out.to_str().unwrap()]), 0);
    let restored = t.path().join("restored");
    expect_code(
        &bd(&[
            "extract",
            "-o",
            restored.to_str().unwrap(),
            out.to_str().unwrap(),
        ]),
        0,
    );
    assert_same_tree(&src, &restored);
    // An OUT holding old-named images (and no catalog) is still refused as not empty.
    fs::remove_file(out.join("old-gen1.catalog")).unwrap();
    let o = create(&src, &out, "old", &["-b", "32M", "-y", "-q"]);
    expect_code(&o, 3);
    assert!(
        stderr(&o).contains("already holds disc images (disc_000"),
        "{}",
        stderr(&o)
    );
}

/// Two create runs of one generation within the same second (same chain, generation and
/// creation time — built through the library so the clock cannot separate them) are two sets:
/// extract, list and verify refuse the mix naming both, `--set` picks one by its short id.
#[test]
fn two_sets_created_in_the_same_second_are_told_apart() {
    use crate::common::hostile::{build, file, Recipe};
    let t = tmp();
    let run = |dir: &str, set_id: [u8; 16], text: &[u8]| {
        let recipe = Recipe {
            set_id,
            ..Recipe::default()
        };
        build(&t.path().join(dir), &[file(b"a.txt", text)], recipe)
    };
    let a = run("a", [0xa1; 16], b"run A");
    let b = run("b", [0xb2; 16], b"run B, longer");
    let (ia, ib) = (a[0].to_str().unwrap(), b[0].to_str().unwrap());
    let x = t.path().join("x");
    let o = bd(&["extract", "-o", x.to_str().unwrap(), ia, ib]);
    expect_code(&o, 3);
    let err = stderr(&o);
    let sets = set_ids(&err);
    assert_eq!(sets.len(), 2, "{err}");
    assert!(!x.join("a.txt").exists(), "nothing is restored from a mix");
    let b_id = &sets
        .iter()
        .find(|(_, rest)| rest.contains(ib))
        .expect("run B named")
        .0;
    assert_eq!(b_id, "b2b2b2b2", "{err}");
    let o = bd(&["extract", "-o", x.to_str().unwrap(), ia, ib, "--set", b_id]);
    expect_code(&o, 0);
    assert_eq!(fs::read(x.join("a.txt")).unwrap(), b"run B, longer");
    // Any prefix of 4+ hex digits that names one set picks it; one naming none is refused.
    expect_code(&bd(&["list", ia, ib, "--set", "A1A1"]), 0);
    expect_code(&bd(&["list", ia, ib]), 3);
    let y = t.path().join("y");
    expect_code(
        &bd(&[
            "extract",
            "-o",
            y.to_str().unwrap(),
            ia,
            ib,
            "--set",
            "c3c3",
        ]),
        3,
    );
    let o = bd(&["verify", ia, ib]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("different sets"), "{}", stderr(&o));
    let o = bd(&["verify", ia, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["set"], "a1".repeat(16));
    assert_eq!(v[0]["sections"][0]["generation"], 1);
}

/// A `--pack-with` disc holds two generations; both count when sets are checked. Generation 2
/// made twice — once onto its own disc (--base), once packed onto generation 1's last disc —
/// is two sets whichever section of the packed disc carries it, for verify as for extract;
/// the packed disc with the generation 1 disc it was packed onto is one chain, no conflict.
#[test]
fn a_packed_disc_is_matched_by_every_generation_it_holds() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"generation 1");
    let out1 = t.path().join("out1");
    expect_code(&create(&src, &out1, "pk", &["-b", "32M", "-y", "-q"]), 0);
    let last1 = images(&out1)[0].clone();
    write(&src.join("a.txt"), b"generation 2, on its own disc");
    let own = t.path().join("own");
    let base = ["--base", out1.to_str().unwrap()];
    expect_code(
        &create(
            &src,
            &own,
            "pk",
            &["-b", "32M", "-y", "-q", base[0], base[1]],
        ),
        0,
    );
    write(
        &src.join("a.txt"),
        b"generation 2, packed onto generation 1's disc",
    );
    let packed = t.path().join("packed");
    let pack = ["--pack-with", last1.to_str().unwrap()];
    expect_code(
        &create(
            &src,
            &packed,
            "pk",
            &["-b", "32M", "-y", "-q", pack[0], pack[1]],
        ),
        0,
    );
    let (l1, io, ip) = (&last1, &images(&own)[0], &images(&packed)[0]);
    let (l1, io, ip) = (
        l1.to_str().unwrap(),
        io.to_str().unwrap(),
        ip.to_str().unwrap(),
    );
    // The packed disc with the disc it was packed onto: one chain, one set per generation.
    expect_code(&bd(&["verify", l1, ip]), 0);
    // With the other generation 2: two sets of generation 2, for verify as for extract.
    let o = bd(&["verify", io, ip]);
    expect_code(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("generation 2") && err.contains("different sets"),
        "{err}"
    );
    let x = t.path().join("x");
    let o = bd(&["extract", "-o", x.to_str().unwrap(), io, ip]);
    expect_code(&o, 3);
    let sets = set_ids(&stderr(&o));
    let packed_set = &sets
        .iter()
        .find(|(_, rest)| rest.contains(ip))
        .expect("named")
        .0;
    let o = bd(&[
        "extract",
        "-o",
        x.to_str().unwrap(),
        io,
        ip,
        "--set",
        packed_set,
    ]);
    expect_code(&o, 0);
    assert_eq!(
        fs::read(x.join("a.txt")).unwrap(),
        b"generation 2, packed onto generation 1's disc"
    );
}
