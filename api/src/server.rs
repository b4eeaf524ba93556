//! Wiring: opens the index, starts the pipeline threads, binds the listeners and the HTTP API,
//! and shuts everything down in order.
//!
//! Start order: index → incident store and service (with correlation's latest checkpoint) →
//! webhook outbox → WAL → pipeline (correlation restored from the checkpoint's snapshot) → WAL
//! replay from the smallest position the index or correlation needs (see [`crate::wal_replay`])
//! → listeners → webhook deliveries → HTTP → ready. Stop order (on the shutdown token,
//! SIGTERM/SIGINT): not ready → listeners and HTTP stop accepting (incident event streams end;
//! webhook tasks record the attempt in flight and stop) → pipeline drains, correlation commits a
//! last checkpoint (snapshot + its alerts), the index commits → WAL closes → the incident service
//! drains its alerts, commits and closes the store. The whole stop is bounded by
//! [`SHUTDOWN_GRACE`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_correlate::incident::{
    IncidentService, IncidentStore, ServiceOptions, StoredCheckpoint, SystemClock,
};
use cairn_index::{EventIndex, IndexOptions};
use cairn_ingest::batch::SeqAllocator;
use cairn_ingest::listeners::{ListenerContext, WalSink, relp, tcp, tls, udp};
use cairn_ingest::parse::ParseOptions;
use cairn_ingest::stats::Stats;
use cairn_ingest::wal::{Position, Wal, WalError};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::correlation::CorrelationSetup;
use crate::http::{AppState, HttpLimits, router};
use crate::pipeline::{IndexerWal, Pipeline, PipelineConfig};
use crate::signatures::Signatures;
use crate::wal_replay::{close_wal, corruption_hint, open_wal, replay, replay_start};
use crate::webhooks::Webhooks;

