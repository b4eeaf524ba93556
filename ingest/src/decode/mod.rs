//! HTTP body decoders (NDJSON).
