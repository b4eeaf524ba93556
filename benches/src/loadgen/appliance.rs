//! Talking to the appliance under test: readiness, search and stats polling, its memory from
//! `/proc`, and (with `--spawn`) starting and stopping it.

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http::{HttpClient, url_encode};

/// How often the appliance is polled (search, stats, readiness) and its RSS sampled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// `total` of `GET /api/v1/search?q=QUERY&limit=1`.
pub fn search_total(client: &mut HttpClient, query: &str) -> Result<u64> {
    let response = client.get(&format!("/api/v1/search?q={}&limit=1", url_encode(query)))?;
    if response.status != 200 {
        bail!(
            "search answered {}: {}",
            response.status,
            response.body_snippet()
        );
    }
    let json = response.json()?;
    json["total"]
        .as_u64()
        .with_context(|| format!("search response has no numeric `total`: {json}"))
}

/// `GET /api/v1/stats`.
pub fn stats(client: &mut HttpClient) -> Result<serde_json::Value> {
    let response = client.get("/api/v1/stats")?;
    if response.status != 200 {
        bail!(
            "stats answered {}: {}",
            response.status,
            response.body_snippet()
        );
    }
    Ok(response.json()?)
}

/// A counter of a stats response.
pub fn stat(stats: &serde_json::Value, name: &str) -> Option<u64> {
    stats.get(name).and_then(serde_json::Value::as_u64)
}

/// Polls `GET /readyz` until it answers 200 or the deadline passes. `child`, when given, is
/// checked for an early exit so a crashing appliance fails fast.
pub fn wait_ready(
    client: &mut HttpClient,
    deadline: Instant,
    mut child: Option<&mut SpawnedCairn>,
) -> Result<()> {
    loop {
        if let Some(spawned) = child.as_deref_mut() {
            spawned.check_running()?;
        }
        let last_problem = match client.get("/readyz") {
            Ok(response) if response.status == 200 => return Ok(()),
            Ok(response) => format!("/readyz answered {}", response.status),
            Err(error) => format!("/readyz: {error}"),
        };
        if Instant::now() >= deadline {
            bail!("appliance not ready before the deadline ({last_problem})");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Memory figures of a process from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcMemory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: peak resident since the process started.
    pub hwm: u64,
}

pub fn proc_memory(pid: u32) -> Option<ProcMemory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(key))?;
        let value = line[key.len()..].trim().trim_end_matches("kB").trim();
        value.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some(ProcMemory {
        rss: kib("VmRSS:")?,
        hwm: kib("VmHWM:").unwrap_or(0),
    })
}

/// Samples a process's `VmRSS` every [`POLL_INTERVAL`] on its own thread and keeps the maximum.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_rss: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_rss = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let max_rss = Arc::clone(&max_rss);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(memory) = proc_memory(pid) {
                        max_rss.fetch_max(memory.rss, Ordering::Relaxed);
                    }
                    thread::sleep(POLL_INTERVAL);
                }
            })
        };
        RssSampler {
            stop,
            max_rss,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the largest `VmRSS` seen (0 if the process was never readable).
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.max_rss.load(Ordering::Relaxed)
    }
}

/// The kernel's system-wide count of UDP datagrams dropped because a receive buffer was full
/// (`Udp: RcvbufErrors` in `/proc/net/snmp`). Those never reach the appliance, so it cannot
/// count them.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp_lines = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let names = udp_lines.next()?;
    let values = udp_lines.next()?;
    let index = names
        .split_ascii_whitespace()
        .position(|name| name == "RcvbufErrors")?;
    values.split_ascii_whitespace().nth(index)?.parse().ok()
}

/// Addresses of a spawned appliance.
#[derive(Debug, Clone, Copy)]
pub struct SpawnedAddrs {
    pub http: SocketAddr,
    pub syslog_tcp: SocketAddr,
    pub syslog_udp: SocketAddr,
}

/// A `cairn serve` started by the load generator on free loopback ports. Stopped (SIGTERM, then
/// SIGKILL after 10 s) when dropped, so an error on any path does not leave it running.
#[derive(Debug)]
pub struct SpawnedCairn {
    child: Child,
    pub addrs: SpawnedAddrs,
    data_dir: PathBuf,
    log_path: PathBuf,
    keep_data: bool,
}

impl SpawnedCairn {
    /// Starts `BINARY serve --data-dir DIR --http A --syslog-tcp B --syslog-udp C EXTRA...` with
    /// stdout and stderr going to `DIR/cairn.log`.
    pub fn start(
        binary: &Path,
        data_dir: PathBuf,
        extra_args: &[String],
        keep_data: bool,
    ) -> Result<SpawnedCairn> {
        let addrs = free_loopback_addrs()?;
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let log_path = data_dir.join("cairn.log");
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.join("data"))
            .arg("--http")
            .arg(addrs.http.to_string())
            .arg("--syslog-tcp")
            .arg(addrs.syslog_tcp.to_string())
            .arg("--syslog-udp")
            .arg(addrs.syslog_udp.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(SpawnedCairn {
            child,
            addrs,
            data_dir,
            log_path,
            keep_data,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// An error (with the end of its log) if the appliance has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "cairn exited early ({status}); end of {}:\n{}",
                self.log_path.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Graceful first (std has no SIGTERM), by this child's pid only.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SpawnedCairn {
    fn drop(&mut self) {
        self.stop();
        if self.keep_data {
            eprintln!("kept data and log in {}", self.data_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Three distinct free loopback ports (HTTP and syslog TCP from TCP binds, syslog UDP from a UDP
/// bind). The sockets are held until all three are chosen; another process could still take one
/// before `cairn` binds it, in which case `cairn` fails to start and says so.
fn free_loopback_addrs() -> Result<SpawnedAddrs> {
    let http = TcpListener::bind("127.0.0.1:0")?;
    let syslog_tcp = TcpListener::bind("127.0.0.1:0")?;
    let syslog_udp = UdpSocket::bind("127.0.0.1:0")?;
    Ok(SpawnedAddrs {
        http: http.local_addr()?,
        syslog_tcp: syslog_tcp.local_addr()?,
        syslog_udp: syslog_udp.local_addr()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory() {
        let memory = proc_memory(std::process::id()).expect("own /proc status");
        assert!(memory.rss > 0);
        assert!(memory.hwm >= memory.rss);
    }

    #[test]
    fn reads_udp_rcvbuf_errors() {
        assert!(udp_rcvbuf_errors().is_some());
    }
}
