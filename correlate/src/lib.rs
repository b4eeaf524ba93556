//! Cairn's signature matching and correlation engine.
//!
//! This crate loads Sigma rules (`load_rules`, `parse_rules_str`) and compiles their detection
//! part into a [`Matcher`] that the parse workers run on every event. It depends only on
//! `cairn-ingest` (the event model); it does not know the index. The correlation engine, the
//! incident model and the built-in pack come later; correlation documents are already parsed and
//! kept aside as [`RuleKind::Correlation`]. The [`incident`] module turns alerts into incidents
//! (lifecycle, SQLite store, the service thread that owns it).
//!
//! # Invariants
//!
//! - **Nothing panics on rule input.** Rule files are untrusted: YAML is size-, depth- and
//!   alias-checked before it is built into a tree; conditions are parsed with a nesting cap;
//!   regexes are compiled with size caps; per-rule [`Limits`] bound values, searches and depth.
//!   Every problem becomes a [`Rejection`] naming the file, document, title and the place in the
//!   rule (`detection.selection.CommandLine|contians: unknown modifier 'contians'`).
//! - **A rejected rule never affects the others**: loading and compiling are per document and
//!   per rule.
//! - **[`Matcher`] is immutable and `Send + Sync`**; per-worker state lives in a
//!   [`MatchScratch`], which allocates only while warming up.
//! - **[`Matcher`] and [`NaiveMatcher`] agree** on every event (property-tested): the prefilter
//!   only skips rules that cannot match.
//!
//! # Semantics chosen where Sigma leaves it to the backend
//!
//! - Matching is case-insensitive by ASCII folding unless `|cased`; `|re` is case-sensitive
//!   unless `|re|i`, and is a search (unanchored), as in PCRE's default.
//! - Keywords (lists of strings, or `'|all':` maps) match anywhere in the event's message
//!   (implicit `*…*`).
//! - `null` means the field is absent or empty; `exists: false` means absent.
//! - A numeric value without modifier compares as its decimal text; `gt`/`gte`/`lt`/`lte` compare
//!   numbers (typed JSON numbers, or text that parses as a number; severity and facility by
//!   code).
//! - A field name resolves through [`FieldMapping`], then built-in aliases (`message`/`msg`,
//!   `host`/`hostname`/`Computer`, `app`/`appname`/`program`/`process.name`, `procid`/`pid`,
//!   `msgid`, `severity`, `facility`), then `sd.<id>.<param>`, else the event field of that name
//!   (falling back to a structured-data parameter of that name).
//! - Logsources restrict matching only where [`LogsourceMapping`] maps them; see there.
//! - `A|fieldref: B` compares the text of field `A` with the text of field `B` of the same
//!   event (both resolved as above): equal, or with `contains`/`startswith`/`endswith` the
//!   position of `B` in `A`; ASCII case-insensitive unless `|cased`. Either field absent → no
//!   match, also under `|neq` (a reference to an absent field is unknown, as in SQL). A list
//!   of names is OR-ed (`|all`: AND-ed). Such tests have no literal, so a rule made only of
//!   them is evaluated for every event.
//!
//! # Not supported (rejected with [`Error::Unsupported`])
//!
//! `expand` (placeholders), time-part modifiers (`minute`, `hour`…), `utf16*`
//! without a following `base64`/`base64offset`, Sigma 1.0 aggregations (`| count()`,
//! `timeframe`), rule collections (`action: global`), `N of` other than `1`/`any`/`all`, Sigma
//! filter documents.

mod alert;
pub mod builtin;
mod compile;
mod condition;
pub mod correlation;
mod error;
mod field;
#[doc(hidden)]
pub mod fuzzing;
pub mod incident;
mod matcher;
mod naive;
mod rule;
mod scan;
mod value;
mod yaml;

pub use alert::{Alert, AlertKind, MAX_EVIDENCE};
pub use compile::{CompileOptions, CompiledRuleInfo, Limits};
pub use condition::{Condition, OfTarget, Quantifier, parse_condition};
pub use correlation::{
    CorrelationOptions, Correlations, Correlator, Engine, EngineConfig, EngineError, EngineStats,
    Observation, ObservationBatch, SnapshotError,
};
pub use error::{Error, Rejection};
pub use field::{FieldMapping, LogsourceEntry, LogsourceMapping};
pub use matcher::{MatchScratch, Matcher, MatcherStats, RuleIndex};
pub use naive::NaiveMatcher;
pub use rule::{
    Detection, FieldTest, Level, LoadReport, LogSource, Modifier, Rule, RuleKind, Search, Value,
    load_rules, parse_rules_str,
};
pub use scan::LiteralEngine;
pub use yaml::{MAX_RULE_FILE_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES};
