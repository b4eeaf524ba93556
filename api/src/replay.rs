//! `cairn replay`: the live pipeline's stages over files or stdin, offline.
//!
//! ```text
//! reader ──chunks (≈1 MiB, whole lines)──► N workers: frame, parse, normalise, match, observe
//!                                              │ (chunk id, observations, detection alerts)
//!                                              ▼
//!                         merger: restores chunk order ──► correlation engine ──► alerts (NDJSON)
//! ```
//!
//! The stages are the ones the appliance runs (`parse_syslog`, the [`Normaliser`], the compiled
//! [`Matcher`], the correlation engine), so a rule backtested here behaves as it will live. Each
//! input line is one event; its `seq` is its line number across all inputs (1-based), which is
//! what alert evidence refers to. Workers run in parallel; the merger hands their output to the
//! engine in input order, so the output does not depend on thread timing.
//!
//! Alerts go to `out` as one JSON object per line; a summary goes to the caller.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cairn_correlate::{
    Alert, Correlations, Correlator, EngineConfig, MatchScratch, Matcher, ObservationBatch,
    RuleIndex,
};
use cairn_ingest::decode::{NdjsonLimits, decode_ndjson};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog, syslog_timestamp};
use cairn_ingest::{Event, EventFlags, Format, FrameMeta, Seq, Source, Timestamp};
use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;

/// Bytes handed to a worker at once (rounded to whole lines).
const CHUNK_BYTES: usize = 1 << 20;
/// A line longer than this is cut (and flagged truncated), as a syslog frame would be.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How input lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Each line as a syslog frame: RFC 5424, RFC 3164 or a JSON body, detected per line.
    Auto,
    /// RFC 5424 lines: a line in another format is still processed but counted as a parse
    /// error (and flagged `parse_error`).
    Rfc5424,
    /// RFC 3164 (BSD) lines, with the same treatment of other lines.
    Rfc3164,
    /// One JSON object per line, as `POST /api/v1/ingest` takes.
    Ndjson,
}

/// Where events come from.
#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

/// Everything replay needs besides the inputs.
#[derive(Debug)]
pub struct ReplayOptions {
    pub matcher: Arc<Matcher>,
    pub correlations: Arc<Correlations>,
    pub engine: EngineConfig,
    pub normaliser: Arc<Normaliser>,
    pub parse: ParseOptions,
    pub format: InputFormat,
    pub workers: usize,
    /// Skip extraction and matching of syslog lines that contain none of the rules' literals
    /// (see [`Matcher::header_literals`]); they are still parsed, for event time. Same alerts
    /// either way; on by default.
    pub skip_unmatchable: bool,
}

/// What a replay did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplaySummary {
    pub lines: u64,
    pub events: u64,
    /// Lines that did not parse, among those analysed (a line no rule can match is only read
    /// for its timestamp when [`ReplayOptions::skip_unmatchable`] is on).
    pub parse_errors: u64,
    pub rejected_lines: u64,
    pub matched_events: u64,
    pub alerts: u64,
    /// Observations behind the watermark (input out of order by more than the lateness).
    pub late_observations: u64,
    /// Observations not made because an event lacked a group-by field.
    pub missing_group_field: u64,
    pub elapsed_secs: f64,
    pub lines_per_sec: f64,
}

/// A replay failure: reading an input or writing alerts.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {input}: {source}")]
    Read {
        input: String,
        source: std::io::Error,
    },
    #[error("cannot write alerts: {0}")]
    Write(std::io::Error),
    #[error("cannot start a replay thread: {0}")]
    Thread(std::io::Error),
}

struct Chunk {
    id: u64,
    first_seq: u64,
    bytes: Bytes,
}

#[derive(Default)]
struct ChunkOutput {
    id: u64,
    lines: u64,
    events: u64,
    parse_errors: u64,
    rejected_lines: u64,
    matched_events: u64,
    batch: ObservationBatch,
}