/// How long a graceful stop may take before the process gives up waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the appliance could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] cairn_index::IndexError),
    #[error(transparent)]
    Listener(#[from] cairn_ingest::IngestError),
    #[error(transparent)]
    Incidents(#[from] cairn_correlate::incident::IncidentError),
    #[error("cannot load rules: {0}")]
    Rules(String),
    #[error("syslog over TLS: {0}")]
    Tls(#[from] cairn_ingest::tls::TlsError),
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    /// A WAL segment is damaged where a crash cannot have damaged it.
    #[error("write-ahead log: {error}; the way out: {hint}")]
    WalCorruption { error: WalError, hint: String },
    #[error("cannot bind http on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The incident store's file in the data dir.
pub const INCIDENT_STORE_FILE: &str = "incidents.sqlite";

/// Opens `<data_dir>/incidents.sqlite` with the configured policy and starts the incident
/// service. Its input is [`IncidentService::alert_sender`]; its API side is
/// [`IncidentService::handle`]. Blocking (opens and migrates the database).
pub fn start_incidents(config: &Config) -> Result<IncidentService, ServeError> {
    let path = config.data_dir.join(INCIDENT_STORE_FILE);
    let store = IncidentStore::open(&path, config.incidents.clone())?;
    tracing::info!(path = %path.display(), "incident store open");
    Ok(IncidentService::start(
        store,
        Arc::new(SystemClock),
        &ServiceOptions::default(),
    )?)
}

/// Runs the appliance until `shutdown` is cancelled, then stops gracefully. Each notification
/// of `reload_rules` (SIGHUP) reloads the rules.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    reload_rules: Arc<tokio::sync::Notify>,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    // HTTPS files are read first: a bad certificate stops the start before anything is opened.
    let http_tls = config
        .http_tls
        .as_ref()
        .map(|files| {
            files.load().map(|loaded| {
                let mut server = (*loaded).clone();
                server.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(server)
            })
        })
        .transpose()?;
    let index_dir = config.data_dir.join("index");
    let index = Arc::new(EventIndex::open_or_create(
        &index_dir,
        IndexOptions {
            writer_memory_bytes: config.writer_memory_bytes,
            writer_threads: config.writer_threads,
            retention: config.index_retention,
            ..IndexOptions::default()
        },
    )?);
    let next_seq = index
        .last_commit()
        .map(|payload| payload.last_seq.0 + 1)
        .unwrap_or(1)
        .max(index.max_seq()?.map(|seq| seq.0 + 1).unwrap_or(1));
    tracing::info!(
        dir = %index_dir.display(),
        docs = index.doc_count(),
        next_seq,
        "index open"
    );
    let index_position = index
        .last_commit()
        .and_then(|payload| payload.wal_position)
        .map(Position);
    let incident_config = config.clone();
    let (incidents, checkpoint) = tokio::task::spawn_blocking(move || {
        let incidents = start_incidents(&incident_config)?;
        let checkpoint = incidents.handle().correlation_checkpoint()?;
        Ok::<_, ServeError>((incidents, checkpoint))
    })
    .await
    .map_err(|error| {
        ServeError::Incidents(cairn_correlate::incident::IncidentError::Unavailable(
            format!("incident store task failed: {error}"),
        ))
    })??;
    let webhook_config = config.webhooks.clone();
    let store_path = config.data_dir.join(INCIDENT_STORE_FILE);
    let webhooks = tokio::task::spawn_blocking(move || Webhooks::open(webhook_config, &store_path))
        .await
        .map_err(|error| {
            ServeError::Incidents(cairn_correlate::incident::IncidentError::Unavailable(
                format!("webhook outbox task failed: {error}"),
            ))
        })??;
    let correlated_position = checkpoint
        .as_ref()
        .map(|stored| Position(stored.checkpoint.wal_position));
    let wal_dir = config.data_dir.join("wal");
    let wal_options = config.wal.clone();
    // Neither consumer may see a position it committed reused.
    let committed = index_position.max(correlated_position);
    let wal = tokio::task::spawn_blocking(move || open_wal(&wal_dir, wal_options, committed))
        .await
        .map_err(|error| {
            ServeError::Wal(WalError::Io {
                path: config.data_dir.join("wal"),
                source: std::io::Error::other(error.to_string()),
            })
        })?
        .map_err(wal_start_error)?;
    let wal = Arc::new(wal);
    let replay_from = replay_start(index_position, correlated_position.as_slice(), wal.oldest());
    let indexed_up_to = index_position.map_or(replay_from, |position| position.max(replay_from));
    let correlation = correlation_setup(
        &config,
        &incidents,
        &wal,
        checkpoint,
        index_position,
        replay_from,
    );
    let (skip_sender, skip_receiver) = crossbeam_channel::unbounded();
    let wal_sink = WalSink {
        wal: Arc::clone(&wal),
        skips: skip_sender,
    };

    let stats = Arc::new(Stats::new());
    let rule_sources = config.rules.clone();
    let signatures = tokio::task::spawn_blocking(move || Signatures::load(rule_sources))
        .await
        .map(Arc::new)
        .map_err(|error| ServeError::Rules(error.to_string()))?;
    let parse_options = ParseOptions {
        default_tz: config.default_timezone.clone(),
        max_json_fields: config.max_json_fields,
        max_json_depth: config.max_json_depth,
        year: None,
    };
    let pipeline = Pipeline::start(
        &PipelineConfig {
            workers: config.workers,
            queue_batches: config.queue_batches,
            index_queue_batches: config.index_queue_batches,
            memory_budget_bytes: config.memory_budget_bytes,
            commit_interval: config.commit_interval,
        },
        Arc::clone(&index),
        parse_options.clone(),
        &config.normaliser,
        &signatures,
        Arc::clone(&stats),
        correlation,
        IndexerWal {
            wal: Arc::clone(&wal),
            indexed_up_to,
            skips: skip_receiver,
        },
    )?;
    let replay_wal = Arc::clone(&wal);
    let replay_queue = pipeline.work_queue();
    let replay_sink = wal_sink.clone();
    let replay_stats = Arc::clone(&stats);
    let replayed = tokio::task::spawn_blocking(move || {
        replay(
            &replay_wal,
            replay_from,
            &replay_queue,
            &replay_sink,
            &replay_stats,
        )
    })
    .await;
    let replayed = match replayed {
        Ok(result) => result.map_err(wal_start_error),
        Err(join_error) => Err(ServeError::Wal(WalError::Io {
            path: config.data_dir.join("wal"),
            source: std::io::Error::other(join_error.to_string()),
        })),
    };
    let summary = match replayed {
        Ok(summary) => summary,
        Err(error) => {
            drop(wal_sink);
            tokio::task::spawn_blocking(move || {
                pipeline.shutdown();
                close_wal(wal);
                incidents.shutdown()
            })
            .await
            .ok();
            return Err(error);
        }
    };
    tracing::info!(
        from = replay_from.0,
        to = wal.end().0,
        records = summary.records,
        events = summary.events,
        gaps = summary.gaps,
        "wal replayed into the pipeline"
    );
    let seqs = SeqAllocator::starting_at(next_seq.max(summary.next_seq));
    let listener_shutdown = CancellationToken::new();
    let context = ListenerContext {
        queue: pipeline.work_queue(),
        wal: wal_sink.clone(),
        seqs: seqs.clone(),
        stats: Arc::clone(&stats),
        shutdown: listener_shutdown.clone(),
    };

    let mut tasks = tokio::task::JoinSet::new();
    let started = start_listeners(&config, &context, &mut tasks).await;
    if let Err(error) = started {
        listener_shutdown.cancel();
        tasks.shutdown().await;
        tokio::task::spawn_blocking(move || drain_and_close(pipeline, wal, incidents))
            .await
            .ok();
        return Err(error);
    }

    let state = AppState::new(
        Arc::clone(&index),
        Arc::clone(&stats),
        pipeline.work_queue(),
        wal_sink,
        pipeline.depth_probe(),
        Arc::clone(&signatures),
        seqs,
        parse_options,
        HttpLimits {
            max_body_bytes: config.max_body_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
            max_line_bytes: config.max_line_bytes,
            retry_after: config.retry_after,
        },
    );
    state.set_incidents(incidents.handle(), listener_shutdown.clone());
    state.set_correlation(pipeline.correlation_probe());
    state.set_hec(config.hec.clone());
    webhooks.spawn(&incidents.handle(), &listener_shutdown, &mut tasks);
    state.set_webhooks(webhooks);
    state.set_auth(&config.auth);
    match crate::http::tail::TailHub::start(
        config.tail.clone(),
        Arc::clone(&index),
        pipeline.indexed_feed(),
        listener_shutdown.clone(),
    ) {
        Ok(hub) => state.set_tail(hub),
        Err(error) => {
            tracing::error!(%error, "cannot start the live tail; /api/v1/tail answers 503")
        }
    }
    if let Some(addr) = config.http {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(source) => {
                listener_shutdown.cancel();
                tasks.shutdown().await;
                tokio::task::spawn_blocking(move || drain_and_close(pipeline, wal, incidents))
                    .await
                    .ok();
                return Err(ServeError::HttpBind { addr, source });
            }
        };
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "http listening");
        if config.auth.enabled() {
            tracing::info!(
                tokens = config.auth.tokens.len(),
                "api tokens required (Authorization: Bearer) on every route but /healthz, /readyz and /api/v1/openapi.json"
            );
        } else {
            tracing::warn!(
                %addr,
                "no [[auth.token]] configured: the API needs no token and is served on loopback only"
            );
        }
        let app = router(state.clone());
        let bodies = crate::http::serve::BodyBudget {
            memory: pipeline.memory_budget(),
            max_body_bytes: config.max_body_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
            retry_after: config.retry_after,
        };
        tasks.spawn(crate::http::serve::serve(
            listener,
            app,
            config.http_serve,
            bodies,
            http_tls,
            Arc::clone(&stats),
            listener_shutdown.clone(),
        ));
    }
    let reload_signatures = Arc::clone(&signatures);
    let reload_shutdown = listener_shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = reload_shutdown.cancelled() => return,
                () = reload_rules.notified() => {}
            }
            let signatures = Arc::clone(&reload_signatures);
            let _ = tokio::task::spawn_blocking(move || signatures.reload()).await;
        }
    });
    state.set_ready(true);
    tracing::info!("cairn is ready");

    shutdown.cancelled().await;
    tracing::info!("stopping: no new input, draining the pipeline");
    state.set_ready(false);
    listener_shutdown.cancel();
    let stop = async {
        while tasks.join_next().await.is_some() {}
        let drained =
            tokio::task::spawn_blocking(move || drain_and_close(pipeline, wal, incidents)).await;
        match drained {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "incident store did not close cleanly"),
            Err(_) => tracing::error!("pipeline shutdown panicked"),
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, stop).await.is_err() {
        tracing::error!(grace = ?SHUTDOWN_GRACE, "graceful stop timed out");
    }
    let snapshot = stats.snapshot();
    tracing::info!(
        received = snapshot.received,
        indexed = snapshot.indexed,
        dropped = snapshot.dropped_total,
        rejected = snapshot.rejected_total,
        "stopped"
    );
    Ok(())
}

