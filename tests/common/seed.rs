//! Discs as the Python bd-archive (the seed) made them, built by the real Debian tools: one dar
//! generation, sliced, with sha512 sidecars and an isolated catalogue, laid out one folder per
//! slice as the seed's discs were.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::sh;

/// Makes dar generation `g` of chain `name` from `src` into `work/tmp<g>` (`-A` the previous
/// generation's catalogue), then one disc folder per slice: `work/discs/g<g>-d<i>/<name>-gen<g>/`
/// (legacy naming: `<name>.NNNN.dar` straight in the disc folder). With `par2`, each slice gets
/// its `.par2` index and one recovery volume (`par2 create -r5 -n1`), as the seed wrote them.
/// Returns the disc folders.
pub fn seed_generation(
    work: &Path,
    src: &Path,
    name: &str,
    g: u32,
    legacy: bool,
    par2: bool,
) -> Vec<PathBuf> {
    let base = if legacy {
        name.to_string()
    } else {
        format!("{name}-gen{g}")
    };
    let tmpd = work.join(format!("tmp{g}"));
    fs::create_dir_all(&tmpd).unwrap();
    let b = tmpd.join(&base);
    let mut c = Command::new("dar");
    c.args(["-c"]).arg(&b).arg("-R").arg(src);
    c.args([
        "-s",
        "100000",
        "--hash",
        "sha512",
        "--min-digits",
        "4",
        "-Q",
        "-zzstd",
        "-am",
    ]);
    if g > 1 {
        c.arg("-A").arg(
            work.join(format!("tmp{}", g - 1))
                .join(format!("{name}-gen{}-catalog", g - 1)),
        );
    }
    sh(&mut c);
    sh(Command::new("dar")
        .arg("-C")
        .arg(tmpd.join(format!("{base}-catalog")))
        .arg("-A")
        .arg(&b)
        .args(["--hash", "sha512", "--min-digits", "4", "-Q"]));
    let mut slices: Vec<String> = fs::read_dir(&tmpd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dar") && !n.contains("-catalog"))
        .collect();
    slices.sort();
    let mut discs = Vec::new();
    for (i, s) in slices.iter().enumerate() {
        if par2 {
            sh(Command::new("par2").current_dir(&tmpd).args([
                "create",
                "-q",
                "-r5",
                "-n1",
                &format!("{s}.par2"),
                s,
            ]));
        }
        let disc = work.join("discs").join(format!("g{g}-d{}", i + 1));
        let folder = if legacy {
            disc.clone()
        } else {
            disc.join(&base)
        };
        fs::create_dir_all(&folder).unwrap();
        for e in fs::read_dir(&tmpd).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            let catalog = i == 0 && n.starts_with(&format!("{base}-catalog."));
            if n.starts_with(s.as_str()) || catalog {
                fs::copy(tmpd.join(&n), folder.join(&n)).unwrap();
            }
        }
        discs.push(disc);
    }
    discs
}
