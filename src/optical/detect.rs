//! Finding the optical drive to use, and who else is using it.
//!
//! * [`list_drives`]: every `/sys/block/sr*` with its vendor and model (`device/vendor`,
//!   `device/model`) and device number (`dev`, "MAJOR:MINOR").
//! * [`select_drive`]: `-D` wins; otherwise one drive is used as is, several are offered in a
//!   numbered list on the terminal (`q` cancels), and without a terminal — or without any
//!   `sr*` entry, as inside a container that does not see the host's sysfs — the error names
//!   `-D /dev/srN`.
//! * [`busy_check`]: before burning, is the drive mounted (`/proc/self/mountinfo`, matched by
//!   major:minor) or open in another process (`/proc/PID/fd/*` symlinks pointing at the drive's
//!   `/dev/srN` or its `/dev/sgN`)? The answer names the mount point or the pids and commands.
//!
//! Every path goes through [`Roots`], so the tests run against a fake `/sys`, `/proc` and `/dev`
//! in a temporary directory.

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Where the kernel's views live: `/sys`, `/proc`, `/dev` on a real system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    pub sys: PathBuf,
    pub proc: PathBuf,
    pub dev: PathBuf,
}

impl Roots {
    /// The running system's `/sys`, `/proc` and `/dev`.
    pub fn system() -> Roots {
        Roots {
            sys: "/sys".into(),
            proc: "/proc".into(),
            dev: "/dev".into(),
        }
    }

    /// `base/sys`, `base/proc`, `base/dev` (tests).
    pub fn under(base: &Path) -> Roots {
        Roots {
            sys: base.join("sys"),
            proc: base.join("proc"),
            dev: base.join("dev"),
        }
    }
}

/// One optical drive the kernel knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveEntry {
    /// Kernel name, `sr0`.
    pub name: String,
    /// Device node, `<dev root>/sr0`.
    pub node: PathBuf,
    /// `device/vendor`, trimmed (may be empty).
    pub vendor: String,
    /// `device/model`, trimmed (may be empty).
    pub model: String,
    /// (major, minor) from the `dev` attribute, when readable.
    pub devno: Option<(u64, u64)>,
}

impl fmt::Display for DriveEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ident = format!("{} {}", self.vendor, self.model);
        let ident = ident.trim();
        if ident.is_empty() {
            write!(f, "{}", self.node.display())
        } else {
            write!(f, "{} ({ident})", self.node.display())
        }
    }
}

/// Why no drive was selected.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("no optical drive found ({sys} lists no sr* device; inside a container the host's drives are not visible): pass the drive with -D /dev/srN")]
    NoDrives { sys: String },
    #[error(
        "several optical drives found ({list}) and no terminal to choose one: pass -D /dev/srN"
    )]
    NoTerminal { list: String },
    #[error("no drive chosen")]
    Cancelled,
    #[error("reading the drive choice: {0}")]
    Io(#[from] std::io::Error),
}

fn read_trimmed(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Parses a sysfs `dev` attribute or a mountinfo field: "MAJOR:MINOR".
fn parse_devno(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Every `sr*` block device in `roots.sys/block`, in numeric order (sr2 before sr10).
pub fn list_drives(roots: &Roots) -> Vec<DriveEntry> {
    let Ok(rd) = std::fs::read_dir(roots.sys.join("block")) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, DriveEntry)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let num: u64 = name.strip_prefix("sr")?.parse().ok()?;
            let dir = e.path();
            Some((
                num,
                DriveEntry {
                    node: roots.dev.join(&name),
                    vendor: read_trimmed(&dir.join("device/vendor")),
                    model: read_trimmed(&dir.join("device/model")),
                    devno: parse_devno(&read_trimmed(&dir.join("dev"))),
                    name,
                },
            ))
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, d)| d).collect()
}

/// Asks the user to pick one of `drives` (numbered from 1; `q` or end of input cancels).
/// Repeats the question on invalid answers.
pub fn pick(
    drives: &[DriveEntry],
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<usize, DetectError> {
    writeln!(output, "Several optical drives found:")?;
    for (i, d) in drives.iter().enumerate() {
        writeln!(output, "  {}) {d}", i + 1)?;
    }
    loop {
        write!(output, "Drive to use [1-{}, q cancels]: ", drives.len())?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Err(DetectError::Cancelled);
        }
        let answer = line.trim();
        if answer.eq_ignore_ascii_case("q") {
            return Err(DetectError::Cancelled);
        }
        match answer.parse::<usize>() {
            Ok(n) if (1..=drives.len()).contains(&n) => return Ok(n - 1),
            _ => writeln!(
                output,
                "Please answer a number from 1 to {}, or q.",
                drives.len()
            )?,
        }
    }
}

