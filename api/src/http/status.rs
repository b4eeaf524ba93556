//! `/api/v1/stats`, `/metrics`, `/healthz`, `/readyz`.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_ingest::stats::StatsSnapshot;
use cairn_ingest::wal::WalStatsSnapshot;
use serde::Serialize;
use serde_json::json;

use super::AppState;
use crate::pipeline::QueueDepths;

#[derive(Debug, Serialize)]
pub(super) struct StatsResponse {
    #[serde(flatten)]
    counters: StatsSnapshot,
    queues: QueueDepths,
    wal: WalStatus,
    index_docs: u64,
    uptime_secs: u64,
    correlation: CorrelationFigures,
}

/// The correlation engine's figures (see `cairn_correlate::EngineStats`).
#[derive(Debug, Default, Serialize)]
pub(super) struct CorrelationFigures {
    observations: u64,
    processed: u64,
    late: u64,
    late_dropped: u64,
    missing_group_field: u64,
    evicted_groups: u64,
    expired_groups: u64,
    open_groups: u64,
    queued: u64,
    correlation_alerts: u64,
    detection_alerts: u64,
    /// The event-time watermark (RFC 3339), once an event was seen.
    watermark: Option<String>,
}

impl From<cairn_correlate::EngineStats> for CorrelationFigures {
    fn from(stats: cairn_correlate::EngineStats) -> Self {
        CorrelationFigures {
            observations: stats.observations,
            processed: stats.processed,
            late: stats.late,
            late_dropped: stats.late_dropped,
            missing_group_field: stats.missing_group_field,
            evicted_groups: stats.evicted_groups,
            expired_groups: stats.expired_groups,
            open_groups: stats.open_groups,
            queued: stats.queued,
            correlation_alerts: stats.correlation_alerts,
            detection_alerts: stats.detection_alerts,
            watermark: stats.watermark.map(|ts| ts.to_rfc3339()),
        }
    }
}

/// The WAL's counters and positions.
#[derive(Debug, Serialize)]
struct WalStatus {
    #[serde(flatten)]
    counters: WalStatsSnapshot,
    /// Position after the last record written.
    end: u64,
    /// Position up to which records are fsynced.
    durable: u64,
    /// Position of the oldest record kept.
    oldest: u64,
    /// True after a failed fsync: no more writes until restart.
    failed: bool,
}

fn collect(state: &AppState) -> StatsResponse {
    let wal = &state.inner.wal.wal;
    StatsResponse {
        counters: state.inner.stats.snapshot(),
        queues: state.inner.depths.depths(),
        wal: WalStatus {
            counters: wal.stats(),
            end: wal.end().0,
            durable: wal.durable().0,
            oldest: wal.oldest().0,
            failed: wal.is_failed(),
        },
        index_docs: state.inner.index.doc_count(),
        uptime_secs: state.inner.started.elapsed().as_secs(),
        correlation: state
            .inner
            .correlation
            .get()
            .map(|probe| probe.stats().into())
            .unwrap_or_default(),
    }
}

pub(super) async fn stats(State(state): State<AppState>) -> Json<StatsResponse> {
    Json(collect(&state))
}