/// Runs the replay; alerts are written to `out` as NDJSON.
pub fn run(
    inputs: &[Input],
    options: &ReplayOptions,
    out: &mut dyn Write,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let workers = options.workers.max(1);
    let (chunk_tx, chunk_rx) = bounded::<Chunk>(workers * 4);
    let (output_tx, output_rx) = bounded::<ChunkOutput>(workers * 4);
    let mut summary = ReplaySummary::default();
    let read_result = std::thread::scope(|scope| -> Result<(), ReplayError> {
        for worker in 0..workers {
            let chunks = chunk_rx.clone();
            let outputs = output_tx.clone();
            std::thread::Builder::new()
                .name(format!("cairn-replay-{worker}"))
                .spawn_scoped(scope, move || replay_worker(&chunks, &outputs, options))
                .map_err(ReplayError::Thread)?;
        }
        drop(chunk_rx);
        drop(output_tx);
        let reader = std::thread::Builder::new()
            .name("cairn-replay-read".to_string())
            .spawn_scoped(scope, move || read_inputs(inputs, &chunk_tx))
            .map_err(ReplayError::Thread)?;
        let merged = merge(&output_rx, options, out, &mut summary);
        let read = reader.join().unwrap_or_else(|_| {
            Err(ReplayError::Thread(std::io::Error::other(
                "reader panicked",
            )))
        });
        merged?;
        read
    });
    read_result?;
    out.flush().map_err(ReplayError::Write)?;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.lines_per_sec = if summary.elapsed_secs > 0.0 {
        summary.lines as f64 / summary.elapsed_secs
    } else {
        0.0
    };
    Ok(summary)
}

/// Reads every input in order and cuts it into chunks of whole lines.
fn read_inputs(inputs: &[Input], chunks: &Sender<Chunk>) -> Result<(), ReplayError> {
    let mut next_id = 0u64;
    let mut next_seq = 1u64;
    for input in inputs {
        let (name, mut reader): (String, Box<dyn Read>) = match input {
            Input::Stdin => ("stdin".to_string(), Box::new(std::io::stdin().lock())),
            Input::File(path) => {
                let file = std::fs::File::open(path).map_err(|source| ReplayError::Read {
                    input: path.display().to_string(),
                    source,
                })?;
                (path.display().to_string(), Box::new(file))
            }
        };
        // `read_to_end` fills spare capacity without zeroing it first; the partial line at the
        // end of a chunk is carried over to the next one.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut buffer = Vec::with_capacity(carry.len() + CHUNK_BYTES);
            buffer.append(&mut carry);
            let read = (&mut reader)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buffer)
                .map_err(|source| ReplayError::Read {
                    input: name.clone(),
                    source,
                })?;
            let at_end = read == 0;
            // Hand over everything up to the last newline (or all of it at the end of the input,
            // or when one line outgrew the limit).
            let cut = if at_end {
                buffer.len()
            } else {
                match memchr::memrchr(b'\n', &buffer) {
                    Some(newline) => newline + 1,
                    None if buffer.len() >= MAX_LINE_BYTES => buffer.len(),
                    None => {
                        carry = buffer;
                        continue;
                    }
                }
            };
            carry = buffer.split_off(cut);
            if !buffer.is_empty() {
                let bytes = Bytes::from(buffer);
                let lines = count_lines(&bytes);
                let chunk = Chunk {
                    id: next_id,
                    first_seq: next_seq,
                    bytes,
                };
                next_id += 1;
                next_seq += lines;
                if chunks.send(chunk).is_err() {
                    return Ok(());
                }
            }
            if at_end {
                break;
            }
        }
    }
    Ok(())
}

/// Lines in a chunk: newlines, plus a last line without one.
fn count_lines(bytes: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', bytes).count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&last| last != b'\n'))
}

