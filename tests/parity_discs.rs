//! Parity discs (`create --parity-discs P`, FORMAT.md §10): the set's images, each parity disc an
//! ordinary disc that verifies on its own, and rebuilds of missing or broken data discs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{bd, create, expect_code, images, noise, stdout, write};

/// A set of at least 4 data discs (32 MiB media, -c none) with `p` parity discs; returns
/// (tempdir, source, OUT, data images, parity images).
pub fn parity_set(
    p: u32,
) -> (
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    Vec<PathBuf>,
    Vec<PathBuf>,
) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for i in 0..9u64 {
        write(&src.join(format!("f{i}.bin")), &noise(8 << 20, 100 + i));
    }
    write(&src.join("notes/readme.txt"), b"parity test\n");
    let out = t.path().join("out");
    let ps = p.to_string();
    let o = create(
        &src,
        &out,
        "par",
        &[
            "-b",
            "32M",
            "-r",
            "10",
            "-c",
            "none",
            "--parity-discs",
            &ps,
            "-y",
        ],
    );
    expect_code(&o, 0);
    let all = images(&out);
    let (parity, data): (Vec<PathBuf>, Vec<PathBuf>) = all
        .into_iter()
        .partition(|i| i.to_string_lossy().contains("-parity"));
    assert!(data.len() >= 4, "at least 4 data discs: {data:?}");
    assert_eq!(parity.len(), p as usize);
    (t, src, out, data, parity)
}

#[test]
fn parity_disc_is_an_ordinary_disc_that_verifies_alone() {
    let (_t, _src, out, data, parity) = parity_set(2);
    for (i, img) in parity.iter().enumerate() {
        let name = img.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("par-gen0001-parity{:04}.iso", i + 1));
        // The same medium as the data discs.
        assert!(fs::metadata(img).unwrap().len() <= 32 << 20);
        let o = bd(&["verify", img.to_str().unwrap()]);
        expect_code(&o, 0);
        assert!(stdout(&o).contains("parity disc"), "{}", stdout(&o));
    }
    // Data discs stay readable by a version-1 reader; parity discs need version 2.
    let head = |p: &Path| fs::read(p).unwrap()[8..12].to_vec();
    assert_eq!(head(&data[0]), vec![2, 0, 1, 0]);
    assert_eq!(head(&parity[0]), vec![2, 0, 2, 0]);
    // The catalog copy is byte-identical to the last data disc's, under the same name.
    let o = bd(&["verify", out.to_str().unwrap()]);
    expect_code(&o, 0);
}
