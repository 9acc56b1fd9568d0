//! End-to-end FEC tests: encode a synthetic image, damage it the ways discs get damaged, and check that
//! scan sees exactly the damage and repair restores the image byte for byte.

use crate::common::rng::Rng;
use bd_archive::fec::{self, FecLayout, LocatedFec};
use bd_archive::sector::{MemorySectorSource, SectorSource, SECTOR_SIZE};
use std::io::Write;
use std::sync::OnceLock;

const SS: usize = SECTOR_SIZE;
const GIB: u64 = 1 << 30;
/// Unprotected trailer after the region (disc-header copy + UDF anchor in the real image).
const TRAILER: u64 = 2;

/// Builds an image: D random sectors, then the FEC region, then the trailer; returns its bytes.
fn build(layout: &FecLayout, seed: u64, budget: u64) -> Vec<u8> {
    let d = layout.protected_sectors();
    let mut rng = Rng(seed);
    let mut f = tempfile::tempfile().unwrap();
    let mut data = vec![0u8; d as usize * SS];
    for c in data.chunks_exact_mut(8) {
        c.copy_from_slice(&rng.next().to_le_bytes());
    }
    // A few all-zero protected sectors, as real filesystems have.
    if d > 5 {
        data[5 * SS..6 * SS].fill(0);
    }
    f.write_all(&data).unwrap();
    let total = layout.region_end() + TRAILER;
    f.set_len(total * SS as u64).unwrap();
    fec::encode(&f, layout, budget, &|_| {}).unwrap();
    let mut out = vec![0u8; total as usize * SS];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut out, 0).unwrap();
    assert_eq!(
        &out[..data.len()],
        &data[..],
        "encode must not touch the protected area"
    );
    out
}

/// `create -r 10` geometry, D = 15 001 (not a multiple of S = 32): k = 469, m = 99.
fn default_image() -> &'static (FecLayout, Vec<u8>) {
    static IMG: OnceLock<(FecLayout, Vec<u8>)> = OnceLock::new();
    IMG.get_or_init(|| {
        let l = fec::plan_for_loss(15_001, fec::DEFAULT_REDUNDANCY_PCT).unwrap();
        let img = build(&l, 1, GIB);
        (l, img)
    })
}

/// Small stripes (k = 100, m = 12, S = 50) so per-stripe budgets can be exceeded on purpose.
fn small_image() -> &'static (FecLayout, Vec<u8>) {
    static IMG: OnceLock<(FecLayout, Vec<u8>)> = OnceLock::new();
    IMG.get_or_init(|| {
        let l = FecLayout::from_geometry(4_990, 50, 12).unwrap();
        let img = build(&l, 2, GIB);
        (l, img)
    })
}

fn zero(img: &mut [u8], lba: u64) {
    img[lba as usize * SS..(lba as usize + 1) * SS].fill(0);
}

/// Scans, repairs through all three paths, and checks each result byte-exact against `clean`.
fn check_repairs(layout: &FecLayout, clean: &[u8], damaged: Vec<u8>) -> fec::FecScan {
    let src = MemorySectorSource { data: damaged };
    let found = fec::locate(&src, None).expect("locate");
    assert_eq!(&found.layout, layout);
    let scan = fec::scan(&src, &found, &|_| {}).unwrap();
    assert!(!scan.is_clean());
    assert!(
        scan.is_repairable(),
        "max loss {} > m {}",
        scan.max_stripe_loss(),
        scan.parity_per_stripe()
    );
    let d = layout.protected_sectors() as usize;

    // 1. repair() into a sink.
    let mut fixed = src.data.clone();
    fixed.resize(clean.len().max(fixed.len()), 0);
    let rep = fec::repair(&src, &found, &scan, GIB, &mut |lba, sec| {
        fixed[lba as usize * SS..][..SS].copy_from_slice(sec);
        Ok(())
    })
    .unwrap();
    assert!(rep.is_complete(), "{rep:?}");
    assert_eq!(rep.repaired_protected, scan.lost_data_sectors());
    assert!(
        fixed[..d * SS] == clean[..d * SS],
        "repair() result differs"
    );

    // 2. RepairedSource, in RAM and spilled.
    let dir = tempfile::tempdir().unwrap();
    for spill in [None, Some(dir.path())] {
        // 2 MiB forces the spill file for the small geometry; too small for big stripes (skipped).
        let budget = if spill.is_some() { 2 << 20 } else { GIB };
        let rs = match fec::RepairedSource::new(&src, &found, &scan, budget, spill) {
            Err(fec::FecError::Memory { .. }) if spill.is_some() => continue,
            r => r.unwrap(),
        };
        let mut buf = vec![0u8; d * SS];
        rs.read_sectors(0, &mut buf).unwrap();
        assert!(
            buf == clean[..d * SS],
            "RepairedSource differs (spill {spill:?})"
        );
    }

    // 3. A complete fixed image, which must scan clean and equal the original through the region.
    let out = dir.path().join("fixed.iso");
    let rep = fec::write_repaired_image(&src, &found, &scan, &out, GIB).unwrap();
    assert!(rep.is_complete());
    let fixed = std::fs::read(&out).unwrap();
    let end = layout.region_end() as usize * SS;
    assert!(fixed[..end] == clean[..end], "write_repaired_image differs");
    let fsrc = MemorySectorSource { data: fixed };
    let again = fec::scan(&fsrc, &found, &|_| {}).unwrap();
    assert!(again.is_clean());
    scan
}

