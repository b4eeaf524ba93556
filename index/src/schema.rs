//! The tantivy schema of an event and the tokenizers it names. The field table is in the crate
//! documentation; this module is its single source of truth.

use tantivy::Index;
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, FieldEntry, IndexRecordOption, IpAddrOptions,
    JsonObjectOptions, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenizerManager,
};

/// Tokenizer of `message`: split on non-alphanumerics, drop tokens over
/// [`MAX_TEXT_TOKEN_BYTES`], lowercase.
pub(crate) const TEXT_TOKENIZER: &str = "cairn_text";
/// Tokenizer of `host` and `app`: the whole value as one lowercased term.
pub(crate) const KEYWORD_LOWER_TOKENIZER: &str = "cairn_keyword_lower";
/// tantivy's built-in whole-value tokenizer (exact, case-sensitive).
pub(crate) const RAW_TOKENIZER: &str = "raw";
/// Longest token of `message` that is indexed. tantivy's default (40) would drop SHA-256 hex
/// digests and long base64 tokens, which analysts search for.
pub(crate) const MAX_TEXT_TOKEN_BYTES: usize = 255;

pub(crate) const SEQ: &str = "seq";
pub(crate) const TS: &str = "ts";
pub(crate) const RECEIVED_AT: &str = "received_at";
pub(crate) const HOST: &str = "host";
pub(crate) const APP: &str = "app";
pub(crate) const PROCID: &str = "procid";
pub(crate) const MSGID: &str = "msgid";
pub(crate) const SEVERITY: &str = "severity";
pub(crate) const SEVERITY_CODE: &str = "severity_code";
pub(crate) const FACILITY: &str = "facility";
pub(crate) const FORMAT: &str = "format";
pub(crate) const SOURCE: &str = "source";
pub(crate) const FLAGS: &str = "flags";
pub(crate) const SIGNATURE: &str = "signature";
pub(crate) const RULE: &str = "rule";
pub(crate) const MESSAGE: &str = "message";
pub(crate) const FIELDS: &str = "fields";
pub(crate) const PEER: &str = "peer";
pub(crate) const PEER_PORT: &str = "peer_port";
pub(crate) const RAW: &str = "raw";

/// Handles of every field of the schema (cheap to copy into each document).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventFields {
    pub seq: Field,
    pub ts: Field,
    pub received_at: Field,
    pub host: Field,
    pub app: Field,
    pub procid: Field,
    pub msgid: Field,
    pub severity: Field,
    pub severity_code: Field,
    pub facility: Field,
    pub format: Field,
    pub source: Field,
    pub flags: Field,
    pub signature: Field,
    pub rule: Field,
    pub message: Field,
    pub fields: Field,
    pub peer: Field,
    pub peer_port: Field,
    pub raw: Field,
}

/// Options of a keyword field: one term per value, no positions, no norms.
fn keyword(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// Options of a text field: words, lowercased, with positions (phrases), no norms.
fn words() -> TextOptions {
    TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    )
}

fn date_options() -> DateOptions {
    DateOptions::default().set_precision(DateTimePrecision::Nanoseconds)
}

