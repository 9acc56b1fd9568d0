//! Builds checksum-valid hostile discs the way an attacker would: a real tar stream of the items,
//! then the decoded entries (catalog and index) and the chunking mutated at will, and everything
//! re-encoded through the library's own encoders — chunk frames (CRC32C), records (SHA-256),
//! ISO/UDF and the FEC — so every checksum on the image is valid and only the structure is hostile.

use std::fs;
use std::path::{Path, PathBuf};

use bd_archive::archive::disc_writer::{DiscSetConfig, DiscSetWriter};
use bd_archive::archive::scan::SourceEntry;
use bd_archive::archive::tar_stream::TarStreamBuilder;
use bd_archive::format::catalog::{ChainInfo, Entry, EntryKind};
use bd_archive::format::chunk::{encode_chunk, Compression};

/// One object of the archived tree before mutation.
#[derive(Clone, Debug)]
pub struct Item {
    /// Path inside the archive (not checked: may be hostile).
    pub path: Vec<u8>,
    /// Kind.
    pub kind: EntryKind,
    /// Content of a file.
    pub content: Vec<u8>,
    /// Symlink / hard-link target.
    pub target: Vec<u8>,
}

/// A regular file.
pub fn file(path: &[u8], content: &[u8]) -> Item {
    Item {
        path: path.to_vec(),
        kind: EntryKind::File,
        content: content.to_vec(),
        target: Vec::new(),
    }
}

/// A directory.
pub fn dir(path: &[u8]) -> Item {
    Item {
        path: path.to_vec(),
        kind: EntryKind::Dir,
        content: Vec::new(),
        target: Vec::new(),
    }
}

/// A symlink.
pub fn symlink(path: &[u8], target: &[u8]) -> Item {
    Item {
        path: path.to_vec(),
        kind: EntryKind::Symlink,
        content: Vec::new(),
        target: target.to_vec(),
    }
}

/// A rewrite of the decoded entry list.
pub type Mutation = dyn FnMut(&mut Vec<Entry>);

/// What the attacker controls beyond the items.
pub struct Recipe {
    /// Chain name written into the disc header, catalog and index.
    pub chain_name: String,
    /// Rewrites the decoded entry list (catalog and index) before it is encoded.
    pub mutate: Box<Mutation>,
    /// Length of the chunk starting at a tar offset (1..=1 MiB): many tiny chunks make a huge
    /// chunk table.
    pub chunk_len: Box<dyn Fn(u64) -> usize>,
    /// Sectors of the medium planned for (the writer sizes records against it uncompressed).
    pub capacity_sectors: u64,
    /// The set id written in the record headers (two sets that differ only in it and in
    /// content are two create runs of one generation within one second).
    pub set_id: [u8; 16],
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            chain_name: "evil".into(),
            mutate: Box::new(|_| {}),
            chunk_len: Box::new(|_| 1 << 20),
            capacity_sectors: 32768,
            set_id: [7; 16],
        }
    }
}

impl Recipe {
    /// The default recipe with `mutate` applied to the decoded entries.
    pub fn mutating(mutate: impl FnMut(&mut Vec<Entry>) + 'static) -> Self {
        Recipe {
            mutate: Box::new(mutate),
            ..Recipe::default()
        }
    }
}

