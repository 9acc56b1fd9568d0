//! A deterministic pseudo-random source for test data and damage patterns: splitmix64, so the
//! tests depend neither on the crate under test nor on a random-number package.

use std::collections::BTreeSet;

/// splitmix64 (Steele, Lea, Flood 2014); the state is the seed, advanced by the golden gamma.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index in [0, n).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `count` distinct values of `from`, in random order.
    pub fn pick(&mut self, from: &[usize], count: usize) -> Vec<usize> {
        let mut v = from.to_vec();
        for i in 0..count {
            let j = i + self.index(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(count);
        v
    }

    /// `count` distinct values from [lo, hi).
    pub fn sample(&mut self, lo: u64, hi: u64, count: u64) -> BTreeSet<u64> {
        let mut s = BTreeSet::new();
        while (s.len() as u64) < count {
            s.insert(lo + self.below(hi - lo));
        }
        s
    }
}