/// Builds the schema. Opening an index checks its stored schema against this one.
pub(crate) fn build_schema() -> (Schema, EventFields) {
    let mut builder = Schema::builder();
    let fields = EventFields {
        seq: builder.add_u64_field(
            SEQ,
            NumericOptions::default()
                .set_indexed()
                .set_fast()
                .set_stored(),
        ),
        ts: builder.add_date_field(TS, date_options().set_indexed().set_fast().set_stored()),
        received_at: builder.add_date_field(RECEIVED_AT, date_options().set_fast().set_stored()),
        host: builder.add_text_field(
            HOST,
            keyword(KEYWORD_LOWER_TOKENIZER).set_fast(KEYWORD_LOWER_TOKENIZER),
        ),
        app: builder.add_text_field(
            APP,
            keyword(KEYWORD_LOWER_TOKENIZER).set_fast(KEYWORD_LOWER_TOKENIZER),
        ),
        procid: builder.add_text_field(PROCID, keyword(RAW_TOKENIZER)),
        msgid: builder.add_text_field(MSGID, keyword(RAW_TOKENIZER)),
        severity: builder.add_text_field(SEVERITY, keyword(RAW_TOKENIZER).set_fast(RAW_TOKENIZER)),
        severity_code: builder.add_u64_field(
            SEVERITY_CODE,
            NumericOptions::default().set_indexed().set_fast(),
        ),
        facility: builder.add_text_field(FACILITY, keyword(RAW_TOKENIZER).set_fast(RAW_TOKENIZER)),
        format: builder.add_text_field(FORMAT, keyword(RAW_TOKENIZER)),
        source: builder.add_text_field(SOURCE, keyword(RAW_TOKENIZER)),
        flags: builder.add_text_field(FLAGS, keyword(RAW_TOKENIZER)),
        signature: builder
            .add_text_field(SIGNATURE, keyword(RAW_TOKENIZER).set_fast(RAW_TOKENIZER)),
        rule: builder.add_text_field(RULE, words()),
        message: builder.add_text_field(MESSAGE, words()),
        fields: builder.add_json_field(
            FIELDS,
            JsonObjectOptions::default()
                .set_stored()
                .set_fast(RAW_TOKENIZER)
                .set_expand_dots_enabled()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(RAW_TOKENIZER)
                        .set_index_option(IndexRecordOption::Basic)
                        .set_fieldnorms(false),
                ),
        ),
        peer: builder.add_ip_addr_field(
            PEER,
            IpAddrOptions::default()
                .set_indexed()
                .set_fast()
                .set_stored(),
        ),
        peer_port: builder.add_u64_field(PEER_PORT, NumericOptions::default().set_stored()),
        raw: builder.add_text_field(RAW, TextOptions::default().set_stored()),
    };
    (builder.build(), fields)
}

/// Registers the tokenizers the schema names. Tokenizers are not persisted with the index, so
/// this runs on every open, before any writer or query parser is made.
pub(crate) fn register_tokenizers(index: &Index) {
    register_tokenizers_in(index.tokenizers(), index.fast_field_tokenizer());
}

/// Registers the schema's tokenizers in `tokenizers` (indexing and queries) and `fast`
/// (fast-field values).
pub(crate) fn register_tokenizers_in(tokenizers: &TokenizerManager, fast: &TokenizerManager) {
    let text = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TEXT_TOKEN_BYTES))
        .filter(LowerCaser)
        .build();
    let keyword_lower = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build();
    tokenizers.register(TEXT_TOKENIZER, text);
    tokenizers.register(KEYWORD_LOWER_TOKENIZER, keyword_lower.clone());
    fast.register(KEYWORD_LOWER_TOKENIZER, keyword_lower);
}

/// Checks that `on_disk` has every field of `expected` with the same options, fast-field options
/// aside; returns the first difference.
///
/// Whether a field is fast only decides whether it can be aggregated, so an index written before
/// a field became fast stays usable (its documents add no buckets for that field).
pub(crate) fn schema_difference(expected: &Schema, on_disk: &Schema) -> Option<String> {
    for (_, expected_entry) in expected.fields() {
        let name = expected_entry.name();
        let Ok(field) = on_disk.get_field(name) else {
            return Some(format!("field `{name}` is missing"));
        };
        if without_fast(expected_entry) != without_fast(on_disk.get_field_entry(field)) {
            return Some(format!("field `{name}` has different options"));
        }
    }
    None
}

/// A field entry as JSON without its `fast` option.
fn without_fast(entry: &FieldEntry) -> serde_json::Value {
    let mut json = serde_json::to_value(entry).unwrap_or_default();
    if let Some(options) = json
        .get_mut("options")
        .and_then(serde_json::Value::as_object_mut)
    {
        options.remove("fast");
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_equal_to_itself_and_detects_a_missing_field() {
        let (schema, _) = build_schema();
        assert_eq!(schema_difference(&schema, &schema), None);
        let mut builder = Schema::builder();
        builder.add_u64_field(SEQ, NumericOptions::default());
        let other = builder.build();
        assert_eq!(
            schema_difference(&schema, &other).as_deref(),
            Some("field `seq` has different options")
        );
    }

    #[test]
    fn fast_options_alone_are_not_a_difference() {
        let (schema, _) = build_schema();
        let mut builder = Schema::builder();
        for (_, entry) in schema.fields() {
            let mut json = serde_json::to_value(entry).expect("entry json");
            if entry.name() == FIELDS {
                json["options"]["fast"] = serde_json::Value::Bool(false);
            }
            builder.add_field(serde_json::from_value(json).expect("entry back"));
        }
        assert_eq!(schema_difference(&schema, &builder.build()), None);
    }
}
