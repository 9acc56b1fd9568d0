//! Continuing a seed chain: dar generation 1 (full) and 2 (differential) made by the real `dar`
//! as the seed did, then `create --base <name>-gen2-catalog.0001.dar` makes generation 3 in our
//! format, and `extract` given the seed discs plus ours restores 1, 2, then 3 (modifications,
//! metadata-only changes and deletions applied) — equal to the source tree.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::seed::seed_generation;
use crate::common::{assert_same_tree, bd, code, create, noise, require, sh, tmp, write};
use bd_archive::disc::reader::find_disc_header;
use bd_archive::legacy::dar::DarArchive;
use bd_archive::legacy::seed_chain::seed_chain_id;
use bd_archive::sector::FileSectorSource;

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tree1(src: &Path) {
    write(&src.join("photos/a.raw"), &noise(180_000, 11));
    write(&src.join("photos/keep.raw"), &noise(150_000, 14));
    write(&src.join("docs/n.txt"), "note\n".repeat(9000).as_bytes());
    write(&src.join("docs/mode.txt"), b"mode changes in gen 3\n");
    write(&src.join("old.txt"), b"deleted in dar gen 2\n");
    write(&src.join("tmp/scratch.bin"), &noise(20_000, 15));
    std::os::unix::fs::symlink("docs/n.txt", src.join("link")).unwrap();
    fs::hard_link(src.join("photos/keep.raw"), src.join("docs/keep-link")).unwrap();
    fs::hard_link(src.join("docs/mode.txt"), src.join("mode-link")).unwrap();
    fs::create_dir_all(src.join("emptydir")).unwrap();
}

fn tree2(src: &Path) {
    fs::remove_file(src.join("old.txt")).unwrap();
    write(&src.join("photos/b.raw"), &noise(90_000, 12));
    write(&src.join("docs/n.txt"), b"changed in dar gen 2\n");
}

/// Our generation 3: add, modify, delete a file and a directory, metadata-only change.
fn tree3(src: &Path) {
    write(&src.join("photos/c.raw"), &noise(70_000, 13));
    write(&src.join("photos/a.raw"), &noise(180_000, 99));
    fs::remove_file(src.join("photos/b.raw")).unwrap();
    fs::remove_dir_all(src.join("tmp")).unwrap();
    fs::set_permissions(src.join("docs/mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
}

fn images(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".iso"))
        .collect();
    v.sort();
    v
}