/// Builds the disc image(s) of `items` under `work` (`work/images/…`), mutated per `recipe`.
pub fn build(work: &Path, items: &[Item], mut recipe: Recipe) -> Vec<PathBuf> {
    let content_dir = work.join("contents");
    fs::create_dir_all(&content_dir).unwrap();
    let list: Vec<SourceEntry> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let abs = content_dir.join(i.to_string());
            fs::write(&abs, &it.content).unwrap();
            SourceEntry {
                rel_path: it.path.clone(),
                kind: it.kind,
                mode: if it.kind == EntryKind::Dir {
                    0o755
                } else {
                    0o644
                },
                uid: 0,
                gid: 0,
                mtime_sec: 1_600_000_000,
                mtime_nsec: 0,
                size: if it.kind == EntryKind::File {
                    it.content.len() as u64
                } else {
                    0
                },
                link_target: it.target.clone(),
                rdev: 0,
                stamp: Default::default(),
            }
        })
        .collect();
    // The real tar stream and the real entries, decoded from the builder's chunks.
    let mut stream = Vec::new();
    let mut entries = Vec::new();
    let mut emit = |c: bd_archive::archive::tar_stream::StreamChunk| {
        stream.extend_from_slice(&c.data);
        entries.extend(c.completed);
        Ok(())
    };
    let content_path = |rel: &[u8]| {
        let i = items.iter().position(|it| it.path == rel).unwrap();
        content_dir.join(i.to_string())
    };
    let len = TarStreamBuilder::new(1, &content_path, &mut emit, &mut |_| {}, &mut |_| {})
        .run(&list)
        .unwrap();
    assert_eq!(len, stream.len() as u64);
    (recipe.mutate)(&mut entries);
    let images = work.join("images");
    fs::create_dir_all(&images).unwrap();
    let chain = ChainInfo {
        name: recipe.chain_name.clone(),
        chain_id: [7; 16],
        generation: 1,
        base_generation: 0,
        created_unix: 1_600_000_000,
        tool_version: "hostile".into(),
        compression: "none".into(),
        redundancy_pct: 10,
    };
    let cfg = DiscSetConfig {
        images_dir: images,
        chain,
        set_id: recipe.set_id,
        capacity_sectors: recipe.capacity_sectors,
        redundancy_pct: 10,
        fill_parity: false,
        memory_budget: 64 << 20,
        format_md: b"format".to_vec(),
        first_image_number: 1,
        carry_in: None,
        binary: None,
        parity_reserve_sectors: 0,
        parity_discs: 0,
        disc_map: Vec::new(),
    };
    let mut writer = DiscSetWriter::new(cfg).unwrap();
    writer.reserve_entries(entries.len());
    // Re-chunk the stream as the recipe says; every entry rides on the last chunk.
    let mut off = 0u64;
    let mut seq = 0u64;
    while off < len {
        let n = ((recipe.chunk_len)(off).clamp(1, 1 << 20) as u64).min(len - off);
        let data = &stream[off as usize..(off + n) as usize];
        let enc = encode_chunk(data, Compression::None, None, [7; 16], 1, seq, off).unwrap();
        let done = off + n == len;
        let completed = if done {
            std::mem::take(&mut entries)
        } else {
            Vec::new()
        };
        writer.push_chunk(enc, completed, None).unwrap();
        off += n;
        seq += 1;
    }
    writer.finish(len, Vec::new(), &mut |_| Ok(())).unwrap()
}

/// What one run of the binary cost and said.
#[derive(Debug)]
pub struct Measured {
    /// Exit code (-1 for a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Peak resident set of the child alone, KiB (its own `VmHWM`).
    pub max_rss_kib: u64,
    /// User + system CPU time of the child, seconds.
    pub cpu_secs: f64,
}

/// Runs bd-archive with `args` and `-v`, which makes it report, as its last stderr line, its own
/// peak RSS (`VmHWM`, the high-water mark of its own address space) and CPU time. (`wait4` on a
/// child of the test process would not do: a child spawned by vfork inherits the test process's
/// peak RSS at exec.)
pub fn measure(args: &[&std::ffi::OsStr], scratch: &Path) -> Measured {
    let out_path = scratch.join("measure.stdout");
    let err_path = scratch.join("measure.stderr");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_bd-archive"))
        .arg("-v")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    // "resources: peak memory N KiB, CPU U s user + S s system"
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("resources: "))
        .unwrap_or_else(|| panic!("no resources line (a panic?) in: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let figure = |i: usize| -> f64 { words[i].parse().unwrap() };
    Measured {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        max_rss_kib: figure(3) as u64,
        cpu_secs: figure(6) + figure(10),
        stderr,
    }
}

/// With `HOSTILE_KEEP=DIR` in the environment, copies `image` to `DIR/<name>.iso`, to measure
/// it by hand (e.g. against another build: `/usr/bin/time -v bd-archive list DIR/<name>.iso`).
pub fn keep(image: &Path, name: &str) {
    if let Some(dir) = std::env::var_os("HOSTILE_KEEP") {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).unwrap();
        let to = dir.join(format!("{name}.iso"));
        // Sparse images (the FEC claims) stay sparse.
        let ok = std::process::Command::new("cp")
            .arg("--sparse=always")
            .arg(image)
            .arg(&to)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            fs::copy(image, to).unwrap();
        }
    }
}

