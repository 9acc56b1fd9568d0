//! `create --resume`: after a kill, the complete images are kept, the rest is built, and the set
//! equals a clean run's content; changed options or a changed source are refused.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn create_args<'a>(src: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "create",
        "-s",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-n",
        "res",
        "-b",
        "32M",
        "-y",
        "-q",
        "-c",
        "none",
    ];
    a.extend_from_slice(extra);
    a
}

/// Starts create (with `extra` arguments) and kills it as soon as the first image is complete;
/// true when it was killed before writing its catalog.
fn create_and_kill_after_first_image(src: &Path, out: &Path, extra: &[&str]) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(create_args(src, out, extra))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let first = fs::read_dir(out.join("images"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with("-disc0001.iso"));
        if first {
            let _ = child.kill();
            let _ = child.wait();
            return !fs::read_dir(out)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".catalog"));
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn killed_create_resumes_to_a_complete_consistent_set() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..9 {
        write(&src.join(format!("f{i}.bin")), &noise(9 << 20, 70 + i));
    }
    let out = t.path().join("out");
    assert!(
        create_and_kill_after_first_image(&src, &out, &[]),
        "create finished before it could be killed: the test could not check resume; make the source larger"
    );
    let first = fs::read(out.join("images/res-gen0001-disc0001.iso")).unwrap();
    // Without --resume the output is refused; with other options too.
    expect_code(&bd(&create_args(&src, &out, &[])), 3);
    let mut other = create_args(&src, &out, &["--resume"]);
    other[8] = "64M";
    let o = bd(&other);
    expect_code(&o, 3);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("-b"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Resume: disc 1 is kept as it was, the rest is built.
    expect_code(&bd(&create_args(&src, &out, &["--resume"])), 0);
    assert_eq!(
        fs::read(out.join("images/res-gen0001-disc0001.iso")).unwrap(),
        first,
        "disc 1 rewritten"
    );
    assert!(images(&out).len() >= 3);
    assert!(!out.join(".bd-archive-create.json").exists());
    for img in images(&out) {
        expect_code(&bd(&["verify", img.to_str().unwrap()]), 0);
    }
    let r = t.path().join("r");
    let mut a = vec!["extract", "-o", r.to_str().unwrap()];
    let imgs = images(&out);
    a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    expect_code(&bd(&a), 0);
    assert_same_tree(&src, &r);
}

