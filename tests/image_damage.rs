//! Damaged and hostile inputs: the reader must return errors (or a consistent partial answer),
//! never panic, and the writer must refuse bad file lists.

use bd_archive::image::{
    fuzz_read, read_filesystem, write_filesystem, ImageError, ImageFile, VolumeSpec, FIRST_DATA_LBA,
};
use bd_archive::sector::{MemorySectorSource, SECTOR_SIZE};
use bd_archive::util::xorshift::Xorshift64;
use std::os::unix::fs::FileExt;

const TOTAL: u64 = 2048;

fn spec() -> VolumeSpec {
    VolumeSpec {
        volume_id: "damage_G01_0001".into(),
        publisher: String::new(),
        application: String::new(),
        created_unix: 1_700_000_000,
    }
}

fn file(path: &str, lba: u64, size: u64) -> ImageFile {
    ImageFile {
        path: path.into(),
        lba,
        size,
        mtime: 1_700_000_000,
        executable: false,
    }
}

/// A small valid image in memory.
fn image() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.iso");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    f.set_len(TOTAL * SECTOR_SIZE as u64).unwrap();
    let files = vec![
        file("a.txt", FIRST_DATA_LBA, 10),
        file("dir/b.bin", FIRST_DATA_LBA + 1, 5000),
        file("dir/sub/c", FIRST_DATA_LBA + 4, 1),
    ];
    f.write_all_at(&[7u8; 10], FIRST_DATA_LBA * SECTOR_SIZE as u64)
        .unwrap();
    write_filesystem(&f, &spec(), &files, TOTAL).unwrap();
    std::fs::read(&p).unwrap()
}

#[test]
fn valid_image_reads() {
    let fs = read_filesystem(&MemorySectorSource { data: image() }).unwrap();
    assert_eq!(fs.files.len(), 3);
}

#[test]
fn random_bytes_are_rejected() {
    let mut rng = Xorshift64::new(0x1234_5678_9abc_def1);
    for len in [0usize, 100, 2048, 40 * 2048, 600 * 2048] {
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert!(read_filesystem(&MemorySectorSource { data: data.clone() }).is_err());
        fuzz_read(&data);
    }
}

#[test]
fn truncated_images_error_or_agree() {
    let img = image();
    for sectors in [0usize, 16, 17, 20, 30, 256, 257, 300, 600, 1024, 2047] {
        let data = img[..sectors * SECTOR_SIZE].to_vec();
        // Truncation may leave enough for the ISO9660 tree (all metadata is at the front); then
        // the answer must still be the full file list.
        match read_filesystem(&MemorySectorSource { data }) {
            Ok(fs) => assert_eq!(fs.files.len(), 3, "truncated to {sectors}"),
            Err(e) => eprintln!("truncated to {sectors}: {e}"),
        }
    }
}

#[test]
fn corrupted_directory_records_do_not_panic() {
    let img = image();
    // Corrupt every byte of the metadata region, one at a time in several patterns, and also
    // random multi-byte damage; the reader may succeed (redundancy) but must not panic.
    let mut rng = Xorshift64::new(42);
    for round in 0..3000 {
        let mut d = img.clone();
        let n = 1 + (rng.next_u64() % 8) as usize;
        for _ in 0..n {
            let pos = 16 * SECTOR_SIZE + (rng.next_u64() as usize) % ((400 - 16) * SECTOR_SIZE);
            d[pos] = match round % 3 {
                0 => 0xFF,
                1 => 0,
                _ => rng.next_u64() as u8,
            };
        }
        let _ = read_filesystem(&MemorySectorSource { data: d });
    }
}

