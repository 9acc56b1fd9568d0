//! FORMAT.md §3.3 defines each stripe's Reed–Solomon code without reference to any library. This
//! file is an independent, deliberately naive reader of that definition — field tables built from
//! the polynomial, the Cantor-basis symbol mapping, Lagrange interpolation — checked against the
//! test vectors printed in FORMAT.md appendix A, against reed-solomon-simd's parity for random
//! codes of both shapes, and against a real image made by `bd-archive create`.
//! reed-solomon-simd only *produces* parity here; nothing in the decoder path uses it.

use crate::common::rng::Rng;
use crate::common::{create, expect_code, images, tmp};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FORMAT_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md"));

// ---------------------------------------------------------------------------------------------
// The field (FORMAT.md §3.3.1), written from the spec.

/// x^16 + x^5 + x^3 + x^2 + 1.
const POLY: u32 = 0x1_002D;
/// Order of the multiplicative group.
const Q1: usize = 65_535;
/// B[i] of §3.3.1: the element (polynomial basis) that bit i of a symbol stands for.
const CANTOR: [u16; 16] = [
    0x0001, 0xACCA, 0x3C0E, 0x163E, 0xC582, 0xED2E, 0x914C, 0x4012, 0x6C98, 0x10D8, 0x6A72, 0xB900,
    0xFDB8, 0xFB34, 0xFF38, 0x991E,
];

/// GF(2^16) in the polynomial basis, plus the symbol ↔ element maps.
struct Field {
    /// exp[i] = x^i for 0 ≤ i < 2·Q1 (doubled so a sum of two logs needs no reduction).
    exp: Vec<u16>,
    /// log[a] for a ≠ 0: the i < Q1 with x^i = a. log[0] is unused.
    log: Vec<u16>,
    /// phi[v]: the element value (or position) v stands for = XOR of basis[i] over v's set bits.
    phi: Vec<u16>,
    /// Inverse of phi.
    phi_inv: Vec<u16>,
}

impl Field {
    /// The field with symbols mapped through `basis` (CANTOR for our discs).
    fn new(basis: &[u16; 16]) -> Field {
        let mut exp = vec![0u16; 2 * Q1];
        let mut log = vec![0u16; 1 << 16];
        let mut a: u32 = 1;
        for (i, e) in exp.iter_mut().enumerate().take(Q1) {
            *e = a as u16;
            log[a as usize] = i as u16;
            a <<= 1;
            if a & 0x1_0000 != 0 {
                a ^= POLY;
            }
        }
        assert_eq!(a, 1, "x must have order 65535");
        for i in Q1..2 * Q1 {
            exp[i] = exp[i - Q1];
        }
        let mut phi = vec![0u16; 1 << 16];
        let mut phi_inv = vec![0u16; 1 << 16];
        for (v, p) in phi.iter_mut().enumerate() {
            *p = (0..16)
                .filter(|i| v >> i & 1 == 1)
                .fold(0, |e, i| e ^ basis[i]);
            phi_inv[*p as usize] = v as u16;
        }
        assert!(
            (1..1usize << 16).all(|e| phi[phi_inv[e] as usize] as usize == e),
            "basis must be linearly independent"
        );
        Field {
            exp,
            log,
            phi,
            phi_inv,
        }
    }

    /// Product of two elements (polynomial basis).
    fn mul(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            return 0;
        }
        self.exp[self.log[a as usize] as usize + self.log[b as usize] as usize]
    }

    /// Quotient a / b of two elements, b ≠ 0.
    fn div(&self, a: u16, b: u16) -> u16 {
        assert_ne!(b, 0);
        if a == 0 {
            return 0;
        }
        self.exp[self.log[a as usize] as usize + Q1 - self.log[b as usize] as usize]
    }

    /// Product of two *symbols*: phi⁻¹(phi(v)·phi(w)).
    fn mul_symbols(&self, v: u16, w: u16) -> u16 {
        self.phi_inv[self.mul(self.phi[v as usize], self.phi[w as usize]) as usize]
    }
}

/// The field of our discs.
fn field() -> &'static Field {
    static F: OnceLock<Field> = OnceLock::new();
    F.get_or_init(|| Field::new(&CANTOR))
}

