//! A disc given as a mounted directory, read through its raw sectors when a parity set needs
//! them (FORMAT.md §10): files can be read from the directory, but the column code and the
//! disc's own FEC work on sectors. The block device a directory is mounted from is found in
//! `/proc/self/mountinfo`; it is used when it can be read and holds the same disc.

use std::path::{Path, PathBuf};

use crate::disc::reader::find_disc_header;
use crate::format::disc_header::DiscHeader;
use crate::sector::FileSectorSource;
use crate::util::progress::Progress;

/// One line of `/proc/self/mountinfo` that matters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (octal escapes such as `\040` decoded).
    pub point: PathBuf,
    /// The filesystem type (`iso9660`, `udf`, `tmpfs`, …).
    pub fstype: String,
    /// The mount source: a device path for block filesystems (`/dev/sr0`, `/dev/loop3`).
    pub source: String,
}

/// The mount `dir` lies on: the last (innermost, most recent) mount whose mount point is `dir`
/// or one of its ancestors. `dir` must be absolute and canonical.
pub fn mount_of(mountinfo: &str, dir: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for m in mountinfo.lines().filter_map(parse_line) {
        let deeper = best
            .as_ref()
            .is_none_or(|b| m.point.components().count() >= b.point.components().count());
        if dir.starts_with(&m.point) && deeper {
            best = Some(m);
        }
    }
    best
}

/// Fields: id, parent, major:minor, root, mount point, options, optional fields…, `-`, fstype,
/// source, super options.
fn parse_line(line: &str) -> Option<Mount> {
    let mut f = line.split(' ');
    let point = f.nth(4)?;
    let mut rest = f.skip_while(|x| *x != "-");
    rest.next()?;
    let fstype = rest.next()?;
    let source = rest.next()?;
    // The kernel's octal escapes (`\040` for a space): the same as the drive's busy check.
    let unescape = crate::optical::detect::unescape_mount;
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype: unescape(fstype),
        source: unescape(source),
    })
}

/// The raw sectors of the disc in directory `dir` (whose header copy says `header`): the block
/// device it is mounted from, if that can be read and holds the same disc. Err: one line saying
/// why not (for "… is mounted at X, but WHY; give its device or image").
pub fn device_of(dir: &Path, header: &DiscHeader, mountinfo: &str) -> Result<PathBuf, String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let m = mount_of(mountinfo, &dir).ok_or("no mount holds it")?;
    let at = m.point.display();
    if !m.source.starts_with('/') {
        return Err(format!(
            "it is mounted at {at} from {} ({}), not from a device to read",
            m.source, m.fstype
        ));
    }
    let dev = PathBuf::from(&m.source);
    let src = FileSectorSource::open(&dev).map_err(|e| {
        format!(
            "it is mounted at {at}, but {} cannot be read: {e}",
            dev.display()
        )
    })?;
    let same = find_disc_header(&src).is_some_and(|h| {
        h.chain_id == header.chain_id && h.sections.last() == header.sections.last()
    });
    if !same {
        return Err(format!(
            "it is a directory on {at}, whose device {} does not hold this disc",
            dev.display()
        ));
    }
    Ok(dev)
}

/// The disc header of a source: an image or device (sector 0 or its copy), or a disc directory
/// (its header file).
pub fn header_of(path: &Path) -> Option<DiscHeader> {
    if path.is_dir() {
        let hdr = crate::disc::dir::header_files(path).into_iter().next()?;
        let src = crate::disc::dir::DiscDirSource::open(path, &hdr).ok()?;
        return find_disc_header(&src);
    }
    find_disc_header(&FileSectorSource::open(path).ok()?)
}

