//! Hostile and ordinary archives restored into a temp OUT: nothing may appear outside OUT, existing
//! objects are not clobbered without --overwrite, metadata comes back exactly.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bd_archive::format::catalog::{DataRef, Entry, EntryKind};
use bd_archive::restore::writer::{RestoreError, RestoreOptions, Restorer};

/// A temp dir holding OUT, an empty sibling `canary` dir that must stay empty, and `outside` with a
/// file that must never be linked, written or chmod'ed.
struct Sandbox {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    out: PathBuf,
    canary: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().to_path_buf();
        let out = top.join("out");
        let canary = top.join("canary");
        let outside = top.join("outside");
        fs::create_dir(&canary).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        fs::set_permissions(outside.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
        Sandbox {
            _tmp: tmp,
            top,
            out,
            canary,
            outside,
        }
    }

    fn restorer(&self, opts: RestoreOptions) -> Restorer {
        Restorer::new(&self.out, opts).unwrap()
    }

    /// Nothing outside OUT changed: top holds exactly out/canary/outside, canary is empty, and the secret
    /// is untouched (content, mode, link count).
    fn assert_outside_untouched(&self) {
        let mut names: Vec<_> = fs::read_dir(&self.top)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["canary", "out", "outside"]);
        assert_eq!(
            fs::read_dir(&self.canary).unwrap().count(),
            0,
            "canary not empty"
        );
        assert_eq!(fs::read_dir(&self.outside).unwrap().count(), 1);
        let secret = self.outside.join("secret");
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        let m = fs::metadata(&secret).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        assert_eq!(m.nlink(), 1, "secret got a hard link");
    }
}

fn opts() -> RestoreOptions {
    RestoreOptions {
        overwrite: false,
        same_owner: false,
        special_files: false,
        reserved: None,
    }
}

fn entry(path: &[u8], kind: EntryKind) -> Entry {
    Entry {
        path: path.to_vec(),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        mtime_sec: 1_600_000_000,
        mtime_nsec: 123_456_789,
        size: 0,
        link_target: Vec::new(),
        rdev: 0,
        sha256: [0; 32],
        data: DataRef::default(),
        stamp: Default::default(),
    }
}

fn symlink(path: &[u8], target: &[u8]) -> Entry {
    let mut e = entry(path, EntryKind::Symlink);
    e.link_target = target.to_vec();
    e
}

fn hardlink(path: &[u8], target: &[u8]) -> Entry {
    let mut e = entry(path, EntryKind::HardLink);
    e.link_target = target.to_vec();
    e
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_encoded_bytes().to_vec()
}

/// Restores a whole file with `content`.
fn put_file(r: &mut Restorer, path: &[u8], content: &[u8]) -> Result<(), RestoreError> {
    let mut e = entry(path, EntryKind::File);
    e.size = content.len() as u64;
    let mut f = r.create_file(&e)?;
    f.write_at(0, content)?;
    r.finish_file(f, &e)
}

#[test]
fn dotdot_absolute_and_nul_paths_are_refused() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    let abs_in_canary = bytes(&sb.canary.join("x"));
    for p in [
        &b"../x"[..],
        b"../canary/x",
        &abs_in_canary,
        b"/etc/bd-archive-test-x",
        b"a/../../x",
        b"a/../../canary/x",
        b"x\0y",
        b"",
        b"./x",
        b"a//x",
    ] {
        let err = put_file(&mut r, p, b"evil").unwrap_err();
        assert!(
            matches!(err, RestoreError::UnsafePath { .. }),
            "{p:?}: {err}"
        );
        assert!(r.create_dir(&entry(p, EntryKind::Dir)).is_err());
        assert!(r.create_symlink(&symlink(p, b"t")).is_err());
    }
    r.finish().unwrap();
    sb.assert_outside_untouched();
    assert!(!Path::new("/etc/bd-archive-test-x").exists());
    // Nothing was created in OUT either (no "a" from a/../../x).
    assert_eq!(fs::read_dir(&sb.out).unwrap().count(), 0);
}

