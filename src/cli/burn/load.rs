//! Getting a blank BD-R into the drive: the insert prompt (or `-y` without one), the wait until
//! the disc is ready, and the check that it is a blank BD-R.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cli::args::BurnArgs;
use crate::cli::Ui;
use bd_archive::optical::burn::{check_blank_bd_r, identify, MediumInfo};
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::{Mmc, Readiness};

/// How long to wait for a loaded disc to become ready.
const LOAD_WAIT: Duration = Duration::from_secs(120);

/// The user pressed `q` at a prompt.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub(super) struct Cancelled;

/// Gets a blank disc into the drive and identifies it.
pub(super) fn load_blank(
    d: &mut dyn Drive,
    args: &BurnArgs,
    ui: &Ui,
    num: u32,
    last: u32,
) -> Result<MediumInfo> {
    let interactive = std::io::stdin().is_terminal();
    if args.yes && medium_ready(d)? {
        return Ok(identify(d)?);
    }
    if !interactive {
        if !args.yes {
            bail!(
                "disc {num}/{last}: inserting a disc needs a prompt but there is no terminal; put a blank BD-R in the drive and pass -y"
            );
        }
        // -y without a terminal: close the tray (it may hold the disc) and wait for it.
        let _ = d.tray(false);
        if !d.wait_ready(LOAD_WAIT)? {
            bail!(
                "disc {num}/{last}: no disc in {} (insert a blank BD-R)",
                d.name()
            );
        }
        return Ok(identify(d)?);
    }
    loop {
        let _ = d.tray(true);
        eprint!(
            "Insert a blank BD-R for disc {num}/{last} into {} and press Enter (q = cancel): ",
            d.name()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(Cancelled.into());
        }
        if line.trim().eq_ignore_ascii_case("q") {
            return Err(Cancelled.into());
        }
        let _ = d.tray(false);
        if !d.wait_ready(LOAD_WAIT)? {
            ui.warn("no disc detected");
            continue;
        }
        let info = identify(d)?;
        match check_blank_bd_r(&info) {
            Ok(_) => return Ok(info),
            Err(e) => ui.warn(&format!("{e}")),
        }
    }
}

/// Whether a medium is loaded and ready (waits while it is becoming ready).
fn medium_ready(d: &mut dyn Drive) -> Result<bool> {
    Ok(match d.readiness()? {
        Readiness::Ready => true,
        Readiness::NoMedium => false,
        Readiness::NotYet => d.wait_ready(LOAD_WAIT)?,
    })
}
