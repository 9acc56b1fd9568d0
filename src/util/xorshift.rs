//! [`Xorshift64`]: a tiny deterministic pseudo-random generator (Marsaglia's xorshift64,
//! shifts 13/7/17) for reproducible noise without a dependency: the demo's photo-like files and
//! its damage pattern, and the noise that tests, benches and fuzz smoke tests feed the readers.
//! Not for anything that must be unpredictable.

/// Generator state; a zero seed would stay zero forever, so it is replaced by a fixed odd one.
#[derive(Clone, Debug)]
pub struct Xorshift64(u64);

impl Xorshift64 {
    /// Starts at `seed` exactly (callers keep their streams), or at a fixed value for 0.
    pub fn new(seed: u64) -> Self {
        Xorshift64(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fills `buf` 8 bytes per step (little-endian words; the last word truncated).
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
    }
}

/// `len` incompressible bytes from `seed` (the same bytes for the same seed, everywhere).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Xorshift64::new(seed | 1).fill(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_first_values_and_noise_layout() {
        // xorshift64 from 1: the first outputs of Marsaglia's generator.
        let mut r = Xorshift64::new(1);
        assert_eq!(r.next_u64(), 1082269761);
        assert_eq!(r.next_u64(), 1152992998833853505);
        let n = noise(11, 1);
        assert_eq!(&n[..8], &1082269761u64.to_le_bytes());
        assert_eq!(&n[8..], &1152992998833853505u64.to_le_bytes()[..3]);
        assert_eq!(
            Xorshift64::new(0).next_u64(),
            Xorshift64::new(0x9E37_79B9_7F4A_7C15).next_u64()
        );
    }
}