/// Disc directories among `paths` replaced by the block device each is mounted from
/// ([`device_of`]), for a parity set that needs raw sectors. One that cannot be says so in one
/// line and stays as given: its files are still read, but a rebuild counts it as missing.
pub fn dirs_as_devices(paths: Vec<PathBuf>, progress: &dyn Progress) -> Vec<PathBuf> {
    if !paths.iter().any(|p| p.is_dir()) {
        return paths;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    paths
        .into_iter()
        .map(|p| {
            let Some(h) = p.is_dir().then(|| header_of(&p)).flatten() else {
                return p;
            };
            let disc = match h.parity() {
                Some(q) => format!(
                    "'{}' generation {} parity disc {}",
                    h.name, q.generation, q.index
                ),
                None => {
                    let s = h.sections.last();
                    let (g, d) = s.map_or((0, 0), |s| (s.generation, s.disc));
                    format!("'{}' generation {g} disc {d}", h.name)
                }
            };
            match device_of(&p, &h, &info) {
                Ok(dev) => {
                    progress.detail(&format!(
                        "{disc} ({}): its sectors are read from {}",
                        p.display(),
                        dev.display()
                    ));
                    dev
                }
                Err(why) => {
                    progress.warn(&format!(
                        "{disc} ({}): {why}; give its device or image to use it for rebuilding",
                        p.display()
                    ));
                    p
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 27 0:35 / /tmp rw,nosuid shared:20 - tmpfs tmpfs rw
51 27 11:0 / /media/me/Family\\040photos\\0402019 ro,nosuid,nodev shared:30 master:2 - udf /dev/sr0 ro,uid=1000
52 27 7:3 / /mnt/disc3 ro,relatime - iso9660 /dev/loop3 ro
53 52 0:50 / /mnt/disc3/inner rw - fuse.sshfs host:/x rw
";

    #[test]
    fn the_innermost_mount_of_a_directory_is_found_with_escapes_decoded() {
        let m = mount_of(
            FIXTURE,
            Path::new("/media/me/Family photos 2019/fam-gen0001"),
        )
        .unwrap();
        assert_eq!(m.source, "/dev/sr0");
        assert_eq!(m.fstype, "udf");
        assert_eq!(m.point, Path::new("/media/me/Family photos 2019"));
        assert_eq!(
            mount_of(FIXTURE, Path::new("/mnt/disc3")).unwrap().source,
            "/dev/loop3"
        );
        assert_eq!(
            mount_of(FIXTURE, Path::new("/mnt/disc3/inner/a"))
                .unwrap()
                .source,
            "host:/x"
        );
        // A prefix is a path prefix, not a string prefix.
        assert_eq!(
            mount_of(FIXTURE, Path::new("/mnt/disc30")).unwrap().source,
            "/dev/vda1"
        );
        assert_eq!(
            mount_of(FIXTURE, Path::new("/tmp/x")).unwrap().fstype,
            "tmpfs"
        );
        assert_eq!(mount_of("garbage\n\n1 2 3\n", Path::new("/x")), None);
    }

    #[test]
    fn a_directory_is_read_through_its_device_only_when_that_holds_its_disc() {
        let t = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(t.path()).unwrap();
        let header = DiscHeader {
            chain_id: [7; 16],
            name: "m".into(),
            image_sectors: 64,
            capacity_sectors: 64,
            fec_lba: 40,
            fec_sectors: 20,
            created_unix: 1,
            sections: vec![crate::format::disc_header::DiscSection {
                generation: 1,
                disc: 3,
                flags: 0,
                first_part: 1,
                part_count: 1,
                data_discs: 0,
                index_lba: 30,
                index_bytes: 100,
                catalog_lba: 0,
                catalog_bytes: 0,
                first_chunk: 0,
            }],
        };
        let esc = dir.display().to_string().replace(' ', "\\040");
        // Mounted from a device that is not there (a loop device gone).
        let gone = format!("60 27 7:9 / {esc} ro - iso9660 /dev/loop-gone-for-test ro\n");
        let e = device_of(&dir, &header, &gone).unwrap_err();
        assert!(e.contains("/dev/loop-gone-for-test cannot be read"), "{e}");
        // Not from a device at all.
        let fuse = format!("61 27 0:60 / {esc} rw - fuse.sshfs host:/x rw\n");
        let e = device_of(&dir, &header, &fuse).unwrap_err();
        assert!(e.contains("not from a device"), "{e}");
        // A device that holds something else (here a plain file standing in for it).
        let other = dir.join("other.img");
        std::fs::write(&other, vec![0u8; 64 * 2048]).unwrap();
        let wrong = format!("62 27 7:9 / {esc} ro - iso9660 {} ro\n", other.display());
        let e = device_of(&dir, &header, &wrong).unwrap_err();
        assert!(e.contains("does not hold this disc"), "{e}");
        // A device holding the disc (its header at sector 0): its sectors are used.
        let dev = dir.join("dev.img");
        let mut raw = header.encode().to_vec();
        raw.resize(64 * 2048, 0);
        std::fs::write(&dev, raw).unwrap();
        let ours = format!("63 27 7:9 / {esc} ro - udf {} ro\n", dev.display());
        assert_eq!(device_of(&dir, &header, &ours), Ok(dev));
    }
}
