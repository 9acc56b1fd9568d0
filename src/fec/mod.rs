//! Reed–Solomon FEC. TEMPORARY STUB in main until the fec branch lands (same API).

/// Default redundancy.
pub const DEFAULT_REDUNDANCY_PCT: u32 = 10;

/// Layout.
#[derive(Clone, Debug, PartialEq)]
pub struct FecLayout {
    d: u64,
    f: u64,
}
impl FecLayout {
    /// D.
    pub fn protected_sectors(&self) -> u64 {
        self.d
    }
    /// F.
    pub fn region_sectors(&self) -> u64 {
        self.f
    }
    /// pct.
    pub fn redundancy_pct(&self) -> f64 {
        self.f as f64 * 100.0 / self.d.max(1) as f64
    }
}
/// Errors.
#[derive(Debug, thiserror::Error)]
pub enum FecError {
    /// Any.
    #[error("{0}")]
    Other(String),
}
/// Plan.
pub fn plan(d: u64, r: u32) -> Result<FecLayout, FecError> {
    Ok(FecLayout {
        d,
        f: (d * r as u64).div_ceil(100) + 2,
    })
}
/// Fill.
pub fn plan_fill(d: u64, avail: u64) -> Result<FecLayout, FecError> {
    Ok(FecLayout { d, f: avail.max(2) })
}
/// Max D.
pub fn max_protected(budget: u64, r: u32) -> u64 {
    let mut d = budget * 100 / (100 + r as u64);
    while d > 0 && d + plan(d, r).map(|l| l.f).unwrap_or(0) > budget {
        d -= 1;
    }
    d
}
/// Encode.
pub fn encode(
    _image: &std::fs::File,
    _layout: &FecLayout,
    _mem: u64,
    _progress: &(dyn Fn(u64) + Sync),
) -> Result<(), FecError> {
    Ok(())
}
