//! [`EventIndex`]: the time-partitioned index on disk. Opening (or creating, or migrating) the
//! directory, handing out the writer, searching across partitions.
//!
//! # Layout
//! ```text
//! <index dir>/
//!   progress.json          how far the whole index got (see progress.rs)
//!   writer.lock            held by the one EventWriter (flock)
//!   20240501T00-24h/       one tantivy index per partition (see partition.rs)
//!   20240502T00-24h/
//!   legacy/                the single index of an older version, read-only, kept until retention
//! ```
//! A data directory of the single-index version (tantivy files directly in `<index dir>`) is
//! migrated on open by two directory renames (`<index dir>` → `<index dir>.migrating` →
//! `<index dir>/legacy`); a crash between them is finished on the next open. A partition being
//! dropped is first renamed to `<name>.dropped`, then deleted; leftovers are deleted on open.
//!
//! # Search across partitions
//! Partitions whose committed events lie outside `from`/`to` are not searched. Each other
//! partition is searched with the newest-first collector and, when asked, the aggregation
//! collector; hits are merged by `(ts, seq)` (unique, so the cursor of the single index works
//! unchanged), totals added, aggregation results merged.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use cairn_ingest::Seq;
use serde::Serialize;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Schema, TantivyDocument, Term};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DateTime, DocAddress};

use crate::aggregation::{self, AggregationRequest};
use crate::error::IndexError;
use crate::partition::{LEGACY_NAME, Partition, PartitionKey, has_segment_files};
use crate::progress;
use crate::query_parser::EventQueryParser;
use crate::schema::{self, EventFields};
use crate::search::{self, MAX_SEARCH_LIMIT, NewestFirst, SearchRequest, SearchResponse, SortKey};
use crate::writer::{CommitPayload, EventWriter};

/// Smallest writer memory budget per indexing thread that tantivy accepts.
pub const MIN_WRITER_MEMORY_PER_THREAD: usize = 15_000_000;

/// How the index is opened and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOptions {
    /// Memory the writer buffers before flushing a segment, split across indexing threads.
    /// At least 15 MB per thread. Default 128 MiB.
    pub writer_memory_bytes: usize,
    /// Indexing threads of the writer (1..=8). Default 1: the appliance has two cores and the
    /// pipeline needs the other.
    pub writer_threads: usize,
    /// Background segment-merge threads (1..=8). Default 1.
    pub merge_threads: usize,
    /// Verify the checksum of every segment file on open. Reads the whole index, so it is off by
    /// default; without it, a truncated or missing file is still detected on open, but a flipped
    /// byte inside a file is only noticed when a search reads it.
    pub verify_checksums_on_open: bool,
    /// Time partitions and what is dropped when.
    pub retention: RetentionPolicy,
    /// Partition writers kept open at once (1..=64): events of that many partitions can be
    /// indexed between two commits (a backfill of old days); past it, the writer asks for an
    /// early commit ([`crate::EventWriter::wants_commit`]) and then closes the least recently
    /// used. Default 4.
    pub max_open_writers: usize,
}

/// Time partitions and retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Hours of event time per partition (1..=8760), aligned on the UTC epoch grid (24: one
    /// partition per UTC day). Changing it keeps existing partitions as they are. Default 24.
    pub partition_hours: u32,
    /// Partitions whose whole span ended longer ago than this (by the wall clock) are dropped,
    /// and events that would land in such a partition are not indexed (counted as expired).
    /// `None` (default): kept forever.
    pub max_age: Option<Duration>,
    /// While the partitions take more bytes than this, the oldest is dropped (never the newest,
    /// which is being written). `None` (default): no budget.
    pub max_disk_bytes: Option<u64>,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            partition_hours: 24,
            max_age: None,
            max_disk_bytes: None,
        }
    }
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            writer_memory_bytes: 128 * 1024 * 1024,
            writer_threads: 1,
            merge_threads: 1,
            verify_checksums_on_open: false,
            retention: RetentionPolicy::default(),
            max_open_writers: 4,
        }
    }
}