#[test]
fn clean_image_scans_clean_and_locates() {
    let (l, img) = default_image();
    assert_eq!(
        (l.data_per_stripe(), l.parity_per_stripe(), l.stripes()),
        (469, 99, 32)
    );
    let src = MemorySectorSource { data: img.clone() };
    let hinted = fec::locate(&src, Some(l.protected_sectors())).unwrap();
    let scanned = fec::locate(&src, None).unwrap();
    assert_eq!(hinted, scanned);
    assert_eq!(hinted.region_lba, l.protected_sectors());
    let scan = fec::scan(&src, &hinted, &|_| {}).unwrap();
    assert!(scan.is_clean() && scan.is_repairable());
    assert_eq!(scan.worst_margin(), 99);
}

#[test]
fn random_scatter_1_5_9_pct() {
    let (l, clean) = default_image();
    let d = l.protected_sectors();
    let end = l.region_end();
    for (pct, seed) in [(1u64, 11u64), (5, 12)] {
        let mut img = clean.clone();
        let hit = Rng(seed).sample(0, end, end * pct / 100);
        for &x in &hit {
            zero(&mut img, x);
        }
        let scan = check_repairs(l, clean, img);
        // Every zeroed protected sector (except the all-zero one) must be reported.
        let expect: Vec<u64> = hit.iter().copied().filter(|&x| x < d && x != 5).collect();
        assert_eq!(scan.bad_protected_lbas().to_vec(), expect, "{pct} %");
    }
    // 9 % of the protected sectors (9 % of the whole image would exceed the 751/8252 = 9.1 % budget
    // in some stripe by chance: MDS guarantees ≤ m per stripe, not a binomial tail).
    let mut img = clean.clone();
    for &x in &Rng(13).sample(0, d, d * 9 / 100) {
        zero(&mut img, x);
    }
    check_repairs(l, clean, img);
}

#[test]
fn one_burst_of_9_pct() {
    let (l, clean) = default_image();
    let total = clean.len() as u64 / SS as u64;
    let len = total * 9 / 100;
    let mut img = clean.clone();
    for x in 3000..3000 + len {
        zero(&mut img, x);
    }
    check_repairs(l, clean, img);
}

#[test]
fn truncated_last_9_pct() {
    let (l, clean) = default_image();
    let total = clean.len() / SS;
    let mut img = clean.clone();
    img.truncate((total - total * 9 / 100) * SS);
    let scan = check_repairs(l, clean, img);
    assert!(scan.lost_parity_sectors() > 1000);
}

#[test]
fn truncated_into_protected_area() {
    let (l, clean) = default_image();
    let mut img = clean.clone();
    img.truncate((l.protected_sectors() as usize - 300) * SS);
    // Only table copy A survives... no: it is after D, so nothing of the region survives.
    let src = MemorySectorSource { data: img };
    assert!(matches!(
        fec::locate(&src, None),
        Err(fec::FecError::NotFound(_))
    ));
    // With the layout known from our disc header, the loss is still counted correctly (all unknown).
    let found = LocatedFec {
        layout: l.clone(),
        region_lba: l.protected_sectors(),
    };
    let scan = fec::scan(&src, &found, &|_| {}).unwrap();
    assert!(!scan.is_repairable());
}

/// A source as long as `data` whose sectors from `cut` on cannot be read: every missing sector
/// is read (and fails) one by one, the way scan saw a cut-short image before issue #16.
struct CutAt<'a> {
    data: &'a [u8],
    cut: u64,
}

