//! Indexer acknowledgement for Splunk HEC: ack ids per (token, channel).
//!
//! Splunk's semantics: a request sent on a channel (`X-Splunk-Request-Channel`, a GUID) with a
//! token that has acknowledgement on is answered with an `ackId`, numbered from 0 per channel;
//! the client later asks `POST /services/collector/ack?channel=…` with `{"acks":[ids]}` and
//! learns, per id, whether its events are safely stored (`true`) or not (yet) (`false`); an id
//! reported `true` is forgotten, so a second query answers `false`.
//!
//! In Cairn a request is answered only once its events are durable in the WAL, so an id is
//! issued already acknowledged: it answers `true` to its first query. What the store bounds is
//! memory: at most `max_channels` channels (channels idle for `idle_timeout` are forgotten to
//! make room; when none is, a new channel is refused and the client is told the server is busy),
//! and at most `max_pending` unqueried ids per channel (the oldest is forgotten; its query then
//! answers `false` and the client resends, which at-least-once allows). Locked once per request,
//! never per event.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounds of the ack store (from `[hec]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckLimits {
    pub max_channels: usize,
    pub max_pending: usize,
    pub idle_timeout: Duration,
}

impl Default for AckLimits {
    fn default() -> Self {
        AckLimits {
            max_channels: 1000,
            max_pending: 10_000,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Acks of one channel.
#[derive(Debug)]
struct Channel {
    next_id: u64,
    /// Issued (hence durable) and not queried yet.
    pending: BTreeSet<u64>,
    last_used: Instant,
}

/// The ack ids of every channel; see the module docs.
#[derive(Debug)]
pub(crate) struct AckStore {
    limits: AckLimits,
    channels: Mutex<HashMap<(usize, String), Channel>>,
}

/// No room for another channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyChannels;

impl AckStore {
    pub(crate) fn new(limits: AckLimits) -> AckStore {
        AckStore {
            limits,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Issues the next ack id of `channel` for the token at `token_index`, for a request whose
    /// events are durable.
    pub(crate) fn issue(&self, token_index: usize, channel: &str) -> Result<u64, TooManyChannels> {
        let now = Instant::now();
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let key = (token_index, channel.to_string());
        if !channels.contains_key(&key) && channels.len() >= self.limits.max_channels {
            let idle_timeout = self.limits.idle_timeout;
            channels.retain(|_, channel| now.duration_since(channel.last_used) < idle_timeout);
            if channels.len() >= self.limits.max_channels {
                return Err(TooManyChannels);
            }
        }
        let entry = channels.entry(key).or_insert_with(|| Channel {
            next_id: 0,
            pending: BTreeSet::new(),
            last_used: now,
        });
        let id = entry.next_id;
        entry.next_id += 1;
        entry.last_used = now;
        entry.pending.insert(id);
        while entry.pending.len() > self.limits.max_pending {
            entry.pending.pop_first();
        }
        Ok(id)
    }

    /// Answers an ack query: per id, `true` if it was issued on this channel and not queried
    /// since (then forgotten), else `false`.
    pub(crate) fn query(&self, token_index: usize, channel: &str, ids: &[u64]) -> Vec<(u64, bool)> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(entry) = channels.get_mut(&(token_index, channel.to_string())) else {
            return ids.iter().map(|id| (*id, false)).collect();
        };
        entry.last_used = Instant::now();
        ids.iter()
            .map(|id| (*id, entry.pending.remove(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_per_channel_and_answer_true_once() {
        let store = AckStore::new(AckLimits::default());
        assert_eq!(store.issue(0, "a"), Ok(0));
        assert_eq!(store.issue(0, "a"), Ok(1));
        assert_eq!(store.issue(0, "b"), Ok(0));
        assert_eq!(store.issue(1, "a"), Ok(0));
        assert_eq!(
            store.query(0, "a", &[0, 1, 2]),
            vec![(0, true), (1, true), (2, false)]
        );
        assert_eq!(store.query(0, "a", &[0]), vec![(0, false)]);
        assert_eq!(store.query(0, "zzz", &[0]), vec![(0, false)]);
        assert_eq!(store.query(1, "a", &[0]), vec![(0, true)]);
    }

    #[test]
    fn channels_and_pending_ids_are_bounded() {
        let store = AckStore::new(AckLimits {
            max_channels: 2,
            max_pending: 2,
            idle_timeout: Duration::from_secs(3600),
        });
        for _ in 0..3 {
            store.issue(0, "a").expect("room");
        }
        assert_eq!(
            store.query(0, "a", &[0, 1, 2]),
            vec![(0, false), (1, true), (2, true)]
        );
        store.issue(0, "b").expect("second channel");
        assert_eq!(store.issue(0, "c"), Err(TooManyChannels));
        let idle = AckStore::new(AckLimits {
            max_channels: 1,
            max_pending: 2,
            idle_timeout: Duration::ZERO,
        });
        idle.issue(0, "a").expect("room");
        assert_eq!(idle.issue(0, "b"), Ok(0), "the idle channel made room");
    }
}
