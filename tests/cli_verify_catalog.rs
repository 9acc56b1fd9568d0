//! `verify --catalog` (#19): a broken disc whose own index is destroyed has its lost files
//! listed from the generation's catalog — exactly the files `extract` cannot restore.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use bd_archive::disc::reader::find_disc_header;
use bd_archive::sector::FileSectorSource;
use bd_archive::util::xorshift::Xorshift64;

const SS: u64 = 2048;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Xorshift64::new(seed | 1);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

fn zero(img: &Path, lbas: impl Iterator<Item = u64>) {
    let f = fs::OpenOptions::new().write(true).open(img).unwrap();
    for l in lbas {
        f.write_all_at(&[0u8; SS as usize], l * SS).unwrap();
    }
}

/// A 2+-disc set of chain `name`: (root temp dir, OUT dir, catalog path).
fn set(name: &str, seed: u64) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..10 {
        write(
            &src.join(format!("f{i:02}.bin")),
            &noise(4_000_000, seed + i),
        );
    }
    let out = t.path().join("out");
    expect_code(&create(&src, &out, name, &["-b", "32M", "-y", "-q"]), 0);
    assert!(images(&out).len() >= 2, "expected a multi-disc set");
    let cat = out.join(format!("{name}-gen1.catalog"));
    assert!(cat.is_file());
    (t, out, cat)
}

/// Destroys disc 1's index and catalog copy and over half of its sectors (beyond its FEC).
fn break_disc_one(img: &Path) {
    let h = find_disc_header(&FileSectorSource::open(img).unwrap()).unwrap();
    let s = &h.sections[0];
    zero(img, s.index_lba..s.index_lba + s.index_bytes.div_ceil(SS));
    zero(
        img,
        s.catalog_lba..s.catalog_lba + s.catalog_bytes.div_ceil(SS),
    );
    let n = fs::metadata(img).unwrap().len() / SS;
    let mut r = Xorshift64::new(77);
    // 2n picks (~86 % of the sectors): far beyond the disc's FEC whatever its layout (one pick
    // per sector, ~63 %, left a nearly empty disc's worst stripe within 3 sectors of repairable
    // once FORMAT.md, which every disc carries, grew by a few sectors).
    let lbas: Vec<u64> = (0..2 * n)
        .map(|_| r.next_u64() % n)
        .filter(|&l| l >= 1024)
        .collect();
    zero(img, lbas.into_iter());
}

/// A set of chain `name` (as [`set`] makes it) whose disc 1 is then broken by
/// [`break_disc_one`]: (root temp dir, OUT dir, catalog path, the images in disc order).
fn broken_set(name: &str, seed: u64) -> (tempfile::TempDir, PathBuf, PathBuf, Vec<PathBuf>) {
    let (t, out, cat) = set(name, seed);
    let imgs = images(&out);
    break_disc_one(&imgs[0]);
    (t, out, cat, imgs)
}