impl SectorSource for CutAt<'_> {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SS) as u64
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let n = (buf.len() / SS) as u64;
        if lba + n > self.cut {
            return Err(std::io::Error::other("unreadable sector"));
        }
        buf.copy_from_slice(&self.data[lba as usize * SS..(lba + n) as usize * SS]);
        Ok(())
    }
    fn describe(&self) -> String {
        "cut".into()
    }
}

/// Issue #16: the sectors a geometry places past the end of the source are counted in bulk,
/// never read; the result must be exactly what reading each of them (and failing) gives, for a
/// cut in every part of the region.
#[test]
fn a_cut_short_image_scans_like_one_whose_tail_is_unreadable() {
    let l = FecLayout::from_geometry(3000, 96, 20).unwrap();
    let clean = build(&l, 9, GIB);
    let d = l.protected_sectors();
    let [par0, par1] = l.parity_offsets();
    let [tpar0, tpar1] = l.table_parity_offsets();
    let h = l.header_offsets();
    let found = LocatedFec {
        layout: l.clone(),
        region_lba: d,
    };
    let offsets = [
        1,
        l.table_offset() + 3,
        par0,
        par0 + 5 * 96 + 17,
        h[1],
        tpar0 + 1,
        par1 + 96,
        h[2] + 1,
        tpar1 + 2,
        l.region_sectors() - 1,
    ];
    for off in offsets {
        let cut = d + off;
        let bulk = MemorySectorSource {
            data: clean[..cut as usize * SS].to_vec(),
        };
        let a = fec::scan(&bulk, &found, &|_| {}).unwrap();
        let b = fec::scan(&CutAt { data: &clean, cut }, &found, &|_| {}).unwrap();
        assert_eq!(a.missing_sectors(), l.region_end() - cut, "cut at +{off}");
        assert_eq!(b.missing_sectors(), 0);
        assert_eq!(
            a.bad_protected_lbas(),
            b.bad_protected_lbas(),
            "cut at +{off}"
        );
        assert_eq!(
            a.bad_parity_positions(),
            b.bad_parity_positions(),
            "cut at +{off}"
        );
        assert_eq!(a.stripe_losses(), b.stripe_losses(), "cut at +{off}");
        assert_eq!(
            a.bad_metadata_sectors(),
            b.bad_metadata_sectors(),
            "cut at +{off}"
        );
        assert_eq!(a.is_repairable(), b.is_repairable(), "cut at +{off}");
        assert_eq!(
            a.lost_lbas_in_unrepairable_stripes(),
            b.lost_lbas_in_unrepairable_stripes()
                .into_iter()
                .filter(|&x| x < cut)
                .collect(),
            "cut at +{off}"
        );
    }
}

#[test]
fn first_mib_zeroed() {
    let (l, clean) = default_image();
    let mut img = clean.clone();
    img[..1 << 20].fill(0);
    let scan = check_repairs(l, clean, img);
    assert_eq!(scan.lost_data_sectors(), 511); // sector 5 was zero already
}

#[test]
fn bit_flips_in_0_1_pct() {
    let (l, clean) = default_image();
    let end = l.region_end();
    let mut img = clean.clone();
    let mut rng = Rng(21);
    let hit = rng.sample(
        0,
        l.parity_row_lba(u64::from(l.parity_per_stripe()) - 1) + l.stripes(),
        end / 1000,
    );
    for &x in &hit {
        let bit = rng.below(SS as u64 * 8);
        img[x as usize * SS + bit as usize / 8] ^= 1 << (bit % 8);
    }
    check_repairs(l, clean, img);
}

#[test]
fn damaged_parity_and_whole_table() {
    let (l, clean) = default_image();
    let d = l.protected_sectors();
    let mut img = clean.clone();
    let p0 = l.parity_row_lba(0);
    for x in p0 + 100..p0 + 100 + l.parity_sectors() * 3 / 10 {
        zero(&mut img, x);
    }
    for x in d..d + 1 + l.table_sectors() {
        zero(&mut img, x); // first header copy + the whole table: rebuilt from the table parity
    }
    for &x in &Rng(31).sample(0, d, d * 3 / 100) {
        zero(&mut img, x);
    }
    let scan = check_repairs(l, clean, img);
    assert_eq!(scan.unknown_sectors(), 0);
    assert!(scan.bad_metadata_sectors() > l.table_sectors());
}