#[test]
fn directory_loops_and_huge_lengths_are_errors() {
    let mut img = image();
    // Wipe the UDF anchors so the ISO9660 reader is used.
    for lba in [256usize, TOTAL as usize - 1] {
        img[lba * SECTOR_SIZE..(lba + 1) * SECTOR_SIZE].fill(0);
    }
    let pvd = 16 * SECTOR_SIZE;
    let root_lba = u32::from_le_bytes(img[pvd + 158..pvd + 162].try_into().unwrap()) as usize;
    // Point the "dir" entry of the root at the root itself (a loop).
    let root = root_lba * SECTOR_SIZE;
    let mut off = root;
    let mut patched = false;
    while img[off] != 0 {
        let len = img[off] as usize;
        let flags = img[off + 25];
        let idlen = img[off + 32] as usize;
        if flags & 2 != 0 && idlen > 1 {
            img[off + 2..off + 6].copy_from_slice(&(root_lba as u32).to_le_bytes());
            patched = true;
        }
        off += len;
    }
    assert!(patched);
    let e = read_filesystem(&MemorySectorSource { data: img.clone() }).unwrap_err();
    assert!(e.to_string().contains("loop"), "{e}");
    // A root directory claiming 4 GiB.
    img[pvd + 166..pvd + 170].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = read_filesystem(&MemorySectorSource { data: img }).unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::LimitExceeded { .. } | ImageError::Corrupt { .. }
        ),
        "{e}"
    );
}

fn write_err(files: &[ImageFile], total: u64) -> ImageError {
    let f = tempfile::tempfile().unwrap();
    f.set_len(total.min(1 << 20) * SECTOR_SIZE as u64).unwrap();
    write_filesystem(&f, &spec(), files, total).unwrap_err()
}

#[test]
fn writer_refuses_bad_input() {
    let e = write_err(
        &[
            file("a", FIRST_DATA_LBA, 1),
            file("a", FIRST_DATA_LBA + 1, 1),
        ],
        TOTAL,
    );
    assert!(matches!(e, ImageError::DuplicatePath(_)), "{e}");
    let e = write_err(
        &[
            file("a", FIRST_DATA_LBA, 1),
            file("a/b", FIRST_DATA_LBA + 1, 1),
        ],
        TOTAL,
    );
    assert!(matches!(e, ImageError::DuplicatePath(_)), "{e}");
    let e = write_err(
        &[
            file("a", FIRST_DATA_LBA, 4096),
            file("b", FIRST_DATA_LBA + 1, 1),
        ],
        TOTAL,
    );
    assert!(matches!(e, ImageError::Overlap { .. }), "{e}");
    let e = write_err(&[file("a", 500, 1)], TOTAL);
    assert!(matches!(e, ImageError::ExtentOutOfRange { .. }), "{e}");
    let e = write_err(&[file("a", TOTAL - 1, 1)], TOTAL);
    assert!(matches!(e, ImageError::ExtentOutOfRange { .. }), "{e}");
    let e = write_err(&[file("a", FIRST_DATA_LBA, 1 << 32)], 1 << 22);
    assert!(matches!(e, ImageError::FileTooLarge { .. }), "{e}");
    for bad in ["/a", "a//b", "a/../b", "./a", "a/", ""] {
        let e = write_err(&[file(bad, FIRST_DATA_LBA, 1)], TOTAL);
        assert!(matches!(e, ImageError::InvalidPath { .. }), "{bad}: {e}");
    }
    let e = write_err(&[], 1000);
    assert!(matches!(e, ImageError::BadVolumeSize(_)), "{e}");
    // Far too many files for the metadata area.
    let many: Vec<ImageFile> = (0..2000)
        .map(|i| file(&format!("f{i:05}"), FIRST_DATA_LBA + i, 1))
        .collect();
    let e = write_err(&many, 8192);
    assert!(matches!(e, ImageError::MetadataTooLarge { .. }), "{e}");
    println!("example message: {e}");
}

#[test]
fn large_volume_fields_use_u32_and_end_anchor() {
    // 128 GB volume: build metadata for a sparse image and read it back.
    let total: u64 = 62_500_000 / 32 * 32;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.iso");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    f.set_len(total * SECTOR_SIZE as u64).unwrap();
    let last = total - 3 - 2_000_000;
    let files = vec![
        file("near-end.bin", last, 2_000_000 * 2048),
        file("a", FIRST_DATA_LBA, 3),
    ];
    write_filesystem(&f, &spec(), &files, total).unwrap();
    let src = bd_archive::sector::FileSectorSource::open(&p).unwrap();
    let fs = read_filesystem(&src).unwrap();
    assert_eq!(fs.volume_sectors, total);
    let ne = fs.files.iter().find(|x| x.path == "near-end.bin").unwrap();
    assert_eq!((ne.lba, ne.size), (last, 2_000_000 * 2048));
}
