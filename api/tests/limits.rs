//! Hostile connections against the real binary: slowloris heads, slow bodies, and one source
//! opening more connections than its share, on the HTTP listener and on TCP syslog. Each is cut
//! off and counted while well-behaved clients are still served.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Cairn, DEADLINE, TempDir, args, config_args, http_request, unique_token};

/// Reads until the peer closes (or the deadline passes); returns what arrived and whether the
/// peer closed.
fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A reset is a close too.
            Err(_) => return (received, true),
        }
    }
    (received, false)
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect")
}

/// Connects from another loopback address (127.0.0.2), so that the test's own requests (from
/// 127.0.0.1) are not counted against that source's limit.
fn connect_from_other_source(addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: SocketAddr = "127.0.0.2:0".parse().expect("addr");
    socket.bind(&local.into()).expect("bind 127.0.0.2");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .expect("connect");
    socket.into()
}

#[test]
fn a_slow_request_head_is_cut_off_and_counted_while_others_are_served() {
    let dir = TempDir::new("limits-slowloris");
    let config = config_args(dir.path(), "[http]\nheader_timeout_secs = 1\n");
    let cairn = Cairn::start(dir.path(), &args(&config));

    // One socket that never sends a byte, one that trickles a head and never ends it.
    let mut silent = connect(cairn.http);
    let mut trickle = connect(cairn.http);
    trickle
        .write_all(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");

    // Meanwhile a normal client is served.
    let token = unique_token("slowloris");
    let body = format!("{{\"message\":\"{token} still served\"}}\n");
    let response = http_request(cairn.http, "POST", "/api/v1/ingest", &[], body.as_bytes())
        .expect("ingest while slow clients hold sockets");
    assert_eq!(response.status, 200, "{}", response.text());

    let (_, silent_closed) = read_until_closed(&mut silent, DEADLINE);
    assert!(silent_closed, "a socket that sends nothing must be closed");
    let (_, trickle_closed) = read_until_closed(&mut trickle, DEADLINE);
    assert!(trickle_closed, "a head that never ends must be closed");
    let stats = cairn.stats_until("two timed-out connections", |stats| {
        stats["http_connections"]["timed_out"].as_u64() >= Some(2)
    });
    // The only connection still open is the one that asked for the stats.
    assert_eq!(stats["http_connections"]["open"], 1);
    cairn.search_until(&token, 1);
    cairn.stop();
}

#[test]
fn a_slow_request_body_gets_408() {
    let dir = TempDir::new("limits-slow-body");
    let config = config_args(dir.path(), "[http]\nbody_timeout_secs = 1\n");
    let cairn = Cairn::start(dir.path(), &args(&config));

    let mut stream = connect(cairn.http);
    stream
        .write_all(
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"message\":",
        )
        .expect("head and a piece of the body");
    let (response, closed) = read_until_closed(&mut stream, DEADLINE);
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "a body that never completes gets 408, got: {text}"
    );
    assert!(text.contains("request_timeout"), "{text}");
    assert!(closed, "the connection is closed after the 408");
    let stats = cairn.stats();
    assert!(stats["http_connections"]["timed_out"].as_u64() >= Some(1));
    // Nothing half-sent was indexed, and nothing was counted as received.
    assert_eq!(stats["received"], 0);
    cairn.stop();
}

#[test]
fn one_source_cannot_hold_more_than_its_share_of_http_connections() {
    let dir = TempDir::new("limits-http-per-source");
    let config = config_args(dir.path(), "[http]\nmax_connections_per_source = 3\n");
    let cairn = Cairn::start(dir.path(), &args(&config));

    // Three idle keep-alive connections are served (the server waits for their heads)…
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| connect_from_other_source(cairn.http))
        .collect();
    // (Each stats request is one more open connection, from 127.0.0.1.)
    cairn.stats_until("three open connections", |stats| {
        stats["http_connections"]["open"] == 4
    });
    // …the fourth from the same address is closed at once, and counted, while other sources
    // are still served.
    let mut fourth = connect_from_other_source(cairn.http);
    let (_, closed) = read_until_closed(&mut fourth, DEADLINE);
    assert!(
        closed,
        "the connection over the per-source limit must be closed"
    );
    let stats = cairn.stats();
    assert_eq!(stats["http_connections"]["refused_per_source"], 1);

    // A slot freed is a slot usable again.
    held.pop();
    cairn.stats_until("a slot freed", |stats| {
        stats["http_connections"]["open"] == 3
    });
    let mut again = connect_from_other_source(cairn.http);
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let (response, _) = read_until_closed(&mut again, DEADLINE);
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let metrics = cairn.get("/metrics");
    assert!(
        metrics
            .text()
            .contains("cairn_http_connections_refused_total{limit=\"max_connections_per_source\"}"),
        "{}",
        metrics.text()
    );
    drop(held);
    cairn.stop();
}

