//! [`digest_reader`]: the digest of everything a reader yields — the one read loop behind the
//! SHA-256 of source files (`--checksum`) and of files kept by `extract --resume`, and the
//! sha512 sidecars and par2 MD5s of seed slices.

use std::io::{self, Read};

use sha2::digest::{Digest, Output};

/// Reads `r` to its end in 1 MiB reads (retrying interrupted ones) and returns its digest.
pub(crate) fn digest_reader<D: Digest>(mut r: impl Read) -> io::Result<Output<D>> {
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finalize()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_one_shot_digest() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        let got = digest_reader::<sha2::Sha256>(&data[..]).unwrap();
        assert_eq!(got, sha2::Sha256::digest(&data));
        let md5 = digest_reader::<md5::Md5>(&b"abc"[..]).unwrap();
        assert_eq!(format!("{md5:x}"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
