//! HTTP body decoders: NDJSON lines to events ([`ndjson`]) and bounded gzip inflation
//! ([`gzip`]).

pub mod gzip;
pub mod ndjson;

pub use gzip::gunzip_limited;
pub use ndjson::{LineRejection, NdjsonLimits, NdjsonOutcome, decode_ndjson};
