//! API tokens against the real binary: every route of the router's table refuses a missing or
//! wrong token and a token whose role is too small, and serves one whose role is enough; rate
//! limits answer 429 with `Retry-After`; without tokens the API stays on loopback. Tokens are
//! made with `cairn token new`, as an operator would.

mod common;

use std::process::{Command, Stdio};

use cairn_api::http::{Access, Role, routes};
use common::sse::SseClient;
use common::{Cairn, TempDir, http_request};

/// A token made by `cairn token new`, and its config entry.
struct CliToken {
    token: String,
    entry: String,
}

fn cli_token(name: &str, role: &str) -> CliToken {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["token", "new", "--name", name, "--role", role])
        .output()
        .expect("run cairn token new");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let token = text
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("token line")
        .to_string();
    let entry = text[text.find("[[auth.token]]").expect("entry")..].to_string();
    CliToken { token, entry }
}

/// Hashes `token` with `cairn token hash` (stdin).
fn cli_hash(token: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cairn token hash");
    writeln!(child.stdin.take().expect("stdin"), "{token}").expect("write token");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// One token per role, written into a config file.
struct Tokens {
    ingest: String,
    read: String,
    admin: String,
    config: std::path::PathBuf,
}

fn tokens(dir: &TempDir, extra_config: &str) -> Tokens {
    let ingest = cli_token("shipper", "ingest");
    let read = cli_token("siem", "read");
    let admin = cli_token("ops", "admin");
    let config = dir.path().join("cairn.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n{}\n{}\n{extra_config}",
            ingest.entry, read.entry, admin.entry
        ),
    )
    .expect("write config");
    Tokens {
        ingest: ingest.token,
        read: read.token,
        admin: admin.token,
        config,
    }
}

/// The status of `method path` (the body is not read: some routes stream forever).
fn status(cairn: &Cairn, method: &str, path: &str, token: Option<&str>) -> SseClient {
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|value| vec![("Authorization", value)])
        .unwrap_or_default();
    SseClient::open(cairn.http, method, path, &headers)
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[test]
fn cli_hash_matches_the_entry_of_token_new() {
    let made = cli_token("x", "ingest");
    let hash = cli_hash(&made.token);
    assert!(
        made.entry.contains(&format!("sha256 = \"{hash}\"")),
        "{}",
        made.entry
    );
    assert!(
        !made.entry.contains(&made.token),
        "the config entry must not hold the token"
    );
}

