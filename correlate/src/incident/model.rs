//! The incident model: ids, statuses, changes, the policy and the clock.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use cairn_ingest::{Seq, Timestamp};

use crate::alert::AlertKind;
use crate::rule::Level;

/// An incident's id: stable, never reused (also across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// The position of a change in the change log; strictly increasing, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UpdateSeq(pub u64);

impl fmt::Display for UpdateSeq {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn name(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// Parses a name as written by [`IncidentStatus::name`].
    pub fn parse(text: &str) -> Option<IncidentStatus> {
        Some(match text {
            "open" => IncidentStatus::Open,
            "acknowledged" => IncidentStatus::Acknowledged,
            "resolved" => IncidentStatus::Resolved,
            _ => return None,
        })
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new incident (possibly already updated by later alerts of the same batch).
    Opened,
    /// New alerts for an open or acknowledged incident.
    Updated,
    Acknowledged,
    /// Resolved through the API.
    Resolved,
    /// Resolved because the quiet period passed without a new alert.
    AutoResolved,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Opened => "opened",
            ChangeKind::Updated => "updated",
            ChangeKind::Acknowledged => "acknowledged",
            ChangeKind::Resolved => "resolved",
            ChangeKind::AutoResolved => "auto_resolved",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        Some(match text {
            "opened" => ChangeKind::Opened,
            "updated" => ChangeKind::Updated,
            "acknowledged" => ChangeKind::Acknowledged,
            "resolved" => ChangeKind::Resolved,
            "auto_resolved" => ChangeKind::AutoResolved,
            _ => return None,
        })
    }
}

pub(crate) fn alert_kind_from_name(text: &str) -> Option<AlertKind> {
    Some(match text {
        "detection" => AlertKind::Detection,
        "event_count" => AlertKind::EventCount,
        "value_count" => AlertKind::ValueCount,
        "temporal" => AlertKind::Temporal,
        "temporal_ordered" => AlertKind::TemporalOrdered,
        "absence" => AlertKind::Absence,
        _ => return None,
    })
}

/// One incident's state (without its evidence; see [`IncidentDetail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    /// The rule label of its alerts.
    pub rule: String,
    pub title: String,
    /// The highest level of its alerts.
    pub level: Level,
    pub kind: AlertKind,
    pub status: IncidentStatus,
    /// Group-by field → value (`host` for detection rules).
    pub group: Vec<(String, String)>,
    /// Event time of the first contributing event.
    pub first_seen: Timestamp,
    /// Event time of the newest alert.
    pub last_seen: Timestamp,
    /// Wall time the incident was opened.
    pub created: Timestamp,
    /// Wall time of its last change.
    pub updated: Timestamp,
    pub alert_count: u64,
    /// Events that contributed, summed over its alerts.
    pub event_count: u64,
    /// One of its alerts may undercount (the engine evicted state).
    pub possibly_incomplete: bool,
}

impl Incident {
    /// The search query that finds the incident's events: `signature:"RULE" AND host:"H"` for a
    /// detection incident, the group values for a correlation incident (whose events carry the
    /// signatures of the rules it references, not its own). Group fields other than `host`, `app`,
    /// `procid`, `msgid`, `severity` and `facility` are searched as `fields.NAME`.
    pub fn search_query(&self) -> String {
        let mut terms = Vec::with_capacity(self.group.len() + 1);
        if self.kind == AlertKind::Detection {
            terms.push(format!("signature:{}", quote(&self.rule)));
        }
        for (field, value) in &self.group {
            let indexed_field = match field.as_str() {
                "host" | "app" | "procid" | "msgid" | "severity" | "facility" => field.clone(),
                other => format!("fields.{other}"),
            };
            terms.push(format!("{indexed_field}:{}", quote(value)));
        }
        if terms.is_empty() {
            return format!("signature:{}", quote(&self.rule));
        }
        terms.join(" AND ")
    }

    /// A link to `GET /api/v1/search` with [`Incident::search_query`] over
    /// `first_seen..=last_seen` (`to` is exclusive there, hence one nanosecond more).
    pub fn search_link(&self) -> String {
        let to = Timestamp(self.last_seen.0.saturating_add(1));
        format!(
            "/api/v1/search?q={}&from={}&to={}",
            url_encode(&self.search_query()),
            url_encode(&self.first_seen.to_rfc3339()),
            url_encode(&to.to_rfc3339())
        )
    }
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for character in value.chars() {
        if character == '"' || character == '\\' {
            out.push('\\');
        }
        out.push(character);
    }
    out.push('"');
    out
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An incident with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentDetail {
    pub incident: Incident,
    /// The update sequence of its last change.
    pub last_change: UpdateSeq,
    /// `seq`s of contributing events, ascending, at most [`IncidentPolicy::max_evidence`]: the
    /// first half of the cap keeps the earliest events (how it started), the rest the newest
    /// (what is happening now).
    pub evidence: Vec<Seq>,
}

/// One entry of the change log: the incident's state as of the change.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChange {
    pub seq: UpdateSeq,
    pub kind: ChangeKind,
    pub incident: Incident,
}

