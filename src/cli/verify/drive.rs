//! `verify` of the disc in a drive (`-D`, `/dev/srN`, `--map`, `--retries`, `--read-speed`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::args::VerifyArgs;
use crate::cli::{explain, Ui};
use bd_archive::restore::verify::{verify_source, RepairTarget, VerifyReport};
use bd_archive::sector::SectorSource;

/// Verifies the disc in a drive: reads it defensively (trimming and skipping unreadable areas),
/// checks it against its FEC, and retries only the sectors the FEC cannot rebuild.
pub(super) fn verify_drive(
    device: Option<PathBuf>,
    args: &VerifyArgs,
    repair_to: Option<&Path>,
    memory: u64,
    ui: &Ui,
) -> Result<VerifyReport> {
    use bd_archive::restore::drive as dr;
    let opts = dr::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let mut drive = dr::open_drive(&opts).map_err(explain::drive_read)?;
    if !dr::wait_for_disc(drive.as_mut()).map_err(explain::drive_read)? {
        bail!(
            "{}: no disc in the drive; insert the disc to verify and run again",
            drive.name()
        );
    }
    explain::apply_read_speed(drive.as_mut(), &opts, ui);
    let rescue = args
        .map
        .as_deref()
        .map(dr::rescue_paths)
        .transpose()
        .map_err(explain::drive_read)?;
    let src = dr::open_source(
        drive,
        rescue.as_ref().map(|(i, m)| (i.as_path(), m.as_path())),
    )
    .map_err(explain::drive_read)?;
    if rescue.is_some() {
        // A rescue copy is a whole image (like ddrescue's): read everything once into it, then
        // check the copy; the drive is asked again only for what is missing.
        dr::read_disc(&src, ui);
    }
    let name = src.describe();
    let retry = dr::fec_retry(&src, opts.retries, ui);
    // A disc read from a drive is copied even when intact: `-o` is its image.
    let target = repair_to.map(|path| RepairTarget {
        path,
        copy_intact: true,
    });
    let result = verify_source(&name, src.clone(), target, memory, ui, Some(&retry))
        .map_err(explain::verify);
    if let Err(e) = src.save_map() {
        ui.warn(&e.to_string());
    }
    ui.say(&dr::describe_reading(&src));
    result
}

/// The copies of a set's discs read through a drive ([`collect_set`]), and the temporary work
/// dir that holds them (removed when this is dropped; a `-w` dir is kept).
pub(super) struct SetCopies {
    pub images: Vec<PathBuf>,
    temporary: Option<PathBuf>,
}

impl Drop for SetCopies {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `verify -D` of a set with parity discs (FORMAT.md §10): when the disc in the drive is a
/// parity disc (it names its set), or a data disc recording P > 0 and a person at a terminal can
/// say when to stop, every disc of its generation is asked for in turn (any order), read into a
/// copy in the work dir (`-w`, else a temporary dir), and the copies are then verified as
/// images, the set as a set. None: the disc is verified on its own (`--map`, a data disc of a
/// generation without parity discs, or one without a terminal).
pub(super) fn collect_set(
    device: Option<PathBuf>,
    args: &VerifyArgs,
    memory: u64,
    ui: &Ui,
) -> Result<Option<SetCopies>> {
    use bd_archive::restore::drive as dr;
    if args.map.is_some() {
        return Ok(None);
    }
    let opts = dr::DriveReadOptions {
        device,
        retries: args.retries,
        read_speed: args.read_speed,
    };
    let (parity, in_parity_set) = {
        let mut drive = dr::open_drive(&opts).map_err(explain::drive_read)?;
        if !dr::wait_for_disc(drive.as_mut()).map_err(explain::drive_read)? {
            return Ok(None); // the single-disc path says the drive is empty
        }
        let (header, _drive) = dr::identify(drive).map_err(explain::drive_read)?;
        match header {
            // A data disc records P (FORMAT.md §1.1; 0: none, or written before P was recorded).
            Some(h) => (
                h.is_parity(),
                h.sections.iter().any(|s| s.set_parity_discs() > 0),
            ),
            None => return Ok(None),
        }
    };
    let asked = in_parity_set && std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !parity && !asked {
        return Ok(None);
    }
    if let Some(o) = args.output.as_ref().filter(|o| args.repair && !o.is_dir()) {
        bail!(
            "--repair -o {}: the discs of a set are repaired into a directory; give an existing directory",
            o.display()
        );
    }
    let (workdir, temporary) = match &args.workdir {
        Some(w) => (w.clone(), None),
        None => {
            let t = std::env::temp_dir().join(format!("bd-archive-verify-{}", std::process::id()));
            (t.clone(), Some(t))
        }
    };
    let mut copies = SetCopies {
        images: Vec::new(),
        temporary,
    };
    let settings = bd_archive::disc::reader::RepairSettings {
        memory_budget: memory,
        spill_dir: None,
    };
    let mode = crate::cli::extract_drive::Collect::Set;
    copies.images = crate::cli::extract_drive::collect_discs(&opts, &workdir, &settings, mode, ui)?;
    Ok(Some(copies))
}