#[test]
fn file_through_planted_symlink_is_refused_and_others_continue() {
    let sb = Sandbox::new();
    for overwrite in [false, true] {
        let _ = fs::remove_dir_all(&sb.out);
        let mut r = sb.restorer(RestoreOptions {
            overwrite,
            ..opts()
        });
        r.create_symlink(&symlink(b"a", &bytes(&sb.canary)))
            .unwrap();
        r.create_symlink(&symlink(b"rel", b"../canary")).unwrap();
        for p in [&b"a/file"[..], b"a/sub/file", b"rel/file"] {
            let err = put_file(&mut r, p, b"evil").unwrap_err();
            assert!(matches!(err, RestoreError::NotADirectory { .. }), "{err}");
            assert!(r.create_dir(&entry(p, EntryKind::Dir)).is_err());
            assert!(r.create_symlink(&symlink(p, b"x")).is_err());
        }
        // Later entries still work.
        put_file(&mut r, b"ok/file", b"fine").unwrap();
        r.finish().unwrap();
        assert_eq!(fs::read(sb.out.join("ok/file")).unwrap(), b"fine");
        sb.assert_outside_untouched();
    }
}

#[test]
fn hardlinks_to_outside_or_unrestored_targets_are_refused() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(RestoreOptions {
        overwrite: true,
        ..opts()
    });
    let secret = bytes(&sb.outside.join("secret"));
    r.create_symlink(&symlink(b"s", &secret)).unwrap();
    r.create_symlink(&symlink(b"d", &bytes(&sb.outside)))
        .unwrap();
    // A file that was in OUT before this run: not a valid target either.
    fs::write(sb.out.join("preexisting"), b"old").unwrap();
    for target in [
        secret.as_slice(),
        b"/etc/passwd",
        b"../outside/secret",
        b"s",
        b"d/secret",
        b"preexisting",
        b"never-restored",
        b"",
        b"a\0b",
    ] {
        let err = r.create_hardlink(&hardlink(b"h", target)).unwrap_err();
        assert!(
            matches!(err, RestoreError::HardLinkTarget { .. }),
            "{target:?}: {err}"
        );
        assert!(!sb.out.join("h").exists());
    }
    // A valid link to a file of this run works and shares the inode.
    put_file(&mut r, b"real", b"data").unwrap();
    r.create_hardlink(&hardlink(b"dir/h", b"real")).unwrap();
    let a = fs::metadata(sb.out.join("real")).unwrap();
    let b = fs::metadata(sb.out.join("dir/h")).unwrap();
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    // The restored file replaced by a symlink to the secret: the link must be refused again.
    r.create_symlink(&symlink(b"real", &secret)).unwrap();
    let err = r.create_hardlink(&hardlink(b"h2", b"real")).unwrap_err();
    assert!(matches!(err, RestoreError::HardLinkTarget { .. }), "{err}");
    r.finish().unwrap();
    sb.assert_outside_untouched();
}

#[test]
fn hardlink_target_swapped_behind_our_back_is_refused() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    put_file(&mut r, b"f", b"data").unwrap();
    // Someone replaces the restored file with a hard link to the secret between entries.
    fs::remove_file(sb.out.join("f")).unwrap();
    fs::hard_link(sb.outside.join("secret"), sb.out.join("f")).unwrap();
    let err = r.create_hardlink(&hardlink(b"h", b"f")).unwrap_err();
    assert!(matches!(err, RestoreError::HardLinkTarget { .. }), "{err}");
    fs::remove_file(sb.out.join("f")).unwrap();
    r.finish().unwrap();
    sb.assert_outside_untouched();
}

