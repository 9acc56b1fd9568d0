//! `scan_tree` on real temp trees, and a scan → restore round trip that must reproduce the tree.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use bd_archive::archive::scan::{scan_tree, ScanError, ScanOptions, ScanProblem, SourceEntry};
use bd_archive::format::catalog::{DataRef, Entry, EntryKind};
use bd_archive::restore::writer::{RestoreOptions, Restorer};

fn scan(root: &Path, opts: &ScanOptions) -> (Vec<SourceEntry>, Vec<ScanProblem>) {
    let mut problems = Vec::new();
    let v = scan_tree(root, opts, &mut |p| problems.push(p), &mut |_| {}).unwrap();
    (v, problems)
}

/// Builds the mixed tree used by several tests under `root`.
fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::write(root.join("dir/a.txt"), b"hello").unwrap();
    fs::write(root.join("zero"), b"").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9")), b"latin1").unwrap();
    fs::write(root.join("dir/sub/deep"), vec![7u8; 10_000]).unwrap();
    symlink("dir/a.txt", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    fs::hard_link(root.join("dir/a.txt"), root.join("hl")).unwrap();
    fs::hard_link(root.join("dir/a.txt"), root.join("dir/sub/hl2")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("zero"), fs::Permissions::from_mode(0o4711)).unwrap();
}

fn paths(v: &[SourceEntry]) -> Vec<&[u8]> {
    v.iter().map(|e| e.rel_path.as_slice()).collect()
}

#[test]
fn mixed_tree_preorder_sorted_with_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    build_tree(root);
    let (v, problems) = scan(root, &ScanOptions::default());
    assert!(problems.is_empty(), "{problems:?}");
    let expected: Vec<&[u8]> = vec![
        b"caf\xe9",
        b"dangling",
        b"dir",
        b"dir/a.txt",
        b"dir/sub",
        b"dir/sub/deep",
        b"dir/sub/hl2",
        b"empty",
        b"fifo",
        b"hl",
        b"link",
        b"zero",
    ];
    assert_eq!(paths(&v), expected);
    let get = |p: &[u8]| v.iter().find(|e| e.rel_path == p).unwrap();

    let a = get(b"dir/a.txt");
    assert_eq!(a.kind, EntryKind::File);
    assert_eq!(a.size, 5);
    assert_eq!(a.path_in(root), root.join("dir/a.txt"));
    let meta = fs::symlink_metadata(root.join("dir/a.txt")).unwrap();
    assert_eq!(
        (a.mtime_sec, a.mtime_nsec as i64),
        (meta.mtime(), meta.mtime_nsec())
    );
    assert_eq!(
        (a.stamp.dev, a.stamp.ino, a.stamp.ctime_sec, a.uid, a.gid),
        (meta.dev(), meta.ino(), meta.ctime(), meta.uid(), meta.gid())
    );

    // Hard links: first name in traversal order is the File, later names point at it.
    for hl in [&b"dir/sub/hl2"[..], b"hl"] {
        let h = get(hl);
        assert_eq!(h.kind, EntryKind::HardLink);
        assert_eq!(h.link_target, b"dir/a.txt");
        assert_eq!(h.size, 0);
    }
    assert_eq!(get(b"dir/sub/deep").size, 10_000);
    let z = get(b"zero");
    assert_eq!((z.kind, z.size, z.mode), (EntryKind::File, 0, 0o4711));
    assert_eq!(get(b"caf\xe9").kind, EntryKind::File);
    assert_eq!(get(b"empty").kind, EntryKind::Dir);
    let l = get(b"link");
    assert_eq!(
        (l.kind, l.link_target.as_slice()),
        (EntryKind::Symlink, &b"dir/a.txt"[..])
    );
    let d = get(b"dangling");
    assert_eq!(d.kind, EntryKind::Symlink);
    assert_eq!(d.link_target, b"/nonexistent/target");
    let f = get(b"fifo");
    assert_eq!((f.kind, f.mode), (EntryKind::Fifo, 0o640));
    assert_eq!(get(b"dir").size, 0);

    // Deterministic: a second scan gives the same list.
    let (v2, _) = scan(root, &ScanOptions::default());
    assert_eq!(v, v2);
}

#[test]
fn symlinked_dir_is_recorded_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("real/inner")).unwrap();
    symlink("real", tmp.path().join("alias")).unwrap();
    let (v, _) = scan(tmp.path(), &ScanOptions::default());
    assert_eq!(paths(&v), vec![&b"alias"[..], b"real", b"real/inner"]);
    assert_eq!(v[0].kind, EntryKind::Symlink);
}

#[test]
fn exclusion_skips_entry_and_subtree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("src/x")).unwrap();
    fs::create_dir_all(root.join("out/images")).unwrap();
    fs::write(root.join("out/images/disc_0001.iso"), b"").unwrap();
    let opts = ScanOptions {
        exclude: vec![root.join("out"), root.join("not-yet-created")],
        one_file_system: true,
        ..ScanOptions::default()
    };
    let (v, problems) = scan(root, &opts);
    assert!(problems.is_empty());
    assert_eq!(paths(&v), vec![&b"src"[..], b"src/x"]);
}

