//! PAX tar records for catalog entries, so each generation's data is a standard tar stream.
//!
//! Every entry gets a PAX extended header (`x`) carrying the exact path, link target, mtime with
//! nanoseconds and, where ustar fields are too small, size/uid/gid, followed by a ustar header whose
//! fields are best-effort copies (readers that know PAX, like GNU tar and bsdtar, use the PAX values).

use crate::format::catalog::{Entry, EntryKind};

/// tar block size.
pub(super) const BLOCK: usize = 512;

/// The end-of-archive marker: two zero blocks.
pub(super) const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Bytes of zero padding after `size` content bytes so the next header is block-aligned.
pub(super) fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Appends one PAX record `"<len> <key>=<value>\n"` where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The tar typeflag for an entry kind; `None` for sockets, which tar cannot represent.
fn typeflag(kind: EntryKind) -> Option<tar::EntryType> {
    Some(match kind {
        EntryKind::File => tar::EntryType::Regular,
        EntryKind::Dir => tar::EntryType::Directory,
        EntryKind::Symlink => tar::EntryType::Symlink,
        EntryKind::HardLink => tar::EntryType::Link,
        EntryKind::Fifo => tar::EntryType::Fifo,
        EntryKind::CharDevice => tar::EntryType::Char,
        EntryKind::BlockDevice => tar::EntryType::Block,
        EntryKind::Socket => return None,
    })
}

/// Writes the PAX + ustar header blocks for `e` into `out` (content is not included).
/// Returns false (and writes nothing) for kinds tar cannot represent.
pub(super) fn write_headers(e: &Entry, out: &mut Vec<u8>) -> bool {
    let Some(flag) = typeflag(e.kind) else {
        return false;
    };
    let mut path = e.path.clone();
    if e.kind == EntryKind::Dir {
        path.push(b'/');
    }
    let mut pax = Vec::with_capacity(128 + path.len() + e.link_target.len());
    let binary =
        std::str::from_utf8(&path).is_err() || std::str::from_utf8(&e.link_target).is_err();
    if binary {
        pax_record(&mut pax, "hdrcharset", b"BINARY");
    }
    pax_record(&mut pax, "path", &path);
    if !e.link_target.is_empty() {
        pax_record(&mut pax, "linkpath", &e.link_target);
    }
    pax_record(
        &mut pax,
        "mtime",
        format_mtime(e.mtime_sec, e.mtime_nsec).as_bytes(),
    );
    if e.size > 0o777_7777_7777 {
        pax_record(&mut pax, "size", e.size.to_string().as_bytes());
    }
    if e.uid > 0o777_7777 {
        pax_record(&mut pax, "uid", e.uid.to_string().as_bytes());
    }
    if e.gid > 0o777_7777 {
        pax_record(&mut pax, "gid", e.gid.to_string().as_bytes());
    }

    let mut xh = tar::Header::new_ustar();
    set_name_bytes(&mut xh, &pax_name(&path));
    xh.set_mode(0o644);
    xh.set_size(pax.len() as u64);
    xh.set_mtime(e.mtime_sec.max(0) as u64);
    xh.set_entry_type(tar::EntryType::XHeader);
    xh.set_cksum();
    out.extend_from_slice(xh.as_bytes());
    out.extend_from_slice(&pax);
    out.resize(out.len() + padding(pax.len() as u64), 0);

    let mut h = tar::Header::new_ustar();
    set_name_bytes(&mut h, &path);
    h.set_mode(e.mode & 0o7777);
    h.set_uid(u64::from(e.uid.min(0o777_7777)));
    h.set_gid(u64::from(e.gid.min(0o777_7777)));
    h.set_size(if e.kind == EntryKind::File {
        e.size.min(0o777_7777_7777)
    } else {
        0
    });
    h.set_mtime(e.mtime_sec.clamp(0, 0o777_7777_7777) as u64);
    h.set_entry_type(flag);
    if matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        let (maj, min) = (
            libc::major(e.rdev as libc::dev_t),
            libc::minor(e.rdev as libc::dev_t),
        );
        let _ = h.set_device_major(maj);
        let _ = h.set_device_minor(min);
    }
    if !e.link_target.is_empty() {
        let n = e.link_target.len().min(100);
        if let Some(u) = h.as_ustar_mut() {
            u.linkname[..n].copy_from_slice(&e.link_target[..n]);
        }
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    true
}

