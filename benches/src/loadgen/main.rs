//! `cairn-loadgen`: sends N events to a running Cairn (syslog TCP or UDP, or HTTP NDJSON) and
//! measures **ingest-to-searchable** throughput: from the first byte sent until a search for the
//! run's unique id counts all N events (or `/api/v1/stats` `indexed` has grown by N).
//!
//! Invariants: it only ever targets loopback addresses (refused otherwise), and it always stops by
//! itself (`--timeout` bounds sending and waiting together). With `--spawn` it starts `cairn serve`
//! on free loopback ports, measures, and stops it again.
//!
//! Output: human-readable lines, then one JSON line with every figure (the last line on stdout).

mod appliance;
mod http;
mod lines;
mod send;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, ValueEnum};

use crate::appliance::{POLL_INTERVAL, RssSampler, SpawnedCairn};
use crate::http::HttpClient;
use crate::lines::LineBuilder;
use crate::send::{SendPlan, SenderReport, Transport};

/// Sends N syslog/NDJSON events to a Cairn on loopback and measures ingest-to-searchable
/// throughput.
#[derive(Debug, Parser)]
#[command(name = "cairn-loadgen", version)]
struct Args {
    /// How events are sent.
    #[arg(long, value_enum, default_value_t = Mode::Tcp)]
    mode: Mode,
    /// Number of events to send.
    #[arg(short = 'n', long = "events", default_value_t = 1_000_000)]
    events: u64,
    /// Parallel senders (one connection / socket each).
    #[arg(short = 'c', long, default_value_t = 1)]
    connections: usize,
    /// TCP: octet-counted framing (RFC 6587 `LEN SP MSG`) instead of LF.
    #[arg(long)]
    octet_count: bool,
    /// HTTP: lines per POST.
    #[arg(long, default_value_t = 1000)]
    batch_lines: usize,
    /// HTTP: gzip each body (`Content-Encoding: gzip`).
    #[arg(long)]
    gzip: bool,
    /// Total send rate in events/s over all senders (default: as fast as the appliance takes).
    #[arg(long)]
    rate: Option<f64>,
    /// The appliance's HTTP API (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// The appliance's syslog TCP listener (loopback only).
    #[arg(long, default_value = "127.0.0.1:5514")]
    syslog_tcp: String,
    /// The appliance's syslog UDP listener (loopback only).
    #[arg(long, default_value = "127.0.0.1:5514")]
    syslog_udp: String,
    /// How "searchable" is decided: a search for the run id counting N events, or
    /// `/api/v1/stats` `indexed` grown by N.
    #[arg(long, value_enum, default_value_t = WaitFor::Search)]
    wait: WaitFor,
    /// Deadline in seconds for sending and waiting together; the run stops then, incomplete.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// UDP: when `/api/v1/stats` lacks the reconciliation counters, stop waiting once the count
    /// has not grown for this many seconds since sending ended (lost datagrams never show up).
    #[arg(long, default_value_t = 5)]
    udp_settle: u64,
    /// PID of the appliance, to report its peak RSS (`VmHWM`, and `VmRSS` sampled every 100 ms).
    #[arg(long)]
    pid: Option<u32>,
    /// Start `PATH serve` on free loopback ports with a temporary data directory, wait for
    /// `/readyz`, run, and stop it (overrides --http, --syslog-tcp, --syslog-udp and --pid).
    #[arg(long, value_name = "PATH_TO_CAIRN")]
    spawn: Option<PathBuf>,
    /// With --spawn: one more argument for `cairn serve` (repeatable), e.g. `--spawn-arg=--config
    /// --spawn-arg=cairn.toml`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    spawn_arg: Vec<String>,
    /// With --spawn: keep the data directory and `cairn.log` instead of deleting them.
    #[arg(long)]
    keep_data: bool,
    /// The run id put in every message (lowercase ASCII letters; default: random).
    #[arg(long)]
    run_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Tcp,
    Udp,
    Http,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Udp => "udp",
            Mode::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WaitFor {
    Search,
    Stats,
}

impl WaitFor {
    fn name(self) -> &'static str {
        match self {
            WaitFor::Search => "search",
            WaitFor::Stats => "stats",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(error) => {
            eprintln!("cairn-loadgen: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves `addr` and refuses anything that is not loopback (this machine's rules: the load
/// generator never sends to another host).
fn loopback_addr(flag: &str, addr: &str) -> Result<SocketAddr> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("{flag} {addr:?} is not an address"))?
        .collect();
    let Some(first) = resolved.first().copied() else {
        bail!("{flag} {addr:?} resolves to nothing");
    };
    if let Some(remote) = resolved
        .iter()
        .find(|candidate| !candidate.ip().is_loopback())
    {
        bail!("{flag} {addr:?} resolves to {remote}, which is not loopback; refusing");
    }
    Ok(first)
}

/// A run id that the search tokeniser keeps as one token: lowercase letters only.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut state = nanos ^ (u64::from(std::process::id()) << 32);
    let mut id = String::from("lg");
    for _ in 0..10 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        id.push(char::from(b'a' + ((state >> 33) % 26) as u8));
    }
    id
}

fn validate(args: &Args) -> Result<()> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    if args.connections == 0 || args.connections > 1024 {
        bail!("--connections must be 1..=1024");
    }
    if args.batch_lines == 0 {
        bail!("--batch-lines must be at least 1");
    }
    if args.timeout == 0 {
        bail!("--timeout must be at least 1 second");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    if let Some(run_id) = &args.run_id
        && (run_id.is_empty() || !run_id.bytes().all(|byte| byte.is_ascii_lowercase()))
    {
        bail!("--run-id must be lowercase ASCII letters (one search token)");
    }
    if args.octet_count && args.mode != Mode::Tcp {
        bail!("--octet-count applies to --mode tcp only");
    }
    if args.gzip && args.mode != Mode::Http {
        bail!("--gzip applies to --mode http only");
    }
    if !args.spawn_arg.is_empty() && args.spawn.is_none() {
        bail!("--spawn-arg needs --spawn");
    }
    Ok(())
}

/// Counters read from `/api/v1/stats` (`None` when the endpoint or the field is missing).
#[derive(Debug, Default, Clone, Copy)]
struct StatsSample {
    received: Option<u64>,
    indexed: Option<u64>,
    dropped_total: Option<u64>,
    rejected_total: Option<u64>,
}

fn sample_stats(client: &mut HttpClient) -> StatsSample {
    match appliance::stats(client) {
        Ok(stats) => StatsSample {
            received: appliance::stat(&stats, "received"),
            indexed: appliance::stat(&stats, "indexed"),
            dropped_total: appliance::stat(&stats, "dropped_total"),
            rejected_total: appliance::stat(&stats, "rejected_total"),
        },
        Err(_) => StatsSample::default(),
    }
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// Returns whether the run completed (all N events searchable).
fn run(args: &Args) -> Result<bool> {
    validate(args)?;
    let run_id = args.run_id.clone().unwrap_or_else(new_run_id);
    let timeout = Duration::from_secs(args.timeout);

    let mut spawned = match &args.spawn {
        Some(binary) => {
            let data_dir = std::env::temp_dir().join(format!("cairn-loadgen-{run_id}"));
            let mut cairn = SpawnedCairn::start(binary, data_dir, &args.spawn_arg, args.keep_data)?;
            println!(
                "spawned {} (pid {}): http {}, syslog tcp {}, udp {}; log {}",
                binary.display(),
                cairn.pid(),
                cairn.addrs.http,
                cairn.addrs.syslog_tcp,
                cairn.addrs.syslog_udp,
                cairn.log_path().display()
            );
            let mut client = HttpClient::new(cairn.addrs.http, Duration::from_secs(5));
            let ready_deadline = Instant::now() + timeout.min(Duration::from_secs(120));
            appliance::wait_ready(&mut client, ready_deadline, Some(&mut cairn))?;
            Some(cairn)
        }
        None => None,
    };
    let (http_addr, tcp_addr, udp_addr, pid) = match &spawned {
        Some(cairn) => (
            cairn.addrs.http,
            cairn.addrs.syslog_tcp,
            cairn.addrs.syslog_udp,
            Some(cairn.pid()),
        ),
        None => (
            loopback_addr("--http", &args.http)?,
            loopback_addr("--syslog-tcp", &args.syslog_tcp)?,
            loopback_addr("--syslog-udp", &args.syslog_udp)?,
            args.pid,
        ),
    };

    let mut api = HttpClient::new(http_addr, Duration::from_secs(10));
    if spawned.is_none() {
        appliance::wait_ready(&mut api, Instant::now() + Duration::from_secs(5), None)
            .with_context(|| format!("is cairn running with its HTTP API on {http_addr}?"))?;
    }
    let stats_before = sample_stats(&mut api);
    if args.wait == WaitFor::Stats && stats_before.indexed.is_none() {
        bail!("--wait stats needs `indexed` in GET /api/v1/stats, which did not answer with it");
    }
    let udp_errors_before = appliance::udp_rcvbuf_errors();

    let (transport, target) = match args.mode {
        Mode::Tcp => (
            Transport::Tcp {
                octet_count: args.octet_count,
            },
            tcp_addr,
        ),
        Mode::Udp => (Transport::Udp, udp_addr),
        Mode::Http => (
            Transport::Http {
                batch_lines: args.batch_lines,
                gzip: args.gzip,
            },
            http_addr,
        ),
    };
    let plan = SendPlan {
        transport,
        target,
        lines: LineBuilder::new(&run_id),
        rate_per_sender: args.rate.map(|rate| rate / args.connections as f64),
        deadline: Instant::now() + timeout,
    };
    println!(
        "run {run_id}: {} events over {} {} connection(s) to {target}, waiting on {}",
        args.events,
        args.connections,
        args.mode.name(),
        args.wait.name()
    );

    let senders = send::connect_all(&plan, args.connections)?;
    let sampler = pid.map(RssSampler::start);
    // The clock starts with the first byte: connections are already open.
    let start = Instant::now();
    let deadline = start + timeout;
    let plan = SendPlan { deadline, ..plan };
    let reports = send::run_all(&plan, senders, args.events)?;
    let send_end = Instant::now();
    let send_secs = send_end.duration_since(start).as_secs_f64();
    let totals = reports
        .iter()
        .fold(SenderReport::default(), |sum, report| SenderReport {
            events: sum.events + report.events,
            bytes: sum.bytes + report.bytes,
            send_errors: sum.send_errors + report.send_errors,
            http_retries: sum.http_retries + report.http_retries,
        });
    println!(
        "sent {} events ({:.1} MB) in {send_secs:.3} s: {:.0} events/s",
        totals.events,
        totals.bytes as f64 / 1e6,
        totals.events as f64 / send_secs
    );

    let outcome = wait_searchable(
        args,
        &mut api,
        &run_id,
        stats_before,
        Timeline {
            start,
            send_end,
            deadline,
        },
        spawned.as_mut(),
    )?;
    let e2e_secs = outcome.last_growth.duration_since(start).as_secs_f64();

    let stats_after = sample_stats(&mut api);
    let udp_errors_after = appliance::udp_rcvbuf_errors();
    let sampled_max_rss = sampler.map_or(0, RssSampler::finish);
    let memory_end = pid.and_then(appliance::proc_memory);
    let vm_hwm = memory_end.map(|memory| memory.hwm);
    let peak_rss = match (memory_end, pid) {
        (Some(memory), _) => Some(memory.hwm.max(sampled_max_rss)),
        (None, Some(_)) if sampled_max_rss > 0 => Some(sampled_max_rss),
        _ => None,
    };
    let received = delta(stats_before.received, stats_after.received);
    let dropped = delta(stats_before.dropped_total, stats_after.dropped_total);
    let rejected = delta(stats_before.rejected_total, stats_after.rejected_total);
    let udp_rcvbuf_errors = delta(udp_errors_before, udp_errors_after);
    drop(spawned);

    let e2e_eps = outcome.found as f64 / e2e_secs;
    println!(
        "searchable: {}/{} events after {e2e_secs:.3} s: {e2e_eps:.0} events/s end to end{}",
        outcome.found,
        args.events,
        if outcome.complete {
            ""
        } else {
            " (INCOMPLETE)"
        }
    );
    if let Some(peak) = peak_rss {
        println!(
            "appliance peak RSS {:.1} MiB (VmHWM {:.1} MiB, sampled VmRSS max {:.1} MiB)",
            peak as f64 / 1048576.0,
            vm_hwm.unwrap_or(0) as f64 / 1048576.0,
            sampled_max_rss as f64 / 1048576.0
        );
    }
    if args.mode == Mode::Udp {
        println!(
            "udp: appliance received {}, dropped {}; kernel receive-buffer drops {} (system-wide); send errors {}",
            received.map_or("?".to_owned(), |n| n.to_string()),
            dropped.map_or("?".to_owned(), |n| n.to_string()),
            udp_rcvbuf_errors.map_or("?".to_owned(), |n| n.to_string()),
            totals.send_errors
        );
    }
    if outcome.found > args.events {
        println!(
            "warning: {} events found for {} sent (duplicates?)",
            outcome.found, args.events
        );
    }

    let summary = serde_json::json!({
        "mode": args.mode.name(),
        "n": args.events,
        "connections": args.connections,
        "octet_count": args.octet_count,
        "gzip": args.gzip,
        "batch_lines": (args.mode == Mode::Http).then_some(args.batch_lines),
        "rate": args.rate,
        "wait": args.wait.name(),
        "run_id": run_id,
        "complete": outcome.complete,
        "found": outcome.found,
        "sent_bytes": totals.bytes,
        "send_secs": send_secs,
        "e2e_secs": e2e_secs,
        "send_eps": totals.events as f64 / send_secs,
        "e2e_eps": e2e_eps,
        "peak_rss_bytes": peak_rss,
        "vm_hwm_bytes": vm_hwm,
        "sampled_max_rss_bytes": (sampled_max_rss > 0).then_some(sampled_max_rss),
        "received": received,
        "dropped": dropped,
        "rejected": rejected,
        "udp_rcvbuf_errors": (args.mode == Mode::Udp).then_some(udp_rcvbuf_errors).flatten(),
        "udp_send_errors": (args.mode == Mode::Udp).then_some(totals.send_errors),
        "http_retries": (args.mode == Mode::Http).then_some(totals.http_retries),
    });
    println!("{summary}");
    // UDP may lose datagrams by design; a UDP run that settled is complete enough.
    Ok(outcome.complete || (args.mode == Mode::Udp && outcome.settled))
}

/// The instants of one run.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// The first byte was sent.
    start: Instant,
    /// The last sender finished.
    send_end: Instant,
    /// Everything stops.
    deadline: Instant,
}

#[derive(Debug)]
struct WaitOutcome {
    /// Events of this run found searchable.
    found: u64,
    /// When `found` last grew (the end time of the measurement).
    last_growth: Instant,
    /// All N found.
    complete: bool,
    /// UDP: the count stopped growing for `--udp-settle` seconds.
    settled: bool,
}

/// Polls every [`POLL_INTERVAL`] until all events are searchable, the deadline passes, or (UDP)
/// the count has settled.
fn wait_searchable(
    args: &Args,
    api: &mut HttpClient,
    run_id: &str,
    stats_before: StatsSample,
    timeline: Timeline,
    mut spawned: Option<&mut SpawnedCairn>,
) -> Result<WaitOutcome> {
    let Timeline {
        start,
        send_end,
        deadline,
    } = timeline;
    let settle = Duration::from_secs(args.udp_settle);
    let mut found = 0;
    let mut last_growth = start;
    let mut last_progress_print = Instant::now();
    loop {
        if let Some(cairn) = spawned.as_deref_mut() {
            cairn.check_running()?;
        }
        let polled = match args.wait {
            WaitFor::Search => appliance::search_total(api, run_id),
            WaitFor::Stats => appliance::stats(api).and_then(|stats| {
                let indexed = appliance::stat(&stats, "indexed")
                    .context("stats response has no numeric `indexed`")?;
                Ok(indexed.saturating_sub(stats_before.indexed.unwrap_or(0)))
            }),
        };
        let now = Instant::now();
        let last_error = match polled {
            Ok(count) => {
                if count > found {
                    found = count;
                    last_growth = now;
                }
                None
            }
            Err(error) => Some(error),
        };
        if found >= args.events {
            return Ok(WaitOutcome {
                found,
                last_growth,
                complete: true,
                settled: false,
            });
        }
        if args.mode == Mode::Udp
            && udp_settled(api, stats_before, found, send_end, last_growth, settle)
        {
            return Ok(WaitOutcome {
                found,
                last_growth,
                complete: false,
                settled: true,
            });
        }
        if now >= deadline {
            if let Some(error) = last_error {
                eprintln!("last poll failed: {error:#}");
            }
            return Ok(WaitOutcome {
                found,
                last_growth,
                complete: false,
                settled: false,
            });
        }
        if now.duration_since(last_progress_print) >= Duration::from_secs(5) {
            eprintln!(
                "  {found}/{} searchable after {:.1} s",
                args.events,
                now.duration_since(start).as_secs_f64()
            );
            last_progress_print = now;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// UDP can lose datagrams, so a UDP run may never reach N. It has settled when the appliance has
/// nothing in flight (`received = indexed + dropped_total + rejected_total`, its reconciliation
/// invariant), sending ended at least a second ago, and everything it indexed during the run is
/// found. Without usable stats: when the count has not grown for `settle` since sending ended.
fn udp_settled(
    api: &mut HttpClient,
    stats_before: StatsSample,
    found: u64,
    send_end: Instant,
    last_growth: Instant,
    settle: Duration,
) -> bool {
    let stats = sample_stats(api);
    if let (Some(received), Some(indexed), Some(dropped), Some(rejected)) = (
        stats.received,
        stats.indexed,
        stats.dropped_total,
        stats.rejected_total,
    ) {
        let in_flight = received.saturating_sub(indexed + dropped + rejected);
        let indexed_during_run = indexed.saturating_sub(stats_before.indexed.unwrap_or(0));
        // The grace second lets datagrams still in the socket buffer reach `received`.
        return in_flight == 0
            && found >= indexed_during_run
            && send_end.elapsed() >= Duration::from_secs(1);
    }
    last_growth.max(send_end).elapsed() >= settle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_targets() {
        assert!(loopback_addr("--http", "127.0.0.1:8080").is_ok());
        assert!(loopback_addr("--http", "[::1]:8080").is_ok());
        assert!(loopback_addr("--http", "10.0.0.1:8080").is_err());
        assert!(loopback_addr("--http", "0.0.0.0:8080").is_err());
        assert!(loopback_addr("--http", "not an address").is_err());
    }

    #[test]
    fn run_ids_are_single_lowercase_tokens() {
        let run_id = new_run_id();
        assert_eq!(run_id.len(), 12);
        assert!(run_id.bytes().all(|byte| byte.is_ascii_lowercase()));
    }

    #[test]
    fn flags_parse() {
        let args = Args::try_parse_from([
            "cairn-loadgen",
            "--mode",
            "http",
            "-n",
            "10",
            "--gzip",
            "--spawn",
            "target/release/cairn",
            "--spawn-arg=--config",
            "--spawn-arg",
            "x.toml",
        ])
        .expect("parses");
        assert_eq!(args.mode, Mode::Http);
        assert_eq!(args.spawn_arg, ["--config", "x.toml"]);
        assert!(validate(&args).is_ok());
    }
}