// ---------------------------------------------------------------------------------------------
// The code (FORMAT.md §3.3.2).

/// Where each shard of a (k, m) stripe sits, as position numbers (mapped to points by phi).
#[derive(Clone, Copy, Debug)]
struct Code {
    k: usize,
    m: usize,
    /// The high-rate shape (parity first); otherwise the low-rate shape (data first).
    high: bool,
}

impl Code {
    /// The shape FORMAT.md prescribes: high rate iff pow2(m) ≤ pow2(k).
    fn new(k: usize, m: usize) -> Code {
        let high = m.next_power_of_two() <= k.next_power_of_two();
        Code { k, m, high }
    }
    /// C: pow2(m) at high rate, pow2(k) at low rate.
    fn c(&self) -> usize {
        if self.high {
            self.m.next_power_of_two()
        } else {
            self.k.next_power_of_two()
        }
    }
    /// Position of shard i: originals are 0..k, parity shards k..k+m.
    fn position(&self, i: usize) -> usize {
        let c = self.c();
        match (self.high, i < self.k) {
            (true, true) => c + i,
            (true, false) => i - self.k,
            (false, true) => i,
            (false, false) => c + (i - self.k),
        }
    }
    /// Positions where the codeword is zero by definition.
    fn zeros(&self) -> Range<usize> {
        let c = self.c();
        if self.high {
            c + self.k..(c + self.k).next_power_of_two()
        } else {
            self.k..c
        }
    }
    /// K: the codeword is a polynomial of degree < K.
    fn degree_bound(&self) -> usize {
        let c = self.c();
        if self.high {
            (c + self.k).next_power_of_two() - c
        } else {
            c
        }
    }
}

/// 16-bit symbol `i` of a shard: 64-byte blocks of 32 low bytes, then 32 high bytes.
fn symbol(shard: &[u8], i: usize) -> u16 {
    let (block, j) = (i / 32, i % 32);
    u16::from_le_bytes([shard[64 * block + j], shard[64 * block + 32 + j]])
}

fn set_symbol(shard: &mut [u8], i: usize, v: u16) {
    let (block, j) = (i / 32, i % 32);
    let [lo, hi] = v.to_le_bytes();
    shard[64 * block + j] = lo;
    shard[64 * block + 32 + j] = hi;
}

/// The Lagrange decoder of §3.3.3. `shards` holds the stripe's k originals then its m parity
/// shards (`None` = lost; at least k present). Returns shards `want` with the symbols in
/// `symbols` computed (other bytes zero).
fn decode(
    f: &Field,
    code: Code,
    shards: &[Option<&[u8]>],
    want: &[usize],
    symbols: Range<usize>,
) -> Vec<Vec<u8>> {
    assert_eq!(shards.len(), code.k + code.m);
    // S: the first k surviving shards; P: the zero positions' points, then S's points.
    let survivors: Vec<(usize, &[u8])> = shards
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i, s)))
        .take(code.k)
        .collect();
    assert_eq!(survivors.len(), code.k, "more than m shards lost");
    let shard_len = survivors[0].1.len();
    let point = |i: usize| f.phi[code.position(i)] as usize;
    let points: Vec<usize> = code
        .zeros()
        .map(|z| f.phi[z] as usize)
        .chain(survivors.iter().map(|&(i, _)| point(i)))
        .collect();
    assert_eq!(points.len(), code.degree_bound());
    let log = |a: usize| f.log[a] as usize;
    // log Π_{q ∈ P, q ≠ skip}(x − q); subtraction is XOR.
    let log_prod = |x: usize, skip: usize| -> usize {
        points
            .iter()
            .filter(|&&q| q != skip)
            .map(|&q| log(x ^ q))
            .sum::<usize>()
            % Q1
    };
    // Once per stripe: the Lagrange denominators Π_{q ≠ x_s}(x_s − q), and log φ(symbol).
    let log_den: Vec<usize> = survivors
        .iter()
        .map(|&(i, _)| log_prod(point(i), point(i)))
        .collect();
    let log_vals: Vec<Vec<Option<usize>>> = survivors
        .iter()
        .map(|&(_, y)| {
            symbols
                .clone()
                .map(|s| match f.phi[symbol(y, s) as usize] {
                    0 => None,
                    v => Some(log(v as usize)),
                })
                .collect()
        })
        .collect();
    want.iter()
        .map(|&t| {
            let x = point(t);
            assert!(!points.contains(&x), "shard {t} is not lost");
            // L_s(x) = Π_{q ≠ x_s}(x − q) / Π_{q ≠ x_s}(x_s − q).
            let log_num = log_prod(x, usize::MAX);
            let log_l: Vec<usize> = survivors
                .iter()
                .zip(&log_den)
                .map(|(&(i, _), &den)| (log_num + 2 * Q1 - log(x ^ point(i)) - den) % Q1)
                .collect();
            let mut shard = vec![0u8; shard_len];
            for (col, s) in symbols.clone().enumerate() {
                let mut y = 0u16;
                for (vals, &l) in log_vals.iter().zip(&log_l) {
                    if let Some(v) = vals[col] {
                        y ^= f.exp[l + v];
                    }
                }
                set_symbol(&mut shard, s, f.phi_inv[y as usize]);
            }
            shard
        })
        .collect()
}

