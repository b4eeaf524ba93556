//! Framing and parsing throughput, Cairn side by side with `syslog_loose` on the same corpus.
//!
//! Groups (throughput in elements, so the report shows lines/s for each engine):
//! - `parse`: per-line parse of pre-split lines. Both engines start from the line's bytes (Cairn
//!   gets a `Bytes`, `syslog_loose` a `&[u8]` it must UTF-8-check first, as Cairn does inside).
//! - `frame+parse`: one LF-framed TCP-style buffer of the whole corpus. Cairn: `StreamFramer` +
//!   `parse_syslog`, each frame a zero-copy `Bytes`; `syslog_loose`: `memchr` line split +
//!   `parse_message_with_year_tz` on borrowed slices. Both start from the same `BytesMut`.
//!
//! Fairness: both engines read the host, app, message and timestamp of every result through
//! `black_box`; both get the same fixed year and UTC for RFC 3164 timestamps (Cairn through
//! `FrameMeta::received_at` and `ParseOptions::default_tz`, `syslog_loose` through its year
//! closure and `tz` argument) so neither pays for a local-time-zone lookup per line.
//!
//! The corpus (~1,000 distinct lines, ~130 bytes each) is generated deterministically here; the
//! bench reads no files.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use cairn_ingest::framing::{DEFAULT_MAX_FRAME_BYTES, FramingEvent, StreamFramer};
use cairn_ingest::parse::{ParseOptions, parse_syslog};
use cairn_ingest::{EventFlags, Format, FrameMeta, Seq, Source, Timestamp};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use syslog_loose::Variant;

/// Number of distinct lines in the corpus.
const CORPUS_LINES: usize = 1_000;
/// The year RFC 3164 timestamps (which have none) are given, by both engines.
const CORPUS_YEAR: i32 = 2024;
/// 2024-11-21T12:00:00Z, the receive time of every frame (Cairn infers the RFC 3164 year from it).
const RECEIVED_AT_NANOS: i64 = 1_732_190_400_000_000_000;

