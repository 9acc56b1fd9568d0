//! Structure-aware: starts from a valid decoded catalog, lets the input rewrite its fields
//! (paths, kinds, sizes, offsets, times, hashes, chunk records, strings — including values past
//! every limit), re-encodes it with valid checksums (`encode_record`: zstd + SHA-256 + header
//! CRC) and runs what readers do with a catalog that passed the checksum gates: the bounded
//! decode, the FORMAT.md §6 entry rules, the §5 chunk-table rule and the disc column.
#![no_main]
use bd_archive::format::catalog::validate::{entry_violations, Source};
use bd_archive::format::catalog::{
    discs_of, retain_valid_chunks, Catalog, ChainInfo, ChunkRecord, DataRef, DiscMap, DiscRecord,
    DiscSpan, Entry, EntryKind,
};
use bd_archive::format::records::{decode_record, encode_record, RecordIdentity, CATALOG_MAGIC};
use libfuzzer_sys::fuzz_target;

fn base() -> Catalog {
    let chain = ChainInfo {
        name: "fuzz".into(),
        chain_id: [1; 16],
        generation: 3,
        base_generation: 2,
        created_unix: 0,
        tool_version: "fuzz".into(),
        compression: "none".into(),
        redundancy_pct: 10,
    };
    let entry = |i: u64, path: &str, kind: EntryKind, size: u64| Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
        size,
        link_target: Vec::new(),
        rdev: 0,
        sha256: [i as u8 + 1; 32],
        data: DataRef {
            generation: 1,
            header_offset: i << 20,
            content_offset: (i << 20) + 512,
        },
        stamp: Default::default(),
    };
    let chunks = (0..4u64)
        .map(|k| ChunkRecord {
            tar_offset: k << 20,
            tar_len: if k == 3 { 4096 } else { 1 << 20 },
            stored_len: 100,
            disc: 1 + (k / 2) as u32,
            part: 1,
            part_offset: k * 200,
            stored_crc: 0,
            content_crc: 0,
        })
        .collect();
    Catalog {
        chain,
        tar_len: (3 << 20) + 4096,
        discs: vec![DiscRecord {
            disc: 1,
            volume_label: "FUZZ".into(),
            image_sectors: 0,
            capacity_sectors: 0,
            first_chunk: 0,
            chunk_count: 4,
            tar_start: 0,
            tar_end: (3 << 20) + 4096,
        }],
        parts: Vec::new(),
        chunks,
        entries: vec![
            entry(0, "a", EntryKind::Dir, 0),
            entry(1, "a/f", EntryKind::File, 1000),
            entry(2, "b", EntryKind::File, 2 << 20),
            entry(3, "c", EntryKind::Symlink, 0),
        ],
        disc_map: (1..3u32)
            .flat_map(|g| {
                (0..2u64).map(move |d| DiscSpan {
                    generation: g,
                    disc: d as u32 + 1,
                    first_chunk: 2 * d,
                    chunk_count: 2,
                    tar_end: (2 * d + 2) << 20,
                })
            })
            .collect(),
    }
}

/// Reads little-endian numbers off the input.
struct Ops<'a>(&'a [u8]);

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..8 {
            v |= u64::from(self.byte()?) << (8 * i);
        }
        Some(v)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.byte()? as usize;
        // A length byte of 255 grows the field past every limit, repeating one byte.
        if n == 255 {
            return Some(vec![self.byte()?; 5000]);
        }
        let n = n.min(self.0.len());
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(a.to_vec())
    }
}

fn mutate(c: &mut Catalog, ops: &mut Ops) -> Option<()> {
    loop {
        let op = ops.byte()?;
        let ne = c.entries.len().max(1);
        let i = ops.byte()? as usize % ne;
        let k = i % c.chunks.len().max(1);
        let m = i % c.disc_map.len().max(1);
        match op % 20 {
            0 if !c.entries.is_empty() => c.entries[i].path = ops.bytes()?,
            1 if !c.entries.is_empty() => c.entries[i].link_target = ops.bytes()?,
            2 if !c.entries.is_empty() => c.entries[i].size = ops.u64()?,
            3 if !c.entries.is_empty() => c.entries[i].data.content_offset = ops.u64()?,
            4 if !c.entries.is_empty() => c.entries[i].data.header_offset = ops.u64()?,
            5 if !c.entries.is_empty() => c.entries[i].mtime_nsec = ops.u64()? as u32,
            6 if !c.entries.is_empty() => c.entries[i].sha256 = [0; 32],
            7 if !c.entries.is_empty() => {
                c.entries[i].kind = match ops.byte()? % 8 {
                    0 => EntryKind::File,
                    1 => EntryKind::Dir,
                    2 => EntryKind::Symlink,
                    3 => EntryKind::HardLink,
                    4 => EntryKind::Fifo,
                    5 => EntryKind::CharDevice,
                    6 => EntryKind::BlockDevice,
                    _ => EntryKind::Socket,
                }
            }
            8 if c.entries.len() < 64 && !c.entries.is_empty() => {
                let e = c.entries[i].clone();
                c.entries.insert(i, e);
            }
            9 if !c.entries.is_empty() => {
                c.entries.remove(i);
            }
            10 if !c.chunks.is_empty() => c.chunks[k].tar_offset = ops.u64()?,
            11 if !c.chunks.is_empty() => c.chunks[k].tar_len = ops.u64()? as u32,
            12 if !c.chunks.is_empty() => c.chunks[k].disc = ops.byte()? as u32,
            13 if c.chunks.len() < 64 && !c.chunks.is_empty() => {
                let ch = c.chunks[k];
                c.chunks.insert(k, ch);
            }
            14 => c.chain.name = String::from_utf8_lossy(&ops.bytes()?).into_owned(),
            15 if !c.entries.is_empty() => c.entries[i].mode = ops.u64()? as u32,
            16 if !c.disc_map.is_empty() => c.disc_map[m].first_chunk = ops.u64()?,
            17 if !c.disc_map.is_empty() => c.disc_map[m].chunk_count = ops.u64()?,
            18 if !c.disc_map.is_empty() => c.disc_map[m].tar_end = ops.u64()?,
            19 if !c.disc_map.is_empty() => {
                c.disc_map[m].generation = ops.byte()? as u32;
                c.disc_map[m].disc = ops.byte()? as u32;
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = base();
    let _ = mutate(&mut c, &mut Ops(data));
    let id = RecordIdentity {
        chain_id: [1; 16],
        generation: 1,
        disc: 0,
        set_id: [2; 16],
    };
    let Ok(rec) = encode_record(CATALOG_MAGIC, id, &c) else {
        return;
    };
    let Ok((_, mut c)) = decode_record::<Catalog>(CATALOG_MAGIC, "catalog", &rec) else {
        return;
    };
    let mut seqs: Vec<u64> = (0..c.chunks.len() as u64).collect();
    retain_valid_chunks(&mut c.chunks, &mut seqs);
    let end = c
        .chunks
        .last()
        .map_or(0, |ch| ch.tar_offset.saturating_add(u64::from(ch.tar_len)));
    let v = entry_violations(&c.entries, Source::Catalog, &|_| Some(end));
    let (map, _) = DiscMap::checked(&c.disc_map, c.chain.generation);
    for (e, bad) in c.entries.iter().zip(v) {
        let discs = discs_of(&c.chunks, e);
        assert!(discs.len() <= c.chunks.len());
        assert!(map.discs_of(e).len() <= c.disc_map.len());
        if bad.is_none() {
            assert!(e.path.len() <= 4096 && e.mtime_nsec < 1_000_000_000);
        }
    }
});