fn chain_id(iso: &str) -> [u8; 16] {
    let src = FileSectorSource::open(Path::new(iso)).unwrap();
    find_disc_header(&src).unwrap().chain_id
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn seed_chain_continued_by_create_base_then_extracted_in_order() {
    require(&["dar"]);
    let t = tmp();
    let w = t.path();
    let src = w.join("src");
    tree1(&src);
    let mut seed_discs = seed_generation(w, &src, "photos", 1, false, false);
    std::thread::sleep(std::time::Duration::from_millis(20));
    tree2(&src);
    seed_discs.extend(seed_generation(w, &src, "photos", 2, false, false));
    std::thread::sleep(std::time::Duration::from_millis(20));
    tree3(&src);

    // --base: generation 2's isolated catalogue, where the seed left it (generation 1's is in
    // the sibling folder tmp1, found for the chain id).
    let base = w.join("tmp2/photos-gen2-catalog.0001.dar");
    let ours = w.join("out");
    let o = create(
        &src,
        &ours,
        "photos",
        &["-b", "64M", "-y", "--base", base.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    let isos = images(&ours);
    assert!(!isos.is_empty());
    // Unchanged files stay in the dar generations; only new and changed ones are stored.
    assert!(
        out(&o).contains("1 new, 3 changed")
            && out(&o).contains("2 metadata only, 3 deleted, 5 unchanged"),
        "{}",
        out(&o)
    );
    assert!(
        Path::new(&ours).join("photos-gen3.catalog").exists(),
        "generation 3 expected: {}",
        out(&o)
    );

    // The chain id is derived from the name and generation 1's data name (same in its slices and
    // in its isolated catalogue), so it is the same whatever seed file is passed.
    let g1 = DarArchive::open(&[Some(w.join("tmp1/photos-gen1-catalog.0001.dar"))]).unwrap();
    let g1s: Vec<Option<PathBuf>> = {
        let mut v: Vec<PathBuf> = fs::read_dir(w.join("tmp1"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.ends_with(".dar") && !n.contains("catalog")
            })
            .collect();
        v.sort();
        v.into_iter().map(Some).collect()
    };
    let g1_data = DarArchive::open(&g1s).unwrap();
    assert_eq!(g1.data_name().unwrap(), g1_data.data_name().unwrap());
    let want = seed_chain_id("photos", &g1.data_name().unwrap());
    assert_ne!(g1.data_name().unwrap(), [0u8; 10]);
    assert_eq!(chain_id(&isos[0]), want);
    // --base given as the directory of seed discs: the same chain id, generation 3 again.
    let ours2 = w.join("out2");
    let o = create(
        &src,
        &ours2,
        "photos",
        &[
            "-b",
            "64M",
            "-y",
            "--base",
            w.join("discs").join("g2-d1").to_str().unwrap(),
        ],
    );
    // g2-d1 alone lacks generation 1: a clear error.
    assert_ne!(code(&o), 0);
    assert!(out(&o).contains("generation 1"), "{}", out(&o));
    let all = w.join("alldiscs");
    fs::create_dir_all(&all).unwrap();
    for d in &seed_discs {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            for f in fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), all.join(f.file_name())).unwrap();
            }
        }
    }
    let o = create(
        &src,
        &ours2,
        "photos",
        &["-b", "64M", "-y", "--base", all.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(chain_id(&images(&ours2)[0]), want);
    // A wrong name is refused.
    let o = create(
        &src,
        &w.join("out3"),
        "other",
        &["-b", "64M", "-y", "--base", base.to_str().unwrap()],
    );
    assert_ne!(code(&o), 0);
    assert!(out(&o).contains("seed chain 'photos'"), "{}", out(&o));

    // Extract: seed discs (any order) + our images.
    let restored = w.join("restored");
    let mut args: Vec<String> = vec!["extract".into(), "-o".into()];
    args.push(restored.to_string_lossy().into_owned());
    for d in seed_discs.iter().rev() {
        args.push(d.to_string_lossy().into_owned());
    }
    args.extend(isos.iter().cloned());
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_same_tree(&src, &restored);
    assert!(!restored.join("photos/b.raw").exists());
    assert!(!restored.join("old.txt").exists());
    assert!(!restored.join("tmp").exists());

    // verify and list take the mixed sources too.
    let mut args: Vec<String> = vec!["verify".into()];
    args.extend(seed_discs.iter().map(|d| d.to_string_lossy().into_owned()));
    args.extend(isos.iter().cloned());
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", out(&o));
    args[0] = "list".into();
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", out(&o));
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listing.contains("photos/keep.raw") && listing.contains("photos/c.raw"));
    assert!(!listing.contains("photos/b.raw"), "{listing}");

    // Generation 4 on top of our generation 3: seed-held entries carry over; a seed-held file
    // changes, one stays in dar generation 1.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&src.join("docs/n.txt"), b"changed in gen 4\n");
    let ours4 = w.join("out4");
    let o = create(
        &src,
        &ours4,
        "photos",
        &["-b", "64M", "-y", "--base", ours.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(ours4.join("photos-gen4.catalog").exists());
    let restored4 = w.join("restored4");
    let mut args: Vec<String> = vec!["extract".into(), "-o".into()];
    args.push(restored4.to_string_lossy().into_owned());
    args.extend(isos.iter().cloned());
    args.extend(images(&ours4));
    for d in &seed_discs {
        args.push(d.to_string_lossy().into_owned());
    }
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_same_tree(&src, &restored4);
    write(&src.join("docs/n.txt"), b"changed in dar gen 2\n");

    // Our discs without the seed discs: what lives in the dar generations is reported, exit 1.
    let partial = w.join("partial");
    let mut args: Vec<String> = vec!["extract".into(), "-o".into()];
    args.push(partial.to_string_lossy().into_owned());
    args.extend(isos.iter().cloned());
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 1, "{}", out(&o));
    let report = fs::read_to_string(partial.join("corrupted-files.txt")).unwrap();
    assert!(report.contains("photos/keep.raw"), "{report}");
    assert!(report.contains("pass their discs too"), "{report}");

    // Seed generation 2 missing: refused before restoring anything, naming it.
    let nogen2 = w.join("nogen2");
    let mut args: Vec<String> = vec!["extract".into(), "-o".into()];
    args.push(nogen2.to_string_lossy().into_owned());
    for d in seed_discs
        .iter()
        .filter(|d| d.file_name().unwrap().to_string_lossy().starts_with("g1-"))
    {
        args.push(d.to_string_lossy().into_owned());
    }
    args.extend(isos.iter().cloned());
    let o = bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 3, "{}", out(&o));
    assert!(out(&o).contains("dar generation 2"), "{}", out(&o));
}

/// Legacy naming (`old.0001.dar`, `old-catalog.0001.dar` = generation 1) as --base; seed discs of
/// another dar chain of the same name are refused (the chain id tells them apart).
#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn legacy_seed_base_and_foreign_seed_discs() {
    require(&["dar"]);
    let t = tmp();
    let w = t.path();
    let src = w.join("src");
    tree1(&src);
    let make = |dir: &Path| {
        fs::create_dir_all(dir).unwrap();
        sh(Command::new("dar")
            .arg("-c")
            .arg(dir.join("old"))
            .arg("-R")
            .arg(&src)
            .args(["-Q", "--min-digits", "4", "-zzstd", "-am"]));
        sh(Command::new("dar")
            .arg("-C")
            .arg(dir.join("old-catalog"))
            .arg("-A")
            .arg(dir.join("old"))
            .args(["-Q", "--min-digits", "4"]));
    };
    let legacy = w.join("legacy");
    make(&legacy);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // another data name
    let foreign = w.join("foreign");
    make(&foreign);
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&src.join("photos/c.raw"), &noise(70_000, 13));
    fs::remove_file(src.join("old.txt")).unwrap();
    fs::remove_dir_all(src.join("tmp")).unwrap();
    let ours = w.join("out");
    let o = create(
        &src,
        &ours,
        "old",
        &[
            "-b",
            "64M",
            "-y",
            "--base",
            legacy.join("old-catalog.0001.dar").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(ours.join("old-gen2.catalog").exists());
    let isos = images(&ours);
    let run = |seed: &Path, dst: &Path| {
        let mut args: Vec<String> = vec!["extract".into(), "-o".into()];
        args.push(dst.to_string_lossy().into_owned());
        args.push(seed.to_string_lossy().into_owned());
        args.extend(isos.iter().cloned());
        bd(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    };
    let restored = w.join("restored");
    let o = run(&legacy, &restored);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_same_tree(&src, &restored);
    let o = run(&foreign, &w.join("wrong"));
    assert_eq!(code(&o), 3, "{}", out(&o));
    assert!(out(&o).contains("chain id differs"), "{}", out(&o));
}
