//! [`EventQueryParser`]: the search query language over the event schema.
//!
//! tantivy's query parser with `message` as the default field and conjunction by default, plus
//! two rewrites an analyst expects: a query that is only negations (`NOT x`) means "everything
//! but x", and so does every purely negative clause inside a larger query (`a AND NOT b` parses
//! as `+a +(-b)`, which tantivy would match against nothing).
//!
//! The parser needs only the schema and its tokenizers, not the index's data:
//! [`EventQueryParser::new`] builds one without a directory, to validate queries (and to fuzz the
//! parser).

use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, QueryParserError};
use tantivy::schema::Schema;
use tantivy::tokenizer::TokenizerManager;

use crate::error::IndexError;
use crate::schema::{self, EventFields};

/// Parses search queries for the event schema. Cheap to clone.
#[derive(Clone)]
pub struct EventQueryParser {
    /// Terms without an operator are all required (Cairn's search).
    all: QueryParser,
    /// Terms without an operator are alternatives (Elasticsearch's `query_string`).
    any: QueryParser,
}

impl std::fmt::Debug for EventQueryParser {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EventQueryParser")
            .finish_non_exhaustive()
    }
}

impl Default for EventQueryParser {
    fn default() -> Self {
        EventQueryParser::new()
    }
}

impl EventQueryParser {
    /// A parser over the event schema (no index or directory needed).
    pub fn new() -> EventQueryParser {
        let (schema, fields) = schema::build_schema();
        let tokenizers = TokenizerManager::default();
        schema::register_tokenizers_in(&tokenizers, &TokenizerManager::default());
        EventQueryParser::with(schema, &fields, tokenizers)
    }

    /// A parser over `schema` with the index's tokenizers.
    pub(crate) fn with(
        schema: Schema,
        fields: &EventFields,
        tokenizers: TokenizerManager,
    ) -> EventQueryParser {
        let any = QueryParser::new(schema.clone(), vec![fields.message], tokenizers.clone());
        let mut all = QueryParser::new(schema, vec![fields.message], tokenizers);
        all.set_conjunction_by_default();
        EventQueryParser { all, any }
    }

    /// Parses `query` (empty or blank = every event).
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] with the parser's message, when parentheses nest deeper than
    /// 32 levels, or when the query holds a NUL
    /// character: tantivy ends JSON field paths with NUL and asserts (panics) on a path that
    /// contains one (`fields.a\0b:3`, found by the `query` fuzz target).
    pub fn parse(&self, query: &str) -> Result<Box<dyn Query>, IndexError> {
        self.parse_with(query, true)
    }

    /// As [`EventQueryParser::parse`]; `all_terms: false` joins terms without an operator with
    /// `OR` (Elasticsearch's `query_string`).
    ///
    /// # Errors
    /// As [`EventQueryParser::parse`].
    pub fn parse_with(&self, query: &str, all_terms: bool) -> Result<Box<dyn Query>, IndexError> {
        let parser = if all_terms { &self.all } else { &self.any };
        if query.trim().is_empty() {
            return Ok(Box::new(AllQuery));
        }
        if nesting_depth(query) > MAX_QUERY_NESTING {
            return Err(IndexError::BadQuery(format!(
                "parentheses nested deeper than {MAX_QUERY_NESTING} levels"
            )));
        }
        if query.contains('\0') {
            return Err(IndexError::BadQuery(
                "the query contains a nul character".to_owned(),
            ));
        }
        let parsed = match parser.parse_query(query) {
            // `NOT x` alone means "everything but x" to an analyst; tantivy refuses it.
            Err(QueryParserError::AllButQueryForbidden) => {
                parser.parse_query(&format!("* AND ({query})"))
            }
            other => other,
        };
        parsed
            .map(match_everything_in_pure_negations)
            .map_err(|error| IndexError::BadQuery(error.to_string()))
    }
}

/// Deepest parenthesis nesting accepted. tantivy's parser and the rewrite below recurse per
/// level; deeper queries overflowed a 2 MiB thread stack (found by the `query` fuzz target).
const MAX_QUERY_NESTING: usize = 32;

/// The deepest parenthesis nesting of `query` (counting every parenthesis, quoted or escaped
/// ones included: an over-estimate only for queries no one writes).
fn nesting_depth(query: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0;
    for byte in query.bytes() {
        match byte {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Rewrites every boolean clause made only of `MustNot`s (`a AND NOT b` parses as
/// `+a +(-b)`) into `(* -b)`: tantivy matches nothing for a purely negative boolean query.
fn match_everything_in_pure_negations(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(boolean) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = boolean
        .clauses()
        .iter()
        .map(|(occur, clause)| {
            (
                *occur,
                match_everything_in_pure_negations(clause.box_clone()),
            )
        })
        .collect();
    let only_negations = clauses.iter().all(|(occur, _)| *occur == Occur::MustNot);
    if only_negations && !clauses.is_empty() {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    let mut rebuilt = BooleanQuery::new(clauses);
    rebuilt.set_minimum_number_should_match(boolean.get_minimum_number_should_match());
    Box::new(rebuilt)
}
