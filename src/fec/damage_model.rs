//! Physical damage models of a Blu-ray disc, mapped through the spiral onto LBAs and judged against
//! the real FEC layout: which stripe every lost sector belongs to, which checksum-table sectors a
//! reader can no longer know (their entries then count as lost), and whether any stripe lost more
//! than m. Used by `benches/damage_sim.rs` (the table in FORMAT.md §3.5) and by a CI test.
//!
//! Geometry (BD facts): data zone radius 24 → 58 mm, track pitch 0.32 µm, constant linear velocity,
//! so sector s of a layer of N sectors sits at r = √(r0² + s·(r1² − r0²)/N) and, counted in turns
//! from the layer's start, at t = (r − r0)/pitch (even layers run inside → out, odd layers
//! outside → in: r = √(r1² − s·(r1² − r0²)/N), t = (r1 − r)/pitch). Its angle is frac(t + φ) with
//! an unknown per-layer phase φ. A drive loses whole 64 KiB clusters (32 sectors, aligned to LBA
//! multiples of 32). A surface defect hits every layer at the same radius and angle.

use super::FecLayout;
use crate::sector::CLUSTER_SECTORS;

/// Inner and outer radius of the data zone, mm.
pub const R0: f64 = 24.0;
/// Outer radius of the data zone, mm.
pub const R1: f64 = 58.0;
/// Track pitch, mm.
pub const PITCH: f64 = 0.00032;

/// A disc: layers of equal sector count.
#[derive(Clone, Copy, Debug)]
pub struct DiscGeometry {
    /// Preset name ("BD-25", …).
    pub name: &'static str,
    /// Recording layers, 1 – 4.
    pub layers: u32,
    /// Sectors per layer.
    pub layer_sectors: u64,
}

/// BD-25, BD-50, BD-100 and BD-128 (capacities of `capacity::PRESETS`, split evenly over the layers).
pub const DISCS: [DiscGeometry; 4] = [
    DiscGeometry {
        name: "BD-25",
        layers: 1,
        layer_sectors: 12_219_392,
    },
    DiscGeometry {
        name: "BD-50",
        layers: 2,
        layer_sectors: 12_219_392,
    },
    DiscGeometry {
        name: "BD-100",
        layers: 3,
        layer_sectors: 16_292_864,
    },
    DiscGeometry {
        name: "BD-128",
        layers: 4,
        layer_sectors: 15_625_216,
    },
];

impl DiscGeometry {
    /// Sectors on the disc.
    pub fn sectors(&self) -> u64 {
        u64::from(self.layers) * self.layer_sectors
    }
    /// Whole turns of the spiral on one layer.
    pub fn turns(&self) -> u64 {
        ((R1 - R0) / PITCH) as u64
    }
    /// LBA at turn position t (turns from the start of `layer`), clamped into the layer.
    fn lba_at_turn(&self, layer: u32, t: f64) -> u64 {
        let n = self.layer_sectors as f64;
        let a = R1 * R1 - R0 * R0;
        let s = if layer % 2 == 0 {
            let r = R0 + PITCH * t;
            n * (r * r - R0 * R0) / a
        } else {
            let r = R1 - PITCH * t;
            n * (R1 * R1 - r * r) / a
        };
        let s = (s.max(0.0) as u64).min(self.layer_sectors - 1);
        u64::from(layer) * self.layer_sectors + s
    }
    /// Radius (mm) of the sector at `lba`.
    pub fn radius_of(&self, lba: u64) -> f64 {
        let layer = (lba / self.layer_sectors) as u32;
        let s = (lba % self.layer_sectors) as f64 / self.layer_sectors as f64;
        let a = R1 * R1 - R0 * R0;
        if layer % 2 == 0 {
            (R0 * R0 + s * a).sqrt()
        } else {
            (R1 * R1 - s * a).sqrt()
        }
    }
    /// Turn position (from the layer's start) of radius r on `layer`.
    fn turn_of_radius(&self, layer: u32, r: f64) -> f64 {
        if layer % 2 == 0 {
            (r - R0) / PITCH
        } else {
            (R1 - r) / PITCH
        }
    }
    /// The LBA range [a, b) of `layer` between radii r_a ≤ r_b.
    fn lba_range(&self, layer: u32, ra: f64, rb: f64) -> (u64, u64) {
        let (ta, tb) = (
            self.turn_of_radius(layer, ra.max(R0)),
            self.turn_of_radius(layer, rb.min(R1)),
        );
        let (lo, hi) = (ta.min(tb), ta.max(tb));
        (self.lba_at_turn(layer, lo), self.lba_at_turn(layer, hi) + 1)
    }
}

/// A set of lost 64 KiB clusters on a disc.
#[derive(Clone, Debug)]
pub struct LostClusters {
    lost: Vec<bool>,
    count: u64,
}

