//! [`EventIndex`]: opening (or creating) the index directory, handing out the writer, searching.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_ingest::Seq;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Schema, TantivyDocument, Term};
use tantivy::{DateTime, Index, IndexReader, ReloadPolicy};

use crate::error::IndexError;
use crate::query::EventQueryParser;
use crate::schema::{self, EventFields};
use crate::search::{self, MAX_SEARCH_LIMIT, NewestFirst, SearchRequest, SearchResponse, SortKey};
use crate::writer::{CommitPayload, EventWriter, SharedPayload};

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
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            writer_memory_bytes: 128 * 1024 * 1024,
            writer_threads: 1,
            merge_threads: 1,
            verify_checksums_on_open: false,
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

/// The event index: one directory, one writer at a time, any number of concurrent searches.
///
/// Cheap to clone (all handles are shared); share it with `Arc` or clones between the indexer
/// thread and the API.
#[derive(Clone)]
pub struct EventIndex {
    index: Index,
    reader: IndexReader,
    fields: EventFields,
    query_parser: EventQueryParser,
    last_commit: SharedPayload,
    path: PathBuf,
    options: IndexOptions,
}

impl std::fmt::Debug for EventIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventIndex")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// File extensions of tantivy segment files: their presence without `meta.json` means the index
/// lost its metadata, not that the directory is new.
const SEGMENT_FILE_EXTENSIONS: [&str; 7] =
    ["idx", "pos", "term", "store", "fast", "fieldnorm", "del"];

