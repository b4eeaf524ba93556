//! [`EventQuery`]: a small query tree that compiles straight into tantivy query objects, for
//! callers that receive structured queries (the Elasticsearch `_search` API) rather than query
//! text. No string is built and re-parsed, so no escaping can go wrong.
//!
//! Field names are Cairn's (`ts`, `host`, `app`, `severity`, `facility`, `message`, `rule`,
//! `signature`, `seq`, `severity_code`, `procid`, `msgid`, `format`, `source`, `flags`,
//! `fields.<name>`); values are analysed as the field is indexed (`host:WEB1` finds `web1`,
//! `message` is split into lowercased words).

use std::ops::Bound;

use cairn_ingest::Timestamp;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Term};
use tantivy::tokenizer::TokenizerManager;

use crate::error::IndexError;
use crate::event_index::EventIndex;
use crate::schema::{self, EventFields};

/// A value of a `term` or `match`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// A bound of a [`EventQuery::Range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeValue {
    /// For `ts`.
    Time(Timestamp),
    /// For numeric fields (`seq`, `severity_code`).
    Number(u64),
}

/// A structured query over events.
#[derive(Debug, Clone, PartialEq)]
pub enum EventQuery {
    /// Every event.
    All,
    /// No event.
    Nothing,
    /// Query text in Cairn's syntax (see the crate documentation); `any_word`: terms without an
    /// operator are alternatives (`a b` = `a OR b`, Elasticsearch's default) instead of all
    /// required (Cairn's default).
    Text { query: String, any_word: bool },
    /// The field holds exactly this value (analysed as one term: keywords are lowercased where
    /// the field is).
    Term { field: String, value: QueryValue },
    /// Words of `text` in a text field: any of them (`all_words: false`) or all of them; on a
    /// keyword field, the same as [`EventQuery::Term`].
    Match {
        field: String,
        text: String,
        all_words: bool,
    },
    /// The words of `text`, in order, in a text field.
    Phrase { field: String, text: String },
    /// `lower <= value < upper` with each bound inclusive or exclusive.
    Range {
        field: String,
        lower: Bound<RangeValue>,
        upper: Bound<RangeValue>,
    },
    /// Elasticsearch's `bool`: every `must`, none of `must_not`, and at least
    /// `minimum_should_match` of `should` (default: 1 when there is no `must`, else 0).
    Bool {
        must: Vec<EventQuery>,
        should: Vec<EventQuery>,
        must_not: Vec<EventQuery>,
        minimum_should_match: Option<usize>,
    },
}

impl EventIndex {
    /// Compiles `query` for [`EventIndex::search_query`].
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] for an unknown field, a value of the wrong type for its field,
    /// or invalid query text.
    pub fn compile_query(&self, query: &EventQuery) -> Result<Box<dyn Query>, IndexError> {
        let compiler = Compiler {
            index: self,
            fields: self.fields(),
            tokenizers: self.tokenizers(),
        };
        compiler.compile(query)
    }
}

struct Compiler<'a> {
    index: &'a EventIndex,
    fields: &'a EventFields,
    tokenizers: &'a TokenizerManager,
}

