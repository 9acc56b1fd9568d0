//! Hostile or mismatched parity discs (FORMAT.md §10): a crafted manifest, parity discs that
//! disagree, a parity disc of another set. None may cost more than the discs given can hold,
//! panic, or give a wrong result; each is refused (or left unused) with a message naming the disc.
//! And a rebuild stops cleanly on Ctrl+C.
//!
//! The crafted parity discs are real ones patched the way an attacker would: the manifest (or
//! header) rewritten, its CRC32C, both disc-header copies and the disc's own FEC made anew, so
//! every checksum on the image is valid and only the claims are hostile.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bd_archive::format::disc_header::{DiscHeader, DiscSection};
use bd_archive::format::parity_manifest::ParityManifest;
use bd_archive::sector::{FileSectorSource, SECTOR_SIZE};

use crate::common::parity::{data_and_parity, set_of};
use crate::common::{bd, create, expect_code, noise, stderr, stdout, write};

const SS: u64 = SECTOR_SIZE as u64;

/// A generation of 2 data discs (32 MiB media, -c none) and `p` parity discs: (tempdir, source,
/// data images, parity images).
fn small_set(p: u32) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>, Vec<PathBuf>) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for i in 0..5u64 {
        write(&src.join(format!("f{i}.bin")), &noise(8 << 20, 700 + i));
    }
    let out = t.path().join("out");
    let ps = p.to_string();
    let o = create(
        &src,
        &out,
        "hp",
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
            "-q",
        ],
    );
    expect_code(&o, 0);
    let (data, parity) = data_and_parity(&out);
    assert_eq!((data.len(), parity.len()), (2, p as usize));
    (t, src, data, parity)
}

/// Rewrites the parity disc `img` in place: its manifest through `manifest`, its disc header
/// through `header`; then the manifest's CRC, both header copies and the disc's own FEC are made
/// anew, so the image verifies as intact.
fn craft(
    img: &Path,
    manifest: impl FnOnce(&mut ParityManifest),
    header: impl FnOnce(&mut DiscHeader),
) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut sector = vec![0u8; SECTOR_SIZE];
    f.read_exact_at(&mut sector, 0).unwrap();
    let mut h = DiscHeader::decode(&sector).unwrap();
    let mut s = h.parity().unwrap();
    let mut bytes = vec![0u8; s.manifest.1 as usize];
    f.read_exact_at(&mut bytes, s.manifest.0 * SS).unwrap();
    let mut m = ParityManifest::decode(&bytes).unwrap();
    manifest(&mut m);
    let new = m.encode();
    let room = (s.catalog.0 - s.manifest.0) * SS;
    assert!(new.len() as u64 <= room, "the crafted manifest must fit");
    let mut padded = new.clone();
    padded.resize(room as usize, 0);
    f.write_all_at(&padded, s.manifest.0 * SS).unwrap();
    s.manifest.1 = new.len() as u64;
    h.sections = vec![DiscSection::from_parity(&s)];
    header(&mut h);
    let hb = h.encode();
    f.write_all_at(&hb, 0).unwrap();
    f.write_all_at(&hb, (h.image_sectors - 2) * SS).unwrap();
    let src = FileSectorSource::open(img).unwrap();
    let located = bd_archive::fec::locate(&src, Some(h.fec_lba)).unwrap();
    bd_archive::fec::encode(&f, &located.layout, 64 << 20, &|_| {}).unwrap();
    f.sync_all().unwrap();
    // Checksum-valid: its own FEC finds every sector intact; only the claims are hostile.
    let scan = bd_archive::fec::scan(&src, &located, &|_| {}).unwrap();
    assert!(scan.is_clean());
}

/// Runs bd-archive with `args` and TMPDIR=`tmp`, killing it after `secs` (a hostile claim must
/// never make a command run away); returns its output and whether it was killed.
fn bd_within(secs: u64, tmp: &Path, args: &[&str]) -> (std::process::Output, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), killed)
}

