//! The parity manifest and the claims a rebuild checks (FORMAT.md §10.3): a 2048-byte parity disc
//! header, then the manifest. Both CRCs are made valid here, so the fuzzer reaches the field
//! rules instead of stopping at the checksums; nothing may panic, loop or allocate past the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

const SECTOR: usize = 2048;

fn fix_crc(b: &mut [u8]) {
    if b.len() >= 4 {
        let end = b.len() - 4;
        let crc = crc32c::crc32c(&b[..end]);
        b[end..].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < SECTOR + 8 {
        return;
    }
    let mut header = data[..SECTOR].to_vec();
    let mut manifest = data[SECTOR + 8..].to_vec();
    fix_crc(&mut header);
    fix_crc(&mut manifest);
    let real = u64::from_le_bytes(data[SECTOR..SECTOR + 8].try_into().unwrap());
    bd_archive::restore::parity_claims::fuzz_claims(&header, &manifest, real);
});