/// Prometheus text exposition format (version 0.0.4).
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let stats = collect(&state);
    let counters = &stats.counters;
    let wal = &stats.wal;
    let mut out = String::with_capacity(8192);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let labelled = |label: &str, map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(key, value)| (format!("{{{label}=\"{key}\"}}"), *value))
            .collect::<Vec<_>>()
    };
    let plain = |value: u64| vec![(String::new(), value)];
    family(
        "cairn_received_events_total",
        "counter",
        "Events received, by source.",
        &labelled("source", &counters.received_by_source),
    );
    family(
        "cairn_received_bytes_total",
        "counter",
        "Bytes received, by source.",
        &labelled("source", &counters.received_bytes_by_source),
    );
    family(
        "cairn_replayed_events_total",
        "counter",
        "Events read back from the WAL at start (received by an earlier run).",
        &plain(counters.replayed),
    );
    family(
        "cairn_in_flight_events",
        "gauge",
        "received + replayed - indexed - dropped - rejected: zero once the queues are drained.",
        &plain(counters.reconcile.in_flight),
    );
    family(
        "cairn_parsed_events_total",
        "counter",
        "Events parsed without error.",
        &plain(counters.parsed),
    );
    family(
        "cairn_malformed_events_total",
        "counter",
        "Events that did not parse (indexed raw, flagged parse_error).",
        &plain(counters.malformed),
    );
    family(
        "cairn_truncated_events_total",
        "counter",
        "Frames cut at max_frame_bytes.",
        &plain(counters.truncated),
    );
    family(
        "cairn_invalid_utf8_events_total",
        "counter",
        "Frames converted lossily from invalid UTF-8.",
        &plain(counters.invalid_utf8),
    );
    family(
        "cairn_fields_truncated_events_total",
        "counter",
        "Events whose JSON fields were cut at parse.max_json_fields or parse.max_json_depth.",
        &plain(counters.fields_truncated),
    );
    family(
        "cairn_indexed_events_total",
        "counter",
        "Events committed to the index.",
        &plain(counters.indexed),
    );
    family(
        "cairn_dropped_events_total",
        "counter",
        "Events received but not indexed, by reason.",
        &labelled("reason", &counters.dropped),
    );
    family(
        "cairn_rejected_events_total",
        "counter",
        "HTTP lines rejected, by reason.",
        &labelled("reason", &counters.rejected),
    );
    family(
        "cairn_index_commits_total",
        "counter",
        "Index commits.",
        &plain(counters.commits),
    );
    family(
        "cairn_tcp_connections_accepted_total",
        "counter",
        "TCP connections accepted.",
        &plain(counters.connections_accepted),
    );
    family(
        "cairn_tcp_connections_refused_total",
        "counter",
        "TCP connections refused at max_connections.",
        &plain(counters.connections_refused),
    );
    family(
        "cairn_tcp_connections_idle_closed_total",
        "counter",
        "TCP connections closed for idleness.",
        &plain(counters.connections_idle_closed),
    );
    family(
        "cairn_tcp_connections_open",
        "gauge",
        "TCP connections open now.",
        &plain(counters.connections_open),
    );
    family(
        "cairn_http_throttled_total",
        "counter",
        "HTTP ingest requests answered 429.",
        &plain(counters.http_throttled),
    );
    family(
        "cairn_http_body_too_large_total",
        "counter",
        "HTTP ingest requests answered 413.",
        &plain(counters.http_body_too_large),
    );
    family(
        "cairn_queue_batches",
        "gauge",
        "Batches waiting in each pipeline queue.",
        &[
            (
                "{queue=\"work\"}".to_string(),
                stats.queues.work_batches as u64,
            ),
            (
                "{queue=\"index\"}".to_string(),
                stats.queues.index_batches as u64,
            ),
        ],
    );
    family(
        "cairn_queue_capacity_batches",
        "gauge",
        "Capacity of each pipeline queue.",
        &[
            (
                "{queue=\"work\"}".to_string(),
                stats.queues.work_capacity as u64,
            ),
            (
                "{queue=\"index\"}".to_string(),
                stats.queues.index_capacity as u64,
            ),
        ],
    );
    family(
        "cairn_wal_appended_records_total",
        "counter",
        "Records (batches) appended to the WAL.",
        &plain(wal.counters.appended_records),
    );
    family(
        "cairn_wal_appended_bytes_total",
        "counter",
        "Bytes appended to the WAL.",
        &plain(wal.counters.appended_bytes),
    );
    family(
        "cairn_wal_fsyncs_total",
        "counter",
        "WAL fsyncs (group commits, roll-overs, forced syncs).",
        &plain(wal.counters.fsyncs),
    );
    family(
        "cairn_wal_max_group_commit_records",
        "gauge",
        "Most records one WAL fsync covered.",
        &plain(wal.counters.max_group_commit_records),
    );
    family(
        "cairn_wal_disk_full_refusals_total",
        "counter",
        "WAL appends refused because the disk was full.",
        &plain(wal.counters.disk_full_refusals),
    );
    family(
        "cairn_wal_io_errors_total",
        "counter",
        "WAL appends that failed with another I/O error.",
        &plain(wal.counters.io_errors),
    );
    family(
        "cairn_wal_segments_created_total",
        "counter",
        "WAL segment files created.",
        &plain(wal.counters.segments_created),
    );
    family(
        "cairn_wal_segments_deleted_total",
        "counter",
        "WAL segment files deleted once indexed.",
        &plain(wal.counters.segments_deleted),
    );
    family(
        "cairn_wal_recovery_truncated_records_total",
        "counter",
        "Records cut from a torn WAL tail at start (never acknowledged).",
        &plain(wal.counters.recovery_truncated_records),
    );
    family(
        "cairn_wal_recovery_truncated_bytes_total",
        "counter",
        "Bytes cut from a torn WAL tail at start.",
        &plain(wal.counters.recovery_truncated_bytes),
    );
    family(
        "cairn_wal_retained_bytes",
        "gauge",
        "WAL bytes between the oldest record kept and the end.",
        &plain(wal.end.saturating_sub(wal.oldest)),
    );
    family(
        "cairn_wal_unsynced_bytes",
        "gauge",
        "WAL bytes written but not fsynced yet.",
        &plain(wal.end.saturating_sub(wal.durable)),
    );
    family(
        "cairn_wal_failed",
        "gauge",
        "1 after a failed WAL fsync (no writes until restart).",
        &plain(u64::from(wal.failed)),
    );
    family(
        "cairn_index_docs",
        "gauge",
        "Documents in the committed index.",
        &plain(stats.index_docs),
    );
    let correlation = &stats.correlation;
    for (name, kind, help, value) in [
        (
            "cairn_correlation_observations_total",
            "counter",
            "Observations made for correlation rules.",
            correlation.observations,
        ),
        (
            "cairn_correlation_late_total",
            "counter",
            "Observations that arrived behind the event-time watermark.",
            correlation.late,
        ),
        (
            "cairn_correlation_late_dropped_total",
            "counter",
            "Late observations whose window had closed (not correlated).",
            correlation.late_dropped,
        ),
        (
            "cairn_correlation_missing_group_field_total",
            "counter",
            "Observations not made because the event lacked a group-by field.",
            correlation.missing_group_field,
        ),
        (
            "cairn_correlation_evicted_groups_total",
            "counter",
            "Correlation groups evicted by the per-rule cap.",
            correlation.evicted_groups,
        ),
        (
            "cairn_correlation_open_groups",
            "gauge",
            "Correlation groups open now.",
            correlation.open_groups,
        ),
        (
            "cairn_correlation_alerts_total",
            "counter",
            "Alerts fired by correlation rules.",
            correlation.correlation_alerts,
        ),
        (
            "cairn_detection_alerts_total",
            "counter",
            "Alerts of detection rules that alert on their own.",
            correlation.detection_alerts,
        ),
    ] {
        family(name, kind, help, &plain(value));
    }
    family(
        "cairn_uptime_seconds",
        "gauge",
        "Seconds since start.",
        &plain(stats.uptime_secs),
    );
    let _ = writeln!(
        out,
        "# HELP cairn_wal_fsync_seconds_total Time spent in WAL fsyncs.\n# TYPE cairn_wal_fsync_seconds_total counter\ncairn_wal_fsync_seconds_total {}",
        wal.counters.fsync_seconds_total
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else if state.inner.wal.wal.is_failed() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": "unavailable", "message": "the wal stopped after a failed fsync; restart cairn"}})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": "unavailable", "message": "cairn is starting or stopping"}})),
        )
            .into_response()
    }
}