#[test]
fn dir_replaced_by_symlink_between_entries_is_not_followed() {
    let sb = Sandbox::new();
    let canary_before = fs::metadata(&sb.canary).unwrap();
    let mut r = sb.restorer(opts());
    let mut d = entry(b"d", EntryKind::Dir);
    d.mode = 0o777;
    d.mtime_sec = 1000;
    r.create_dir(&d).unwrap();
    // A later entry (same run, so allowed without --overwrite) replaces the empty dir by a symlink.
    r.create_symlink(&symlink(b"d", &bytes(&sb.canary)))
        .unwrap();
    let err = put_file(&mut r, b"d/file", b"evil").unwrap_err();
    assert!(matches!(err, RestoreError::NotADirectory { .. }), "{err}");
    // Same thing done by someone else outside the archive, for a nested dir.
    r.create_dir(&entry(b"e", EntryKind::Dir)).unwrap();
    r.create_dir(&d_with(b"e/sub")).unwrap();
    fs::remove_dir(sb.out.join("e/sub")).unwrap();
    std::os::unix::fs::symlink(&sb.canary, sb.out.join("e/sub")).unwrap();
    assert!(put_file(&mut r, b"e/sub/file", b"evil").is_err());
    // finish() must not chmod/utime the canary through d or e/sub.
    r.finish().unwrap();
    sb.assert_outside_untouched();
    let canary_after = fs::metadata(&sb.canary).unwrap();
    assert_eq!(canary_before.mode(), canary_after.mode());
    assert_eq!(canary_before.mtime(), canary_after.mtime());
    assert_eq!(canary_before.mtime_nsec(), canary_after.mtime_nsec());
}

fn d_with(path: &[u8]) -> Entry {
    let mut d = entry(path, EntryKind::Dir);
    d.mode = 0o777;
    d
}

#[test]
fn existing_file_is_not_overwritten_without_flag() {
    let sb = Sandbox::new();
    fs::create_dir_all(&sb.out).unwrap();
    fs::write(sb.out.join("f"), b"original").unwrap();
    std::os::unix::fs::symlink(sb.outside.join("secret"), sb.out.join("link")).unwrap();
    let mut r = sb.restorer(opts());
    for p in [&b"f"[..], b"link"] {
        let err = put_file(&mut r, p, b"new").unwrap_err();
        assert!(matches!(err, RestoreError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("--overwrite"));
    }
    assert!(matches!(
        r.create_symlink(&symlink(b"f", b"x")),
        Err(RestoreError::Exists { .. })
    ));
    assert!(matches!(
        r.create_dir(&entry(b"f", EntryKind::Dir)),
        Err(RestoreError::Exists { .. })
    ));
    r.finish().unwrap();
    assert_eq!(fs::read(sb.out.join("f")).unwrap(), b"original");
    assert!(fs::symlink_metadata(sb.out.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    sb.assert_outside_untouched();
}

#[test]
fn overwrite_replaces_but_never_writes_through_a_symlink() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.out.join("full")).unwrap();
    fs::write(sb.out.join("full/x"), b"keep").unwrap();
    fs::write(sb.out.join("f"), b"original").unwrap();
    std::os::unix::fs::symlink(sb.outside.join("secret"), sb.out.join("link")).unwrap();
    let mut r = sb.restorer(RestoreOptions {
        overwrite: true,
        ..opts()
    });
    put_file(&mut r, b"f", b"new").unwrap();
    put_file(&mut r, b"link", b"new").unwrap();
    let err = put_file(&mut r, b"full", b"new").unwrap_err();
    assert!(matches!(err, RestoreError::DirNotEmpty { .. }), "{err}");
    r.finish().unwrap();
    assert_eq!(fs::read(sb.out.join("f")).unwrap(), b"new");
    let m = fs::symlink_metadata(sb.out.join("link")).unwrap();
    assert!(m.is_file());
    assert_eq!(fs::read(sb.out.join("full/x")).unwrap(), b"keep");
    sb.assert_outside_untouched();
}

#[test]
fn later_entry_for_same_path_wins_within_a_run() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    put_file(&mut r, b"f", b"gen1").unwrap();
    put_file(&mut r, b"f", b"generation2").unwrap();
    r.finish().unwrap();
    assert_eq!(fs::read(sb.out.join("f")).unwrap(), b"generation2");
}