impl IndexOptions {
    /// Checks the ranges documented on each field.
    ///
    /// # Errors
    /// [`IndexError::BadOptions`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), IndexError> {
        if !(1..=8).contains(&self.writer_threads) {
            return Err(IndexError::BadOptions(format!(
                "writer_threads must be 1..=8, got {}",
                self.writer_threads
            )));
        }
        if !(1..=8).contains(&self.merge_threads) {
            return Err(IndexError::BadOptions(format!(
                "merge_threads must be 1..=8, got {}",
                self.merge_threads
            )));
        }
        if !(1..=8760).contains(&self.retention.partition_hours) {
            return Err(IndexError::BadOptions(format!(
                "partition_hours must be 1..=8760, got {}",
                self.retention.partition_hours
            )));
        }
        if !(1..=64).contains(&self.max_open_writers) {
            return Err(IndexError::BadOptions(format!(
                "max_open_writers must be 1..=64, got {}",
                self.max_open_writers
            )));
        }
        let minimum = MIN_WRITER_MEMORY_PER_THREAD * self.writer_threads;
        if self.writer_memory_bytes < minimum {
            return Err(IndexError::BadOptions(format!(
                "writer_memory_bytes must be at least {minimum} for {} writer threads, got {}",
                self.writer_threads, self.writer_memory_bytes
            )));
        }
        if self.writer_memory_bytes / self.writer_threads > 4_000_000_000 {
            return Err(IndexError::BadOptions(format!(
                "writer_memory_bytes must be at most 4 GB per writer thread, got {}",
                self.writer_memory_bytes
            )));
        }
        Ok(())
    }
}

/// The event index: a directory of time partitions, one writer at a time, any number of
/// concurrent searches.
///
/// Cheap to clone (all handles are shared); share it with `Arc` or clones between the indexer
/// thread and the API.
#[derive(Clone)]
pub struct EventIndex {
    pub(crate) shared: Arc<Shared>,
}

/// What the index and its writer share.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: IndexOptions,
    pub fields: EventFields,
    query_parser: EventQueryParser,
    tokenizers: TokenizerManager,
    /// Open partitions, oldest key first. Read per search, written when a partition is created
    /// or dropped: never per event.
    pub partitions: RwLock<Vec<Arc<Partition>>>,
    /// The payload of the last complete commit round (`progress.json`).
    pub last_commit: Mutex<Option<CommitPayload>>,
    /// `wal_position` of `progress.json` when the index was opened.
    pub progress_on_open: Option<u64>,
    pub counters: RetentionCounters,
}

/// What retention did since the index was opened.
#[derive(Debug, Default)]
pub(crate) struct RetentionCounters {
    pub dropped_partitions: AtomicU64,
    pub dropped_events: AtomicU64,
    pub expired_events: AtomicU64,
}

impl Shared {
    /// A snapshot of the open partitions, oldest first.
    pub(crate) fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for EventIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventIndex")
            .field("path", &self.shared.dir)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// One partition as `/api/v1/stats` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Directory name (`20240501T00-24h`, `legacy`).
    pub name: String,
    /// Committed events.
    pub docs: u64,
    /// Bytes on disk (as of the last commit or retention check).
    pub bytes: u64,
}

/// The partitions and what retention did (since start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexStatus {
    /// Oldest first.
    pub partitions: Vec<PartitionStatus>,
    /// Sum of the partitions' bytes.
    pub bytes: u64,
    pub dropped_partitions: u64,
    /// Events in the dropped partitions.
    pub dropped_events: u64,
    /// Events not indexed because their partition was already past retention.
    pub expired_events: u64,
}

