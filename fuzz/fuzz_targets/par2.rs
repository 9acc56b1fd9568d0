//! Seed-disc reader: par2 (dar / par2 bytes from an old disc are untrusted).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bd_archive::legacy::par2::fuzz_par2(data);
});
