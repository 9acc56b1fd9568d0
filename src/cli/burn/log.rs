//! OUT/burn-log.json: which discs were burned and verified, so the `--start N` hint is right
//! after a failure or Ctrl+C, and a repeated `burn` says which discs are already done.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::load::Cancelled;
use bd_archive::restore::verify::Health;
use bd_archive::util::interrupt::Interrupted;

/// Name of the burn log in OUT.
pub const BURN_LOG: &str = "burn-log.json";

/// One disc's last burn attempt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BurnAttempt {
    pub disc: u32,
    pub image: String,
    /// "ok", "repairable" (burned, read-back found repairable damage), "failed" (the disc was
    /// written and is unusable), "refused" (nothing written: wrong medium, too small, no disc),
    /// "cancelled".
    pub status: String,
    pub drive: String,
    pub finished_unix: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// OUT/burn-log.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BurnLog {
    pub discs: Vec<BurnAttempt>,
}

impl BurnLog {
    pub(super) fn load(out: &Path) -> BurnLog {
        std::fs::read_to_string(out.join(BURN_LOG))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub(super) fn save(&self, out: &Path) -> Result<()> {
        let path = out.join(BURN_LOG);
        let tmp = out.join(format!("{BURN_LOG}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    pub(super) fn record(&mut self, r: BurnAttempt) {
        self.discs.retain(|d| d.disc != r.disc);
        self.discs.push(r);
        self.discs.sort_by_key(|d| d.disc);
    }

    pub(super) fn done(&self, disc: u32) -> bool {
        self.discs
            .iter()
            .any(|d| d.disc == disc && (d.status == "ok" || d.status == "repairable"))
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The burn log's record of one disc's attempt.
pub(super) fn attempt_of(
    result: &Result<Health>,
    wrote: bool,
    num: u32,
    path: &Path,
    drive_name: &str,
) -> BurnAttempt {
    let (status, message) = match result {
        Ok(Health::Ok) => ("ok", None),
        Ok(Health::Repairable) => ("repairable", None),
        Ok(Health::Broken) => ("failed", Some("read-back check: not repairable".into())),
        Err(e)
            if e.downcast_ref::<Cancelled>().is_some()
                || e.downcast_ref::<Interrupted>().is_some() =>
        {
            ("cancelled", None)
        }
        // Refused before anything was written (wrong medium, too small, no disc).
        Err(e) if !wrote => ("refused", Some(format!("{e:#}"))),
        Err(e) => ("failed", Some(format!("{e:#}"))),
    };
    BurnAttempt {
        disc: num,
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        status: status.into(),
        drive: drive_name.to_string(),
        finished_unix: now_unix(),
        message,
    }
}
