//! Damage simulator: the physical damage models of `fec::damage_model` (random cluster loss, crack
//! from the rim, radial scratch, smudge, concentric ring, edge rot, and a synthetic strictly
//! periodic loss) at BD-25/50/100/128 geometry, against the FEC layout `create -r R` writes on a
//! full disc. Prints, per disc and model, the smallest damage (% of the disc's sectors) that leaves
//! some stripe unrepairable — bisection on the damage size, the worst over a few positions — and
//! the computed failure probability of random cluster loss at R %.
//!
//! `cargo bench --bench damage_sim` (about a minute per disc size). Environment:
//! `DAMAGE_R` (default 10), `DAMAGE_DISCS` (e.g. `BD-25,BD-50`; default all four),
//! `DAMAGE_STEPS` (bisection steps, default 12), `DAMAGE_SAMPLES` (positions per model, default 4).
//!
//! Validation against `verify`: `DAMAGE_IMAGE=disc.iso BD_ARCHIVE=target/release/bd-archive cargo
//! bench --bench damage_sim` takes a real image as the inner part of a BD-25 (its LBAs at BD-25
//! density), applies a set of damage shapes to copies of it (lost clusters overwritten with
//! garbage), and prints the worst stripe the model predicts next to the one `verify --json` reports.

use bd_archive::archive::disc_writer::TRAILER_SECTORS;
use bd_archive::fec::damage_model::{judge, threshold, Damage, DiscGeometry, DISCS, R0, R1};
use bd_archive::fec::{self, FecLayout};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The layout `create -r r` writes on a full disc.
fn full_disc_layout(disc: &DiscGeometry, r: u32) -> FecLayout {
    let d = fec::max_protected_for_loss(disc.sectors() - TRAILER_SECTORS, r);
    fec::plan_for_loss(d, r).expect("plan")
}

