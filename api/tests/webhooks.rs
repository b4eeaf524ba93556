//! Webhooks end to end: the real `cairn` binary delivers incident changes to a real HTTP receiver
//! started by the test (a small HTTP/1.1 server on a loopback port that checks every signature
//! with its own HMAC and records what it got). Incidents come from a Sigma rule matching
//! events sent over HTTP ingest, and from the acknowledge/resolve API. No sleeps to wait for
//! work: every wait polls with a deadline.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Cairn, DEADLINE, TempDir, http_request, unique_token};
use hmac::{KeyInit, Mac};
use serde_json::Value;

const SECRET: &str = "s3cret-for-tests";
const RULE_ID: &str = "0b6f7a4e-2c1d-4e8f-9a3b-5d6c7e8f9a01";

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer(u16),
    /// Read the request, record it, and hold the answer (a slow receiver) until the mode
    /// changes; then answer 200.
    Hang,
}

/// One request the receiver read.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    delivery: String,
    event: String,
    /// `X-Cairn-Signature` was present and verified with [`SECRET`] over timestamp and body.
    signature_valid: bool,
    signed: bool,
    body: Value,
    /// The status answered; `None` while held.
    answered: Option<u16>,
}

impl Received {
    fn accepted(&self) -> bool {
        self.answered
            .is_some_and(|status| (200..300).contains(&status))
    }
}

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    changed: Condvar,
    requests: Mutex<Vec<Received>>,
}

