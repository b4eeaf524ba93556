//! Snapshots of the correlation engine's state, so that a restart resumes open windows instead
//! of dropping them.
//!
//! # What a snapshot holds
//!
//! Everything the engine's future output depends on, for every shard: open groups (their
//! window state, live timer deadline and `incomplete` flag), the observations waiting in the
//! reorder queues, each timer wheel's next tick, the last eviction time per correlation and the
//! shard's counters; and, once, the router's event-time clock (watermark and latest event time)
//! and the engine's counters (batches, observations, late, late dropped, missing group field,
//! detection alerts). It is tagged with the caller's rule-set fingerprint and with the shape of
//! the correlations it was taken under (count, depths, state kinds, inputs), and is refused
//! ([`SnapshotError`]) when either differs: group state is only meaningful for the
//! correlations that built it.
//!
//! The representation is **shard-independent**: groups and queued observations are routed to
//! shards again on restore by the same hash as live traffic, so a snapshot taken with 4 shards
//! restores into 2 (per-shard counters and eviction times then merge: sums and maxima).
//!
//! Not kept, by design: the timer wheels' stale entries (a group's live deadline, `timer_at`, is
//! enough to arm its timer again) and the router's idle state (the wall-clock time the input went
//! idle): a restarted engine measures idleness afresh. The wheel layout and the group maps'
//! iteration order after a restore differ from the uninterrupted engine's; neither changes
//! alerts, except which group the group cap evicts (a sample of the map), whose alerts are
//! flagged `possibly_incomplete` anyway.
//!
//! # Consistency
//!
//! [`super::Engine::snapshot`] sends a barrier through the router and every shard: the state
//! captured reflects exactly the batches submitted before the call, and every alert those
//! batches produced has been sent to the engine's alert channel before the call returns. Paired
//! with the WAL position up to which batches were submitted, that is a consistent cut: restore
//! the snapshot, feed the records from that position on, and the engine emits what the
//! uninterrupted engine would have emitted after the cut (given the same batches; idle
//! advancement by the wall clock is the one input that depends on timing).
//!
//! # Format (version 1)
//!
//! All integers little-endian; `varint` is unsigned LEB128 (at most 10 bytes); `i64` is 8 bytes;
//! `opt_i64` is a byte 0 (none) or 1 followed by an `i64`; `str` is a varint length and UTF-8.
//!
//! ```text
//! header   magic "CAIRNCOR" | version u32 | fingerprint u64 | body_len u64
//! body     router: watermark i64 | max_ts i64
//!          totals: batches, observations, late, late_dropped, missing_group_field,
//!                  detection_alerts (varint each)
//!          shape:  correlations varint | max_depth varint
//!                  | (kind u8 | depth varint | inputs varint) × correlations
//!          parts:  count varint | (len varint | part) × count
//! part     counters: processed, alerts, evicted, expired (varint each)
//!          last_eviction opt_i64 × correlations | next_tick opt_i64 × max_depth
//!          groups varint | (correlation varint | key str | timer_at i64 | incomplete u8
//!                           | kind u8 | state) × groups
//!          queued varint | (ts i64 | seq varint | correlation varint | input varint
//!                           | group str | value u64 | incomplete u8) × queued
//! trailer  crc32c u32 over header and body
//! ```
//!
//! Group state by kind: 0 sliding `contribs`; 1 distinct `varint n | (value u64 | contrib) × n`;
//! 2 closing `start i64 | count varint | contribs | values (varint n | u64 × n)`; 3 temporal
//! `contribs` (one per input); 4 ordered `varint n | (0 | 1 start i64 contribs) × n` (one per
//! input); 5 absence `start i64 | count varint | contribs`; with `contribs` = `varint n |
//! (ts i64 | seq varint) × n` and `contrib` one of them.
//!
//! Decoding never panics and never allocates more than the input's size allows: every count is
//! checked against the bytes left, every index against the correlations, every kind against the
//! correlation's state kind.

use std::collections::VecDeque;
use std::sync::Arc;

use cairn_ingest::{Seq, Timestamp};

