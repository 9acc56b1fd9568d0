//! Tiny harness: a temp dir plus a way to run the real binary, so each test reads like a session.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod hostile;
pub mod parity;
pub mod rng;
pub mod seed;

/// Runs bd-archive with `args`, no stdin.
pub fn run(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bd-archive")
}

/// Same with string args.
pub fn bd(args: &[&str]) -> Output {
    let a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run(&a)
}

/// Runs `create -s SRC -o OUT -n NAME` followed by `extra` (e.g. `["-b", "32M", "-y"]`).
pub fn create(src: &Path, out: &Path, name: &str, extra: &[&str]) -> Output {
    let mut a: Vec<&OsStr> = ["create", "-s"].iter().map(OsStr::new).collect();
    a.extend([src.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
    a.extend([OsStr::new("-n"), OsStr::new(name)]);
    a.extend(extra.iter().map(OsStr::new));
    run(&a)
}

/// Exit code, panicking with the output on signal death.
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by signal: {}", String::from_utf8_lossy(&o.stderr)))
}

/// Asserts exit code `want`, printing the output on failure.
pub fn expect_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deterministic pseudo-random bytes (xorshift), incompressible.
#[allow(unused_imports)] // not every test binary makes noise
pub use bd_archive::util::xorshift::noise;

/// Writes a file, creating parents.
pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, data).expect("write");
}

/// Compares two trees: names, kinds, content, mode, mtime (ns), symlink targets, hard-link structure.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let la = listing(a);
    let lb = listing(b);
    let names_a: Vec<_> = la.iter().map(|x| &x.0).collect();
    let names_b: Vec<_> = lb.iter().map(|x| &x.0).collect();
    assert_eq!(names_a, names_b, "entry names differ");
    for (x, y) in la.iter().zip(lb.iter()) {
        assert_eq!(x, y, "entry {:?} differs", String::from_utf8_lossy(&x.0));
    }
}

/// (relative path, kind/mode, size, mtime ns, content-or-target digest, hard-link group)
type Row = (Vec<u8>, u32, u64, i128, Vec<u8>, Option<Vec<u8>>);

fn listing(root: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut first_name: std::collections::HashMap<u64, Vec<u8>> = Default::default();
    walk(root, root, &mut rows, &mut first_name);
    rows.sort();
    rows
}

fn walk(
    root: &Path,
    dir: &Path,
    rows: &mut Vec<Row>,
    links: &mut std::collections::HashMap<u64, Vec<u8>>,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for p in names {
        let rel = p
            .strip_prefix(root)
            .expect("prefix")
            .as_os_str()
            .as_bytes()
            .to_vec();
        if rel == b"corrupted-files.txt" {
            continue;
        }
        let m = fs::symlink_metadata(&p).expect("lstat");
        let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        let ft = m.file_type();
        let (content, group) = if ft.is_symlink() {
            (
                fs::read_link(&p)
                    .expect("readlink")
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
                None,
            )
        } else if ft.is_file() {
            let group = if m.nlink() > 1 {
                Some(links.entry(m.ino()).or_insert_with(|| rel.clone()).clone())
            } else {
                None
            };
            (sha(&fs::read(&p).expect("read")), group)
        } else {
            (Vec::new(), None)
        };
        let mode = m.permissions().mode();
        // Directory mtimes are compared too; symlink mtimes as well (restored with AT_SYMLINK_NOFOLLOW).
        rows.push((
            rel,
            mode,
            if ft.is_file() { m.len() } else { 0 },
            mtime,
            content,
            group,
        ));
        if ft.is_dir() {
            walk(root, &p, rows, links);
        }
    }
}

fn sha(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// Whether `tool` is an executable file in a `PATH` directory.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Fails the test unless every tool in `tools` is installed. Tests that need a tool `cargo test`
/// does not bring are `#[ignore = "needs …"]`; when one is run explicitly (`--ignored`,
/// `--include-ignored`, as .ci/run does) on a machine without the tool it must fail, never pass
/// without having checked anything.
pub fn require(tools: &[&str]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| format!("{t} (Debian package {})", debian_package(t)))
        .collect();
    assert!(
        missing.is_empty(),
        "prerequisite missing: {} not installed; this test is #[ignore]d for that reason and was \
         run explicitly: install it (.ci/run does) or leave out --ignored/--include-ignored",
        missing.join(", ")
    );
}

fn debian_package(tool: &str) -> &str {
    match tool {
        "isoinfo" => "genisoimage",
        "7zz" => "7zip",
        "udfinfo" => "udftools",
        "script" => "bsdutils",
        "qemu-system-x86_64" => "qemu-system-x86",
        other => other,
    }
}

/// Whether this machine has an optical drive (`/sys/block/sr*`): tests of the "no drive" messages
/// need one without.
pub fn has_optical_drive() -> bool {
    fs::read_dir("/sys/block")
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("sr"))
        })
        .unwrap_or(false)
}

/// Fails the test on a machine with an optical drive, where the "no drive found" paths cannot be
/// reached (those tests are `#[ignore]`d for that reason; CI machines have no drive).
pub fn require_no_optical_drive() {
    assert!(
        !has_optical_drive(),
        "prerequisite missing: a machine without an optical drive (/sys/block/sr* exists here); \
         this test is #[ignore]d for that reason and was run explicitly"
    );
}

/// Sets `p`'s mtime (not following a symlink).
pub fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let t = nix::sys::time::TimeSpec::new(sec, nsec);
    nix::sys::stat::utimensat(
        None,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// The set ids ("set 3f9a12c4: IMAGES…") an error message names, each with the text after it.
pub fn set_ids(text: &str) -> Vec<(String, String)> {
    text.split("set ")
        .skip(1)
        .filter_map(|t| {
            let id: String = t.chars().take_while(char::is_ascii_hexdigit).collect();
            (id.len() >= 8 && t[id.len()..].starts_with(':')).then(|| (id.clone(), t.to_string()))
        })
        .collect()
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The process's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a fixture-making command (dar, par2, genisoimage …), failing the test with its output.
pub fn sh(cmd: &mut Command) {
    let o = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn");
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh temp dir.
pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bdtest")
        .tempdir()
        .expect("tempdir")
}

/// Path from raw bytes.
pub fn bpath(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Lists OUT/images/*.iso sorted.
pub fn images(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(out.join("images"))
        .expect("images dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "iso"))
        .collect();
    v.sort();
    v
}
