//! PAR 2.0 reader, verifier and repairer (pure Rust), for the recovery files beside each seed slice
//! (`<slice>.par2` + `<slice>.volNN+MM.par2`, made by `par2 create -r5 -n1`).
//!
//! Packets: a 64-byte header (magic `PAR2\0PKT`, length, MD5 of the rest of the packet, recovery
//! set id, type) and a body. Used types: Main (slice size, file ids), FileDesc (id, MD5s, length,
//! name), IFSC (per-block MD5 + CRC32), RecvSlic (exponent + recovery block), Creator (ignored).
//!
//! Recovery: Reed–Solomon over GF(2^16) (polynomial 0x1100B). Input block `i` (blocks of all files,
//! in the Main packet's file order, last block of a file zero-padded) has constant
//! `c_i = 2^(n_i)`, `n_i` the i-th integer ≥ 1 coprime to 65535. Recovery block with exponent `e`
//! = Σ c_i^e · d_i, over 16-bit little-endian words. Lost blocks are found by IFSC checksums and
//! solved from as many recovery blocks by Gauss–Jordan elimination.
//! Damage is assumed in place (sector errors): blocks that moved are not searched for.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use md5::{Digest, Md5};

/// Errors of the par2 module.
#[derive(Debug, thiserror::Error)]
pub enum Par2Error {
    /// I/O error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Malformed or inconsistent par2 data.
    #[error("malformed par2 data: {0}")]
    Format(String),
    /// Not enough recovery blocks.
    #[error("not repairable: {lost} damaged block(s), {avail} recovery block(s) available")]
    NotRepairable {
        /// Damaged blocks.
        lost: usize,
        /// Usable recovery blocks.
        avail: usize,
    },
}

type Result<T> = std::result::Result<T, Par2Error>;

const MAGIC: &[u8; 8] = b"PAR2\0PKT";
const T_MAIN: &[u8; 16] = b"PAR 2.0\0Main\0\0\0\0";
const T_FILEDESC: &[u8; 16] = b"PAR 2.0\0FileDesc";
const T_IFSC: &[u8; 16] = b"PAR 2.0\0IFSC\0\0\0\0";
const T_RECV: &[u8; 16] = b"PAR 2.0\0RecvSlic";
/// Largest non-recovery packet accepted (an IFSC of 2^20 blocks is 20 MiB).
const MAX_META_PACKET: u64 = 64 << 20;
/// Largest block size accepted.
const MAX_SLICE_SIZE: u64 = 1 << 30;
/// Largest number of lost blocks solved at once (matrix is k×k).
const MAX_LOST: usize = 4096;

/// One protected file.
#[derive(Clone, Debug)]
pub struct Par2File {
    /// File id.
    pub id: [u8; 16],
    /// Name as recorded (a plain file name; anything with '/' is refused).
    pub name: String,
    /// Length in bytes.
    pub length: u64,
    /// MD5 of the whole file.
    pub md5: [u8; 16],
    /// Per-block (MD5, CRC32), when the IFSC packet was found.
    pub blocks: Vec<([u8; 16], u32)>,
}

/// Where a recovery block lies.
#[derive(Clone, Debug)]
struct RecoveryRef {
    exponent: u32,
    path: PathBuf,
    offset: u64,
}

/// A recovery set read from one or more .par2 files.
#[derive(Debug)]
pub struct Par2Set {
    /// Block size.
    pub slice_size: u64,
    /// Protected files, in recovery-set order.
    pub files: Vec<Par2File>,
    recovery: Vec<RecoveryRef>,
}

