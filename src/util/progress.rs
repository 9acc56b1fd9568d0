//! How an engine tells its caller what it is doing. The library never prints: the command line
//! implements [`Progress`] (messages on stderr/stdout, `-q`/`-v`, indicatif bars); tests, benches
//! and fuzz targets pass [`Silent`].

use std::sync::Arc;

/// Receiver of an engine's messages and meters. Called from the engine's threads (hence `Sync`).
pub trait Progress: Sync {
    /// A step of the work ("Resuming after 2 complete image(s)"); hidden with `-q`.
    fn step(&self, msg: &str);
    /// A result line meant for the user even when output is piped (stdout).
    fn result(&self, msg: &str);
    /// Something the user should know (damage met, a file skipped); always shown.
    fn warn(&self, msg: &str);
    /// Extra detail (`-v`).
    fn detail(&self, msg: &str);
    /// A meter over `total` bytes (or a count, when `total` is `None`) named `what`.
    fn meter(&self, total: Option<u64>, what: &str) -> Arc<dyn Meter>;
}

/// One running progress meter.
pub trait Meter: Send + Sync {
    /// Advances by `n`.
    fn inc(&self, n: u64);
    /// Sets the position.
    fn set_position(&self, n: u64);
    /// Sets the message shown beside the meter.
    fn set_message(&self, msg: String);
    /// Prints a line above the meter (dropped when the meter is not shown).
    fn println(&self, line: String);
    /// Removes the meter.
    fn finish(&self);
}

/// Reports nothing: for tests, benches and fuzz targets.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str) {}
    fn result(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn detail(&self, _: &str) {}
    fn meter(&self, _: Option<u64>, _: &str) -> Arc<dyn Meter> {
        Arc::new(Silent)
    }
}

impl Meter for Silent {
    fn inc(&self, _: u64) {}
    fn set_position(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn println(&self, _: String) {}
    fn finish(&self) {}
}
