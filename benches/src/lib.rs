//! Shared workloads of the Cairn benches (deterministic generators; no files are read).

pub mod sigma;