impl LostClusters {
    /// No loss on a disc of `sectors` sectors.
    pub fn new(sectors: u64) -> Self {
        LostClusters {
            lost: vec![false; sectors.div_ceil(CLUSTER_SECTORS) as usize],
            count: 0,
        }
    }
    /// Marks the cluster holding `lba` lost.
    pub fn lose_lba(&mut self, lba: u64) {
        if let Some(c) = self.lost.get_mut((lba / CLUSTER_SECTORS) as usize) {
            if !*c {
                *c = true;
                self.count += 1;
            }
        }
    }
    /// Marks every cluster touching LBAs [a, b) lost.
    pub fn lose_range(&mut self, a: u64, b: u64) {
        if b <= a {
            return;
        }
        for c in a / CLUSTER_SECTORS..b.div_ceil(CLUSTER_SECTORS) {
            self.lose_lba(c * CLUSTER_SECTORS);
        }
    }
    /// Whether the sector at `lba` is lost.
    pub fn is_lost(&self, lba: u64) -> bool {
        self.lost
            .get((lba / CLUSTER_SECTORS) as usize)
            .copied()
            .unwrap_or(false)
    }
    /// Lost sectors (whole clusters).
    pub fn lost_sectors(&self) -> u64 {
        self.count * CLUSTER_SECTORS
    }
    /// Lost LBAs in ascending order, one cluster at a time.
    pub fn lost_lbas(&self) -> impl Iterator<Item = u64> + '_ {
        self.lost
            .iter()
            .enumerate()
            .filter(|(_, &l)| l)
            .flat_map(|(c, _)| c as u64 * CLUSTER_SECTORS..(c as u64 + 1) * CLUSTER_SECTORS)
    }
}

/// One damage shape; `size` is its free parameter (the simulator bisects on it).
#[derive(Clone, Copy, Debug)]
pub enum Damage {
    /// Every cluster lost independently with probability `size` (0 – 1); `seed` picks the sample.
    Random {
        /// Sample.
        seed: u64,
    },
    /// A crack from the rim inward `size` mm at angle `angle` (turns): one cluster per turn.
    Crack {
        /// Angle, 0 – 1.
        angle: f64,
    },
    /// A radial scratch `size` mm long centred at `radius`: one cluster per turn.
    Scratch {
        /// Centre radius, mm.
        radius: f64,
        /// Angle, 0 – 1.
        angle: f64,
    },
    /// A smudge: an ellipse 10·size mm radially × 15·size mm along the track, centred at
    /// (`radius`, `angle`); size = 1 is the fingerprint of the issue.
    Smudge {
        /// Centre radius, mm.
        radius: f64,
        /// Angle, 0 – 1.
        angle: f64,
    },
    /// A concentric ring `size` mm wide from `radius` outward: one burst per layer.
    Ring {
        /// Inner radius, mm.
        radius: f64,
    },
    /// Edge rot: the outer `size` mm of every layer.
    Edge,
    /// Synthetic, not physical: one cluster every a·S sectors, a = `size` rounded (≥ 1), S the
    /// layout's stride — strictly periodic loss in step with the interleave.
    Periodic,
}

/// Per-layer phases (turns): the spiral's start angle on each layer is unknown; fixed, distinct.
const PHASES: [f64; 4] = [0.0, 0.37, 0.71, 0.13];

impl Damage {
    /// The clusters this damage of `size` destroys on `disc` (`stride`: for `Periodic` only).
    pub fn apply(&self, disc: &DiscGeometry, size: f64, stride: u64) -> LostClusters {
        let mut lost = LostClusters::new(disc.sectors());
        match *self {
            Damage::Random { seed } => {
                let mut rng = crate::util::xorshift::Xorshift64::new(seed | 1);
                let clusters = disc.sectors().div_ceil(CLUSTER_SECTORS);
                let threshold = (size.clamp(0.0, 1.0) * (u64::MAX as f64)) as u64;
                for c in 0..clusters {
                    if rng.next_u64() < threshold {
                        lost.lose_lba(c * CLUSTER_SECTORS);
                    }
                }
            }
            Damage::Crack { angle } => radial(disc, &mut lost, R1 - size, R1, angle),
            Damage::Scratch { radius, angle } => radial(
                disc,
                &mut lost,
                radius - size / 2.0,
                radius + size / 2.0,
                angle,
            ),
            Damage::Smudge { radius, angle } => smudge(disc, &mut lost, radius, angle, size),
            Damage::Ring { radius } => {
                for layer in 0..disc.layers {
                    let (a, b) = disc.lba_range(layer, radius, radius + size);
                    lost.lose_range(a, b);
                }
            }
            Damage::Edge => {
                for layer in 0..disc.layers {
                    let (a, b) = disc.lba_range(layer, R1 - size, R1);
                    lost.lose_range(a, b);
                }
            }
            Damage::Periodic => {
                let period = (size.round().max(1.0) as u64) * stride.max(1);
                let mut x = 7 * CLUSTER_SECTORS;
                while x < disc.sectors() {
                    lost.lose_lba(x);
                    x += period;
                }
            }
        }
        lost
    }
}