/// Upper bound of the header bytes [`write_headers`] writes for an entry whose path has
/// `path_len` bytes and whose link target has `target_len`, whatever its other fields hold: every
/// optional record counted at its longest (`hdrcharset`, `size`, `uid`, `gid`, a negative `mtime`
/// with nanoseconds), 20 bytes for each record's own length digits, the trailing '/' of a
/// directory. Lets `create` bound the stream (and so the chunks and discs) before reading a byte.
pub(crate) fn headers_len_bound(path_len: usize, target_len: usize) -> u64 {
    let record = |key: &str, value: usize| (key.len() + value + 3 + 20) as u64;
    let pax = record("hdrcharset", 6)
        + record("path", path_len + 1)
        + record("linkpath", target_len)
        + record("mtime", 30)
        + record("size", 20)
        + record("uid", 10)
        + record("gid", 10);
    (2 * BLOCK) as u64 + pax.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Name of the PAX header block itself (informational; GNU tar uses `<dir>/PaxHeaders/<name>`).
fn pax_name(path: &[u8]) -> Vec<u8> {
    let mut v = b"PaxHeaders/".to_vec();
    let base = path
        .rsplit(|&c| c == b'/')
        .find(|s| !s.is_empty())
        .unwrap_or(b"x");
    v.extend_from_slice(&base[..base.len().min(80)]);
    v
}

/// Fills ustar `prefix`/`name` with `path` where it fits; otherwise a truncated name (the PAX
/// `path` record is authoritative).
fn set_name_bytes(h: &mut tar::Header, path: &[u8]) {
    let Some(u) = h.as_ustar_mut() else { return };
    if path.len() <= 100 {
        u.name[..path.len()].copy_from_slice(path);
        return;
    }
    // Split at a '/' so that prefix ≤ 155 and name ≤ 100.
    for (i, &c) in path.iter().enumerate() {
        if c == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            u.prefix[..i].copy_from_slice(&path[..i]);
            let rest = &path[i + 1..];
            u.name[..rest.len()].copy_from_slice(rest);
            return;
        }
    }
    u.name.copy_from_slice(&path[..100]);
}

/// PAX `mtime` value: decimal seconds with a 9-digit fraction when nanoseconds are non-zero.
fn format_mtime(sec: i64, nsec: u32) -> String {
    if nsec == 0 {
        return sec.to_string();
    }
    if sec < 0 {
        // PAX times are a signed decimal: -1.25 means 1.25 s before the epoch.
        let total_ns = (sec as i128) * 1_000_000_000 + nsec as i128;
        let neg = -total_ns;
        return format!("-{}.{:09}", neg / 1_000_000_000, neg % 1_000_000_000);
    }
    format!("{sec}.{nsec:09}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::catalog::DataRef;

    fn entry(path: &[u8], kind: EntryKind, size: u64) -> Entry {
        Entry {
            path: path.to_vec(),
            kind,
            mode: 0o640,
            uid: 1000,
            gid: 100,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 123_456_789,
            size,
            link_target: Vec::new(),
            rdev: 0,
            sha256: [0; 32],
            data: DataRef::default(),
            stamp: Default::default(),
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        pax_record(&mut v, "path", &[b'x'; 93]);
        assert_eq!(&v[..4], b"103 ");
        assert_eq!(v.len(), 103);
    }

    #[test]
    fn stream_parses_with_tar_crate() {
        let long = [b'd'; 150]
            .iter()
            .chain(b"/")
            .chain([b'f'; 120].iter())
            .copied()
            .collect::<Vec<u8>>();
        let mut stream = Vec::new();
        let mut f = entry(&long, EntryKind::File, 5);
        assert!(write_headers(&f, &mut stream));
        stream.extend_from_slice(b"hello");
        stream.resize(stream.len() + padding(5), 0);
        let mut l = entry(b"link", EntryKind::Symlink, 0);
        l.link_target = b"caf\xe9/target".to_vec();
        assert!(write_headers(&l, &mut stream));
        f.path = b"dir".to_vec();
        f.kind = EntryKind::Dir;
        f.size = 0;
        assert!(write_headers(&f, &mut stream));
        stream.extend_from_slice(&END_OF_ARCHIVE);

        let mut ar = tar::Archive::new(&stream[..]);
        let entries: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|mut e| {
                let path = e.path_bytes().into_owned();
                let link = e.link_name_bytes().map(|c| c.into_owned());
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut s).unwrap();
                let mtime = e.header().mtime().unwrap();
                (path, link, s, mtime)
            })
            .collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].0, long);
        assert_eq!(entries[0].2, b"hello");
        assert_eq!(entries[0].3, 1_700_000_000);
        assert_eq!(entries[1].1.as_deref(), Some(&b"caf\xe9/target"[..]));
        assert_eq!(entries[2].0, b"dir/");
    }

    #[test]
    fn headers_never_exceed_their_bound() {
        let names: [&[u8]; 3] = [b"a", &[b'n'; 99], &[0xe9; 4096]];
        for path in names {
            for target in [&b""[..], b"t", &[0xff; 4095]] {
                for kind in [EntryKind::Dir, EntryKind::Symlink, EntryKind::File] {
                    let mut e = entry(path, kind, u64::MAX);
                    e.link_target = target.to_vec();
                    (e.uid, e.gid) = (u32::MAX, u32::MAX);
                    (e.mtime_sec, e.mtime_nsec) = (i64::MIN, 999_999_999);
                    let mut out = Vec::new();
                    assert!(write_headers(&e, &mut out));
                    assert!(out.len() as u64 <= headers_len_bound(path.len(), target.len()));
                }
            }
        }
    }

    #[test]
    fn negative_mtime_format() {
        assert_eq!(format_mtime(-2, 750_000_000), "-1.250000000");
        assert_eq!(format_mtime(5, 1), "5.000000001");
    }
}
