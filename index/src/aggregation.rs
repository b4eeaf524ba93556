//! Aggregations computed beside the hits of a search: `terms` over keyword fields (and any
//! `fields.<name>` of the dynamic JSON fields) and `date_histogram` over event time.
//!
//! # Forms
//! - **Compact** ([`AggregationRequest::parse_compact`]), for query strings:
//!   `terms:host,terms:fields.user:5,date_histogram:1h`. Each comma-separated item is
//!   `terms:<field>[:<size>]` (size 1..=[`MAX_TERMS_SIZE`], default 10) or
//!   `date_histogram:<interval>` (event time `ts`; interval `<n>ms|s|m|h|d`). Results are named
//!   after the field of a `terms` (`host`, `fields.user`) and `date_histogram` for the histogram.
//! - **JSON** ([`AggregationRequest::from_json`]): Elasticsearch's aggregation DSL as tantivy
//!   understands it (`{"by_host":{"terms":{"field":"host","size":5}}}`, sub-aggregations under
//!   `aggs`), with a hook that renames fields (the Elasticsearch API maps `host.name` to `host`).
//!   `calendar_interval` and the old `interval` of a `date_histogram` are accepted for units whose
//!   length is fixed in UTC (`1m`, `1h`, `1d`, `minute`, `hour`, `day`…).
//!
//! # Aggregatable fields
//! The fast fields of the schema: `ts`, `received_at`, `seq`, `host`, `app`, `severity`,
//! `severity_code`, `facility`, `signature`, `peer` and every `fields.<name>` (indexes created
//! before `fields` was a fast field contribute no buckets for it). Anything else is
//! [`IndexError::BadQuery`]. `host` and `app` aggregate in lower case, as they are searched.
//!
//! # Distribution and limits
//! Each tantivy index (time partition) computes intermediate results with tantivy's
//! `DistributedAggregationCollector`; [`merge`] folds them and [`finish`] turns them into the
//! final Elasticsearch-shaped JSON (`{"name":{"buckets":[{"key":…,"doc_count":…}]}}`;
//! `date_histogram` keys are epoch milliseconds with `key_as_string` in RFC 3339). Memory
//! ([`MEMORY_LIMIT_BYTES`]) and bucket count ([`BUCKET_LIMIT`]) are capped: a request over either
//! is a [`IndexError::BadQuery`].

use serde_json::Value;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::tokenizer::TokenizerManager;

use crate::error::IndexError;
use crate::schema;

/// Largest `size` of a `terms` aggregation.
pub const MAX_TERMS_SIZE: u32 = 10_000;
/// Most buckets one search may produce over all its aggregations.
pub const BUCKET_LIMIT: u32 = 65_000;
/// Memory one search's aggregations may use.
pub const MEMORY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// Most aggregations (at any depth) in one request.
const MAX_AGGREGATIONS: usize = 32;

/// Top-level fields that can be aggregated (they are fast fields).
const AGGREGATABLE: [&str; 10] = [
    schema::TS,
    schema::RECEIVED_AT,
    schema::SEQ,
    schema::HOST,
    schema::APP,
    schema::SEVERITY,
    schema::SEVERITY_CODE,
    schema::FACILITY,
    schema::SIGNATURE,
    schema::PEER,
];

/// A validated set of named aggregations.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationRequest {
    aggregations: Aggregations,
}

