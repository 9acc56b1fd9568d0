//! Disc header parsing; a header that parses must re-encode to the same bytes it came from.
#![no_main]
use bd_archive::format::disc_header::DiscHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = DiscHeader::decode(data) {
        let again = DiscHeader::decode(&h.encode()).expect("re-encoded header parses");
        assert_eq!(again, h);
    }
});