#[test]
fn mtime_ns_and_mode_restored_exactly() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    let mut d = entry(b"d", EntryKind::Dir);
    d.mode = 0o555; // read-only dir: children must still be creatable
    d.mtime_sec = 1_234_567_890;
    d.mtime_nsec = 987_654_321;
    r.create_dir(&d).unwrap();
    let mut f = entry(b"d/f", EntryKind::File);
    f.mode = 0o1640;
    f.mtime_sec = -86_400; // before the epoch
    f.mtime_nsec = 1;
    f.size = 5;
    let mut h = r.create_file(&f).unwrap();
    h.write_at(0, b"hello").unwrap();
    r.finish_file(h, &f).unwrap();
    let mut s = symlink(b"d/s", b"f");
    s.mtime_sec = 42;
    s.mtime_nsec = 999_999_999;
    r.create_symlink(&s).unwrap();
    let notices = r.finish().unwrap();
    let md = fs::metadata(sb.out.join("d")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o555);
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_234_567_890, 987_654_321));
    let mf = fs::metadata(sb.out.join("d/f")).unwrap();
    assert_eq!(mf.mode() & 0o7777, 0o1640);
    assert_eq!((mf.mtime(), mf.mtime_nsec()), (-86_400, 1));
    let ms = fs::symlink_metadata(sb.out.join("d/s")).unwrap();
    assert_eq!((ms.mtime(), ms.mtime_nsec()), (42, 999_999_999));
    assert_eq!(fs::read_link(sb.out.join("d/s")).unwrap(), Path::new("f"));
    // Running as root with same_owner off: no ownership notice (it only applies to non-root).
    if unsafe { libc::geteuid() } == 0 {
        assert!(notices.is_empty(), "{notices:?}");
    } else {
        assert_eq!(notices.len(), 1);
    }
    fs::set_permissions(sb.out.join("d"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn implicit_parents_get_default_mode() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    put_file(&mut r, b"x/y/z", b"1").unwrap();
    r.finish().unwrap();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    for d in ["x", "x/y"] {
        let m = fs::metadata(sb.out.join(d)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o777 & !umask, "{d}");
    }
}

#[test]
fn setuid_dropped_without_same_owner_kept_with_it() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    let mut f = entry(b"suid", EntryKind::File);
    f.mode = 0o6755;
    f.uid = 4321;
    f.gid = 4322;
    let h = r.create_file(&f).unwrap();
    r.finish_file(h, &f).unwrap();
    r.finish().unwrap();
    let m = fs::metadata(sb.out.join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755);

    if unsafe { libc::geteuid() } == 0 {
        let out2 = sb.top.join("out"); // same OUT, new run with same_owner
        let mut r = Restorer::new(
            &out2,
            RestoreOptions {
                same_owner: true,
                overwrite: true,
                ..opts()
            },
        )
        .unwrap();
        let h = r.create_file(&f).unwrap();
        r.finish_file(h, &f).unwrap();
        let mut s = symlink(b"sl", b"suid");
        s.uid = 777;
        s.gid = 778;
        r.create_symlink(&s).unwrap();
        r.finish().unwrap();
        let m = fs::metadata(sb.out.join("suid")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o6755);
        assert_eq!((m.uid(), m.gid()), (4321, 4322));
        let m = fs::symlink_metadata(sb.out.join("sl")).unwrap();
        assert_eq!((m.uid(), m.gid()), (777, 778));
    }
}

#[test]
fn holes_are_zero_and_length_is_exact() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    let mut f = entry(b"sparse", EntryKind::File);
    f.size = 3 << 20;
    let mut h = r.create_file(&f).unwrap();
    h.write_at(0, b"head").unwrap();
    // An unreadable range in between is simply not written; a zero chunk is skipped (sparse).
    h.write_at(1 << 20, &vec![0u8; 1 << 20]).unwrap();
    h.write_at((2 << 20) + 10, b"tail-ish").unwrap();
    r.finish_file(h, &f).unwrap();
    r.finish().unwrap();
    let data = fs::read(sb.out.join("sparse")).unwrap();
    assert_eq!(data.len(), 3 << 20);
    assert_eq!(&data[..4], b"head");
    assert_eq!(&data[(2 << 20) + 10..(2 << 20) + 18], b"tail-ish");
    let zeros = data
        .iter()
        .enumerate()
        .filter(|&(i, _)| !(i < 4 || ((2 << 20) + 10..(2 << 20) + 18).contains(&i)))
        .all(|(_, &b)| b == 0);
    assert!(zeros);
    let m = fs::metadata(sb.out.join("sparse")).unwrap();
    // Allocated much less than the length on any filesystem with holes (tmpfs, ext4, xfs, btrfs).
    assert!(m.blocks() * 512 < 1 << 20, "blocks {}", m.blocks());
}