impl AggregationRequest {
    /// Parses the compact query-string form (see the module documentation).
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] naming the item that is not understood.
    pub fn parse_compact(text: &str) -> Result<AggregationRequest, IndexError> {
        let mut json = serde_json::Map::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let bad = |why: &str| IndexError::BadQuery(format!("aggregation `{item}`: {why}"));
            let (name, aggregation) = match item.split(':').collect::<Vec<_>>().as_slice() {
                ["terms", field] => (field.to_string(), terms_json(field, 10)),
                ["terms", field, size] => {
                    let size = size
                        .parse::<u32>()
                        .ok()
                        .filter(|size| (1..=MAX_TERMS_SIZE).contains(size))
                        .ok_or_else(|| bad(&format!("size must be 1 to {MAX_TERMS_SIZE}")))?;
                    (field.to_string(), terms_json(field, size))
                }
                ["date_histogram", interval] => (
                    "date_histogram".to_owned(),
                    serde_json::json!({"date_histogram": {"field": schema::TS, "fixed_interval": interval}}),
                ),
                _ => {
                    return Err(bad(
                        "expected terms:<field>[:<size>] or date_histogram:<interval>",
                    ));
                }
            };
            if json.insert(name, aggregation).is_some() {
                return Err(bad("asked twice"));
            }
        }
        if json.is_empty() {
            return Err(IndexError::BadQuery("aggs is empty".to_owned()));
        }
        AggregationRequest::from_json(Value::Object(json), &|field| Some(field.to_owned()))
    }

    /// Reads Elasticsearch's aggregation JSON; `rename` maps each `field` to a Cairn field name
    /// (`None`: the field is unknown).
    ///
    /// # Errors
    /// [`IndexError::BadQuery`] for JSON tantivy does not understand, an unknown or
    /// non-aggregatable field, too many aggregations, or an interval that is not fixed.
    pub fn from_json(
        mut json: Value,
        rename: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AggregationRequest, IndexError> {
        let mut count = 0;
        normalise(&mut json, rename, &mut count, 0)?;
        let aggregations: Aggregations = serde_json::from_value(json)
            .map_err(|error| IndexError::BadQuery(format!("aggregations: {error}")))?;
        Ok(AggregationRequest { aggregations })
    }

    /// The collector that computes intermediate results over one tantivy index.
    pub(crate) fn collector(&self) -> DistributedAggregationCollector {
        DistributedAggregationCollector::from_aggs(self.aggregations.clone(), context())
    }
}

fn context() -> AggContextParams {
    AggContextParams::new(
        AggregationLimitsGuard::new(Some(MEMORY_LIMIT_BYTES), Some(BUCKET_LIMIT)),
        TokenizerManager::default(),
    )
}

fn terms_json(field: &str, size: u32) -> Value {
    serde_json::json!({"terms": {"field": field, "size": size}})
}

/// Checks and rewrites one level of an aggregation object (`{"name": {"kind": {...}, "aggs": {...}}}`).
fn normalise(
    aggregations: &mut Value,
    rename: &dyn Fn(&str) -> Option<String>,
    count: &mut usize,
    depth: usize,
) -> Result<(), IndexError> {
    if depth > 4 {
        return Err(IndexError::BadQuery(
            "aggregations nest deeper than 4 levels".to_owned(),
        ));
    }
    let Value::Object(named) = aggregations else {
        return Err(IndexError::BadQuery(
            "aggregations must be an object of named aggregations".to_owned(),
        ));
    };
    for (name, aggregation) in named.iter_mut() {
        *count += 1;
        if *count > MAX_AGGREGATIONS {
            return Err(IndexError::BadQuery(format!(
                "more than {MAX_AGGREGATIONS} aggregations"
            )));
        }
        let Value::Object(parts) = aggregation else {
            return Err(IndexError::BadQuery(format!(
                "aggregation `{name}` must be an object"
            )));
        };
        if let Some(sub) = parts.remove("aggregations") {
            parts.insert("aggs".to_owned(), sub);
        }
        for (kind, body) in parts.iter_mut() {
            if kind == "aggs" {
                normalise(body, rename, count, depth + 1)?;
                continue;
            }
            let Value::Object(options) = body else {
                return Err(IndexError::BadQuery(format!(
                    "aggregation `{name}`: `{kind}` must be an object"
                )));
            };
            // Grafana sends some numbers as strings (`"min_doc_count": "0"`).
            for key in ["size", "min_doc_count", "shard_size", "segment_size"] {
                if let Some(number) = options
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|text| text.parse::<u64>().ok())
                {
                    options.insert(key.to_owned(), Value::from(number));
                }
            }
            if let Some(Value::String(field)) = options.get("field") {
                let renamed = rename(field)
                    .filter(|renamed| is_aggregatable(renamed))
                    .ok_or_else(|| {
                        IndexError::BadQuery(format!(
                            "aggregation `{name}`: `{field}` is not an aggregatable field \
                             (ts, host, app, severity, severity_code, facility, signature, \
                             seq, peer, fields.<name>)"
                        ))
                    })?;
                options.insert("field".to_owned(), Value::String(renamed));
            }
            if kind == "date_histogram" {
                fix_interval(name, options)?;
            }
            if kind == "terms"
                && let Some(size) = options.get("size").and_then(Value::as_u64)
                && size > u64::from(MAX_TERMS_SIZE)
            {
                return Err(IndexError::BadQuery(format!(
                    "aggregation `{name}`: size must be at most {MAX_TERMS_SIZE}"
                )));
            }
        }
    }
    Ok(())
}

