//! Reading damaged discs through a drive (`verify -D`, `extract -D`), against the simulated MMC
//! drive (`-D sim:DIR`): unreadable and slow sectors, FEC-directed retries, ddrescue mapfiles
//! continued by a second drive, discs inserted one at a time in any order.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{json, Value};

const SS: u64 = 2048;

/// A 3-disc set (≈ 75 MB of mostly incompressible data at -b 32M) and the source tree.
fn three_disc_set(root: &Path) -> (PathBuf, PathBuf) {
    let src = root.join("src");
    write(&src.join("a/big1.bin"), &noise(30_000_000, 1));
    write(&src.join("a/big2.bin"), &noise(28_000_000, 2));
    write(
        &src.join("b/text.txt"),
        "some text\n".repeat(200_000).as_bytes(),
    );
    for i in 0..50 {
        write(
            &src.join(format!("c/small{i}.dat")),
            &noise(1000 + i * 37, 10 + i as u64),
        );
    }
    let out = root.join("out");
    let o = create(&src, &out, "drv", &["-b", "32M", "-y", "-q"]);
    expect_code(&o, 0);
    let imgs = images(&out);
    assert!(imgs.len() >= 3, "expected 3+ discs, got {}", imgs.len());
    (src, out)
}

/// A recorded (finalised) BD-R medium whose contents are a copy of `image`, with damage.
fn medium(dir: &Path, label: &str, image: &Path, damage: Value) -> Value {
    std::fs::copy(image, dir.join(format!("{label}.img"))).unwrap();
    let sectors = std::fs::metadata(image).unwrap().len() / SS;
    let mut m = json!({"label": label, "profile": "bd-r", "state": "complete", "written": sectors});
    if let (Some(m), Some(d)) = (m.as_object_mut(), damage.as_object()) {
        for (k, v) in d {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// A simulated drive in `dir` holding `media[0]` with the rest queued (one per tray close).
fn sim_drive(dir: &Path, media: Vec<Value>) -> String {
    let mut it = media.into_iter();
    let cfg = json!({"medium": it.next(), "queue": it.collect::<Vec<_>>()});
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("drive.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    format!("sim:{}", dir.display())
}

fn sim_clock_secs(dir: &Path) -> f64 {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("drive.json")).unwrap()).unwrap();
    v["clock_us"].as_u64().unwrap() as f64 / 1e6
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("commands.log")).unwrap_or_default()
}

/// 3 % of the disc unreadable: a few long scratches plus scattered bad clusters, the scratches
/// slow (2 s per sector per read, as a drive retrying internally).
fn three_percent_damage(sectors: u64) -> Value {
    let scratch = sectors / 100; // three scratches of 1 % each
    let mut unreadable = vec![];
    let mut slow = vec![];
    for k in 1..=3u64 {
        let a = sectors * k / 4;
        unreadable.push(json!([a, a + scratch]));
        slow.push(json!({"lba": [a, a + scratch], "ms": 2000}));
    }
    json!({"unreadable": unreadable, "slow": slow})
}

#[test]
fn verify_from_a_drive_with_three_percent_unreadable_is_repairable_in_bounded_time() {
    let t = tmp();
    let (_src, out) = three_disc_set(t.path());
    let img = &images(&out)[0];
    let sectors = std::fs::metadata(img).unwrap().len() / SS;
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let m = medium(&dir, "d1", img, three_percent_damage(sectors));
    let dev = sim_drive(&dir, vec![m]);
    let o = bd(&["verify", "-D", &dev, "--json"]);
    expect_code(&o, 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["health"], "repairable");
    assert!(v[0]["lost_data_sectors"].as_u64().unwrap() >= 3 * (sectors / 100));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("skipped after errors"), "{stderr}");
    // Bounded: without skipping, each of the ~3 % unreadable sectors would cost ≥ 2 s (> 1 000 s
    // of drive time here). With trimming + skipping a scratch costs a few reads.
    let secs = sim_clock_secs(&dir);
    let unreadable = 3 * (sectors / 100);
    assert!(
        secs < unreadable as f64 * 2.0 / 4.0,
        "simulated drive time {secs:.0} s for {unreadable} unreadable sectors"
    );
    // The FEC could rebuild everything: no sector was retried.
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[test]
fn extract_reads_discs_one_at_a_time_in_any_order_and_repairs_via_fec() {
    let t = tmp();
    let (src, out) = three_disc_set(t.path());
    let imgs = images(&out);
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let n = imgs.len();
    // Last disc first (it has the catalog), then the others backwards; disc 2 damaged.
    let mut media = vec![];
    for i in (0..n).rev() {
        let sectors = std::fs::metadata(&imgs[i]).unwrap().len() / SS;
        let damage = if i == 1 {
            three_percent_damage(sectors)
        } else {
            json!({})
        };
        media.push(medium(&dir, &format!("d{}", i + 1), &imgs[i], damage));
    }
    let dev = sim_drive(&dir, media);
    let restored = t.path().join("restored");
    let o = bd(&["extract", "-D", &dev, "-o", restored.to_str().unwrap()]);
    expect_code(&o, 0);
    assert_same_tree(&src, &restored);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("generation 1 disc {n}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Still needed: generation 1 disc(s) 1, 2"),
        "{stderr}"
    );
    assert!(stderr.contains("rebuildable from the FEC"), "{stderr}");
    // Tray: every disc ejected after reading; the copies are removed after a bit-exact restore.
    let ejects = log(&dir).matches("START_STOP_UNIT eject").count();
    assert!(ejects >= n, "{} ejects in\n{}", ejects, log(&dir));
    assert!(!restored.join(".bd-archive-work/discs").exists());
}