#[test]
fn table_sector_beyond_its_code_means_erasures() {
    let (l, clean) = default_image();
    let mut img = clean.clone();
    // Table sector 3 covers protected LBAs 1437..1916: lose it and all of its table stripe's
    // parity, so nothing can rebuild it.
    let (kt, st) = (l.table_k(), l.table_stripes());
    let jt = 3 % st;
    zero(&mut img, l.table_shard_lba(3 / st, jt));
    for r in kt..3 * kt {
        zero(&mut img, l.table_shard_lba(r, jt));
    }
    zero(&mut img, 1500); // and one of the sectors it covers really is damaged
    let scan = check_repairs(l, clean, img);
    assert_eq!(scan.unknown_sectors(), fec::ENTRIES_PER_TABLE_SECTOR);
    assert_eq!(scan.lost_data_sectors(), fec::ENTRIES_PER_TABLE_SECTOR);
}

#[test]
fn table_rebuilt_from_one_third_of_its_code() {
    let (l, clean) = default_image();
    let mut img = clean.clone();
    // Lose the table sectors and the first half of the table parity: the second half (at the
    // end of the region) alone rebuilds the table, so no entry is unknown.
    let (kt, st) = (l.table_k(), l.table_stripes());
    for jt in 0..st {
        for r in 0..2 * kt {
            zero(&mut img, l.table_shard_lba(r, jt));
        }
    }
    for &x in &Rng(37).sample(0, l.protected_sectors(), 50) {
        zero(&mut img, x);
    }
    let scan = check_repairs(l, clean, img);
    assert_eq!(scan.unknown_sectors(), 0);
    assert_eq!(scan.lost_data_sectors(), 50);
}

#[test]
fn region_found_with_most_metadata_gone() {
    let (l, clean) = default_image();
    let d = l.protected_sectors();
    let mut img = clean.clone();
    // Everything but the last header copy is gone; a hint pointing at garbage is ignored.
    for x in d..d + l.region_sectors() - 1 {
        zero(&mut img, x);
    }
    let src = MemorySectorSource { data: img };
    let found = fec::locate(&src, Some(d)).unwrap();
    assert_eq!(found.layout, *l);
    let src = MemorySectorSource {
        data: clean[..d as usize * SS].to_vec(),
    };
    assert!(fec::locate(&src, Some(d)).is_err());
}

#[test]
fn over_budget_reports_and_repairs_the_rest() {
    let (l, clean) = small_image();
    let d = l.protected_sectors();
    let s = l.stripes();
    let m = u64::from(l.parity_per_stripe());
    let mut img = clean.clone();
    // Stripe 7 loses m + 1 data sectors; every other stripe loses 3.
    for r in 0..=m {
        zero(&mut img, l.data_lba(r, 7));
    }
    for j in (0..s).filter(|&j| j != 7) {
        for r in [10, 40, 90] {
            if l.data_lba(r, j) < d {
                zero(&mut img, l.data_lba(r, j));
            }
        }
    }
    let src = MemorySectorSource { data: img };
    let found = fec::locate(&src, None).unwrap();
    let scan = fec::scan(&src, &found, &|_| {}).unwrap();
    assert!(!scan.is_repairable());
    assert_eq!(scan.unrepairable_stripes(), vec![7]);
    assert_eq!(scan.worst_margin(), -1);
    let mut fixed = src.data.clone();
    let rep = fec::repair(&src, &found, &scan, GIB, &mut |lba, sec| {
        fixed[lba as usize * SS..][..SS].copy_from_slice(sec);
        Ok(())
    })
    .unwrap();
    assert_eq!(rep.failed_stripes, vec![7]);
    let mut lost7: Vec<u64> = (0..=m).map(|r| l.data_lba(r, 7)).collect();
    lost7.sort_unstable();
    assert_eq!(rep.unrepaired_lbas.to_vec(), lost7);
    for x in 0..d {
        let same = fixed[x as usize * SS..][..SS] == clean[x as usize * SS..][..SS];
        assert_eq!(same, lost7.binary_search(&x).is_err(), "LBA {x}");
    }
    // The repaired view refuses the unrecoverable sectors instead of returning garbage.
    let rs = fec::RepairedSource::new(&src, &found, &scan, GIB, None).unwrap();
    let mut sec = vec![0u8; SS];
    assert!(rs.read_sectors(lost7[0], &mut sec).is_err());
    let fine = l.data_lba(10, 8);
    rs.read_sectors(fine, &mut sec).unwrap();
    assert!(sec[..] == clean[fine as usize * SS..][..SS]);

    // 30 % random over the default geometry: over budget everywhere, nothing is claimed repaired.
    let (l, clean) = default_image();
    let mut img = clean.clone();
    for &x in &Rng(41).sample(0, l.protected_sectors(), l.protected_sectors() * 30 / 100) {
        zero(&mut img, x);
    }
    let src = MemorySectorSource { data: img };
    let scan = fec::scan(&src, &fec::locate(&src, None).unwrap(), &|_| {}).unwrap();
    assert!(!scan.is_repairable());
    assert_eq!(scan.unrepairable_stripes().len() as u64, l.stripes());
}

