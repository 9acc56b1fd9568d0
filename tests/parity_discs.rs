//! Parity discs (`create --parity-discs P`, FORMAT.md §10): the set's images, each parity disc an
//! ordinary disc that verifies on its own, and rebuilds of missing or broken data discs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::parity::{data_and_parity, set_of};
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
    let (data, parity) = data_and_parity(&out);
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

/// Overwrites a random `pct` % of an image's 64 KiB clusters with noise (deterministic by
/// `seed`): damage as a disc suffers it, a whole ECC cluster at a time.
fn damage(img: &Path, pct: u64, seed: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(img).unwrap();
    let clusters = f.metadata().unwrap().len() / (64 << 10);
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(seed | 1);
    let junk = noise(64 << 10, seed + 1);
    let mut hit = 0;
    for c in 0..clusters {
        if rng.next_u64() % 100 < pct {
            f.write_all_at(&junk, c * (64 << 10)).unwrap();
            hit += 1;
        }
    }
    hit
}

/// `verify --repair -o FIXED SET` must exit `code`; every image named in `expect` is then in
/// FIXED, byte-identical to the original.
/// `verify --repair -o T/DIR SET` into a new directory: (its output, the directory).
fn verify_repair_into(
    t: &tempfile::TempDir,
    set: &Path,
    dir: &str,
) -> (std::process::Output, PathBuf) {
    let fixed = t.path().join(dir);
    fs::create_dir_all(&fixed).unwrap();
    let o = bd(&[
        "verify",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        set.to_str().unwrap(),
    ]);
    (o, fixed)
}

fn repair_set(t: &tempfile::TempDir, set: &Path, code: i32, expect: &[&PathBuf]) -> String {
    let dir = format!("{}-fixed", set.file_name().unwrap().to_string_lossy());
    let (o, fixed) = verify_repair_into(t, set, &dir);
    expect_code(&o, code);
    for img in expect {
        let got = fixed.join(img.file_name().unwrap());
        assert!(
            fs::read(&got).ok() == Some(fs::read(img).unwrap()),
            "{} not rebuilt byte-identical\n{}",
            got.display(),
            stdout(&o)
        );
    }
    // Only what needed repair or a rebuild is written: no copy of an intact image.
    for f in fs::read_dir(&fixed).unwrap() {
        let f = f.unwrap().path();
        let given = set.join(f.file_name().unwrap());
        assert!(
            f.is_dir() || fs::read(&given).ok() != Some(fs::read(&f).unwrap()),
            "{}: an intact image was copied into -o DIR\n{}",
            f.display(),
            stdout(&o)
        );
    }
    fs::remove_dir_all(&fixed).unwrap();
    stdout(&o)
}

#[test]
fn p1_any_single_missing_data_disc_is_rebuilt_byte_identical() {
    let (t, _src, _out, data, parity) = parity_set(1);
    for (i, gone) in data.iter().enumerate() {
        let keep: Vec<&PathBuf> = data.iter().chain(&parity).filter(|p| *p != gone).collect();
        let set = set_of(&t, &format!("miss{i}"), &keep);
        let o = bd(&["verify", set.to_str().unwrap()]);
        expect_code(&o, 1);
        assert!(
            stdout(&o).contains(&format!(
                "disc {} missing — rebuildable from the parity discs",
                i + 1
            )),
            "{}",
            stdout(&o)
        );
        // The last data disc holds the catalog: rebuilt like any other.
        repair_set(&t, &set, 1, &[gone]);
        fs::remove_dir_all(&set).unwrap();
    }
}