/// Chooses among `drives` as the CLI does: one → it, several → [`pick`] when `interactive`.
pub fn choose<'a>(
    drives: &'a [DriveEntry],
    roots: &Roots,
    interactive: Option<(&mut dyn BufRead, &mut dyn Write)>,
) -> Result<&'a DriveEntry, DetectError> {
    match drives {
        [] => Err(DetectError::NoDrives {
            sys: roots.sys.join("block").display().to_string(),
        }),
        [one] => Ok(one),
        several => match interactive {
            Some((input, output)) => Ok(&several[pick(several, input, output)?]),
            None => Err(DetectError::NoTerminal {
                list: several
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        },
    }
}

/// The drive to use: `explicit` (`-D`) as given, else detected on this system, asking on the
/// terminal (stdin/stderr) when there are several.
pub fn select_drive(explicit: Option<&Path>) -> Result<PathBuf, DetectError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let roots = Roots::system();
    let drives = list_drives(&roots);
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut err = std::io::stderr();
    let chosen = choose(
        &drives,
        &roots,
        terminal.then_some((&mut input as &mut dyn BufRead, &mut err as &mut dyn Write)),
    )?;
    Ok(chosen.node.clone())
}

/// A process that has the drive open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/PID/comm` (empty when unreadable).
    pub comm: String,
}

/// Why the drive cannot be used for burning right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A filesystem on the disc is mounted here.
    Mounted { mount_point: String },
    /// Other processes have the drive open.
    Open(Vec<Holder>),
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Mounted { mount_point } => write!(
                f,
                "the disc is mounted on {mount_point}; unmount it first (umount {mount_point})"
            ),
            Busy::Open(holders) => {
                let list: Vec<String> = holders
                    .iter()
                    .map(|h| format!("pid {} ({})", h.pid, h.comm))
                    .collect();
                write!(
                    f,
                    "the drive is open in {}; close {} first",
                    list.join(", "),
                    if holders.len() == 1 {
                        "that program"
                    } else {
                        "those programs"
                    }
                )
            }
        }
    }
}

/// Device number of `node`: from the node itself when it is a block device, else from
/// `sys/block/<name>/dev` (also covers the fake trees of the tests).
fn devno_of(roots: &Roots, node: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if let Ok(m) = std::fs::metadata(node) {
        if m.file_type().is_block_device() {
            let rdev = m.rdev();
            return Some((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)));
        }
    }
    let name = node.file_name()?.to_str()?;
    parse_devno(&read_trimmed(
        &roots.sys.join("block").join(name).join("dev"),
    ))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub(crate) fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where (if anywhere) a filesystem of device `devno` is mounted, from `proc/self/mountinfo`
/// (field 3 is MAJOR:MINOR, field 5 the mount point).
fn mounted_at(roots: &Roots, devno: (u64, u64)) -> Option<String> {
    let text = std::fs::read_to_string(roots.proc.join("self/mountinfo")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 5 && parse_devno(f[2]) == Some(devno)).then(|| unescape_mount(f[4]))
    })
}

/// The paths that reach this drive: the node as given, its canonical target (`/dev/cdrom` →
/// `/dev/sr0`), and its SCSI generic node (`/dev/sgN` from `sys/block/srN/device/scsi_generic`).
fn aliases(roots: &Roots, node: &Path) -> Vec<PathBuf> {
    let mut v = vec![node.to_path_buf()];
    if let Ok(c) = std::fs::canonicalize(node) {
        if !v.contains(&c) {
            v.push(c);
        }
    }
    let names: Vec<String> = v
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    for name in names {
        let sg_dir = roots
            .sys
            .join("block")
            .join(&name)
            .join("device/scsi_generic");
        if let Ok(rd) = std::fs::read_dir(sg_dir) {
            for e in rd.flatten() {
                let p = roots.dev.join(e.file_name());
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
    }
    v
}

/// Processes other than this one with an open descriptor on any of `paths`.
fn holders(roots: &Roots, paths: &[PathBuf]) -> Vec<Holder> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir(&roots.proc) else {
        return Vec::new();
    };
    let mut out: Vec<Holder> = rd
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            if pid == me {
                return None;
            }
            // Other users' fd directories are unreadable without root: those are not seen.
            let fds = std::fs::read_dir(e.path().join("fd")).ok()?;
            let holds = fds
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|target| paths.contains(&target));
            holds.then(|| Holder {
                pid,
                comm: read_trimmed(&e.path().join("comm")),
            })
        })
        .collect();
    out.sort_by_key(|h| h.pid);
    out
}

