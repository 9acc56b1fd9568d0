//! MMC/SPC responses and sense data from a drive (untrusted: drives and firmware lie).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bd_archive::optical::response::fuzz_responses(data);
});