use super::core::Router;
use super::graph::{CorrelationId, Correlations, GroupKey, Observation, StateKind};
use super::hash::hash_text;
use super::shard::{
    Chain, Closing, Contrib, Group, GroupState, NO_TIMER, Pending, Shard, ShardCounters,
};
use super::wheel::TimerWheel;

const MAGIC: &[u8; 8] = b"CAIRNCOR";
const HEADER_BYTES: usize = 28;
const TRAILER_BYTES: usize = 4;

/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why a snapshot cannot be restored. The caller starts with an empty engine instead (and says
/// so): a snapshot is an optimisation of state, never a source of events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Damaged: bad magic, checksum, lengths, or values that cannot be.
    #[error("correlation snapshot is damaged: {0}")]
    Corrupt(String),
    /// Written by a build with another format version.
    #[error(
        "correlation snapshot format version {found} is not readable by this build (reads {SNAPSHOT_VERSION})"
    )]
    Version { found: u32 },
    /// Taken under other correlation rules (fingerprint or shape differs).
    #[error("correlation snapshot was taken under other correlation rules: {0}")]
    RulesChanged(String),
}

/// The engine-wide counters kept in a snapshot (the per-shard ones live in each part).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub batches: u64,
    pub observations: u64,
    pub late: u64,
    pub late_dropped: u64,
    pub missing_group_field: u64,
    pub detection_alerts: u64,
}

/// Reads the fingerprint a snapshot was tagged with, checking only its header (for logs).
///
/// # Errors
/// [`SnapshotError::Corrupt`] when the header is not a snapshot's.
pub fn snapshot_fingerprint(bytes: &[u8]) -> Result<u64, SnapshotError> {
    let mut reader = Reader::new(bytes);
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a correlation snapshot (bad magic)"));
    }
    reader.u32()?;
    reader.u64_fixed()
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Appends one shard's part (see the module docs).
pub(crate) fn encode_part(shard: &Shard, out: &mut Vec<u8>) {
    let mut writer = Writer(out);
    let counters = shard.counters;
    for counter in [
        counters.processed,
        counters.alerts,
        counters.evicted,
        counters.expired,
    ] {
        writer.varint(counter);
    }
    for evicted_at in &shard.last_eviction {
        writer.opt_i64(*evicted_at);
    }
    for wheel in &shard.wheels {
        writer.opt_i64(wheel.next_tick());
    }
    let groups: usize = shard
        .groups
        .iter()
        .map(std::collections::HashMap::len)
        .sum();
    writer.varint(groups as u64);
    for (correlation, groups) in shard.groups.iter().enumerate() {
        for (key, group) in groups {
            writer.varint(correlation as u64);
            writer.str(key);
            writer.i64(group.timer_at);
            writer.u8(u8::from(group.incomplete));
            encode_state(&mut writer, &group.state);
        }
    }
    writer.varint(shard.queued() as u64);
    for observation in shard.queued_observations() {
        writer.i64(observation.ts.0);
        writer.varint(observation.seq.0);
        writer.varint(u64::from(observation.correlation.0));
        writer.varint(u64::from(observation.input));
        writer.str(observation.group.as_str());
        writer.u64_fixed(observation.value);
        writer.u8(u8::from(observation.incomplete));
    }
}

fn encode_state(writer: &mut Writer<'_>, state: &GroupState) {
    match state {
        GroupState::Sliding(window) => {
            writer.u8(0);
            writer.contribs(window.iter());
        }
        GroupState::Distinct(values) => {
            writer.u8(1);
            writer.varint(values.len() as u64);
            for (value, seen) in values {
                writer.u64_fixed(*value);
                writer.contrib(*seen);
            }
        }
        GroupState::Closing(closing) => {
            writer.u8(2);
            writer.i64(closing.start);
            writer.varint(closing.count);
            writer.contribs(closing.contribs.iter());
            writer.varint(closing.values.len() as u64);
            for value in &closing.values {
                writer.u64_fixed(*value);
            }
        }
        GroupState::Temporal(newest) => {
            writer.u8(3);
            writer.contribs(newest.iter());
        }
        GroupState::Ordered(best) => {
            writer.u8(4);
            writer.varint(best.len() as u64);
            for chain in best.iter() {
                match chain {
                    None => writer.u8(0),
                    Some(chain) => {
                        writer.u8(1);
                        writer.i64(chain.start);
                        writer.contribs(chain.items.iter());
                    }
                }
            }
        }
        GroupState::Absence(pending) => {
            writer.u8(5);
            writer.i64(pending.start);
            writer.varint(pending.count);
            writer.contribs(pending.contribs.iter());
        }
    }
}

