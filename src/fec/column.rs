//! The column code of parity discs (FORMAT.md §10): a Reed–Solomon code *across* the data discs of
//! a generation. Column c is the sector at LBA c of every data disc (2048 zero bytes past a disc's
//! protected region); it is one codeword of FORMAT.md §3.3 with k = n originals (the data discs in
//! disc order) and m = P parity shards (parity disc p holds shard p at its column-parity LBA + c).
//!
//! The code works on every 64-byte block independently, so a *window* of w adjacent columns is
//! encoded in one call as shards of w·2048 bytes (disc i's sectors [c, c+w) are original i): the
//! same parity as w separate calls, at the library's full speed.

use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use super::FecError;
use crate::sector::SECTOR_SIZE;

/// Encodes and decodes windows of columns for one (n, P) set. Reused window after window (the
/// codec's working memory, ≈ (n + P) shards, is allocated once). A window is cut into parts of
/// whole sectors coded on the rayon pool at once, each part by its own engines (the code is per
/// 64-byte block: the same bytes as one call); P = 1 is a plain XOR ([`xor_of`]).
pub struct ColumnCodec {
    n: usize,
    parity: usize,
    /// Engines of part j of a window at `engines[j]`, made on first use; their work together is
    /// one window's worth.
    engines: Vec<Engines>,
}

/// The reed-solomon-simd encoder and decoder of one part of a window.
#[derive(Default)]
struct Engines {
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
}

/// A part of a window is at least this many columns (128 KiB shards: smaller parts cost more
/// in calls than the threads gain).
const MIN_PART: usize = 64;

impl ColumnCodec {
    /// A codec for `n` data discs and `parity` parity discs. Refused where the library's shard
    /// limits refuse it (far beyond any real set: n + P ≤ 65 536).
    pub fn new(n: usize, parity: usize) -> Result<Self, FecError> {
        if n == 0 || parity == 0 {
            return Err(FecError::Geometry(format!(
                "column code needs at least one data and one parity disc (n = {n}, P = {parity})"
            )));
        }
        if !ReedSolomonEncoder::supports(n, parity) {
            return Err(FecError::Geometry(format!(
                "column code of {n} data and {parity} parity discs is beyond the codec's limits"
            )));
        }
        Ok(ColumnCodec {
            n,
            parity,
            engines: Vec::new(),
        })
    }

    /// Data discs (k).
    pub fn data_discs(&self) -> usize {
        self.n
    }

    /// Parity discs (m).
    pub fn parity_discs(&self) -> usize {
        self.parity
    }

    /// Computes the parity of one window: `originals[i]` is disc i's w sectors (w·2048 bytes, the
    /// same w for all), `parity[p]` receives parity disc p's w sectors.
    pub fn encode(
        &mut self,
        originals: &[&[u8]],
        parity: &mut [&mut [u8]],
    ) -> Result<(), FecError> {
        let bytes = self.check(
            originals.len(),
            parity.len(),
            originals.first().map(|o| o.len()),
        )?;
        if let ([out], 1) = (&mut *parity, self.parity) {
            xor_of(out, originals.iter().copied());
            return Ok(());
        }
        let (n, p) = (self.n, self.parity);
        let part = self.part_bytes(bytes);
        let originals: Vec<Vec<&[u8]>> = transpose(originals.iter().map(|o| o.chunks(part)));
        let parity: Vec<Vec<&mut [u8]>> = transpose(parity.iter_mut().map(|s| s.chunks_mut(part)));
        self.engines
            .par_iter_mut()
            .zip(originals)
            .zip(parity)
            .try_for_each(|((e, o), mut out)| e.encode(n, p, &o, &mut out))
    }

