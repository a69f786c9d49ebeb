//! The fuzz targets' checks live in `checks.rs`, which `tests/fuzz_regressions.rs` includes by
//! path: a kept crash input replays under `cargo test` through exactly the code that found it.

pub mod checks;
