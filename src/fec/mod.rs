//! Reed–Solomon forward error correction over a whole disc image (stub, being written).