/// Finds lines that cannot match any rule (see [`Matcher::header_literals`]).
enum LinePrefilter {
    /// Every line goes through extraction and matching.
    Off,
    /// No rule can match anything.
    NothingMatches,
    Literals(aho_corasick::AhoCorasick),
}

impl LinePrefilter {
    fn new(options: &ReplayOptions) -> LinePrefilter {
        if !options.skip_unmatchable || options.format == InputFormat::Ndjson {
            return LinePrefilter::Off;
        }
        match options.matcher.header_literals() {
            None => LinePrefilter::Off,
            Some(literals) if literals.is_empty() => LinePrefilter::NothingMatches,
            Some(literals) => aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&literals)
                .map_or(LinePrefilter::Off, LinePrefilter::Literals),
        }
    }

    /// True when the line certainly matches no rule. A line with `{` may carry a JSON body,
    /// whose fields are unescaped copies rather than slices of the line: never skipped.
    fn skips(&self, line: &[u8]) -> bool {
        match self {
            LinePrefilter::Off => false,
            LinePrefilter::NothingMatches => true,
            LinePrefilter::Literals(automaton) => {
                memchr::memchr(b'{', line).is_none() && !automaton.is_match(line)
            }
        }
    }
}

fn replay_worker(chunks: &Receiver<Chunk>, outputs: &Sender<ChunkOutput>, options: &ReplayOptions) {
    let prefilter = LinePrefilter::new(options);
    let mut scratch: MatchScratch = options.matcher.scratch();
    let mut matched: Vec<RuleIndex> = Vec::new();
    let received_at = Timestamp::now();
    let ndjson_limits = NdjsonLimits {
        max_line_bytes: MAX_LINE_BYTES,
        max_fields: options.parse.max_json_fields,
        max_depth: options.parse.max_json_depth,
    };
    for chunk in chunks {
        let mut output = ChunkOutput {
            id: chunk.id,
            lines: count_lines(&chunk.bytes),
            ..ChunkOutput::default()
        };
        // `skip`: the line cannot match any rule; it only counts and advances event time.
        let mut handle = |event: &mut Event, output: &mut ChunkOutput, skip: bool| {
            output.events += 1;
            output.parse_errors += u64::from(event.flags.contains(EventFlags::PARSE_ERROR));
            output.batch.saw(event.ts);
            if skip {
                return;
            }
            options.normaliser.normalise(event);
            options
                .matcher
                .match_event(event, &mut scratch, &mut matched);
            if !matched.is_empty() {
                output.matched_events += 1;
                output.batch.missing_group_field += options.correlations.observe(
                    event,
                    &matched,
                    &mut output.batch.observations,
                    &mut output.batch.alerts,
                );
            }
        };
        match options.format {
            InputFormat::Ndjson => {
                let meta = frame_meta(chunk.first_seq, received_at);
                let decoded = decode_ndjson(chunk.bytes, &meta, &ndjson_limits, &options.parse);
                output.rejected_lines += decoded.rejected.len() as u64;
                for mut event in decoded.events {
                    handle(&mut event, &mut output, false);
                }
            }
            InputFormat::Auto | InputFormat::Rfc5424 | InputFormat::Rfc3164 => {
                let mut seq = chunk.first_seq;
                let mut start = 0;
                let bytes = &chunk.bytes;
                while start < bytes.len() {
                    let end = memchr::memchr(b'\n', &bytes[start..])
                        .map_or(bytes.len(), |offset| start + offset);
                    let mut line_end = end;
                    if line_end > start && bytes[line_end - 1] == b'\r' {
                        line_end -= 1;
                    }
                    if line_end > start {
                        let mut meta = frame_meta(seq, received_at);
                        let mut frame = bytes.slice(start..line_end);
                        if frame.len() > MAX_LINE_BYTES {
                            frame.truncate(MAX_LINE_BYTES);
                            meta.flags.insert(EventFlags::TRUNCATED);
                        }
                        let skip = prefilter.skips(&frame);
                        // A line no rule can match only matters for event time: read just its
                        // timestamp when that is cheap and certain.
                        if skip && let Some(ts) = syslog_timestamp(&frame, &meta, &options.parse) {
                            output.events += 1;
                            output.batch.saw(ts);
                            seq += 1;
                            start = end + 1;
                            continue;
                        }
                        let mut event = parse_syslog(frame, &meta, &options.parse);
                        let expected = match options.format {
                            InputFormat::Rfc5424 => Some(Format::Rfc5424),
                            InputFormat::Rfc3164 => Some(Format::Rfc3164),
                            InputFormat::Auto | InputFormat::Ndjson => None,
                        };
                        if expected.is_some_and(|format| format != event.format) {
                            event.flags.insert(EventFlags::PARSE_ERROR);
                        }
                        handle(&mut event, &mut output, skip);
                    }
                    seq += 1;
                    start = end + 1;
                }
            }
        }
        if outputs.send(output).is_err() {
            return;
        }
    }
}

