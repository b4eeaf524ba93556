//! Invariant checks shared by the cargo-fuzz targets (`ingest/fuzz/`) and the corpus replay
//! tests (`ingest/tests/fuzz_corpus.rs`). Not part of the stable API.
//!
//! Each `check_*` function takes arbitrary bytes, runs one entry point of this crate on them and
//! panics (which the fuzzer reports as a crash, and the replay test as a failure) when an
//! invariant does not hold:
//!
//! - [`check_framing`]: the stream framer gives the same frames whatever the chunking, every
//!   frame is a non-empty piece of the input (in order, at most `max_frame_bytes`), every frame
//!   consumes bytes, buffering stays bounded, and EOF drains the buffer; the datagram framer
//!   returns a prefix of the datagram;
//! - [`check_syslog`]: [`parse_syslog`] keeps the frame (lossily converted and flagged when not
//!   UTF-8), every span of the event is inside the frame and on `char` boundaries, the
//!   accessors return exactly those pieces, [`syslog_timestamp`] agrees with the parse, the strict
//!   RFC 5424 parser borrows only from its input, and normalisation keeps the spans valid;
//! - [`check_ndjson`]: every non-blank line of the body is either one event or one rejection
//!   with its line number and a reason, events keep their line as raw frame and respect the
//!   field limit, sequence numbers are consecutive.
//!
//! The first bytes of an input choose limits and options (see each function), so the fuzzer
//! explores small limits where the edge cases are.
//!
//! [`replay_corpus`] runs a check over a committed corpus (`fixtures/fuzz/<target>/`) and its
//! minimised crashes (`fixtures/fuzz/regressions/<target>/`); the `fuzz_corpus` tests of each
//! crate call it, so CI replays what the fuzzers found without needing cargo-fuzz.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::decode::{NdjsonLimits, decode_ndjson};
use crate::event::{Event, EventFlags, FieldValue, FrameMeta, Seq, Source, Text, Timestamp};
use crate::framing::{FramingEvent, StreamFramer, datagram_frame};
use crate::normalise::Normaliser;
use crate::parse::{ParseOptions, parse_rfc5424_strict, parse_syslog, syslog_timestamp};

/// The octet-count header (≤ 9 digits and a space) plus a CRLF: what the stream framer may hold
/// beyond `max_frame_bytes` while it waits for more bytes.
const FRAMER_SLACK_BYTES: usize = 12;

/// A tiny deterministic generator (xorshift) for chunk sizes chosen by the input.
struct Chunker(u32);

impl Chunker {
    fn next_len(&mut self) -> usize {
        let mut state = self.0;
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        self.0 = state;
        // Mostly tiny chunks (where boundaries fall inside headers and CRLFs), some larger.
        match state % 4 {
            0 => 0,
            1 => 1,
            2 => (state >> 8) as usize % 8,
            _ => (state >> 8) as usize % 64,
        }
    }
}

/// Frames, truncation flags and the byte count of every emitted frame.
type Framed = Vec<(Bytes, bool)>;

/// Feeds `chunks` to a fresh framer, then EOF, checking the per-call invariants.
fn frame_chunks<'a>(max_frame_bytes: usize, chunks: impl Iterator<Item = &'a [u8]>) -> Framed {
    let mut framer = StreamFramer::new(max_frame_bytes);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0usize;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let before = buf.len();
            let Some(event) = framer.decode(&mut buf) else {
                break;
            };
            assert!(buf.len() < before, "a frame consumed no bytes");
            push_frame(&mut out, event, max_frame_bytes);
        }
        assert!(
            buf.len() <= max_frame_bytes + FRAMER_SLACK_BYTES,
            "framer buffers {} bytes with max_frame_bytes {max_frame_bytes}",
            buf.len()
        );
    }
    // Each decode_eof call that returns a frame consumes bytes, so this ends within `fed` calls.
    let mut calls = 0usize;
    while let Some(event) = framer.decode_eof(&mut buf) {
        calls += 1;
        assert!(calls <= fed + 1, "decode_eof does not advance");
        push_frame(&mut out, event, max_frame_bytes);
    }
    assert!(buf.is_empty(), "{} bytes left after eof", buf.len());
    out
}

fn push_frame(out: &mut Framed, event: FramingEvent, max_frame_bytes: usize) {
    match event {
        FramingEvent::Frame(frame) => {
            assert!(!frame.bytes.is_empty(), "empty frame emitted");
            assert!(
                frame.bytes.len() <= max_frame_bytes,
                "frame of {} bytes over max_frame_bytes {max_frame_bytes}",
                frame.bytes.len()
            );
            out.push((frame.bytes, frame.truncated));
        }
        FramingEvent::Discarded { bytes } => assert!(bytes > 0, "discarded nothing"),
    }
}

/// Whether every frame occurs in `input`, in order and without overlapping: the framer only
/// removes framing, it never invents, repeats or reorders bytes.
fn frames_are_ordered_pieces_of(input: &[u8], frames: &Framed) -> bool {
    let mut cursor = 0;
    for (frame, _) in frames {
        let rest = input.get(cursor..).unwrap_or_default();
        let Some(position) = rest
            .windows(frame.len())
            .position(|window| window == &frame[..])
        else {
            return false;
        };
        cursor += position + frame.len();
    }
    true
}