/// Is the drive at `node` mounted or open elsewhere? `None` when it is free to burn.
pub fn busy_check(roots: &Roots, node: &Path) -> Option<Busy> {
    // Given the SCSI generic node, check the drive's block node (mounts are of /dev/srN).
    let block = block_node_of(roots, node);
    let target = block.as_deref().unwrap_or(node);
    if let Some(devno) = devno_of(roots, target) {
        if let Some(mount_point) = mounted_at(roots, devno) {
            return Some(Busy::Mounted { mount_point });
        }
    }
    let mut paths = aliases(roots, target);
    if !paths.iter().any(|p| p == node) {
        paths.push(node.to_path_buf());
    }
    let h = holders(roots, &paths);
    (!h.is_empty()).then_some(Busy::Open(h))
}

/// `/dev/sgN` → the same drive's block node `/dev/srM`, from
/// `sys/class/scsi_generic/sgN/device/block/srM`; `None` for anything else.
fn block_node_of(roots: &Roots, node: &Path) -> Option<PathBuf> {
    let name = node.file_name()?.to_str()?;
    if !name.starts_with("sg") {
        return None;
    }
    let dir = roots
        .sys
        .join("class/scsi_generic")
        .join(name)
        .join("device/block");
    let first = std::fs::read_dir(dir).ok()?.flatten().next()?;
    Some(roots.dev.join(first.file_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fake_drive(base: &Path, name: &str, vendor: &str, model: &str, dev: &str) {
        let d = base.join("sys/block").join(name);
        std::fs::create_dir_all(d.join("device")).unwrap();
        std::fs::write(d.join("device/vendor"), format!("{vendor}  \n")).unwrap();
        std::fs::write(d.join("device/model"), format!("{model}\n")).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
    }

    fn tree() -> (tempfile::TempDir, Roots) {
        let t = tempfile::tempdir().unwrap();
        for d in ["sys/block", "proc/self", "dev"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        // A disk that must not be listed.
        std::fs::create_dir_all(t.path().join("sys/block/sda/device")).unwrap();
        let r = Roots::under(t.path());
        (t, r)
    }

    #[test]
    fn lists_sr_devices_in_numeric_order_with_vendor_and_model() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr10", "ASUS", "BW-16D1HT", "11:10");
        fake_drive(t.path(), "sr2", "HL-DT-ST", "BD-RE  WH16NS60", "11:2");
        let l = list_drives(&r);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "sr2");
        assert_eq!(l[0].node, r.dev.join("sr2"));
        assert_eq!(l[0].devno, Some((11, 2)));
        assert_eq!(
            l[0].to_string(),
            format!("{} (HL-DT-ST BD-RE  WH16NS60)", r.dev.join("sr2").display())
        );
        assert_eq!(l[1].name, "sr10");
    }

    #[test]
    fn no_sysfs_means_pass_dash_d() {
        let t = tempfile::tempdir().unwrap();
        let r = Roots::under(t.path());
        let l = list_drives(&r);
        let e = choose(&l, &r, None).unwrap_err();
        assert!(matches!(e, DetectError::NoDrives { .. }));
        assert!(e.to_string().contains("-D /dev/srN"), "{e}");
    }

    #[test]
    fn one_drive_is_used_several_need_a_terminal() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr0", "QEMU", "QEMU CD-ROM", "11:0");
        let l = list_drives(&r);
        assert_eq!(choose(&l, &r, None).unwrap().name, "sr0");
        fake_drive(t.path(), "sr1", "PIONEER", "BD-RW BDR-XD08", "11:1");
        let l = list_drives(&r);
        let e = choose(&l, &r, None).unwrap_err();
        assert!(matches!(e, DetectError::NoTerminal { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("-D /dev/srN") && msg.contains("PIONEER"),
            "{msg}"
        );
    }

    #[test]
    fn picker_takes_a_number_retries_on_nonsense_and_q_cancels() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr0", "A", "One", "11:0");
        fake_drive(t.path(), "sr1", "B", "Two", "11:1");
        let l = list_drives(&r);
        let mut out = Vec::new();
        let mut input: &[u8] = b"7\nx\n2\n";
        let d = choose(&l, &r, Some((&mut input, &mut out))).unwrap();
        assert_eq!(d.name, "sr1");
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.contains("1) ") && shown.contains("(B Two)"),
            "{shown}"
        );
        assert_eq!(shown.matches("Please answer").count(), 2, "{shown}");
        for answer in [&b"q\n"[..], b"Q\n", b""] {
            let mut input = answer;
            let mut out = Vec::new();
            assert!(matches!(
                choose(&l, &r, Some((&mut input, &mut out))),
                Err(DetectError::Cancelled)
            ));
        }
    }

    #[test]
    fn explicit_device_wins() {
        assert_eq!(
            select_drive(Some(Path::new("/dev/sr7"))).unwrap(),
            PathBuf::from("/dev/sr7")
        );
    }

    #[test]
    fn mounted_disc_is_found_by_device_number() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr0", "A", "One", "11:0");
        std::fs::write(
            r.proc.join("self/mountinfo"),
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
             40 22 11:0 / /media/me/My\\040Disc ro,nosuid - udf /dev/sr0 ro\n",
        )
        .unwrap();
        let b = busy_check(&r, &r.dev.join("sr0")).unwrap();
        assert_eq!(
            b,
            Busy::Mounted {
                mount_point: "/media/me/My Disc".into()
            }
        );
        assert!(b.to_string().contains("umount"), "{b}");
        // Another device number: not mounted, not open.
        fake_drive(t.path(), "sr1", "B", "Two", "11:1");
        assert_eq!(busy_check(&r, &r.dev.join("sr1")), None);
    }

    #[test]
    fn holders_are_found_through_proc_fd_links_including_the_sg_node() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr0", "A", "One", "11:0");
        std::fs::create_dir_all(t.path().join("sys/block/sr0/device/scsi_generic/sg3")).unwrap();
        let sr0 = r.dev.join("sr0");
        let sg3 = r.dev.join("sg3");
        let proc_entry = |pid: u32, comm: &str, targets: &[&Path]| {
            let p = r.proc.join(pid.to_string());
            std::fs::create_dir_all(p.join("fd")).unwrap();
            std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            for (i, t) in targets.iter().enumerate() {
                symlink(t, p.join("fd").join(i.to_string())).unwrap();
            }
        };
        proc_entry(100, "bash", &[Path::new("/dev/pts/0")]);
        assert_eq!(busy_check(&r, &sr0), None);
        proc_entry(4242, "k3b", &[Path::new("/dev/null"), &sg3]);
        proc_entry(77, "cat", &[&sr0]);
        // Our own process never counts as a holder.
        proc_entry(std::process::id(), "bd-archive", &[&sr0]);
        let b = busy_check(&r, &sr0).unwrap();
        assert_eq!(
            b,
            Busy::Open(vec![
                Holder {
                    pid: 77,
                    comm: "cat".into()
                },
                Holder {
                    pid: 4242,
                    comm: "k3b".into()
                }
            ])
        );
        let msg = b.to_string();
        assert!(
            msg.contains("pid 77 (cat)") && msg.contains("pid 4242 (k3b)"),
            "{msg}"
        );
    }

    #[test]
    fn the_sg_node_is_checked_as_its_drive() {
        let (t, r) = tree();
        fake_drive(t.path(), "sr0", "A", "One", "11:0");
        std::fs::create_dir_all(t.path().join("sys/block/sr0/device/scsi_generic/sg2")).unwrap();
        std::fs::create_dir_all(t.path().join("sys/class/scsi_generic/sg2/device/block/sr0"))
            .unwrap();
        std::fs::write(
            r.proc.join("self/mountinfo"),
            "40 22 11:0 / /mnt/cd ro - iso9660 /dev/sr0 ro\n",
        )
        .unwrap();
        assert_eq!(
            busy_check(&r, &r.dev.join("sg2")),
            Some(Busy::Mounted {
                mount_point: "/mnt/cd".into()
            })
        );
        std::fs::write(r.proc.join("self/mountinfo"), "").unwrap();
        let p = r.proc.join("55");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(p.join("comm"), "growisofs\n").unwrap();
        symlink(r.dev.join("sr0"), p.join("fd/3")).unwrap();
        assert_eq!(
            busy_check(&r, &r.dev.join("sg2")),
            Some(Busy::Open(vec![Holder {
                pid: 55,
                comm: "growisofs".into()
            }]))
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mount("/trailing\\04"), "/trailing\\04");
        assert_eq!(unescape_mount("\\"), "\\");
        assert_eq!(parse_devno("11:0"), Some((11, 0)));
        assert_eq!(parse_devno("x:0"), None);
        assert_eq!(parse_devno(""), None);
    }
}