fn main() {
    if let Ok(image) = std::env::var("DAMAGE_IMAGE") {
        return validate(std::path::Path::new(&image));
    }
    let r: u32 = env("DAMAGE_R", 10);
    let steps: u32 = env("DAMAGE_STEPS", 12);
    let samples: usize = env("DAMAGE_SAMPLES", 4);
    let only: String = env("DAMAGE_DISCS", String::new());
    println!("damage simulator, -r {r}: smallest damage (% of disc sectors) that breaks a stripe");
    println!(
        "(worst of {samples} positions; '> x' = still repaired at the largest damage tried, x %)\n"
    );
    println!("| disc | S, k, m | parity % | random | crack | scratch | smudge | ring | edge | periodic | P(fail) random {r} % |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for disc in DISCS
        .iter()
        .filter(|d| only.is_empty() || only.split(',').any(|x| x == d.name))
    {
        let l = full_disc_layout(disc, r);
        let region = disc.radius_of(l.protected_sectors());
        let spread = |i: usize, n: usize| (i as f64 + 0.5) / n as f64;
        let mut cells = Vec::new();
        let worst = |models: Vec<Damage>, range: (f64, f64)| -> String {
            let mut best: Option<f64> = None;
            let mut held = 100.0f64;
            for m in models {
                match threshold(&l, disc, m, range, steps) {
                    (Some(p), _) => best = Some(best.map_or(p, |b: f64| b.min(p))),
                    (None, p) => held = held.min(p),
                }
            }
            match best {
                Some(p) => format!("{p:.2}"),
                None => format!("> {held:.1}"),
            }
        };
        let radii = |n: usize| -> Vec<f64> {
            let mut v: Vec<f64> = (0..n).map(|i| R0 + (R1 - R0) * spread(i, n)).collect();
            v.push(region);
            v
        };
        cells.push(worst(
            (0..samples as u64)
                .map(|seed| Damage::Random { seed: seed + 1 })
                .collect(),
            (0.0, 0.3),
        ));
        cells.push(worst(
            (0..samples)
                .map(|i| Damage::Crack {
                    angle: spread(i, samples),
                })
                .collect(),
            (0.0, R1 - R0),
        ));
        cells.push(worst(
            radii(samples)
                .into_iter()
                .enumerate()
                .map(|(i, radius)| Damage::Scratch {
                    radius,
                    angle: spread(i, samples),
                })
                .collect(),
            (0.0, 2.0 * (R1 - R0)),
        ));
        cells.push(worst(
            radii(samples)
                .into_iter()
                .enumerate()
                .map(|(i, radius)| Damage::Smudge {
                    radius,
                    angle: spread(i, samples),
                })
                .collect(),
            (0.0, 8.0),
        ));
        cells.push(worst(
            radii(samples)
                .into_iter()
                .map(|radius| Damage::Ring {
                    radius: radius - 1.0,
                })
                .collect(),
            (0.0, R1 - R0),
        ));
        cells.push(worst(vec![Damage::Edge], (0.0, R1 - R0)));
        // Periodic: damage falls as the period grows, so try a few multiples of the stride.
        let mut periodic: Option<f64> = None;
        let mut periodic_max = 0.0f64;
        for a in [1.0, 2.0, 3.0, 5.0, 8.0] {
            let lost = Damage::Periodic.apply(disc, a, l.stripes());
            let pct = lost.lost_sectors() as f64 * 100.0 / disc.sectors() as f64;
            periodic_max = periodic_max.max(pct);
            if !judge(&l, &lost).repairable() {
                periodic = Some(periodic.map_or(pct, |p: f64| p.min(pct)));
            }
        }
        cells.push(match periodic {
            Some(p) => format!("{p:.2}"),
            None => format!("> {periodic_max:.1}"),
        });
        let p = fec::random_loss_failure_probability(&l, f64::from(r) / 100.0);
        println!(
            "| {} | {}, {}, {} | {:.1} | {} | {:.1e} |",
            disc.name,
            l.stripes(),
            l.data_per_stripe(),
            l.parity_per_stripe(),
            l.region_sectors() as f64 * 100.0 / disc.sectors() as f64,
            cells.join(" | "),
            p
        );
    }
}

/// Damage shapes at the given sizes applied to a real image: the model's worst stripe next to
/// `verify --json`'s.
fn validate(image: &std::path::Path) {
    use bd_archive::fec::damage_model::LostClusters;
    use bd_archive::sector::FileSectorSource;
    use std::os::unix::fs::FileExt;
    let bin = std::env::var("BD_ARCHIVE").unwrap_or_else(|_| "target/release/bd-archive".into());
    let src = FileSectorSource::open(image).expect("open image");
    let l = fec::locate(&src, None).expect("locate FEC").layout;
    let n = std::fs::metadata(image).expect("stat").len() / 2048;
    let disc = DISCS[0];
    let region = disc.radius_of(l.protected_sectors());
    let cases: Vec<(String, Damage, f64)> = vec![
        ("random 3 %".into(), Damage::Random { seed: 1 }, 0.03),
        ("random 9 %".into(), Damage::Random { seed: 2 }, 0.09),
        ("random 11 %".into(), Damage::Random { seed: 3 }, 0.11),
        ("random 14 %".into(), Damage::Random { seed: 4 }, 0.14),
        ("periodic 8·S".into(), Damage::Periodic, 8.0),
        ("periodic 20·S".into(), Damage::Periodic, 20.0),
        (
            "smudge ×0.1 on the region".into(),
            Damage::Smudge {
                radius: region,
                angle: 0.3,
            },
            0.1,
        ),
        (
            "smudge ×0.15".into(),
            Damage::Smudge {
                radius: 25.0,
                angle: 0.7,
            },
            0.15,
        ),
        (
            "ring 0.1 mm at the region".into(),
            Damage::Ring {
                radius: region - 0.05,
            },
            0.1,
        ),
        (
            "edge of the image 0.2 mm".into(),
            Damage::Ring {
                radius: disc.radius_of(n) - 0.2,
            },
            0.2,
        ),
    ];
    println!(
        "image {} ({n} sectors): S = {}, k = {}, m = {}",
        image.display(),
        l.stripes(),
        l.data_per_stripe(),
        l.parity_per_stripe()
    );
    println!(
        "| damage | lost % of image | model: worst stripe | verify: worst stripe | verify exit |"
    );
    println!("|---|---|---|---|---|");
    let copy = image.with_extension("damaged.iso");
    for (name, damage, size) in cases {
        let all = damage.apply(&disc, size, l.stripes());
        let mut lost = LostClusters::new(n);
        for lba in all.lost_lbas().take_while(|&x| x < n).step_by(32) {
            lost.lose_lba(lba);
        }
        let v = judge(&l, &lost);
        std::fs::copy(image, &copy).expect("copy image");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .expect("open copy");
        let garbage = vec![0xA5u8; 32 * 2048];
        for lba in lost.lost_lbas().step_by(32) {
            let len = (n - lba).min(32) as usize * 2048;
            f.write_all_at(&garbage[..len], lba * 2048).expect("damage");
        }
        drop(f);
        let out = std::process::Command::new(&bin)
            .args(["verify", "--json"])
            .arg(&copy)
            .output()
            .expect("run verify");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let worst = json[0]["worst_stripe_loss"]
            .as_u64()
            .map_or("?".into(), |w| w.to_string());
        println!(
            "| {name} | {:.2} | {} | {worst} | {} |",
            lost.lost_sectors() as f64 * 100.0 / n as f64,
            v.worst_stripe,
            out.status.code().unwrap_or(-1)
        );
    }
    let _ = std::fs::remove_file(&copy);
}