/// The FEC header copy at region offset 0 of `layout` (FORMAT.md §3.4), written field by field
/// and sealed with its CRC32C as an attacker would, from the spec alone: no table, no parity.
pub fn fec_header_sector(layout: &bd_archive::fec::FecLayout) -> Vec<u8> {
    let mut b = vec![0u8; 2048];
    b[0..8].copy_from_slice(&bd_archive::fec::FEC_MAGIC);
    b[8..10].copy_from_slice(&bd_archive::fec::FEC_VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&1u16.to_le_bytes()); // kind: header
    b[12..16].copy_from_slice(&128u32.to_le_bytes());
    b[16..24].copy_from_slice(&layout.protected_sectors().to_le_bytes());
    b[24..32].copy_from_slice(&layout.stripes().to_le_bytes());
    b[32..36].copy_from_slice(&layout.data_per_stripe().to_le_bytes());
    b[36..40].copy_from_slice(&layout.parity_per_stripe().to_le_bytes());
    b[40..48].copy_from_slice(&layout.region_sectors().to_le_bytes());
    b[48..56].copy_from_slice(&layout.table_sectors().to_le_bytes());
    b[56..64].copy_from_slice(&layout.rotation_key().to_le_bytes());
    b[64..68].copy_from_slice(&(layout.table_stripes() as u32).to_le_bytes());
    b[68..72].copy_from_slice(&(layout.table_k() as u32).to_le_bytes());
    // self offset 0, table index 0
    b[88..92].copy_from_slice(&2048u32.to_le_bytes());
    b[92..96].copy_from_slice(&(bd_archive::fec::ENTRIES_PER_TABLE_SECTOR as u32).to_le_bytes());
    let crc = crc32c::crc32c(&b[..2044]);
    b[2044..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Issue #16 item 4 as an attacker builds it: a real disc (a 2 MiB file, every checksum valid)
/// with one byte of the file flipped (so extract needs the FEC) and its own FEC header copy at
/// the disc header's hint wiped, then stretched (sparse) to `mib` MiB and closed with a forged
/// FEC header at its last sector. The header claims all of the file as protected and the most
/// parity a reader accepts (100 × the data, nearly all past the end of the file), so the file
/// holds ~2 MiB of data but the geometry names ~100 × `mib` MiB of sectors. Returns its path.
pub fn forged_fec_claim(work: &Path, mib: u64) -> PathBuf {
    let content = bd_archive::util::xorshift::noise(2 << 20, 3);
    let imgs = build(work, &[file(b"photo.raw", &content)], Recipe::default());
    let img = imgs[0].clone();
    let mut bytes = fs::read(&img).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &content[..64])
        .expect("file content stored uncompressed");
    bytes[at + 4096] ^= 0x55;
    let src = bd_archive::sector::FileSectorSource::open(&img).unwrap();
    let own = bd_archive::fec::locate(&src, None).unwrap().region_lba as usize;
    drop(src);
    bytes[own * 2048..(own + 1) * 2048].fill(0);
    let d = (mib << 20) / 2048;
    assert!(
        d > bytes.len() as u64 / 2048,
        "the claim must cover the real disc"
    );
    // k = 64 shards per stripe, m = 100 · k parity shards: the largest region a reader accepts.
    let layout = bd_archive::fec::FecLayout::from_geometry(d, d.div_ceil(64), 6400).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&bytes, 0).unwrap();
    f.set_len((d + 1) * 2048).unwrap();
    f.write_all_at(&fec_header_sector(&layout), d * 2048)
        .unwrap();
    img
}