#[test]
fn every_route_refuses_missing_wrong_and_too_small_tokens() {
    let dir = TempDir::new("auth-routes");
    let tokens = tokens(&dir, "");
    let data = dir.path().join("data");
    let cairn = Cairn::start(&data, &["--config", tokens.config.to_str().expect("path")]);
    let token_of = |role: Role| match role {
        Role::Ingest => tokens.ingest.as_str(),
        Role::Read => tokens.read.as_str(),
        Role::Admin => tokens.admin.as_str(),
    };
    let mut checked = 0;
    for route in routes(0) {
        let method = route.method.as_str();
        let path = concrete(route.path);
        match route.access {
            Access::Role(required) => {
                let missing = status(&cairn, method, &path, None);
                assert_eq!(missing.status, 401, "{method} {path} without a token");
                assert_eq!(
                    missing.header("www-authenticate"),
                    Some(r#"Bearer realm="cairn""#),
                    "{method} {path}"
                );
                let wrong = status(&cairn, method, &path, Some("cairn_not_a_real_token"));
                assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
                assert!(
                    wrong
                        .header("www-authenticate")
                        .is_some_and(|value| value.contains("invalid_token")),
                    "{method} {path}"
                );
                for role in Role::ALL {
                    let answer = status(&cairn, method, &path, Some(token_of(role)));
                    if role.grants(required) {
                        assert!(
                            ![401, 403, 429].contains(&answer.status),
                            "{method} {path} refused a {} token: {}",
                            role.name(),
                            answer.status
                        );
                    } else {
                        assert_eq!(
                            answer.status,
                            403,
                            "{method} {path} with a {} token",
                            role.name()
                        );
                    }
                }
            }
            Access::Open => {
                let open = status(&cairn, method, &path, None);
                assert!(
                    ![401, 403].contains(&open.status),
                    "{method} {path} is open but answered {}",
                    open.status
                );
            }
            Access::Handler => {
                // The handler checks its own scheme (Splunk HEC tokens): the bearer middleware
                // lets the request through, so the refusal, if any, is the handler's own.
                let answer = status(&cairn, method, &path, None);
                assert!(
                    answer
                        .header("www-authenticate")
                        .is_none_or(|challenge| !challenge.starts_with("Bearer")),
                    "{method} {path} checks its own tokens, not bearer tokens"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "the route table lost routes: {checked}");

    // Unknown paths and wrong methods need a valid token before they say 404/405.
    assert_eq!(status(&cairn, "GET", "/api/v1/nothing", None).status, 401);
    assert_eq!(
        status(&cairn, "GET", "/api/v1/nothing", Some(&tokens.read)).status,
        404
    );
    assert_eq!(status(&cairn, "DELETE", "/api/v1/search", None).status, 401);
    assert_eq!(
        status(&cairn, "DELETE", "/api/v1/search", Some(&tokens.read)).status,
        405
    );

    // The Elasticsearch clients' `ApiKey` scheme is accepted too.
    let api_key = format!("ApiKey {}", tokens.read);
    let response = http_request(
        cairn.http,
        "GET",
        "/api/v1/search?q=x",
        &[("Authorization", &api_key)],
        b"",
    )
    .expect("search");
    assert_eq!(response.status, 200, "{}", response.text());

    // Every refusal is counted by reason.
    let stats = http_request(
        cairn.http,
        "GET",
        "/api/v1/stats",
        &[("Authorization", &format!("Bearer {}", tokens.admin))],
        b"",
    )
    .expect("stats")
    .json();
    let failed = &stats["auth"]["failed"];
    assert!(failed["missing"].as_u64().unwrap_or(0) >= 12, "{stats}");
    assert!(failed["invalid"].as_u64().unwrap_or(0) >= 12, "{stats}");
    assert!(failed["forbidden"].as_u64().unwrap_or(0) >= 12, "{stats}");
    cairn.stop();
}

#[test]
fn a_token_over_its_rate_gets_429_with_retry_after_and_is_counted() {
    let dir = TempDir::new("auth-rate");
    let limited = cli_token("limited", "read");
    let config = dir.path().join("cairn.toml");
    // One request every 100 s on average, three at once: the fourth in a row is refused.
    std::fs::write(
        &config,
        format!("{}\nrate_per_sec = 0.01\nburst = 3\n", limited.entry),
    )
    .expect("write config");
    let cairn = Cairn::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let bearer = format!("Bearer {}", limited.token);
    let get = |path: &str| {
        http_request(cairn.http, "GET", path, &[("Authorization", &bearer)], b"").expect("get")
    };
    for _ in 0..3 {
        assert_eq!(get("/api/v1/search").status, 200);
    }
    let refused = get("/api/v1/search");
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=100).contains(&retry_after), "{retry_after}");
    // Open routes need no token, so a spent bucket does not stop probes.
    assert_eq!(
        http_request(cairn.http, "GET", "/healthz", &[], b"")
            .expect("healthz")
            .status,
        200
    );
    let log = cairn.stop();
    assert!(log.contains("api tokens required"), "{log}");
}

#[test]
fn rate_limits_show_in_metrics() {
    let dir = TempDir::new("auth-metrics");
    let limited = cli_token("burst1", "read");
    let admin = cli_token("scraper", "admin");
    let config = dir.path().join("cairn.toml");
    std::fs::write(
        &config,
        format!(
            "{}\nrate_per_sec = 0.01\nburst = 1\n{}\n",
            limited.entry, admin.entry
        ),
    )
    .expect("write config");
    let cairn = Cairn::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let bearer = format!("Bearer {}", limited.token);
    for expected in [200, 429, 429] {
        let response = http_request(
            cairn.http,
            "GET",
            "/api/v1/rules",
            &[("Authorization", &bearer)],
            b"",
        )
        .expect("rules");
        assert_eq!(response.status, expected);
    }
    let metrics = http_request(
        cairn.http,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {}", admin.token))],
        b"",
    )
    .expect("metrics")
    .text();
    assert!(
        metrics.contains("cairn_http_rate_limited_total{token=\"burst1\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cairn_http_rate_limited_total{token=\"scraper\"} 0"),
        "{metrics}"
    );
    cairn.stop();
}

#[test]
fn without_tokens_the_api_is_open_on_loopback_only() {
    let dir = TempDir::new("auth-none");
    let cairn = Cairn::start(&dir.path().join("data"), &[]);
    assert_eq!(cairn.get("/api/v1/search").status, 200);
    let log = cairn.stop();
    assert!(
        log.contains("no [[auth.token]] configured") && log.contains("served on loopback only"),
        "{log}"
    );

    let refused_dir = TempDir::new("auth-none-public");
    let (status, log) = Cairn::start_expecting_failure(
        &refused_dir.path().join("data"),
        &["--http", &format!("0.0.0.0:{}", common::free_port())],
    );
    assert!(!status.success());
    assert!(
        log.contains("http.listen")
            && log.contains("without API tokens")
            && log.contains("[[auth.token]]")
            && log.contains("cairn token new"),
        "{log}"
    );
}

#[test]
fn with_tokens_a_public_address_is_allowed() {
    let dir = TempDir::new("auth-public");
    let admin = cli_token("ops", "admin");
    let config = dir.path().join("cairn.toml");
    std::fs::write(&config, &admin.entry).expect("write config");
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--http", &format!("0.0.0.0:{port}")])
        .args(["--syslog-udp", "off", "--syslog-tcp", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = std::time::Instant::now() + common::DEADLINE;
    let ready = loop {
        if let Ok(response) = http_request(addr, "GET", "/readyz", &[], b"")
            && response.status == 200
        {
            break true;
        }
        if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let unauthenticated = ready
        .then(|| http_request(addr, "GET", "/api/v1/stats", &[], b"").ok())
        .flatten();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready,
        "cairn did not serve on 0.0.0.0 with a token configured"
    );
    assert_eq!(unauthenticated.map(|response| response.status), Some(401));
}
