//! [`RecentEvents`]: a throwaway in-RAM index of a few just-indexed batches, so that a search
//! query can run on those events alone (the live tail).
//!
//! It has the event index's schema and tokenizers, so a query parsed by
//! [`crate::EventIndex::parse_query`] means exactly what it means in a search. Cost: the events
//! are indexed a second time (in RAM, by one writer thread, committed once), about what the
//! indexer spends on them; the caller decides when that is worth it (only while someone tails).

use cairn_ingest::Event;
use tantivy::collector::DocSetCollector;
use tantivy::query::Query;
use tantivy::schema::TantivyDocument;
use tantivy::{Index, IndexWriter, Searcher};

use crate::document::EventDocument;
use crate::error::IndexError;
use crate::schema::{self, EventFields};
use crate::search::{self, EventHit};

/// Memory budget of the throwaway writer (tantivy's minimum is 15 MB; pages are taken as
/// needed).
const WRITER_MEMORY_BYTES: usize = 15_000_000;

/// A searchable copy of some events, in RAM.
pub struct RecentEvents {
    searcher: Searcher,
    fields: EventFields,
}

impl std::fmt::Debug for RecentEvents {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecentEvents")
            .field("docs", &self.searcher.num_docs())
            .finish_non_exhaustive()
    }
}

impl RecentEvents {
    /// Indexes `events` in RAM. Blocking (runs a writer thread and commits).
    ///
    /// # Errors
    /// [`IndexError::Internal`] when tantivy fails (out of memory, a thread that cannot start).
    pub fn build<'a>(
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<RecentEvents, IndexError> {
        let internal = |error: tantivy::TantivyError| IndexError::Internal(error.to_string());
        let (event_schema, fields) = schema::build_schema();
        let index = Index::create_in_ram(event_schema);
        schema::register_tokenizers(&index);
        let mut writer: IndexWriter<EventDocument> = index
            .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
            .map_err(internal)?;
        for event in events {
            writer
                .add_document(EventDocument::new(event, &[], fields))
                .map_err(internal)?;
        }
        writer.commit().map_err(internal)?;
        let searcher = index.reader().map_err(internal)?.searcher();
        Ok(RecentEvents { searcher, fields })
    }

    /// Events held.
    pub fn len(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// True when no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events `query` matches, in the order they were given to [`RecentEvents::build`].
    ///
    /// # Errors
    /// [`IndexError::Internal`] when a document cannot be read back.
    pub fn matching(&self, query: &dyn Query) -> Result<Vec<EventHit>, IndexError> {
        let internal = |error: tantivy::TantivyError| IndexError::Internal(error.to_string());
        let mut addresses: Vec<_> = self
            .searcher
            .search(query, &DocSetCollector)
            .map_err(internal)?
            .into_iter()
            .collect();
        addresses.sort_unstable();
        addresses
            .into_iter()
            .map(|address| {
                let document: TantivyDocument = self.searcher.doc(address).map_err(internal)?;
                Ok(search::hit_from_document(&document, &self.fields))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventIndex, IndexOptions};
    use cairn_ingest::{EventFlags, FrameMeta, Seq, Source, Timestamp};

    fn event(seq: u64, line: &str) -> Event {
        let meta = FrameMeta {
            seq: Seq(seq),
            received_at: Timestamp::now(),
            peer: None,
            source: Source::SyslogUdp,
            flags: EventFlags::empty(),
        };
        cairn_ingest::parse::parse_syslog(
            bytes::Bytes::copy_from_slice(line.as_bytes()),
            &meta,
            &cairn_ingest::parse::ParseOptions::default(),
        )
    }

    #[test]
    fn a_query_means_what_it_means_in_a_search() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = EventIndex::open_or_create(dir.path(), IndexOptions::default()).expect("index");
        let events = [
            event(
                1,
                "<34>1 2024-05-01T10:00:00Z web1 sshd 1 - - Failed password for root",
            ),
            event(
                2,
                "<34>1 2024-05-01T10:00:01Z web2 sshd 1 - - Accepted password for bob",
            ),
            event(
                3,
                "<34>1 2024-05-01T10:00:02Z WEB1 nginx 1 - - GET /index.html",
            ),
        ];
        let recent = RecentEvents::build(&events).expect("build");
        assert_eq!(recent.len(), 3);
        let seqs = |query: &str| -> Vec<u64> {
            let parsed = index.parse_query(query).expect("query");
            recent
                .matching(parsed.as_ref())
                .expect("matching")
                .iter()
                .map(|hit| hit.seq)
                .collect()
        };
        assert_eq!(seqs("host:web1"), vec![1, 3]);
        assert_eq!(seqs("\"failed password\""), vec![1]);
        assert_eq!(seqs("NOT app:sshd"), vec![3]);
        assert_eq!(seqs(""), vec![1, 2, 3]);
        assert_eq!(seqs("password AND NOT root"), vec![2]);
    }
}