/// Result of checking the protected files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Par2Status {
    /// All files intact.
    Ok,
    /// Damaged blocks, but enough recovery blocks.
    Repairable {
        /// Damaged blocks.
        damaged: usize,
        /// Recovery blocks available.
        available: usize,
    },
    /// More damage than recovery blocks (or metadata missing).
    Broken {
        /// Damaged blocks.
        damaged: usize,
        /// Recovery blocks available.
        available: usize,
    },
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// CRC-32 (IEEE 802.3, reflected, as zip/PAR2 use).
pub fn crc32(data: &[u8]) -> u32 {
    static T: OnceLock<[u32; 256]> = OnceLock::new();
    let t = T.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

struct Packet {
    set_id: [u8; 16],
    ptype: [u8; 16],
    /// Body for metadata packets; for recovery packets only the exponent (4 bytes).
    body: Vec<u8>,
    /// Offset of the body in its file.
    body_offset: u64,
}

/// Reads every valid packet of one par2 stream; damaged packets are skipped by searching for the
/// next magic. Recovery packet bodies are hashed but not kept.
fn scan_packets<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<Packet>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut hdr = [0u8; 64];
    while pos + 64 <= len {
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(&mut hdr)?;
        if &hdr[..8] != MAGIC {
            // Resynchronise: find the next magic within the next 1 MiB.
            let win = (len - pos).min(1 << 20) as usize;
            let mut buf = vec![0u8; win];
            r.seek(SeekFrom::Start(pos))?;
            r.read_exact(&mut buf)?;
            match buf[1..].windows(8).position(|w| w == MAGIC) {
                Some(p) => pos += 1 + p as u64,
                None => pos += (win.saturating_sub(7)).max(1) as u64,
            }
            continue;
        }
        let plen = u64::from_le_bytes(hdr[8..16].try_into().unwrap_or([0; 8]));
        if plen < 64 || plen % 4 != 0 || plen > len - pos {
            pos += 4;
            continue;
        }
        let mut want = [0u8; 16];
        want.copy_from_slice(&hdr[16..32]);
        let mut set_id = [0u8; 16];
        set_id.copy_from_slice(&hdr[32..48]);
        let mut ptype = [0u8; 16];
        ptype.copy_from_slice(&hdr[48..64]);
        let blen = plen - 64;
        let mut h = Md5::new();
        h.update(&hdr[32..64]);
        let is_recv = &ptype == T_RECV;
        if !is_recv && blen > MAX_META_PACKET {
            pos += 4;
            continue;
        }
        let mut body = Vec::new();
        if is_recv {
            let mut left = blen;
            let mut buf = vec![0u8; 1 << 20];
            let mut first = true;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                r.read_exact(&mut buf[..n])?;
                if first {
                    body.extend_from_slice(&buf[..n.min(4)]);
                    first = false;
                }
                h.update(&buf[..n]);
                left -= n as u64;
            }
        } else {
            body = vec![0u8; blen as usize];
            r.read_exact(&mut body)?;
            h.update(&body);
        }
        let got: [u8; 16] = h.finalize().into();
        if got != want {
            pos += 4; // damaged packet: look for the next one
            continue;
        }
        out.push(Packet {
            set_id,
            ptype,
            body,
            body_offset: pos + 64,
        });
        pos += plen;
    }
    Ok(out)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn id16(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}

impl Par2Set {
    /// Reads the recovery set from the given par2 files (index and volumes; any order).
    pub fn load(paths: &[PathBuf]) -> Result<Par2Set> {
        let mut all = Vec::new();
        for p in paths {
            let mut f = File::open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            let len = f.metadata()?.len();
            for pk in scan_packets(&mut f, len)? {
                all.push((p.clone(), pk));
            }
        }
        Self::from_packets(all)
    }

