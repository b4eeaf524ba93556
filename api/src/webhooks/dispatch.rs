//! One target's delivery task: catch up the change log into the outbox, send the oldest
//! pending delivery, record the outcome, wait for the next thing to do. See the module docs of
//! [`crate::webhooks`] for the guarantees.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_correlate::incident::{
    Delivery, IncidentChange, IncidentError, IncidentHandle, UpdateSeq,
};
use cairn_ingest::Timestamp;
use reqwest::StatusCode;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::config::{EventKind, WebhookTarget};
use super::{TargetState, Webhooks, payload, signature};

/// Changes read from the log per step of the catch-up.
const PAGE: usize = 500;
/// Wait after a store error before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Bytes of a failed answer's body kept in `last_error`.
const ERROR_BODY_BYTES: usize = 256;

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// 2xx.
    Delivered(u16),
    /// Worth retrying: a transport error, a timeout, 5xx, 408, 425, 429, 3xx.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// A refusal retrying cannot fix (other 4xx), or the change is gone from the log.
    Permanent { status: Option<u16>, error: String },
}

/// Runs on the blocking pool; a panic or store error becomes an [`IncidentError`].
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, IncidentError> + Send + 'static,
) -> Result<T, IncidentError> {
    tokio::task::spawn_blocking(call).await.map_err(|error| {
        IncidentError::Unavailable(format!("webhook store task failed: {error}"))
    })?
}

/// The delivery task of target `index`.
pub(super) async fn run(
    webhooks: Webhooks,
    index: usize,
    incidents: IncidentHandle,
    shutdown: CancellationToken,
) {
    let name = webhooks.inner.targets[index].target.name.clone();
    let client = match client(&webhooks.inner.targets[index].target) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(target_name = %name, %error, "cannot build the webhook http client");
            return;
        }
    };
    // Subscribe before reading the log: any change committed later wakes the task.
    let mut feed = incidents.subscribe();
    let mut feed_open = true;
    let mut task = Task {
        webhooks,
        index,
        incidents,
        client,
        cursor: None,
    };
    while !shutdown.is_cancelled() {
        let wait = match task.step().await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::error!(target_name = %name, %error, "webhook delivery step failed");
                Some(STORE_RETRY)
            }
        };
        let Some(wait) = wait else { continue };
        let state = task.state();
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = state.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            received = feed.recv(), if feed_open => {
                if matches!(received, Err(RecvError::Closed)) {
                    feed_open = false;
                }
                // One catch-up reads every change the feed announced so far.
                while feed.try_recv().is_ok() {}
            }
        }
    }
    tracing::info!(target_name = %name, "webhook target stopped");
}

/// Longest wait when nothing is due (the feed or the retry endpoint wake the task sooner).
const IDLE: Duration = Duration::from_secs(3600);

struct Task {
    webhooks: Webhooks,
    index: usize,
    incidents: IncidentHandle,
    client: reqwest::Client,
    /// The last update sequence considered; `None` until read from the outbox.
    cursor: Option<UpdateSeq>,
}

impl Task {
    fn state(&self) -> &TargetState {
        &self.webhooks.inner.targets[self.index]
    }

    /// One step: catch up, then send the head delivery if it is due. Returns how long to wait
    /// before the next step (`None`: go on at once).
    async fn step(&mut self) -> Result<Option<Duration>, IncidentError> {
        self.catch_up().await?;
        let webhooks = self.webhooks.clone();
        let name = self.state().target.name.clone();
        let Some(delivery) = blocking(move || webhooks.inner.outbox.next_pending(&name)).await?
        else {
            return Ok(Some(IDLE));
        };
        let now = Timestamp::now();
        if delivery.next_attempt_at > now {
            let nanos = delivery.next_attempt_at.0.saturating_sub(now.0);
            return Ok(Some(Duration::from_nanos(nanos.unsigned_abs())));
        }
        let outcome = self.attempt(&delivery).await?;
        self.record(&delivery, outcome).await?;
        Ok(None)
    }

    /// Moves every change after the cursor into the outbox (owed ones as pending rows).
    async fn catch_up(&mut self) -> Result<(), IncidentError> {
        let webhooks = self.webhooks.clone();
        let incidents = self.incidents.clone();
        let index = self.index;
        let cursor = self.cursor;
        let new_cursor = blocking(move || {
            let outbox = &webhooks.inner.outbox;
            let target = &webhooks.inner.targets[index].target;
            let mut cursor = match cursor {
                Some(cursor) => cursor,
                // A new target starts at the end of the log; a known one where it was.
                None => outbox.cursor_or_start(&target.name, incidents.last_seq()?)?,
            };
            loop {
                let page = incidents.changes_since(cursor, None, PAGE)?;
                if page.changes.is_empty() {
                    return Ok(cursor);
                }
                let owed: Vec<&IncidentChange> = page
                    .changes
                    .iter()
                    .filter(|change| target.wants(change))
                    .collect();
                outbox.enqueue(&target.name, &owed, page.next, Timestamp::now())?;
                cursor = page.next;
                if page.changes.len() < PAGE {
                    return Ok(cursor);
                }
            }
        })
        .await?;
        self.cursor = Some(new_cursor);
        Ok(())
    }

