//! `demo`: the whole product in under a minute, without a drive — a sample tree becomes a 3-disc
//! set, one disc is damaged, `verify` says "repairable" (exit 1), `extract` restores everything
//! bit-exact, and every file is compared with the original.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::cli::args::DemoArgs;
use crate::cli::Ui;
use bd_archive::util::xorshift::{noise, Xorshift64};

/// Runs `demo`.
pub fn run(args: &DemoArgs, ui: &Ui) -> Result<i32> {
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("bd-archive-demo-{}", std::process::id())),
            true,
        ),
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut r| r.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{}: exists and is not empty; give an empty or new directory",
            dir.display()
        );
    }
    let result = run_in(&dir, ui);
    if temporary && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (n, bytes) = result?;
    let whereabouts = if temporary && !args.keep {
        "Its temporary files are removed (`demo --keep` keeps them).".to_string()
    } else {
        format!("Everything is in {}", dir.display())
    };
    ui.info(&format!(
        "Demo complete: {n} files ({}, hard-linked data counted once) restored bit-exact despite the damage. {whereabouts}",
        bd_archive::util::capacity::human_bytes(bytes),
    ));
    Ok(crate::cli::exit::OK)
}

/// The demo's steps in `dir`; returns what the final comparison found (files, bytes).
fn run_in(dir: &Path, ui: &Ui) -> Result<(u64, u64)> {
    let (src, out, restored) = (dir.join("source"), dir.join("out"), dir.join("restored"));
    // -q: only the final summary (and errors); the steps run quietly too.
    let say = |msg: &str| {
        if !ui.quiet {
            ui.info(msg)
        }
    };
    say(&format!("1. Making a sample tree in {}", src.display()));
    make_tree(&src)?;
    let exe = std::env::current_exe().context("finding the bd-archive binary")?;
    let s = |p: &Path| p.display().to_string();
    say("2. Building a 3-disc set of 32 MiB discs");
    let create = [
        "create",
        "-s",
        &s(&src),
        "-o",
        &s(&out),
        "-n",
        "demo",
        "-b",
        "32M",
        "-y",
    ];
    step(&exe, &create, &[0], ui)?;
    let images = list_images(&out.join("images"))?;
    say(&format!(
        "   {} image(s) in {}",
        images.len(),
        out.join("images").display()
    ));
    let victim = &images[images.len() / 2];
    say(&format!(
        "3. Damaging {}: a 1 % scratch and 3 % scattered bad sectors",
        victim.display()
    ));
    damage(victim)?;
    say("4. verify (exit 1 = damaged but repairable)");
    let code = step(&exe, &["verify", &s(&out.join("images"))], &[1], ui)?;
    say(&format!("   verify exited with {code}"));
    say("5. extract from the images in reverse order, repairing on the way");
    let mut ex = vec!["extract".to_string(), "-o".into(), s(&restored)];
    ex.extend(images.iter().rev().map(|p| s(p)));
    let ex: Vec<&str> = ex.iter().map(String::as_str).collect();
    step(&exe, &ex, &[0], ui)?;
    say("6. Comparing every restored file with the original");
    compare_trees(&src, &restored)
}

/// Runs one bd-archive command, showing it, and checks its exit code. With -q the command runs
/// with -q and its report is not shown (errors still are).
fn step(exe: &Path, args: &[&str], ok: &[i32], ui: &Ui) -> Result<i32> {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    if ui.quiet {
        cmd.arg("-q").stdout(std::process::Stdio::null());
    } else {
        super::out_line(&format!("   $ bd-archive {}", args.join(" ")))?;
    }
    let st = cmd.status().context("running bd-archive")?;
    let code = st.code().unwrap_or(-1);
    if !ok.contains(&code) {
        bail!("`bd-archive {}` exited with {code}", args[0]);
    }
    Ok(code)
}

fn make_tree(src: &Path) -> Result<()> {
    let w = |rel: &str, data: &[u8]| -> Result<()> {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().expect("relative path has a parent"))?;
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    for i in 0..6 {
        w(
            &format!("photos/2024/IMG_{i:04}.raw"),
            &noise(11 << 20, 100 + i),
        )?;
    }
    let log: String = (0..120_000)
        .map(|i| {
            format!(
                "2024-06-01 12:{:02}:{:02} service started worker {i}\n",
                i % 60,
                i % 59
            )
        })
        .collect();
    w("logs/server.log", log.as_bytes())?;
    for i in 0..400 {
        w(
            &format!("notes/{:02}/note-{i}.txt", i % 20),
            format!("Note {i}: remember the milk.\n")
                .repeat(1 + i % 7)
                .as_bytes(),
        )?;
    }
    std::os::unix::fs::symlink("logs/server.log", src.join("latest.log"))?;
    std::fs::hard_link(
        src.join("photos/2024/IMG_0000.raw"),
        src.join("photos/favourite.raw"),
    )?;
    Ok(())
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "iso"))
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("no images were written");
    }
    Ok(v)
}

/// Zeroes a 1 % burst and 3 % scattered sectors (deterministic) — well within the 10 % budget.
fn damage(img: &Path) -> Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(img)?;
    let n = f.metadata()?.len() / 2048;
    let zero = [0u8; 2048];
    for lba in n / 3..n / 3 + n / 100 {
        f.write_all_at(&zero, lba * 2048)?;
    }
    let mut rng = Xorshift64::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..n * 3 / 100 {
        f.write_all_at(&zero, (rng.next_u64() % n) * 2048)?;
    }
    Ok(())
}

/// Compares every regular file under `a` with the same path under `b`; returns (files, bytes),
/// the bytes of hard-linked files counted once (as the overview counts them).
fn compare_trees(a: &Path, b: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut n, mut bytes) = (0, 0);
    let mut inodes = std::collections::HashSet::new();
    let mut stack = vec![a.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let rel = p.strip_prefix(a).expect("under a");
                let other = b.join(rel);
                let digest = |p: &Path| -> Result<Vec<u8>> {
                    Ok(Sha256::digest(std::fs::read(p)?).to_vec())
                };
                if digest(&p)?
                    != digest(&other).with_context(|| format!("{} missing", other.display()))?
                {
                    bail!("{} differs from the original", other.display());
                }
                n += 1;
                if meta.nlink() < 2 || inodes.insert((meta.dev(), meta.ino())) {
                    bytes += meta.len();
                }
            }
        }
    }
    Ok((n, bytes))
}