#[test]
fn special_files_only_with_flag() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    let fifo = entry(b"fifo", EntryKind::Fifo);
    let sock = entry(b"sock", EntryKind::Socket);
    assert!(!r.create_special(&fifo).unwrap());
    assert!(!r.create_special(&entry(b"fifo2", EntryKind::Fifo)).unwrap());
    assert!(!r.create_special(&sock).unwrap());
    let notices = r.finish().unwrap();
    assert!(!sb.out.join("fifo").exists());
    let special: Vec<_> = notices
        .iter()
        .filter(|n| n.contains("--special-files"))
        .collect();
    assert_eq!(special.len(), 1, "{notices:?}");

    let mut r = sb.restorer(RestoreOptions {
        special_files: true,
        ..opts()
    });
    let mut fifo = entry(b"p/fifo", EntryKind::Fifo);
    fifo.mode = 0o640;
    assert!(r.create_special(&fifo).unwrap());
    assert!(!r.create_special(&sock).unwrap());
    if unsafe { libc::geteuid() } == 0 {
        let mut null = entry(b"null", EntryKind::CharDevice);
        null.rdev = libc::makedev(1, 3);
        null.mode = 0o600;
        // Creating device nodes may be forbidden in a container; only check it never escapes.
        if r.create_special(&null).is_ok() {
            let m = fs::symlink_metadata(sb.out.join("null")).unwrap();
            assert!(m.file_type().is_char_device());
            assert_eq!(m.rdev(), libc::makedev(1, 3));
        }
    }
    // Through a planted symlink: refused.
    r.create_symlink(&symlink(b"l", &bytes(&sb.canary)))
        .unwrap();
    assert!(r
        .create_special(&entry(b"l/fifo", EntryKind::Fifo))
        .is_err());
    r.finish().unwrap();
    let m = fs::symlink_metadata(sb.out.join("p/fifo")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 123_456_789));
    sb.assert_outside_untouched();
}

#[test]
fn wrong_kind_and_bad_symlink_target_are_errors_not_panics() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    assert!(r.create_file(&entry(b"x", EntryKind::Dir)).is_err());
    assert!(r.create_dir(&entry(b"x", EntryKind::File)).is_err());
    assert!(r.create_symlink(&symlink(b"x", b"")).is_err());
    assert!(r.create_symlink(&symlink(b"x", b"a\0b")).is_err());
    let mut bad_time = entry(b"t", EntryKind::File);
    bad_time.mtime_nsec = 2_000_000_000;
    let h = r.create_file(&bad_time).unwrap();
    assert!(r.finish_file(h, &bad_time).is_err());
    r.finish().unwrap();
}

#[test]
fn non_utf8_names_restore_and_errors_escape_them() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    put_file(&mut r, b"caf\xe9/n\\x", b"1").unwrap();
    // Same run: the later entry wins without --overwrite.
    put_file(&mut r, b"caf\xe9/n\\x", b"1").unwrap();
    fs::create_dir_all(sb.out.join("pre")).unwrap();
    fs::write(sb.out.join("pre/x"), b"").unwrap();
    let err = put_file(&mut r, b"pre/x", b"1").unwrap_err().to_string();
    assert!(err.starts_with("pre/x already exists"), "{err}");
    let err = put_file(&mut r, b"/caf\xe9\\", b"1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/caf\\xe9\\\\"), "{err}");
    r.finish().unwrap();
    use std::os::unix::ffi::OsStrExt;
    let p = sb
        .out
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .join("n\\x");
    assert_eq!(fs::read(p).unwrap(), b"1");
}

