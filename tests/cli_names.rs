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
