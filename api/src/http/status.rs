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
    /// Time partitions (oldest first), their bytes, and what retention dropped.
    index: cairn_index::IndexStatus,
    uptime_secs: u64,
    correlation: CorrelationFigures,
    /// Webhook counters per target since start (see `crate::webhooks::TargetCounts`).
    webhooks: std::collections::BTreeMap<String, crate::webhooks::TargetCounts>,
    /// Authentication failures and rate limiting.
    auth: Option<super::auth::AuthStatsSnapshot>,
    /// The live tail.
    tail: Option<super::tail::TailStatsSnapshot>,
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
    timers: u64,
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
            timers: stats.timers,
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
        index: state.inner.index.status(),
        uptime_secs: state.inner.started.elapsed().as_secs(),
        correlation: state
            .inner
            .correlation
            .get()
            .map(|probe| probe.stats().into())
            .unwrap_or_default(),
        webhooks: state
            .inner
            .webhooks
            .get()
            .map(crate::webhooks::Webhooks::counts)
            .unwrap_or_default(),
        auth: state.inner.auth.get().map(|guard| guard.snapshot()),
        tail: state.inner.tail.get().map(super::tail::TailHub::snapshot),
    }
}

/// Counters of every stage.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "status",
    responses((status = 200, description = "Counters", body = super::openapi::StatsDoc)),
)]
pub(super) async fn stats(State(state): State<AppState>) -> Json<StatsResponse> {
    Json(collect(&state))
}