/// Bytes actually allocated under `dir` (sparse files count what they hold).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let md = e.metadata().unwrap();
        total += if md.is_dir() {
            disk_use(&e.path())
        } else {
            md.blocks() * 512
        };
    }
    total
}

/// Files under `dir`, recursively (relative names).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// `verify --repair -o FIXED SET` of a set given with the crafted parity disc: refused (exit 3)
/// within seconds, in one `error:` line naming `names`, the work dir gone and nothing written.
fn expect_refused(t: &tempfile::TempDir, set: &Path, names: &[&str]) -> String {
    let fixed = t.path().join("fixed");
    let scratch = t.path().join("scratch");
    let _ = fs::remove_dir_all(&fixed);
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&fixed).unwrap();
    fs::create_dir_all(&scratch).unwrap();
    let args = [
        "verify",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        set.to_str().unwrap(),
    ];
    let (o, killed) = bd_within(60, &scratch, &args);
    assert!(!killed, "verify ran away on a hostile claim");
    let err = stderr(&o);
    expect_code(&o, 3);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    for n in names {
        assert!(line.contains(n), "{n} not named: {line}");
    }
    assert!(!err.contains("panicked"), "{err}");
    // Intact discs are copied as they are; the lost data disc 1 is not written, and nothing of
    // the rebuild is left.
    assert!(!fixed.join("hp-gen0001-disc0001.iso").exists(), "{err}");
    assert!(!fixed.join(".bd-archive-rebuild").exists(), "{err}");
    assert!(disk_use(&scratch) < 1 << 20);
    line.to_string()
}

/// Extract with the crafted parity disc among the sources: no panic, no run-away, every file it
/// writes bit-exact, every other file listed (exit 1 when some are listed), a warning naming the
/// parity disc when it was needed.
fn expect_extract_unharmed(t: &tempfile::TempDir, src: &Path, set: &Path, parity: &str) {
    let r = t.path().join("restored");
    let w = t.path().join("work");
    let _ = fs::remove_dir_all(&r);
    let _ = fs::remove_dir_all(&w);
    let args = [
        "extract",
        "-o",
        r.to_str().unwrap(),
        "-w",
        w.to_str().unwrap(),
        set.to_str().unwrap(),
    ];
    let (o, killed) = bd_within(60, t.path(), &args);
    assert!(!killed, "extract ran away on a hostile claim");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(o.status.code(), Some(1)), "{err}");
    assert!(err.contains(parity), "the parity disc is not named: {err}");
    let listed = fs::read_to_string(r.join("corrupted-files.txt")).unwrap_or_default();
    for e in fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let got = fs::read(r.join(&name)).ok();
        if got.as_deref() != Some(&fs::read(e.path()).unwrap()[..]) {
            assert!(
                listed.contains(&name),
                "{name} neither bit-exact nor listed"
            );
        }
    }
    assert!(disk_use(&w) < 1 << 20, "work dir left behind: {w:?}");
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn claims_beyond_what_the_discs_hold_are_refused_naming_the_parity_disc() {
    let (t, src, data, parity) = small_set(1);
    type Claim = Box<dyn Fn(&mut ParityManifest)>;
    // N = D + F + 2 rounded up to a cluster: the layout rule holds, only the sizes are hostile.
    fn laid_out(d: &mut bd_archive::format::parity_manifest::DataDiscRecord) {
        d.image_sectors = (d.protected + d.fec_sectors + 2).next_multiple_of(32);
    }
    let claims: Vec<(&str, Claim)> = vec![
        // N of a data disc 1 GiB past its FEC region (the layout rule), then 4 TiB.
        ("N +1G", Box::new(|m| m.discs[0].image_sectors += 1 << 19)),
        ("N 4T", Box::new(|m| m.discs[0].image_sectors = 1 << 31)),
        // D and L past the column parity the parity disc holds.
        (
            "D L",
            Box::new(|m| {
                m.discs[0].protected = 1 << 30;
                m.columns = 1 << 30;
                laid_out(&mut m.discs[0]);
            }),
        ),
        // F past the medium (and twice the parity disc), then within both but not what the
        // disc's FEC header copy says.
        (
            "F 2G",
            Box::new(|m| {
                m.discs[0].fec_sectors += 1 << 20;
                laid_out(&mut m.discs[0]);
            }),
        ),
        (
            "F +64",
            Box::new(|m| {
                m.discs[0].fec_sectors += 64;
                laid_out(&mut m.discs[0]);
            }),
        ),
        // P: four billion parity discs, then the most the column code takes (past max(n, 8)).
        ("P 2^32", Box::new(|m| m.parity_discs = u32::MAX)),
        ("P 65534", Box::new(|m| m.parity_discs = 65_534)),
    ];
    for (what, claim) in claims {
        let img = t.path().join(name_of(&parity[0]));
        fs::copy(&parity[0], &img).unwrap();
        let forged_p = match what {
            "P 2^32" => Some(u32::MAX),
            "P 65534" => Some(65_534),
            _ => None,
        };
        craft(&img, claim, |h| {
            if let Some(p) = forged_p {
                h.sections[0].part_count = p;
            }
        });
        let set = set_of(&t, "set", &[&data[1], &img]);
        let line = expect_refused(&t, &set, &[&name_of(&img)]);
        eprintln!("{what}: {line}");
        expect_extract_unharmed(&t, &src, &set, &name_of(&img));
        fs::remove_dir_all(&set).unwrap();
    }
}

