//! Between discs: eject, then ask for the next disc (or, without a terminal, let an autoloader
//! bring it).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use crate::cli::{explain, Ui};
use bd_archive::optical::drive::Drive;
use bd_archive::optical::mmc::Mmc;
use bd_archive::restore::drive::wait_for_disc;

/// What the user wants next while collecting discs.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NextDisc {
    /// A disc is in the drive (the user inserted one, or an autoloader did).
    Inserted,
    /// Stop collecting and restore what we have.
    Finish,
}

/// Ejects the disc and waits for the next one. On a terminal: asks (Enter = inserted, `e` =
/// restore now). Without one: closes the tray again (an autoloader or the simulated drive brings
/// the next disc) and reports whether a disc came back.
pub(super) fn next_disc(drive: &mut dyn Drive, still_needed: &str, ui: &Ui) -> Result<NextDisc> {
    let name = drive.name();
    let _ = drive.lock_tray(false);
    drive
        .tray(true)
        .with_context(|| format!("{name}: ejecting the disc"))?;
    if std::io::stdin().is_terminal() {
        eprint!(
            "{}\nInsert the next disc and press Enter (e or q = go on now with the discs read so far): ",
            bd_archive::util::escape::terminal_text(still_needed)
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0
            || line.trim().eq_ignore_ascii_case("e")
            || line.trim().eq_ignore_ascii_case("q")
        {
            return Ok(NextDisc::Finish);
        }
    } else {
        ui.say(&format!(
            "{still_needed} (no terminal: loading whatever disc the drive holds next)"
        ));
    }
    if let Err(e) = drive.tray(false) {
        // Slot-loading and laptop drives cannot pull the tray in: the user pushes it.
        ui.detail(&format!("{name}: closing the tray: {e}"));
    }
    Ok(if wait_for_disc(drive).map_err(explain::drive_read)? {
        NextDisc::Inserted
    } else {
        NextDisc::Finish
    })
}