/// The whole snapshot: header, router, totals, shape, the shards' parts, checksum.
pub(crate) fn encode(
    fingerprint: u64,
    correlations: &Correlations,
    router: &Router,
    totals: &Totals,
    parts: &[Vec<u8>],
) -> Vec<u8> {
    let part_bytes: usize = parts.iter().map(|part| part.len() + 10).sum();
    let mut out = Vec::with_capacity(HEADER_BYTES + 128 + part_bytes + TRAILER_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // body length, patched below
    let mut writer = Writer(&mut out);
    writer.i64(router.watermark);
    writer.i64(router.max_ts);
    for total in [
        totals.batches,
        totals.observations,
        totals.late,
        totals.late_dropped,
        totals.missing_group_field,
        totals.detection_alerts,
    ] {
        writer.varint(total);
    }
    encode_shape(&mut writer, correlations);
    writer.varint(parts.len() as u64);
    for part in parts {
        writer.varint(part.len() as u64);
        writer.0.extend_from_slice(part);
    }
    let body_len = (out.len() - HEADER_BYTES) as u64;
    out[20..28].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn kind_tag(kind: StateKind) -> u8 {
    match kind {
        StateKind::CountSliding { .. } => 0,
        StateKind::DistinctSliding { .. } => 1,
        StateKind::Closing { .. } => 2,
        StateKind::Temporal { .. } => 3,
        StateKind::Ordered => 4,
        StateKind::Absence { .. } => 5,
    }
}

fn encode_shape(writer: &mut Writer<'_>, correlations: &Correlations) {
    writer.varint(correlations.correlations.len() as u64);
    writer.varint(correlations.max_depth as u64);
    for compiled in &correlations.correlations {
        writer.u8(kind_tag(compiled.state));
        writer.varint(compiled.depth as u64);
        writer.varint(compiled.inputs.len() as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// A decoded snapshot, not yet split into shards.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub watermark: i64,
    pub max_ts: i64,
    pub totals: Totals,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    counters: ShardCounters,
    last_eviction: Vec<Option<i64>>,
    next_ticks: Vec<Option<i64>>,
    groups: Vec<(u32, Arc<str>, Group)>,
    queued: Vec<Observation>,
}

/// Checks and decodes a snapshot taken under `correlations` and tagged `fingerprint`.
pub(crate) fn decode(
    bytes: &[u8],
    correlations: &Correlations,
    fingerprint: u64,
) -> Result<Decoded, SnapshotError> {
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(corrupt(format!("{} bytes is too short", bytes.len())));
    }
    let mut header = Reader::new(bytes);
    if header.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a correlation snapshot (bad magic)"));
    }
    let version = header.u32()?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version { found: version });
    }
    let found = header.u64_fixed()?;
    let body_len = header.u64_fixed()?;
    let expected_len = (HEADER_BYTES + TRAILER_BYTES) as u64 + body_len;
    if expected_len != bytes.len() as u64 {
        return Err(corrupt(format!(
            "length {} does not match the header's {expected_len}",
            bytes.len()
        )));
    }
    let (covered, trailer) = bytes.split_at(bytes.len() - TRAILER_BYTES);
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32c::crc32c(covered) != stored_crc {
        return Err(corrupt("checksum mismatch"));
    }
    if found != fingerprint {
        return Err(SnapshotError::RulesChanged(format!(
            "fingerprint {found:016x}, the loaded rules have {fingerprint:016x}"
        )));
    }
    let mut reader = Reader::new(&covered[HEADER_BYTES..]);
    let watermark = reader.i64()?;
    let max_ts = reader.i64()?;
    let totals = Totals {
        batches: reader.varint()?,
        observations: reader.varint()?,
        late: reader.varint()?,
        late_dropped: reader.varint()?,
        missing_group_field: reader.varint()?,
        detection_alerts: reader.varint()?,
    };
    check_shape(&mut reader, correlations)?;
    let part_count = reader.count(1)?;
    let mut parts = Vec::with_capacity(part_count);
    for _ in 0..part_count {
        let len = reader.count(1)?;
        let mut part = Reader::new(reader.take(len)?);
        parts.push(decode_part(&mut part, correlations)?);
        part.finished()?;
    }
    reader.finished()?;
    Ok(Decoded {
        watermark,
        max_ts,
        totals,
        parts,
    })
}