/// Finishes or starts the migration of a single-index directory into `legacy/` (see the module
/// documentation).
fn migrate_single_index(dir: &Path) -> Result<(), IndexError> {
    let migrating = dir.with_extension("migrating");
    let io_error = |what: &str, error: std::io::Error| {
        IndexError::Unavailable(format!("migrating {} ({what}): {error}", dir.display()))
    };
    if dir.join("meta.json").is_file() {
        tracing::info!(dir = %dir.display(), "moving the single index into the partition `legacy`");
        std::fs::rename(dir, &migrating).map_err(|error| io_error("rename", error))?;
    }
    if migrating.is_dir() {
        std::fs::create_dir_all(dir).map_err(|error| io_error("create", error))?;
        std::fs::rename(&migrating, dir.join(LEGACY_NAME))
            .map_err(|error| io_error("rename into legacy", error))?;
    }
    Ok(())
}

/// The partition directories of `dir`, oldest key first; deletes leftovers of drops.
fn partition_dirs(dir: &Path) -> Result<Vec<(PartitionKey, PathBuf)>, IndexError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        IndexError::Unavailable(format!("cannot list {}: {error}", dir.display()))
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".dropped") {
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(%error, path = %path.display(), "cannot delete a dropped partition");
            }
            continue;
        }
        match PartitionKey::parse(&name) {
            Some(key) => found.push((key, path)),
            None => tracing::warn!(path = %path.display(), "not a partition; ignored"),
        }
    }
    found.sort();
    Ok(found)
}

/// Where the index as a whole stands after a restart: `progress.json`, or (a legacy index, or a
/// crash before the first progress was written) the smallest position any partition committed,
/// with the largest `last_seq` anywhere. Without `progress.json`, a partition with no payload
/// may have lost events of any record to the crash (it was created, written and never
/// committed), so replay starts at the WAL's oldest record (`None`); partitions that did commit
/// skip what they hold.
fn combined_progress(
    progress: Option<CommitPayload>,
    partitions: &[Arc<Partition>],
) -> Option<CommitPayload> {
    let payloads = partitions
        .iter()
        .filter_map(|partition| partition.payload_on_open);
    let last_seq = payloads
        .clone()
        .map(|payload| payload.last_seq)
        .chain(progress.map(|payload| payload.last_seq))
        .max()?;
    let wal_position = match progress {
        Some(progress) => progress.wal_position,
        None => partitions
            .iter()
            .map(|partition| {
                partition
                    .payload_on_open
                    .and_then(|payload| payload.wal_position)
            })
            .collect::<Option<Vec<u64>>>()
            .and_then(|positions| positions.into_iter().min()),
    };
    Some(CommitPayload {
        last_seq,
        wal_position,
    })
}

impl EventIndex {
    /// Opens the index in `dir`, creating the directory when there is none and migrating a
    /// single-index directory of an older version (see the module documentation).
    ///
    /// # Errors
    /// - [`IndexError::BadOptions`] when `options` are out of range;
    /// - [`IndexError::Unavailable`] when `dir` cannot be created or read;
    /// - [`IndexError::Corruption`] when a partition is there but cannot be used: unreadable or
    ///   missing `meta.json` next to segment files, missing or truncated segment files, a schema
    ///   from another version, an unreadable commit payload or `progress.json`, or (with
    ///   [`IndexOptions::verify_checksums_on_open`]) a checksum mismatch. Nothing is repaired or
    ///   deleted; the operator decides (restore, or move the directory away and replay the WAL).
    pub fn open_or_create(dir: &Path, options: IndexOptions) -> Result<EventIndex, IndexError> {
        options.validate()?;
        migrate_single_index(dir)?;
        std::fs::create_dir_all(dir).map_err(|error| {
            IndexError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        if has_segment_files(dir)? {
            return Err(IndexError::Corruption {
                path: dir.join("meta.json"),
                message: "meta.json is missing but segment files are present".to_owned(),
            });
        }
        let mut partitions = Vec::new();
        for (key, path) in partition_dirs(dir)? {
            let partition = Partition::open(key, &path, true, options.verify_checksums_on_open)?;
            partitions.push(Arc::new(partition));
        }
        let progress = progress::read(dir)?;
        let last_commit = combined_progress(progress, &partitions);

        let (schema, fields) = schema::build_schema();
        let tokenizers = TokenizerManager::default();
        schema::register_tokenizers_in(&tokenizers, &TokenizerManager::default());
        let query_parser = EventQueryParser::with(schema, &fields, tokenizers.clone());
        Ok(EventIndex {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                options,
                fields,
                query_parser,
                tokenizers,
                partitions: RwLock::new(partitions),
                last_commit: Mutex::new(last_commit),
                progress_on_open: progress.and_then(|payload| payload.wal_position),
                counters: RetentionCounters::default(),
            }),
        })
    }

