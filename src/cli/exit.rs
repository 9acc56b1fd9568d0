//! Exit codes, one table for every command (scripts depend on them; see README).

/// Success.
pub const OK: i32 = 0;
/// Finished with damage: verify found repairable damage; extract could not restore some files
/// bit-exact; create met source files unreadable or changed while being read.
pub const DAMAGED: i32 = 1;
/// verify: damage beyond what the FEC can repair.
pub const BROKEN: i32 = 2;
/// Error: bad usage, unreadable input, I/O error, refusal.
pub const ERROR: i32 = 3;
/// Interrupted by Ctrl+C.
pub const INTERRUPTED: i32 = 130;

/// The exit code of a verify outcome: 0 intact, 1 repairable, 2 broken.
pub fn of_health(h: bd_archive::restore::verify::Health) -> i32 {
    use bd_archive::restore::verify::Health;
    match h {
        Health::Ok => OK,
        Health::Repairable => DAMAGED,
        Health::Broken => BROKEN,
    }
}
