//! The `cairn` binary's library: configuration, pipeline wiring and the axum HTTP API.
//!
//! `main.rs` only parses the command line, sets up logging and signals, and calls
//! [`server::run`]. Everything here returns typed errors; `anyhow` lives only in `main.rs`.

pub mod config;
pub mod correlation;
pub mod http;
pub mod pipeline;
pub mod replay;
pub mod server;
pub mod signatures;
pub mod wal_replay;
pub mod webhooks;
