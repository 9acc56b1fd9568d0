//! One stripe's Reed–Solomon encoder whose working space the caller fills in place.
//!
//! `reed_solomon_simd::ReedSolomonEncoder` takes each original shard as a slice and copies it into
//! its working space. Encoding a disc image that way costs a second full copy of the image (page
//! cache → read buffer → encoder): about a tenth of the FEC stage. This encoder runs the same
//! algorithm (reed-solomon-simd's high-rate and low-rate encoders, built from its public `Engine`)
//! over a working space the image is read *into* (`preadv` straight to the shard slots), and hands
//! out the recovery shards where the engine leaves them, so parity is written (`pwritev`) without a
//! copy either. The output is byte-identical to `reed_solomon_simd::encode` (tested below and in
//! `encode`'s reference test); FORMAT.md §3 defines parity by that function.
//!
//! Shards are whole sectors (2048 bytes, a multiple of 64), so the engine's shard layout is the
//! plain byte layout: shard i occupies bytes [i·2048, (i+1)·2048) of the working space, and no
//! "last chunk" re-encoding applies.

use super::FecError;
use crate::sector::SECTOR_SIZE;
use reed_solomon_simd::engine::{utils::xor_within, DefaultEngine, Engine, ShardsRefMut};

const SS: usize = SECTOR_SIZE;
const CHUNKS_PER_SHARD: usize = SS / 64;
const GF_ORDER: usize = reed_solomon_simd::engine::GF_ORDER;

/// Encoder for one (k, m) code over sector-sized shards, reusable stripe after stripe.
pub(crate) struct StripeEncoder {
    k: usize,
    m: usize,
    /// reed-solomon-simd uses the high-rate transform when m rounds up to no more than k does.
    high_rate: bool,
    work: WorkSpace,
}

/// An encoder's working space: anonymous memory advised for transparent huge pages. 16 MiB in
/// 4 KiB pages cost 4 096 page faults to set up and a TLB miss on most shard accesses of every
/// (I)FFT pass; in 2 MiB pages, 8 faults and few misses. Without THP it is ordinary memory.
struct WorkSpace(memmap2::MmapMut);

impl WorkSpace {
    fn new(bytes: usize) -> Result<Self, FecError> {
        let map = memmap2::MmapOptions::new()
            .len(bytes)
            .map_anon()
            .map_err(|source| FecError::Io {
                what: format!("allocating {bytes} bytes of encoder memory"),
                source,
            })?;
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage); // a hint: refused, the pages stay small
        Ok(WorkSpace(map))
    }
    fn len(&self) -> usize {
        self.0.len() / 64
    }
    fn shards(&self) -> &[[u8; 64]] {
        // SAFETY: [u8; 64] has alignment 1 and no invalid values; len() counts whole 64-byte
        // blocks of the mapping, which lives as long as the borrow of self.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.len()) }
    }
    fn shards_mut(&mut self) -> &mut [[u8; 64]] {
        // SAFETY: as in `shards`, and the borrow of self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.len()) }
    }
}

impl StripeEncoder {
    /// An encoder for k originals and m recovery shards, with the limits reed-solomon-simd has.
    pub(crate) fn new(k: usize, m: usize) -> Result<Self, FecError> {
        let (k2, m2) = (k.next_power_of_two(), m.next_power_of_two());
        if k == 0 || m == 0 || k > GF_ORDER || m > GF_ORDER || k2.min(m2) + k.max(m) > GF_ORDER {
            return Err(FecError::Geometry(format!(
                "no Reed–Solomon code with {k} data and {m} parity shards"
            )));
        }
        Ok(StripeEncoder {
            k,
            m,
            high_rate: m2 <= k2,
            work: WorkSpace::new(Self::bytes(k, m) as usize)?,
        })
    }

    /// Whether this encoder is for the (k, m) code.
    pub(crate) fn is_for(&self, k: usize, m: usize) -> bool {
        (self.k, self.m) == (k, m)
    }

    /// Bytes of working space this encoder holds.
    pub(crate) fn held_bytes(&self) -> u64 {
        (self.work.len() * 64) as u64
    }

    /// Bytes of working space an encoder for (k, m) holds: reed-solomon-simd's work count (k
    /// rounded up to a multiple of m's power of two at high rate, m to k's at low rate) in shards.
    pub(crate) fn bytes(k: usize, m: usize) -> u64 {
        let (k2, m2) = (k.next_power_of_two(), m.next_power_of_two());
        let slots = if m2 <= k2 {
            k.next_multiple_of(m2)
        } else {
            m.next_multiple_of(k2)
        };
        (slots * SS) as u64
    }

    /// The slot of original shard `i` (< k): fill it before [`encode`](Self::encode).
    pub(crate) fn original_mut(&mut self, i: usize) -> &mut [u8] {
        debug_assert!(i < self.k);
        self.work.shards_mut()[i * CHUNKS_PER_SHARD..(i + 1) * CHUNKS_PER_SHARD].as_flattened_mut()
    }

