//! Our images as other tools see them: files extracted by xorriso (as from a mounted disc) restore
//! through `extract` from a directory, and with `zstd -d | tar -x` alone.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn osirrox(img: &Path, to: &Path) {
    let o = Command::new("xorriso")
        .args([
            "-osirrox",
            "on",
            "-indev",
            img.to_str().unwrap(),
            "-extract",
            "/",
            to.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn sample(t: &Path) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let src = t.join("src");
    write(
        &src.join("text/log.txt"),
        "some log line\n".repeat(200_000).as_bytes(),
    );
    write(&src.join("raw/a.bin"), &noise(36 << 20, 4));
    write(&bpath(&src, b"odd \xff name.txt"), b"non-UTF-8");
    std::os::unix::fs::symlink("text/log.txt", src.join("link")).unwrap();
    let out = t.join("out");
    let o = create(&src, &out, "orc", &["-b", "32M", "-y", "-q"]);
    expect_code(&o, 0);
    let imgs = images(&out);
    assert!(imgs.len() >= 2);
    (src, imgs)
}

#[test]
#[ignore = "needs xorriso (Debian package xorriso) to copy discs out; CI runs it"]
fn discs_copied_out_by_xorriso_restore_from_directories() {
    require(&["xorriso"]);
    let t = tmp();
    let (src, imgs) = sample(t.path());
    let discs = t.path().join("discs");
    for (i, img) in imgs.iter().enumerate() {
        osirrox(img, &discs.join(format!("disc{i}")));
    }
    // A directory of disc directories (as copied from several mounted discs).
    let r = t.path().join("r");
    expect_code(
        &bd(&[
            "extract",
            "-o",
            r.to_str().unwrap(),
            discs.to_str().unwrap(),
        ]),
        0,
    );
    assert_same_tree(&src, &r);
    // One disc directory given directly lists its own files, and verifies.
    let o = bd(&["list", discs.join("disc0").to_str().unwrap()]);
    expect_code(&o, 0);
    expect_code(&bd(&["verify", discs.join("disc0").to_str().unwrap()]), 0);
    // A damaged data part in a disc directory is repaired through the FEC file beside it.
    let part = fs::read_dir(discs.join("disc0/orc-gen1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with(".tar.zst"))
        .unwrap();
    let f = fs::OpenOptions::new().write(true).open(&part).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 100_000], 300_000).unwrap();
    expect_code(&bd(&["verify", discs.join("disc0").to_str().unwrap()]), 1);
    let r2 = t.path().join("r2");
    expect_code(
        &bd(&[
            "extract",
            "-o",
            r2.to_str().unwrap(),
            discs.to_str().unwrap(),
        ]),
        0,
    );
    assert_same_tree(&src, &r2);
}

#[test]
#[ignore = "needs xorriso and zstd (Debian packages); CI runs it"]
fn standard_tools_alone_restore_a_generation() {
    require(&["xorriso", "zstd", "tar"]);
    let t = tmp();
    let (src, imgs) = sample(t.path());
    let gen = t.path().join("gen");
    fs::create_dir_all(&gen).unwrap();
    for (i, img) in imgs.iter().enumerate() {
        let d = t.path().join(format!("d{i}"));
        osirrox(img, &d);
        for e in fs::read_dir(d.join("orc-gen1")).unwrap() {
            let p = e.unwrap().path();
            if p.to_str().unwrap().ends_with(".tar.zst") {
                fs::copy(&p, gen.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let r = t.path().join("r");
    fs::create_dir_all(&r).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && cat orc-gen1.*.tar.zst | zstd -dq | tar -xf - -C {}",
            gen.display(),
            r.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert_same_tree(&src, &r);
}