#[test]
fn extract_beyond_the_fec_reports_files_keeps_the_copies_and_exits_1() {
    let t = tmp();
    let (_src, out) = three_disc_set(t.path());
    let imgs = images(&out);
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let mut media = vec![];
    for (i, img) in imgs.iter().enumerate().rev() {
        let sectors = std::fs::metadata(img).unwrap().len() / SS;
        // Disc 1: a third of the disc unreadable, far over the 10 % budget.
        let damage = if i == 0 {
            json!({"unreadable": [[sectors / 3, 2 * sectors / 3]]})
        } else {
            json!({})
        };
        media.push(medium(&dir, &format!("d{}", i + 1), img, damage));
    }
    let dev = sim_drive(&dir, media);
    let restored = t.path().join("restored");
    let o = bd(&[
        "extract",
        "-D",
        &dev,
        "-o",
        restored.to_str().unwrap(),
        "--retries",
        "1",
    ]);
    expect_code(&o, 1);
    let report = std::fs::read_to_string(restored.join("corrupted-files.txt")).unwrap();
    assert!(report.contains("a/big1.bin"), "{report}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(
        stderr.contains("more is lost than the FEC can rebuild"),
        "{stderr}"
    );
    let kept = restored.join(".bd-archive-work/discs");
    assert!(kept.join("drv-gen0001-disc0001.map").is_file());
    // The mapfile is GNU ddrescue's format: status line, then pos/size/status blocks.
    let map = std::fs::read_to_string(kept.join("drv-gen0001-disc0001.map")).unwrap();
    assert!(
        map.lines()
            .any(|l| l.ends_with("  -") || l.ends_with("  /")),
        "{map}"
    );
}

#[test]
fn a_mapfile_lets_a_second_drive_read_only_what_the_first_could_not() {
    let t = tmp();
    let (_src, out) = three_disc_set(t.path());
    let img = &images(&out)[0];
    let sectors = std::fs::metadata(img).unwrap().len() / SS;
    let map = t.path().join("disc1.map");
    // Drive A cannot read 1 000 sectors in the middle.
    let a = t.path().join("drive-a");
    std::fs::create_dir_all(&a).unwrap();
    let bad = json!({"unreadable": [[sectors / 2, sectors / 2 + 1000]]});
    let dev_a = sim_drive(&a, vec![medium(&a, "d1", img, bad)]);
    let o = bd(&["verify", "-D", &dev_a, "--map", map.to_str().unwrap()]);
    expect_code(&o, 1);
    let text = std::fs::read_to_string(&map).unwrap();
    assert!(text.contains("# current_pos"), "{text}");
    // Drive B reads everything: it is asked only for the missing sectors, and the disc is whole.
    let b = t.path().join("drive-b");
    std::fs::create_dir_all(&b).unwrap();
    let dev_b = sim_drive(&b, vec![medium(&b, "d1", img, json!({}))]);
    let o = bd(&["verify", "-D", &dev_b, "--map", map.to_str().unwrap()]);
    expect_code(&o, 0);
    let reads: u64 = log(&b)
        .lines()
        .filter(|l| l.contains("READ12") && l.contains("GOOD"))
        .filter_map(|l| {
            l.split(" n=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(
        reads < 1500,
        "drive B read {reads} sectors; only ~1 000 (+ skipped) were missing"
    );
    // The rescue copy beside the map is now a complete, clean image.
    let copy = t.path().join("disc1.iso");
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(img).unwrap(),
        "the rescue copy differs from the image"
    );
    expect_code(&bd(&["verify", copy.to_str().unwrap()]), 0);
}

#[test]
fn drive_errors_are_one_line_and_name_what_to_do() {
    let t = tmp();
    // Not our disc: a medium full of zeros.
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let zeros = t.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 4 << 20]).unwrap();
    let dev = sim_drive(&dir, vec![medium(&dir, "z", &zeros, json!({}))]);
    let o = bd(&["verify", "-D", &dev]);
    expect_code(&o, 3);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("not a bd-archive disc"), "{e}");
    // Empty drive.
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("drive.json"), "{}").unwrap();
    let o = bd(&[
        "extract",
        "-D",
        &format!("sim:{}", empty.display()),
        "-o",
        t.path().join("r").to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no disc in the drive"), "{e}");
    // --map must be a .map name (the copy goes beside it as .iso).
    let o = bd(&[
        "verify",
        "-D",
        &dev,
        "--map",
        t.path().join("x.iso").to_str().unwrap(),
    ]);
    expect_code(&o, 3);
}

/// No drive and no SOURCE: one line naming both ways out.
#[test]
#[ignore = "needs a machine without an optical drive (/sys/block/sr*); CI runs it"]
fn extract_without_drive_or_source_names_both_ways_out() {
    require_no_optical_drive();
    let t = tmp();
    let o = bd(&["extract", "-o", t.path().join("r2").to_str().unwrap()]);
    expect_code(&o, 3);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("-D /dev/srN") && e.contains("image files"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

/// `drive` names the transfer limit, and `--read-to` never sends more in one READ than it: a
/// drive behind a 32 KiB bridge is read 16 sectors at a time, bit-exact, with nothing refused.
#[test]
fn drive_reports_the_transfer_limit_and_reads_within_it() {
    let t = tmp();
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let img = t.path().join("disc.img");
    let data = noise(3 << 20, 5);
    std::fs::write(&img, &data).unwrap();
    let dev = sim_drive(&dir, vec![medium(&dir, "m", &img, json!({}))]);
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("drive.json")).unwrap()).unwrap();
    cfg["max_transfer"] = json!(32768);
    std::fs::write(dir.join("drive.json"), cfg.to_string()).unwrap();
    let copy = t.path().join("copy.iso");
    let o = bd(&["drive", "-D", &dev, "--read-to", copy.to_str().unwrap()]);
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("transfer:   32 KiB per command"), "{out}");
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    let l = log(&dir);
    assert!(!l.contains("EIO"), "{l}");
    let reads: Vec<&str> = l.lines().filter(|x| x.contains("READ12")).collect();
    assert_eq!(reads.len(), 3 * 1024 * 1024 / 32768, "{l}");
    assert!(reads.iter().all(|x| x.contains(" n=16 ")), "{l}");
    let o = bd(&["drive", "-D", &dev, "--json"]);
    expect_code(&o, 0);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["max_transfer"], 32768);
}

