//! Cairn's signature matching and correlation engine.
//!
//! This crate will hold Sigma rule loading, the compiled signature matcher, the event-time
//! correlation engine and the incident model. It depends only on `cairn-ingest` (the event model);
//! it does not know the index.