/// Stream and datagram framing. Input: `[max_frame_bytes - 1, seed, seed, stream…]`.
///
/// # Panics
/// When an invariant of [`StreamFramer`] or [`datagram_frame`] does not hold.
pub fn check_framing(data: &[u8]) {
    let [max_byte, seed_low, seed_high, stream @ ..] = data else {
        return;
    };
    let max_frame_bytes = usize::from(*max_byte) + 1;
    let whole = frame_chunks(max_frame_bytes, std::iter::once(stream));
    assert!(
        frames_are_ordered_pieces_of(stream, &whole),
        "a frame is not a piece of the input"
    );

    let mut chunker = Chunker(u32::from_le_bytes([*seed_low, *seed_high, 0x5a, 0xa5]));
    let mut rest = stream;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(chunker.next_len().min(rest.len()));
        rest = tail;
        Some(chunk)
    });
    let chunked = frame_chunks(max_frame_bytes, chunks);
    assert_eq!(chunked, whole, "chunking changed the frames");

    let frame = datagram_frame(Bytes::copy_from_slice(stream), max_frame_bytes);
    assert!(frame.bytes.len() <= max_frame_bytes);
    assert!(
        stream.starts_with(&frame.bytes),
        "datagram frame is not a prefix"
    );
}

fn frame_meta(seq: u64) -> FrameMeta {
    FrameMeta {
        seq: Seq(seq),
        // 2024-06-01T00:00:00Z: RFC 3164 years are inferred from it.
        received_at: Timestamp(1_717_200_000_000_000_000),
        peer: None,
        source: Source::SyslogTcp,
        flags: EventFlags::empty(),
    }
}

/// Parser options chosen by one byte: year inference or a fixed year, UTC or an offset zone,
/// default or tiny JSON limits.
fn parse_options(selector: u8) -> ParseOptions {
    let mut options = ParseOptions::default();
    if selector & 1 != 0 {
        options.year = Some(2021);
    }
    if selector & 2 != 0 {
        options.default_tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(-5));
    }
    if selector & 4 != 0 {
        options.max_json_fields = usize::from(selector >> 4);
        options.max_json_depth = usize::from(selector >> 5);
    }
    options
}

/// Checks that `text` resolves inside the event's frame, on `char` boundaries, and that the
/// accessor gives the same text.
fn assert_text_inside(event: &Event, text: &Text, what: &str) {
    if let Text::Span(span) = text {
        assert!(span.start <= span.end, "{what}: span {span:?} is reversed");
        assert!(
            event.raw_str().get(span.range()).is_some(),
            "{what}: span {span:?} outside the frame of {} bytes or off a char boundary",
            event.raw.len()
        );
    }
    assert_eq!(event.text(text), text.resolve(event.raw_str()), "{what}");
}

/// Event invariants that hold for every event any parser produces from `input`.
///
/// # Panics
/// When a span of `event` is outside its frame or the frame is not `input` (lossily converted
/// and flagged when `input` is not UTF-8).
pub fn check_event(event: &Event, input: &[u8]) {
    let raw = std::str::from_utf8(&event.raw).expect("event.raw is valid utf-8");
    match std::str::from_utf8(input) {
        Ok(text) => {
            assert_eq!(raw, text, "the frame changed");
            assert!(!event.flags.contains(EventFlags::INVALID_UTF8));
        }
        Err(_) => {
            assert_eq!(raw, String::from_utf8_lossy(input), "lossy conversion");
            assert!(
                event.flags.contains(EventFlags::INVALID_UTF8),
                "not flagged"
            );
        }
    }
    let optional = [
        (&event.host, "host"),
        (&event.app, "app"),
        (&event.procid, "procid"),
        (&event.msgid, "msgid"),
    ];
    for (text, what) in optional {
        if let Some(text) = text {
            assert_text_inside(event, text, what);
        }
    }
    assert_text_inside(event, &event.message, "message");
    for element in &event.structured_data {
        assert_text_inside(event, &element.id, "sd id");
        for (name, value) in &element.params {
            assert_text_inside(event, name, "sd param name");
            assert_text_inside(event, value, "sd param value");
        }
    }
    for field in &event.fields {
        assert_text_inside(event, &field.name, "field name");
        if let FieldValue::Text(value) = &field.value {
            assert_text_inside(event, value, "field value");
        }
    }
}