/// How a field is indexed, for building its terms.
enum FieldKind {
    /// One term per value, through this tokenizer.
    Keyword(Field, &'static str),
    /// Words with positions.
    Text(Field),
    U64(Field),
    Date(Field),
    /// `fields.<path>`.
    Json(Field, String),
}

impl Compiler<'_> {
    fn compile(&self, query: &EventQuery) -> Result<Box<dyn Query>, IndexError> {
        Ok(match query {
            EventQuery::All => Box::new(AllQuery),
            EventQuery::Nothing => Box::new(EmptyQuery),
            EventQuery::Text { query, any_word } => {
                self.index.parse_query_with(query, !*any_word)?
            }
            EventQuery::Term { field, value } => self.term(field, value)?,
            EventQuery::Match {
                field,
                text,
                all_words,
            } => match self.kind(field)? {
                FieldKind::Text(handle) => {
                    let occur = if *all_words {
                        Occur::Must
                    } else {
                        Occur::Should
                    };
                    let clauses = self
                        .words(handle, schema::TEXT_TOKENIZER, text)?
                        .into_iter()
                        .map(|term| (occur, term_query(term)))
                        .collect::<Vec<_>>();
                    if clauses.is_empty() {
                        Box::new(EmptyQuery)
                    } else {
                        Box::new(BooleanQuery::new(clauses))
                    }
                }
                _ => self.term(field, &QueryValue::Text(text.clone()))?,
            },
            EventQuery::Phrase { field, text } => match self.kind(field)? {
                FieldKind::Text(handle) => {
                    let mut terms = self.words(handle, schema::TEXT_TOKENIZER, text)?;
                    match terms.len() {
                        0 => Box::new(EmptyQuery),
                        1 => term_query(terms.remove(0)),
                        _ => Box::new(PhraseQuery::new(terms)),
                    }
                }
                _ => self.term(field, &QueryValue::Text(text.clone()))?,
            },
            EventQuery::Range {
                field,
                lower,
                upper,
            } => self.range(field, *lower, *upper)?,
            EventQuery::Bool {
                must,
                should,
                must_not,
                minimum_should_match,
            } => {
                let mut clauses = Vec::new();
                for clause in must {
                    clauses.push((Occur::Must, self.compile(clause)?));
                }
                for clause in must_not {
                    clauses.push((Occur::MustNot, self.compile(clause)?));
                }
                let required_should = minimum_should_match.unwrap_or(usize::from(must.is_empty()));
                if !should.is_empty() && required_should > 0 {
                    let mut alternatives = Vec::new();
                    for clause in should {
                        alternatives.push((Occur::Should, self.compile(clause)?));
                    }
                    let mut any = BooleanQuery::new(alternatives);
                    any.set_minimum_number_should_match(required_should);
                    clauses.push((Occur::Must, Box::new(any)));
                } else if should.is_empty() && required_should > 0 && must.is_empty() {
                    // `{"bool":{}}` and `{"bool":{"must_not":[…]}}`: everything (but…).
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
        })
    }

    fn kind(&self, name: &str) -> Result<FieldKind, IndexError> {
        let fields = self.fields;
        if let Some(path) = name
            .strip_prefix(schema::FIELDS)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|path| !path.is_empty())
        {
            return Ok(FieldKind::Json(fields.fields, path.to_owned()));
        }
        Ok(match name {
            schema::HOST => FieldKind::Keyword(fields.host, schema::KEYWORD_LOWER_TOKENIZER),
            schema::APP => FieldKind::Keyword(fields.app, schema::KEYWORD_LOWER_TOKENIZER),
            schema::SEVERITY => FieldKind::Keyword(fields.severity, schema::RAW_TOKENIZER),
            schema::FACILITY => FieldKind::Keyword(fields.facility, schema::RAW_TOKENIZER),
            schema::SIGNATURE => FieldKind::Keyword(fields.signature, schema::RAW_TOKENIZER),
            schema::PROCID => FieldKind::Keyword(fields.procid, schema::RAW_TOKENIZER),
            schema::MSGID => FieldKind::Keyword(fields.msgid, schema::RAW_TOKENIZER),
            schema::FORMAT => FieldKind::Keyword(fields.format, schema::RAW_TOKENIZER),
            schema::SOURCE => FieldKind::Keyword(fields.source, schema::RAW_TOKENIZER),
            schema::FLAGS => FieldKind::Keyword(fields.flags, schema::RAW_TOKENIZER),
            schema::MESSAGE => FieldKind::Text(fields.message),
            schema::RULE => FieldKind::Text(fields.rule),
            schema::SEQ => FieldKind::U64(fields.seq),
            schema::SEVERITY_CODE => FieldKind::U64(fields.severity_code),
            schema::TS => FieldKind::Date(fields.ts),
            other => {
                return Err(IndexError::BadQuery(format!(
                    "field `{other}` cannot be queried"
                )));
            }
        })
    }

    /// The terms `tokenizer` makes of `text` in `field`.
    fn words(&self, field: Field, tokenizer: &str, text: &str) -> Result<Vec<Term>, IndexError> {
        let mut analyzer = self
            .tokenizers
            .get(tokenizer)
            .ok_or_else(|| IndexError::Internal(format!("tokenizer {tokenizer} missing")))?;
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(Term::from_field_text(field, &stream.token().text));
        }
        Ok(terms)
    }