/// The blocking end of every stop (graceful or after a failed start): drain the pipeline,
/// checkpoint correlation and commit the index, close the WAL (everything the index and the
/// checkpoint cover is done; the rest is replayed next time), then, the alerts' producer having
/// stopped, let the incident service apply what is queued and close the store.
fn drain_and_close(
    pipeline: Pipeline,
    wal: Arc<Wal>,
    incidents: IncidentService,
) -> Result<(), cairn_correlate::incident::IncidentError> {
    pipeline.shutdown();
    close_wal(wal);
    incidents.shutdown()
}

/// Where correlation resumes: at its checkpoint's position with its snapshot; without one (a
/// new data dir, or a store from before checkpoints), where the index resumes (an older build
/// correlated everything it indexed), else where replay starts. Never before the replay start.
fn correlation_setup(
    config: &Config,
    incidents: &IncidentService,
    wal: &Arc<Wal>,
    checkpoint: Option<StoredCheckpoint>,
    index_position: Option<Position>,
    replay_from: Position,
) -> CorrelationSetup {
    let (resume_at, snapshot) = match checkpoint {
        Some(stored) => {
            tracing::info!(
                position = stored.checkpoint.wal_position,
                snapshot_bytes = stored.checkpoint.snapshot.as_ref().map_or(0, Vec::len),
                taken_at_ns = stored.taken_at.0,
                "correlation resumes from its checkpoint"
            );
            (
                Position(stored.checkpoint.wal_position),
                stored.checkpoint.snapshot,
            )
        }
        None => (index_position.unwrap_or(replay_from), None),
    };
    CorrelationSetup {
        engine: config.correlation.clone(),
        checkpoints: config.correlation_checkpoints,
        incidents: incidents.handle(),
        resume_at: resume_at.max(replay_from),
        snapshot,
        wal: Arc::clone(wal),
    }
}