/// Syslog parsing (RFC 5424, RFC 3164 and variants, JSON frames) and normalisation.
/// Input: `[options selector, frame…]`.
///
/// # Panics
/// When an invariant of [`parse_syslog`], [`syslog_timestamp`], [`parse_rfc5424_strict`] or
/// [`Normaliser::normalise`] does not hold.
pub fn check_syslog(data: &[u8]) {
    let [selector, frame @ ..] = data else {
        return;
    };
    let options = parse_options(*selector);
    let meta = frame_meta(1);
    let mut event = parse_syslog(Bytes::copy_from_slice(frame), &meta, &options);
    check_event(&event, frame);
    assert_eq!(event.seq, meta.seq);

    if let Some(ts) = syslog_timestamp(frame, &meta, &options) {
        assert_eq!(ts, event.ts, "syslog_timestamp disagrees with parse_syslog");
    }

    if let Ok(message) = parse_rfc5424_strict(frame) {
        let range = frame.as_ptr_range();
        let borrowed = [
            message.hostname,
            message.app_name,
            message.procid,
            message.msgid,
            message.message,
        ];
        for part in borrowed.into_iter().flatten() {
            let part_range = part.as_bytes().as_ptr_range();
            assert!(
                range.start <= part_range.start && part_range.end <= range.end,
                "strict rfc 5424 returned text outside its input"
            );
        }
    }

    thread_local! {
        static NORMALISER: Normaliser = Normaliser::builtin();
    }
    NORMALISER.with(|normaliser| normaliser.normalise(&mut event));
    check_event(&event, frame);
}

/// NDJSON decoding with limits. Input: `[line limit selector, field limit, depth limit, body…]`.
///
/// # Panics
/// When a non-blank line is neither an event nor a rejection, or an event breaks the event
/// invariants or the field limit.
pub fn check_ndjson(data: &[u8]) {
    let [line_selector, max_fields, max_depth, body @ ..] = data else {
        return;
    };
    let limits = NdjsonLimits {
        max_line_bytes: if *line_selector == u8::MAX {
            NdjsonLimits::default().max_line_bytes
        } else {
            usize::from(*line_selector) * 4
        },
        max_fields: usize::from(*max_fields),
        max_depth: usize::from(*max_depth % 40),
    };
    let base = FrameMeta {
        source: Source::HttpNdjson,
        ..frame_meta(1_000)
    };
    let outcome = decode_ndjson(
        Bytes::copy_from_slice(body),
        &base,
        &limits,
        &ParseOptions::default(),
    );

    let lines: Vec<(usize, &[u8])> = body
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    assert_eq!(
        outcome.events.len() + outcome.rejected.len(),
        lines.len(),
        "a non-blank line was lost or counted twice"
    );
    let mut events = outcome.events.iter();
    let mut rejections = outcome.rejected.iter().peekable();
    let mut expected_seq = base.seq.0;
    for (number, line) in lines {
        if let Some(rejection) = rejections.next_if(|rejection| rejection.line == number) {
            assert!(!rejection.detail.is_empty(), "rejection without detail");
            assert!(rejection.detail.len() <= 256, "rejection detail too long");
            continue;
        }
        let event = events
            .next()
            .unwrap_or_else(|| panic!("line {number} was neither accepted nor rejected"));
        assert!(line.len() <= limits.max_line_bytes, "long line accepted");
        assert_eq!(
            event.seq,
            Seq(expected_seq),
            "sequence numbers not consecutive"
        );
        expected_seq += 1;
        // NDJSON lines must be UTF-8 (JSON's rule): the decoder rejects, never converts.
        assert!(
            std::str::from_utf8(line).is_ok(),
            "invalid utf-8 line accepted"
        );
        check_event(event, line);
        assert!(!event.flags.contains(EventFlags::PARSE_ERROR));
        assert!(event.fields.len() <= limits.max_fields, "field limit");
    }
    assert!(rejections.next().is_none(), "rejection of an unknown line");
}

/// `fixtures/fuzz/` of the source tree.
fn fuzz_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.file_name().is_some_and(|name| name != "README.md"))
        .collect();
    files.sort();
    files
}

/// Runs `check` over every file of `fixtures/fuzz/<target>/` and
/// `fixtures/fuzz/regressions/<target>/`; returns how many inputs ran.
///
/// # Panics
/// When the corpus is missing or empty, or `check` panics on some inputs (all inputs run; the
/// message lists the failing files).
pub fn replay_corpus(target: &str, check: fn(&[u8])) -> usize {
    let fixtures = fuzz_fixtures();
    let corpus = files_in(&fixtures.join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus in {}",
        fixtures.join(target).display()
    );
    let regressions = files_in(&fixtures.join("regressions").join(target));
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} input(s) break an invariant (see the panic messages above): {failures:#?}",
        failures.len()
    );
    corpus.len() + regressions.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_accept_ordinary_input() {
        check_framing(b"\x3f\x01\x02<13>a\n5 <13>b<13>c\0");
        check_syslog(b"\0<34>1 2003-10-11T22:14:15.003Z host app - ID47 [a b=\"c\"] msg");
        check_syslog(b"\0<13>Oct 11 22:14:15 host sshd[12]: Failed password for root");
        check_ndjson(b"\xff\x10\x10{\"message\":\"a\"}\n\n{bad\n\"text\"\n");
    }

    #[test]
    fn ordered_pieces_detects_invented_bytes() {
        let frames = vec![(Bytes::from_static(b"ab"), false)];
        assert!(frames_are_ordered_pieces_of(b"xaby", &frames));
        assert!(!frames_are_ordered_pieces_of(b"xbay", &frames));
    }
}