    /// Original shard `i` (< k) as filled.
    pub(crate) fn original(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.k);
        self.work.shards()[i * CHUNKS_PER_SHARD..(i + 1) * CHUNKS_PER_SHARD].as_flattened()
    }

    /// Recovery shard `p` (< m), valid after [`encode`](Self::encode) until the next fill.
    pub(crate) fn recovery(&self, p: usize) -> &[u8] {
        debug_assert!(p < self.m);
        self.work.shards()[p * CHUNKS_PER_SHARD..(p + 1) * CHUNKS_PER_SHARD].as_flattened()
    }

    /// Turns the k originals in the working space into the m recovery shards.
    pub(crate) fn encode(&mut self, engine: &DefaultEngine) {
        if self.high_rate {
            let slots = self.work.len() / CHUNKS_PER_SHARD;
            let mut work = ShardsRefMut::new(slots, CHUNKS_PER_SHARD, self.work.shards_mut());
            encode_high_rate(engine, &mut work, self.k, self.m);
        } else {
            encode_low_rate(engine, self.work.shards_mut(), self.k, self.m);
        }
    }
}

/// reed-solomon-simd's high-rate encoding (rate_high.rs): IFFT each chunk of `m.next_power_of_two()`
/// originals (skewed by its end), XOR them into the first chunk, FFT that into the recovery shards.
fn encode_high_rate(engine: &DefaultEngine, work: &mut ShardsRefMut, k: usize, m: usize) {
    let chunk = m.next_power_of_two();
    let first = k.min(chunk);
    work.zero(first..chunk);
    engine.ifft(work, 0, chunk, first, chunk);
    let mut start = chunk;
    while start + chunk <= k {
        engine.ifft(work, start, chunk, chunk, start + chunk);
        xor_within(work, 0, start, chunk);
        start += chunk;
    }
    let last = k % chunk;
    if k > chunk && last > 0 {
        work.zero(start + last..);
        engine.ifft(work, start, chunk, last, start + chunk);
        xor_within(work, 0, start, chunk);
    }
    engine.fft(work, 0, chunk, m, 0);
}

/// reed-solomon-simd's low-rate encoding (rate_low.rs): IFFT the zero-padded originals once, copy
/// the result into every chunk of recovery shards and FFT each chunk (skewed by its end).
fn encode_low_rate(engine: &DefaultEngine, raw: &mut [[u8; 64]], k: usize, m: usize) {
    let chunk = k.next_power_of_two();
    let slots = raw.len() / CHUNKS_PER_SHARD;
    {
        let mut work = ShardsRefMut::new(slots, CHUNKS_PER_SHARD, raw);
        work.zero(k..chunk);
        engine.ifft(&mut work, 0, chunk, k, 0);
    }
    let (first, rest) = raw.split_at_mut(chunk * CHUNKS_PER_SHARD);
    for copy in rest.chunks_mut(first.len()) {
        copy.copy_from_slice(&first[..copy.len()]);
    }
    let mut work = ShardsRefMut::new(slots, CHUNKS_PER_SHARD, raw);
    let mut start = 0;
    while start + chunk <= m {
        engine.fft(&mut work, start, chunk, chunk, start + chunk);
        start += chunk;
    }
    let last = m % chunk;
    if last > 0 {
        engine.fft(&mut work, start, chunk, last, start + chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reed_solomon_simd_for_both_rates() {
        let engine = DefaultEngine::new();
        let mut rng = crate::util::xorshift::Xorshift64::new(0x5EED);
        for (k, m) in [
            (1, 1),
            (1, 2),
            (3, 5),
            (5, 3),
            (4, 3),
            (7944, 1041),
            (100, 17),
            (64, 64),
            (2, 9),
            (3, 300),
            (1000, 1),
        ] {
            let originals: Vec<Vec<u8>> = (0..k)
                .map(|_| {
                    let mut v = vec![0u8; SS];
                    rng.fill(&mut v);
                    v
                })
                .collect();
            let want = reed_solomon_simd::encode(k, m, &originals).unwrap();
            let mut enc = StripeEncoder::new(k, m).unwrap();
            assert_eq!(enc.held_bytes(), StripeEncoder::bytes(k, m));
            for round in 0..2 {
                for (i, o) in originals.iter().enumerate() {
                    enc.original_mut(i).copy_from_slice(o);
                }
                enc.encode(&engine);
                for (p, w) in want.iter().enumerate() {
                    assert!(
                        enc.recovery(p) == w.as_slice(),
                        "k={k} m={m} p={p} round {round}"
                    );
                }
            }
        }
    }

    #[test]
    fn unsupported_counts_are_errors() {
        for (k, m) in [(0, 1), (1, 0), (65536, 1), (40000, 40000), (4097, 61440)] {
            assert!(StripeEncoder::new(k, m).is_err(), "k={k} m={m}");
        }
    }
}
