//! Inputs that once crashed a fuzz target; each must now be rejected or read without a panic.

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