    fn term(&self, name: &str, value: &QueryValue) -> Result<Box<dyn Query>, IndexError> {
        let wrong_type =
            || IndexError::BadQuery(format!("field `{name}` cannot hold the value {value:?}"));
        Ok(match (self.kind(name)?, value) {
            (FieldKind::Keyword(field, tokenizer), QueryValue::Text(text)) => {
                let mut terms = self.words(field, tokenizer, text)?;
                match terms.pop() {
                    Some(term) => term_query(term),
                    None => Box::new(EmptyQuery),
                }
            }
            (FieldKind::Text(field), QueryValue::Text(text)) => {
                let mut terms = self.words(field, schema::TEXT_TOKENIZER, text)?;
                match terms.len() {
                    0 => Box::new(EmptyQuery),
                    1 => term_query(terms.remove(0)),
                    _ => Box::new(PhraseQuery::new(terms)),
                }
            }
            (FieldKind::U64(field), QueryValue::Integer(number)) => match u64::try_from(*number) {
                Ok(number) => term_query(Term::from_field_u64(field, number)),
                Err(_) => Box::new(EmptyQuery),
            },
            (FieldKind::Json(field, path), value) => {
                let json_term = || Term::from_field_json_path(field, &path, true);
                let mut alternatives: Vec<Term> = Vec::new();
                match value {
                    QueryValue::Text(text) => {
                        let mut term = json_term();
                        term.append_type_and_str(text);
                        alternatives.push(term);
                    }
                    QueryValue::Integer(number) => {
                        let mut signed = json_term();
                        signed.append_type_and_fast_value(*number);
                        alternatives.push(signed);
                        if let Ok(unsigned_value) = u64::try_from(*number) {
                            let mut unsigned = json_term();
                            unsigned.append_type_and_fast_value(unsigned_value);
                            alternatives.push(unsigned);
                        }
                        let mut text = json_term();
                        text.append_type_and_str(&number.to_string());
                        alternatives.push(text);
                    }
                    QueryValue::Float(number) => {
                        let mut float = json_term();
                        float.append_type_and_fast_value(*number);
                        alternatives.push(float);
                    }
                    QueryValue::Bool(flag) => {
                        let mut boolean = json_term();
                        boolean.append_type_and_fast_value(*flag);
                        alternatives.push(boolean);
                    }
                }
                Box::new(BooleanQuery::new(
                    alternatives
                        .into_iter()
                        .map(|term| (Occur::Should, term_query(term)))
                        .collect(),
                ))
            }
            _ => return Err(wrong_type()),
        })
    }

    fn range(
        &self,
        name: &str,
        lower: Bound<RangeValue>,
        upper: Bound<RangeValue>,
    ) -> Result<Box<dyn Query>, IndexError> {
        let kind = self.kind(name)?;
        let term = |value: RangeValue| -> Result<Term, IndexError> {
            match (&kind, value) {
                (FieldKind::Date(field), RangeValue::Time(timestamp)) => Ok(Term::from_field_date(
                    *field,
                    tantivy::DateTime::from_timestamp_nanos(timestamp.as_nanos()),
                )),
                (FieldKind::U64(field), RangeValue::Number(number)) => {
                    Ok(Term::from_field_u64(*field, number))
                }
                _ => Err(IndexError::BadQuery(format!(
                    "range on `{name}` takes {} bounds",
                    if matches!(kind, FieldKind::Date(_)) {
                        "time"
                    } else {
                        "numeric"
                    }
                ))),
            }
        };
        let map = |bound: Bound<RangeValue>| -> Result<Bound<Term>, IndexError> {
            Ok(match bound {
                Bound::Included(value) => Bound::Included(term(value)?),
                Bound::Excluded(value) => Bound::Excluded(term(value)?),
                Bound::Unbounded => Bound::Unbounded,
            })
        };
        if !matches!(kind, FieldKind::Date(_) | FieldKind::U64(_)) {
            return Err(IndexError::BadQuery(format!(
                "range is supported on ts, seq and severity_code, not `{name}`"
            )));
        }
        if matches!((lower, upper), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(Box::new(AllQuery));
        }
        Ok(Box::new(RangeQuery::new(map(lower)?, map(upper)?)))
    }
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}
