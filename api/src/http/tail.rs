//! `GET /api/v1/tail?q=QUERY`: matching events as they are indexed, as server-sent events.
//!
//! # Protocol
//! The response is `text/event-stream`. Each matching event is one unnamed SSE event
//! (`message`): `id:` its `seq`, `data:` the event as `/api/v1/search` shows it. `q` is a search
//! query with the same meaning as in `/api/v1/search` (empty: every event); an invalid one is a
//! 400 before the stream starts. Events come in the order they were indexed (WAL order), each
//! once; only events indexed after the request arrived are sent (use `/api/v1/search` for the
//! past). A comment (`: keep-alive`) is sent every 15 s so proxies keep the connection open.
//!
//! # Bounded, never in ingest's way
//! The indexer hands each batch it added to the [`IndexedFeed`] without waiting (and only while
//! someone tails). One thread, `cairn-tail`, takes what accumulated, indexes it a second time
//! into a throwaway in-RAM index ([`RecentEvents`]: same schema, so a query means exactly what
//! it means in a search) and runs every client's query on it. Each client has a bounded buffer
//! of `[tail] buffer_events` serialised events, filled with `try_send`: when it is full the
//! client is cut off. Its stream then ends with one last event,
//! `event: overflow` (`data: {"reason":"slow_client","message":…}`), after the events that fit.
//! If the tail thread itself falls behind ingest (the feed's channel is full), every client is
//! cut off the same way with `reason: "fell_behind"`: no client ever sees a silent gap.
//!
//! Cost: only while at least one client is connected, each indexed event is indexed once more
//! in RAM on the tail thread (about the indexer's own cost per event) and each client's query
//! runs once per round (a round takes everything accumulated since the previous one).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use cairn_index::{EventIndex, RecentEvents};
use cairn_ingest::EventBatch;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState};
use crate::pipeline::IndexedFeed;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the tail thread looks for disconnected clients when nothing is indexed.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Most events one round indexes in RAM; a round with more is split.
const MAX_ROUND_EVENTS: usize = 50_000;

/// The validated `[tail]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailConfig {
    /// Clients served at once; more get 503.
    pub max_clients: usize,
    /// Serialised events buffered per client before it is cut off.
    pub buffer_events: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            max_clients: 64,
            buffer_events: 1024,
        }
    }
}

/// Why a client's stream was ended by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutOff {
    /// The client did not read fast enough: its buffer filled.
    SlowClient,
    /// The tail thread could not keep up with ingest: a batch was not seen.
    FellBehind,
}

impl CutOff {
    fn name(self) -> &'static str {
        match self {
            CutOff::SlowClient => "slow_client",
            CutOff::FellBehind => "fell_behind",
        }
    }

    fn message(self) -> &'static str {
        match self {
            CutOff::SlowClient => {
                "the client did not read fast enough and its buffer filled; events after this \
                 point were not sent. Reconnect, and search for what was missed"
            }
            CutOff::FellBehind => {
                "the tail fell behind ingest and missed events; reconnect, and search for what \
                 was missed"
            }
        }
    }
}

/// One connected client, as the tail thread sees it.
#[derive(Debug)]
struct Client {
    query: Box<dyn cairn_index::Query>,
    sender: mpsc::Sender<String>,
    /// Set when the server ends the stream; read by the stream once the buffer is drained.
    cut_off: Arc<OnceLock<CutOff>>,
}

/// The counters of the tail.
#[derive(Debug, Default)]
struct TailCounters {
    sent: AtomicU64,
    rounds: AtomicU64,
    cut_off_slow: AtomicU64,
    cut_off_behind: AtomicU64,
    errors: AtomicU64,
}

/// The tail's figures for `/api/v1/stats` and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct TailStatsSnapshot {
    /// Clients connected now.
    pub clients: u64,
    /// Events sent to clients (each client counts).
    pub sent: u64,
    /// Rounds of the tail thread (batches indexed in RAM and queried).
    pub rounds: u64,
    /// Clients cut off, by reason (`slow_client`, `fell_behind`).
    pub cut_off: std::collections::BTreeMap<&'static str, u64>,
    /// Indexed batches the tail did not see because it was behind.
    pub missed_batches: u64,
    /// Rounds that failed (the RAM index could not be built); their clients were cut off.
    pub errors: u64,
}

