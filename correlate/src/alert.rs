//! Alerts: what a detection rule or a correlation emits, and what opens or updates incidents.
//!
//! An [`Alert`] is produced by the correlation engine: for each match of a detection rule that no
//! correlation references (or that has `generate: true`), and each time a correlation fires. It
//! carries everything the incident store and `cairn replay` need, so neither looks back at rules
//! or events.

use std::fmt::Write as _;
use std::sync::Arc;

use cairn_ingest::{Seq, Timestamp};

use crate::rule::Level;

/// Most event `seq`s kept as evidence on one alert (and on one incident).
pub const MAX_EVIDENCE: usize = 64;

/// What produced an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// One event matched a detection rule.
    Detection,
    /// Sigma correlation `event_count`.
    EventCount,
    /// Sigma correlation `value_count`.
    ValueCount,
    /// Sigma correlation `temporal`.
    Temporal,
    /// Sigma correlation `temporal_ordered`.
    TemporalOrdered,
    /// The extended temporal condition `a and not b`: `a` happened and `b` did not follow.
    Absence,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Detection => "detection",
            AlertKind::EventCount => "event_count",
            AlertKind::ValueCount => "value_count",
            AlertKind::Temporal => "temporal",
            AlertKind::TemporalOrdered => "temporal_ordered",
            AlertKind::Absence => "absence",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule's label: its id, or its title when it has none (the same label that is indexed
    /// in the event's `signature` field for detection rules).
    pub rule: Arc<str>,
    pub title: Arc<str>,
    /// The rule's level (`Level::Medium` when the rule has none).
    pub level: Level,
    pub kind: AlertKind,
    /// Event time of the alert: the event that completed the condition, or for an absence the
    /// end of the window in which the awaited event did not come.
    pub ts: Timestamp,
    /// Event time of the first event that contributed.
    pub first_ts: Timestamp,
    /// Group-by field → value, in the rule's `group-by` order. For a detection alert: `host`.
    pub group: Vec<(Arc<str>, String)>,
    /// How many events contributed.
    pub event_count: u64,
    /// `seq`s of contributing events, oldest first, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Seq>,
    /// The engine had to evict state that could have contributed (a cap on open groups was
    /// reached), so the alert may undercount or a related alert may be missing.
    pub possibly_incomplete: bool,
}

impl Alert {
    /// Incident fingerprint: the rule plus its group values. Alerts with the same fingerprint
    /// update the open incident instead of opening a new one.
    pub fn fingerprint(&self) -> String {
        let mut out = String::with_capacity(self.rule.len() + 32);
        out.push_str(&self.rule);
        for (field, value) in &self.group {
            let _ = write!(out, "\u{1f}{field}\u{1e}{value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(group: &[(&str, &str)]) -> Alert {
        Alert {
            rule: Arc::from("r1"),
            title: Arc::from("Rule one"),
            level: Level::High,
            kind: AlertKind::EventCount,
            ts: Timestamp(2),
            first_ts: Timestamp(1),
            group: group
                .iter()
                .map(|(k, v)| (Arc::from(*k), (*v).to_string()))
                .collect(),
            event_count: 5,
            evidence: vec![Seq(1)],
            possibly_incomplete: false,
        }
    }

    #[test]
    fn fingerprint_separates_rule_and_group_values() {
        let a = alert(&[("src_ip", "10.0.0.1")]);
        let b = alert(&[("src_ip", "10.0.0.2")]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), alert(&[("src_ip", "10.0.0.1")]).fingerprint());
        // Field and value are split by a control character, not '='.
        let c = alert(&[("a", "b=c")]);
        let d = alert(&[("a=b", "c")]);
        assert_ne!(c.fingerprint(), d.fingerprint());
    }
}