/// Encoding is decoding with every parity shard lost.
fn encode(f: &Field, code: Code, originals: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut shards: Vec<Option<&[u8]>> = originals.iter().map(|o| Some(&o[..])).collect();
    shards.resize(code.k + code.m, None);
    let want: Vec<usize> = (code.k..code.k + code.m).collect();
    decode(f, code, &shards, &want, 0..originals[0].len() / 2)
}

// ---------------------------------------------------------------------------------------------
// Test helpers.

fn hex_bytes(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex16(s: &str) -> u16 {
    u16::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not a 16-bit hex value: {s}"))
}

/// The fenced code blocks of FORMAT.md's appendix A, each as its lines.
fn appendix_blocks() -> Vec<Vec<&'static str>> {
    let appendix = &FORMAT_MD[FORMAT_MD
        .find("## Appendix A.")
        .expect("FORMAT.md has appendix A")..];
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in appendix.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(b) => blocks.push(b),
                None => current = Some(Vec::new()),
            }
        } else if let Some(b) = current.as_mut() {
            b.push(line);
        }
    }
    blocks
}

/// One stripe of appendix A.3.
struct Vector {
    name: String,
    code: Code,
    /// Originals, then parity shards.
    shards: Vec<Vec<u8>>,
}

fn appendix_vectors() -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    for line in appendix_blocks().into_iter().flatten() {
        let tok: Vec<&str> = line.split_whitespace().collect();
        match tok.as_slice() {
            ["vector", name, k, m, ..] => {
                let num = |t: &str, key: &str| -> usize {
                    t.trim_end_matches(':')
                        .strip_prefix(key)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("bad vector header: {line}"))
                };
                out.push(Vector {
                    name: name.to_string(),
                    code: Code::new(num(k, "k="), num(m, "m=")),
                    shards: Vec::new(),
                });
            }
            [kind @ ("original" | "parity"), idx, "pos", pos, "lo", lo] => {
                let v = out.last_mut().expect("shard line before a vector header");
                let idx: usize = idx.parse().expect("shard index");
                let i = if *kind == "original" {
                    idx
                } else {
                    v.code.k + idx
                };
                assert_eq!(i, v.shards.len(), "vector {}: shards out of order", v.name);
                assert_eq!(
                    pos.parse::<usize>().expect("position"),
                    v.code.position(i),
                    "vector {}: {kind} {idx} is at the wrong position",
                    v.name
                );
                v.shards.push(hex_bytes(lo));
            }
            ["hi", hi] => {
                let v = out.last_mut().expect("hi line before a vector header");
                let s = v.shards.last_mut().expect("hi line before a lo line");
                assert_eq!(s.len(), 32);
                s.extend(hex_bytes(hi));
            }
            _ => {}
        }
    }
    for v in &out {
        assert_eq!(v.shards.len(), v.code.k + v.code.m, "vector {}", v.name);
        assert!(v.shards.iter().all(|s| s.len() == 64), "vector {}", v.name);
    }
    out
}