#[derive(Debug)]
struct HubInner {
    config: TailConfig,
    index: Arc<EventIndex>,
    feed: IndexedFeed,
    clients: Mutex<Vec<Client>>,
    counters: TailCounters,
    shutdown: CancellationToken,
}

/// The live tail: the clients and the thread that serves them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TailHub {
    inner: Arc<HubInner>,
}

impl TailHub {
    /// Starts the `cairn-tail` thread following `feed`; it ends when `shutdown` is cancelled
    /// (which also ends every client's stream).
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(
        config: TailConfig,
        index: Arc<EventIndex>,
        feed: IndexedFeed,
        shutdown: CancellationToken,
    ) -> std::io::Result<TailHub> {
        let hub = TailHub {
            inner: Arc::new(HubInner {
                config,
                index,
                feed,
                clients: Mutex::new(Vec::new()),
                counters: TailCounters::default(),
                shutdown,
            }),
        };
        let thread_hub = hub.clone();
        std::thread::Builder::new()
            .name("cairn-tail".to_string())
            .spawn(move || thread_hub.run())?;
        Ok(hub)
    }

    /// The figures.
    pub fn snapshot(&self) -> TailStatsSnapshot {
        let counters = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TailStatsSnapshot {
            clients: self.lock_clients().len() as u64,
            sent: load(&counters.sent),
            rounds: load(&counters.rounds),
            cut_off: [
                (CutOff::SlowClient.name(), load(&counters.cut_off_slow)),
                (CutOff::FellBehind.name(), load(&counters.cut_off_behind)),
            ]
            .into_iter()
            .collect(),
            missed_batches: self.inner.feed.missed(),
            errors: load(&counters.errors),
        }
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client; `Err` when `max_clients` are connected.
    fn subscribe(
        &self,
        query: Box<dyn cairn_index::Query>,
    ) -> Result<(mpsc::Receiver<String>, Arc<OnceLock<CutOff>>), ApiError> {
        let mut clients = self.lock_clients();
        clients.retain(|client| !client.sender.is_closed());
        if clients.len() >= self.inner.config.max_clients {
            return Err(ApiError::Unavailable(format!(
                "{} tail clients are connected, the most [tail] max_clients allows",
                clients.len()
            )));
        }
        let (sender, receiver) = mpsc::channel(self.inner.config.buffer_events);
        let cut_off = Arc::new(OnceLock::new());
        clients.push(Client {
            query,
            sender,
            cut_off: Arc::clone(&cut_off),
        });
        self.inner.feed.set_following(true);
        Ok((receiver, cut_off))
    }

    /// The tail thread: takes what the indexer added, serves every client, prunes the gone.
    fn run(&self) {
        let receiver = self.inner.feed.receiver().clone();
        let mut missed_seen = self.inner.feed.missed();
        let mut round: Vec<EventBatch> = Vec::new();
        while !self.inner.shutdown.is_cancelled() {
            match receiver.recv_timeout(IDLE_POLL) {
                Ok(batch) => round.push(batch),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            let mut events: usize = round.iter().map(Vec::len).sum();
            while events < MAX_ROUND_EVENTS
                && let Ok(batch) = receiver.try_recv()
            {
                events += batch.len();
                round.push(batch);
            }
            let missed = self.inner.feed.missed();
            if missed != missed_seen {
                missed_seen = missed;
                self.cut_off_all(CutOff::FellBehind);
            }
            self.serve(&round);
            round.clear();
        }
        self.inner.feed.set_following(false);
        self.lock_clients().clear();
    }

    /// Runs every client's query on `batches` and queues the matches.
    fn serve(&self, batches: &[EventBatch]) {
        let mut clients = self.lock_clients();
        clients.retain(|client| !client.sender.is_closed());
        self.inner.feed.set_following(!clients.is_empty());
        if clients.is_empty() || batches.iter().all(Vec::is_empty) {
            return;
        }
        // Building the RAM index under the lock only delays new subscriptions, never ingest.
        let recent = match RecentEvents::build(batches.iter().flatten()) {
            Ok(recent) => recent,
            Err(error) => {
                tracing::error!(%error, "tail: cannot index a round in RAM; cutting clients off");
                self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                drop(clients);
                self.cut_off_all(CutOff::FellBehind);
                return;
            }
        };
        self.inner.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let mut sent = 0u64;
        clients.retain(|client| {
            let hits = match recent.matching(client.query.as_ref()) {
                Ok(hits) => hits,
                Err(error) => {
                    tracing::error!(%error, "tail: a query failed on a round");
                    self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                    self.count_cut_off(CutOff::FellBehind);
                    let _ = client.cut_off.set(CutOff::FellBehind);
                    return false;
                }
            };
            for hit in &hits {
                let Ok(json) = serde_json::to_string(hit) else {
                    continue;
                };
                match client.sender.try_send(json) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.count_cut_off(CutOff::SlowClient);
                        let _ = client.cut_off.set(CutOff::SlowClient);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
        self.inner.counters.sent.fetch_add(sent, Ordering::Relaxed);
    }

    fn count_cut_off(&self, reason: CutOff) {
        let counter = match reason {
            CutOff::SlowClient => &self.inner.counters.cut_off_slow,
            CutOff::FellBehind => &self.inner.counters.cut_off_behind,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends every client's stream (after what is buffered) with `reason`.
    fn cut_off_all(&self, reason: CutOff) {
        let mut clients = self.lock_clients();
        for client in clients.drain(..) {
            if !client.sender.is_closed() {
                self.count_cut_off(reason);
                let _ = client.cut_off.set(reason);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TailParams {
    #[serde(default)]
    q: String,
}

/// `GET /api/v1/tail`.
#[utoipa::path(
    get,
    path = "/api/v1/tail",
    tag = "events",
    params(("q" = Option<String>, Query, description = "Query, as in /api/v1/search (empty: every event)")),
    responses(
        (status = 200, description = "Server-sent events: one per matching event (`id:` its seq, `data:` the event as search shows it); a last `event: overflow` when the client was cut off", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter or query", body = super::openapi::ErrorBody),
        (status = 503, description = "Too many tail clients, or the tail is not running", body = super::openapi::ErrorBody),
    ),
)]
pub(super) async fn tail(
    State(state): State<AppState>,
    params: Result<Query<TailParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let hub = state
        .inner
        .tail
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the live tail is not running".to_string()))?;
    let query = hub.inner.index.parse_query(&params.q)?;
    let (receiver, cut_off) = hub.subscribe(query)?;
    let stream = ClientStream {
        receiver,
        cut_off,
        shutdown: hub.inner.shutdown.clone(),
        finished: false,
    };
    let events = futures_util::stream::unfold(stream, |mut stream| async move {
        let event = stream.next_event().await?;
        Some((Ok(event), stream))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One client's end: its buffer, then the reason it was cut off, if it was.
struct ClientStream {
    receiver: mpsc::Receiver<String>,
    cut_off: Arc<OnceLock<CutOff>>,
    shutdown: CancellationToken,
    finished: bool,
}

impl ClientStream {
    async fn next_event(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let received = tokio::select! {
            () = self.shutdown.cancelled() => None,
            received = self.receiver.recv() => received,
        };
        if let Some(json) = received {
            let seq = seq_of(&json);
            let event = Event::default().data(json);
            return Some(match seq {
                Some(seq) => event.id(seq),
                None => event,
            });
        }
        self.finished = true;
        let reason = self.cut_off.get()?;
        Some(Event::default().event("overflow").data(
            serde_json::json!({"reason": reason.name(), "message": reason.message()}).to_string(),
        ))
    }
}

/// The `seq` at the start of a serialised hit (`{"seq":N,…`), for the SSE `id:`.
fn seq_of(json: &str) -> Option<String> {
    let digits = json.strip_prefix("{\"seq\":")?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    (end > 0).then(|| digits[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_read_from_the_head_of_a_hit() {
        assert_eq!(seq_of(r#"{"seq":42,"ts":"x"}"#).as_deref(), Some("42"));
        assert_eq!(seq_of(r#"{"ts":"x"}"#), None);
        assert_eq!(seq_of(r#"{"seq":,"#), None);
    }
}