/// A WAL error at start-up; a corrupt segment gets the way out in its message.
fn wal_start_error(error: WalError) -> ServeError {
    match corruption_hint(&error) {
        Some(hint) => ServeError::WalCorruption { error, hint },
        None => ServeError::Wal(error),
    }
}

async fn start_listeners(
    config: &Config,
    context: &ListenerContext,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), ServeError> {
    if let Some(addr) = config.syslog_udp {
        let udp_config = udp::UdpConfig {
            max_frame_bytes: config.max_frame_bytes,
            receive_buffer_bytes: config.udp_receive_buffer_bytes,
            ..udp::UdpConfig::default()
        };
        let socket = udp::bind(addr, &udp_config)?;
        tracing::info!(addr = %socket.local_addr().unwrap_or(addr), "syslog udp listening");
        tasks.spawn(udp::run(socket, udp_config, context.clone()));
    }
    if let Some(addr) = config.syslog_tcp {
        let listener = tcp::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "syslog tcp listening");
        tasks.spawn(tcp::run(listener, stream_config(config), context.clone()));
    }
    if let Some((addr, files)) = &config.syslog_tls {
        let server_config = files.load()?;
        let listener = tls::bind(*addr).await?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(*addr), mutual = files.client_ca.is_some(), "syslog tls listening");
        let tls_config = tls::TlsListenerConfig {
            stream: stream_config(config),
            handshake_timeout: config.tls_handshake_timeout,
        };
        tasks.spawn(tls::run(
            listener,
            server_config,
            tls_config,
            context.clone(),
        ));
    }
    if let Some(addr) = config.relp {
        let listener = relp::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "relp listening");
        tasks.spawn(relp::run(listener, stream_config(config), context.clone()));
    }
    Ok(())
}

/// The limits every stream listener (TCP, TLS, RELP) applies.
fn stream_config(config: &Config) -> tcp::TcpConfig {
    tcp::TcpConfig {
        max_frame_bytes: config.max_frame_bytes,
        max_connections: config.max_connections,
        max_connections_per_source: config.max_connections_per_source,
        idle_timeout: config.idle_timeout,
        ..tcp::TcpConfig::default()
    }
}