    fn from_packets(all: Vec<(PathBuf, Packet)>) -> Result<Par2Set> {
        let main = all
            .iter()
            .find(|(_, p)| &p.ptype == T_MAIN)
            .ok_or_else(|| Par2Error::Format("no intact main packet".into()))?;
        let set_id = main.1.set_id;
        let mb = &main.1.body;
        let slice_size =
            le64(mb, 0).ok_or_else(|| Par2Error::Format("short main packet".into()))?;
        let nfiles = le32(mb, 8).ok_or_else(|| Par2Error::Format("short main packet".into()))?;
        if slice_size == 0 || slice_size % 4 != 0 || slice_size > MAX_SLICE_SIZE {
            return Err(Par2Error::Format(format!("bad block size {slice_size}")));
        }
        if (nfiles as usize).saturating_mul(16) > mb.len().saturating_sub(12) {
            return Err(Par2Error::Format(
                "main packet lists more files than it holds".into(),
            ));
        }
        let ids: Vec<[u8; 16]> = (0..nfiles as usize)
            .filter_map(|i| id16(mb, 12 + 16 * i))
            .collect();
        let mut descs: HashMap<[u8; 16], Par2File> = HashMap::new();
        let mut ifsc: HashMap<[u8; 16], Vec<([u8; 16], u32)>> = HashMap::new();
        let mut recovery = Vec::new();
        let mut seen_exp = std::collections::HashSet::new();
        for (path, p) in &all {
            if p.set_id != set_id {
                continue;
            }
            let b = &p.body;
            if &p.ptype == T_FILEDESC {
                let (Some(id), Some(md5), Some(length)) = (id16(b, 0), id16(b, 16), le64(b, 48))
                else {
                    continue;
                };
                let raw = &b[56.min(b.len())..];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                let name = String::from_utf8_lossy(&raw[..end]).into_owned();
                descs.insert(
                    id,
                    Par2File {
                        id,
                        name,
                        length,
                        md5,
                        blocks: Vec::new(),
                    },
                );
            } else if &p.ptype == T_IFSC {
                let Some(id) = id16(b, 0) else { continue };
                let v = b[16..]
                    .chunks_exact(20)
                    .filter_map(|c| Some((id16(c, 0)?, le32(c, 16)?)))
                    .collect();
                ifsc.insert(id, v);
            } else if &p.ptype == T_RECV {
                let Some(e) = le32(b, 0) else { continue };
                if seen_exp.insert(e) {
                    recovery.push(RecoveryRef {
                        exponent: e,
                        path: path.clone(),
                        offset: p.body_offset + 4,
                    });
                }
            }
        }
        let mut files = Vec::new();
        for id in ids {
            let mut f = descs
                .remove(&id)
                .ok_or_else(|| Par2Error::Format("file description packet missing".into()))?;
            let nblocks = f.length.div_ceil(slice_size);
            let bl = ifsc
                .remove(&id)
                .ok_or_else(|| Par2Error::Format("block checksum packet missing".into()))?;
            if bl.len() as u64 != nblocks {
                return Err(Par2Error::Format("block checksum count mismatch".into()));
            }
            if f.name.contains('/') || f.name.is_empty() || f.name == ".." {
                return Err(Par2Error::Format(format!("unsafe file name {:?}", f.name)));
            }
            f.blocks = bl;
            files.push(f);
        }
        Ok(Par2Set {
            slice_size,
            files,
            recovery,
        })
    }

    /// Recovery blocks available.
    pub fn recovery_count(&self) -> usize {
        self.recovery.len()
    }

    /// Global index of each damaged block, files looked up in `dir` by their recorded names.
    pub fn damaged_blocks(&self, dir: &Path) -> Result<Vec<usize>> {
        let mut bad = Vec::new();
        let mut base = 0usize;
        let mut buf = vec![0u8; self.slice_size as usize];
        for f in &self.files {
            let file = File::open(dir.join(&f.name)).ok();
            let flen = file
                .as_ref()
                .and_then(|x| x.metadata().ok())
                .map(|m| m.len())
                .unwrap_or(0);
            for (i, (md5w, crcw)) in f.blocks.iter().enumerate() {
                let off = i as u64 * self.slice_size;
                let n = (f.length - off).min(self.slice_size) as usize;
                let ok = match &file {
                    Some(file) if flen >= off + n as u64 => {
                        buf.fill(0);
                        file.read_exact_at(&mut buf[..n], off).is_ok()
                            && crc32(&buf) == *crcw
                            && md5(&buf) == *md5w
                    }
                    _ => false,
                };
                if !ok {
                    bad.push(base + i);
                }
            }
            if flen != f.length && !bad.iter().any(|&b| b >= base) {
                // Extra trailing bytes only: data intact, the file just needs truncation.
                bad.push(base + f.blocks.len().saturating_sub(1));
            }
            base += f.blocks.len();
        }
        Ok(bad)
    }