#[test]
fn root_missing_or_not_a_directory_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = scan_tree(&missing, &ScanOptions::default(), &mut |_| {}, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ScanError::Root { .. }));
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
    let file = tmp.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = scan_tree(&file, &ScanOptions::default(), &mut |_| {}, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ScanError::NotADirectory { .. }));
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn directory_vanishing_mid_scan_is_a_problem_and_scan_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    fs::create_dir_all(root.join("a/inner")).unwrap();
    fs::write(root.join("b"), b"x").unwrap();
    // `a` is recorded first; remove it right after (before it is listed).
    let mut problems = Vec::new();
    let v = scan_tree(
        &root,
        &ScanOptions::default(),
        &mut |p| problems.push(p),
        &mut |n| {
            if n == 1 {
                fs::remove_dir_all(root.join("a")).unwrap();
            }
        },
    )
    .unwrap();
    assert_eq!(paths(&v), vec![&b"a"[..], b"b"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, root.join("a"));
    assert!(problems[0].message.contains("cannot list"), "{problems:?}");
}

#[test]
fn unreadable_directory_is_a_problem_when_not_root() {
    if nix::unistd::geteuid().is_root() {
        // Root reads a 0o000 directory, so the check runs in this test binary re-run as `nobody`.
        use std::os::unix::process::CommandExt;
        let me = std::env::current_exe().unwrap();
        let o = std::process::Command::new(&me)
            .args([
                "--exact",
                "restore_scan::unreadable_directory_is_a_problem_when_not_root",
            ])
            .env("TMPDIR", std::env::temp_dir())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap_or_else(|e| panic!("re-run {} as nobody: {e}", me.display()));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("1 passed"),
            "the re-run as nobody (uid 65534; it needs to read and run {}) failed:\n{out}{}",
            me.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        unreadable_directory_is_a_problem();
    }
}

fn unreadable_directory_is_a_problem() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("locked/x")).unwrap();
    fs::set_permissions(tmp.path().join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let (v, problems) = scan(tmp.path(), &ScanOptions::default());
    fs::set_permissions(tmp.path().join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(paths(&v), vec![&b"locked"[..]]);
    assert_eq!(problems.len(), 1);
}

/// Turns scanned objects into catalog entries the way `create` will (content is read from the source tree
/// here instead of from a disc).
fn to_entry(s: &SourceEntry) -> Entry {
    Entry {
        path: s.rel_path.clone(),
        kind: s.kind,
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        mtime_sec: s.mtime_sec,
        mtime_nsec: s.mtime_nsec,
        size: s.size,
        link_target: s.link_target.clone(),
        rdev: s.rdev,
        sha256: [0; 32],
        data: DataRef::default(),
        stamp: Default::default(),
    }
}

#[test]
fn scan_then_restore_reproduces_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let out = tmp.path().join("out");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    fs::set_permissions(src.join("dir/sub"), fs::Permissions::from_mode(0o550)).unwrap();
    let (scanned, _) = scan(&src, &ScanOptions::default());
    let mut r = Restorer::new(
        &out,
        RestoreOptions {
            overwrite: false,
            same_owner: true,
            special_files: true,
            reserved: None,
        },
    )
    .unwrap();
    for s in &scanned {
        let e = to_entry(s);
        match e.kind {
            EntryKind::Dir => r.create_dir(&e).unwrap(),
            EntryKind::File => {
                let content = fs::read(s.path_in(&src)).unwrap();
                let mut f = r.create_file(&e).unwrap();
                f.write_at(0, &content).unwrap();
                r.finish_file(f, &e).unwrap();
            }
            EntryKind::Symlink => r.create_symlink(&e).unwrap(),
            EntryKind::HardLink => r.create_hardlink(&e).unwrap(),
            _ => assert!(r.create_special(&e).unwrap()),
        }
    }
    r.finish().unwrap();
    let (restored, problems) = scan(&out, &ScanOptions::default());
    assert!(problems.is_empty());
    assert_eq!(scanned.len(), restored.len());
    for (a, b) in scanned.iter().zip(&restored) {
        assert_eq!(a.rel_path, b.rel_path);
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.link_target, b.link_target);
        assert_eq!(a.size, b.size);
        assert_eq!(
            (a.mode, a.uid, a.gid),
            (b.mode, b.uid, b.gid),
            "{:?}",
            b.path_in(&out)
        );
        if a.kind != EntryKind::HardLink {
            assert_eq!(
                (a.mtime_sec, a.mtime_nsec),
                (b.mtime_sec, b.mtime_nsec),
                "{:?}",
                b.path_in(&out)
            );
        }
        if a.kind == EntryKind::File {
            assert_eq!(
                fs::read(a.path_in(&src)).unwrap(),
                fs::read(b.path_in(&out)).unwrap()
            );
        }
    }
    fs::set_permissions(src.join("dir/sub"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(out.join("dir/sub"), fs::Permissions::from_mode(0o755)).unwrap();
}
