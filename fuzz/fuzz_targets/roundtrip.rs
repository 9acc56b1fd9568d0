//! Structure-aware round trip: the fuzzer's bytes describe a small tree (names, kinds, contents);
//! it is archived through the real writer into images, restored through the real reader and
//! restorer, and every file must come back byte-exact.
#![no_main]
use std::fs;
use std::os::unix::ffi::OsStrExt;

use bd_archive::archive::tar_stream::TarStreamBuilder;
use bd_archive::format::catalog::{ChainInfo, EntryKind};
use bd_archive::format::chunk::{encode_chunk, Compression};
use bd_archive::disc::reader::{Disc, GenerationSet, RepairSettings};
use bd_archive::archive::disc_writer::{DiscSetConfig, DiscSetWriter};
use bd_archive::archive::scan::{scan_tree, ScanOptions};
use bd_archive::restore::chain_stream::ChainStreams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tmp) = tempfile_dir() else { return };
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    // Each record: [kind, name_len, name..., content_len, content...]
    let mut i = 0;
    let mut made = Vec::new();
    while i + 2 < data.len() && made.len() < 32 {
        let kind = data[i] % 3;
        let nl = (data[i + 1] as usize % 12) + 1;
        let Some(raw) = data.get(i + 2..i + 2 + nl) else {
            break;
        };
        i += 2 + nl;
        let name: Vec<u8> = raw
            .iter()
            .map(|b| {
                if *b == b'/' || *b == 0 || *b == b'.' {
                    b'_'
                } else {
                    *b
                }
            })
            .collect();
        let path = src.join(std::ffi::OsStr::from_bytes(&name));
        if path.exists() {
            continue;
        }
        let cl = data.get(i).copied().unwrap_or(0) as usize * 37;
        i += 1;
        let content: Vec<u8> = (0..cl)
            .map(|k| data.get(i + k % 16).copied().unwrap_or(7))
            .collect();
        i += 16.min(data.len().saturating_sub(i));
        match kind {
            0 => {
                let _ = fs::write(&path, &content);
            }
            1 => {
                let _ = fs::create_dir(&path);
            }
            _ => {
                let _ = std::os::unix::fs::symlink(
                    std::ffi::OsStr::from_bytes(&content[..content.len().min(40)]),
                    &path,
                );
            }
        }
        made.push(name);
    }
    let Ok(entries) = scan_tree(&src, &ScanOptions::default(), &mut |_| {}, &mut |_| {}) else {
        return;
    };
    let images = tmp.join("images");
    fs::create_dir_all(&images).unwrap();
    let chain = ChainInfo {
        name: "fz".into(),
        chain_id: [3; 16],
        generation: 1,
        base_generation: 0,
        created_unix: 0,
        tool_version: "fuzz".into(),
        compression: "zstd-1".into(),
        redundancy_pct: 10,
    };
    let cfg = DiscSetConfig {
        images_dir: images,
        chain,
        capacity_sectors: 16384,
        redundancy_pct: 10,
        fill_parity: false,
        memory_budget: 64 << 20,
        format_md: Vec::new(),
        first_image_number: 1,
        carry_in: None,
        binary: None,
    };
    let mut writer = DiscSetWriter::new(cfg).unwrap();
    let mut chunks = Vec::new();
    let content_path = |rel: &[u8]| bd_archive::archive::scan::join_rel(&src, rel);
    let len = TarStreamBuilder::new(
        1,
        &content_path,
        &mut |c| {
            chunks.push(c);
            Ok(())
        },
        &mut |_| {},
        &mut |_| {},
    )
    .run(&entries)
    .unwrap();
    let mut comp = bd_archive::format::chunk::new_compressor(1).unwrap();
    for c in chunks {
        let enc = encode_chunk(
            &c.data,
            Compression::Zstd(1),
            Some(&mut comp),
            [3; 16],
            1,
            c.seq,
            c.tar_offset,
        )
        .unwrap();
        writer.push_chunk(enc, c.completed, c.open).unwrap();
    }
    let imgs = writer.finish(len, Vec::new(), &mut |_| Ok(())).unwrap();
    let discs: Vec<Disc> = imgs
        .iter()
        .map(|p| Disc::open_path(p, &RepairSettings::default()).unwrap())
        .collect();
    let set = GenerationSet::new(discs).unwrap();
    let mut sets = std::collections::BTreeMap::new();
    sets.insert(1u32, set);
    let mut streams = ChainStreams::new(&sets);
    for e in &sets[&1].entries {
        if e.kind != EntryKind::File {
            continue;
        }
        let mut got = vec![0u8; e.size as usize];
        streams
            .read_range(
                1,
                e.data.content_offset,
                e.size,
                &mut |off, b| {
                    got[off as usize..off as usize + b.len()].copy_from_slice(&b);
                    Ok(())
                },
                &mut |_, _, why| panic!("gap: {why}"),
            )
            .unwrap();
        let want = fs::read(src.join(std::ffi::OsStr::from_bytes(&e.path))).unwrap();
        assert_eq!(
            got,
            want,
            "content of {:?} differs",
            String::from_utf8_lossy(&e.path)
        );
    }
    let _ = fs::remove_dir_all(&tmp);
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "bd-fuzz-rt-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::create_dir_all(&d)?;
    Ok(d)
}