/// What an acknowledge or resolve command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The status changed; this is the change-log entry.
    Changed(IncidentChange),
    /// A no-op: already in that state, or acknowledging a resolved incident (it stays
    /// resolved). The incident's current state.
    Unchanged(Incident),
}

impl Transition {
    /// The incident after the command.
    pub fn incident(&self) -> &Incident {
        match self {
            Transition::Changed(change) => &change.incident,
            Transition::Unchanged(incident) => incident,
        }
    }

    /// The update sequence of the change, `None` for a no-op.
    pub fn change_seq(&self) -> Option<UpdateSeq> {
        match self {
            Transition::Changed(change) => Some(change.seq),
            Transition::Unchanged(_) => None,
        }
    }
}

/// Which alerts make incidents, and when quiet incidents resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPolicy {
    /// Alerts below this level are ignored by the store. Default medium.
    pub min_level: Level,
    /// An open or acknowledged incident with no new alert for this long (wall time) resolves.
    /// Default 1 h.
    pub quiet_period: Duration,
    /// Per rule label overrides of `quiet_period`.
    pub quiet_period_by_rule: HashMap<String, Duration>,
    /// Event `seq`s kept per incident. Default [`crate::MAX_EVIDENCE`].
    pub max_evidence: usize,
    /// Superseded change-log entries older than this are compacted away (see `store.rs`).
    /// Default 7 days.
    pub change_log_retention: Duration,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            min_level: Level::Medium,
            quiet_period: Duration::from_secs(3600),
            quiet_period_by_rule: HashMap::new(),
            max_evidence: crate::MAX_EVIDENCE,
            change_log_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl IncidentPolicy {
    /// The quiet period of a rule: its override, else the global one.
    pub fn quiet_period_for(&self, rule: &str) -> Duration {
        self.quiet_period_by_rule
            .get(rule)
            .copied()
            .unwrap_or(self.quiet_period)
    }

    /// The shortest quiet period of any rule.
    pub(crate) fn shortest_quiet_period(&self) -> Duration {
        self.quiet_period_by_rule
            .values()
            .copied()
            .fold(self.quiet_period, Duration::min)
    }
}

/// Wall-clock time for `created`/`updated` and the quiet period. A seam so tests move time
/// instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }

    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

pub(crate) fn duration_nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(kind: AlertKind, group: &[(&str, &str)]) -> Incident {
        Incident {
            id: IncidentId(1),
            rule: "ssh-brute".to_string(),
            title: "SSH brute force".to_string(),
            level: Level::High,
            kind,
            status: IncidentStatus::Open,
            group: group
                .iter()
                .map(|(field, value)| (field.to_string(), value.to_string()))
                .collect(),
            first_seen: Timestamp(1_714_557_600_000_000_000),
            last_seen: Timestamp(1_714_557_660_000_000_000),
            created: Timestamp(0),
            updated: Timestamp(0),
            alert_count: 1,
            event_count: 1,
            possibly_incomplete: false,
        }
    }

    #[test]
    fn detection_search_uses_the_signature_and_host() {
        let detection = incident(AlertKind::Detection, &[("host", "web\"1")]);
        assert_eq!(
            detection.search_query(),
            r#"signature:"ssh-brute" AND host:"web\"1""#
        );
        assert_eq!(
            detection.search_link(),
            "/api/v1/search?q=signature%3A%22ssh-brute%22%20AND%20host%3A%22web%5C%221%22\
             &from=2024-05-01T10%3A00%3A00Z&to=2024-05-01T10%3A01%3A00.000000001Z"
        );
    }

    #[test]
    fn correlation_search_uses_group_values_as_fields() {
        let correlation = incident(
            AlertKind::EventCount,
            &[("src_ip", "10.0.0.1"), ("app", "sshd")],
        );
        assert_eq!(
            correlation.search_query(),
            r#"fields.src_ip:"10.0.0.1" AND app:"sshd""#
        );
    }

    #[test]
    fn names_round_trip() {
        for status in [
            IncidentStatus::Open,
            IncidentStatus::Acknowledged,
            IncidentStatus::Resolved,
        ] {
            assert_eq!(IncidentStatus::parse(status.name()), Some(status));
        }
        for kind in [
            ChangeKind::Opened,
            ChangeKind::Updated,
            ChangeKind::Acknowledged,
            ChangeKind::Resolved,
            ChangeKind::AutoResolved,
        ] {
            assert_eq!(ChangeKind::parse(kind.name()), Some(kind));
        }
        for kind in [
            AlertKind::Detection,
            AlertKind::EventCount,
            AlertKind::ValueCount,
            AlertKind::Temporal,
            AlertKind::TemporalOrdered,
            AlertKind::Absence,
        ] {
            assert_eq!(alert_kind_from_name(kind.name()), Some(kind));
        }
        assert_eq!(IncidentStatus::parse("OPEN"), None);
    }
}