/// splitmix64: a tiny deterministic generator, so the corpus is identical on every run.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }

    fn ipv4(&mut self, first_octet: u8) -> Ipv4Addr {
        Ipv4Addr::new(
            first_octet,
            self.below(256) as u8,
            self.below(256) as u8,
            1 + self.below(254) as u8,
        )
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const USERS: [&str; 8] = [
    "root", "admin", "alice", "bob", "deploy", "oracle", "postgres", "ubuntu",
];

/// `Oct 11 22:14:15` (day space-padded, as RFC 3164 senders write it).
fn rfc3164_timestamp(rng: &mut SplitMix64) -> String {
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[rng.below(12) as usize],
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

/// `2024-10-11T22:14:15.003Z` or with a numeric offset.
fn rfc3339_timestamp(rng: &mut SplitMix64) -> String {
    let offset = rng.pick(&["Z", "Z", "+02:00", "-05:00"]);
    format!(
        "{CORPUS_YEAR}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{offset}",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn rfc3164_line(rng: &mut SplitMix64) -> String {
    let ts = rfc3164_timestamp(rng);
    let host = format!("srv-{:02}", rng.below(40));
    let pid = 1000 + rng.below(60_000);
    let user = rng.pick(&USERS);
    let ip = rng.ipv4(10);
    let port = 1024 + rng.below(60_000);
    match rng.below(5) {
        0 => format!(
            "<38>{ts} {host} sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
        ),
        1 => format!(
            "<38>{ts} {host} sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{:016x}",
            rng.next_u64()
        ),
        2 => format!(
            "<85>{ts} {host} sudo: {user} : TTY=pts/{} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
            rng.below(8)
        ),
        3 => format!(
            "<4>{ts} {host} kernel: [UFW BLOCK] IN=eth0 OUT= SRC={ip} DST=10.0.0.1 LEN=60 PROTO=TCP SPT={port} DPT=22"
        ),
        _ => format!(
            "<22>{ts} {host} postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 Relay access denied"
        ),
    }
}

fn rfc5424_line(rng: &mut SplitMix64, with_structured_data: bool) -> String {
    let ts = rfc3339_timestamp(rng);
    let host = format!("app-{:02}", rng.below(40));
    let app = rng.pick(&["evntslog", "nginx", "payments", "auth-svc", "kubelet"]);
    let pid = 1000 + rng.below(60_000);
    let msgid = rng.pick(&["ID47", "REQ", "AUDIT", "-"]);
    let user = rng.pick(&USERS);
    let ip = rng.ipv4(192);
    if with_structured_data {
        let event_id = rng.below(10_000);
        format!(
            "<165>1 {ts} {host} {app} {pid} {msgid} [exampleSDID@32473 iut=\"3\" eventID=\"{event_id}\"] login failure for {user} from {ip}"
        )
    } else {
        let status = rng.pick(&["200", "302", "404", "500"]);
        format!(
            "<134>1 {ts} {host} {app} {pid} {msgid} - GET /api/v1/orders/{} HTTP/1.1 {status} {} bytes from {ip}",
            rng.below(100_000),
            rng.below(20_000)
        )
    }
}

fn cisco_asa_line(rng: &mut SplitMix64) -> String {
    // ASA writes `Oct 11 2024 22:14:15` (with the year, without a time zone).
    let timestamp = format!(
        "{} {:02} {CORPUS_YEAR} {:02}:{:02}:{:02}",
        MONTHS[rng.below(12) as usize],
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    );
    let src = rng.ipv4(10);
    let dst = rng.ipv4(172);
    let src_port = 1024 + rng.below(60_000);
    let dst_port = rng.pick(&["22", "80", "443", "3389"]);
    let body = match rng.below(3) {
        0 => format!(
            "%ASA-4-106023: Deny tcp src outside:{src}/{src_port} dst inside:{dst}/{dst_port} by access-group \"outside_in\" [0x0, 0x0]"
        ),
        1 => format!(
            "%ASA-6-302013: Built inbound TCP connection {} for outside:{src}/{src_port} to inside:{dst}/{dst_port}",
            rng.below(1_000_000_000)
        ),
        _ => format!(
            "%ASA-6-302014: Teardown TCP connection {} for outside:{src}/{src_port} to inside:{dst}/{dst_port} duration 0:00:{:02}",
            rng.below(1_000_000_000),
            rng.below(60)
        ),
    };
    if rng.below(2) == 0 {
        format!("<164>{timestamp}: {body}")
    } else {
        format!("<166>{timestamp} asa-fw{:02} : {body}", rng.below(4))
    }
}

/// ~1,000 distinct lines: 45% RFC 3164 (sshd, sudo, kernel, postfix), 20% RFC 5424 without
/// structured data, 15% with, 20% Cisco ASA.
fn corpus() -> Vec<Bytes> {
    let mut rng = SplitMix64(0x0c0f_fee0_ca1e_5eed);
    (0..CORPUS_LINES)
        .map(|_| {
            let line = match rng.below(20) {
                0..=8 => rfc3164_line(&mut rng),
                9..=12 => rfc5424_line(&mut rng, false),
                13..=15 => rfc5424_line(&mut rng, true),
                _ => cisco_asa_line(&mut rng),
            };
            Bytes::from(line)
        })
        .collect()
}

/// The corpus as one LF-framed stream, as a TCP sender would write it.
fn lf_stream(lines: &[Bytes]) -> Vec<u8> {
    let mut stream = Vec::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
    for line in lines {
        stream.extend_from_slice(line);
        stream.push(b'\n');
    }
    stream
}

fn frame_meta(seq: u64) -> FrameMeta {
    FrameMeta {
        seq: Seq(seq),
        received_at: Timestamp(RECEIVED_AT_NANOS),
        peer: Some(SocketAddr::from(([127, 0, 0, 1], 40_000))),
        source: Source::SyslogTcp,
        flags: EventFlags::empty(),
    }
}

/// Cairn: parse one frame and touch what the pipeline reads next.
fn cairn_parse_and_touch(raw: Bytes, meta: &FrameMeta, options: &ParseOptions) {
    let event = parse_syslog(raw, meta, options);
    black_box(event.ts);
    black_box(event.host_str());
    black_box(event.app_str());
    black_box(event.message_str());
}

/// `syslog_loose`: UTF-8-check one frame (Cairn does this inside `parse_syslog`), parse it, and
/// touch the same fields.
fn syslog_loose_parse_and_touch(raw: &[u8]) {
    let Ok(text) = std::str::from_utf8(raw) else {
        black_box(raw);
        return;
    };
    let message = syslog_loose::parse_message_with_year_tz(
        text,
        |_| CORPUS_YEAR,
        Some(chrono::Utc),
        Variant::Either,
    );
    black_box(message.timestamp);
    black_box(message.hostname);
    black_box(message.appname);
    black_box(message.msg);
}

/// Prints, once, how many corpus lines each engine parsed (rather than fell back to "the whole
/// line is the message"), so a run against a stub or a regressed parser is obvious.
fn report_parse_coverage(lines: &[Bytes], options: &ParseOptions) {
    let meta = frame_meta(0);
    let cairn_parsed = lines
        .iter()
        .map(|line| parse_syslog(line.clone(), &meta, options))
        .filter(|event| event.format != Format::Unparsed)
        .count();
    // `syslog_loose`'s fallback has no timestamp; every corpus line has one.
    let syslog_loose_parsed = lines
        .iter()
        .filter_map(|line| std::str::from_utf8(line).ok())
        .map(|text| {
            syslog_loose::parse_message_with_year_tz(
                text,
                |_| CORPUS_YEAR,
                Some(chrono::Utc),
                Variant::Either,
            )
        })
        .filter(|message| message.timestamp.is_some())
        .count();
    let total_bytes: usize = lines.iter().map(Bytes::len).sum();
    eprintln!(
        "corpus: {} lines, {:.0} bytes/line; parsed: cairn {cairn_parsed}/{}, syslog_loose {syslog_loose_parsed}/{}",
        lines.len(),
        total_bytes as f64 / lines.len() as f64,
        lines.len(),
        lines.len(),
    );
    if cairn_parsed == 0 {
        eprintln!(
            "warning: cairn parsed no line: parse_syslog is still the stub, the figures measure only the fallback"
        );
    }
}

/// With `CAIRN_BENCH_CORPUS_OUT=FILE`, writes the corpus there (LF-framed), e.g. to feed a peer
/// or `cairn replay` the same lines.
fn write_corpus_if_asked(lines: &[Bytes]) {
    let Some(path) = std::env::var_os("CAIRN_BENCH_CORPUS_OUT") else {
        return;
    };
    match std::fs::write(&path, lf_stream(lines)) {
        Ok(()) => eprintln!("corpus written to {}", path.display()),
        Err(error) => eprintln!("warning: writing the corpus to {}: {error}", path.display()),
    }
}

fn bench_parse(c: &mut Criterion) {
    let lines = corpus();
    let options = ParseOptions::default();
    write_corpus_if_asked(&lines);
    report_parse_coverage(&lines, &options);

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("cairn", |b| {
        b.iter(|| {
            for (index, line) in lines.iter().enumerate() {
                let meta = frame_meta(index as u64);
                cairn_parse_and_touch(line.clone(), &meta, &options);
            }
        })
    });
    group.bench_function("syslog_loose", |b| {
        b.iter(|| {
            for line in &lines {
                syslog_loose_parse_and_touch(line);
            }
        })
    });
    group.finish();
}

/// Cairn: frame a whole stream buffer and parse every frame, as a TCP connection task and the
/// pipeline do. Returns the number of frames.
fn cairn_frame_and_parse(mut buffer: BytesMut, options: &ParseOptions) -> usize {
    let mut framer = StreamFramer::new(DEFAULT_MAX_FRAME_BYTES);
    let mut frames = 0;
    while let Some(framing_event) = framer.decode(&mut buffer) {
        match framing_event {
            FramingEvent::Frame(frame) => {
                let mut meta = frame_meta(frames as u64);
                if frame.truncated {
                    meta.flags.insert(EventFlags::TRUNCATED);
                }
                cairn_parse_and_touch(frame.bytes, &meta, options);
                frames += 1;
            }
            FramingEvent::Discarded { .. } => {}
        }
    }
    frames
}

/// `syslog_loose`: split the same buffer on LF with `memchr` and parse every line. Returns the
/// number of lines.
fn syslog_loose_frame_and_parse(buffer: BytesMut) -> usize {
    let mut lines = 0;
    let mut line_start = 0;
    for line_end in memchr::memchr_iter(b'\n', &buffer) {
        syslog_loose_parse_and_touch(&buffer[line_start..line_end]);
        line_start = line_end + 1;
        lines += 1;
    }
    lines
}

fn bench_frame_and_parse(c: &mut Criterion) {
    let lines = corpus();
    let stream = lf_stream(&lines);
    let options = ParseOptions::default();

    let cairn_frames = cairn_frame_and_parse(BytesMut::from(&stream[..]), &options);
    let syslog_loose_lines = syslog_loose_frame_and_parse(BytesMut::from(&stream[..]));
    if cairn_frames != lines.len() || syslog_loose_lines != lines.len() {
        eprintln!(
            "warning: {} lines framed as {cairn_frames} (cairn) and {syslog_loose_lines} (syslog_loose); frame+parse is not comparable",
            lines.len()
        );
    }

    // Each iteration gets a fresh copy of the buffer (made outside the timing), as a socket read
    // would fill it; both sides drop it inside the timing.
    let mut group = c.benchmark_group("frame+parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("cairn", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |buffer| cairn_frame_and_parse(buffer, &options),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("syslog_loose", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            syslog_loose_frame_and_parse,
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_frame_and_parse);
criterion_main!(benches);
