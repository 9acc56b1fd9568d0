//! The integration tests: one test binary (as ripgrep's tests/tests.rs), so the library, the
//! dev-dependencies and `common` are compiled and linked once instead of once per file.
//!
//! Tests drive the real binary (`CARGO_BIN_EXE_bd-archive`, the one `cargo test` builds) or the
//! library on temp dirs. A test that needs something `cargo test` does not bring (Debian tools
//! used as oracles, QEMU, loop mounts, a machine without an optical drive) is
//! `#[ignore = "needs …"]`; run explicitly (`cargo test -- --ignored`), it fails when that thing
//! is missing instead of passing without having checked anything. .ci/run runs them all.

mod common;

mod cli_burn;
mod cli_chain;
mod cli_change;
mod cli_damage;
mod cli_drive;
mod cli_drive_read;
mod cli_ecosystem;
mod cli_foundation;
mod cli_large;
mod cli_names;
mod cli_oracles;
mod cli_resume;
mod cli_robustness;
mod cli_truth;
mod cli_verify_catalog;
mod compat_continue;
mod compat_dar;
mod compat_par2;
mod compat_seed;
mod fec_repair;
mod fuzz_regressions;
mod golden_images;
mod hostile_discs;
mod image_damage;
mod image_multi_extent;
mod image_oracles;
mod parity_discs;
mod parity_extract;
mod parity_hostile;
mod parity_reserve;
mod qemu_drive;
mod restore_safety;
mod restore_scan;
mod rs_spec;
