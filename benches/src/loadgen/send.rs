//! The senders: one OS thread per connection, each sending a contiguous range of sequence numbers
//! as fast as the appliance takes them (TCP backpressure and HTTP 429 slow them down) or at an
//! optional fixed rate.

use std::io::Write as _;
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::ops::Range;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::http::HttpClient;
use crate::lines::{Clock, LineBuilder};

/// TCP senders write in chunks of about this size.
const TCP_CHUNK_BYTES: usize = 64 * 1024;
/// The clock string in the lines is refreshed every this many lines.
const CLOCK_REFRESH_LINES: u64 = 1024;
/// Shortest wait after a 429/503 (also for `Retry-After: 0`), so a throttled sender never spins.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(50);
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// How events travel to the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// LF-framed syslog over TCP, or octet-counted (RFC 6587) when `octet_count` is set.
    Tcp { octet_count: bool },
    /// One syslog line per datagram.
    Udp,
    /// `POST /api/v1/ingest`, NDJSON bodies of `batch_lines` lines, optionally gzipped.
    Http { batch_lines: usize, gzip: bool },
}

/// What every sender shares.
#[derive(Debug, Clone)]
pub struct SendPlan {
    pub transport: Transport,
    pub target: SocketAddr,
    pub lines: LineBuilder,
    /// Events per second per sender, when rate-limited.
    pub rate_per_sender: Option<f64>,
    /// Senders give up (with an error) after this instant.
    pub deadline: Instant,
}

/// What one sender did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SenderReport {
    pub events: u64,
    pub bytes: u64,
    /// UDP datagrams `send` refused (e.g. `ECONNREFUSED` after an ICMP unreachable).
    pub send_errors: u64,
    /// HTTP requests answered 429/503 and retried.
    pub http_retries: u64,
}

/// A connected sender, ready to go.
#[derive(Debug)]
enum Connection {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Http(HttpClient),
}

/// Opens one connection per sender (before the clock starts).
pub fn connect_all(plan: &SendPlan, connections: usize) -> Result<Vec<ConnectedSender>> {
    let timeout = plan.deadline.saturating_duration_since(Instant::now());
    (0..connections)
        .map(|_| {
            let connection = match plan.transport {
                Transport::Tcp { .. } => {
                    let stream = TcpStream::connect_timeout(&plan.target, timeout)
                        .with_context(|| format!("connecting to syslog TCP {}", plan.target))?;
                    stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
                    Connection::Tcp(stream)
                }
                Transport::Udp => {
                    let socket = UdpSocket::bind("127.0.0.1:0")?;
                    socket
                        .connect(plan.target)
                        .with_context(|| format!("connecting to syslog UDP {}", plan.target))?;
                    Connection::Udp(socket)
                }
                Transport::Http { .. } => {
                    let mut client = HttpClient::new(plan.target, timeout);
                    client
                        .connect()
                        .with_context(|| format!("connecting to HTTP {}", plan.target))?;
                    Connection::Http(client)
                }
            };
            Ok(ConnectedSender { connection })
        })
        .collect()
}

#[derive(Debug)]
pub struct ConnectedSender {
    connection: Connection,
}

/// Runs every sender on its own thread, sender `i` sending its share of `0..events`. Returns
/// the per-sender reports once all have finished.
pub fn run_all(
    plan: &SendPlan,
    senders: Vec<ConnectedSender>,
    events: u64,
) -> Result<Vec<SenderReport>> {
    let count = senders.len() as u64;
    let handles: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| {
            let index = index as u64;
            let range = events * index / count..events * (index + 1) / count;
            let plan = plan.clone();
            thread::spawn(move || sender.run(&plan, range))
        })
        .collect();
    let mut reports = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.join() {
            Ok(report) => reports.push(report?),
            Err(_) => bail!("a sender thread panicked"),
        }
    }
    Ok(reports)
}

/// Sleeps as needed to hold a rate; a no-op without one.
#[derive(Debug)]
struct Pacer {
    rate: Option<f64>,
    start: Instant,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
        }
    }

    fn pace(&self, sent: u64) {
        let Some(rate) = self.rate else { return };
        let due = Duration::from_secs_f64(sent as f64 / rate);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            thread::sleep(due - elapsed);
        }
    }
}

fn check_deadline(plan: &SendPlan, sent: u64) -> Result<()> {
    if Instant::now() >= plan.deadline {
        bail!("send deadline passed after {sent} events of this sender");
    }
    Ok(())
}

