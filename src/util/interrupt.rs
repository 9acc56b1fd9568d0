//! Ctrl+C: the first press asks the running command to stop at the next safe point (no image is
//! left looking complete, the current file is finished), the second press exits at once. Either
//! way the exit code is 130.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // Second Ctrl+C: leave now. Only async-signal-safe calls here.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the SIGINT handler (once, at program start).
pub fn install() {
    let handler = on_sigint as extern "C" fn(libc::c_int);
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Whether Ctrl+C was pressed; long loops check this at safe points.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The error a command returns when it stopped because of Ctrl+C (mapped to exit code 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by Ctrl+C{0}")]
pub struct Interrupted(pub String);