/// One cluster per turn at `angle`, on every layer, between radii ra and rb.
fn radial(disc: &DiscGeometry, lost: &mut LostClusters, ra: f64, rb: f64, angle: f64) {
    let (ra, rb) = (ra.max(R0), rb.min(R1));
    if rb <= ra {
        return;
    }
    for layer in 0..disc.layers {
        let phase = PHASES[layer as usize % 4];
        let (ta, tb) = (
            disc.turn_of_radius(layer, ra),
            disc.turn_of_radius(layer, rb),
        );
        let (lo, hi) = (ta.min(tb), ta.max(tb));
        let off = (angle - phase).rem_euclid(1.0);
        let mut n = lo.floor();
        while n <= hi {
            let t = n + off;
            if (lo..=hi).contains(&t) {
                lost.lose_lba(disc.lba_at_turn(layer, t));
            }
            n += 1.0;
        }
    }
}

/// An ellipse of semi-axes 5·size mm (radial) and 7.5·size mm (along the track).
fn smudge(disc: &DiscGeometry, lost: &mut LostClusters, rc: f64, angle: f64, size: f64) {
    let (ar, at) = (5.0 * size, 7.5 * size);
    for layer in 0..disc.layers {
        let phase = PHASES[layer as usize % 4];
        let off = (angle - phase).rem_euclid(1.0);
        let (ta, tb) = (
            disc.turn_of_radius(layer, (rc - ar).max(R0)),
            disc.turn_of_radius(layer, (rc + ar).min(R1)),
        );
        let (lo, hi) = (ta.min(tb), ta.max(tb));
        let mut n = lo.floor();
        while n <= hi {
            let t = n + off;
            let r = if layer % 2 == 0 {
                R0 + PITCH * t
            } else {
                R1 - PITCH * t
            };
            let y = (r - rc) / ar;
            if y.abs() < 1.0 {
                let half = at * (1.0 - y * y).sqrt() / (2.0 * std::f64::consts::PI * r);
                let a = disc.lba_at_turn(layer, (t - half).max(0.0));
                let b = disc.lba_at_turn(layer, t + half);
                lost.lose_range(a.min(b), a.max(b) + 1);
            }
            n += 1.0;
        }
    }
}

/// What a loss does to a layout: per-stripe losses, including entries of table sectors a reader
/// cannot know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Largest number of lost shards in any stripe.
    pub worst_stripe: u64,
    /// m.
    pub parity_per_stripe: u64,
    /// Table sectors unknown (every copy lost / not decodable).
    pub unknown_table_sectors: u64,
    /// Lost sectors on the disc.
    pub lost_sectors: u64,
}

impl Verdict {
    /// Every stripe lost at most m shards.
    pub fn repairable(&self) -> bool {
        self.worst_stripe <= self.parity_per_stripe
    }
}

/// Judges `lost` against `layout` exactly as scan does: a protected or parity sector is lost if its
/// cluster is lost or its checksum-table entry is unknown.
pub fn judge(layout: &FecLayout, lost: &LostClusters) -> Verdict {
    let mut per_stripe = vec![0u64; layout.stripes() as usize];
    let end = layout.region_end();
    for lba in lost.lost_lbas().take_while(|&x| x < end) {
        if let Some(j) = layout.stripe_of_lba(lba) {
            per_stripe[j as usize] += 1;
        }
    }
    let unknown = layout.unknown_table_sectors(&|x| lost.is_lost(x));
    let e = layout.table_entries();
    let per = super::ENTRIES_PER_TABLE_SECTOR;
    for &i in &unknown {
        for g in i * per..((i + 1) * per).min(e) {
            let lba = layout.entry_lba(g);
            if !lost.is_lost(lba) {
                if let Some(j) = layout.stripe_of_lba(lba) {
                    per_stripe[j as usize] += 1;
                }
            }
        }
    }
    Verdict {
        worst_stripe: per_stripe.iter().copied().max().unwrap_or(0),
        parity_per_stripe: u64::from(layout.parity_per_stripe()),
        unknown_table_sectors: unknown.len() as u64,
        lost_sectors: lost.lost_sectors(),
    }
}