fn is_aggregatable(field: &str) -> bool {
    AGGREGATABLE.contains(&field)
        || field
            .strip_prefix(schema::FIELDS)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|path| !path.is_empty())
}

/// Turns `interval`/`calendar_interval` into tantivy's `fixed_interval` where the unit has a fixed
/// length in UTC, drops a UTC `time_zone` and `format`, and reads bounds given as strings.
fn fix_interval(
    name: &str,
    options: &mut serde_json::Map<String, Value>,
) -> Result<(), IndexError> {
    for key in ["calendar_interval", "interval"] {
        if let Some(value) = options.remove(key) {
            let text = value.as_str().unwrap_or_default();
            let fixed = match text {
                "second" | "1s" => "1s",
                "minute" | "1m" => "1m",
                "hour" | "1h" => "1h",
                "day" | "1d" => "1d",
                "week" | "1w" => "7d",
                other if key == "interval" && fixed_interval_ms(other).is_some() => other,
                other => {
                    return Err(IndexError::BadQuery(format!(
                        "aggregation `{name}`: {key} `{other}` is not supported (use \
                         fixed_interval, e.g. 30m, 1h, 1d)"
                    )));
                }
            };
            options.insert("fixed_interval".to_owned(), Value::from(fixed));
        }
    }
    // Only changes `key_as_string` in Elasticsearch (Grafana sends `epoch_millis`); tantivy
    // refuses it. Keys are epoch milliseconds either way.
    options.remove("format");
    // Grafana sends bounds as strings of epoch milliseconds.
    for bounds in ["extended_bounds", "hard_bounds"] {
        if let Some(Value::Object(limits)) = options.get_mut(bounds) {
            for limit in limits.values_mut() {
                if let Some(number) = limit.as_str().and_then(|text| text.parse::<f64>().ok()) {
                    *limit = Value::from(number);
                }
            }
        }
    }
    if let Some(zone) = options.remove("time_zone") {
        let text = zone.as_str().unwrap_or_default();
        if !matches!(text, "UTC" | "utc" | "Z" | "+00:00" | "Etc/UTC") {
            return Err(IndexError::BadQuery(format!(
                "aggregation `{name}`: only the UTC time_zone is supported, got `{text}`"
            )));
        }
    }
    match options.get("fixed_interval").and_then(Value::as_str) {
        Some(text) if fixed_interval_ms(text).is_some() => Ok(()),
        Some(text) => Err(IndexError::BadQuery(format!(
            "aggregation `{name}`: interval `{text}` must be <n>ms, <n>s, <n>m, <n>h or <n>d"
        ))),
        None => Err(IndexError::BadQuery(format!(
            "aggregation `{name}`: date_histogram needs fixed_interval"
        ))),
    }
}

/// `30m` → 1_800_000; `None` for anything else.
fn fixed_interval_ms(text: &str) -> Option<u64> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok().filter(|number| *number > 0)?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

/// Folds the intermediate results of several tantivy indexes.
pub(crate) fn merge(
    parts: impl IntoIterator<Item = IntermediateAggregationResults>,
) -> Result<IntermediateAggregationResults, IndexError> {
    let mut merged = IntermediateAggregationResults::default();
    for part in parts {
        merged
            .merge_fruits(part)
            .map_err(|error| IndexError::BadQuery(format!("aggregations: {error}")))?;
    }
    Ok(merged)
}