/// The receiver: its log outlives its listener, so it can go down and come back on its port.
#[derive(Debug)]
struct Receiver {
    shared: Arc<Shared>,
    port: u16,
    listening: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Receiver {
    fn start(mode: Mode) -> Receiver {
        let mut receiver = Receiver {
            shared: Arc::new(Shared {
                mode: Mutex::new(mode),
                changed: Condvar::new(),
                requests: Mutex::new(Vec::new()),
            }),
            port: 0,
            listening: None,
        };
        receiver.up();
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Listens (again) on its port (a free one the first time).
    fn up(&mut self) {
        assert!(self.listening.is_none(), "already up");
        let deadline = Instant::now() + DEADLINE;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot bind {}: {error}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        self.listening = Some((stop, thread));
    }

    /// Closes the port: connections are refused until [`Receiver::up`].
    fn down(&mut self) {
        let (stop, thread) = self.listening.take().expect("up");
        stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        thread.join().expect("receiver thread");
    }

    fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
        self.shared.changed.notify_all();
    }

    fn requests(&self, path: &str) -> Vec<Received> {
        self.shared
            .requests
            .lock()
            .expect("requests")
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    fn accepted(&self, path: &str) -> Vec<Received> {
        self.requests(path)
            .into_iter()
            .filter(Received::accepted)
            .collect()
    }

    /// Polls until `path` has accepted at least `count` deliveries; returns them in arrival order.
    fn wait_accepted(&self, path: &str, count: usize, cairn: &Cairn) -> Vec<Received> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let accepted = self.accepted(path);
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {count} deliveries accepted in time: {:#?}\nwebhooks: {}\nlog:\n{}",
                accepted.len(),
                self.requests(path),
                cairn.get("/api/v1/webhooks").text(),
                cairn.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until a request to `path` is being held.
    fn wait_held(&self, path: &str) -> Received {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(held) = self
                .requests(path)
                .into_iter()
                .find(|request| request.answered.is_none())
            {
                return held;
            }
            assert!(Instant::now() < deadline, "no request held on {path}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.set_mode(Mode::Answer(200));
        if self.listening.is_some() {
            self.down();
        }
    }
}

/// An independent check of the documented scheme: HMAC-SHA256(secret, "T.body").
fn signature_valid(timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Reads one request, records it, answers per the mode, closes.
fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(DEADLINE));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let length: usize = header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let timestamp = header("x-cairn-timestamp").unwrap_or_default();
    let signature = header("x-cairn-signature");
    let mut record = Received {
        path,
        delivery: header("x-cairn-delivery").unwrap_or_default(),
        event: header("x-cairn-event").unwrap_or_default(),
        signed: signature.is_some(),
        signature_valid: signature
            .as_deref()
            .is_some_and(|signature| signature_valid(&timestamp, &body, signature)),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: None,
    };
    let index = {
        let mut requests = shared.requests.lock().expect("requests");
        requests.push(record.clone());
        requests.len() - 1
    };
    let status = {
        let mut mode = shared.mode.lock().expect("mode");
        while *mode == Mode::Hang {
            mode = shared.changed.wait(mode).expect("mode");
        }
        match *mode {
            Mode::Answer(status) => status,
            Mode::Hang => 200,
        }
    };
    record.answered = Some(status);
    shared.requests.lock().expect("requests")[index] = record;
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn rule() -> String {
    format!(
        r"title: Webhook test signal
id: {RULE_ID}
status: test
level: high
logsource:
    product: test
detection:
    selection:
        message|contains: 'whsignal'
    condition: selection
"
    )
}

/// Starts cairn with the test rule and `targets` (TOML `[[webhooks.target]]` tables).
fn start(data: &TempDir, targets: &str) -> Cairn {
    let rules = data.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(rules.join("signal.yml"), rule()).expect("rule");
    let config = data.path().join("cairn.toml");
    std::fs::write(
        &config,
        format!("[correlation]\nallowed_lateness_secs = 1\n{targets}"),
    )
    .expect("config");
    restart(data)
}

/// Starts cairn again on the same data dir and config.
fn restart(data: &TempDir) -> Cairn {
    Cairn::start(
        &data.path().join("data"),
        &[
            "--config",
            data.path().join("cairn.toml").to_str().expect("path"),
            "--rules",
            data.path().join("rules").to_str().expect("path"),
        ],
    )
}

/// A target with short backoffs; it never gives up unless `extra` sets `max_attempts`.
fn target(name: &str, url: &str, extra: &str) -> String {
    let attempts = if extra.contains("max_attempts") {
        ""
    } else {
        "max_attempts = 1000\n"
    };
    format!(
        "[[webhooks.target]]\nname = \"{name}\"\nurl = \"{url}\"\nbackoff_base_ms = 50\n\
         backoff_max_ms = 300\ntimeout_secs = 5\n{attempts}{extra}\n"
    )
}

/// The change log: `(update_seq, incident id, change)`, in order.
fn change_log(cairn: &Cairn) -> Vec<(u64, u64, String)> {
    let page = cairn.get("/api/v1/incidents?since=0&limit=1000").json();
    page["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|entry| {
            (
                entry["update_seq"].as_u64().expect("seq"),
                entry["id"].as_u64().expect("id"),
                entry["change"].as_str().expect("change").to_string(),
            )
        })
        .collect()
}

/// Polls until the change log holds `count` changes.
fn wait_changes(cairn: &Cairn, count: usize) -> Vec<(u64, u64, String)> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = change_log(cairn);
        if log.len() >= count {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} changes in time: {log:?}\nlog:\n{}",
            log.len(),
            cairn.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one matching event from `host` and waits for the change it makes (an incident opened
/// or updated); returns the incident id.
fn signal(cairn: &Cairn, host: &str) -> u64 {
    let before = change_log(cairn).len();
    let token = unique_token("whsignal");
    let line = format!(r#"{{"message":"{token} whsignal seen","host":"{host}"}}"#);
    let response = cairn.post("/api/v1/ingest", &[], format!("{line}\n").as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    wait_changes(cairn, before + 1)[before].1
}

fn transition(cairn: &Cairn, id: u64, action: &str) {
    let response = cairn.post(&format!("/api/v1/incidents/{id}/{action}"), &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["changed"], true, "{}", response.text());
}

/// open, update, acknowledge, resolve of one incident on `host`: four changes.
fn lifecycle(cairn: &Cairn, host: &str) -> u64 {
    let id = signal(cairn, host);
    assert_eq!(signal(cairn, host), id, "the same fingerprint updates");
    transition(cairn, id, "ack");
    transition(cairn, id, "resolve");
    id
}

fn webhook_status(cairn: &Cairn, name: &str) -> Value {
    let list = cairn.get("/api/v1/webhooks");
    assert_eq!(list.status, 200, "{}", list.text());
    list.json()["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|target| target["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no target {name}"))
}

fn webhook_until(cairn: &Cairn, name: &str, what: &str, predicate: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = webhook_status(cairn, name);
        if predicate(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never showed {what}: {status}\ndeliveries: {}\nlog:\n{}",
            cairn
                .get(&format!("/api/v1/webhooks/{name}/deliveries"))
                .text(),
            cairn.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The update sequences of accepted JSON deliveries, in arrival order, after checking each
/// one's signature, headers and body against the change log.
fn checked_seqs(accepted: &[Received], log: &[(u64, u64, String)]) -> Vec<u64> {
    accepted
        .iter()
        .map(|received| {
            assert!(received.signature_valid, "bad signature: {received:?}");
            let seq = received.body["update_seq"].as_u64().expect("update_seq");
            let (_, id, change) = log
                .iter()
                .find(|(logged, _, _)| *logged == seq)
                .unwrap_or_else(|| panic!("seq {seq} not in the change log {log:?}"));
            assert_eq!(received.body["incident"]["id"], *id, "{received:?}");
            assert_eq!(received.body["change"], change.as_str(), "{received:?}");
            assert_eq!(received.body["event"], received.event.as_str());
            assert_eq!(received.body["delivery"].to_string(), received.delivery);
            seq
        })
        .collect()
}

fn seqs(log: &[(u64, u64, String)]) -> Vec<u64> {
    log.iter().map(|(seq, _, _)| *seq).collect()
}

#[test]
fn every_change_reaches_each_target_once_signed_in_order_in_its_format() {
    let receiver = Receiver::start(Mode::Answer(200));
    let data = TempDir::new("webhooks-formats");
    let secret = format!("secret = \"{SECRET}\"");
    let cairn = start(
        &data,
        &[
            target("generic", &receiver.url("/generic"), &secret),
            target(
                "pd",
                &receiver.url("/pd"),
                &format!("format = \"pagerduty\"\nrouting_key = \"R0UTE\"\n{secret}"),
            ),
            target(
                "chat",
                &receiver.url("/slack/T0/B0/XYZ"),
                "format = \"slack\"",
            ),
            target(
                "resolutions",
                &receiver.url("/resolutions"),
                &format!("events = [\"resolve\"]\n{secret}"),
            ),
            target(
                "filtered",
                &receiver.url("/filtered"),
                "rules = [\"some-other-rule\"]\nmin_level = \"critical\"",
            ),
        ]
        .concat(),
    );
    let first = lifecycle(&cairn, "web1");
    let second = signal(&cairn, "web2");
    let log = wait_changes(&cairn, 5);
    assert_eq!(log.len(), 5, "{log:?}");
    let last_seq = log[4].0;

    // Generic JSON: every change once, in order, signed.
    let generic = receiver.wait_accepted("/generic", 5, &cairn);
    assert_eq!(checked_seqs(&generic, &log), seqs(&log));
    let events: Vec<&str> = generic.iter().map(|got| got.event.as_str()).collect();
    assert_eq!(events, ["open", "update", "acknowledge", "resolve", "open"]);
    assert_eq!(generic[0].body["target"], "generic");
    assert_eq!(generic[0].body["incident"]["rule"], RULE_ID);
    assert_eq!(generic[0].body["incident"]["group"]["host"], "web1");
    assert_eq!(generic[4].body["incident"]["id"], second);

    // PagerDuty Events v2: actions follow the lifecycle, one dedup key per incident.
    let pd = receiver.wait_accepted("/pd", 5, &cairn);
    assert!(pd.iter().all(|got| got.signature_valid), "{pd:?}");
    let actions: Vec<&str> = pd
        .iter()
        .map(|got| got.body["event_action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["trigger", "trigger", "acknowledge", "resolve", "trigger"]
    );
    assert!(pd.iter().all(|got| got.body["routing_key"] == "R0UTE"));
    let dedup: Vec<&Value> = pd.iter().map(|got| &got.body["dedup_key"]).collect();
    assert!(dedup[..4].iter().all(|key| *key == dedup[0]), "{dedup:?}");
    assert_ne!(dedup[4], dedup[0]);
    assert_eq!(pd[0].body["payload"]["severity"], "error");
    assert_eq!(pd[0].body["payload"]["source"], "web1");
    assert_eq!(pd[0].body["payload"]["custom_details"]["id"], first);

    // Slack: text and blocks, unsigned (no secret configured).
    let chat = receiver.wait_accepted("/slack/T0/B0/XYZ", 5, &cairn);
    assert!(chat.iter().all(|got| !got.signed));
    let text = chat[0].body["text"].as_str().expect("text");
    assert!(
        text.contains("Webhook test signal") && text.ends_with(&format!("incident {first} opened")),
        "{text}"
    );
    assert_eq!(chat[0].body["blocks"][0]["type"], "header");

    // Event and level/rule filters.
    let resolutions = receiver.wait_accepted("/resolutions", 1, &cairn);
    assert_eq!(resolutions.len(), 1);
    assert_eq!(resolutions[0].body["change"], "resolved");
    webhook_until(&cairn, "filtered", "the whole log considered", |status| {
        status["cursor"].as_u64() >= Some(last_seq)
    });
    webhook_until(
        &cairn,
        "resolutions",
        "the whole log considered",
        |status| status["cursor"].as_u64() >= Some(last_seq) && status["pending"] == 0,
    );
    assert!(receiver.requests("/filtered").is_empty());
    assert_eq!(receiver.accepted("/resolutions").len(), 1);

    // Delivery status in the API.
    webhook_until(&cairn, "generic", "five delivered", |status| {
        status["delivered"] == 5 && status["pending"] == 0
    });
    let generic_status = webhook_status(&cairn, "generic");
    assert_eq!(generic_status["dead"], 0);
    assert_eq!(generic_status["signed"], true);
    assert_eq!(generic_status["last_error"], Value::Null);
    assert!(generic_status["last_success"].is_string());
    assert_eq!(generic_status["counters"]["delivered"], 5);
    let chat_status = webhook_status(&cairn, "chat");
    assert_eq!(
        chat_status["endpoint"],
        format!("http://127.0.0.1:{}", receiver.port),
        "the path of a chat webhook is a secret: {chat_status}"
    );
    assert_eq!(webhook_status(&cairn, "filtered")["delivered"], 0);
    let listed = cairn
        .get("/api/v1/webhooks/generic/deliveries?status=delivered&limit=10")
        .json();
    let listed_seqs: Vec<u64> = listed["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|delivery| delivery["update_seq"].as_u64().expect("seq"))
        .collect();
    let mut newest_first = seqs(&log);
    newest_first.reverse();
    assert_eq!(listed_seqs, newest_first);
    assert_eq!(listed["deliveries"][0]["attempts"], 1);
    let detail = cairn.get(&format!("/api/v1/incidents/{first}")).json();
    let deliveries = detail["deliveries"].as_array().expect("deliveries");
    // Four changes to generic, pd and chat, one to resolutions.
    assert_eq!(deliveries.len(), 13, "{detail}");
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery["status"] == "delivered")
    );
    let stats = cairn.stats();
    assert_eq!(stats["webhooks"]["generic"]["delivered"], 5, "{stats}");
    let metrics = cairn.get("/metrics").text();
    assert!(
        metrics
            .contains("cairn_webhook_deliveries_total{target=\"generic\",result=\"delivered\"} 5"),
        "{metrics}"
    );

    // Untrusted names and parameters.
    for (method, path, status) in [
        ("GET", "/api/v1/webhooks/nope/deliveries", 404),
        ("POST", "/api/v1/webhooks/nope/retry", 404),
        (
            "GET",
            "/api/v1/webhooks/generic/deliveries?status=lost",
            400,
        ),
        ("GET", "/api/v1/webhooks/generic/deliveries?limit=0", 400),
        ("GET", "/api/v1/webhooks/generic/deliveries?colour=red", 400),
        ("GET", "/api/v1/webhooks/generic/retry", 405),
    ] {
        let response = http_request(cairn.http, method, path, &[], b"").expect("request");
        assert_eq!(
            response.status,
            status,
            "{method} {path}: {}",
            response.text()
        );
        assert!(response.json()["error"]["code"].is_string());
    }
    cairn.stop();
}

#[test]
fn a_receiver_that_fails_or_is_down_gets_every_owed_change_once_in_order_after_backoff() {
    let mut receiver = Receiver::start(Mode::Answer(500));
    let data = TempDir::new("webhooks-down");
    let secret = format!("secret = \"{SECRET}\"");
    let cairn = start(
        &data,
        &[
            target("generic", &receiver.url("/generic"), &secret),
            target(
                "short",
                &receiver.url("/short"),
                &format!("max_attempts = 2\n{secret}"),
            ),
        ]
        .concat(),
    );
    // Answering 500: retried with backoff; `short` gives up after two attempts each.
    let id = signal(&cairn, "db1");
    signal(&cairn, "db1");
    webhook_until(&cairn, "generic", "retries of an HTTP 500", |status| {
        status["pending"] == 2
            && status["last_error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("500"))
    });
    webhook_until(&cairn, "short", "two dead deliveries", |status| {
        status["dead"] == 2 && status["pending"] == 0
    });
    assert!(receiver.accepted("/short").is_empty());
    let dead = cairn
        .get("/api/v1/webhooks/short/deliveries?status=dead")
        .json();
    assert_eq!(dead["deliveries"][0]["attempts"], 2, "{dead}");
    assert_eq!(dead["deliveries"][0]["last_status"], 500, "{dead}");

    // Down: connections refused while the incident changes on.
    receiver.down();
    transition(&cairn, id, "ack");
    transition(&cairn, id, "resolve");
    let log = wait_changes(&cairn, 4);
    webhook_until(&cairn, "generic", "connection errors", |status| {
        status["pending"] == 4
    });
    let head = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let pending = cairn
                .get("/api/v1/webhooks/generic/deliveries?status=pending")
                .json();
            let oldest = pending["deliveries"]
                .as_array()
                .and_then(|all| all.last().cloned())
                .expect("pending");
            if oldest["last_status"].is_null() && oldest["attempts"].as_u64() > Some(2) {
                break oldest;
            }
            assert!(Instant::now() < deadline, "no refused attempts: {pending}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(
        head["update_seq"], log[0].0,
        "the oldest change is retried first"
    );

    // `short` gave up on the two changes made while the port was closed too.
    webhook_until(&cairn, "short", "four dead deliveries", |status| {
        status["dead"] == 4 && status["pending"] == 0
    });

    // Back up and answering: everything owed arrives once, in order.
    receiver.set_mode(Mode::Answer(200));
    receiver.up();
    let generic = receiver.wait_accepted("/generic", 4, &cairn);
    webhook_until(&cairn, "generic", "four delivered", |status| {
        status["delivered"] == 4 && status["pending"] == 0
    });
    assert_eq!(
        checked_seqs(&receiver.accepted("/generic"), &log),
        seqs(&log)
    );
    assert_eq!(generic.len(), 4);
    assert!(
        receiver
            .requests("/generic")
            .iter()
            .any(|got| got.answered == Some(500) && got.signature_valid),
        "the 500s were retried"
    );

    // Dead deliveries wait for an operator; retry sends them, in order.
    assert!(receiver.accepted("/short").is_empty());
    let retried = cairn.post("/api/v1/webhooks/short/retry", &[], b"");
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(retried.json()["retried"], 4);
    let short = receiver.wait_accepted("/short", 4, &cairn);
    assert_eq!(checked_seqs(&short, &log), seqs(&log));
    cairn.stop();
}

/// Sends SIGTERM without waiting for the exit.
fn sigterm(cairn: &Cairn) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(cairn.pid().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Polls until cairn stops answering `/readyz` with 200 (it is stopping).
fn wait_stopping(cairn: &Cairn) {
    let deadline = Instant::now() + DEADLINE;
    while http_request(cairn.http, "GET", "/readyz", &[], b"")
        .is_ok_and(|ready| ready.status == 200)
    {
        assert!(Instant::now() < deadline, "cairn did not start stopping");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn deliveries_survive_a_graceful_restart_and_the_attempt_in_flight_is_not_repeated() {
    let receiver = Receiver::start(Mode::Answer(503));
    let data = TempDir::new("webhooks-sigterm");
    let config = target(
        "generic",
        &receiver.url("/generic"),
        &format!("secret = \"{SECRET}\""),
    );
    let cairn = start(&data, &config);
    lifecycle(&cairn, "app1");
    let log = wait_changes(&cairn, 4);
    webhook_until(&cairn, "generic", "four pending", |status| {
        status["pending"] == 4
    });
    // Hold the next attempt, stop cairn while it is in flight, then answer it: the graceful
    // stop waits for the answer and records it.
    receiver.set_mode(Mode::Hang);
    let held = receiver.wait_held("/generic");
    sigterm(&cairn);
    wait_stopping(&cairn);
    receiver.set_mode(Mode::Answer(200));
    let stop_log = cairn.stop();
    assert!(stop_log.contains("webhook target stopped"), "{stop_log}");

    let cairn = restart(&data);
    receiver.wait_accepted("/generic", 4, &cairn);
    webhook_until(&cairn, "generic", "four delivered", |status| {
        status["delivered"] == 4 && status["pending"] == 0
    });
    // Delivered and nothing pending: nothing more can be sent.
    let accepted = receiver.accepted("/generic");
    assert_eq!(checked_seqs(&accepted, &log), seqs(&log), "{accepted:#?}");
    assert_eq!(accepted[0].delivery, held.delivery);
    cairn.stop();
}

#[test]
fn a_crash_resends_only_the_delivery_in_flight_with_the_same_id() {
    let receiver = Receiver::start(Mode::Hang);
    let data = TempDir::new("webhooks-sigkill");
    let config = target(
        "generic",
        &receiver.url("/generic"),
        &format!("secret = \"{SECRET}\""),
    );
    let cairn = start(&data, &config);
    let id = signal(&cairn, "app2");
    let held = receiver.wait_held("/generic");
    // More changes queue behind the delivery in flight.
    signal(&cairn, "app2");
    transition(&cairn, id, "resolve");
    let log = wait_changes(&cairn, 3);
    // Both events indexed (their WAL position committed): the restart does not replay them
    // into new alerts, so the change log stays as it is.
    cairn.search_until("whsignal", 2);
    cairn.kill();
    // The receiver processes the held request after the sender died: the sender never learns.
    receiver.set_mode(Mode::Answer(200));

    let cairn = restart(&data);
    receiver.wait_accepted("/generic", 4, &cairn);
    webhook_until(&cairn, "generic", "three delivered", |status| {
        status["delivered"] == 3 && status["pending"] == 0
    });
    let accepted = receiver.accepted("/generic");
    let arrived = checked_seqs(&accepted, &log);
    // Exactly the one in flight at the crash arrives twice, with the same delivery id and
    // update_seq (a receiver dedupes on either); the rest once each, in order.
    assert_eq!(
        arrived,
        [log[0].0, log[0].0, log[1].0, log[2].0],
        "{accepted:#?}"
    );
    assert_eq!(accepted[0].delivery, held.delivery);
    assert_eq!(accepted[1].delivery, held.delivery);
    assert_ne!(accepted[2].delivery, held.delivery);
    cairn.stop();
}
