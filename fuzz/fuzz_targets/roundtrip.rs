//! Structure-aware round trip: the fuzzer's bytes describe a small tree (names, kinds, contents);
//! it is archived by the create engine (`archive::prepare` + `archive::create`) into images and
//! restored by the extract engine, and every entry must come back byte-exact.
#![no_main]
use std::fs;
use std::os::unix::ffi::OsStrExt;

use bd_archive::archive::{self, CreateJob, Preparation, RatioEstimate};
use bd_archive::disc::reader::RepairSettings;
use bd_archive::format::chunk::Compression;
use bd_archive::restore::extract::{extract, ExtractOptions};
use bd_archive::restore::sources::open_discs;
use bd_archive::util::progress::Silent;
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
    // The same engines the user runs: archive::prepare + archive::create, then restore::extract.
    let job = CreateJob {
        name: "fz".into(),
        source: src.clone(),
        output: tmp.join("out"),
        workdir: None,
        capacity_sectors: 16384,
        compression: Compression::Zstd(1),
        redundancy_pct: 10,
        fill_parity: false,
        memory_budget: 64 << 20,
        base: None,
        pack: None,
        ratio: RatioEstimate::Given(1.0),
        min_last_disc_fill: 0,
        checksum: false,
        allow_empty: true,
        resume: false,
        no_binary: true,
        dry_run: false,
        exclude_patterns: Vec::new(),
        exclude_caches: false,
        one_file_system: false,
        warn_binary_not_carried: false,
        parity_discs: 0,
    };
    let Preparation::Ready(prepared) = archive::prepare(&job, &Silent).unwrap() else {
        panic!("a full archive always has something to write");
    };
    let report = archive::create(&job, *prepared, &Silent).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let discs = open_discs(&report.images, &RepairSettings::default(), None, &Silent).unwrap();
    let opts = ExtractOptions {
        output: tmp.join("restored"),
        workdir: tmp.join("work"),
        ..ExtractOptions::default()
    };
    let restored = extract(discs, None, &opts, &Silent).unwrap();
    assert!(restored.is_bit_exact(), "{:?}", restored.damaged);
    for name in &made {
        let name = std::ffi::OsStr::from_bytes(name);
        let (want, got) = (src.join(name), opts.output.join(name));
        let Ok(meta) = fs::symlink_metadata(&want) else {
            continue; // not created (e.g. a name the filesystem refused)
        };
        if meta.file_type().is_symlink() {
            assert_eq!(fs::read_link(&got).unwrap(), fs::read_link(&want).unwrap());
        } else if meta.is_file() {
            assert_eq!(fs::read(&got).unwrap(), fs::read(&want).unwrap(), "{name:?} differs");
        } else {
            assert!(got.is_dir(), "{name:?} is not restored as a directory");
        }
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
