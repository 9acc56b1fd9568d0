//! Files of 4 GiB and more in images made by other tools, as the seed wrote its slices
//! (`mkisofs -iso-level 3 -udf`): several ISO9660 directory records with the multi-extent flag,
//! several UDF allocation descriptors. Read as one file by our image reader and by seed `verify`.
//!
//! Debian's genisoimage refuses files > 4 GiB - 1 in ISO9660 (it has no multi-extent support); with
//! `-allow-limited-size` it records the full size in UDF only, the layout we read first. xorriso
//! writes real ISO9660 multi-extent records. Everything stays sparse: the source file is a hole
//! with a few marks, the images are written with holes (allocated blocks are checked).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{bd, code, require, tmp};
use bd_archive::image::{read_filesystem_with, read_iso9660, FsKind, ReadLimits};
use bd_archive::sector::FileSectorSource;
use sha2::{Digest, Sha512};

const BIG: u64 = (4 << 30) + 24 * (1 << 20) + 123;
/// (offset, bytes) written into the otherwise empty big file.
const MARKS: [(u64, &[u8]); 4] = [
    (0, b"first bytes"),
    ((4 << 30) - 5, b"across the 4 GiB line"),
    ((1 << 30) - 3, b"across a UDF extent"),
    (BIG - 7, b"the end"),
];

fn make_source(dir: &Path, name: &str) {
    fs::create_dir_all(dir).unwrap();
    let f = File::create(dir.join(name)).unwrap();
    f.set_len(BIG).unwrap();
    for (off, b) in MARKS {
        f.write_all_at(b, off).unwrap();
    }
    fs::write(dir.join("small.txt"), b"small\n").unwrap();
}

/// Runs an image maker writing to stdout and stores its output with holes for zero blocks.
fn sparse_image(cmd: &mut Command, out: &Path) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut f = File::create(out).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            let k = so.read(&mut buf[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            f.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    f.set_len(len).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = fs::metadata(out).unwrap();
    assert!(m.len() > BIG);
    assert!(
        m.blocks() * 512 < 64 << 20,
        "image should stay sparse: {} bytes allocated",
        m.blocks() * 512
    );
}

/// Reads the big file through its (lba, size) and checks its size and every mark.
fn check_big(img: &Path, kind: Option<FsKind>, name: &str) {
    let src = FileSectorSource::open(img).unwrap();
    let (fs, used) = match kind {
        None => read_filesystem_with(&src, &ReadLimits::default()).unwrap(),
        Some(k) => read_iso9660(&src, &ReadLimits::default(), k).unwrap(),
    };
    let f = fs
        .files
        .iter()
        .find(|f| f.path.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("{name} not in {:?} ({used:?})", fs.files));
    assert_eq!(f.size, BIG, "{used:?}");
    let image = File::open(img).unwrap();
    for (off, want) in MARKS {
        let mut got = vec![0u8; want.len()];
        image.read_exact_at(&mut got, f.lba * 2048 + off).unwrap();
        assert_eq!(got, want, "{used:?} at {off}");
    }
    assert!(fs
        .files
        .iter()
        .any(|f| f.path.eq_ignore_ascii_case("small.txt")));
}

/// Seed `verify` hashes the > 4 GiB slice inside the image against its sha512 sidecar (a match
/// needs every byte, the marks past 4 GiB included, read from the right place).
fn seed_verify(img: &Path, expect_ok: bool) {
    let o = bd(&["verify", img.to_str().unwrap()]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if expect_ok {
        assert_eq!(code(&o), 0, "{out}");
        assert!(out.contains("big-gen1.0001.dar: OK (sha512)"), "{out}");
    } else {
        assert_eq!(code(&o), 2, "{out}");
    }
}

fn source_with_sidecar(t: &Path) -> std::path::PathBuf {
    let src = t.join("src");
    let name = "big-gen1.0001.dar";
    make_source(&src, name);
    let mut h = Sha512::new();
    let mut r = File::open(src.join(name)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    fs::write(
        src.join(format!("{name}.sha512")),
        format!("{hex}  {name}\n"),
    )
    .unwrap();
    src
}

#[test]
#[ignore = "needs genisoimage and xorriso (Debian packages) to make the images; CI runs it"]
fn big_files_from_genisoimage_udf_and_xorriso_iso9660() {
    require(&["genisoimage", "xorriso"]);
    let t = tmp();
    let src = source_with_sidecar(t.path());
    let name = "big-gen1.0001.dar";
    // As the seed: -iso-level 3 -udf (plus what Debian's genisoimage needs for > 4 GiB).
    let img = t.path().join("g.iso");
    sparse_image(
        Command::new("genisoimage")
            .args([
                "-quiet",
                "-iso-level",
                "3",
                "-udf",
                "-allow-limited-size",
                "-V",
                "SEED",
                "-input-charset",
                "utf-8",
                "-o",
                "-",
            ])
            .arg(&src),
        &img,
    );
    check_big(&img, None, name); // UDF: five allocation descriptors
    seed_verify(&img, true);
    fs::remove_file(&img).unwrap();
    let img = t.path().join("x.iso");
    sparse_image(
        Command::new("xorriso")
            .args([
                "-as",
                "mkisofs",
                "-quiet",
                "-iso-level",
                "3",
                "-R",
                "-V",
                "SEED",
                "-o",
                "-",
            ])
            .arg(&src),
        &img,
    );
    // Two multi-extent directory records, under Rock Ridge and plain ISO9660 names.
    check_big(&img, Some(FsKind::IsoRockRidge), name);
    check_big(&img, Some(FsKind::Iso), "BIG_GEN1_0001.DAR");
    check_big(&img, None, name);
}
