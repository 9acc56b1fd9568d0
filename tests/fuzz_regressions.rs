//! Inputs that once crashed a fuzz target; each must now be rejected or read without a panic (or
//! an out-of-memory: the allocator below records the largest single allocation a test's thread
//! makes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct LargestAllocation;

// Per thread, so the other tests of this binary, running in parallel, do not count: only the
// thread inside `largest_allocation_during` records.
thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: no panic while a thread's locals are being torn down. Const-initialised `Cell`s
    // never allocate, so this cannot recurse into the allocator.
    if RECORDING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

/// Runs `f` on this thread and returns the largest single allocation it made.
fn largest_allocation_during(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    RECORDING.with(|r| r.set(true));
    f();
    RECORDING.with(|r| r.set(false));
    LARGEST.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        record(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        record(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        record(n);
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
    let largest = largest_allocation_during(|| {
        assert!(decode_record_from::<Catalog, _>(CATALOG_MAGIC, "catalog", &data[..]).is_err());
        assert!(decode_record_from::<DiscIndex, _>(INDEX_MAGIC, "disc index", &data[..]).is_err());
    });
    assert!(largest > 0, "the allocation probe recorded nothing");
    assert!(largest < 64 << 20, "an allocation of {largest} bytes");
}
