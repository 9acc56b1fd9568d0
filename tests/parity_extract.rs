//! `extract` of a generation with parity discs (FORMAT.md §10): data discs missing or damaged
//! beyond their own FEC are rebuilt from the other discs and the parity discs, transparently, and
//! the restore is bit-exact; with more lost than P, exactly the lost files are listed. Also
//! through the simulated drive, the discs inserted one at a time.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{assert_same_tree, bd, expect_code, noise, stderr, stdout};
use crate::parity_discs::parity_set;
use serde_json::{json, Value};

/// `extract -o DIR` from `sources` (each an image), in the order given.
fn extract(dir: &Path, sources: &[&PathBuf]) -> std::process::Output {
    let mut args = vec!["extract", "-o", dir.to_str().unwrap()];
    args.extend(sources.iter().map(|p| p.to_str().unwrap()));
    bd(&args)
}

/// Everything the user sees.
fn text(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A deterministic shuffle (so a failure names the order it met): parity discs first, then the
/// data discs rotated by `k` and every other one reversed.
fn shuffled<'a>(data: &'a [PathBuf], parity: &'a [PathBuf], k: usize) -> Vec<&'a PathBuf> {
    let mut d: Vec<&PathBuf> = data.iter().collect();
    let len = d.len().max(1);
    d.rotate_left(k % len);
    if k % 2 == 1 {
        d.reverse();
    }
    parity.iter().chain(d).collect()
}

/// Overwrites a random `pct` % of an image's 64 KiB clusters with noise (deterministic by
/// `seed`): damage as a disc suffers it, a whole ECC cluster at a time.
fn damage(img: &Path, pct: u64, seed: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(img).unwrap();
    let clusters = f.metadata().unwrap().len() / (64 << 10);
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(seed | 1);
    let junk = noise(64 << 10, seed + 1);
    for c in 0..clusters {
        if rng.next_u64() % 100 < pct {
            f.write_all_at(&junk, c * (64 << 10)).unwrap();
        }
    }
}

/// A copy of `img` in `dir` (to damage), keeping its name.
fn copy_into(dir: &Path, img: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let to = dir.join(img.file_name().unwrap());
    fs::copy(img, &to).unwrap();
    to
}

/// Asserts a bit-exact restore that needed the parity discs, and that the work dir is gone.
fn assert_rebuilt_and_exact(o: &std::process::Output, src: &Path, x: &Path) {
    expect_code(o, 0);
    assert!(
        text(o).contains("rebuilt from the parity discs"),
        "{}",
        text(o)
    );
    assert_same_tree(src, x);
    assert!(!x.join(".bd-archive-work").exists());
}

#[test]
fn p1_each_single_missing_data_disc_restores_bit_exact_in_any_order() {
    let (t, src, _out, data, parity) = parity_set(1);
    for gone in 0..data.len() {
        let mut given = shuffled(&data, &parity, gone);
        given.retain(|p| **p != data[gone]);
        let x = t.path().join(format!("x{gone}"));
        let o = extract(&x, &given);
        assert_rebuilt_and_exact(&o, &src, &x);
        assert!(
            text(&o).contains(&format!("disc {} rebuilt from the parity discs", gone + 1)),
            "{}",
            text(&o)
        );
        fs::remove_dir_all(&x).unwrap();
    }
}

#[test]
fn p2_each_pair_of_missing_data_discs_restores_bit_exact_in_any_order() {
    let (t, src, _out, data, parity) = parity_set(2);
    let mut k = 0;
    for a in 0..data.len() {
        for b in a + 1..data.len() {
            k += 1;
            let mut given = shuffled(&data, &parity, k);
            given.retain(|p| **p != data[a] && **p != data[b]);
            let x = t.path().join(format!("x{a}{b}"));
            assert_rebuilt_and_exact(&extract(&x, &given), &src, &x);
            fs::remove_dir_all(&x).unwrap();
        }
    }
    // Parity disc 1 lost too: one data disc missing, parity disc 2 rebuilds it.
    let given: Vec<&PathBuf> = data[1..].iter().chain(&parity[1..]).rev().collect();
    let x = t.path().join("xp");
    assert_rebuilt_and_exact(&extract(&x, &given), &src, &x);
}

/// A 32 MiB image's own FEC carries about 21 % parity at -r 10 (FORMAT.md §3.5), more than a
/// BD's: 25 % of its clusters is beyond it, as the issue's 25 % is beyond a BD's.
#[test]
fn p1_one_disc_damaged_beyond_its_own_fec_restores_bit_exact() {
    let (t, src, _out, data, parity) = parity_set(1);
    let bad = copy_into(&t.path().join("bad"), &data[1]);
    damage(&bad, 25, 5);
    expect_code(&bd(&["verify", bad.to_str().unwrap()]), 2);
    let mut given: Vec<&PathBuf> = data.iter().filter(|p| **p != data[1]).collect();
    given.push(&bad);
    given.extend(&parity);
    let x = t.path().join("x");
    let o = extract(&x, &given);
    assert_rebuilt_and_exact(&o, &src, &x);
    assert!(
        text(&o).contains("damaged beyond its own FEC"),
        "{}",
        text(&o)
    );
    // The damaged image given is left as it was (the rebuild works on a copy).
    assert_ne!(fs::read(&bad).unwrap(), fs::read(&data[1]).unwrap());
}

/// Two discs each beyond their own FEC (22 % of a 32 MiB image's clusters, see above; the
/// issue's 15 % on a BD), overlapping in about 5 % of the columns, beyond P = 1: neither code
/// alone suffices, iterating both does.
#[test]
fn p1_two_discs_with_random_damage_need_both_codes_and_restore_bit_exact() {
    let (t, src, _out, data, parity) = parity_set(1);
    let dir = t.path().join("bad");
    let a = copy_into(&dir, &data[0]);
    let b = copy_into(&dir, &data[2]);
    damage(&a, 22, 11);
    damage(&b, 22, 13);
    for v in [&a, &b] {
        expect_code(&bd(&["verify", v.to_str().unwrap()]), 2);
    }
    let given: Vec<&PathBuf> = vec![&parity[0], &b, &data[3], &data[1], &a]
        .into_iter()
        .chain(&data[4..])
        .collect();
    let x = t.path().join("x");
    let mut args = vec!["-v", "extract", "-o", x.to_str().unwrap()];
    args.extend(given.iter().map(|p| p.to_str().unwrap()));
    let o = bd(&args);
    assert_rebuilt_and_exact(&o, &src, &x);
    assert!(text(&o).contains("set rebuild round 2:"), "{}", text(&o));
}

/// The issue's "20 %" on a BD; 25 % here, beyond a 32 MiB image's own FEC (see above).
#[test]
fn p2_one_missing_and_one_damaged_beyond_its_fec_restore_bit_exact() {
    let (t, src, _out, data, parity) = parity_set(2);
    let bad = copy_into(&t.path().join("bad"), &data[0]);
    damage(&bad, 25, 17);
    let mut given: Vec<&PathBuf> = vec![&parity[1], &bad, &parity[0]];
    given.extend(data[1..].iter().filter(|p| **p != data[3]).rev());
    let x = t.path().join("x");
    assert_rebuilt_and_exact(&extract(&x, &given), &src, &x);
}

/// P = 1 with two data discs missing, one of them the last (catalog) disc: the catalog comes
/// from the parity disc; disc 1's columns past the (shorter) last disc's end are rebuilt (only
/// disc 1 is unknown there), so the files stored there come back too; exactly the files not
/// restored bit-exact are listed — all of them with bytes on a missing disc, every file on the
/// last disc among them.
#[test]
fn one_disc_more_missing_than_parity_lists_exactly_the_lost_files() {
    let (t, src, out, data, parity) = parity_set(1);
    let n = data.len();
    let missing = [1u32, n as u32];
    let given: Vec<&PathBuf> = parity.iter().chain(data[1..n - 1].iter().rev()).collect();
    let x = t.path().join("x");
    let o = extract(&x, &given);
    expect_code(&o, 1);
    assert!(
        text(&o).contains("the catalog is read from a parity disc"),
        "{}",
        text(&o)
    );
    let report = fs::read_to_string(x.join("corrupted-files.txt")).unwrap();
    assert!(!report.contains("# NOTE"), "the catalog is known: {report}");
    let listed: BTreeSet<String> = report
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    // Which discs hold each file, from the catalog OUT keeps.
    let l = bd(&["list", "--json", out.to_str().unwrap()]);
    expect_code(&l, 0);
    let doc: Value = serde_json::from_slice(&l.stdout).unwrap();
    let files: Vec<(String, Vec<u32>)> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "file" && e["size"].as_u64().unwrap() > 0)
        .map(|e| {
            let discs = e["discs"].as_array().unwrap();
            let discs = discs.iter().map(|d| d.as_u64().unwrap() as u32).collect();
            (e["path"].as_str().unwrap().to_string(), discs)
        })
        .collect();
    let on = |pred: &dyn Fn(&u32) -> bool| -> BTreeSet<String> {
        let hit = files.iter().filter(|(_, d)| d.iter().any(pred));
        hit.map(|(p, _)| p.clone()).collect()
    };
    let touching = on(&|d| missing.contains(d));
    let on_last = on(&|d| *d == n as u32);
    assert!(!on_last.is_empty());
    assert!(on_last.is_subset(&listed), "{listed:?} vs {on_last:?}");
    assert!(listed.is_subset(&touching), "{listed:?} vs {touching:?}");
    assert!(
        listed.len() < touching.len(),
        "a file with bytes on disc 1 past the last disc's end is restored: {listed:?}"
    );
    // Listed ⇔ not bit-exact.
    for (path, _) in &files {
        let same = fs::read(x.join(path)).ok() == Some(fs::read(src.join(path)).unwrap());
        assert_eq!(
            !same,
            listed.contains(path),
            "{path}: listed ⇔ not bit-exact"
        );
    }
}