#[test]
fn cousins_share_the_walk_and_a_moved_ancestor_never_leads_outside() {
    let sb = Sandbox::new();
    let mut r = sb.restorer(opts());
    r.create_dir(&d_with(b"a")).unwrap();
    r.create_dir(&d_with(b"a/b")).unwrap();
    r.create_dir(&d_with(b"a/b/c")).unwrap();
    let files: [&[u8]; 5] = [b"a/b/c/f1", b"a/b/d/f2", b"a/e/f3", b"a/b/c/f4", b"top"];
    for f in files {
        put_file(&mut r, f, f).unwrap();
    }
    for f in files {
        let p = sb.out.join(std::str::from_utf8(f).unwrap());
        assert_eq!(fs::read(p).unwrap(), f);
    }
    // Someone else swaps a/b for a symlink to the canary while the walk to a/b/c is cached.
    fs::rename(sb.out.join("a/b"), sb.out.join("a/moved")).unwrap();
    std::os::unix::fs::symlink(&sb.canary, sb.out.join("a/b")).unwrap();
    let _ = put_file(&mut r, b"a/b/c/f5", b"x");
    let _ = put_file(&mut r, b"a/b/g/f6", b"x");
    r.finish().unwrap();
    sb.assert_outside_untouched();
}

#[test]
fn files_of_this_run_are_replaceable_but_only_declared_targets_can_be_linked() {
    let sb = Sandbox::new();
    fs::create_dir_all(&sb.out).unwrap();
    fs::write(sb.out.join("before"), b"original").unwrap();
    let mut r = sb.restorer(opts());
    r.set_link_targets([b"t".to_vec()].into_iter().collect());
    put_file(&mut r, b"t", b"target").unwrap();
    put_file(&mut r, b"f", b"gen1").unwrap();
    put_file(&mut r, b"f", b"generation2").unwrap();
    let err = put_file(&mut r, b"before", b"new").unwrap_err();
    assert!(matches!(err, RestoreError::Exists { .. }), "{err}");
    r.create_hardlink(&hardlink(b"l1", b"t")).unwrap();
    let err = r.create_hardlink(&hardlink(b"l2", b"f")).unwrap_err();
    assert!(matches!(err, RestoreError::HardLinkTarget { .. }), "{err}");
    r.finish().unwrap();
    assert_eq!(fs::read(sb.out.join("f")).unwrap(), b"generation2");
    assert_eq!(fs::read(sb.out.join("before")).unwrap(), b"original");
    assert_eq!(fs::read(sb.out.join("l1")).unwrap(), b"target");
    sb.assert_outside_untouched();
}

#[test]
fn entries_in_the_work_directory_are_refused_even_with_overwrite() {
    let sb = Sandbox::new();
    let mut o = opts();
    o.overwrite = true;
    o.reserved = Some(b".bd-archive-work".to_vec());
    let spill = sb.out.join(".bd-archive-work/discs/disc_0001.iso");
    fs::create_dir_all(spill.parent().unwrap()).unwrap();
    fs::write(&spill, b"disc copy").unwrap();
    let mut r = sb.restorer(o);
    for p in [
        &b".bd-archive-work/discs/disc_0001.iso"[..],
        b".bd-archive-work/x",
        b".bd-archive-work",
    ] {
        let err = put_file(&mut r, p, b"evil").unwrap_err();
        assert!(matches!(err, RestoreError::UnsafePath { .. }), "{err}");
    }
    assert_eq!(fs::read(&spill).unwrap(), b"disc copy");
    // A sibling whose name merely starts the same is an ordinary path.
    put_file(&mut r, b".bd-archive-work2/x", b"fine").unwrap();
    assert_eq!(
        fs::read(sb.out.join(".bd-archive-work2/x")).unwrap(),
        b"fine"
    );
}