#[test]
fn one_source_cannot_hold_more_than_its_share_of_syslog_tcp_connections() {
    let dir = TempDir::new("limits-tcp-per-source");
    let config = config_args(dir.path(), "[syslog]\nmax_connections_per_source = 2\n");
    let cairn = Cairn::start(dir.path(), &args(&config));
    let syslog: SocketAddr = format!("127.0.0.1:{}", cairn.syslog_port)
        .parse()
        .expect("addr");

    let token = unique_token("tcplimit");
    let mut first = connect(syslog);
    let _second = connect(syslog);
    cairn.stats_until("two open syslog connections", |stats| {
        stats["connections_open"] == 2
    });
    let mut third = connect(syslog);
    let (_, closed) = read_until_closed(&mut third, DEADLINE);
    assert!(
        closed,
        "the third connection from one address must be closed"
    );
    let stats = cairn.stats();
    assert_eq!(stats["connections_refused_per_source"], 1);
    assert_eq!(stats["connections_refused"], 1);

    // The connections within the limit still deliver.
    first
        .write_all(format!("<13>Jan  1 00:00:00 host app: {token} within the limit\n").as_bytes())
        .expect("send");
    drop(first);
    cairn.search_until(&token, 1);
    cairn.stop();
}

/// Peak and current resident memory of a process, bytes (`VmHWM`, `VmRSS`).
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn a_flood_of_large_bodies_stays_within_the_memory_budget_and_loses_nothing_acknowledged() {
    const SENDERS: usize = 48;
    const BODIES_PER_SENDER: usize = 2;
    const LINES_PER_BODY: usize = 1000;
    const BUDGET_MB: u64 = 16;
    const WRITER_MB: u64 = 16;
    let dir = TempDir::new("limits-memory");
    let config = config_args(
        dir.path(),
        &format!(
            "[pipeline]\nmemory_budget_mb = {BUDGET_MB}\nqueue_batches = 4096\n\
             [index]\nwriter_memory_mb = {WRITER_MB}\nwriter_threads = 1\n"
        ),
    );
    let cairn = Cairn::start(dir.path(), &args(&config));
    let token = unique_token("flood");
    let warmup = format!("{{\"message\":\"{token} warmup\"}}\n");
    let response =
        http_request(cairn.http, "POST", "/api/v1/ingest", &[], warmup.as_bytes()).expect("warmup");
    assert_eq!(response.status, 200);
    cairn.search_until(&token, 1);
    let (_, baseline) = memory_of(cairn.pid());

    // Every sender offers 2 MiB bodies at once: far more than the budget can hold.
    let padding = "a".repeat(2000);
    let http = cairn.http;
    let outcomes: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let token = &token;
                let padding = &padding;
                scope.spawn(move || {
                    let (mut acked, mut throttled) = (0u64, 0u64);
                    for body_number in 0..BODIES_PER_SENDER {
                        let mut body = String::with_capacity(LINES_PER_BODY * 2100);
                        for line in 0..LINES_PER_BODY {
                            body.push_str(&format!(
                                "{{\"message\":\"{token} s{sender}b{body_number}l{line} {padding}\"}}\n"
                            ));
                        }
                        match http_request(http, "POST", "/api/v1/ingest", &[], body.as_bytes()) {
                            Ok(response) if response.status == 200 => {
                                acked += LINES_PER_BODY as u64;
                            }
                            Ok(response) if response.status == 429 => {
                                assert!(
                                    response.header("retry-after").is_some(),
                                    "a 429 says when to retry"
                                );
                                throttled += 1;
                            }
                            Ok(response) => panic!("unexpected {}: {}", response.status, response.text()),
                            // Refused before its body was read: the server may close while the
                            // client is still writing. Not acknowledged, so not owed.
                            Err(_) => throttled += 1,
                        }
                    }
                    (acked, throttled)
                })
            })
            .collect();
        senders
            .into_iter()
            .map(|sender| sender.join().expect("sender"))
            .collect()
    });
    let acked: u64 = outcomes.iter().map(|(acked, _)| acked).sum();
    let throttled: u64 = outcomes.iter().map(|(_, throttled)| throttled).sum();
    assert!(throttled > 0, "the flood must meet the budget");
    assert!(acked > 0, "some bodies fit the budget");

    // Nothing acknowledged is lost.
    cairn.search_until(&token, acked + 1);
    let stats = cairn.stats();
    assert!(
        stats["queues"]["memory_refusals"].as_u64() > Some(0),
        "{stats}"
    );
    assert_eq!(stats["queues"]["memory_budget_bytes"], BUDGET_MB << 20);
    let (peak, _) = memory_of(cairn.pid());
    // Unbounded, 48 bodies in flight hold several hundred MiB (each body, its decoded lines,
    // its WAL record). Bounded, growth stays within the budget, the index writer's arena and
    // a margin for allocator slack.
    let growth = peak.saturating_sub(baseline);
    let allowed = (BUDGET_MB + WRITER_MB + 64) << 20;
    assert!(
        growth < allowed,
        "peak RSS grew by {} MiB over a {} MiB baseline; allowed {} MiB",
        growth >> 20,
        baseline >> 20,
        allowed >> 20
    );
    eprintln!(
        "memory flood: {acked} events acked, {throttled} bodies refused, peak RSS growth {} MiB (allowed {} MiB)",
        growth >> 20,
        allowed >> 20
    );
    cairn.stop();
}
