//! Incidents: what alerts become, their lifecycle, their store and the service that owns it.
//!
//! - [`model`]: [`Incident`], [`IncidentStatus`], [`IncidentChange`], the [`IncidentPolicy`] that
//!   decides which alerts count and when quiet incidents resolve, and the [`Clock`] seam.
//! - [`store`]: the SQLite store (`incidents.sqlite` in the data dir): one writer
//!   ([`IncidentStore`]) and any number of readers ([`IncidentReader`]).
//! - [`outbox`]: which changes are owed to which webhook target ([`Outbox`]), durably, beside
//!   the change log.
//! - [`service`]: the thread that owns the writer, consumes `Alert`s in batches, runs the quiet
//!   period, and publishes every change ([`IncidentService`], [`IncidentHandle`]).
//!
//! # Lifecycle
//!
//! An alert at or above [`IncidentPolicy::min_level`] opens an incident, or updates the open or
//! acknowledged incident with the same [`crate::Alert::fingerprint`] (rule + group values).
//! Lower alerts are ignored here (they only annotate events). Status moves
//! `open → acknowledged → resolved` (or `open → resolved`); resolution comes from the API or from
//! the quiet period: no new alert for [`IncidentPolicy::quiet_period_for`] the rule, measured in
//! wall time from the last alert (so replaying old logs does not resolve what it just opened). A
//! resolved incident is never reopened: the next alert with its fingerprint opens a new one.
//!
//! # Change log and cursors
//!
//! Every change (opened, updated, acknowledged, resolved, auto-resolved) is a row of the change
//! log with a strictly increasing [`UpdateSeq`], written in the same transaction as the incident,
//! and holds the incident's state as of that change. Alerts of one batch that hit the same
//! incident make **one** change (its state after the batch). Reading the log after a cursor
//! returns each change once, in order; the last returned sequence is the next cursor. Update
//! sequences and incident ids are SQLite `AUTOINCREMENT` keys: never reused, also across
//! restarts. See `store.rs` for compaction of the log.

pub mod checkpoint;
pub mod model;
pub mod outbox;
pub mod service;
pub mod store;

pub use checkpoint::{CorrelationCheckpoint, StoredCheckpoint};
pub use model::{
    ChangeKind, Clock, Incident, IncidentChange, IncidentDetail, IncidentId, IncidentPolicy,
    IncidentStatus, ManualClock, SystemClock, Transition, UpdateSeq,
};
pub use outbox::{Delivery, DeliveryStatus, Outbox, TargetSummary};
pub use service::{IncidentHandle, IncidentService, ServiceOptions};
pub use store::{ChangePage, IncidentError, IncidentReader, IncidentStore, SCHEMA_VERSION};
