//! Invariant checks shared by the `query` cargo-fuzz target (`ingest/fuzz/`) and the corpus
//! replay test (`index/tests/fuzz_corpus.rs`). Not part of the stable API.
//!
//! [`check_query`] parses arbitrary bytes (lossily made UTF-8, as the HTTP layer does) with
//! [`EventQueryParser`] and, when they parse, runs the query with the search collector over a
//! small in-memory index of events covering every field type. It panics when parsing or
//! searching panics, when an error has no message, or when a search counts more hits than the
//! index holds or returns more than its limit.

use bytes::Bytes;
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{EventFlags, FrameMeta, Seq, Source, Timestamp};
use tantivy::{Index, IndexReader, IndexWriter};

use crate::document::EventDocument;
use crate::error::IndexError;
use crate::query_parser::EventQueryParser;
use crate::schema;
use crate::search::NewestFirst;

/// The events of the fuzzing index: RFC 5424 with structured data, RFC 3164, a JSON frame with
/// typed fields, an unparsed line.
const EVENTS: [&[u8]; 4] = [
    b"<165>1 2024-06-01T00:00:00.5Z web1 app 12 ID7 [x@1 user=\"alice\" n=\"5\"] hello world",
    b"<38>Jun  1 00:00:01 web2 sshd[42]: Failed password for root from 10.0.0.9 port 2222 ssh2",
    b"{\"message\":\"json line\",\"user\":{\"id\":7},\"ok\":true,\"ratio\":0.5,\"tags\":[1,2]}",
    b"no header \xff at all",
];

/// Hits asked for per search: fewer than the events, so the limit is exercised.
const SEARCH_LIMIT: usize = 3;

struct FuzzIndex {
    parser: EventQueryParser,
    reader: IndexReader,
}

fn build_index() -> Result<FuzzIndex, tantivy::TantivyError> {
    let (schema, fields) = schema::build_schema();
    let index = Index::create_in_ram(schema);
    schema::register_tokenizers(&index);
    let mut writer: IndexWriter<EventDocument> = index.writer_with_num_threads(1, 15_000_000)?;
    for (position, raw) in EVENTS.iter().enumerate() {
        let meta = FrameMeta {
            seq: Seq(position as u64 + 1),
            received_at: Timestamp(1_717_200_000_000_000_000),
            peer: Some(([10, 0, 0, position as u8], 514).into()),
            source: Source::SyslogTcp,
            flags: EventFlags::empty(),
        };
        let event = parse_syslog(Bytes::from_static(raw), &meta, &ParseOptions::default());
        writer.add_document(EventDocument::new(&event, &["sig-a"], fields))?;
    }
    writer.commit()?;
    let reader = index.reader()?;
    Ok(FuzzIndex {
        parser: EventQueryParser::new(),
        reader,
    })
}

thread_local! {
    static FUZZ_INDEX: FuzzIndex = build_index().expect("in-memory fuzzing index");
}

/// Parses and runs arbitrary bytes as a search query.
///
/// # Panics
/// When one of the invariants in the module docs does not hold.
pub fn check_query(data: &[u8]) {
    let query_text = String::from_utf8_lossy(data);
    FUZZ_INDEX.with(|fuzz| {
        let query = match fuzz.parser.parse(&query_text) {
            Ok(query) => query,
            Err(IndexError::BadQuery(message)) => {
                assert!(!message.is_empty(), "bad query without a message");
                return;
            }
            Err(other) => panic!("parsing failed with {other:?}, not BadQuery"),
        };
        let collector = NewestFirst {
            limit: SEARCH_LIMIT,
            after: None,
            oldest_first: false,
        };
        // A query can still fail at search time (e.g. a field type the searcher refuses);
        // that is an error for the caller, not a panic.
        if let Ok(fruit) = fuzz.reader.searcher().search(query.as_ref(), &collector) {
            assert!(fruit.total <= EVENTS.len() as u64, "more hits than events");
            assert!(fruit.hits.len() <= SEARCH_LIMIT, "more hits than the limit");
            let keys: Vec<_> = fruit.hits.iter().map(|(key, _)| *key).collect();
            assert!(keys.is_sorted_by(|a, b| a > b), "hits not newest first");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_queries_pass_the_checks() {
        for query in [
            "",
            "hello",
            "host:web1 AND NOT app:sshd",
            "fields.user.id:7",
            "(unclosed",
        ] {
            check_query(query.as_bytes());
        }
    }
}