#[test]
fn p2_any_two_missing_data_discs_are_rebuilt_byte_identical() {
    let (t, _src, _out, data, parity) = parity_set(2);
    for a in 0..data.len() {
        for b in a + 1..data.len() {
            let keep: Vec<&PathBuf> = data
                .iter()
                .chain(&parity)
                .filter(|p| **p != data[a] && **p != data[b])
                .collect();
            let set = set_of(&t, &format!("miss{a}{b}"), &keep);
            repair_set(&t, &set, 1, &[&data[a], &data[b]]);
            fs::remove_dir_all(&set).unwrap();
        }
    }
    // A missing parity disc and a missing data disc: the other parity disc suffices.
    let keep: Vec<&PathBuf> = data[1..].iter().chain(&parity[1..]).collect();
    let set = set_of(&t, "missp", &keep);
    let text = repair_set(&t, &set, 1, &[&data[0]]);
    assert!(text.contains("parity disc 1 missing"), "{text}");
}

#[test]
fn p1_one_disc_damaged_far_beyond_its_own_fec_is_rebuilt() {
    let (t, _src, _out, data, parity) = parity_set(1);
    let all: Vec<&PathBuf> = data.iter().chain(&parity).collect();
    let set = set_of(&t, "d25", &all);
    let victim = set.join(data[1].file_name().unwrap());
    damage(&victim, 25, 5);
    let o = bd(&["verify", victim.to_str().unwrap()]);
    expect_code(&o, 2); // alone: beyond its own FEC
    let text = repair_set(&t, &set, 1, &[&data[1]]);
    assert!(
        text.contains("disc 2 broken beyond its own FEC — rebuilt"),
        "{text}"
    );
}

/// The issue's "two discs with 15 % damage each" on a BD: a 32 MiB image's own FEC carries more
/// parity (about 21 % at -r 10, FORMAT.md §3.5), so here each disc gets 22 % of its clusters —
/// again beyond its own FEC, and the two overlap in about 5 % of the columns, beyond P = 1.
#[test]
fn p1_two_discs_damaged_beyond_their_fec_need_both_codes() {
    let (t, _src, _out, data, parity) = parity_set(1);
    let all: Vec<&PathBuf> = data.iter().chain(&parity).collect();
    let set = set_of(&t, "d15", &all);
    for (i, seed) in [(0usize, 11u64), (2, 13)] {
        let v = set.join(data[i].file_name().unwrap());
        damage(&v, 22, seed);
        // Neither code alone: the disc's own FEC fails, and two discs are unknown in many
        // columns while P = 1.
        expect_code(&bd(&["verify", v.to_str().unwrap()]), 2);
    }
    // The rebuild needs more than one round of (own FEC, column code).
    let o = bd(&["-v", "verify", set.to_str().unwrap()]);
    expect_code(&o, 1);
    let all_text = format!("{}{}", stdout(&o), crate::common::stderr(&o));
    assert!(all_text.contains("set rebuild round 2:"), "{all_text}");
    repair_set(&t, &set, 1, &[&data[0], &data[2]]);
}

#[test]
fn p2_one_missing_and_one_20_percent_damaged() {
    let (t, _src, _out, data, parity) = parity_set(2);
    let keep: Vec<&PathBuf> = data
        .iter()
        .chain(&parity)
        .filter(|p| **p != data[3])
        .collect();
    let set = set_of(&t, "m1d20", &keep);
    damage(&set.join(data[0].file_name().unwrap()), 20, 17);
    repair_set(&t, &set, 1, &[&data[0], &data[3]]);
}

#[test]
fn one_disc_more_missing_than_parity_names_exactly_the_lost_files() {
    let (t, _src, _out, data, parity) = parity_set(1);
    let keep: Vec<&PathBuf> = data[2..].iter().chain(&parity).collect();
    let set = set_of(&t, "miss2", &keep);
    let o = bd(&["verify", set.to_str().unwrap()]);
    expect_code(&o, 2);
    let text = stdout(&o);
    assert!(
        text.contains("2 disc(s) missing or broken, P = 1 — not rebuildable"),
        "{text}"
    );
    let mut lost: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("lost: "))
        .map(str::to_string)
        .collect();
    lost.sort();
    // Exactly what extract from the same discs cannot restore.
    let x = t.path().join("x");
    let e = bd(&["extract", "-o", x.to_str().unwrap(), set.to_str().unwrap()]);
    expect_code(&e, 1);
    let report = fs::read_to_string(x.join("corrupted-files.txt")).unwrap();
    let mut want: Vec<String> = report
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(lost, want, "verify's lost files differ from extract's");
}

