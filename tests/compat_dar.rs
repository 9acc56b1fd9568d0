//! dar reader against archives made by the real `dar` (Debian's dar 2.7): full + two differentials,
//! multi-slice, zstd and no compression, isolated catalogue. Our restore must equal `dar -x`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_same_tree, noise, require, tmp, write};
use bd_archive::legacy::dar::extract::{restore_archive, DarRestoreReport};
use bd_archive::legacy::dar::{read_dar_catalog, DarArchive, DarKind};
use bd_archive::restore::writer::{RestoreOptions, Restorer};

fn dar(args: &[&str]) {
    let o = Command::new("dar")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run dar");
    assert!(
        o.status.success(),
        "dar {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Data that contains dar's escape prefix many times, so escaping is exercised.
fn escapey(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    while v.len() < n {
        v.extend_from_slice(&[0xAD, 0xFD, 0xEA, 0x77, 0x21]);
        v.extend_from_slice(b"X\xAD\xFD\xEA\x77\x21F\xAD\xAD");
    }
    v.truncate(n);
    v
}

fn gen1(src: &Path) {
    write(&src.join("a.txt"), b"hello\n");
    write(&src.join("empty"), b"");
    write(&src.join("sub/deep/big.bin"), &noise(250_000, 1));
    write(
        &src.join("sub/text.txt"),
        "line\n".repeat(30_000).as_bytes(),
    );
    write(&src.join("esc.bin"), &escapey(70_000));
    write(&src.join("gone/x.txt"), b"will be deleted with its dir\n");
    write(&src.join("gone-file"), b"deleted in gen 2\n");
    write(&src.join("keep.bin"), &noise(40_000, 2));
    // dar detects holes (>= 15 zero bytes) by default and stores them as sparse marks.
    let mut sp = b"abc".to_vec();
    sp.extend(std::iter::repeat_n(0u8, 100_000));
    sp.extend_from_slice(b"xyz\xAE\xFD\xEA\x77\x21F");
    sp.extend(noise(3000, 5));
    sp.extend(std::iter::repeat_n(0u8, 40)); // trailing hole
    write(&src.join("holes.bin"), &sp);
    fs::create_dir_all(src.join("emptydir")).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
    fs::hard_link(src.join("a.txt"), src.join("hard")).unwrap();
    fs::hard_link(src.join("keep.bin"), src.join("sub/keep-link")).unwrap();
}

fn gen2(src: &Path) {
    fs::remove_dir_all(src.join("gone")).unwrap();
    fs::remove_file(src.join("gone-file")).unwrap();
    write(&src.join("new/added.txt"), b"added in gen 2\n");
    write(
        &src.join("sub/text.txt"),
        "changed\n".repeat(20_000).as_bytes(),
    );
    fs::remove_file(src.join("link")).unwrap();
    symlink("sub/text.txt", src.join("link")).unwrap();
}

fn gen3(src: &Path) {
    write(&src.join("gen3.bin"), &noise(120_000, 3));
    fs::remove_file(src.join("new/added.txt")).unwrap();
    write(&src.join("a.txt"), b"rewritten in gen 3\n"); // also changes "hard" (same inode)
}

fn slices(dir: &Path, base: &str) -> Vec<Option<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!("{base}.")) && n.ends_with(".dar")
        })
        .collect();
    v.sort();
    v.into_iter().map(Some).collect()
}