/// All subsets of `0..n` with `size` elements.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    if size == 0 {
        return vec![Vec::new()];
    }
    if n < size {
        return Vec::new();
    }
    let mut with_last = subsets(n - 1, size - 1);
    for s in &mut with_last {
        s.push(n - 1);
    }
    let mut all = subsets(n - 1, size);
    all.extend(with_last);
    all
}

// ---------------------------------------------------------------------------------------------
// (a) FORMAT.md's tables and vectors.

#[test]
fn cantor_basis_table_in_format_md_is_ours_and_a_cantor_basis() {
    let row = FORMAT_MD
        .lines()
        .find(|l| l.trim_start().starts_with("| B[i] |"))
        .expect("§3.3.1 has the B[i] row");
    let values: Vec<u16> = row
        .split('|')
        .map(str::trim)
        .skip(2)
        .filter(|c| !c.is_empty())
        .map(hex16)
        .collect();
    assert_eq!(values, CANTOR);
    let f = field();
    assert_eq!(CANTOR[0], 1);
    for i in 1..16 {
        let b = CANTOR[i];
        assert_eq!(
            f.mul(b, b) ^ b,
            CANTOR[i - 1],
            "B[{i}]² + B[{i}] = B[{}]",
            i - 1
        );
    }
}

#[test]
fn field_values_match_appendix_a1() {
    let f = field();
    let mut checked = 0;
    for line in appendix_blocks().into_iter().flatten() {
        let tok: Vec<&str> = line.split_whitespace().collect();
        let (got, want) = match tok.as_slice() {
            [lhs, "=", rhs] if lhs.starts_with("exp(") => {
                let i: usize = lhs[4..lhs.len() - 1].parse().expect("exponent");
                (f.exp[i], hex16(rhs))
            }
            [lhs, "=", rhs] if lhs.starts_with("phi_inv(") => (
                f.phi_inv[hex16(&lhs[8..lhs.len() - 1]) as usize],
                hex16(rhs),
            ),
            [lhs, "=", rhs] if lhs.starts_with("phi(") => {
                (f.phi[hex16(&lhs[4..lhs.len() - 1]) as usize], hex16(rhs))
            }
            [v, "*", w, "=", rhs] => (f.mul_symbols(hex16(v), hex16(w)), hex16(rhs)),
            _ => continue,
        };
        assert_eq!(got, want, "appendix A.1: {line}");
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} lines of A.1 found");
}

#[test]
fn field_agrees_with_reed_solomon_simd_tables() {
    // The crate's log/exp work on symbols directly: its log[v] is our log φ(v).
    let t = reed_solomon_simd::engine::tables::get_exp_log();
    let f = field();
    for v in 1..1usize << 16 {
        assert_eq!(
            t.log[v] as usize, f.log[f.phi[v] as usize] as usize,
            "log of {v:04X}"
        );
    }
}

#[test]
fn worked_example_in_appendix_a2() {
    let f = field();
    // Vector A, symbol 0: points of Z = positions 5, 6, 7.
    let zeros: Vec<u16> = [5, 6, 7].iter().map(|&p| f.phi[p]).collect();
    // Lagrange basis L_s(x) over Z plus the survivors' points.
    let basis = |x: u16, survivors: &[u16], s: u16| -> u16 {
        zeros
            .iter()
            .chain(survivors)
            .filter(|&&q| q != s)
            .fold(1, |l, &q| f.mul(l, f.div(x ^ q, s ^ q)))
    };
    let step = |x_pos: usize, rows: &[(usize, u16, u16, u16, u16)], want: (u16, u16)| {
        let x = f.phi[x_pos];
        let pts: Vec<u16> = rows.iter().map(|r| f.phi[r.0]).collect();
        let mut y = 0;
        for &(pos, sym, elem, l, prod) in rows {
            assert_eq!(f.phi[sym as usize], elem, "φ({sym:04X})");
            assert_eq!(basis(x, &pts, f.phi[pos]), l, "L at position {pos}");
            assert_eq!(f.mul(l, elem), prod);
            y ^= prod;
        }
        assert_eq!((y, f.phi_inv[y as usize]), want);
    };
    // Encoding parity 0 (position 0) from the originals at positions 2, 3, 4.
    step(
        0,
        &[
            (2, 0x2000, 0xFB34, 0xACCB, 0x6B26),
            (3, 0x6040, 0x9540, 0xACCA, 0x7249),
            (4, 0xA080, 0x2238, 0x3C0F, 0x8704),
        ],
        (0x9E6B, 0xF13B),
    );
    // Decoding original 0 (position 2) from original 1 and both parity shards.
    step(
        2,
        &[
            (3, 0x6040, 0x9540, 0xBAF5, 0x7B17),
            (0, 0xF13B, 0x9E6B, 0x2A30, 0xF832),
            (1, 0x11FB, 0xD227, 0x90C4, 0x7811),
        ],
        (0xFB34, 0x2000),
    );
}

