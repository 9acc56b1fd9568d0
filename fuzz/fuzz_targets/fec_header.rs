//! FEC header and checksum-table sectors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bd_archive::fec::fuzz_header(data);
});