/// The final, Elasticsearch-shaped JSON of merged results.
pub(crate) fn finish(
    request: &AggregationRequest,
    merged: IntermediateAggregationResults,
) -> Result<Value, IndexError> {
    let results = merged
        .into_final_result(request.aggregations.clone(), context().limits)
        .map_err(|error| IndexError::BadQuery(format!("aggregations: {error}")))?;
    let mut json = serde_json::to_value(results)
        .map_err(|error| IndexError::Internal(format!("aggregation results: {error}")))?;
    integral_date_keys(&mut json);
    Ok(json)
}

/// tantivy gives `date_histogram` keys as floats (`1704067200000.0`); Elasticsearch (and its
/// clients) use integers.
fn integral_date_keys(json: &mut Value) {
    match json {
        Value::Object(map) => {
            if map.contains_key("key_as_string")
                && let Some(key) = map.get("key").and_then(Value::as_f64)
                && key.fract() == 0.0
                && key.abs() < 9.0e15
            {
                map.insert("key".to_owned(), Value::from(key as i64));
            }
            map.values_mut().for_each(integral_date_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(integral_date_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(field: &str) -> Option<String> {
        Some(field.to_owned())
    }

    #[test]
    fn compact_form_names_terms_by_field_and_checks_everything() {
        assert!(
            AggregationRequest::parse_compact("terms:host,terms:fields.user:5,date_histogram:1h")
                .is_ok()
        );
        for bad in [
            "",
            "terms",
            "terms:message",
            "terms:host:0",
            "terms:host:99999",
            "terms:host,terms:host:3",
            "date_histogram:1M",
            "date_histogram:soon",
            "avg:seq",
            "terms:fields.",
        ] {
            assert!(
                matches!(
                    AggregationRequest::parse_compact(bad),
                    Err(IndexError::BadQuery(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_form_renames_fields_and_fixes_calendar_intervals() {
        let json = serde_json::json!({
            "hosts": {"terms": {"field": "host.name"}, "aggregations": {
                "per_day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day", "time_zone": "UTC"}}
            }}
        });
        let rename = |field: &str| match field {
            "host.name" => Some("host".to_owned()),
            "@timestamp" => Some("ts".to_owned()),
            _ => None,
        };
        assert!(AggregationRequest::from_json(json, &rename).is_ok());
        let weekly = serde_json::json!({"x": {"date_histogram": {"field": "ts", "calendar_interval": "1M"}}});
        assert!(AggregationRequest::from_json(weekly, &same).is_err());
        let zoned = serde_json::json!({"x": {"date_histogram": {"field": "ts", "fixed_interval": "1h", "time_zone": "Europe/Paris"}}});
        assert!(AggregationRequest::from_json(zoned, &same).is_err());
        // What Grafana sends: numbers as strings, bounds as strings, epoch_millis format.
        let grafana = serde_json::json!({"2": {"date_histogram": {
            "field": "ts", "interval": "10s", "min_doc_count": "0", "format": "epoch_millis",
            "extended_bounds": {"min": "1700000000000", "max": "1700000600000"}
        }, "aggs": {}}, "3": {"terms": {"field": "host", "size": "5", "order": {"_key": "desc"}}}});
        assert!(AggregationRequest::from_json(grafana, &same).is_ok());
        let unknown = serde_json::json!({"x": {"terms": {"field": "nope"}}});
        assert!(AggregationRequest::from_json(unknown, &same).is_err());
    }

    #[test]
    fn fixed_intervals_parse_only_whole_units() {
        assert_eq!(fixed_interval_ms("30m"), Some(1_800_000));
        assert_eq!(fixed_interval_ms("1d"), Some(86_400_000));
        for bad in ["", "m", "0h", "1.5h", "1y", "h1"] {
            assert_eq!(fixed_interval_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn date_keys_become_integers() {
        let mut json = serde_json::json!({"h": {"buckets": [{"key": 1704067200000.0, "key_as_string": "x", "doc_count": 1}, {"key": "web1", "doc_count": 2}]}});
        integral_date_keys(&mut json);
        assert_eq!(
            json["h"]["buckets"][0]["key"],
            serde_json::json!(1704067200000_i64)
        );
        assert_eq!(json["h"]["buckets"][1]["key"], "web1");
    }
}
