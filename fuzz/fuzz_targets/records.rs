//! Catalog and per-disc index record files (header, zstd body, bincode decoding), both the
//! in-memory decoder and the streaming one extract reads discs with.
#![no_main]
use bd_archive::format::catalog::{Catalog, DiscIndex};
use bd_archive::format::records::{
    decode_record, decode_record_from, CATALOG_MAGIC, INDEX_MAGIC,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_record::<Catalog>(CATALOG_MAGIC, "catalog", data);
    let _ = decode_record::<DiscIndex>(INDEX_MAGIC, "disc index", data);
    let _ = decode_record_from::<Catalog, _>(CATALOG_MAGIC, "catalog", data);
    let _ = decode_record_from::<DiscIndex, _>(INDEX_MAGIC, "disc index", data);
});
