//! Chunk header parsing and chunk decoding: never panic, never allocate more than MAX_CHUNK_SIZE.
#![no_main]
use bd_archive::format::chunk::{decode_chunk, ChunkHeader, CHUNK_FRAME_OVERHEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ChunkHeader::decode(data) {
        let stored = &data[CHUNK_FRAME_OVERHEAD.min(data.len())..];
        let take = (h.stored_len as usize).min(stored.len());
        let mut out = Vec::new();
        let _ = decode_chunk(&h, &stored[..take], &mut out);
        assert!(out.len() <= bd_archive::format::chunk::MAX_CHUNK_SIZE);
    }
});
