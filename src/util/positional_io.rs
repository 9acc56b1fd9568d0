//! Vectored positional I/O (`preadv`/`pwritev`) that completes or fails, like `read_exact_at` and
//! `write_all_at` do for one buffer.
//!
//! The FEC encoder reads one row of a run of stripes — consecutive sectors of the image, each bound
//! for a different stripe's encoder — with one system call straight into the encoders, and writes
//! parity rows the same way; std has no stable vectored `*_at` calls.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::AsFd;

/// At most this many buffers per call (Linux's IOV_MAX is 1024).
const MAX_IOV: usize = 1024;

/// Fills every buffer of `bufs` in order from `file` at `offset`; an end of file before they are
/// full is an `UnexpectedEof` error.
pub(crate) fn read_exact_vectored_at(
    file: &File,
    mut bufs: &mut [IoSliceMut<'_>],
    mut offset: u64,
) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = bufs.len().min(MAX_IOV);
        match nix::sys::uio::preadv(file.as_fd(), &mut bufs[..n], to_off(offset)?) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(got) => {
                offset += got as u64;
                IoSliceMut::advance_slices(&mut bufs, got);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes every buffer of `bufs` in order to `file` at `offset`.
pub(crate) fn write_all_vectored_at(
    file: &File,
    mut bufs: &mut [IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = bufs.len().min(MAX_IOV);
        match nix::sys::uio::pwritev(file.as_fd(), &bufs[..n], to_off(offset)?) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(put) => {
                offset += put as u64;
                IoSlice::advance_slices(&mut bufs, put);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn to_off(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::other("file offset out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn round_trip_with_more_buffers_than_iov_max() {
        let f = tempfile::tempfile().unwrap();
        let data: Vec<Vec<u8>> = (0..2500u32)
            .map(|i| vec![i as u8; 3 + i as usize % 5])
            .collect();
        let total: usize = data.iter().map(Vec::len).sum();
        let mut out: Vec<IoSlice> = data.iter().map(|v| IoSlice::new(v)).collect();
        write_all_vectored_at(&f, &mut out, 10).unwrap();
        let mut flat = vec![0u8; total];
        f.read_exact_at(&mut flat, 10).unwrap();
        assert_eq!(flat, data.concat());
        let mut back: Vec<Vec<u8>> = data.iter().map(|v| vec![0u8; v.len()]).collect();
        let mut inb: Vec<IoSliceMut> = back.iter_mut().map(|v| IoSliceMut::new(v)).collect();
        read_exact_vectored_at(&f, &mut inb, 10).unwrap();
        assert_eq!(back, data);
        let mut past = [0u8; 4];
        let err = read_exact_vectored_at(&f, &mut [IoSliceMut::new(&mut past)], 8 + total as u64);
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