/// Killed while the parity disc is being computed (its `.partial` exists): `--resume` keeps every
/// data image as it is and writes the parity disc, and the set then rebuilds a missing disc.
#[test]
fn create_killed_during_the_parity_disc_resumes() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for i in 0..9u64 {
        write(&src.join(format!("f{i}.bin")), &noise(8 << 20, 100 + i));
    }
    let out = t.path().join("out");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "create".to_string(),
            "-s".into(),
            src.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "-n".into(),
            "par".into(),
            "-b".into(),
            "32M".into(),
            "-c".into(),
            "none".into(),
            "--parity-discs".into(),
            "1".into(),
            "-y".into(),
            "-q".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(args(&[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = out.join("images/.par-gen0001-parity0001.iso.partial");
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(120) {
        if partial.exists() {
            let _ = child.kill();
            killed = true;
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(
        killed,
        "create finished before the parity disc could be interrupted"
    );
    assert!(!out.join("images/par-gen0001-parity0001.iso").exists());
    let data = images(&out);
    let before: Vec<Vec<u8>> = data.iter().map(|p| fs::read(p).unwrap()).collect();
    let a = args(&["--resume"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    expect_code(&bd(&a), 0);
    for (p, b) in data.iter().zip(&before) {
        assert!(
            fs::read(p).unwrap() == *b,
            "{} changed on resume",
            p.display()
        );
    }
    assert!(out.join("par-gen1.catalog").is_file());
    let all = images(&out);
    assert_eq!(all.len(), data.len() + 1);
    let keep: Vec<&PathBuf> = all.iter().skip(1).collect();
    let set = set_of(&t, "resumed", &keep);
    repair_set(&t, &set, 1, &[&all[0]]);
}

/// Column 0 (the disc headers) is not coded (FORMAT.md §10.1): with P = 1 and an even number of
/// data discs the parity of the headers, each ending in its own CRC32C, would carry a zero
/// sector's checksum, so a zeroed copy of it would pass as intact and `verify --repair` of the
/// parity disc would "repair" a neighbouring sector wrongly. The parity disc's column-0 sector is
/// zero, and a parity disc zeroed around it repairs byte-identical.
#[test]
fn parity_column_zero_is_not_coded_and_a_zeroed_parity_disc_repairs_exactly() {
    use std::os::unix::fs::FileExt;
    let (t, _src, _out, _data, parity) = parity_set(1);
    let img = &parity[0];
    let original = fs::read(img).unwrap();
    let column_lba = u64::from_le_bytes(original[160 + 56..160 + 64].try_into().unwrap());
    let at = (column_lba * 2048) as usize;
    assert!(
        original[at..at + 2048].iter().all(|&b| b == 0),
        "column 0 of the parity is zero"
    );
    let damaged = t.path().join("damaged.iso");
    fs::copy(img, &damaged).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&damaged).unwrap();
    for lba in column_lba.saturating_sub(50)..column_lba + 250 {
        f.write_all_at(&[0u8; 2048], lba * 2048).unwrap();
    }
    drop(f);
    let fixed = t.path().join("fixed.iso");
    let o = bd(&[
        "verify",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        damaged.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(
        fs::read(&fixed).unwrap() == original,
        "repaired byte-identical"
    );
}

/// `verify --repair -o DIR` of a set whose parity disc `victim` (index into the parity images) is
/// missing (`destroy` None) or has `destroy` % of its clusters overwritten: the parity image is
/// written bit-identical to the original (it is a function of the set's own discs).
fn parity_disc_rebuilt(p: u32, victim: usize, destroy: Option<u64>) {
    let (t, _src, _out, data, parity) = parity_set(p);
    let keep: Vec<&PathBuf> = data
        .iter()
        .chain(&parity)
        .filter(|i| destroy.is_some() || **i != parity[victim])
        .collect();
    let set = set_of(&t, "pset", &keep);
    if let Some(pct) = destroy {
        let img = set.join(parity[victim].file_name().unwrap());
        damage(&img, pct, 23);
        expect_code(&bd(&["verify", img.to_str().unwrap()]), 2); // beyond its own FEC
    }
    let o = bd(&["verify", set.to_str().unwrap()]);
    // A parity disc not given is not damage (it may be kept elsewhere); a broken one is.
    expect_code(&o, if destroy.is_some() { 1 } else { 0 });
    let (word, said_word) = if destroy.is_some() {
        ("broken beyond its own FEC", "broken beyond its own FEC")
    } else {
        (
            "missing",
            "not given (the set survives the loss of fewer discs without it)",
        )
    };
    let said = format!(
        "parity disc {} {said_word} — rebuildable from the data discs",
        victim + 1
    );
    assert!(stdout(&o).contains(&said), "{}", stdout(&o));
    let text = repair_set(&t, &set, 1, &[&parity[victim]]);
    assert!(
        text.contains(&format!("parity disc {} {word} — rebuilt", victim + 1)),
        "{text}"
    );
}

#[test]
fn p1_parity_disc_30_percent_destroyed_is_rebuilt_byte_identical() {
    parity_disc_rebuilt(1, 0, Some(30));
}

#[test]
fn p2_parity_disc_missing_is_rebuilt_byte_identical() {
    parity_disc_rebuilt(2, 1, None);
}

#[test]
fn p2_parity_disc_30_percent_destroyed_is_rebuilt_byte_identical() {
    parity_disc_rebuilt(2, 0, Some(30));
}

/// P = 2 with a data disc and a parity disc missing: the data disc is rebuilt from the other
/// parity disc, then the parity disc from the data discs — both bit-identical.
#[test]
fn p2_data_and_parity_disc_missing_are_both_rebuilt() {
    let (t, _src, _out, data, parity) = parity_set(2);
    let keep: Vec<&PathBuf> = data[..2]
        .iter()
        .chain(&data[3..])
        .chain(&parity[1..])
        .collect();
    let set = set_of(&t, "dp", &keep);
    let text = repair_set(&t, &set, 1, &[&data[2], &parity[0]]);
    assert!(text.contains("disc 3 missing — rebuilt"), "{text}");
    assert!(text.contains("parity disc 1 missing — rebuilt"), "{text}");
}

/// `verify --json` of a parity set: each disc's object carries the set's verdict (`parity_set`),
/// stdout holds nothing but the JSON document, and the lost files equal the text listing's.
#[test]
fn verify_json_carries_the_set_verdict() {
    use serde_json::Value;
    let (t, _src, _out, data, parity) = parity_set(1);
    let keep: Vec<&PathBuf> = data[1..].iter().chain(&parity).collect();
    let set = set_of(&t, "j1", &keep);
    let o = bd(&["verify", "--json", set.to_str().unwrap()]);
    expect_code(&o, 1);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("stdout is one JSON document");
    let discs = doc.as_array().unwrap();
    assert_eq!(discs.len(), keep.len());
    let id = discs[0]["set"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "set ids are 32 hex digits");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    for d in discs {
        let s = &d["parity_set"];
        assert_eq!(s["generation"], 1);
        assert_eq!(s["set"].as_str(), Some(id.as_str()));
        assert_eq!(s["data_discs"], data.len());
        assert_eq!(s["parity_discs"], 1);
        assert_eq!(s["rebuildable"], true);
        assert_eq!(s["lost_files"].as_array().unwrap().len(), 0);
        let states: Vec<&str> = s["discs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["state"].as_str().unwrap())
            .collect();
        let mut want = vec!["intact"; data.len() + 1];
        want[0] = "missing";
        assert_eq!(states, want);
        assert_eq!(s["discs"][data.len()]["parity_disc"], 1);
    }
    // Two discs missing with P = 1: not rebuildable, the lost files as the text lists them.
    fs::remove_file(set.join(data[1].file_name().unwrap())).unwrap();
    let o = bd(&["verify", "--json", set.to_str().unwrap()]);
    expect_code(&o, 2);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("stdout is one JSON document");
    let s = &doc[0]["parity_set"];
    assert_eq!(s["rebuildable"], false);
    let mut lost: Vec<String> = s["lost_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    lost.sort();
    let text = stdout(&bd(&["verify", set.to_str().unwrap()]));
    let mut listed: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("lost: "))
        .map(str::to_string)
        .collect();
    listed.sort();
    assert!(!lost.is_empty());
    assert_eq!(lost, listed);
}

/// The data discs record P (FORMAT.md §2): with P = 1 and the parity disc lost, the data discs
/// alone say so, and `verify --repair -o DIR` writes the parity image bit-identical.
#[test]
fn p1_parity_disc_missing_is_rebuilt_byte_identical() {
    parity_disc_rebuilt(1, 0, None);
}

/// A damaged parity disc whose trustworthy sectors differ from what the set's discs give (here
/// a disc header that passes its CRC but names another medium) is not replaced: verify refuses
/// (exit 3), says why, and does not write the rebuilt image.
#[test]
fn a_parity_disc_the_set_does_not_reproduce_is_not_overwritten() {
    use bd_archive::format::disc_header::DiscHeader;
    use std::os::unix::fs::FileExt;
    let (t, _src, _out, data, parity) = parity_set(1);
    let all: Vec<&PathBuf> = data.iter().chain(&parity).collect();
    let set = set_of(&t, "forged", &all);
    let img = set.join(parity[0].file_name().unwrap());
    let first = fs::read(&img).unwrap()[..2048].to_vec();
    damage(&img, 30, 29);
    let mut h = DiscHeader::decode(&first).unwrap();
    h.capacity_sectors += 32;
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&h.encode(), 0).unwrap();
    drop(f);
    let (o, fixed) = verify_repair_into(&t, &set, "forged-fixed");
    expect_code(&o, 3);
    let err = crate::common::stderr(&o);
    assert!(
        err.contains("its disc header at LBA 0 differs from the rebuilt image — not writing it"),
        "{err}"
    );
    // What verify --repair writes of any broken disc (its partial repair, with a warning) may
    // be there; the rebuilt image (equal to the original) is not.
    let there = fs::read(fixed.join(parity[0].file_name().unwrap())).ok();
    assert!(there != Some(fs::read(&parity[0]).unwrap()));
}

/// P = 2 with both parity discs lost: the data discs (which record P) give the manifest again,
/// and both parity images are written bit-identical; `--json` says where.
#[test]
fn p2_both_parity_discs_missing_are_rebuilt_byte_identical() {
    let (t, _src, _out, data, parity) = parity_set(2);
    let keep: Vec<&PathBuf> = data.iter().collect();
    let set = set_of(&t, "noparity", &keep);
    let fixed = t.path().join("noparity-fixed");
    fs::create_dir_all(&fixed).unwrap();
    let o = bd(&[
        "verify",
        "--json",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        set.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let discs = doc[0]["parity_set"]["discs"].as_array().unwrap().clone();
    assert_eq!(discs.len(), data.len() + 2);
    for (i, img) in parity.iter().enumerate() {
        let got = fixed.join(img.file_name().unwrap());
        assert!(
            fs::read(&got).unwrap() == fs::read(img).unwrap(),
            "parity {i}"
        );
        let d = &discs[data.len() + i];
        assert_eq!(d["state"], "missing");
        assert_eq!(d["rebuilt_to"].as_str(), Some(got.to_str().unwrap()));
    }
}

/// P = 1, the parity disc lost and a data disc damaged within its own FEC (its last cluster,
/// which that FEC does not cover, left whole): no manifest is at hand, so the data disc is
/// repaired by its own FEC alone and the parity disc made from the repaired data — both written
/// bit-identical. With that last cluster destroyed too, the parity disc is refused (exit 3): its
/// manifest would record a data image that is not the original.
#[test]
fn p1_parity_disc_missing_and_a_data_disc_damaged_within_its_fec() {
    use std::os::unix::fs::FileExt;
    let (t, _src, _out, data, parity) = parity_set(1);
    let keep: Vec<&PathBuf> = data.iter().collect();
    let set = set_of(&t, "pmd", &keep);
    let victim = set.join(data[1].file_name().unwrap());
    damage(&victim, 5, 31);
    let original = fs::read(&data[1]).unwrap();
    let tail = original.len() - (64 << 10);
    let f = fs::OpenOptions::new().write(true).open(&victim).unwrap();
    f.write_all_at(&original[tail..], tail as u64).unwrap();
    repair_set(&t, &set, 1, &[&data[1], &parity[0]]);
    f.write_all_at(&vec![0u8; 64 << 10], tail as u64).unwrap();
    drop(f);
    let (o, fixed) = verify_repair_into(&t, &set, "pmd-tail");
    expect_code(&o, 3);
    let err = crate::common::stderr(&o);
    assert!(
        err.contains("which its own FEC does not cover, are damaged"),
        "{err}"
    );
    assert!(!fixed.join(parity[0].file_name().unwrap()).exists());
}

/// The parity pass's windows follow `--memory` (64M, the least allowed: windows of ~1 170
/// columns for 5 + 2 discs; 1G: 2 048), its stages overlap on their own threads — and the
/// parity images do not depend on either: the same data images give byte-identical parity
/// images under both budgets (one run killed during its parity pass, its OUT copied, and each
/// copy resumed with one budget).
#[test]
fn parity_images_do_not_depend_on_the_memory_budget() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for i in 0..9u64 {
        write(&src.join(format!("f{i}.bin")), &noise(8 << 20, 300 + i));
    }
    let out = t.path().join("out");
    let args = |memory: &str, extra: &[&str]| {
        let mut a: Vec<String> = ["create", "-s"].map(String::from).to_vec();
        a.push(src.display().to_string());
        a.push("-o".into());
        a.push(out.display().to_string());
        let rest = [
            "-n",
            "mem",
            "-b",
            "32M",
            "-c",
            "none",
            "-y",
            "-q",
            "--parity-discs",
            "2",
            "--memory",
        ];
        a.extend(rest.iter().map(|s| s.to_string()));
        a.push(memory.into());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(args("64M", &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = out.join("images/.mem-gen0001-parity0001.iso.partial");
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(120) && !killed {
        if partial.exists() {
            killed = child.kill().is_ok();
        } else if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(killed, "create finished before its parity pass");
    let copy = t.path().join("out-copy");
    for f in walk(&out) {
        let to = copy.join(f.strip_prefix(&out).unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&f, to).unwrap();
    }
    let parity_of = |memory: &str| -> Vec<Vec<u8>> {
        let a = args(memory, &["--resume"]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        expect_code(&bd(&a), 0);
        let all = images(&out);
        let parity: Vec<&PathBuf> = all
            .iter()
            .filter(|p| p.to_string_lossy().contains("-parity"))
            .collect();
        assert_eq!(parity.len(), 2, "{all:?}");
        parity.iter().map(|p| fs::read(p).unwrap()).collect()
    };
    let small = parity_of("64M");
    fs::remove_dir_all(&out).unwrap();
    fs::rename(&copy, &out).unwrap();
    let large = parity_of("1G");
    for (p, (s, l)) in small.iter().zip(&large).enumerate() {
        assert!(
            s == l,
            "parity image {} differs between --memory 64M and 1G",
            p + 1
        );
    }
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