    /// Damaged byte ranges `[start, end)` of the file named `name` (in `dir`).
    pub fn damaged_ranges(&self, dir: &Path, name: &str) -> Result<Vec<(u64, u64)>> {
        let bad = self.damaged_blocks(dir)?;
        let mut base = 0usize;
        let mut out = Vec::new();
        for f in &self.files {
            let n = f.blocks.len();
            if f.name == name {
                for &b in bad.iter().filter(|&&b| b >= base && b < base + n) {
                    let s = (b - base) as u64 * self.slice_size;
                    out.push((s, (s + self.slice_size).min(f.length)));
                }
            }
            base += n;
        }
        Ok(out)
    }

    /// Checks the protected files in `dir`.
    pub fn verify(&self, dir: &Path) -> Result<Par2Status> {
        let bad = self.damaged_blocks(dir)?;
        let avail = self.recovery.len();
        Ok(if bad.is_empty() {
            Par2Status::Ok
        } else if bad.len() <= avail {
            Par2Status::Repairable {
                damaged: bad.len(),
                available: avail,
            }
        } else {
            Par2Status::Broken {
                damaged: bad.len(),
                available: avail,
            }
        })
    }

    /// Repairs the files of `dir`, writing each repaired file into `out_dir` under its name
    /// (`out_dir` may equal `dir`: a file is rewritten through a temporary name). Returns the
    /// names of files written. Checks the result against the recorded MD5.
    pub fn repair(&self, dir: &Path, out_dir: &Path) -> Result<Vec<String>> {
        self.repair_with_memory(dir, out_dir, REPAIR_MEMORY)
    }

    /// [`Par2Set::repair`] with an explicit memory budget for the solver (bytes, about): blocks
    /// are solved in stripes of `memory / (4 · lost blocks)` bytes each.
    pub fn repair_with_memory(
        &self,
        dir: &Path,
        out_dir: &Path,
        memory: usize,
    ) -> Result<Vec<String>> {
        let bad = self.damaged_blocks(dir)?;
        if bad.is_empty() {
            return Ok(Vec::new());
        }
        if bad.len() > self.recovery.len() || bad.len() > MAX_LOST {
            return Err(Par2Error::NotRepairable {
                lost: bad.len(),
                avail: self.recovery.len(),
            });
        }
        let total: usize = self.files.iter().map(|f| f.blocks.len()).sum();
        // Owner of every global block: (file index, block index in file).
        let mut owner = Vec::with_capacity(total);
        for (fi, f) in self.files.iter().enumerate() {
            for i in 0..f.blocks.len() {
                owner.push((fi, i));
            }
        }
        let job = RepairJob {
            set: self,
            recs: &self.recovery[..bad.len()],
            lost: bad.iter().copied().collect(),
            bad: &bad,
            owner,
            logs: input_logs(total),
        };
        // 1. Output files: intact blocks copied, lost ones zero for now.
        let mut outs = job.copy_intact(dir, out_dir)?;
        // 2. Matrix A[j][l] = c_{bad[l]}^{e_j}, inverted once.
        let inv = job.inverse()?;
        // 3. Solve stripe by stripe so memory stays near REPAIR_MEMORY whatever the block size.
        job.solve(dir, &outs, &inv, memory)?;
        // 4. Check every repaired file against its MD5, then put it in place.
        let mut written = Vec::new();
        let mut fis: Vec<usize> = outs.keys().copied().collect();
        fis.sort_unstable();
        for fi in fis {
            let f = &self.files[fi];
            let Some((out, tmp)) = outs.remove(&fi) else {
                continue;
            };
            out.sync_all()?;
            let got: [u8; 16] =
                crate::util::digest_read::digest_reader::<Md5>(File::open(&tmp)?)?.into();
            if got != f.md5 {
                let _ = std::fs::remove_file(&tmp);
                return Err(Par2Error::Format(format!(
                    "{}: repaired data does not match the recorded MD5",
                    f.name
                )));
            }
            std::fs::rename(&tmp, out_dir.join(&f.name))?;
            written.push(f.name.clone());
        }
        Ok(written)
    }
}