#[test]
fn malformed_manifests_are_refused_in_one_line() {
    let (t, src, data, parity) = small_set(1);
    type Fault = Box<dyn Fn(&mut ParityManifest)>;
    type HeaderFault = Box<dyn Fn(&mut DiscHeader)>;
    let none = || -> HeaderFault { Box::new(|_| {}) };
    let faults: Vec<(&str, Fault, HeaderFault)> = vec![
        ("n = 0", Box::new(|m| m.discs.clear()), none()),
        ("P = 0", Box::new(|m| m.parity_discs = 0), none()),
        ("p > P", Box::new(|m| m.index = 2), none()),
        ("duplicate", Box::new(|m| m.discs[1].disc = 1), none()),
        // The header says 3 data discs, the manifest describes 2.
        (
            "n ≠ header",
            Box::new(|_| {}),
            Box::new(|h| h.sections[0].data_discs = 3),
        ),
        ("generation", Box::new(|m| m.generation = 7), none()),
        ("chain", Box::new(|m| m.chain_id = [0x55; 16]), none()),
    ];
    for (what, fault, header_fault) in faults {
        let img = t.path().join(name_of(&parity[0]));
        fs::copy(&parity[0], &img).unwrap();
        craft(&img, fault, header_fault);
        let set = set_of(&t, "set", &[&data[1], &img]);
        let line = expect_refused(&t, &set, &[&name_of(&img), "manifest"]);
        eprintln!("{what}: {line}");
        expect_extract_unharmed(&t, &src, &set, &name_of(&img));
        fs::remove_dir_all(&set).unwrap();
    }
}

#[test]
fn parity_discs_whose_manifests_disagree_are_refused() {
    let (t, src, data, parity) = small_set(2);
    let img = t.path().join(name_of(&parity[1]));
    fs::copy(&parity[1], &img).unwrap();
    // Parity disc 2 claims another data disc 2 (its header copy and hash changed).
    craft(
        &img,
        |m| {
            m.discs[1].sha256[0] ^= 1;
            m.discs[1].sector_n1[100] ^= 1;
        },
        |_| {},
    );
    let set = set_of(&t, "set", &[&data[1], &parity[0], &img]);
    let line = expect_refused(&t, &set, &[&name_of(&parity[0]), &name_of(&img)]);
    assert!(line.contains("disagree"), "{line}");
    expect_extract_unharmed(&t, &src, &set, &name_of(&img));
}