#[test]
fn appendix_vectors_are_the_library_parity_and_decode_from_any_k_shards() {
    let f = field();
    let vectors = appendix_vectors();
    let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C", "D"]);
    let stream = xorshift32_bytes(5 * 64);
    for v in &vectors {
        let Code { k, m, .. } = v.code;
        let (originals, parity) = v.shards.split_at(k);
        let generated: Vec<u8> = if v.name == "A" {
            (0..k * 64).map(|n| n as u8).collect()
        } else {
            stream[..k * 64].to_vec()
        };
        assert_eq!(
            originals.concat(),
            generated,
            "vector {}: originals",
            v.name
        );
        assert_eq!(
            reed_solomon_simd::encode(k, m, originals).unwrap(),
            parity,
            "vector {}: FORMAT.md's parity is not what reed-solomon-simd produces",
            v.name
        );
        assert_eq!(encode(f, v.code, originals), parity, "vector {}", v.name);
        // Every choice of m lost shards is rebuilt from the k others.
        for lost in subsets(k + m, m) {
            let shards: Vec<Option<&[u8]>> = (0..k + m)
                .map(|i| (!lost.contains(&i)).then_some(&v.shards[i][..]))
                .collect();
            let got = decode(f, v.code, &shards, &lost, 0..32);
            for (t, g) in lost.iter().zip(&got) {
                assert_eq!(
                    g, &v.shards[*t],
                    "vector {} lost {lost:?}: shard {t}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn skipping_the_symbol_mapping_gives_other_parity() {
    // FORMAT.md warns that φ is not the identity; a decoder without it must not pass A.3.
    let identity: [u16; 16] = std::array::from_fn(|i| 1 << i);
    let plain = Field::new(&identity);
    for v in appendix_vectors() {
        let (originals, parity) = v.shards.split_at(v.code.k);
        assert_ne!(
            encode(&plain, v.code, originals),
            parity,
            "vector {}",
            v.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (b) The definition is reed-solomon-simd's code, in both shapes and at our sizes.

/// Parity of `originals` from reed-solomon-simd's high-rate or low-rate engine, forced.
fn engine_parity(high: bool, k: usize, m: usize, originals: &[Vec<u8>]) -> Vec<Vec<u8>> {
    use reed_solomon_simd::engine::DefaultEngine;
    use reed_solomon_simd::rate::{HighRateEncoder, LowRateEncoder, RateEncoder};
    fn run<E: RateEncoder<DefaultEngine>>(mut e: E, originals: &[Vec<u8>]) -> Vec<Vec<u8>> {
        for o in originals {
            e.add_original_shard(o).unwrap();
        }
        let result = e.encode().unwrap();
        result.recovery_iter().map(<[u8]>::to_vec).collect()
    }
    let bytes = originals[0].len();
    if high {
        run(
            HighRateEncoder::new(k, m, bytes, DefaultEngine::new(), None).unwrap(),
            originals,
        )
    } else {
        run(
            LowRateEncoder::new(k, m, bytes, DefaultEngine::new(), None).unwrap(),
            originals,
        )
    }
}

#[test]
fn both_shapes_are_the_library_engines_and_agree_at_equal_powers() {
    let f = field();
    let mut rng = Rng(2);
    for (k, m) in [
        (3, 2),
        (5, 3),
        (9, 2),
        (100, 13),
        (2, 5),
        (5, 9),
        (4, 3),
        (3, 4),
        (1, 1),
        (7, 7),
        (8, 5),
        (5, 8),
        (33, 60),
    ] {
        let originals: Vec<Vec<u8>> = (0..k).map(|_| rng.bytes(128)).collect();
        let high = engine_parity(true, k, m, &originals);
        let low = engine_parity(false, k, m, &originals);
        assert_eq!(encode(f, Code { k, m, high: true }, &originals), high);
        assert_eq!(encode(f, Code { k, m, high: false }, &originals), low);
        let same_power = k.next_power_of_two() == m.next_power_of_two();
        assert_eq!(high == low, same_power, "k={k} m={m}");
        assert_eq!(
            reed_solomon_simd::encode(k, m, &originals).unwrap(),
            encode(f, Code::new(k, m), &originals),
            "k={k} m={m}: FORMAT.md's shape rule"
        );
    }
}

/// Encodes random originals with reed-solomon-simd, loses exactly m shards (at most `check` of
/// which are rebuilt and compared, on `symbols`), and decodes them with the naive decoder.
fn lose_m_and_decode(rng: &mut Rng, k: usize, m: usize, check: usize, symbols: Range<usize>) {
    let f = field();
    let originals: Vec<Vec<u8>> = (0..k).map(|_| rng.bytes(128)).collect();
    let parity = reed_solomon_simd::encode(k, m, &originals).unwrap();
    let all: Vec<&[u8]> = originals.iter().chain(&parity).map(Vec::as_slice).collect();
    let lost = rng.pick(&(0..k + m).collect::<Vec<_>>(), m);
    let shards: Vec<Option<&[u8]>> = (0..k + m)
        .map(|i| (!lost.contains(&i)).then_some(all[i]))
        .collect();
    // Rebuild originals and (up to a quarter of the sample) parity.
    let (mut lost_o, mut lost_p): (Vec<usize>, Vec<usize>) = lost.iter().partition(|&&i| i < k);
    lost_p.truncate(check / 4);
    lost_o.truncate(check - lost_p.len());
    let want: Vec<usize> = lost_o.into_iter().chain(lost_p).collect();
    let got = decode(f, Code::new(k, m), &shards, &want, symbols.clone());
    let bytes = 64 * (symbols.start / 32)..64 * symbols.end.div_ceil(32);
    for (t, g) in want.iter().zip(&got) {
        assert_eq!(
            g[bytes.clone()],
            all[*t][bytes.clone()],
            "k={k} m={m} ({}): shard {t}",
            if Code::new(k, m).high { "high" } else { "low" }
        );
    }
}

#[test]
fn random_small_codes_of_both_shapes_decode() {
    let mut rng = Rng(3);
    for _ in 0..12 {
        // High rate, parity ≈ 13 %.
        let k = 1 + rng.index(3000);
        let m = 1 + k * 13 / 100 + rng.index(8);
        assert!(Code::new(k, m).high);
        lose_m_and_decode(&mut rng, k, m, 24, 0..64);
    }
    for _ in 0..8 {
        // Low rate: m's power of two above k's.
        let k = 1 + rng.index(600);
        let m = 2 * k.next_power_of_two() - 1 + rng.index(3 * k + 1);
        assert!(!Code::new(k, m).high);
        lose_m_and_decode(&mut rng, k, m, 24, 0..64);
    }
}

#[test]
fn codes_at_our_sizes_decode() {
    let mut rng = Rng(4);
    // k = 8192 and m = 1071 is `-r 10` at full size; 7501/751 and 8190/1071 are other geometries
    // the writer makes; 9000 and 20000 go past k_max; 1000/60000 is low rate near the codec limit.
    for (k, m) in [
        (8192, 1071),
        (8190, 1071),
        (7501, 751),
        (9000, 1180),
        (20_000, 2600),
        (1000, 60_000),
    ] {
        lose_m_and_decode(&mut rng, k, m, 12, 32..64);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) A stripe of a real image, decoded from its sectors.

const SS: usize = 2048;

/// FEC geometry as read from a metadata sector (FORMAT.md §3.2).
#[derive(Debug)]
struct Geometry {
    /// Protected sectors: LBAs [0, D).
    d: u64,
    /// Stripes = row length.
    s: u64,
    k: u64,
    m: u64,
    /// Checksum-table sectors.
    t: u64,
    /// Rotation key K.
    key: u64,
}

/// Reads the geometry from the last valid metadata sector of `img` (§3.2, §3.3 "Locate").
fn read_geometry(img: &[u8]) -> Geometry {
    let u64_at = |s: &[u8], o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap());
    let u32_at = |s: &[u8], o: usize| u32::from_le_bytes(s[o..o + 4].try_into().unwrap());
    for lba in (0..img.len() / SS).rev() {
        let s = &img[lba * SS..(lba + 1) * SS];
        if &s[..8] != b"BDARCFEC" || crc32c::crc32c(&s[..2044]) != u32_at(s, 2044) {
            continue;
        }
        assert_eq!(u16::from_le_bytes([s[8], s[9]]), 2, "FEC version");
        let g = Geometry {
            d: u64_at(s, 16),
            s: u64_at(s, 24),
            k: u32_at(s, 32) as u64,
            m: u32_at(s, 36) as u64,
            t: u64_at(s, 48),
            key: u64_at(s, 56),
        };
        assert_eq!(g.k, g.d.div_ceil(g.s));
        assert_eq!(lba as u64 - u64_at(s, 72), g.d, "region starts at LBA D");
        return g;
    }
    panic!("no FEC metadata sector in the image");
}

/// FORMAT.md §3.1 stripe membership, written from the text alone — the one place to change
/// when the mapping changes: row x is rotated by ρ(x); stripe j's original r is at LBA
/// r·S + ((j − ρ(r)) mod S) (`None`: ≥ D, a virtual zero shard), its parity p in parity row p at
/// column (j − ρ(k + p)) mod S, rows 0 … ⌊m/2⌋−1 from region offset A₀, the rest from A₁.
fn stripe_lbas(g: &Geometry, j: u64) -> (Vec<Option<u64>>, Vec<u64>) {
    let mix64 = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let rho = |x: u64| {
        mix64(
            g.key
                .wrapping_add((x + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        ) % g.s
    };
    let col = |x: u64| (j + g.s - rho(x)) % g.s;
    let align = |o: u64| (g.d + o).next_multiple_of(32) - g.d;
    let st = g.t.div_ceil(4096);
    let half = g.t.div_ceil(st) * st;
    let m1 = g.m / 2;
    let a0 = align(1 + g.t);
    let a1 = align(a0 + m1 * g.s + 1 + half);
    let originals = (0..g.k)
        .map(|r| Some(r * g.s + col(r)).filter(|&lba| lba < g.d))
        .collect();
    let parity = (0..g.m)
        .map(|p| {
            let (base, row) = if p < m1 { (a0, p) } else { (a1, p - m1) };
            g.d + base + row * g.s + col(g.k + p)
        })
        .collect();
    (originals, parity)
}

/// A tree of ~18 MB of noise plus small files, so the image has several stripes.
fn make_tree(root: &Path) {
    let mut rng = Rng(5);
    for i in 0..3 {
        let dir = root.join(format!("raw{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shot.raw"), rng.bytes(6_000_000)).unwrap();
        std::fs::write(dir.join("note.txt"), format!("note {i}\n").repeat(100)).unwrap();
    }
}

fn create_image(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    make_tree(&src);
    let out = dir.join("out");
    expect_code(&create(&src, &out, "rsspec", &["-b", "64M", "-y", "-q"]), 0);
    let mut images = images(&out);
    assert_eq!(images.len(), 1, "{images:?}");
    images.pop().unwrap()
}

#[test]
fn a_stripe_of_a_real_image_decodes_with_the_naive_decoder() {
    let dir = tmp();
    let pristine = std::fs::read(create_image(dir.path())).unwrap();
    let g = read_geometry(&pristine);
    assert!(g.s >= 2, "want several stripes: {g:?}");
    let code = Code::new(g.k as usize, g.m as usize);
    assert!(code.high, "-r 10 stripes are high rate: {g:?}");

    // The last stripe: offset j = S − 1 exercises the stride, and it has virtual shards when
    // S does not divide D.
    let j = g.s - 1;
    let (originals, parity) = stripe_lbas(&g, j);
    let lbas: Vec<Option<u64>> = originals
        .into_iter()
        .chain(parity.into_iter().map(Some))
        .collect();
    // Erase m stored shards (virtual ones are known zeros): the filesystem sector at LBA j, a
    // parity sector, and random others.
    let stored: Vec<usize> = (0..lbas.len()).filter(|&i| lbas[i].is_some()).collect();
    let mut rng = Rng(6);
    let mut lost = vec![0, g.k as usize];
    let others: Vec<usize> = stored
        .iter()
        .copied()
        .filter(|i| !lost.contains(i))
        .collect();
    lost.extend(rng.pick(&others, g.m as usize - 2));
    let mut img = pristine.clone();
    for &i in &lost {
        let lba = lbas[i].unwrap() as usize;
        img[lba * SS..(lba + 1) * SS].fill(0);
    }

    let zero = [0u8; SS];
    let shards: Vec<Option<&[u8]>> = (0..lbas.len())
        .map(|i| match lbas[i] {
            _ if lost.contains(&i) => None,
            Some(lba) => Some(&img[lba as usize * SS..(lba as usize + 1) * SS]),
            None => Some(&zero[..]),
        })
        .collect();
    let sector = |i: usize| {
        let lba = lbas[i].unwrap() as usize;
        &pristine[lba * SS..(lba + 1) * SS]
    };
    // Whole sectors for a dozen lost shards (LBA j and the parity sector among them), the first
    // 64-byte block for every other lost shard.
    let (whole, rest) = lost.split_at(12);
    let got = decode(field(), code, &shards, whole, 0..SS / 2);
    for (&t, g) in whole.iter().zip(&got) {
        assert!(g[..] == sector(t)[..], "shard {t} at LBA {:?}", lbas[t]);
    }
    let got = decode(field(), code, &shards, rest, 0..32);
    for (&t, g) in rest.iter().zip(&got) {
        assert!(g[..64] == sector(t)[..64], "shard {t} at LBA {:?}", lbas[t]);
    }
}

/// Bytes of successive xorshift32 states from x = 1 (FORMAT.md appendix A.3/A.4 originals).
fn xorshift32_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn full_size_stripe_matches_appendix_a4() {
    let mut lines = appendix_blocks().into_iter().flatten();
    let header: Vec<&str> = lines
        .find(|l| l.starts_with("full "))
        .expect("A.4 header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["full", "k=8192", "m=1071", "shard_bytes=2048"]);
    let (k, m) = (8192, 1071);
    let stream = xorshift32_bytes(k * 2048);
    let mut want_crc = Vec::new();
    for line in lines {
        let tok: Vec<&str> = line.split_whitespace().collect();
        match tok.as_slice() {
            ["crc32c", "originals", "=", crc] => {
                assert_eq!(
                    crc32c::crc32c(&stream),
                    u32::from_str_radix(crc, 16).unwrap()
                );
            }
            ["crc32c", "parity", p, "=", crc] => want_crc.push((
                p.parse::<usize>().unwrap(),
                u32::from_str_radix(crc, 16).unwrap(),
            )),
            _ => {}
        }
    }
    assert_eq!(want_crc.len(), 3, "A.4 lists three parity CRCs");
    let originals: Vec<Vec<u8>> = stream.chunks(2048).map(<[u8]>::to_vec).collect();
    let parity = reed_solomon_simd::encode(k, m, &originals).unwrap();
    let mut shards: Vec<Option<&[u8]>> = originals.iter().map(|o| Some(&o[..])).collect();
    shards.resize(k + m, None);
    let want: Vec<usize> = want_crc.iter().map(|&(p, _)| k + p).collect();
    let got = decode(field(), Code::new(k, m), &shards, &want, 0..1024);
    for ((p, crc), g) in want_crc.into_iter().zip(&got) {
        assert_eq!(crc32c::crc32c(&parity[p]), crc, "library parity {p}");
        assert_eq!(crc32c::crc32c(g), crc, "naive parity {p}");
    }
}