/// One repair: the lost blocks (global numbers, as many as recovery blocks used) and what
/// solving them needs.
struct RepairJob<'a> {
    set: &'a Par2Set,
    /// The lost blocks, ascending; `bad.len()` = `recs.len()` ≤ [`MAX_LOST`].
    bad: &'a [usize],
    /// The recovery blocks used: the first `bad.len()` of the set's.
    recs: &'a [RecoveryRef],
    /// `bad` as a set.
    lost: std::collections::HashSet<usize>,
    /// Owner of every global block: (file index, block index in file).
    owner: Vec<(usize, usize)>,
    /// log of every input block's constant (PAR2's c_i).
    logs: Vec<u32>,
}

/// Repaired files being written, by file index: the open temporary file and its path.
type RepairOutputs = HashMap<usize, (File, PathBuf)>;

impl RepairJob<'_> {
    /// Creates a temporary output file for each damaged file, with its intact blocks copied
    /// and its lost blocks zero for now.
    fn copy_intact(&self, dir: &Path, out_dir: &Path) -> Result<RepairOutputs> {
        let slice_size = self.set.slice_size;
        std::fs::create_dir_all(out_dir)?;
        let mut outs: RepairOutputs = HashMap::new();
        for &b in self.bad {
            let fi = self.owner[b].0;
            if outs.contains_key(&fi) {
                continue;
            }
            let f = &self.set.files[fi];
            let src = File::open(dir.join(&f.name)).ok();
            let tmp = out_dir.join(format!(".{}.par2-repair", f.name));
            let out = File::create(&tmp)?;
            out.set_len(f.length)?;
            let base = b - self.owner[b].1;
            let mut buf = vec![0u8; slice_size as usize];
            for i in 0..f.blocks.len() {
                if self.lost.contains(&(base + i)) {
                    continue;
                }
                let off = i as u64 * slice_size;
                let n = (f.length - off).min(slice_size) as usize;
                if let Some(s) = &src {
                    s.read_exact_at(&mut buf[..n], off)?;
                }
                out.write_all_at(&buf[..n], off)?;
            }
            outs.insert(fi, (out, tmp));
        }
        Ok(outs)
    }

    /// The inverse of A[j][l] = c_{bad[l]}^{e_j} (recovery block j, lost block l).
    fn inverse(&self) -> Result<Vec<Vec<u16>>> {
        let g = gf();
        let mut a: Vec<Vec<u16>> = self
            .recs
            .iter()
            .map(|r| {
                self.bad
                    .iter()
                    .map(|&b| g.exp(mul_log(self.logs[b], r.exponent)))
                    .collect()
            })
            .collect();
        g.invert(&mut a)
            .ok_or_else(|| Par2Error::Format("singular recovery matrix".into()))
    }

    /// Solves the lost blocks stripe by stripe (`memory / (4 · lost blocks)` bytes of each
    /// block at a time) and writes them into `outs`.
    fn solve(
        &self,
        dir: &Path,
        outs: &RepairOutputs,
        inv: &[Vec<u16>],
        memory: usize,
    ) -> Result<()> {
        let k = self.bad.len();
        let words = (self.set.slice_size / 2) as usize;
        let stripe = (memory / (4 * k)).clamp(1, words);
        let inputs: Vec<Option<File>> = self
            .set
            .files
            .iter()
            .map(|f| File::open(dir.join(&f.name)).ok())
            .collect();
        let rec_files: Vec<File> = self
            .recs
            .iter()
            .map(|r| File::open(&r.path))
            .collect::<io::Result<_>>()?;
        let mut raw = vec![0u8; stripe * 2];
        let mut w0 = 0usize;
        while w0 < words {
            let sw = stripe.min(words - w0);
            let syn = self.syndromes(&inputs, &rec_files, &mut raw, w0, sw)?;
            self.write_solved(outs, inv, &syn, w0, sw)?;
            w0 += sw;
        }
        Ok(())
    }

    /// The syndromes of words `w0..w0 + sw` of every block: each recovery block minus the
    /// contribution of the intact input blocks, which leaves A · (the lost blocks).
    fn syndromes(
        &self,
        inputs: &[Option<File>],
        rec_files: &[File],
        raw: &mut [u8],
        w0: usize,
        sw: usize,
    ) -> Result<Vec<Vec<u16>>> {
        let g = gf();
        let bytes = sw * 2;
        let boff = (w0 * 2) as u64;
        let mut syn: Vec<Vec<u16>> = Vec::with_capacity(self.bad.len());
        for (r, f) in self.recs.iter().zip(rec_files) {
            f.read_exact_at(&mut raw[..bytes], r.offset + boff)?;
            syn.push(to_words(&raw[..bytes]));
        }
        for (gi, &(fi, i)) in self.owner.iter().enumerate() {
            if self.lost.contains(&gi) {
                continue;
            }
            let f = &self.set.files[fi];
            let off = i as u64 * self.set.slice_size + boff;
            raw[..bytes].fill(0);
            if off < f.length {
                let n = (f.length - off).min(bytes as u64) as usize;
                if let Some(file) = &inputs[fi] {
                    file.read_exact_at(&mut raw[..n], off)?;
                }
            }
            let d = to_words(&raw[..bytes]);
            for (j, r) in self.recs.iter().enumerate() {
                g.mul_add(&mut syn[j], &d, mul_log(self.logs[gi], r.exponent));
            }
        }
        Ok(syn)
    }

    /// Solves words `w0..w0 + sw` of each lost block (`inv` · syndromes) and writes them into
    /// its output file (the part within the file's length).
    fn write_solved(
        &self,
        outs: &RepairOutputs,
        inv: &[Vec<u16>],
        syn: &[Vec<u16>],
        w0: usize,
        sw: usize,
    ) -> Result<()> {
        let g = gf();
        let bytes = sw * 2;
        let boff = (w0 * 2) as u64;
        for (l, &b) in self.bad.iter().enumerate() {
            let mut blk = vec![0u16; sw];
            for (j, s) in syn.iter().enumerate() {
                let c = inv[l][j];
                if c != 0 {
                    g.mul_add(&mut blk, s, g.log(c));
                }
            }
            let (fi, i) = self.owner[b];
            let f = &self.set.files[fi];
            let off = i as u64 * self.set.slice_size + boff;
            if off < f.length {
                let n = (f.length - off).min(bytes as u64) as usize;
                let data = from_words(&blk);
                if let Some((out, _)) = outs.get(&fi) {
                    out.write_all_at(&data[..n], off)?;
                }
            }
        }
        Ok(())
    }
}

