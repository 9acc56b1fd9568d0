//! `SectorRanges`: a set of sector numbers (LBAs, or FEC parity positions) kept as sorted
//! half-open ranges. Lost and unrepaired sectors are held this way everywhere (FEC scan, repair
//! report, verify's damage description), so a burst of lost sectors — a cut-off tail, or a
//! forged FEC geometry naming billions of sectors that are not in the file — costs 16 bytes,
//! not 8 bytes per sector (issue #16).

/// A set of sector numbers as sorted, disjoint, non-adjacent half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectorRanges {
    /// Ranges `(start, end)`, `start < end`; ascending, and `end < next.start` (touching ranges
    /// are merged), so the representation of a set is unique.
    ranges: Vec<(u64, u64)>,
    /// Number of sectors in all ranges (Σ end − start).
    count: u64,
}

impl SectorRanges {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds sector `x`. Appending in ascending order is O(1); anything else is O(ranges).
    pub fn insert(&mut self, x: u64) {
        self.insert_range(x, x.saturating_add(1));
    }

    /// Adds sectors `[a, b)` (nothing if `a ≥ b`). Appending at or past the current end is O(1);
    /// an insertion among existing ranges merges what it overlaps or touches, O(ranges).
    pub fn insert_range(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        match self.ranges.last_mut() {
            None => {}
            Some(last) if a > last.1 => {}
            Some(last) if a >= last.0 => {
                self.count += b.saturating_sub(last.1);
                last.1 = last.1.max(b);
                return;
            }
            Some(_) => return self.merge_in(a, b),
        }
        self.ranges.push((a, b));
        self.count += b - a;
    }

    /// Inserts `[a, b)` somewhere before the last range, merging every range it overlaps or touches.
    fn merge_in(&mut self, a: u64, b: u64) {
        let i = self.ranges.partition_point(|r| r.1 < a); // first range that may touch
        let j = self.ranges.partition_point(|r| r.0 <= b); // past the last one that may touch
        let (mut lo, mut hi) = (a, b);
        for r in &self.ranges[i..j] {
            lo = lo.min(r.0);
            hi = hi.max(r.1);
            self.count -= r.1 - r.0;
        }
        self.ranges.splice(i..j, [(lo, hi)]);
        self.count += hi - lo;
    }

    /// Number of sectors in the set.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True if the set holds no sector.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ranges `(start, end)`, ascending, disjoint and never touching.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether sector `x` is in the set (binary search).
    pub fn contains(&self, x: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= x);
        self.ranges.get(i).is_some_and(|r| r.0 <= x)
    }

    /// Whether any sector of `[a, b)` is in the set (binary search).
    pub fn overlaps(&self, a: u64, b: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= a);
        self.ranges.get(i).is_some_and(|r| r.0 < b)
    }

    /// Every sector of the set, ascending. Costs time per sector: callers use it only where the
    /// set is bounded by what a source really holds.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..b)
    }

    /// The sectors as a plain ascending list (for tests and small sets).
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }
}

impl FromIterator<u64> for SectorRanges {
    /// Collects sectors in any order (ascending input is the fast path).
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut s = SectorRanges::new();
        for x in iter {
            s.insert(x);
        }
        s
    }
}

impl IntoIterator for SectorRanges {
    type Item = u64;
    type IntoIter = std::iter::FlatMap<
        std::vec::IntoIter<(u64, u64)>,
        std::ops::Range<u64>,
        fn((u64, u64)) -> std::ops::Range<u64>,
    >;
    /// Every sector of the set, ascending.
    fn into_iter(self) -> Self::IntoIter {
        let to_range: fn((u64, u64)) -> std::ops::Range<u64> = |(a, b)| a..b;
        self.ranges.into_iter().flat_map(to_range)
    }
}

#[cfg(test)]
mod tests {
    use super::SectorRanges;

    #[test]
    fn ascending_inserts_merge_into_runs() {
        let s: SectorRanges = [1, 2, 3, 7, 8, 10].into_iter().collect();
        assert_eq!(s.ranges(), &[(1, 4), (7, 9), (10, 11)]);
        assert_eq!(s.len(), 6);
        assert!(s.contains(3) && !s.contains(4) && s.contains(10) && !s.contains(0));
        assert!(s.overlaps(4, 8) && !s.overlaps(4, 7) && !s.overlaps(11, 100));
        assert_eq!(s.to_vec(), vec![1, 2, 3, 7, 8, 10]);
    }

    #[test]
    fn out_of_order_inserts_merge_what_they_touch() {
        let mut s = SectorRanges::new();
        s.insert_range(10, 20);
        s.insert_range(30, 40);
        s.insert_range(50, 60);
        s.insert_range(5, 8);
        assert_eq!(s.len(), 33);
        s.insert_range(8, 31); // touches (5,8), spans (10,20), overlaps (30,40)
        assert_eq!(s.ranges(), &[(5, 40), (50, 60)]);
        assert_eq!(s.len(), 45);
        s.insert_range(45, 46);
        s.insert(45);
        assert_eq!(s.ranges(), &[(5, 40), (45, 46), (50, 60)]);
        assert_eq!(s.len(), 46);
        s.insert_range(0, u64::MAX);
        assert_eq!(s.ranges(), &[(0, u64::MAX)]);
        assert_eq!(s.len(), u64::MAX);
    }

    #[test]
    fn a_huge_run_costs_one_range() {
        let mut s = SectorRanges::new();
        for x in 0..1000 {
            s.insert(x);
        }
        s.insert_range(1000, 1 << 40);
        assert_eq!(s.ranges().len(), 1);
        assert_eq!(s.len(), 1 << 40);
        assert_eq!(
            s.clone().into_iter().take(3).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }
}