    async fn attempt(&self, delivery: &Delivery) -> Result<Outcome, IncidentError> {
        let incidents = self.incidents.clone();
        let seq = delivery.change_seq;
        let change = blocking(move || {
            let page = incidents.changes_since(UpdateSeq(seq.0.saturating_sub(1)), None, 1)?;
            Ok(page.changes.into_iter().find(|change| change.seq == seq))
        })
        .await?;
        let Some(change) = change else {
            return Ok(Outcome::Permanent {
                status: None,
                error: format!("change {seq} is no longer in the change log"),
            });
        };
        let target = &self.state().target;
        let body = payload::render(target, delivery.id, &change);
        Ok(send(&self.client, target, delivery.id, &change, body).await)
    }

    async fn record(&self, delivery: &Delivery, outcome: Outcome) -> Result<(), IncidentError> {
        let state = self.state();
        let target = &state.target;
        let attempts = delivery.attempts.saturating_add(1);
        let now = Timestamp::now();
        let (status, error, retry_at) = match outcome {
            Outcome::Delivered(status) => {
                let webhooks = self.webhooks.clone();
                let id = delivery.id;
                blocking(move || webhooks.inner.outbox.record_success(id, status, now)).await?;
                state.counters.delivered.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Outcome::Retry {
                status,
                error,
                retry_after,
            } if attempts < target.max_attempts => {
                let delay = target
                    .backoff(attempts)
                    .max(retry_after.unwrap_or_default())
                    .min(target.backoff_max);
                let delay_nanos = i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX);
                (
                    status,
                    error,
                    Some(Timestamp(now.0.saturating_add(delay_nanos))),
                )
            }
            Outcome::Retry { status, error, .. } => (
                status,
                format!("{error} (gave up after {attempts} attempts)"),
                None,
            ),
            Outcome::Permanent { status, error } => (status, error, None),
        };
        state
            .counters
            .failed_attempts
            .fetch_add(1, Ordering::Relaxed);
        if retry_at.is_none() {
            state.counters.dead.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target_name = %target.name,
                delivery = delivery.id,
                update_seq = delivery.change_seq.0,
                %error,
                "webhook delivery dead"
            );
        } else {
            tracing::debug!(
                target_name = %target.name,
                delivery = delivery.id,
                attempts,
                %error,
                "webhook attempt failed; will retry"
            );
        }
        let webhooks = self.webhooks.clone();
        let id = delivery.id;
        blocking(move || {
            webhooks
                .inner
                .outbox
                .record_failure(id, status, &error, retry_at, now)
        })
        .await
    }
}

/// The target's client: its timeout for the whole attempt, no redirects, rustls.
fn client(target: &WebhookTarget) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(target.timeout)
        .connect_timeout(target.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One POST; never fails: every error is an [`Outcome`].
async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    delivery_id: u64,
    change: &IncidentChange,
    body: Vec<u8>,
) -> Outcome {
    let timestamp = Timestamp::now().0.div_euclid(1_000_000_000);
    let mut request = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Cairn-Delivery", delivery_id.to_string())
        .header("X-Cairn-Event", EventKind::of(change.kind).name())
        .header("X-Cairn-Timestamp", timestamp.to_string());
    if let Some(secret) = &target.secret {
        request = request.header(
            "X-Cairn-Signature",
            signature::sign(secret, timestamp, &body),
        );
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Retry {
                status: None,
                error: error_chain(&error),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered(status.as_u16());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let snippet = body_snippet(response).await;
    let error = if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    };
    classify(status, error, retry_after)
}

/// Which failed answers are worth retrying.
fn classify(status: StatusCode, error: String, retry_after: Option<Duration>) -> Outcome {
    let code = status.as_u16();
    let retryable = !status.is_client_error() || matches!(code, 408 | 425 | 429);
    if retryable {
        Outcome::Retry {
            status: Some(code),
            error,
            retry_after,
        }
    } else {
        Outcome::Permanent {
            status: Some(code),
            error: format!("{error} (a client error: not retried)"),
        }
    }
}

/// The first bytes of a failed answer's body, lossy UTF-8, one line.
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error and its sources, `: `-joined (reqwest's own message hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_final_except_the_transient_ones() {
        for (code, retried) in [
            (500, true),
            (503, true),
            (302, true),
            (408, true),
            (425, true),
            (429, true),
            (400, false),
            (401, false),
            (404, false),
            (410, false),
        ] {
            let status = StatusCode::from_u16(code).expect("status");
            let outcome = classify(status, format!("HTTP {code}"), None);
            assert_eq!(
                matches!(outcome, Outcome::Retry { .. }),
                retried,
                "{code}: {outcome:?}"
            );
        }
    }
}