#[test]
fn a_manifest_not_describing_the_data_disc_given_is_refused() {
    let (t, src, data, parity) = small_set(1);
    let img = t.path().join(name_of(&parity[0]));
    fs::copy(&parity[0], &img).unwrap();
    // The manifest's record of data disc 2 (given, intact) is not that disc: another header
    // copy, another hash.
    craft(
        &img,
        |m| {
            m.discs[1].sha256 = [0xee; 32];
            let mut h = DiscHeader::decode(&m.discs[1].sector_n2).unwrap();
            h.created_unix += 1;
            m.discs[1].sector_n2 = h.encode().to_vec();
        },
        |_| {},
    );
    // Data disc 1 missing: the rebuild would read disc 2 as the manifest's disc 2.
    let set = set_of(&t, "set", &[&data[1], &img]);
    let line = expect_refused(&t, &set, &[&name_of(&data[1]), &name_of(&img)]);
    eprintln!("{line}");
    expect_extract_unharmed(&t, &src, &set, &name_of(&img));
}

#[test]
fn a_forged_hash_of_a_lost_disc_refuses_its_rebuild_and_names_the_parity_disc() {
    let (t, src, data, parity) = small_set(1);
    let img = t.path().join(name_of(&parity[0]));
    fs::copy(&parity[0], &img).unwrap();
    craft(&img, |m| m.discs[0].sha256 = [0xee; 32], |_| {});
    // All data discs given and intact: the set is sound as far as verify reads it.
    let all = set_of(&t, "all", &[&data[0], &data[1], &img]);
    expect_code(&bd(&["verify", all.to_str().unwrap()]), 0);
    // Data disc 2 missing: rebuilt (its record is genuine).
    let fixed = t.path().join("fixed2");
    fs::create_dir_all(&fixed).unwrap();
    let set2 = set_of(&t, "set2", &[&data[0], &img]);
    let o = bd(&[
        "verify",
        "--repair",
        "-o",
        fixed.to_str().unwrap(),
        set2.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert_eq!(
        fs::read(fixed.join(name_of(&data[1]))).unwrap(),
        fs::read(&data[1]).unwrap()
    );
    // Data disc 1 missing: what the column code gives does not match the forged hash — refused,
    // nothing written.
    let set1 = set_of(&t, "set1", &[&data[1], &img]);
    let line = expect_refused(&t, &set1, &[&name_of(&img), "SHA-256"]);
    eprintln!("{line}");
    expect_extract_unharmed(&t, &src, &set1, &name_of(&img));
}

/// Two create runs of generation 2 of one chain (with `--base`): the parity disc of one given
/// with the data disc of the other. With different creation times they are two sets; with the
/// same (forged) creation time too.
#[test]
fn a_parity_disc_of_another_set_is_not_used() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("a.bin"), &noise(3 << 20, 1));
    let base = t.path().join("base");
    expect_code(&create(&src, &base, "hp", &["-b", "32M", "-y", "-q"]), 0);
    let mut runs = Vec::new();
    for (i, seed) in [(1, 5u64), (2, 6)] {
        write(&src.join("b.bin"), &noise(4 << 20, seed));
        let out = t.path().join(format!("g2-{i}"));
        let o = create(
            &src,
            &out,
            "hp",
            &[
                "-b",
                "32M",
                "-c",
                "none",
                "--base",
                base.to_str().unwrap(),
                "--parity-discs",
                "1",
                "-y",
                "-q",
            ],
        );
        expect_code(&o, 0);
        let (data, parity) = data_and_parity(&out);
        runs.push((data, parity));
    }
    let data_a = &runs[0].0[0];
    let parity_b = t.path().join(name_of(&runs[1].1[0]));
    fs::copy(&runs[1].1[0], &parity_b).unwrap();
    for forge_time in [false, true] {
        if forge_time {
            let mut s = vec![0u8; SECTOR_SIZE];
            fs::File::open(data_a)
                .unwrap()
                .read_exact_at(&mut s, 0)
                .unwrap();
            let created = DiscHeader::decode(&s).unwrap().created_unix;
            craft(&parity_b, |_| {}, |h| h.created_unix = created);
        }
        let set = set_of(&t, "mixed", &[data_a, &parity_b]);
        let o = bd(&["verify", set.to_str().unwrap()]);
        expect_code(&o, 3);
        assert!(stderr(&o).contains("different sets"), "{}", stderr(&o));
        // Data disc broken beyond its own FEC: the other set's parity disc must not stand in.
        let victim = set.join(name_of(data_a));
        let f = fs::OpenOptions::new().write(true).open(&victim).unwrap();
        let junk = noise(2 << 20, 9);
        f.write_all_at(&junk, 2048 * 1024).unwrap();
        drop(f);
        let r = t.path().join("r");
        let _ = fs::remove_dir_all(&r);
        let o = bd(&["extract", "-o", r.to_str().unwrap(), set.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{err}");
        assert_ne!(o.status.code(), Some(0), "{err}");
        // Whatever was written is generation 2 of run A, bit-exact (b.bin is run B's now).
        if let Ok(got) = fs::read(r.join("b.bin")) {
            assert_eq!(got, noise(4 << 20, 5), "{err}");
        }
        fs::remove_dir_all(&set).unwrap();
        let _ = stdout(&o);
    }
}

/// Ctrl+C during `verify --repair` of a set: exit 130, the working copies removed, and no image
/// in the output directory that looks complete.
#[test]
fn ctrl_c_stops_a_set_rebuild_cleanly() {
    let (t, _src, data, parity) = small_set(1);
    let set = set_of(&t, "set", &[&data[1], &parity[0]]);
    let fixed = t.path().join("fixed");
    fs::create_dir_all(&fixed).unwrap();
    let work = fixed.join(".bd-archive-rebuild");
    let child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args([
            "verify",
            "--repair",
            "--memory",
            "64M",
            "-o",
            fixed.to_str().unwrap(),
            set.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !work.join("disc0001.work").exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_ne!(
        o.status.code(),
        Some(1),
        "the rebuild finished before the signal: make the set larger\n{err}"
    );
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !work.exists(),
        "working copies left: {:?}",
        files_under(&work)
    );
    // The intact discs' copies are complete copies; the rebuilt disc is not there at all.
    assert!(!fixed.join("hp-gen0001-disc0001.iso").exists());
}

/// Ctrl+C while extract rebuilds a lost disc: exit 130, the working copies and rebuilt images
/// removed, nothing restored.
#[test]
fn ctrl_c_stops_extracts_rebuild_cleanly() {
    let (t, _src, data, parity) = small_set(1);
    let set = set_of(&t, "set", &[&data[1], &parity[0]]);
    let (r, w) = (t.path().join("r"), t.path().join("w"));
    let child = Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args([
            "extract",
            "-o",
            r.to_str().unwrap(),
            "-w",
            w.to_str().unwrap(),
        ])
        .arg(&set)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let copy = w.join("parity-work-gen0001").join("disc0001.work");
    let start = Instant::now();
    while !copy.exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(!w.join("parity-work-gen0001").exists(), "{err}");
    assert!(!w.join("rebuilt").exists(), "{err}");
    assert!(!r.join("f0.bin").exists(), "{err}");
    // Stopped during the rebuild, not after it.
    let all = format!("{}{err}", stdout(&o));
    assert!(
        !all.contains("rebuilt from the parity discs, bit-identical"),
        "{all}"
    );
}

/// `create` refuses more parity discs than a reader accepts (P ≤ max(n, 8), FORMAT.md §10.3).
#[test]
fn create_refuses_more_parity_discs_than_a_reader_accepts() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"one small disc\n");
    let out = t.path().join("out");
    let o = create(
        &src,
        &out,
        "hp",
        &["-b", "32M", "--parity-discs", "9", "-y"],
    );
    expect_code(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("--parity-discs 9") && err.contains("at most 8"),
        "{err}"
    );
    let written = fs::read_dir(out.join("images")).map_or(0, |d| d.count());
    assert_eq!(written, 0, "no image is written");
}
