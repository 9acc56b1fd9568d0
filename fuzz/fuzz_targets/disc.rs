//! A whole disc: header search, FEC location and repair, index and catalog, and every chunk.
#![no_main]
use std::sync::Arc;

use bd_archive::disc::reader::{Disc, RepairSettings};
use bd_archive::sector::MemorySectorSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Arc::new(MemorySectorSource {
        data: data.to_vec(),
    });
    let settings = RepairSettings {
        memory_budget: 64 << 20,
        spill_dir: None,
    };
    if let Ok(disc) = Disc::open("fuzz".into(), src, &settings) {
        if let Some(index) = &disc.index {
            for (i, c) in index.chunks.iter().enumerate().take(64) {
                let Some(p) = index.parts.iter().find(|p| p.part == c.part) else {
                    continue;
                };
                let mut out = Vec::new();
                let _ = disc.read_chunk(index.disc.first_chunk + i as u64, c, p.lba, &mut out);
            }
        }
    }
});
