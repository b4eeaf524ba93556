//! Test harness: starts the real `cairn` binary on free loopback ports with a temporary data dir
//! and talks to it over real sockets. No mocks, no sleeps to wait for work: every wait polls with
//! a deadline.

#![allow(dead_code)]

pub mod external;
pub mod peers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod sse;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A free TCP port that is also free for UDP (checked by binding both).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp 0");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let unique = format!(
            "cairn-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `cairn serve`.
#[derive(Debug)]
pub struct Cairn {
    child: Child,
    pub http: SocketAddr,
    pub syslog_port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
}

impl Cairn {
    /// Starts cairn with the syslog listeners (UDP and TCP on one port) and HTTP on free ports.
    /// A port found free can be taken by a parallel test before cairn binds it: then it starts
    /// again on other ports.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Cairn {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Cairn::try_start(data_dir, free_port(), free_port(), extra_args) {
                Ok(cairn) => return cairn,
                Err(log) if attempts < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("cairn exited early; log:\n{log}"),
            }
        }
    }

    pub fn start_with_ports(
        data_dir: &Path,
        http_port: u16,
        syslog_port: u16,
        extra_args: &[&str],
    ) -> Cairn {
        Cairn::try_start(data_dir, http_port, syslog_port, extra_args)
            .unwrap_or_else(|log| panic!("cairn exited early; log:\n{log}"))
    }

    /// Starts cairn and waits until ready; `Err(log)` when it exits first.
    fn try_start(
        data_dir: &Path,
        http_port: u16,
        syslog_port: u16,
        extra_args: &[&str],
    ) -> Result<Cairn, String> {
        let http: SocketAddr = format!("127.0.0.1:{http_port}").parse().expect("addr");
        let syslog = format!("127.0.0.1:{syslog_port}");
        let log_path = data_dir.with_extension(format!("log-{http_port}"));
        let log = std::fs::File::create(&log_path).expect("create log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http")
            .arg(http.to_string())
            .arg("--syslog-udp")
            .arg(&syslog)
            .arg("--syslog-tcp")
            .arg(&syslog)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cairn");
        let mut cairn = Cairn {
            child,
            http,
            syslog_port,
            data_dir: data_dir.to_path_buf(),
            log_path,
        };
        cairn.wait_ready()?;
        Ok(cairn)
    }

    /// Runs `cairn serve` expecting it to fail at start-up: returns its exit status and log.
    pub fn start_expecting_failure(data_dir: &Path, extra_args: &[&str]) -> (ExitStatus, String) {
        let log_path = data_dir.with_extension("log-failed-start");
        let log = std::fs::File::create(&log_path).expect("create log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http", &format!("127.0.0.1:{}", free_port())])
            .args(["--syslog-udp", "off", "--syslog-tcp", "off"])
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cairn");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cairn did not exit; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        (status, text)
    }

    /// SIGKILL: the process dies at once, as in a crash. Returns its log.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exit {status}\n{}", self.log()));
            }
            if let Ok(response) = http_request(self.http, "GET", "/readyz", &[], b"")
                && response.status == 200
            {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "cairn not ready in time; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, &[], b"").expect("http get")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        http_request(self.http, "POST", path, headers, body).expect("http post")
    }

    /// `GET /api/v1/search` with URL-encoded parameters.
    pub fn search(&self, query: &str, extra: &str) -> Value {
        let path = format!("/api/v1/search?q={}{extra}", url_encode(query));
        let response = self.get(&path);
        assert_eq!(response.status, 200, "search {query}: {}", response.text());
        response.json()
    }

    /// Polls a search until it finds at least `want` events.
    pub fn search_until(&self, query: &str, want: u64) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let result = self.search(query, "&limit=1000");
            if result["total"].as_u64().unwrap_or(0) >= want {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "search `{query}` found {} of {want} in time; stats: {}; log:\n{}",
                result["total"],
                self.get("/api/v1/stats").text(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stats(&self) -> Value {
        self.get("/api/v1/stats").json()
    }

    /// Polls stats until `predicate` holds.
    pub fn stats_until(&self, what: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let stats = self.stats();
            if predicate(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "stats never showed {what}: {stats}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(self) -> String {
        self.stop_timed().0
    }

    /// SIGTERM, then wait for a clean exit; also returns how long the stop took.
    pub fn stop_timed(mut self) -> (String, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(exit) = self.child.try_wait().expect("try_wait") {
                assert!(
                    exit.success(),
                    "cairn exited with {exit}; log:\n{}",
                    self.log()
                );
                return (self.log(), started.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "cairn did not stop on SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cairn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Every event matching `query`, paging through the search with its cursor.
pub fn all_events(cairn: &Cairn, query: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let extra = match &cursor {
            None => "&limit=1000".to_string(),
            Some(cursor) => format!("&limit=1000&cursor={}", url_encode(cursor)),
        };
        let page = cairn.search(query, &extra);
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return events,
        }
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A minimal HTTP/1.1 client (one request per connection) so tests talk to the real server over a
/// real socket without pulling in an HTTP client stack.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A token unique to this test run, safe to search for (letters and digits only).
pub fn unique_token(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// This machine's host name, as `logger` writes it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// Writes `text` as a config file in `dir` and returns the CLI args for it.
pub fn config_args(dir: &Path, text: &str) -> Vec<String> {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let path = dir.join(format!("cairn-{unique}.toml"));
    std::fs::write(&path, text).expect("write config");
    vec![
        "--config".to_string(),
        path.to_str().expect("utf-8 path").to_string(),
    ]
}

/// Borrows owned CLI args.
pub fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// Runs a command and asserts success.
pub fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small xorshift generator for random kill points and the like; tests print the seed so that
/// a failing run can be understood.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