fn chain(compress: Option<&str>) {
    require(&["dar"]);
    let t = tmp();
    let src = t.path().join("src");
    let arch = t.path().join("arch");
    fs::create_dir_all(&arch).unwrap();
    fs::create_dir_all(&src).unwrap();
    let mut common_args = vec![
        "-s",
        "100000",
        "--min-digits",
        "4",
        "--hash",
        "sha512",
        "-Q",
    ];
    let z = compress.map(|c| format!("-z{c}"));
    if let Some(z) = &z {
        common_args.push(z);
        common_args.push("-am");
    }
    let s = src.to_str().unwrap();
    let base = |g: u32| arch.join(format!("n-gen{g}")).to_str().unwrap().to_string();
    let cat = |g: u32| {
        arch.join(format!("n-gen{g}-catalog"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let mutators: [fn(&Path); 3] = [gen1, gen2, gen3];
    for g in 1..=3u32 {
        mutators[g as usize - 1](&src);
        // Make sure mtimes differ between generations.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = base(g);
        let mut args = vec!["-c", &b, "-R", s];
        args.extend_from_slice(&common_args);
        let refc = cat(g - 1);
        if g > 1 {
            args.push("-A");
            args.push(&refc);
        }
        dar(&args);
        let c = cat(g);
        dar(&[
            "-C",
            &c,
            "-A",
            &b,
            "--hash",
            "sha512",
            "--min-digits",
            "4",
            "-Q",
        ]);
    }
    let n1 = slices(&arch, "n-gen1");
    assert!(
        n1.len() >= 3,
        "gen 1 should span several slices: {}",
        n1.len()
    );

    // Isolated catalogue lists the same paths as the archive.
    let c1 = read_dar_catalog(&[arch.join("n-gen1-catalog.0001.dar")]).unwrap();
    let a1 = DarArchive::open(&n1).unwrap().catalogue().unwrap();
    let paths = |v: &Vec<bd_archive::legacy::dar::DarEntry>| {
        v.iter().map(|e| e.path.clone()).collect::<Vec<_>>()
    };
    assert_eq!(paths(&c1), paths(&a1));
    let c2 = read_dar_catalog(&[arch.join("n-gen2-catalog.0001.dar")]).unwrap();
    assert!(c2
        .iter()
        .any(|e| e.path == b"gone-file" && matches!(e.kind, DarKind::Deleted(_))));

    // Ours.
    let ours = t.path().join("ours");
    fs::create_dir_all(&ours).unwrap();
    let opts = RestoreOptions {
        overwrite: false,
        same_owner: false,
        special_files: false,
        reserved: None,
    };
    let mut r = Restorer::new(&ours, opts).unwrap();
    let mut rep = DarRestoreReport::default();
    for g in 1..=3 {
        let a = DarArchive::open(&slices(&arch, &format!("n-gen{g}"))).unwrap();
        restore_archive(&a, &mut r, &mut rep).unwrap();
    }
    r.finish().unwrap();
    assert!(rep.bad_files.is_empty(), "{:?}", rep.bad_files);

    // dar's.
    let theirs = t.path().join("theirs");
    fs::create_dir_all(&theirs).unwrap();
    let th = theirs.to_str().unwrap();
    for g in 1..=3 {
        let b = base(g);
        dar(&["-x", &b, "-R", th, "-O", "-wa", "-Q"]);
    }
    assert_same_tree(&theirs, &ours);
    assert_same_tree(&src, &ours);
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn zstd_chain_equals_dar() {
    chain(Some("zstd"));
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn uncompressed_chain_equals_dar() {
    chain(None);
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn gzip_chain_equals_dar() {
    chain(Some("gzip"));
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn bzip2_chain_equals_dar() {
    chain(Some("bzip2"));
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn xz_chain_equals_dar() {
    chain(Some("xz"));
}

/// The seed's `-c lzma` passes `-zlzma:9` to dar, which is dar's alias of xz.
#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn lzma_level9_chain_equals_dar() {
    chain(Some("lzma:9"));
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn lz4_chain_equals_dar() {
    chain(Some("lz4"));
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn unsupported_compressions_fail_clearly() {
    require(&["dar"]);
    for algo in ["lzo", "zstd:3:65536"] {
        let t = tmp();
        let src = t.path().join("src");
        write(&src.join("f.txt"), "text\n".repeat(1000).as_bytes());
        let b = t.path().join("a");
        dar(&[
            "-c",
            b.to_str().unwrap(),
            "-R",
            src.to_str().unwrap(),
            &format!("-z{algo}"),
            "-Q",
        ]);
        let err = match DarArchive::open(&[Some(t.path().join("a.1.dar"))]) {
            Ok(a) => a.catalogue().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("unsupported dar feature:"), "{algo}: {err}");
        let name = algo.split(':').next().unwrap();
        assert!(
            err.contains(name) || err.contains("block compression"),
            "{algo}: {err}"
        );
    }
}

#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn corrupted_byte_is_reported_not_silent() {
    require(&["dar"]);
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("f.bin"), &noise(50_000, 9));
    let b = t.path().join("a");
    dar(&["-c", b.to_str().unwrap(), "-R", src.to_str().unwrap(), "-Q"]);
    let slice = t.path().join("a.1.dar");
    let mut bytes = fs::read(&slice).unwrap();
    bytes[20_000] ^= 0x55; // inside f.bin's data
    let a = DarArchive::from_memory(vec![bytes]).unwrap();
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let mut r = Restorer::new(&out, RestoreOptions::default()).unwrap();
    let mut rep = DarRestoreReport::default();
    restore_archive(&a, &mut r, &mut rep).unwrap();
    assert_eq!(rep.bad_files.len(), 1, "{:?}", rep.bad_files);
    assert_eq!(rep.bad_files[0].0, "f.bin");
}

#[test]
fn fuzz_entry_points_survive_garbage_and_truncation() {
    use bd_archive::legacy::dar::{catalogue::fuzz_catalogue, fuzz_archive};
    let mut rng = bd_archive::util::xorshift::Xorshift64::new(0x1234_5678_9abc_def0);
    for len in [0usize, 1, 5, 37, 100, 1000, 5000] {
        for _ in 0..50 {
            let v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            fuzz_archive(&v);
            fuzz_catalogue(&v);
        }
    }
}

/// Every truncation and many single-byte corruptions of a real archive.
#[test]
#[ignore = "needs dar (Debian package dar) as the oracle; CI runs it"]
fn fuzz_entry_points_survive_every_cut_and_flip_of_real_archives() {
    use bd_archive::legacy::dar::fuzz_archive;
    require(&["dar"]);
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("f.txt"), b"some text\n");
    write(&src.join("d/g.bin"), &noise(3000, 4));
    symlink("f.txt", src.join("l")).unwrap();
    for algo in ["zstd", "xz", "lz4"] {
        let b = t.path().join(algo);
        dar(&[
            "-c",
            b.to_str().unwrap(),
            "-R",
            src.to_str().unwrap(),
            &format!("-z{algo}"),
            "-Q",
        ]);
        let bytes = fs::read(t.path().join(format!("{algo}.1.dar"))).unwrap();
        for cut in 0..bytes.len() {
            fuzz_archive(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut v = bytes.clone();
            v[i] ^= 0xFF;
            fuzz_archive(&v);
        }
    }
}