/// Prometheus text exposition format (version 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "status",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")),
)]
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
        "cairn_http_rejected_events_total",
        "counter",
        "HTTP lines, _bulk items and HEC events rejected, by source and reason.",
        &counters
            .rejected_by_source
            .iter()
            .flat_map(|(source, reasons)| {
                reasons.iter().map(move |(reason, value)| {
                    (
                        format!("{{source=\"{source}\",reason=\"{reason}\"}}"),
                        *value,
                    )
                })
            })
            .collect::<Vec<_>>(),
    );
    family(
        "cairn_http_unauthorized_total",
        "counter",
        "HTTP ingest requests refused for a missing or wrong token (Splunk HEC).",
        &plain(counters.http_unauthorized),
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
        "TCP connections refused, by the limit that refused them.",
        &[
            (
                "{limit=\"max_connections\"}".to_string(),
                counters.connections_refused - counters.connections_refused_per_source,
            ),
            (
                "{limit=\"max_connections_per_source\"}".to_string(),
                counters.connections_refused_per_source,
            ),
        ],
    );
    let http = &counters.http_connections;
    family(
        "cairn_http_connections_accepted_total",
        "counter",
        "HTTP connections accepted.",
        &plain(http.accepted),
    );
    family(
        "cairn_http_connections_refused_total",
        "counter",
        "HTTP connections refused, by the limit that refused them.",
        &[
            (
                "{limit=\"max_connections\"}".to_string(),
                http.refused - http.refused_per_source,
            ),
            (
                "{limit=\"max_connections_per_source\"}".to_string(),
                http.refused_per_source,
            ),
        ],
    );
    family(
        "cairn_http_connections_timed_out_total",
        "counter",
        "HTTP connections closed for a request head or body that came too slowly.",
        &plain(http.timed_out),
    );
    family(
        "cairn_http_connections_open",
        "gauge",
        "HTTP connections open now.",
        &plain(http.open),
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
        "cairn_tls_handshake_failed_total",
        "counter",
        "Syslog-over-TLS handshakes that failed, by reason (untrusted_certificate, no_client_certificate, protocol, timeout, io).",
        &labelled("reason", &counters.tls_handshake_failed),
    );
    family(
        "cairn_relp_sessions_total",
        "counter",
        "RELP sessions opened.",
        &plain(counters.relp_sessions),
    );
    family(
        "cairn_relp_protocol_errors_total",
        "counter",
        "RELP sessions closed for a protocol error.",
        &plain(counters.relp_protocol_errors),
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
        "cairn_memory_bytes",
        "gauge",
        "Bytes held by queued batches and HTTP bodies in flight.",
        &plain(stats.queues.memory_bytes as u64),
    );
    family(
        "cairn_memory_budget_bytes",
        "gauge",
        "The memory budget of queues and HTTP bodies ([pipeline] memory_budget_mb).",
        &plain(stats.queues.memory_budget_bytes as u64),
    );
    family(
        "cairn_memory_refusals_total",
        "counter",
        "Admissions refused because the memory budget was spent.",
        &plain(stats.queues.memory_refusals),
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
    for (name, kind, help, value) in [
        (
            "cairn_index_partitions",
            "gauge",
            "Time partitions of the index.",
            stats.index.partitions.len() as u64,
        ),
        (
            "cairn_index_bytes",
            "gauge",
            "Bytes of the index on disk.",
            stats.index.bytes,
        ),
        (
            "cairn_index_dropped_partitions_total",
            "counter",
            "Index partitions dropped by retention.",
            stats.index.dropped_partitions,
        ),
        (
            "cairn_index_dropped_partition_events_total",
            "counter",
            "Events in the index partitions dropped by retention.",
            stats.index.dropped_events,
        ),
    ] {
        family(name, kind, help, &plain(value));
    }
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
            "cairn_correlation_timers",
            "gauge",
            "Correlation window timers armed now (stale ones included until swept).",
            correlation.timers,
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
    let webhook_samples: Vec<(String, u64)> = stats
        .webhooks
        .iter()
        .flat_map(|(target, counts)| {
            [
                ("delivered", counts.delivered),
                ("failed_attempt", counts.failed_attempts),
                ("dead", counts.dead),
            ]
            .map(|(result, value)| {
                (
                    format!("{{target=\"{target}\",result=\"{result}\"}}"),
                    value,
                )
            })
        })
        .collect();
    family(
        "cairn_webhook_deliveries_total",
        "counter",
        "Webhook outcomes by target: delivered (2xx), failed_attempt (any failed try), dead (given up).",
        &webhook_samples,
    );
    if let Some(auth) = &stats.auth {
        family(
            "cairn_http_auth_failed_total",
            "counter",
            "HTTP requests refused by authentication (401) or authorisation (403), by reason.",
            &labelled(
                "reason",
                &auth
                    .failed
                    .iter()
                    .map(|(reason, count)| (reason.to_string(), *count))
                    .collect(),
            ),
        );
        family(
            "cairn_http_rate_limited_total",
            "counter",
            "HTTP requests answered 429 because their token was over its rate, by token name.",
            &labelled("token", &auth.rate_limited),
        );
    }
    if let Some(tail) = &stats.tail {
        family(
            "cairn_tail_clients",
            "gauge",
            "Live tail clients connected.",
            &plain(tail.clients),
        );
        family(
            "cairn_tail_sent_events_total",
            "counter",
            "Events sent to live tail clients (each client counts).",
            &plain(tail.sent),
        );
        family(
            "cairn_tail_cut_off_total",
            "counter",
            "Live tail clients cut off, by reason (slow_client, fell_behind).",
            &labelled(
                "reason",
                &tail
                    .cut_off
                    .iter()
                    .map(|(reason, count)| (reason.to_string(), *count))
                    .collect(),
            ),
        );
        family(
            "cairn_tail_missed_batches_total",
            "counter",
            "Indexed batches the live tail did not see because it was behind.",
            &plain(tail.missed_batches),
        );
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

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "status",
    responses((status = 200, description = "Alive", body = super::openapi::StatusDoc)),
)]
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: started, not stopping, and the WAL takes writes.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "status",
    responses(
        (status = 200, description = "Ready", body = super::openapi::StatusDoc),
        (status = 503, description = "Starting, stopping, or the WAL stopped", body = super::openapi::ErrorBody),
    ),
)]
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