#[test]
fn extract_asks_for_an_earlier_generations_discs_by_number_from_the_newest_catalog() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..10 {
        write(&src.join(format!("g1/f{i}.bin")), &noise(4_000_000, 60 + i));
    }
    let out1 = t.path().join("out1");
    expect_code(
        &create(&src, &out1, "drv", &["-b", "32M", "-y", "-q", "-c", "none"]),
        0,
    );
    assert_eq!(images(&out1).len(), 2);
    write(&src.join("g2.txt"), b"generation 2");
    let out2 = t.path().join("out2");
    let base = out1.to_str().unwrap();
    expect_code(
        &create(
            &src,
            &out2,
            "drv",
            &["-b", "32M", "-y", "-q", "--base", base],
        ),
        0,
    );
    // Generation 2's disc first: its catalog's disc map names generation 1's discs.
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let mut media = vec![medium(&dir, "g2d1", &images(&out2)[0], json!({}))];
    for (i, img) in images(&out1).iter().enumerate() {
        media.push(medium(&dir, &format!("g1d{}", i + 1), img, json!({})));
    }
    let dev = sim_drive(&dir, media);
    let restored = t.path().join("restored");
    let o = bd(&["extract", "-D", &dev, "-o", restored.to_str().unwrap()]);
    expect_code(&o, 0);
    assert_same_tree(&src, &restored);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("Still needed: generation 1 disc(s) 1, 2"),
        "{stderr}"
    );
}

/// A `--pack-with` disc holds the generation it was packed onto as well as its own: read after
/// the disc it was packed onto, it is known by its own generation, not taken for that disc (an
/// unattended drive then stopped at it as "a disc we already have").
#[test]
fn extract_from_a_drive_tells_a_packed_disc_from_the_disc_it_was_packed_onto() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("big.bin"), &noise(40_000_000, 4));
    write(&src.join("a.txt"), b"generation 1");
    let out1 = t.path().join("out1");
    expect_code(&create(&src, &out1, "pk", &["-b", "32M", "-y", "-q"]), 0);
    let g1 = images(&out1);
    assert_eq!(g1.len(), 2);
    write(&src.join("a.txt"), b"generation 2, packed");
    let out2 = t.path().join("out2");
    let pack = ["--pack-with", g1[1].to_str().unwrap()];
    let args = ["-b", "32M", "-y", "-q", pack[0], pack[1]];
    expect_code(&create(&src, &out2, "pk", &args), 0);
    let dir = t.path().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let media = vec![
        medium(&dir, "g1d2", &g1[1], json!({})),
        medium(&dir, "packed", &images(&out2)[0], json!({})),
        medium(&dir, "g1d1", &g1[0], json!({})),
    ];
    let dev = sim_drive(&dir, media);
    let restored = t.path().join("restored");
    let o = bd(&["extract", "-D", &dev, "-o", restored.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(stderr(&o).contains("generation 2 disc 1"), "{}", stderr(&o));
    assert_same_tree(&src, &restored);
}