fn check_shape(reader: &mut Reader<'_>, correlations: &Correlations) -> Result<(), SnapshotError> {
    let count = reader.varint()?;
    let max_depth = reader.varint()?;
    let differs = |what: String| Err(SnapshotError::RulesChanged(what));
    if count != correlations.correlations.len() as u64 {
        return differs(format!(
            "{count} correlations, {} loaded",
            correlations.correlations.len()
        ));
    }
    if max_depth != correlations.max_depth as u64 {
        return differs(format!(
            "chain depth {max_depth}, {} loaded",
            correlations.max_depth
        ));
    }
    for (index, compiled) in correlations.correlations.iter().enumerate() {
        let kind = reader.u8()?;
        let depth = reader.varint()?;
        let inputs = reader.varint()?;
        if kind != kind_tag(compiled.state)
            || depth != compiled.depth as u64
            || inputs != compiled.inputs.len() as u64
        {
            return differs(format!(
                "correlation {index} ({}) changed",
                compiled.meta.rule
            ));
        }
    }
    Ok(())
}

fn decode_part(
    reader: &mut Reader<'_>,
    correlations: &Correlations,
) -> Result<Part, SnapshotError> {
    let counters = ShardCounters {
        processed: reader.varint()?,
        alerts: reader.varint()?,
        evicted: reader.varint()?,
        expired: reader.varint()?,
    };
    let last_eviction = (0..correlations.correlations.len())
        .map(|_| reader.opt_i64())
        .collect::<Result<Vec<_>, _>>()?;
    let next_ticks = (0..correlations.max_depth)
        .map(|_| reader.opt_i64())
        .collect::<Result<Vec<_>, _>>()?;
    // A group takes at least 12 bytes (correlation, key length, timer, flag, kind, one count).
    let group_count = reader.count(12)?;
    let mut groups = Vec::with_capacity(group_count);
    for _ in 0..group_count {
        let correlation = reader.index(correlations.correlations.len(), "correlation")?;
        let key: Arc<str> = Arc::from(reader.str()?);
        let timer_at = reader.i64()?;
        let incomplete = reader.flag()?;
        let compiled = &correlations.correlations[correlation];
        let state = decode_state(reader, compiled.state, compiled.inputs.len())?;
        if timer_at == NO_TIMER {
            return Err(corrupt("an open group without a timer"));
        }
        groups.push((
            correlation as u32,
            key,
            Group {
                state,
                timer_at,
                incomplete,
            },
        ));
    }
    // An observation takes at least 21 bytes (ts, seq, correlation, input, key, value, flag).
    let queued_count = reader.count(21)?;
    let mut queued = Vec::with_capacity(queued_count);
    for _ in 0..queued_count {
        let ts = reader.i64()?;
        let seq = reader.varint()?;
        let correlation = reader.index(correlations.correlations.len(), "correlation")?;
        let inputs = correlations.correlations[correlation].inputs.len();
        let input = reader.index(inputs, "input")?;
        let group = GroupKey::from_joined(reader.str()?.to_owned());
        let value = reader.u64_fixed()?;
        let incomplete = reader.flag()?;
        queued.push(Observation {
            ts: Timestamp(ts),
            seq: Seq(seq),
            correlation: CorrelationId(correlation as u32),
            input: u16::try_from(input).map_err(|_| corrupt("input out of range"))?,
            group,
            value,
            incomplete,
        });
    }
    Ok(Part {
        counters,
        last_eviction,
        next_ticks,
        groups,
        queued,
    })
}