    /// The directory of the index.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The single writer.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] while another writer (in this process or another) holds the
    /// directory's lock.
    pub fn writer(&self) -> Result<EventWriter, IndexError> {
        EventWriter::new(Arc::clone(&self.shared))
    }

    /// The payload of the last commit: read from disk on open (see `progress.rs`), updated by
    /// each [`EventWriter::commit`]. `None` for an index never committed with a payload.
    pub fn last_commit(&self) -> Option<CommitPayload> {
        *self
            .shared
            .last_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Events in the committed (searchable) index.
    pub fn doc_count(&self) -> u64 {
        self.shared
            .partitions()
            .iter()
            .map(|partition| partition.reader.searcher().num_docs())
            .sum()
    }

    /// The partitions and what retention did.
    pub fn status(&self) -> IndexStatus {
        let partitions: Vec<PartitionStatus> = self
            .shared
            .partitions()
            .iter()
            .map(|partition| PartitionStatus {
                name: partition.key.name(),
                docs: partition.reader.searcher().num_docs(),
                bytes: partition.bytes.load(Ordering::Relaxed),
            })
            .collect();
        let counters = &self.shared.counters;
        IndexStatus {
            bytes: partitions.iter().map(|partition| partition.bytes).sum(),
            partitions,
            dropped_partitions: counters.dropped_partitions.load(Ordering::Relaxed),
            dropped_events: counters.dropped_events.load(Ordering::Relaxed),
            expired_events: counters.expired_events.load(Ordering::Relaxed),
        }
    }

    /// The largest `seq` in the committed index, `None` when it is empty.
    ///
    /// # Errors
    /// [`IndexError::Corruption`] / [`IndexError::Unavailable`] when the `seq` column cannot be read.
    pub fn max_seq(&self) -> Result<Option<Seq>, IndexError> {
        let mut max = None;
        for partition in self.shared.partitions() {
            let partition_max = search::max_seq(&partition.reader.searcher(), &partition.dir)?;
            max = max.max(partition_max);
        }
        Ok(max)
    }

    /// Parses `query` (empty or blank = every event). Exposed so the API can validate a query
    /// without running it.
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] with the parser's message.
    pub fn parse_query(&self, query: &str) -> Result<Box<dyn Query>, IndexError> {
        self.parse_query_with(query, true)
    }

    /// As [`EventIndex::parse_query`]; `all_terms: false` joins terms without an operator with
    /// `OR`.
    pub(crate) fn parse_query_with(
        &self,
        query: &str,
        all_terms: bool,
    ) -> Result<Box<dyn Query>, IndexError> {
        self.shared.query_parser.parse_with(query, all_terms)
    }