/// Memory for syndromes and solved stripes during repair (bytes, about).
const REPAIR_MEMORY: usize = 256 << 20;

fn to_words(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn from_words(w: &[u16]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// log(c_i^e) = n_i * e mod 65535.
fn mul_log(log_c: u32, e: u32) -> u32 {
    ((u64::from(log_c) * u64::from(e)) % 65535) as u32
}

/// n_i for the first `count` input blocks: integers ≥ 1 coprime to 65535 = 3·5·17·257.
fn input_logs(count: usize) -> Vec<u32> {
    let mut v = Vec::with_capacity(count);
    let mut n = 0u32;
    while v.len() < count {
        n += 1;
        if n % 3 != 0 && n % 5 != 0 && n % 17 != 0 && n % 257 != 0 {
            v.push(n % 65535);
        }
    }
    v
}

/// GF(2^16) with polynomial x^16 + x^12 + x^3 + x + 1 (0x1100B), generator 2.
struct Gf {
    exp: Vec<u16>, // 2 * 65535 entries, so exp[a + b] needs no reduction
    log: Vec<u32>,
}

fn gf() -> &'static Gf {
    static G: OnceLock<Gf> = OnceLock::new();
    G.get_or_init(|| {
        let mut exp = vec![0u16; 2 * 65535];
        let mut log = vec![0u32; 65536];
        let mut x: u32 = 1;
        for (i, e) in exp.iter_mut().take(65535).enumerate() {
            *e = x as u16;
            log[x as usize] = i as u32;
            x <<= 1;
            if x & 0x10000 != 0 {
                x ^= 0x1100B;
            }
        }
        for i in 65535..2 * 65535 {
            exp[i] = exp[i - 65535];
        }
        Gf { exp, log }
    })
}

impl Gf {
    fn exp(&self, l: u32) -> u16 {
        self.exp[(l % 65535) as usize]
    }
    fn log(&self, v: u16) -> u32 {
        self.log[v as usize]
    }
    fn mul(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            0
        } else {
            self.exp[(self.log[a as usize] + self.log[b as usize]) as usize]
        }
    }
    /// acc ^= 2^lc · src, word by word.
    fn mul_add(&self, acc: &mut [u16], src: &[u16], lc: u32) {
        let lc = lc % 65535;
        for (a, &s) in acc.iter_mut().zip(src) {
            if s != 0 {
                *a ^= self.exp[(self.log[s as usize] + lc) as usize];
            }
        }
    }
    fn inv(&self, a: u16) -> u16 {
        self.exp[((65535 - self.log[a as usize]) % 65535) as usize]
    }
    /// Gauss–Jordan inverse of a square matrix; None if singular.
    fn invert(&self, a: &mut [Vec<u16>]) -> Option<Vec<Vec<u16>>> {
        let n = a.len();
        let mut inv: Vec<Vec<u16>> = (0..n)
            .map(|i| (0..n).map(|j| u16::from(i == j)).collect())
            .collect();
        for col in 0..n {
            let piv = (col..n).find(|&r| a[r][col] != 0)?;
            a.swap(col, piv);
            inv.swap(col, piv);
            let f = self.inv(a[col][col]);
            for j in 0..n {
                a[col][j] = self.mul(a[col][j], f);
                inv[col][j] = self.mul(inv[col][j], f);
            }
            for r in 0..n {
                if r != col && a[r][col] != 0 {
                    let m = a[r][col];
                    for j in 0..n {
                        let t = self.mul(m, a[col][j]);
                        a[r][j] ^= t;
                        let t = self.mul(m, inv[col][j]);
                        inv[r][j] ^= t;
                    }
                }
            }
        }
        Some(inv)
    }
}

/// Fuzz entry point: parses `data` as one par2 file. Never panics; memory bounded by input size
/// (metadata packets are only read when their declared length fits in the input).
pub fn fuzz_par2(data: &[u8]) {
    let mut c = io::Cursor::new(data);
    if let Ok(p) = scan_packets(&mut c, data.len() as u64) {
        let all = p.into_iter().map(|p| (PathBuf::new(), p)).collect();
        let _ = Par2Set::from_packets(all);
    }
}
