//! ISO9660 / Rock Ridge / Joliet / UDF reader on arbitrary images.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bd_archive::image::fuzz_read(data);
});
