//! Inputs that once crashed a fuzz target; each must now be rejected or read without a panic (or
//! an out-of-memory: the allocator below records the largest single allocation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct LargestAllocation;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LARGEST.fetch_max(n, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

#[test]
fn filesystem_root_record_with_short_system_use_area() {
    // Rock Ridge detection read su[6] eagerly (`then_some`) before checking the length.
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/filesystem-short-su.bin"
    ))
    .unwrap();
    bd_archive::image::fuzz_read(&data);
}

#[test]
fn record_claiming_a_4_gib_string_before_its_checksum_is_checked() {
    // The streaming record decoder decoded before checking the frame's SHA-256, so a damaged frame
    // could make bincode allocate a claimed 4 GiB byte string. Now it is refused by its checksum.
    use bd_archive::format::catalog::{Catalog, DiscIndex};
    use bd_archive::format::records::{decode_record_from, CATALOG_MAGIC, INDEX_MAGIC};
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/records-4gib-claim.bin"
    ))
    .unwrap();
    assert!(decode_record_from::<Catalog, _>(CATALOG_MAGIC, "catalog", &data[..]).is_err());
    assert!(decode_record_from::<DiscIndex, _>(INDEX_MAGIC, "disc index", &data[..]).is_err());
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 64 << 20, "an allocation of {largest} bytes");
}