fn frame_meta(seq: u64, received_at: Timestamp) -> FrameMeta {
    FrameMeta {
        seq: Seq(seq),
        received_at,
        peer: None,
        source: Source::File,
        flags: EventFlags::empty(),
    }
}

/// Restores chunk order, feeds the engine, writes alerts.
fn merge(
    outputs: &Receiver<ChunkOutput>,
    options: &ReplayOptions,
    out: &mut dyn Write,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    let mut correlator = Correlator::new(Arc::clone(&options.correlations), &options.engine);
    let mut pending = std::collections::BTreeMap::new();
    let mut next = 0u64;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut line = Vec::with_capacity(512);
    let mut write_alerts = |alerts: &mut Vec<Alert>, summary: &mut ReplaySummary| {
        for alert in alerts.drain(..) {
            summary.alerts += 1;
            line.clear();
            write_alert(&mut line, &alert);
            out.write_all(&line).map_err(ReplayError::Write)?;
        }
        Ok::<(), ReplayError>(())
    };
    for output in outputs {
        pending.insert(output.id, output);
        while let Some(output) = pending.remove(&next) {
            next += 1;
            summary.lines += output.lines;
            summary.events += output.events;
            summary.parse_errors += output.parse_errors;
            summary.rejected_lines += output.rejected_lines;
            summary.matched_events += output.matched_events;
            correlator.submit(output.batch, &mut alerts);
            write_alerts(&mut alerts, summary)?;
        }
    }
    let stats = correlator.finish(&mut alerts);
    write_alerts(&mut alerts, summary)?;
    summary.late_observations = stats.late;
    summary.missing_group_field = stats.missing_group_field;
    Ok(())
}

/// One alert as a JSON line: `rule`, `title`, `level`, `kind`, `ts`, `first_ts`, `group`,
/// `event_count`, `evidence`, and `possibly_incomplete` when set.
fn write_alert(line: &mut Vec<u8>, alert: &Alert) {
    let group: serde_json::Map<String, serde_json::Value> = alert
        .group
        .iter()
        .map(|(field, value)| (field.to_string(), serde_json::Value::from(value.as_str())))
        .collect();
    let mut object = serde_json::json!({
        "rule": &*alert.rule,
        "title": &*alert.title,
        "level": alert.level.name(),
        "kind": alert.kind.name(),
        "ts": alert.ts.to_rfc3339(),
        "first_ts": alert.first_ts.to_rfc3339(),
        "group": group,
        "event_count": alert.event_count,
        "evidence": alert.evidence.iter().map(|seq| seq.0).collect::<Vec<_>>(),
    });
    if alert.possibly_incomplete
        && let Some(map) = object.as_object_mut()
    {
        map.insert(
            "possibly_incomplete".to_string(),
            serde_json::Value::Bool(true),
        );
    }
    // Serialising a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *line, &object);
    line.push(b'\n');
}