impl ConnectedSender {
    fn run(self, plan: &SendPlan, range: Range<u64>) -> Result<SenderReport> {
        match (self.connection, plan.transport) {
            (Connection::Tcp(stream), Transport::Tcp { octet_count }) => {
                send_tcp(plan, stream, range, octet_count)
            }
            (Connection::Udp(socket), Transport::Udp) => send_udp(plan, &socket, range),
            (Connection::Http(client), Transport::Http { batch_lines, gzip }) => {
                send_http(plan, client, range, batch_lines, gzip)
            }
            _ => bail!("connection does not match the transport"),
        }
    }
}

fn send_tcp(
    plan: &SendPlan,
    mut stream: TcpStream,
    range: Range<u64>,
    octet_count: bool,
) -> Result<SenderReport> {
    let mut report = SenderReport::default();
    let pacer = Pacer::new(plan.rate_per_sender);
    let mut clock = Clock::now();
    let mut chunk = Vec::with_capacity(TCP_CHUNK_BYTES + 512);
    let mut line = Vec::with_capacity(256);
    let mut pending = 0;
    for seq in range {
        if seq % CLOCK_REFRESH_LINES == 0 {
            clock = Clock::now();
        }
        if octet_count {
            line.clear();
            plan.lines.syslog_line(seq, &clock, &mut line);
            write!(chunk, "{} ", line.len())?;
            chunk.extend_from_slice(&line);
        } else {
            plan.lines.syslog_line(seq, &clock, &mut chunk);
            chunk.push(b'\n');
        }
        pending += 1;
        if chunk.len() >= TCP_CHUNK_BYTES {
            stream.write_all(&chunk).context("writing to syslog TCP")?;
            report.bytes += chunk.len() as u64;
            report.events += pending;
            chunk.clear();
            pending = 0;
            check_deadline(plan, report.events)?;
            pacer.pace(report.events);
        }
    }
    stream.write_all(&chunk).context("writing to syslog TCP")?;
    report.bytes += chunk.len() as u64;
    report.events += pending;
    stream.flush()?;
    // Tell the appliance we are done; it closes its side after reading everything.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(report)
}

fn send_udp(plan: &SendPlan, socket: &UdpSocket, range: Range<u64>) -> Result<SenderReport> {
    let mut report = SenderReport::default();
    let pacer = Pacer::new(plan.rate_per_sender);
    let mut clock = Clock::now();
    let mut datagram = Vec::with_capacity(256);
    for seq in range {
        if seq % CLOCK_REFRESH_LINES == 0 {
            clock = Clock::now();
            check_deadline(plan, report.events)?;
        }
        datagram.clear();
        plan.lines.syslog_line(seq, &clock, &mut datagram);
        match socket.send(&datagram) {
            Ok(sent) => report.bytes += sent as u64,
            Err(_) => report.send_errors += 1,
        }
        report.events += 1;
        if report.events % 64 == 0 {
            pacer.pace(report.events);
        }
    }
    if report.send_errors == report.events && report.events > 0 {
        bail!(
            "every UDP send failed (is the appliance listening on {}?)",
            plan.target
        );
    }
    Ok(report)
}

fn send_http(
    plan: &SendPlan,
    mut client: HttpClient,
    range: Range<u64>,
    batch_lines: usize,
    gzip: bool,
) -> Result<SenderReport> {
    let mut report = SenderReport::default();
    let pacer = Pacer::new(plan.rate_per_sender);
    let mut body = Vec::with_capacity(batch_lines * 200);
    let mut seq = range.start;
    while seq < range.end {
        let clock = Clock::now();
        let batch_end = (seq + batch_lines as u64).min(range.end);
        body.clear();
        for line_seq in seq..batch_end {
            plan.lines.ndjson_line(line_seq, &clock, &mut body);
            body.push(b'\n');
        }
        let payload = if gzip {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            encoder.write_all(&body)?;
            encoder.finish()?
        } else {
            std::mem::take(&mut body)
        };
        let mut headers = vec![("Content-Type", "application/x-ndjson")];
        if gzip {
            headers.push(("Content-Encoding", "gzip"));
        }
        loop {
            check_deadline(plan, report.events)?;
            let response = client
                .post("/api/v1/ingest", &headers, &payload)
                .context("POST /api/v1/ingest")?;
            match response.status {
                200..=299 => break,
                429 | 503 => {
                    report.http_retries += 1;
                    let wait = response
                        .header("retry-after")
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map_or(Duration::from_secs(1), Duration::from_secs)
                        .clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER);
                    let remaining = plan.deadline.saturating_duration_since(Instant::now());
                    thread::sleep(wait.min(remaining));
                }
                status => bail!(
                    "POST /api/v1/ingest answered {status}: {}",
                    response.body_snippet()
                ),
            }
        }
        report.bytes += payload.len() as u64;
        report.events += batch_end - seq;
        if !gzip {
            // Hand the buffer back for the next batch.
            body = payload;
        }
        seq = batch_end;
        pacer.pace(report.events);
    }
    Ok(report)
}
