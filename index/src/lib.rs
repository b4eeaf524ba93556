//! Cairn's tantivy index: every event, searchable by the API within a commit interval.
//!
//! One [`EventIndex`] per data directory: a set of **time partitions**, each a tantivy index
//! holding the events of `partition_hours` of event time (a UTC day by default; layout and
//! migration in `event_index.rs`). The indexer thread takes the only [`EventWriter`]
//! ([`EventIndex::writer`]), adds batches (routed by event time) and commits about once a second
//! with a [`CommitPayload`]; the API searches the same `EventIndex` (cloned or behind an `Arc`)
//! concurrently with [`EventIndex::search`] (query text) or [`EventIndex::search_query`] (an
//! [`EventQuery`] compiled with [`EventIndex::compile_query`]), with optional aggregations
//! ([`AggregationRequest`]) merged over the partitions searched.
//!
//! # Invariants
//! - **Single writer.** `writer.lock` (flock) allows one writer; a second
//!   [`EventIndex::writer`] fails with [`IndexError::Unavailable`] until the first is dropped.
//! - **Commit payload = durable progress.** Each commit stores `{"last_seq", "wal_position"}` in
//!   the `meta.json` of every partition it changed, atomically with their documents, then in
//!   `progress.json`. After a restart, [`EventIndex::last_commit`] says where `seq` numbering
//!   continues and where WAL replay starts, and a partition that committed further skips what
//!   it holds ([`EventWriter::add_record`]); uncommitted documents are gone and come back from
//!   the WAL, exactly once (see `progress.rs`).
//! - **Retention drops whole partitions**, oldest first, never the newest nor one with
//!   uncommitted events ([`RetentionPolicy`], `writer.rs`).
//! - **Searchers see commits only.** The reader reloads inside [`EventWriter::commit`], so an
//!   event is searchable as soon as the commit that contains it returns.
//! - **Order.** Search results are newest first by `(ts, seq)` descending; `seq` is unique, so the
//!   order is total and cursors never skip or repeat an event.
//! - Opening never repairs: an unusable directory is [`IndexError::Corruption`] with the path.
//!
//! # Fields
//!
//! | field | type | indexed as | fast | stored | why |
//! |---|---|---|---|---|---|
//! | `seq` | u64 | term | yes | yes | identity, tie-break, `max_seq` on restart |
//! | `ts` | date (ns) | term (second precision) | yes (ns) | yes | event time: range filter, sort |
//! | `received_at` | date (ns) | no | yes | yes | lag analysis later |
//! | `host`, `app` | keyword | one lowercased term | yes (lowercased) | original | `host:WEB1` = `host:web1`: hostnames are case-insensitive and senders disagree on case |
//! | `procid`, `msgid` | keyword | one exact term | no | yes | exact lookups |
//! | `severity`, `facility` | keyword | name (`err`, `auth`) | yes | yes | filters, aggregations |
//! | `severity_code` | u64 | term | yes | no | `severity_code:[0 TO 3]` (err and worse) |
//! | `format`, `source` | keyword | name (`rfc5424`, `syslog_udp`) | no | yes | find input by path |
//! | `flags` | keyword, multi | `parse_error`, `truncated`… | no | yes | find problem input |
//! | `signature` | keyword, multi | rule ids (exact) | yes | yes | filled by the signature matcher: `signature:<id>` |
//! | `rule` | text, multi | words of the matched rules' titles, lowercased, positions | no | yes | `rule:ssh`, `rule:"brute force"` |
//! | `message` | text | words, lowercased, positions | no | yes | full text and phrase queries |
//! | `fields` | JSON | exact (raw) string terms, numbers as numbers | yes | yes | `fields.user:root`; structured data as `fields.sd.<SD-ID>.<PARAM>` |
//! | `peer` | IP (v4 mapped to v6) | term | yes | yes | `peer:10.0.0.1`, `peer:[10.0.0.0 TO 10.0.0.255]` |
//! | `peer_port` | u64 | no | no | yes | shown only |
//! | `raw` | text | no | no | yes | shown in results |
//!
//! What is tokenised and why: only `message` and `rule` (rule titles) are split into words (tantivy's simple tokenizer:
//! split on non-alphanumerics, lowercase; tokens up to 255 bytes so hashes survive). An IP or path
//! inside a message is several tokens with positions, so `message:10.0.0.1` or
//! `"/var/log/auth.log"` match as phrases. Everything with a structure of its own (numbers, IPs,
//! names, field values) goes into a keyword, numeric, IP or JSON field instead, which keeps the
//! term dictionary small and the indexing cost low. No field norms anywhere: results are ordered
//! by time, not relevance.
//!
//! # Query language
//! tantivy's query parser over `message` by default, conjunction by default (`a b` = `a AND b`),
//! with `AND`/`OR`/`NOT`/`-`, phrases, `field:value`, ranges `[a TO b}`; invalid queries are
//! [`IndexError::BadQuery`]. Signatures: `signature:<rule id>` is exact (one term per id);
//! `rule:brute` or `rule:"ssh brute force"` finds events by words of a matched rule's title.
//!
//! # Indexing cost
//! Events are handed to tantivy through a [`tantivy::Document`] implementation over the event
//! (`document.rs`): no `TantivyDocument` and no per-field `String`s; each document owns a clone of
//! the `Event` (a refcount bump on the frame plus its small vectors).
//!
//! This crate does not parse, match or correlate.

mod aggregation;
mod document;
mod error;
mod event_index;
#[doc(hidden)]
pub mod fuzzing;
mod partition;
mod progress;
mod query;
mod query_parser;
mod recent;
mod schema;
mod search;
mod writer;

pub use aggregation::{AggregationRequest, BUCKET_LIMIT, MAX_TERMS_SIZE, MEMORY_LIMIT_BYTES};
pub use error::IndexError;
pub use event_index::{
    EventIndex, IndexOptions, IndexStatus, MIN_WRITER_MEMORY_PER_THREAD, PartitionStatus,
    RetentionPolicy,
};
pub use query::{EventQuery, QueryValue, RangeValue};
pub use query_parser::EventQueryParser;
pub use recent::RecentEvents;
pub use search::{EventHit, MAX_SEARCH_LIMIT, SearchRequest, SearchResponse};
/// A parsed query ([`EventIndex::parse_query`]).
pub use tantivy::query::Query;
pub use writer::{AddOutcome, CommitPayload, EventWriter, RETENTION_CHECK_INTERVAL};