// ---- through the simulated drive ----

/// A recorded BD-R medium holding a copy of `image`.
fn medium(dir: &Path, label: &str, image: &Path) -> Value {
    fs::copy(image, dir.join(format!("{label}.img"))).unwrap();
    let sectors = fs::metadata(image).unwrap().len() / 2048;
    json!({"label": label, "profile": "bd-r", "state": "complete", "written": sectors})
}

/// A simulated drive in `dir` holding `media[0]`, the rest queued (one per tray close).
fn sim_drive(dir: &Path, media: Vec<Value>) -> String {
    let mut it = media.into_iter();
    let cfg = json!({"medium": it.next(), "queue": it.collect::<Vec<_>>()});
    fs::write(
        dir.join("drive.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    format!("sim:{}", dir.display())
}

/// The discs of a P = 1 set inserted in burn order (data discs, then the parity disc) with data
/// disc 2 lost, and — a second drive — in another order with the last data disc lost: extract
/// -D asks for what is missing until the parity disc is read, then rebuilds and restores.
#[test]
fn extract_from_a_drive_rebuilds_a_lost_disc_from_the_parity_disc() {
    let (t, src, _out, data, parity) = parity_set(1);
    let n = data.len();
    let dir = t.path().join("sim1");
    fs::create_dir_all(&dir).unwrap();
    let mut media: Vec<Value> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(i, img)| medium(&dir, &format!("d{}", i + 1), img))
        .collect();
    media.push(medium(&dir, "p1", &parity[0]));
    let dev = sim_drive(&dir, media);
    let x = t.path().join("x1");
    let o = bd(&["extract", "-D", &dev, "-o", x.to_str().unwrap()]);
    expect_code(&o, 0);
    assert_same_tree(&src, &x);
    let all = text(&o);
    assert!(
        all.contains("Still needed: generation 1 disc(s) 2"),
        "{all}"
    );
    assert!(
        all.contains("generation 1 disc(s) 2 will be rebuilt from the parity discs"),
        "{all}"
    );
    assert!(
        all.contains("disc 2 rebuilt from the parity discs"),
        "{all}"
    );
    assert!(!x.join(".bd-archive-work").exists());

    // Parity disc first: it names the set's n data discs before the catalog disc is read.
    let dir = t.path().join("sim2");
    fs::create_dir_all(&dir).unwrap();
    let mut media = vec![medium(&dir, "p1", &parity[0])];
    for i in [2, 0, 1].into_iter().chain(3..n - 1) {
        media.push(medium(&dir, &format!("d{}", i + 1), &data[i]));
    }
    let dev = sim_drive(&dir, media);
    let x = t.path().join("x2");
    let o = bd(&["extract", "-D", &dev, "-o", x.to_str().unwrap()]);
    expect_code(&o, 0);
    assert_same_tree(&src, &x);
    assert!(
        text(&o).contains(&format!("generation 1 disc(s) {n} will be rebuilt")),
        "{}",
        text(&o)
    );
}

/// `verify -D` of a parity disc checks it as the ordinary disc it is (its own FEC); a set read
/// disc by disc through drives (`--map` keeps each copy) is then verified and restored as a set.
#[test]
fn verify_from_a_drive_checks_a_parity_disc_and_the_copies_form_a_set() {
    let (t, src, _out, data, parity) = parity_set(1);
    let copies = t.path().join("copies");
    fs::create_dir_all(&copies).unwrap();
    let discs: Vec<(&str, &PathBuf)> = vec![("p1", &parity[0]), ("d1", &data[0])]
        .into_iter()
        .chain(data[2..].iter().map(|d| ("dn", d)))
        .collect();
    for (i, (label, img)) in discs.iter().enumerate() {
        let dir = t.path().join(format!("drive{i}"));
        fs::create_dir_all(&dir).unwrap();
        let mut m = medium(&dir, label, img);
        if *label == "p1" {
            // A scratch its own FEC repairs.
            m["unreadable"] = json!([[1000, 1300]]);
        }
        let dev = sim_drive(&dir, vec![m]);
        let map = copies.join(format!("c{i}.map"));
        let o = bd(&["verify", "-D", &dev, "--map", map.to_str().unwrap()]);
        expect_code(&o, if *label == "p1" { 1 } else { 0 });
        if *label == "p1" {
            assert!(stdout(&o).contains("parity disc"), "{}", stdout(&o));
        }
    }
    let o = bd(&["verify", copies.to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(
        stdout(&o).contains("disc 2 missing — rebuildable from the parity discs"),
        "{}",
        stdout(&o)
    );
    let x = t.path().join("x");
    let o = bd(&[
        "extract",
        "-o",
        x.to_str().unwrap(),
        copies.to_str().unwrap(),
    ]);
    assert_rebuilt_and_exact(&o, &src, &x);
}

/// A disc scratched far beyond its own FEC in the drive (a third of it unreadable) and the parity
/// disc after it: extract -D asks for the parity disc, then restores bit-exact.
#[test]
fn extract_from_a_drive_rebuilds_a_disc_scratched_beyond_its_fec() {
    let (t, src, _out, data, parity) = parity_set(1);
    let dir = t.path().join("sim");
    fs::create_dir_all(&dir).unwrap();
    let mut media: Vec<Value> = Vec::new();
    for (i, img) in data.iter().enumerate().rev() {
        let mut m = medium(&dir, &format!("d{}", i + 1), img);
        if i == 1 {
            let sectors = fs::metadata(img).unwrap().len() / 2048;
            m["unreadable"] = json!([[sectors / 3, 2 * sectors / 3]]);
        }
        media.push(m);
    }
    media.push(medium(&dir, "p1", &parity[0]));
    let dev = sim_drive(&dir, media);
    let x = t.path().join("x");
    let o = bd(&[
        "extract",
        "-D",
        &dev,
        "--retries",
        "1",
        "-o",
        x.to_str().unwrap(),
    ]);
    let all = text(&o);
    expect_code(&o, 0);
    assert_same_tree(&src, &x);
    assert!(
        all.contains("generation 1: 1 more parity disc(s) if the set has them (0 read; disc(s) 2 damaged beyond their own FEC)"),
        "{all}"
    );
    assert!(all.contains("generation 1 parity disc 1"), "{all}");
    assert!(
        all.contains("generation 1 disc(s) 2 will be rebuilt from the parity discs"),
        "{all}"
    );
    assert!(
        all.contains("disc 2 rebuilt from the parity discs"),
        "{all}"
    );
}

/// `verify -D` of a parity set: the parity disc names the set, the other discs are asked for
/// one by one in any order (the one not given — disc 2 — is named as still needed and as
/// rebuildable from what was read), the disk the copies need is said, and the set verdict ends
/// it; `--repair -o DIR` writes disc 2's image byte-identical. `-w` keeps the copies.
#[test]
fn verify_from_a_drive_asks_for_the_set_and_repairs_a_missing_disc() {
    let (t, _src, _out, data, parity) = parity_set(1);
    let n = data.len();
    let dir = t.path().join("sim");
    fs::create_dir_all(&dir).unwrap();
    let mut media = vec![medium(&dir, "p1", &parity[0])];
    for i in (0..n).rev().filter(|i| *i != 1) {
        media.push(medium(&dir, &format!("d{}", i + 1), &data[i]));
    }
    let dev = sim_drive(&dir, media);
    let fixed = t.path().join("fixed");
    let work = t.path().join("work");
    fs::create_dir_all(&fixed).unwrap();
    let o = bd(&[
        "verify",
        "-D",
        &dev,
        "-w",
        work.to_str().unwrap(),
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
    ]);
    let all = text(&o);
    expect_code(&o, 1);
    assert!(
        all.contains(&format!(
            "The set has {} discs: their copies need up to",
            n + 1
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "Still needed: generation 1 disc(s) {} (no terminal",
            {
                let all: Vec<String> = (1..=n).map(|d| d.to_string()).collect();
                all.join(", ")
            }
        )),
        "{all}"
    );
    assert!(
        all.contains("Still needed: generation 1 disc(s) 2 — the discs read already suffice"),
        "{all}"
    );
    assert!(
        all.contains("disc 2 missing — rebuilt from the parity discs, bit-identical"),
        "{all}"
    );
    let rebuilt = fixed.join(data[1].file_name().unwrap());
    assert_eq!(fs::read(&rebuilt).unwrap(), fs::read(&data[1]).unwrap());
    // The copies stay in -w (with their maps) for a later run.
    let kept = fs::read_dir(work.join("discs")).unwrap().count();
    assert_eq!(kept, 2 * n, "{n} copies and their maps");
}

/// `verify -D` stopped before the set is complete (here: no more discs come, as at a "q") gives
/// the verdict of the discs read so far: with two data discs not read and P = 1, not rebuildable
/// (2); with every disc read, intact (0). A data disc without a terminal is verified on its own.
#[test]
fn verify_from_a_drive_stopped_early_gives_the_verdict_so_far() {
    let (t, _src, _out, data, parity) = parity_set(1);
    let dir = t.path().join("sim");
    fs::create_dir_all(&dir).unwrap();
    let media = vec![
        medium(&dir, "p1", &parity[0]),
        medium(&dir, "d3", &data[2]),
        medium(&dir, "d1", &data[0]),
    ];
    let dev = sim_drive(&dir, media);
    let o = bd(&["verify", "-D", &dev]);
    let all = text(&o);
    expect_code(&o, 2);
    assert!(all.contains("not rebuildable"), "{all}");
    assert!(!all.contains("All discs of the set are read"), "{all}");

    let dir = t.path().join("sim-all");
    fs::create_dir_all(&dir).unwrap();
    let mut media = vec![medium(&dir, "p1", &parity[0])];
    for (i, d) in data.iter().enumerate() {
        media.push(medium(&dir, &format!("d{}", i + 1), d));
    }
    let o = bd(&["verify", "-D", &sim_drive(&dir, media)]);
    expect_code(&o, 0);
    assert!(
        text(&o).contains("All discs of the set are read"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("every data disc present and intact"),
        "{}",
        text(&o)
    );

    // A data disc first, no terminal: verified alone, as before (no copy, no question).
    let dir = t.path().join("sim-data");
    fs::create_dir_all(&dir).unwrap();
    let media = vec![medium(&dir, "d1", &data[0]), medium(&dir, "p1", &parity[0])];
    let o = bd(&["verify", "-D", &sim_drive(&dir, media)]);
    expect_code(&o, 0);
    assert!(!text(&o).contains("Still needed"), "{}", text(&o));
}

/// With every data disc at hand, extract reads each once: none is checked against its own FEC
/// beforehand. A disc whose index reads fine but whose files lie on a burst beyond its own FEC
/// (a third of it) is found while its chunks are read; only then is its set checked and the
/// disc rebuilt from the parity disc, and the restore goes on bit-exact from the rebuilt image.
#[test]
fn extract_checks_a_disc_against_its_fec_only_when_reading_it_finds_damage() {
    let (t, src, _out, data, parity) = parity_set(1);
    let x = t.path().join("x0");
    let all: Vec<&PathBuf> = parity.iter().chain(&data).collect();
    let mut args = vec!["-v", "extract", "-o", x.to_str().unwrap()];
    args.extend(all.iter().map(|p| p.to_str().unwrap()));
    let o = bd(&args);
    expect_code(&o, 0);
    assert_same_tree(&src, &x);
    let said = text(&o);
    assert!(said.contains("the parity discs stand by"), "{said}");
    assert!(
        !said.contains(": intact"),
        "no disc checked beforehand: {said}"
    );

    let bad = copy_into(&t.path().join("bad"), &data[1]);
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&bad).unwrap();
        let len = f.metadata().unwrap().len();
        let junk = noise((len / 3) as usize, 9);
        f.write_all_at(&junk, len / 6 / 2048 * 2048).unwrap();
    }
    expect_code(&bd(&["verify", bad.to_str().unwrap()]), 2);
    let mut given: Vec<&PathBuf> = data.iter().filter(|p| **p != data[1]).collect();
    given.push(&bad);
    given.extend(&parity);
    let x = t.path().join("x1");
    let o = extract(&x, &given);
    assert_rebuilt_and_exact(&o, &src, &x);
    assert!(
        text(&o).contains("disc 2 is damaged beyond its own FEC; checking the other discs"),
        "{}",
        text(&o)
    );
}

/// A data disc given as a directory (its files copied out, as from a mounted disc) whose device
/// cannot give its sectors: extract says so in one line, naming the way out, counts it as
/// missing for the set, and restores bit-exact through the parity disc. (A directory mounted
/// from a readable device is read through it: `restore::mounted`, unit-tested on mountinfo
/// fixtures; mounting needs root.)
#[test]
#[ignore = "needs xorriso (Debian package xorriso) to copy a disc out; CI runs it"]
fn a_disc_directory_without_its_device_is_named_and_rebuilt() {
    crate::common::require(&["xorriso"]);
    let (t, src, _out, data, parity) = parity_set(1);
    let dir = t.path().join("disc2");
    let o = std::process::Command::new("xorriso")
        .args(["-osirrox", "on", "-indev", data[1].to_str().unwrap()])
        .args(["-extract", "/", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut given: Vec<&PathBuf> = data.iter().filter(|p| **p != data[1]).collect();
    given.push(&dir);
    given.extend(&parity);
    let x = t.path().join("x");
    let o = extract(&x, &given);
    assert_rebuilt_and_exact(&o, &src, &x);
    let said = text(&o);
    assert!(
        said.contains(&format!(
            "'par' generation 1 disc 2 ({}): it ",
            dir.display()
        )) && said.contains("; give its device or image to use it for rebuilding"),
        "{said}"
    );
    let o = bd(&["verify", t.path().join("out/images").to_str().unwrap()]);
    expect_code(&o, 0);
}

/// At a terminal (a pty from `script`), `verify -D` of a data disc asks for the rest of its set
/// too; Enter loads the next disc (the parity disc), `q` stops: the verdict of the discs read so
/// far (two data discs not read, P = 1: not rebuildable, exit 2), naming the discs not read.
#[test]
fn verify_from_a_drive_at_a_terminal_stops_at_q_with_the_verdict_so_far() {
    crate::common::require(&["script"]);
    let (t, _src, _out, data, parity) = parity_set(1);
    let n = data.len();
    let dir = t.path().join("sim");
    fs::create_dir_all(&dir).unwrap();
    let media = vec![medium(&dir, "d1", &data[0]), medium(&dir, "p1", &parity[0])];
    let dev = sim_drive(&dir, media);
    let o = verify_at_a_terminal(&dev, b"\nq\n");
    let all = text(&o);
    expect_code(&o, 2);
    let not_read: Vec<String> = (2..=n).map(|d| d.to_string()).collect();
    assert!(
        all.contains(&format!(
            "Stopped with generation 1 disc(s) {} not read",
            not_read.join(", ")
        )),
        "{all}"
    );
    assert!(all.contains("not rebuildable"), "{all}");
}

/// At a terminal too, a data disc of a generation without parity discs (its header records
/// P = 0) is verified on its own: no prompt for other discs, no copy, the tray left alone (the
/// real-kernel test caught the set path taking over a plain `verify /dev/sr0` at a console).
#[test]
fn verify_from_a_drive_at_a_terminal_checks_a_disc_without_parity_discs_alone() {
    crate::common::require(&["script"]);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    crate::common::write(&src.join("a.bin"), &noise(3 << 20, 5));
    let out = t.path().join("out");
    let o = crate::common::create(
        &src,
        &out,
        "plain",
        &["-b", "32M", "-c", "none", "-y", "-q"],
    );
    expect_code(&o, 0);
    let img = crate::common::images(&out).remove(0);
    let dir = t.path().join("sim");
    fs::create_dir_all(&dir).unwrap();
    let dev = sim_drive(&dir, vec![medium(&dir, "d1", &img)]);
    let o = verify_at_a_terminal(&dev, b"q\n");
    let all = text(&o);
    expect_code(&o, 0);
    assert!(all.contains(&dev) && all.contains("OK"), "{all}");
    assert!(
        !all.contains("Stopped with") && !all.contains("discs/"),
        "{all}"
    );
}

/// `verify -D DEV` at a terminal (a pty from `script`) given `keys` as typed input.
fn verify_at_a_terminal(dev: &str, keys: &[u8]) -> std::process::Output {
    use std::io::Write;
    let cmd = format!("{} verify -D {dev}", env!("CARGO_BIN_EXE_bd-archive"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(keys).unwrap();
    child.wait_with_output().unwrap()
}
