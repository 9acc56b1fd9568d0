//! par2 reader/repair against recovery files made by the real `par2 create -r5 -n1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{noise, require, tmp};
use bd_archive::legacy::par2::{fuzz_par2, Par2Set, Par2Status};

fn make(dir: &Path, name: &str, data: &[u8]) -> Vec<PathBuf> {
    fs::write(dir.join(name), data).unwrap();
    let o = Command::new("par2")
        .current_dir(dir)
        .args(["create", "-q", "-r5", "-n1", &format!("{name}.par2"), name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "par2"))
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs par2 (Debian package par2) as the oracle; CI runs it"]
fn verify_and_repair_within_budget() {
    require(&["par2"]);
    let t = tmp();
    let d = t.path();
    let orig = noise(300_001, 7); // odd length: last block is padded
    let pars = make(d, "s.0001.dar", &orig);
    let set = Par2Set::load(&pars).unwrap();
    assert_eq!(set.verify(d).unwrap(), Par2Status::Ok);
    let blocks = set.files[0].blocks.len();
    let bs = set.slice_size as usize;
    let avail = set.recovery_count();
    assert!(avail >= 20, "recovery blocks: {avail} of {blocks}");

    // Damage a run of blocks ("bad sectors") plus the tail, within the budget.
    let mut bad = orig.clone();
    for b in &mut bad[10 * bs..10 * bs + 5 * bs + 3] {
        *b ^= 0xA5;
    }
    let n = bad.len();
    bad[n - 1] ^= 1;
    fs::write(d.join("s.0001.dar"), &bad).unwrap();
    match set.verify(d).unwrap() {
        Par2Status::Repairable { damaged, .. } => assert_eq!(damaged, 7),
        other => panic!("{other:?}"),
    }
    let out = d.join("fixed");
    let w = set.repair(d, &out).unwrap();
    assert_eq!(w, vec!["s.0001.dar".to_string()]);
    assert!(fs::read(out.join("s.0001.dar")).unwrap() == orig);
    // The real par2 agrees the repaired file is intact.
    fs::copy(out.join("s.0001.dar"), d.join("s.0001.dar")).unwrap();
    let o = Command::new("par2")
        .current_dir(d)
        .args(["verify", "-q", "s.0001.dar.par2"])
        .output()
        .unwrap();
    assert!(o.status.success());

    // Same repair in many small stripes (the path huge BD slices take).
    fs::write(d.join("s.0001.dar"), &bad).unwrap();
    let out_s = d.join("fixed-striped");
    set.repair_with_memory(d, &out_s, 7 * 4 * 3).unwrap();
    assert!(fs::read(out_s.join("s.0001.dar")).unwrap() == orig);

    // A truncated file is repairable too.
    fs::write(d.join("s.0001.dar"), &orig[..orig.len() - 2 * bs]).unwrap();
    set.repair(d, &out).unwrap();
    assert!(fs::read(out.join("s.0001.dar")).unwrap() == orig);
}

#[test]
#[ignore = "needs par2 (Debian package par2) as the oracle; CI runs it"]
fn beyond_budget_is_broken() {
    require(&["par2"]);
    let t = tmp();
    let d = t.path();
    let orig = noise(200_000, 8);
    let pars = make(d, "s.0002.dar", &orig);
    let set = Par2Set::load(&pars).unwrap();
    let mut bad = orig.clone();
    let cut = bad.len() / 3;
    for b in &mut bad[..cut] {
        *b = !*b;
    }
    fs::write(d.join("s.0002.dar"), &bad).unwrap();
    assert!(matches!(set.verify(d).unwrap(), Par2Status::Broken { .. }));
    assert!(set.repair(d, &d.join("o")).is_err());
    // Only the recovery volume damaged: still verifies OK from the index file.
    fs::write(d.join("s.0002.dar"), &orig).unwrap();
    let only_index: Vec<PathBuf> = pars
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".vol"))
        .cloned()
        .collect();
    let set = Par2Set::load(&only_index).unwrap();
    assert_eq!(set.verify(d).unwrap(), Par2Status::Ok);
}

#[test]
fn fuzz_par2_survives_garbage_truncation_and_flips() {
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(0x9e37_79b9_7f4a_7c15);
    for len in [0usize, 8, 63, 64, 65, 200, 4096] {
        for _ in 0..30 {
            let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if v.len() >= 16 {
                v[..8].copy_from_slice(b"PAR2\0PKT");
                v[8..16].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
            }
            fuzz_par2(&v);
        }
    }
}

/// Cuts and flips of real par2 files.
#[test]
#[ignore = "needs par2 (Debian package par2) as the oracle; CI runs it"]
fn fuzz_par2_survives_cuts_and_flips_of_real_par2_files() {
    require(&["par2"]);
    let t = tmp();
    let pars = make(t.path(), "f.bin", &noise(50_000, 3));
    for p in pars {
        let bytes = fs::read(p).unwrap();
        let step = (bytes.len() / 150).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            fuzz_par2(&bytes[..cut]);
        }
        for i in (0..bytes.len()).step_by(step + 1) {
            let mut v = bytes.clone();
            v[i] ^= 0x81;
            fuzz_par2(&v);
        }
    }
}