    /// Rebuilds the unknown shards of one window in place: `shards` are the n originals then the
    /// P parity shards (each w·2048 bytes), `known[i]` says whether shard i holds its true bytes.
    /// Needs at least n known shards; unknown originals are decoded, unknown parity re-encoded.
    pub fn decode(&mut self, shards: &mut [&mut [u8]], known: &[bool]) -> Result<(), FecError> {
        let total = self.n + self.parity;
        if shards.len() != total || known.len() != total {
            return Err(FecError::Geometry(format!(
                "column window has {} shards, expected {total}",
                shards.len()
            )));
        }
        let bytes = self.check(self.n, self.parity, shards.first().map(|s| s.len()))?;
        let lost = known.iter().filter(|k| !**k).count();
        if lost > self.parity {
            return Err(FecError::Geometry(format!(
                "{lost} unknown shards in a column window, only {} can be rebuilt",
                self.parity
            )));
        }
        if let (1, Some(j)) = (self.parity, known.iter().position(|k| !k)) {
            let (before, rest) = shards.split_at_mut(j);
            let (target, after) = rest.split_first_mut().expect("j < n + 1");
            let others = before.iter().chain(after.iter()).map(|s| &**s);
            xor_of(target, others);
            return Ok(());
        }
        if lost == 0 {
            return Ok(());
        }
        let (n, p) = (self.n, self.parity);
        let part = self.part_bytes(bytes);
        let parts: Vec<Vec<&mut [u8]>> = transpose(shards.iter_mut().map(|s| s.chunks_mut(part)));
        self.engines
            .par_iter_mut()
            .zip(parts)
            .try_for_each(|(e, mut shards)| e.decode(n, p, &mut shards, known))
    }

    /// Bytes per part of a window of `bytes`-byte shards (whole sectors, at least [`MIN_PART`]
    /// columns, one part per rayon thread at most); makes sure there are engines for every part.
    fn part_bytes(&mut self, bytes: usize) -> usize {
        let sectors = bytes / SECTOR_SIZE;
        let parts = (sectors / MIN_PART).clamp(1, rayon::current_num_threads().max(1));
        if self.engines.len() < parts {
            self.engines.resize_with(parts, Engines::default);
        }
        sectors.div_ceil(parts) * SECTOR_SIZE
    }

    fn check(&self, n: usize, p: usize, bytes: Option<usize>) -> Result<usize, FecError> {
        let bytes = bytes.unwrap_or(0);
        if n != self.n || p != self.parity || bytes == 0 || bytes % SECTOR_SIZE != 0 {
            return Err(FecError::Geometry(format!(
                "column window of {n}+{p} shards of {bytes} bytes for a {}+{} code (shards must be whole sectors)",
                self.n, self.parity
            )));
        }
        Ok(bytes)
    }
}

impl Engines {
    /// Parity of one part with the library's encoder.
    fn encode(
        &mut self,
        n: usize,
        p: usize,
        originals: &[&[u8]],
        parity: &mut [&mut [u8]],
    ) -> Result<(), FecError> {
        let bytes = originals.first().map_or(0, |o| o.len());
        let enc = ready(&mut self.encoder, n, p, bytes)?;
        for o in originals {
            enc.add_original_shard(o)?;
        }
        let result = enc.encode()?;
        for (out, shard) in parity.iter_mut().zip(result.recovery_iter()) {
            out.copy_from_slice(shard);
        }
        Ok(())
    }

    /// Unknown shards of one part rebuilt in place (at most P unknown: checked by the caller).
    fn decode(
        &mut self,
        n: usize,
        p: usize,
        shards: &mut [&mut [u8]],
        known: &[bool],
    ) -> Result<(), FecError> {
        let bytes = shards.first().map_or(0, |s| s.len());
        if known[..n].iter().any(|k| !k) {
            let dec = ready(&mut self.decoder, n, p, bytes)?;
            for (i, s) in shards.iter().enumerate().filter(|(i, _)| known[*i]) {
                if i < n {
                    dec.add_original_shard(i, &**s)?;
                } else {
                    dec.add_recovery_shard(i - n, &**s)?;
                }
            }
            let result = dec.decode()?;
            for (i, shard) in result.restored_original_iter() {
                shards[i].copy_from_slice(shard);
            }
        }
        if known[n..].iter().any(|k| !k) {
            // Unknown parity: encoded afresh from the (now complete) originals, straight from the
            // encoder's work into the unknown shards (no copy of the known ones is touched).
            let (originals, parity) = shards.split_at_mut(n);
            let enc = ready(&mut self.encoder, n, p, bytes)?;
            for o in originals.iter() {
                enc.add_original_shard(&**o)?;
            }
            let result = enc.encode()?;
            let recovered = parity.iter_mut().zip(result.recovery_iter());
            for ((out, shard), known) in recovered.zip(&known[n..]) {
                if !known {
                    out.copy_from_slice(shard);
                }
            }
        }
        Ok(())
    }
}