#[test]
fn small_stripes_scatter_and_many_passes() {
    let (l, clean) = small_image();
    // Encoding with a budget that allows only a few stripes per pass gives identical bytes.
    let tight = build(l, 2, 4 << 20);
    assert!(
        tight == *clean,
        "multi-pass encode differs from single pass"
    );
    let mut img = clean.clone();
    for x in (0..l.protected_sectors()).step_by(17) {
        zero(&mut img, x);
    }
    check_repairs(l, clean, img);
}

#[test]
fn tiny_image_one_sector() {
    let l = fec::plan(1, 10).unwrap();
    let clean = build(&l, 3, 64 << 20);
    let mut img = clean.clone();
    zero(&mut img, 0);
    check_repairs(&l, &clean, img);
}

/// A source whose lost clusters are unreadable, as on a damaged disc.
struct Unreadable<'a> {
    data: &'a [u8],
    lost: &'a fec::damage_model::LostClusters,
}

impl SectorSource for Unreadable<'_> {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SS) as u64
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let n = (buf.len() / SS) as u64;
        if lba + n > self.sector_count() || (lba..lba + n).any(|x| self.lost.is_lost(x)) {
            return Err(std::io::Error::other("unreadable sector"));
        }
        buf.copy_from_slice(&self.data[lba as usize * SS..(lba + n) as usize * SS]);
        Ok(())
    }
    fn describe(&self) -> String {
        "damaged test image".into()
    }
}

/// The damage model's verdict (what `benches/damage_sim.rs` tabulates) is what scan finds on a
/// real image with the same clusters unreadable: the same worst stripe, the same unknown table.
#[test]
fn damage_model_agrees_with_scan() {
    use fec::damage_model::{judge, Damage, DiscGeometry, LostClusters};
    let l = fec::plan_for_loss(60_000, 10).unwrap();
    let clean = build(&l, 5, GIB);
    let disc = DiscGeometry {
        name: "test",
        layers: 1,
        layer_sectors: (clean.len() / SS) as u64,
    };
    let region = disc.radius_of(l.protected_sectors());
    let mut cases: Vec<LostClusters> = vec![
        // A tiny "disc" has < 1 sector per turn: radial shapes become bands, kept narrow here.
        Damage::Crack { angle: 0.2 }.apply(&disc, 0.5, l.stripes()),
        Damage::Smudge {
            radius: region,
            angle: 0.5,
        }
        .apply(&disc, 0.1, l.stripes()),
        Damage::Ring { radius: 30.0 }.apply(&disc, 1.0, l.stripes()),
        Damage::Random { seed: 3 }.apply(&disc, 0.12, l.stripes()),
        Damage::Periodic.apply(&disc, 8.0, l.stripes()), // every 8·S = 256 sectors
    ];
    // The table and two thirds of its code: entries unknown, counted as lost.
    let mut table = LostClusters::new(disc.sectors());
    let (kt, st) = (l.table_k(), l.table_stripes());
    for r in 0..2 * kt {
        table.lose_lba(l.table_shard_lba(r, 0));
    }
    table.lose_lba(l.table_shard_lba(2 * kt + 1, st - 1));
    cases.push(table);
    for (i, lost) in cases.iter().enumerate() {
        let src = Unreadable { data: &clean, lost };
        let found = fec::locate(&src, None)
            .unwrap_or_else(|e| panic!("case {i}: {e} ({} lost)", lost.lost_sectors()));
        let scan = fec::scan(&src, &found, &|_| {}).unwrap();
        let v = judge(&l, lost);
        assert_eq!(
            u64::from(scan.max_stripe_loss()),
            v.worst_stripe,
            "case {i}: {v:?}"
        );
        assert_eq!(scan.is_repairable(), v.repairable(), "case {i}");
        let unknown_expected = v.unknown_table_sectors > 0;
        assert_eq!(scan.unknown_sectors() > 0, unknown_expected, "case {i}");
    }
}