fn has_orphan_segment_files(dir: &Path) -> Result<bool, IndexError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        IndexError::Unavailable(format!("cannot list {}: {error}", dir.display()))
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let extension = path.extension().and_then(|extension| extension.to_str());
        if extension.is_some_and(|extension| SEGMENT_FILE_EXTENSIONS.contains(&extension)) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl EventIndex {
    /// Opens the index in `dir`, creating the directory and an empty index when there is none.
    ///
    /// # Errors
    /// - [`IndexError::BadOptions`] when `options` are out of range;
    /// - [`IndexError::Unavailable`] when `dir` cannot be created or read;
    /// - [`IndexError::Corruption`] when an index is there but cannot be used: unreadable or
    ///   missing `meta.json` next to segment files, missing or truncated segment files, a schema
    ///   from another version, an unreadable commit payload, or (with
    ///   [`IndexOptions::verify_checksums_on_open`]) a checksum mismatch. Nothing is repaired or
    ///   deleted; the operator decides (restore, or move the directory away and replay the WAL).
    pub fn open_or_create(dir: &Path, options: IndexOptions) -> Result<EventIndex, IndexError> {
        options.validate()?;
        std::fs::create_dir_all(dir).map_err(|error| {
            IndexError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let directory = MmapDirectory::open(dir).map_err(|error| {
            IndexError::Unavailable(format!("cannot open {}: {error}", dir.display()))
        })?;
        let (expected_schema, fields) = schema::build_schema();
        let exists = Index::exists(&directory).map_err(|error| {
            IndexError::from_open(dir, tantivy::TantivyError::OpenReadError(error))
        })?;
        let index = if exists {
            let index =
                Index::open(directory).map_err(|error| IndexError::from_open(dir, error))?;
            if let Some(difference) = schema::schema_difference(&expected_schema, &index.schema()) {
                return Err(IndexError::Corruption {
                    path: dir.join("meta.json"),
                    message: format!("index schema is not this version's schema: {difference}"),
                });
            }
            index
        } else {
            if has_orphan_segment_files(dir)? {
                return Err(IndexError::Corruption {
                    path: dir.join("meta.json"),
                    message: "meta.json is missing but segment files are present".to_owned(),
                });
            }
            Index::create(
                directory,
                expected_schema,
                tantivy::IndexSettings::default(),
            )
            .map_err(|error| IndexError::from_open(dir, error))?
        };
        schema::register_tokenizers(&index);

        let metas = index
            .load_metas()
            .map_err(|error| IndexError::from_open(dir, error))?;
        let last_commit =
            match metas.payload.as_deref() {
                None => None,
                Some(text) => Some(CommitPayload::from_json(text).map_err(|error| {
                    IndexError::Corruption {
                        path: dir.join("meta.json"),
                        message: format!("commit payload `{text}` is unreadable: {error}"),
                    }
                })?),
            };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|error| IndexError::from_open(dir, error))?;
        if options.verify_checksums_on_open {
            let damaged = index
                .validate_checksum()
                .map_err(|error| IndexError::from_open(dir, error))?;
            if let Some(first) = damaged.iter().min() {
                return Err(IndexError::Corruption {
                    path: dir.join(first),
                    message: format!("{} file(s) fail their checksum", damaged.len()),
                });
            }
        }

        let query_parser = EventQueryParser::for_index(&index, &fields);
        Ok(EventIndex {
            index,
            reader,
            fields,
            query_parser,
            last_commit: Arc::new(Mutex::new(last_commit)),
            path: dir.to_path_buf(),
            options,
        })
    }

    /// The directory of the index.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] while another writer (in this process or another) holds the
    /// directory's lock.
    pub fn writer(&self) -> Result<EventWriter, IndexError> {
        let writer_options = IndexWriterOptions::builder()
            .memory_budget_per_thread(
                self.options.writer_memory_bytes / self.options.writer_threads,
            )
            .num_worker_threads(self.options.writer_threads)
            .num_merge_threads(self.options.merge_threads)
            .build();
        let writer = self
            .index
            .writer_with_options(writer_options)
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        Ok(EventWriter::new(
            writer,
            self.reader.clone(),
            self.fields,
            Arc::clone(&self.last_commit),
            self.path.clone(),
        ))
    }

    /// The payload of the last commit: read from disk on open, updated by each
    /// [`EventWriter::commit`]. `None` for an index never committed with a payload.
    pub fn last_commit(&self) -> Option<CommitPayload> {
        *self
            .last_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Events in the committed (searchable) index.
    pub fn doc_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The largest `seq` in the committed index, `None` when it is empty.
    ///
    /// # Errors
    /// [`IndexError::Corruption`] / [`IndexError::Unavailable`] when the `seq` column cannot be read.
    pub fn max_seq(&self) -> Result<Option<Seq>, IndexError> {
        search::max_seq(&self.reader.searcher(), &self.path)
    }

    /// Parses `query` (empty or blank = every event). Exposed so the API can validate a query
    /// without running it.
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] with the parser's message.
    pub fn parse_query(&self, query: &str) -> Result<Box<dyn Query>, IndexError> {
        self.query_parser.parse(query)
    }

    /// Runs a search on the last committed state. Blocking (reads the index): call it from a
    /// blocking thread (`tokio::task::spawn_blocking`), not from an async task.
    ///
    /// Cost: the query's matches are streamed once, reading only the `ts` and `seq` fast fields;
    /// only the returned page is loaded from the document store.
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] for an invalid query or cursor; [`IndexError::Corruption`] /
    /// [`IndexError::Unavailable`] when the index files cannot be read.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, IndexError> {
        let user_query = self.parse_query(&request.query)?;
        let after = request
            .cursor
            .as_deref()
            .map(SortKey::from_cursor)
            .transpose()?;
        let query = self.with_time_range(user_query, request);
        let limit = request.limit.min(MAX_SEARCH_LIMIT);
        let searcher = self.reader.searcher();
        let fruit = searcher
            .search(query.as_ref(), &NewestFirst { limit, after })
            .map_err(|error| IndexError::from_runtime(&self.path, error))?;
        let mut events = Vec::with_capacity(fruit.hits.len());
        for (_, address) in &fruit.hits {
            let document: TantivyDocument = searcher
                .doc(*address)
                .map_err(|error| IndexError::from_runtime(&self.path, error))?;
            events.push(search::hit_from_document(&document, &self.fields));
        }
        let more_remain = fruit.after_cursor > fruit.hits.len() as u64;
        let next_cursor = fruit
            .hits
            .last()
            .filter(|_| more_remain)
            .map(|(key, _)| key.to_cursor());
        Ok(SearchResponse {
            total: fruit.total,
            events,
            next_cursor,
        })
    }

    fn with_time_range(&self, query: Box<dyn Query>, request: &SearchRequest) -> Box<dyn Query> {
        if request.from.is_none() && request.to.is_none() {
            return query;
        }
        let term = |timestamp: cairn_ingest::Timestamp| {
            Term::from_field_date(
                self.fields.ts,
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
        self.index.schema()
    }
}