#[test]
fn resume_refuses_a_changed_source() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..9 {
        write(&src.join(format!("f{i}.bin")), &noise(9 << 20, 90 + i));
    }
    let out = t.path().join("out");
    assert!(
        create_and_kill_after_first_image(&src, &out, &[]),
        "create finished before it could be killed: the test could not check resume; make the source larger"
    );
    // Same size, different bytes in a file that disc 1 holds.
    write(&src.join("f0.bin"), &noise(9 << 20, 12345));
    let o = bd(&create_args(&src, &out, &["--resume"]));
    expect_code(&o, 3);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("source changed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ctrl_c_stops_cleanly_with_130_and_resume_finishes() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..9 {
        write(&src.join(format!("f{i}.bin")), &noise(9 << 20, 110 + i));
    }
    let out = t.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(create_args(&src, &out, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("images/res-gen0001-disc0001.iso").exists()
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(0),
        "create finished before the signal: the test could not check resume; make the source larger"
    );
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let partial = fs::read_dir(out.join("images"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    assert!(!partial, "a .partial image was left behind");
    expect_code(&bd(&create_args(&src, &out, &["--resume"])), 0);
    let r = t.path().join("r");
    let mut a = vec!["extract", "-o", r.to_str().unwrap()];
    let imgs = images(&out);
    a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    expect_code(&bd(&a), 0);
    assert_same_tree(&src, &r);
}

#[test]
fn killed_at_ten_random_moments_never_leaves_a_bad_image() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..7 {
        write(&src.join(format!("f{i}.bin")), &noise(9 << 20, 200 + i));
    }
    write(&src.join("notes.txt"), "text\n".repeat(100_000).as_bytes());
    // How long a full run takes, to spread the kills over it.
    let probe = t.path().join("probe");
    let start = Instant::now();
    expect_code(&bd(&create_args(&src, &probe, &[])), 0);
    let full = start.elapsed().as_micros() as u64;
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(0x5eed);
    for round in 0..10 {
        let at = Duration::from_micros(rng.next_u64() % full.max(1));
        let out = t.path().join(format!("out{round}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
            .args(create_args(&src, &out, &[]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        // Invariant: every image under its final name is complete and verifies.
        let imgs: Vec<_> = if out.join("images").exists() {
            images(&out)
        } else {
            Vec::new()
        };
        for img in &imgs {
            expect_code(&bd(&["verify", "-q", img.to_str().unwrap()]), 0);
        }
        let finished =
            out.join("chain-gen1.catalog").exists() || out.join("res-gen1.catalog").exists();
        if finished {
            continue;
        }
        if out.join(".bd-archive-create.json").exists() {
            // Without --resume the OUT is refused and left as it was; with it, the set completes.
            let before: Vec<Vec<u8>> = imgs.iter().map(|p| fs::read(p).unwrap()).collect();
            expect_code(&bd(&create_args(&src, &out, &[])), 3);
            let after: Vec<Vec<u8>> = imgs.iter().map(|p| fs::read(p).unwrap()).collect();
            assert!(
                before == after,
                "round {round}: images changed by a refused run"
            );
            expect_code(&bd(&create_args(&src, &out, &["--resume"])), 0);
        } else {
            // Killed before anything was promised: a plain re-run starts afresh.
            let _ = fs::remove_dir_all(&out);
            expect_code(&bd(&create_args(&src, &out, &[])), 0);
        }
        let r = t.path().join(format!("r{round}"));
        let mut a = vec!["extract", "-q", "-o", r.to_str().unwrap()];
        let imgs = images(&out);
        a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
        expect_code(&bd(&a), 0);
        assert_same_tree(&src, &r);
    }
}

#[test]
fn interrupted_extract_resumes_keeping_verified_files() {
    let t = tmp();
    let src = t.path().join("src");
    for i in 0..40 {
        write(
            &src.join(format!("d{}/f{i}.bin", i % 4)),
            &noise(2 << 20, 300 + i),
        );
    }
    std::fs::hard_link(src.join("d0/f0.bin"), src.join("hard.bin")).unwrap();
    let out = t.path().join("out");
    expect_code(&bd(&create_args(&src, &out, &[])), 0);
    let r = t.path().join("r");
    let imgs = images(&out);
    let mut a: Vec<&str> = vec!["extract", "-q", "-o", r.to_str().unwrap()];
    a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !r.join("d1").exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Damage one already-restored file so resume must notice it is not verified.
    if let Ok(f) = fs::OpenOptions::new().write(true).open(r.join("d0/f0.bin")) {
        std::os::unix::fs::FileExt::write_all_at(&f, b"XX", 10).unwrap();
    }
    // A plain re-run refuses (files exist); --resume completes and fixes it.
    expect_code(&bd(&a), 3);
    let mut resumed = a.clone();
    resumed.push("--resume");
    let o = bd(&resumed);
    expect_code(&o, 0);
    assert_same_tree(&src, &r);
}

/// A killed `--pack-with` create resumes: its first image holds the packed generation's section
/// first and the new generation's after it; the kept image is matched by the new generation's
/// section, not by its first (which once made the resume fail as "not disc 1 of this run").
#[test]
fn killed_pack_with_create_resumes_by_the_new_generation_section() {
    let t = tmp();
    let src = t.path().join("src");
    write(
        &src.join("first.txt"),
        b"generation 1 fits on one disc with room to spare",
    );
    let out1 = t.path().join("out1");
    expect_code(&bd(&create_args(&src, &out1, &[])), 0);
    let packed = out1.join("images/res-gen0001-disc0001.iso");
    for i in 0..9 {
        write(&src.join(format!("g2/f{i}.bin")), &noise(9 << 20, 130 + i));
    }
    let out2 = t.path().join("out2");
    let pack = ["--pack-with", packed.to_str().unwrap()];
    assert!(
        create_and_kill_after_first_image(&src, &out2, &pack),
        "create finished before it could be killed: the test could not check resume; make the source larger"
    );
    let first = out2.join("images/res-gen0002-disc0001.iso");
    let kept = fs::read(&first).unwrap();
    let resume = [pack[0], pack[1], "--resume"];
    expect_code(&bd(&create_args(&src, &out2, &resume)), 0);
    assert_eq!(
        fs::read(&first).unwrap(),
        kept,
        "the packed disc 1 was rewritten"
    );
    let r = t.path().join("r");
    let mut a = vec!["extract", "-o", r.to_str().unwrap()];
    let imgs = images(&out2);
    assert!(imgs.len() >= 3, "{imgs:?}");
    a.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    expect_code(&bd(&a), 0);
    assert_same_tree(&src, &r);
}
