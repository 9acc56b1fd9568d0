//! Whether the note "the binary is not copied onto the discs" was given for this very binary
//! (path and mtime) already: it is said once, not on every run. Kept in
//! `$XDG_STATE_HOME/bd-archive/binary-noted` (default `~/.local/state`); without a home, always said.

use std::path::PathBuf;

fn marker() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("bd-archive").join("binary-noted"))
}

fn this_binary() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(&exe).ok()?;
    Some(format!("{} {}", exe.display(), m.mtime()))
}

/// True when the note was given for this binary.
pub fn given() -> bool {
    match (marker(), this_binary()) {
        (Some(m), Some(b)) => std::fs::read_to_string(m).is_ok_and(|t| t.trim() == b),
        _ => false,
    }
}

/// Records that the note was given (best effort).
pub fn remember() {
    if let (Some(m), Some(b)) = (marker(), this_binary()) {
        if let Some(dir) = m.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(m, b + "\n");
    }
}
