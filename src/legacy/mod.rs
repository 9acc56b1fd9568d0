//! Reading archives written by the Python bd-archive ("seed" discs): dar slices (+ par2, sha512).
//!
//! Pure Rust: no `dar` or `par2` program is needed at restore time. See `docs/dar-format.md`.
pub mod dar;
pub mod par2;
pub mod seed_chain;
pub mod seed_disc;
