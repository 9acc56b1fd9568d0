//! `burn` through the CLI against the simulated drive (`-D sim:DIR`): full burns and resumes,
//! refusals, write errors, read-back checks that catch bad media, and the tray/command sequence.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{bd, create, expect_code, images, noise, stderr, stdout, write};
use bd_archive::optical::sim::{MediumState, SimConfig};
use serde_json::{json, Value};

/// A 3-disc set (32 MiB discs) made by `create`; returns (tempdir, OUT).
fn three_disc_set() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("big.bin"), &noise(62 << 20, 7));
    write(&src.join("small.txt"), b"hello\n");
    let out = t.path().join("out");
    let o = create(&src, &out, "burnt", &["-b", "32M", "-y"]);
    expect_code(&o, 0);
    assert_eq!(images(&out).len(), 3, "expected a 3-disc set");
    (t, out)
}

fn blank(label: &str) -> Value {
    json!({"label": label, "profile": "bd-r", "capacity": "bd25"})
}

/// Writes DIR/drive.json: `medium` in the (closed) drive, `queue` waiting.
fn sim(dir: &Path, medium: Value, queue: Vec<Value>) {
    let cfg = json!({
        "vendor": "BDSIM", "model": "TEST WRITER",
        "medium": medium, "queue": queue,
        "becoming_ready_turs": 2, "long_write_turs": 3
    });
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("drive.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
}

fn burn(out: &Path, simdir: &Path, extra: &[&str]) -> std::process::Output {
    let dev = format!("sim:{}", simdir.display());
    let mut args = vec!["burn", "-i", out.to_str().unwrap(), "-D", &dev, "-y"];
    args.extend_from_slice(extra);
    bd(&args)
}

/// The medium's contents equal the image byte for byte, plus zeros up to the 64 KiB cluster.
fn assert_burned(simdir: &Path, label: &str, image: &Path) {
    let disc = fs::read(simdir.join(format!("{label}.img"))).unwrap();
    let img = fs::read(image).unwrap();
    assert!(disc.len() >= img.len(), "{label}: short");
    assert_eq!(disc.len() % (64 << 10), 0, "{label}: not padded to 64 KiB");
    assert!(
        disc[..img.len()] == img[..],
        "{label} differs from {}",
        image.display()
    );
    assert!(disc[img.len()..].iter().all(|&b| b == 0));
    let cfg = SimConfig::load(simdir).unwrap();
    assert_eq!(cfg.find(label).unwrap().state, MediumState::Complete);
}

/// `verify -D` of the disc in the simulated drive at `simdir`: exit 0. Returns its output.
fn verify_through_drive(simdir: &Path) -> std::process::Output {
    let dev = format!("sim:{}", simdir.display());
    let o = bd(&["verify", "-D", &dev]);
    expect_code(&o, 0);
    o
}

/// `extract -D` of the discs the simulated drive at `simdir` brings (the one in it, then its
/// queue) into `t/restored`, exit 0; the tree must equal `t/src` byte for byte.
fn extract_through_drive_matches_source(t: &Path, simdir: &Path) {
    let dev = format!("sim:{}", simdir.display());
    let restored = t.join("restored");
    let o = bd(&["extract", "-D", &dev, "-o", restored.to_str().unwrap()]);
    expect_code(&o, 0);
    crate::common::assert_same_tree(&t.join("src"), &restored);
}

fn log_status(out: &Path) -> Vec<(u64, String)> {
    let v: Value =
        serde_json::from_str(&fs::read_to_string(out.join("burn-log.json")).unwrap()).unwrap();
    v["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["disc"].as_u64().unwrap(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn full_burn_of_three_discs_then_resume_from_disc_two() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    sim(&s, blank("d1"), vec![blank("d2"), blank("d3")]);
    let o = burn(&out, &s, &[]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert_eq!(text.matches("read back OK").count(), 3, "{text}");
    assert!(text.contains("All discs burned"), "{text}");
    let imgs = images(&out);
    for (i, label) in ["d1", "d2", "d3"].iter().enumerate() {
        assert_burned(&s, label, &imgs[i]);
    }
    assert_eq!(
        log_status(&out),
        vec![(1, "ok".into()), (2, "ok".into()), (3, "ok".into())]
    );

    // Burn a second copy of discs 2 and 3 only.
    let mut cfg = SimConfig::load(&s).unwrap();
    let q: Vec<_> = ["e2", "e3"]
        .iter()
        .map(|l| serde_json::from_value(blank(l)).unwrap())
        .collect();
    cfg.queue = q;
    cfg.save(&s).unwrap();
    let o = burn(&out, &s, &["--start", "2"]);
    expect_code(&o, 0);
    assert!(
        stderr(&o).contains("resuming from disc 2"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).matches("read back OK").count(), 2);
    assert_burned(&s, "e2", &imgs[1]);
    assert_burned(&s, "e3", &imgs[2]);
    // Starting again at 1 warns that discs 1..3 are done; the tray closes on the last burned
    // disc (nothing queued), which is refused as not blank.
    let o = burn(&out, &s, &[]);
    assert!(
        stderr(&o).contains("all 3 discs were already burned"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("not blank"), "{}", stderr(&o));
    expect_code(&o, 3);
}

#[test]
fn fit_failure_on_a_smaller_medium() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    sim(
        &s,
        json!({"label": "small", "profile": "bd-r", "capacity": 10000}),
        vec![],
    );
    let o = burn(&out, &s, &[]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(e.contains("too small"), "{e}");
    assert!(e.contains("only 10000 free"), "{e}");
    assert!(e.contains("--start 1"), "{e}");
    let log = fs::read_to_string(s.join("commands.log")).unwrap();
    assert!(!log.contains("WRITE"), "nothing may be written");
    assert_eq!(log_status(&out), vec![(1, "refused".into())]);
}

#[test]
fn non_blank_bd_r_and_bd_re_are_refused() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    write(&s.join("old.img"), &vec![1u8; 640 * 2048]);
    sim(
        &s,
        json!({"label": "old", "profile": "bd-r", "capacity": "bd25", "state": "complete"}),
        vec![],
    );
    let o = burn(&out, &s, &[]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(e.contains("not blank"), "{e}");
    assert!(
        e.contains("BD-R (SRM), complete (finalised), 1 session(s), 1.2 MiB used (640 sectors)"),
        "{e}"
    );
    let old = fs::read(s.join("old.img")).unwrap();
    assert!(old.iter().all(|&b| b == 1), "the old disc was not touched");

    let s2 = t.path().join("sim2");
    sim(
        &s2,
        json!({"label": "re", "profile": "bd-re", "capacity": 11826176}),
        vec![],
    );
    let o = burn(&out, &s2, &[]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("BD-RE") && e.contains("burns blank BD-R only"),
        "{e}"
    );

    let s3 = t.path().join("sim3");
    sim(&s3, json!({"label": "dvd", "profile": "dvd+r"}), vec![]);
    let e = stderr(&burn(&out, &s3, &[]));
    assert!(e.contains("DVD+R") && e.contains("BD-R only"), "{e}");
}

#[test]
fn write_error_mid_disc_then_resume() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    sim(
        &s,
        blank("d1"),
        vec![
            json!({"label": "bad", "profile": "bd-r", "capacity": "bd25", "write_errors": [5000]}),
            blank("spare"),
        ],
    );
    let o = burn(&out, &s, &[]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(e.contains("disc 2/3"), "{e}");
    assert!(e.contains("LBA 5000"), "{e}");
    assert!(e.contains("3/0C/00"), "{e}");
    assert!(e.contains("--start 2"), "{e}");
    assert_eq!(e.lines().filter(|l| l.starts_with("error:")).count(), 1);
    assert_eq!(
        log_status(&out),
        vec![(1, "ok".into()), (2, "failed".into())]
    );
    // The failed disc was unlocked and ejected.
    let log = fs::read_to_string(s.join("commands.log")).unwrap();
    let tail: Vec<&str> = log.lines().rev().take(3).collect();
    assert!(
        tail[0].contains("START_STOP_UNIT eject -> GOOD"),
        "{tail:?}"
    );
    assert!(log.contains("WRITE10 lba=4992 n=32 -> CHECK MEDIUM ERROR"));

    // Resume at disc 2: the spare disc gets disc 2, then disc 3 needs one more blank.
    let mut cfg = SimConfig::load(&s).unwrap();
    cfg.queue.push(serde_json::from_value(blank("d3")).unwrap());
    cfg.save(&s).unwrap();
    let o = burn(&out, &s, &["--start", "2"]);
    expect_code(&o, 0);
    let imgs = images(&out);
    assert_burned(&s, "spare", &imgs[1]);
    assert_burned(&s, "d3", &imgs[2]);
    assert_eq!(
        log_status(&out),
        vec![(1, "ok".into()), (2, "ok".into()), (3, "ok".into())]
    );
}

#[test]
fn read_back_catches_bad_media() {
    let (t, out) = three_disc_set();
    // Disc 1: a few unreadable and silently corrupted sectors → repairable (exit 1, continues).
    // Disc 2: a long corrupted stretch → broken (exit 2, stops, disc marked failed).
    let s = t.path().join("sim");
    sim(
        &s,
        json!({"label": "d1", "profile": "bd-r", "capacity": "bd25",
               "unreadable": [[100, 104]], "corrupt": [3000]}),
        vec![
            json!({"label": "d2", "profile": "bd-r", "capacity": "bd25",
                   "corrupt": [[1000, 9000]]}),
            blank("d3"),
        ],
    );
    let o = burn(&out, &s, &[]);
    expect_code(&o, 2);
    let text = stdout(&o);
    assert!(
        text.contains("Disc 1/3: read back DAMAGED, REPAIRABLE"),
        "{text}"
    );
    assert!(text.contains("Disc 2/3: read back BROKEN"), "{text}");
    assert!(text.contains("--start 2"), "{text}");
    assert_eq!(
        log_status(&out),
        vec![(1, "repairable".into()), (2, "failed".into())]
    );
    // What was written is still the image: the damage is in reading.
    assert_burned(&s, "d2", &images(&out)[1]);

    // Without the check, the same media pass.
    let s2 = t.path().join("sim2");
    sim(
        &s2,
        json!({"label": "x", "profile": "bd-r", "capacity": "bd25", "corrupt": [[1000, 9000]]}),
        vec![],
    );
    let o = burn(&out, &s2, &["--no-verify", "--start", "3"]);
    expect_code(&o, 0);
    let log = fs::read_to_string(s2.join("commands.log")).unwrap();
    assert!(!log.contains("READ12"));
}

#[test]
fn tray_and_command_sequence() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    // Disc 1 waits in the queue: the drive starts empty with its tray open.
    let cfg = json!({"tray_open": true, "queue": [blank("d1"), blank("d2"), blank("d3")],
                     "becoming_ready_turs": 2, "long_write_turs": 2});
    fs::create_dir_all(&s).unwrap();
    fs::write(s.join("drive.json"), cfg.to_string()).unwrap();
    let o = burn(&out, &s, &["-S", "4x"]);
    expect_code(&o, 0);
    let log = fs::read_to_string(s.join("commands.log")).unwrap();
    // Collapse to command names (+ tray/lock/close details), runs of the same command merged.
    let mut seq: Vec<String> = Vec::new();
    for l in log.lines() {
        let mut parts = l.split_whitespace().skip(1);
        let name = parts.next().unwrap().to_string();
        let detail = parts.next().unwrap_or("");
        let key = match name.as_str() {
            "START_STOP_UNIT" | "PREVENT_ALLOW_MEDIUM_REMOVAL" | "CLOSE_TRACK_SESSION" => {
                format!("{name} {detail}")
            }
            _ => name,
        };
        if seq.last() != Some(&key) {
            seq.push(key);
        }
    }
    let per_disc = [
        "TEST_UNIT_READY",
        "START_STOP_UNIT load",
        "TEST_UNIT_READY",
        "GET_CONFIGURATION",
        "READ_DISC_INFORMATION",
        // Track number from READ DISC INFORMATION (never FFh on BD).
        "READ_TRACK_INFORMATION",
        "READ_FORMAT_CAPACITIES",
        // Feature 0038h: refuse a POW-formatted BD-R.
        "GET_CONFIGURATION",
        // -S: the listed write speeds, then SET STREAMING with one of them.
        "GET_PERFORMANCE",
        "SET_STREAMING",
        // The once-per-disc report: speed in effect, buffer size.
        "GET_PERFORMANCE",
        "READ_BUFFER_CAPACITY",
        "PREVENT_ALLOW_MEDIUM_REMOVAL lock",
        "READ_DISC_INFORMATION",
        "WRITE10",
        "READ_DISC_INFORMATION",
        // Immed=1, then TEST UNIT READY until the drive is done, for each long command.
        "SYNCHRONIZE_CACHE",
        "TEST_UNIT_READY",
        "CLOSE_TRACK_SESSION function=1",
        "TEST_UNIT_READY",
        "CLOSE_TRACK_SESSION function=6",
        "TEST_UNIT_READY",
        "READ_DISC_INFORMATION",
        "PREVENT_ALLOW_MEDIUM_REMOVAL unlock",
        "READ12",
        "START_STOP_UNIT eject",
    ];
    let want: Vec<String> = (0..3)
        .flat_map(|_| per_disc.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(seq, want, "\n{log}");
    // Writes are sequential, 32 sectors each, from LBA 0.
    let mut next = 0u64;
    for l in log.lines().filter(|l| l.contains("WRITE10")) {
        let lba: u64 = l
            .split("lba=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if lba == 0 {
            next = 0;
        }
        assert_eq!(lba, next, "{l}");
        assert!(l.contains("n=32 -> GOOD"), "{l}");
        next += 32;
    }
    // Long commands are sent with Immed, once each per disc.
    for what in [
        "SYNCHRONIZE_CACHE immed",
        "function=1 number=1 immed",
        "function=6 number=0 immed",
    ] {
        assert_eq!(log.matches(what).count(), 3, "{what}\n{log}");
    }
    // Reads stay within the drive's 128 KiB limit (64 sectors) and none failed.
    for l in log.lines().filter(|l| l.contains("READ12")) {
        let n: u64 = l
            .split("n=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n <= 64, "{l}");
    }
    assert!(!log.contains("EIO"), "{log}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("transfer limit 128 KiB (WRITE 64 KiB, READ 128 KiB), write speed 4.0x (17980 kB/s), buffer 4.0 MiB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("of the listed 8.0x, 6.0x, 4.0x, 2.0x"),
        "{stderr}"
    );
    // -S 4x: 4 × 4495 kB/s.
    let cfg = SimConfig::load(&s).unwrap();
    assert_eq!(cfg.write_kbs, 17_980);
    assert!(cfg.tray_open && !cfg.locked);
    assert_eq!(cfg.removed.len(), 2);
}

#[test]
fn prompts_need_a_terminal_or_yes() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    sim(&s, blank("d1"), vec![]);
    let dev = format!("sim:{}", s.display());
    let o = bd(&["burn", "-i", out.to_str().unwrap(), "-D", &dev]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("pass -y"), "{}", stderr(&o));
    let o = bd(&[
        "burn",
        "-i",
        out.to_str().unwrap(),
        "-D",
        &dev,
        "-y",
        "--start",
        "9",
    ]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("no disc 9"), "{}", stderr(&o));
    let o = bd(&[
        "burn",
        "-i",
        out.to_str().unwrap(),
        "-D",
        &dev,
        "-y",
        "-S",
        "fast",
    ]);
    expect_code(&o, 3);
    let o = bd(&[
        "burn",
        "-i",
        out.to_str().unwrap(),
        "-D",
        "sim:/nonexistent/x",
        "-y",
    ]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("drive.json"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_finishes_the_current_disc_then_stops() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    // 2 ms of real time per 64 KiB write: about 1 s per disc, long enough to interrupt.
    let cfg = json!({"medium": blank("d1"), "queue": [blank("d2"), blank("d3")],
                     "real_ms_per_write": 2});
    fs::create_dir_all(&s).unwrap();
    fs::write(s.join("drive.json"), cfg.to_string()).unwrap();
    let dev = format!("sim:{}", s.display());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(["burn", "-i", out.to_str().unwrap(), "-D", &dev, "-y"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until disc 1 is being written, then press Ctrl+C once.
    let log = s.join("commands.log");
    let t0 = std::time::Instant::now();
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("WRITE10")
    {
        assert!(t0.elapsed().as_secs() < 60, "burn never started writing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    expect_code(&o, 130);
    let e = stderr(&o);
    assert!(e.contains("finishing disc 1/3"), "{e}");
    assert!(e.contains("--start 2"), "{e}");
    assert_burned(&s, "d1", &images(&out)[0]);
    assert_eq!(log_status(&out), vec![(1, "ok".into())]);
    let cfg = SimConfig::load(&s).unwrap();
    assert_eq!(cfg.queue.len(), 2, "disc 2 was never loaded");
}

#[test]
fn burned_discs_verify_and_extract_through_the_drive() {
    let (t, out) = three_disc_set();
    let s = t.path().join("sim");
    sim(&s, blank("d1"), vec![blank("d2"), blank("d3")]);
    expect_code(&burn(&out, &s, &[]), 0);
    // verify -D right after the burn: disc 3 sits in the open tray; verify pulls it in.
    let o = verify_through_drive(&s);
    assert!(stdout(&o).contains("generation 1 disc 3"), "{}", stdout(&o));
    // verify -D: the user puts disc 2 back in.
    let mut cfg = SimConfig::load(&s).unwrap();
    assert!(cfg.insert("d2"));
    cfg.save(&s).unwrap();
    verify_through_drive(&s);
    // extract -D: disc 3 in the drive, then disc 2 and disc 1 one per tray close.
    let mut cfg = SimConfig::load(&s).unwrap();
    assert!(cfg.insert("d3"));
    let mut rest: Vec<_> = cfg.removed.drain(..).collect();
    rest.sort_by(|a, b| b.label.cmp(&a.label));
    cfg.queue = rest;
    cfg.save(&s).unwrap();
    extract_through_drive_matches_source(t.path(), &s);
}

/// A 1-disc set (a few MiB) and its source tree.
fn one_disc_set() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("photo.raw"), &noise(3 << 20, 11));
    write(&src.join("notes.txt"), b"notes\n");
    let out = t.path().join("out");
    expect_code(&create(&src, &out, "small", &["-b", "32M", "-y"]), 0);
    (t, out)
}

/// A drive with `extra` settings holding one blank BD-R.
fn sim_with(dir: &Path, medium: Value, extra: Value) {
    let mut cfg = json!({"vendor": "BDSIM", "model": "TEST WRITER", "medium": medium});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("drive.json"), cfg.to_string()).unwrap();
}

fn n_values(log: &str, command: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(command) && l.contains(" n="))
        .map(|l| {
            l.split(" n=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Drives that behave as real ones do — a kernel limit of 32 KiB per command (a USB bridge), a
/// 15-minute finalise, a buffer answered with 2/04/08 on every fill — are burned and read back
/// through `burn`, `verify -D` and `extract -D`.
#[test]
fn real_drive_behaviours_burn_and_read_back() {
    let cases = [
        ("usb-32k", json!({"max_transfer": 32768})),
        ("slow-finalise", json!({"close_session_ms": 900_000})),
        (
            "buffer-full",
            json!({"buffer_full_long_write": true, "buffer_kb": 2048}),
        ),
    ];
    for (name, extra) in cases {
        let (t, out) = one_disc_set();
        let s = t.path().join("sim");
        sim_with(&s, blank("d1"), extra);
        let o = burn(&out, &s, &["-S", "8"]);
        expect_code(&o, 0);
        assert!(
            stdout(&o).contains("read back OK"),
            "{name}: {}",
            stdout(&o)
        );
        assert_burned(&s, "d1", &images(&out)[0]);
        let log = fs::read_to_string(s.join("commands.log")).unwrap();
        assert!(!log.contains("EIO"), "{name}: {log}");
        assert!(!log.contains("CHECK ILLEGAL"), "{name}: {log}");
        assert_eq!(log.matches("function=6").count(), 1, "{name}");
        let cfg = SimConfig::load(&s).unwrap();
        match name {
            "usb-32k" => {
                assert!(n_values(&log, "WRITE10").iter().all(|&n| n == 16), "{name}");
                assert!(n_values(&log, "READ12").iter().all(|&n| n <= 16), "{name}");
                assert!(
                    stderr(&o).contains("transfer limit 32 KiB"),
                    "{}",
                    stderr(&o)
                );
            }
            "slow-finalise" => {
                assert!(cfg.clock().as_secs() >= 900, "{:?}", cfg.clock());
                assert!(log.matches("TEST_UNIT_READY -> CHECK NOT READY").count() > 1000);
            }
            _ => {
                assert_eq!(cfg.underruns, 0, "the laser stopped");
                assert!(
                    log.contains("WRITE10") && log.contains("(2/04/08)"),
                    "{name}"
                );
            }
        }
        // The same disc through verify -D and extract -D.
        verify_through_drive(&s);
        extract_through_drive_matches_source(t.path(), &s);
        let log = fs::read_to_string(s.join("commands.log")).unwrap();
        assert!(!log.contains("EIO"), "{name}: {log}");
    }
}

#[test]
fn a_pow_formatted_bd_r_is_refused_before_writing() {
    let (t, out) = one_disc_set();
    let s = t.path().join("sim");
    sim_with(
        &s,
        json!({"label": "pow", "profile": "bd-r", "capacity": "bd25", "pow": true}),
        json!({}),
    );
    let o = burn(&out, &s, &[]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(e.contains("Pseudo-Overwrite (POW)"), "{e}");
    assert!(e.contains("unformatted BD-R"), "{e}");
    let log = fs::read_to_string(s.join("commands.log")).unwrap();
    assert!(!log.contains("WRITE10"), "{log}");
    assert_eq!(log_status(&out), vec![(1, "refused".into())]);
}

/// Parity discs are burned after the data discs (their names sort after them), each read back.
#[test]
fn parity_discs_burn_after_the_data_discs() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("big.bin"), &noise(30 << 20, 8));
    let out = t.path().join("out");
    let o = create(
        &src,
        &out,
        "burnp",
        &["-b", "32M", "-c", "none", "--parity-discs", "1", "-y"],
    );
    expect_code(&o, 0);
    let imgs = images(&out);
    assert_eq!(imgs.len(), 3, "two data discs and a parity disc: {imgs:?}");
    let parity = out.join("images/burnp-gen0001-parity0001.iso");
    assert!(parity.is_file());
    let s = t.path().join("sim");
    sim(&s, blank("d1"), vec![blank("d2"), blank("p1")]);
    let o = burn(&out, &s, &[]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).matches("read back OK").count(), 3);
    assert_burned(&s, "d1", &imgs[0]);
    assert_burned(&s, "d2", &imgs[1]);
    assert_burned(&s, "p1", &parity);
    assert_eq!(log_status(&out).len(), 3);
}

#[test]
fn old_image_names_burn_in_the_same_order_and_start_at_disc_n() {
    let (t, out) = three_disc_set();
    let named = images(&out);
    for (i, img) in named.iter().enumerate() {
        fs::rename(img, out.join(format!("images/disc_{:04}.iso", i + 1))).unwrap();
    }
    let old = images(&out);
    let s = t.path().join("sim");
    sim(&s, blank("d2"), vec![blank("d3")]);
    let o = burn(&out, &s, &["--start", "2"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).matches("read back OK").count(), 2);
    assert_burned(&s, "d2", &old[1]);
    assert_burned(&s, "d3", &old[2]);
    assert_eq!(log_status(&out), vec![(2, "ok".into()), (3, "ok".into())]);
}
