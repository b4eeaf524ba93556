//! HTTP body decoders: NDJSON lines to events ([`ndjson`]), bounded gzip inflation ([`gzip`]),
//! and the compatibility formats, Elasticsearch `_bulk` ([`es_bulk`]) and Splunk HEC ([`hec`]),
//! which rewrite each item into a canonical NDJSON line ([`canonical`]) that the NDJSON decoder
//! turns into an event.

mod canonical;
pub mod es_bulk;
pub mod gzip;
pub mod hec;
pub mod ndjson;

pub use gzip::gunzip_limited;
pub use ndjson::{LineRejection, NdjsonLimits, NdjsonOutcome, decode_ndjson};