fn decode_state(
    reader: &mut Reader<'_>,
    kind: StateKind,
    inputs: usize,
) -> Result<GroupState, SnapshotError> {
    let tag = reader.u8()?;
    if tag != kind_tag(kind) {
        return Err(corrupt(format!(
            "group state of kind {tag} for a correlation of kind {}",
            kind_tag(kind)
        )));
    }
    let state = match kind {
        StateKind::CountSliding { .. } => {
            GroupState::Sliding(reader.contribs()?.into_iter().collect::<VecDeque<_>>())
        }
        StateKind::DistinctSliding { .. } => {
            let count = reader.count(9)?;
            let mut values = Vec::with_capacity(count);
            for _ in 0..count {
                let value = reader.u64_fixed()?;
                values.push((value, reader.contrib()?));
            }
            GroupState::Distinct(values)
        }
        StateKind::Closing { .. } => {
            let start = reader.i64()?;
            let count = reader.varint()?;
            let contribs = reader.contribs()?;
            let value_count = reader.count(8)?;
            let values = (0..value_count)
                .map(|_| reader.u64_fixed())
                .collect::<Result<Vec<_>, _>>()?;
            GroupState::Closing(Box::new(Closing {
                start,
                count,
                contribs,
                values,
            }))
        }
        StateKind::Temporal { .. } => {
            let newest = reader.contribs()?;
            if newest.len() != inputs {
                return Err(corrupt("temporal state does not have one slot per rule"));
            }
            GroupState::Temporal(newest.into_boxed_slice())
        }
        StateKind::Ordered => {
            let count = reader.count(1)?;
            if count != inputs {
                return Err(corrupt("ordered state does not have one chain per rule"));
            }
            let mut best = Vec::with_capacity(count);
            for _ in 0..count {
                best.push(if reader.flag()? {
                    let start = reader.i64()?;
                    let items = reader.contribs()?;
                    Some(Chain { start, items })
                } else {
                    None
                });
            }
            GroupState::Ordered(best.into_boxed_slice())
        }
        StateKind::Absence { .. } => {
            let start = reader.i64()?;
            let count = reader.varint()?;
            let contribs = reader.contribs()?;
            GroupState::Absence(Box::new(Pending {
                start,
                count,
                contribs,
            }))
        }
    };
    Ok(state)
}

impl Decoded {
    /// The router's clock as it was (its idle state starts afresh).
    pub fn router(&self, lateness: i64) -> Router {
        Router::resumed(lateness, self.watermark, self.max_ts)
    }

    /// Splits the state into `count` shards, routing every group and queued observation by the
    /// same hash as live traffic. With the shard count of the snapshot, each shard gets its own
    /// counters and eviction times back; otherwise counters are summed into shard 0 and each
    /// correlation's latest eviction time goes to every shard.
    pub fn into_shards(
        self,
        correlations: &Arc<Correlations>,
        count: usize,
        group_cap: usize,
    ) -> Vec<Shard> {
        let count = count.max(1);
        let mut shards: Vec<Shard> = (0..count)
            .map(|_| Shard::new(Arc::clone(correlations), group_cap))
            .collect();
        let same_layout = self.parts.len() == count;
        // Every shard sees every advance, so the parts agree; take the latest to be safe.
        let next_ticks: Vec<Option<i64>> = (0..correlations.max_depth)
            .map(|depth| {
                self.parts
                    .iter()
                    .filter_map(|part| part.next_ticks.get(depth).copied().flatten())
                    .max()
            })
            .collect();
        let latest_evictions: Vec<Option<i64>> = (0..correlations.correlations.len())
            .map(|index| {
                self.parts
                    .iter()
                    .filter_map(|part| part.last_eviction.get(index).copied().flatten())
                    .max()
            })
            .collect();
        for shard in &mut shards {
            shard.wheels = next_ticks
                .iter()
                .map(|next| TimerWheel::resuming(*next))
                .collect();
            shard.last_eviction.clone_from(&latest_evictions);
        }
        for (index, part) in self.parts.into_iter().enumerate() {
            if same_layout {
                shards[index].counters = part.counters;
                shards[index].last_eviction = part.last_eviction;
            } else {
                let total = &mut shards[0].counters;
                total.processed += part.counters.processed;
                total.alerts += part.counters.alerts;
                total.evicted += part.counters.evicted;
                total.expired += part.counters.expired;
            }
            for (correlation, key, group) in part.groups {
                let shard = super::engine::shard_for(correlation, hash_text(&key), count);
                shards[shard].restore_group(correlation, key, group);
            }
            for observation in part.queued {
                let shard = super::engine::shard_of(&observation, count);
                shards[shard].insert(observation);
            }
        }
        shards
    }
}