/// The smallest damage (percent of the disc's sectors) of shape `damage` that leaves some stripe
/// unrepairable, found by bisecting its size over [lo, hi]; None if even `hi` is repaired (then
/// the second value is the damage % at `hi`).
pub fn threshold(
    layout: &FecLayout,
    disc: &DiscGeometry,
    damage: Damage,
    (lo, hi): (f64, f64),
    steps: u32,
) -> (Option<f64>, f64) {
    let pct = |l: &LostClusters| l.lost_sectors() as f64 * 100.0 / disc.sectors() as f64;
    let at = |size: f64| {
        let lost = damage.apply(disc, size, layout.stripes());
        (judge(layout, &lost).repairable(), pct(&lost))
    };
    let (ok_hi, pct_hi) = at(hi);
    if ok_hi {
        return (None, pct_hi);
    }
    let (mut a, mut b, mut pct_b) = (lo, hi, pct_hi);
    for _ in 0..steps {
        let mid = (a + b) / 2.0;
        let (ok, p) = at(mid);
        if ok {
            a = mid;
        } else {
            b = mid;
            pct_b = p;
        }
    }
    (Some(pct_b), pct_hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest size of `damage` that destroys at least `pct` % of the disc (bisection on
    /// the size alone; no judging).
    fn size_for(disc: &DiscGeometry, damage: Damage, pct: f64, hi: f64, stride: u64) -> f64 {
        let (mut a, mut b) = (0.0, hi);
        for _ in 0..30 {
            let mid = (a + b) / 2.0;
            let lost = damage.apply(disc, mid, stride).lost_sectors() as f64;
            if lost * 100.0 / disc.sectors() as f64 >= pct {
                b = mid;
            } else {
                a = mid;
            }
        }
        b
    }

    /// CI's small version of `benches/damage_sim.rs`: on a full BD-25 at `-r 10`, each damage
    /// shape at 10 % of the disc — placed where it hurts most (over the FEC region) — repairs.
    #[test]
    fn every_model_at_r_percent_repairs_on_bd25() {
        let disc = DISCS[0];
        let d = super::super::max_protected_for_loss(disc.sectors() - 2, 10);
        let l = super::super::plan_for_loss(d, 10).unwrap();
        let region = disc.radius_of(d);
        let models = [
            (Damage::Random { seed: 7 }, 1.0),
            (Damage::Crack { angle: 0.3 }, R1 - R0),
            (
                Damage::Scratch {
                    radius: region,
                    angle: 0.6,
                },
                2.0 * (R1 - R0),
            ),
            (
                Damage::Smudge {
                    radius: region + 1.0,
                    angle: 0.1,
                },
                8.0,
            ),
            (
                Damage::Ring {
                    radius: region - 0.5,
                },
                R1 - R0,
            ),
            (Damage::Edge, R1 - R0),
        ];
        for (damage, hi) in models {
            let size = size_for(&disc, damage, 10.0, hi, l.stripes());
            let lost = damage.apply(&disc, size, l.stripes());
            assert!(lost.lost_sectors() * 10 >= disc.sectors());
            let v = judge(&l, &lost);
            assert!(v.repairable(), "{damage:?} at 10 %: {v:?}");
        }
        // Loss in step with the stride (today's layout lost a stripe at 0.5 %) spreads evenly.
        let lost = Damage::Periodic.apply(&disc, 1.0, l.stripes());
        let v = judge(&l, &lost);
        assert!(v.worst_stripe * 2 < v.parity_per_stripe, "{v:?}");
    }

    #[test]
    fn spiral_geometry() {
        let disc = DISCS[0];
        assert!((disc.radius_of(0) - R0).abs() < 1e-6);
        assert!((disc.radius_of(disc.sectors() - 1) - R1).abs() < 1e-3);
        // ≈ 67 sectors per turn at the hub, ≈ 163 at the rim (the figures).
        let per_turn = |t: f64| disc.lba_at_turn(0, t + 1.0) - disc.lba_at_turn(0, t);
        assert!((65..=69).contains(&per_turn(10.0)), "{}", per_turn(10.0));
        let last = disc.turns() as f64 - 2.0;
        assert!((160..=166).contains(&per_turn(last)), "{}", per_turn(last));
        // Layer 1 of a BD-50 runs outside → in: its first LBA is at the rim.
        let bd50 = DISCS[1];
        assert!(bd50.radius_of(bd50.layer_sectors) > R1 - 0.01);
        // A ring loses the same radii on every layer.
        let ring = Damage::Ring { radius: 40.0 }.apply(&bd50, 1.0, 1);
        let (a0, b0) = bd50.lba_range(0, 40.0, 41.0);
        let (a1, b1) = bd50.lba_range(1, 40.0, 41.0);
        assert!(ring.is_lost(a0 + 64) && ring.is_lost(b0 - 64));
        assert!(ring.is_lost(a1 + 64) && ring.is_lost(b1 - 64));
        assert!(!ring.is_lost(a0 - 64) && !ring.is_lost(b1 + 64));
    }
}