fn lost_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("lost: "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn destroyed_index_lists_lost_files_from_the_catalog() {
    let (t, out, cat, imgs) = broken_set("vcat", 10);
    let img = imgs[0].to_str().unwrap();

    // Without a catalog: the hint, exit 2.
    let o = bd(&["verify", img]);
    expect_code(&o, 2);
    assert!(stdout(&o).contains("--catalog CAT"), "{}", stdout(&o));

    // With it: the lost files, exactly those extract cannot restore.
    let o = bd(&["verify", img, "--catalog", cat.to_str().unwrap()]);
    expect_code(&o, 2);
    let listed = lost_lines(&stdout(&o));
    assert!(!listed.is_empty(), "{}", stdout(&o));
    let restored = t.path().join("restored");
    let mut args = vec!["extract", "-o", restored.to_str().unwrap()];
    args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    expect_code(&bd(&args), 1);
    let mut corrupted: Vec<String> = fs::read_to_string(restored.join("corrupted-files.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().trim().to_string())
        .collect();
    corrupted.sort();
    assert_eq!(listed, corrupted);

    // JSON carries the same list.
    let o = bd(&["verify", img, "--catalog", cat.to_str().unwrap(), "--json"]);
    expect_code(&o, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut js: Vec<String> = v[0]["lost_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    js.sort();
    assert_eq!(js, listed);

    // The OUT dir as target finds the catalog beside images/.
    let o = bd(&["verify", out.to_str().unwrap()]);
    expect_code(&o, 2);
    assert_eq!(lost_lines(&stdout(&o)), listed);

    // All images of the set as targets: the catalog is read from the intact discs.
    let mut args = vec!["verify"];
    args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    let o = bd(&args);
    expect_code(&o, 2);
    assert_eq!(lost_lines(&stdout(&o)), listed);
}

#[test]
fn catalog_of_another_chain_is_refused() {
    let (_t, _, _, imgs) = broken_set("vcat", 20);
    let (_u, _, other) = set("other", 30);
    let o = bd(&[
        "verify",
        imgs[0].to_str().unwrap(),
        "--catalog",
        other.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(e.contains("--catalog") && e.contains("'other'"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn a_later_catalog_maps_the_disc_an_earlier_one_is_refused() {
    let (t, out, cat1, imgs) = broken_set("vcat", 40);
    write(&t.path().join("src/new.bin"), b"generation two");
    let out2 = t.path().join("out2");
    let base = out.to_str().unwrap();
    let src = t.path().join("src");
    expect_code(
        &create(
            &src,
            &out2,
            "vcat",
            &["-b", "32M", "-y", "-q", "--base", base],
        ),
        0,
    );
    let gen2 = out2.join("vcat-gen2.catalog");
    assert!(gen2.is_file());
    let img = imgs[0].to_str().unwrap();
    // Generation 2's disc map places files of its tree on generation 1's disc 1: all of
    // them are named (a superset of what generation 1's own catalog names as lost).
    let o = bd(&["verify", img, "--catalog", gen2.to_str().unwrap()]);
    expect_code(&o, 2);
    let out_text = stdout(&o);
    assert!(
        out_text.contains("generation 2's catalog places these files"),
        "{out_text}"
    );
    let from_map = lost_lines(&out_text);
    let exact = lost_lines(&stdout(&bd(&[
        "verify",
        img,
        "--catalog",
        cat1.to_str().unwrap(),
    ])));
    assert!(!exact.is_empty());
    for f in &exact {
        assert!(
            from_map.contains(f),
            "{f} not named from the map: {from_map:?}"
        );
    }
    // An earlier generation's catalog cannot describe a later disc: refused.
    let imgs2 = images(&out2);
    // This disc is small: its FEC may carry break_disc_one's random damage, depending on where
    // its files fall (the length of FORMAT.md moves them). So all of its file data and FEC
    // region go too, but for the FEC header copies (the disc must still be found as ours).
    let fec = bd_archive::fec::locate(&FileSectorSource::open(&imgs2[0]).unwrap(), None).unwrap();
    let f = fs::File::open(&imgs2[0]).unwrap();
    let keep: Vec<(u64, Vec<u8>)> = fec
        .layout
        .header_offsets()
        .iter()
        .map(|o| {
            let mut b = vec![0u8; SS as usize];
            f.read_exact_at(&mut b, (fec.region_lba + o) * SS).unwrap();
            (fec.region_lba + o, b)
        })
        .collect();
    break_disc_one(&imgs2[0]);
    zero(
        &imgs2[0],
        1024..fec.region_lba + fec.layout.region_sectors(),
    );
    let w = fs::OpenOptions::new().write(true).open(&imgs2[0]).unwrap();
    for (lba, b) in &keep {
        w.write_all_at(b, lba * SS).unwrap();
    }
    let o = bd(&[
        "verify",
        imgs2[0].to_str().unwrap(),
        "--catalog",
        cat1.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("generation 2") && e.contains("generation 1"),
        "{e}"
    );
}

#[test]
fn catalog_given_as_the_last_disc_or_a_directory_of_images() {
    let (t, out, cat) = set("vcat", 50);
    let imgs = images(&out);
    let last = t.path().join("last-disc.iso");
    fs::copy(imgs.last().unwrap(), &last).unwrap();
    break_disc_one(&imgs[0]);
    let img = imgs[0].to_str().unwrap();
    let with = |catalog: &Path| {
        let o = bd(&["verify", img, "--catalog", catalog.to_str().unwrap()]);
        expect_code(&o, 2);
        lost_lines(&stdout(&o))
    };
    let listed = with(&cat);
    assert!(!listed.is_empty());
    assert_eq!(with(&last), listed, "the last disc's image");
    assert_eq!(with(&out.join("images")), listed, "a directory of images");
    assert_eq!(with(&out), listed, "an OUT directory");
    // A directory without a catalog anywhere: refused, saying what to give.
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let o = bd(&["verify", img, "--catalog", empty.to_str().unwrap()]);
    expect_code(&o, 3);
    assert!(
        stderr(&o).contains("holds no bd-archive catalog"),
        "{}",
        stderr(&o)
    );
    // A disc that is not the generation's last holds no catalog either.
    let o = bd(&["verify", img, "--catalog", imgs[0].to_str().unwrap()]);
    expect_code(&o, 3);
}

/// A `--pack-with` disc holds two generations; its destroyed indexes are mapped through the
/// catalog of the generation packed onto it, not refused as "a disc of generation 1".
#[test]
fn a_packed_disc_is_mapped_through_its_newer_generation_catalog() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("first.txt"), b"generation 1");
    let out1 = t.path().join("out1");
    expect_code(&create(&src, &out1, "pk", &["-b", "32M", "-y", "-q"]), 0);
    for i in 0..8 {
        write(&src.join(format!("g2/f{i}.bin")), &noise(2_000_000, 60 + i));
    }
    let out2 = t.path().join("out2");
    let packed = images(&out1)[0].clone();
    let args = [
        "-b",
        "32M",
        "-y",
        "-q",
        "--pack-with",
        packed.to_str().unwrap(),
    ];
    expect_code(&create(&src, &out2, "pk", &args), 0);
    let img = images(&out2)[0].clone();
    let h = find_disc_header(&FileSectorSource::open(&img).unwrap()).unwrap();
    assert_eq!(h.sections.len(), 2);
    for s in &h.sections {
        zero(&img, s.index_lba..s.index_lba + s.index_bytes.div_ceil(SS));
        let c = s.catalog_lba..s.catalog_lba + s.catalog_bytes.div_ceil(SS);
        zero(&img, c);
    }
    break_disc_one(&img);
    let cat = out2.join("pk-gen2.catalog");
    let o = bd(&[
        "verify",
        img.to_str().unwrap(),
        "--catalog",
        cat.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    let lost = lost_lines(&stdout(&o));
    assert!(lost.iter().any(|l| l.starts_with("g2/f")), "{}", stdout(&o));
}