fn corrupt(message: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt(message.into())
}

// ---------------------------------------------------------------------------------------------
// Byte-level writer and reader.

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u64_fixed(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn opt_i64(&mut self, value: Option<i64>) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                self.i64(value);
            }
        }
    }

    fn str(&mut self, text: &str) {
        self.varint(text.len() as u64);
        self.0.extend_from_slice(text.as_bytes());
    }

    fn contrib(&mut self, contrib: Contrib) {
        self.i64(contrib.ts);
        self.varint(contrib.seq);
    }

    fn contribs<'c>(&mut self, contribs: impl ExactSizeIterator<Item = &'c Contrib>) {
        self.varint(contribs.len() as u64);
        for contrib in contribs {
            self.contrib(*contrib);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        if len > self.left() {
            return Err(corrupt(format!(
                "{len} bytes wanted at offset {}, {} left",
                self.at,
                self.left()
            )));
        }
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn flag(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(format!("flag byte {other}"))),
        }
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64_fixed(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, SnapshotError> {
        Ok(if self.flag()? {
            Some(self.i64()?)
        } else {
            None
        })
    }

    fn varint(&mut self) -> Result<u64, SnapshotError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint longer than 10 bytes"))
    }

    /// A count of items that take at least `min_item_bytes` each: never more than the bytes
    /// left allow, so a damaged count cannot make the decoder allocate.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, SnapshotError> {
        let count = self.varint()?;
        let most = (self.left() / min_item_bytes.max(1)) as u64;
        if count > most {
            return Err(corrupt(format!(
                "count {count} at offset {} exceeds what {} bytes can hold",
                self.at,
                self.left()
            )));
        }
        Ok(count as usize)
    }

    /// An index below `len`.
    fn index(&mut self, len: usize, what: &str) -> Result<usize, SnapshotError> {
        let index = self.varint()?;
        if index >= len as u64 {
            return Err(corrupt(format!("{what} {index} out of range (< {len})")));
        }
        Ok(index as usize)
    }

    fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let len = self.count(1)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("text is not UTF-8"))
    }

    fn contrib(&mut self) -> Result<Contrib, SnapshotError> {
        Ok(Contrib {
            ts: self.i64()?,
            seq: self.varint()?,
        })
    }

    fn contribs(&mut self) -> Result<Vec<Contrib>, SnapshotError> {
        let count = self.count(9)?;
        (0..count).map(|_| self.contrib()).collect()
    }

    fn finished(&self) -> Result<(), SnapshotError> {
        if self.left() == 0 {
            Ok(())
        } else {
            Err(corrupt(format!("{} trailing bytes", self.left())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            Writer(&mut out).varint(value);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.finished().is_ok());
        }
        let overflow = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).varint().is_err());
        let endless = [0x80u8; 11];
        assert!(Reader::new(&endless).varint().is_err());
    }

    #[test]
    fn a_count_larger_than_the_bytes_left_is_refused() {
        let mut out = Vec::new();
        Writer(&mut out).varint(1_000_000);
        out.extend_from_slice(&[0; 64]);
        assert!(Reader::new(&out).count(9).is_err());
    }
}