/// Part j of every shard, for every j: `[shard][part]` turned into `[part][shard]`.
fn transpose<T>(shards: impl Iterator<Item = impl Iterator<Item = T>>) -> Vec<Vec<T>> {
    let mut parts: Vec<Vec<T>> = Vec::new();
    for shard in shards {
        for (j, piece) in shard.enumerate() {
            if parts.len() <= j {
                parts.push(Vec::new());
            }
            parts[j].push(piece);
        }
    }
    parts
}

/// `out` = the XOR of `shards` (all of `out`'s length). With P = 1 this *is* the column code
/// (FORMAT.md §10.1): §3.3's code for m = 1 is high rate with C = 1 — parity at position 0, the n
/// originals at 1 … n, zeros up to N = pow2(n + 1) — so g has degree < N − 1 and takes its values
/// on all N points of an additive subgroup of GF(2^16), and such a sum is zero: the parity is the
/// sum (XOR) of the originals, and any one lost shard the XOR of the other n. The same bytes as
/// the library's encoder and decoder (tested), at memory speed instead of ~10× slower decoding.
fn xor_of<'a>(out: &mut [u8], mut shards: impl Iterator<Item = &'a [u8]>) {
    match shards.next() {
        Some(first) => out.copy_from_slice(first),
        None => out.fill(0),
    }
    for s in shards {
        for (o, b) in out.iter_mut().zip(s) {
            *o ^= b;
        }
    }
}

/// The reed-solomon-simd engines, built on first use and `reset` for every window after: the
/// codec's working memory (≈ (n + P) shards) is allocated once.
trait Engine: Sized {
    fn build(n: usize, parity: usize, bytes: usize) -> Result<Self, reed_solomon_simd::Error>;
    fn reset_to(
        &mut self,
        n: usize,
        parity: usize,
        bytes: usize,
    ) -> Result<(), reed_solomon_simd::Error>;
}

impl Engine for ReedSolomonEncoder {
    fn build(n: usize, parity: usize, bytes: usize) -> Result<Self, reed_solomon_simd::Error> {
        ReedSolomonEncoder::new(n, parity, bytes)
    }
    fn reset_to(
        &mut self,
        n: usize,
        p: usize,
        bytes: usize,
    ) -> Result<(), reed_solomon_simd::Error> {
        self.reset(n, p, bytes)
    }
}

impl Engine for ReedSolomonDecoder {
    fn build(n: usize, parity: usize, bytes: usize) -> Result<Self, reed_solomon_simd::Error> {
        ReedSolomonDecoder::new(n, parity, bytes)
    }
    fn reset_to(
        &mut self,
        n: usize,
        p: usize,
        bytes: usize,
    ) -> Result<(), reed_solomon_simd::Error> {
        self.reset(n, p, bytes)
    }
}

/// The engine in `slot`, ready for a window of `bytes`-byte shards.
fn ready<E: Engine>(
    slot: &mut Option<E>,
    n: usize,
    parity: usize,
    bytes: usize,
) -> Result<&mut E, FecError> {
    let engine = match slot.take() {
        Some(mut e) => {
            e.reset_to(n, parity, bytes)?;
            e
        }
        None => E::build(n, parity, bytes)?,
    };
    Ok(slot.insert(engine))
}

/// Largest window: 2048 columns (4 MiB shards); larger windows gain nothing.
const MAX_WINDOW: u64 = 2048;

