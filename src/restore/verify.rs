//! `verify`'s health report: what a disc or a set of discs looks like to the FEC.

use serde::Serialize;

/// Health of one image (or of a set: the worst of its discs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Every sector matches its checksum.
    Ok,
    /// Damaged, and the FEC can rebuild everything.
    Repairable,
    /// Damaged beyond what the FEC can rebuild.
    Broken,
}
