//! Seed-disc reader: dar_archive (dar / par2 bytes from an old disc are untrusted).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bd_archive::legacy::dar::fuzz_archive(data);
});