/// Columns per window of an encoding pass for a memory budget. Per column, in sectors: two
/// buffers per data and per parity disc (one being read or written while the codec works on the
/// other: 2(n + P)) and the encoder's work, at most 2(n + P) shards (reed-solomon-simd rounds
/// the larger of n and P up to a multiple of a power of two ≥ the smaller) — 4(n + P) in all.
/// At least 1, at most 2048.
pub fn window_for_encode(n: usize, parity: usize, budget: u64) -> u64 {
    window(4 * (n + parity) as u64, budget)
}

/// Columns per window of a decoding pass for a memory budget. Per column, in sectors: two
/// buffers per disc of the set (2(n + P)), the decoder's work (a power of two below 4n + 2P and
/// below 2n + 4P) and the encoder's for re-encoding unknown parity (< 2(n + P)) — at most
/// 8(n + P) in all.
/// At least 1, at most 2048.
pub fn window_for_decode(n: usize, parity: usize, budget: u64) -> u64 {
    window(8 * (n + parity) as u64, budget)
}

fn window(sectors_per_column: u64, budget: u64) -> u64 {
    (budget / (sectors_per_column.max(1) * SECTOR_SIZE as u64)).clamp(1, MAX_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::xorshift::Xorshift64;

    fn random(rng: &mut Xorshift64, len: usize) -> Vec<u8> {
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    /// A window of w columns gives the parity of w one-sector calls (the code is per 64-byte
    /// block), and that parity is reed_solomon_simd::encode's, which FORMAT.md §3.3 defines.
    #[test]
    fn window_equals_columns_and_library_parity() {
        let mut rng = Xorshift64::new(7);
        for (n, p, w) in [(5, 2, 3), (5, 1, 3), (4, 1, 2), (1, 1, 2), (12, 1, 1)] {
            window_parity_is_the_library_parity(&mut rng, n, p, w);
        }
    }

    fn window_parity_is_the_library_parity(rng: &mut Xorshift64, n: usize, p: usize, w: usize) {
        let discs: Vec<Vec<u8>> = (0..n).map(|_| random(rng, w * SECTOR_SIZE)).collect();
        let mut codec = ColumnCodec::new(n, p).unwrap();
        let mut par = vec![vec![0u8; w * SECTOR_SIZE]; p];
        {
            let o: Vec<&[u8]> = discs.iter().map(|d| d.as_slice()).collect();
            let mut outs: Vec<&mut [u8]> = par.iter_mut().map(|v| v.as_mut_slice()).collect();
            codec.encode(&o, &mut outs).unwrap();
        }
        for c in 0..w {
            let r = c * SECTOR_SIZE..(c + 1) * SECTOR_SIZE;
            let column: Vec<&[u8]> = discs.iter().map(|d| &d[r.clone()]).collect();
            let lib = reed_solomon_simd::encode(n, p, &column).unwrap();
            for q in 0..p {
                assert_eq!(lib[q], &par[q][r.clone()], "column {c} parity {q}");
            }
        }
    }

    #[test]
    fn any_p_lost_shards_are_rebuilt() {
        let mut rng = Xorshift64::new(11);
        for (n, p) in [(4usize, 1usize), (4, 2), (1, 1), (6, 3), (5, 1)] {
            let w = 2;
            let discs: Vec<Vec<u8>> = (0..n).map(|_| random(&mut rng, w * SECTOR_SIZE)).collect();
            let mut codec = ColumnCodec::new(n, p).unwrap();
            let mut par = vec![vec![0u8; w * SECTOR_SIZE]; p];
            {
                let o: Vec<&[u8]> = discs.iter().map(|d| d.as_slice()).collect();
                let mut outs: Vec<&mut [u8]> = par.iter_mut().map(|v| v.as_mut_slice()).collect();
                codec.encode(&o, &mut outs).unwrap();
            }
            let all: Vec<Vec<u8>> = discs.iter().chain(par.iter()).cloned().collect();
            // Every set of p lost shards (pairs at most here: p ≤ 3, exhaustive for p ≤ 2).
            let total = n + p;
            for mask in 0u32..(1 << total) {
                if mask.count_ones() as usize != p {
                    continue;
                }
                let known: Vec<bool> = (0..total).map(|i| mask & (1 << i) == 0).collect();
                let mut work: Vec<Vec<u8>> = all
                    .iter()
                    .zip(&known)
                    .map(|(s, k)| if *k { s.clone() } else { vec![0xEE; s.len()] })
                    .collect();
                let mut refs: Vec<&mut [u8]> = work.iter_mut().map(|v| v.as_mut_slice()).collect();
                codec.decode(&mut refs, &known).unwrap();
                assert_eq!(work, all, "n {n} P {p} lost mask {mask:b}");
            }
            // One more than P: refused, never a wrong answer.
            let known: Vec<bool> = (0..total).map(|i| i > p).collect();
            let mut work = all.clone();
            let mut refs: Vec<&mut [u8]> = work.iter_mut().map(|v| v.as_mut_slice()).collect();
            assert!(codec.decode(&mut refs, &known).is_err());
        }
    }

    /// A window large enough to be cut into parts on the rayon pool (517 columns: parts of
    /// whole sectors, the last one shorter) gives the library's bytes, encoding and decoding.
    #[test]
    fn a_window_in_parts_gives_the_library_bytes() {
        let mut rng = Xorshift64::new(29);
        let (n, p, w) = (6, 3, 517);
        let discs: Vec<Vec<u8>> = (0..n).map(|_| random(&mut rng, w * SECTOR_SIZE)).collect();
        let lib = reed_solomon_simd::encode(n, p, &discs).unwrap();
        let mut codec = ColumnCodec::new(n, p).unwrap();
        let mut par = vec![vec![0u8; w * SECTOR_SIZE]; p];
        {
            let o: Vec<&[u8]> = discs.iter().map(|d| d.as_slice()).collect();
            let mut outs: Vec<&mut [u8]> = par.iter_mut().map(|v| v.as_mut_slice()).collect();
            codec.encode(&o, &mut outs).unwrap();
        }
        assert_eq!(par, lib);
        let threads = rayon::current_num_threads();
        assert_eq!(codec.engines.len(), threads.clamp(1, w / MIN_PART));
        let all: Vec<Vec<u8>> = discs.iter().chain(&lib).cloned().collect();
        let known: Vec<bool> = (0..n + p).map(|i| ![0, 4, 7].contains(&i)).collect();
        let mut work: Vec<Vec<u8>> = all
            .iter()
            .zip(&known)
            .map(|(s, k)| if *k { s.clone() } else { vec![0xA5; s.len()] })
            .collect();
        let mut refs: Vec<&mut [u8]> = work.iter_mut().map(|v| v.as_mut_slice()).collect();
        codec.decode(&mut refs, &known).unwrap();
        assert!(work == all, "decoded in parts");
    }

    #[test]
    fn single_disc_set_is_a_mirror() {
        let mut rng = Xorshift64::new(3);
        let disc = random(&mut rng, SECTOR_SIZE);
        let mut codec = ColumnCodec::new(1, 1).unwrap();
        let mut par = vec![0u8; SECTOR_SIZE];
        codec.encode(&[&disc], &mut [&mut par]).unwrap();
        assert_eq!(par, disc);
    }

    #[test]
    fn bad_geometry_is_an_error() {
        assert!(ColumnCodec::new(0, 1).is_err());
        assert!(ColumnCodec::new(3, 0).is_err());
        let mut c = ColumnCodec::new(2, 1).unwrap();
        let a = vec![0u8; 100];
        let mut out = vec![0u8; 100];
        assert!(c.encode(&[&a, &a], &mut [&mut out]).is_err());
        assert_eq!(window_for_encode(12, 1, 768 << 20), 2048);
        assert_eq!(window_for_encode(12, 1, 1), 1);
        assert_eq!(window_for_encode(4, 1, 16 << 20), 409);
        assert_eq!(window_for_decode(4, 1, 16 << 20), 204);
    }
}