    /// Runs a search on the last committed state. Blocking (reads the index): call it from a
    /// blocking thread (`tokio::task::spawn_blocking`), not from an async task.
    ///
    /// Cost: in each partition that can hold events of the time range, the query's matches are
    /// streamed once, reading only the `ts` and `seq` fast fields (and the aggregated ones);
    /// only the returned page is loaded from the document stores.
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] for an invalid query, cursor or aggregation;
    /// [`IndexError::Corruption`] / [`IndexError::Unavailable`] when the index files cannot be read.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, IndexError> {
        let user_query = self.parse_query(&request.query)?;
        self.search_query(user_query.as_ref(), request)
    }

    /// Runs a search with a query built by the caller (the Elasticsearch API builds tantivy
    /// queries directly); `request.query` is ignored. Otherwise as [`EventIndex::search`].
    ///
    /// # Errors
    /// As [`EventIndex::search`].
    pub fn search_query(
        &self,
        user_query: &dyn Query,
        request: &SearchRequest,
    ) -> Result<SearchResponse, IndexError> {
        let after = request
            .cursor
            .as_deref()
            .map(SortKey::from_cursor)
            .transpose()?;
        let query = self.with_time_range(user_query.box_clone(), request);
        let limit = request.limit.min(MAX_SEARCH_LIMIT);
        let newest_first = NewestFirst {
            limit,
            after,
            oldest_first: request.oldest_first,
        };
        let from = request.from.map(|from| from.as_nanos());
        let to = request.to.map(|to| to.as_nanos());
        let mut total = 0;
        let mut after_cursor = 0;
        let mut hits: Vec<(SortKey, usize, DocAddress)> = Vec::new();
        let mut searched = Vec::new();
        let mut intermediates = Vec::new();
        for partition in self.shared.partitions().into_iter().rev() {
            let searcher = partition.reader.searcher();
            let Some((oldest, newest)) = partition.ts_range(&searcher) else {
                continue;
            };
            if from.is_some_and(|from| newest < from) || to.is_some_and(|to| oldest >= to) {
                continue;
            }
            let collectors = (
                newest_first,
                request
                    .aggregations
                    .as_ref()
                    .map(AggregationRequest::collector),
            );
            let (fruit, intermediate) = searcher
                .search(query.as_ref(), &collectors)
                .map_err(|error| IndexError::from_runtime(&partition.dir, error))?;
            total += fruit.total;
            after_cursor += fruit.after_cursor;
            let ordinal = searched.len();
            hits.extend(
                fruit
                    .hits
                    .into_iter()
                    .map(|(key, address)| (key, ordinal, address)),
            );
            intermediates.extend(intermediate);
            searched.push((searcher, partition));
        }
        hits.sort_unstable_by_key(|(key, _, _)| std::cmp::Reverse(*key));
        hits.truncate(limit);
        let mut events = Vec::with_capacity(hits.len());
        for (_, ordinal, address) in &hits {
            let (searcher, partition) = &searched[*ordinal];
            let document: TantivyDocument = searcher
                .doc(*address)
                .map_err(|error| IndexError::from_runtime(&partition.dir, error))?;
            events.push(search::hit_from_document(&document, &self.shared.fields));
        }
        let more_remain = after_cursor > hits.len() as u64;
        let next_cursor = hits
            .last()
            .filter(|_| more_remain)
            .map(|(key, _, _)| key.to_cursor());
        let aggregations = match &request.aggregations {
            Some(aggregation_request) => Some(aggregation::finish(
                aggregation_request,
                aggregation::merge(intermediates)?,
            )?),
            None => None,
        };
        Ok(SearchResponse {
            total,
            events,
            next_cursor,
            aggregations,
        })
    }

    fn with_time_range(&self, query: Box<dyn Query>, request: &SearchRequest) -> Box<dyn Query> {
        if request.from.is_none() && request.to.is_none() {
            return query;
        }
        let ts_field = self.shared.fields.ts;
        let term = |timestamp: cairn_ingest::Timestamp| {
            Term::from_field_date(
                ts_field,
                DateTime::from_timestamp_nanos(timestamp.as_nanos()),
            )
        };
        let lower = request
            .from
            .map_or(Bound::Unbounded, |from| Bound::Included(term(from)));
        let upper = request
            .to
            .map_or(Bound::Unbounded, |to| Bound::Excluded(term(to)));
        let range: Box<dyn Query> = Box::new(RangeQuery::new(lower, upper));
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, query),
            (Occur::Must, range),
        ]))
    }

    /// The tantivy schema (for tools and tests).
    pub fn schema(&self) -> Schema {
        schema::build_schema().0
    }

    /// Field handles, for queries built outside the query parser.
    pub(crate) fn fields(&self) -> &EventFields {
        &self.shared.fields
    }

    /// The tokenizers of the schema, for queries built outside the query parser.
    pub(crate) fn tokenizers(&self) -> &TokenizerManager {
        &self.shared.tokenizers
    }
}
