//! Syslog over TLS with a real sender: syslog-ng forwards over TLS to the real `cairn` binary,
//! with a client certificate (mutual TLS, RFC 5425 octet counting), without one (LF framing),
//! and with a certificate of another CA, which is refused and counted. Certificates are made
//! in the test with the `openssl` CLI: a CA, a server certificate for 127.0.0.1/localhost, a
//! client certificate of that CA, and one of an unrelated CA. The API itself over HTTPS (with
//! client certificates required) is driven with `curl`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::external::{KillOnDrop, find_program, write_file};
use common::{Cairn, DEADLINE, TempDir, all_events, free_port, run, unique_token};
use serde_json::Value;

/// A test PKI in a directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn create(openssl: &Path, dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        write_file(
            &dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        );
        write_file(
            &dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        );
        pki.self_signed(openssl, "ca", "Cairn Test CA");
        pki.self_signed(openssl, "other-ca", "Unrelated CA");
        pki.issued(openssl, "server", "localhost", "ca", "server.ext");
        pki.issued(openssl, "client", "relay-1.test", "ca", "client.ext");
        pki.issued(openssl, "rogue", "rogue.test", "other-ca", "client.ext");
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn self_signed(&self, openssl: &Path, name: &str, subject: &str) {
        run(Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-keyout", &self.path(&format!("{name}.key"))])
            .args(["-out", &self.path(&format!("{name}.pem"))])
            .args(["-subj", &format!("/CN={subject}")]));
    }

    fn issued(&self, openssl: &Path, name: &str, subject: &str, ca: &str, extensions: &str) {
        run(Command::new(openssl)
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-keyout", &self.path(&format!("{name}.key"))])
            .args(["-out", &self.path(&format!("{name}.csr"))])
            .args(["-subj", &format!("/CN={subject}")]));
        run(Command::new(openssl)
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .args(["-in", &self.path(&format!("{name}.csr"))])
            .args(["-CA", &self.path(&format!("{ca}.pem"))])
            .args(["-CAkey", &self.path(&format!("{ca}.key"))])
            .args(["-out", &self.path(&format!("{name}.pem"))])
            .args(["-extfile", &self.path(extensions)]));
    }
}

/// The programs this test drives; `None` (after a loud message) when one is missing.
fn programs(test: &str) -> Option<(PathBuf, PathBuf)> {
    let openssl = find_program("CAIRN_OPENSSL", &["openssl"], test)?;
    let syslog_ng = find_program(
        "CAIRN_SYSLOG_NG",
        &["syslog-ng", "/usr/sbin/syslog-ng"],
        test,
    )?;
    Some((openssl, syslog_ng))
}

/// Starts cairn with syslog over TLS on a free port; `client_ca` turns on mutual TLS.
fn start_cairn(data: &TempDir, pki: &Pki, client_ca: bool) -> (Cairn, u16) {
    let tls_port = free_port();
    let config = data.path().join("cairn.toml");
    let mut text = format!(
        "[syslog]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        pki.path("server.pem"),
        pki.path("server.key")
    );
    if client_ca {
        text.push_str(&format!("tls_client_ca = \"{}\"\n", pki.path("ca.pem")));
    }
    write_file(&config, &text);
    let cairn = Cairn::start(
        &data.path().join("data"),
        &[
            "--config",
            &config.display().to_string(),
            "--syslog-tls",
            &format!("127.0.0.1:{tls_port}"),
        ],
    );
    (cairn, tls_port)
}

/// syslog-ng reading syslog lines on its stdin and forwarding them over TLS. `driver` is
/// `syslog` (RFC 5424 with octet counting) or `network` (BSD format, LF framing); `client` the
/// name of the client certificate in the PKI, if any.
fn syslog_ng(
    syslog_ng: &Path,
    pki: &Pki,
    work: &Path,
    name: &str,
    driver: &str,
    port: u16,
    client: Option<&str>,
) -> KillOnDrop {
    let key_and_cert = client.map_or(String::new(), |client| {
        format!(
            "key-file(\"{}\") cert-file(\"{}\")",
            pki.path(&format!("{client}.key")),
            pki.path(&format!("{client}.pem"))
        )
    });
    let conf = work.join(format!("{name}.conf"));
    write_file(
        &conf,
        &format!(
            "@version: 3.38\n\
             options {{ keep-hostname(yes); time-reopen(1); }};\n\
             source s_in {{ stdin(); }};\n\
             destination d_tls {{ {driver}(\"127.0.0.1\" port({port}) transport(\"tls\")\n\
               tls(ca-file(\"{ca}\") {key_and_cert} peer-verify(required-trusted))); }};\n\
             log {{ source(s_in); destination(d_tls); }};\n",
            ca = pki.path("ca.pem"),
        ),
    );
    let state = |suffix: &str| work.join(format!("{name}.{suffix}")).display().to_string();
    let log = std::fs::File::create(work.join(format!("{name}.log"))).expect("create log");
    let child = Command::new(syslog_ng)
        .args(["-F", "--no-caps", "-f"])
        .arg(&conf)
        .arg(format!("--persist-file={}", state("persist")))
        .arg(format!("--pidfile={}", state("pid")))
        .arg(format!("--control={}", state("ctl")))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn syslog-ng");
    KillOnDrop(child)
}

/// Writes `lines` to syslog-ng's stdin (kept open: syslog-ng keeps forwarding).
fn feed(sender: &mut KillOnDrop, lines: &[String]) {
    let stdin = sender.0.stdin.as_mut().expect("stdin piped");
    for line in lines {
        writeln!(stdin, "{line}").expect("write to syslog-ng");
    }
    stdin.flush().expect("flush");
}

/// `count` sshd lines carrying `token`: line `i` is a failed password for `user{i}` from
/// `10.0.0.{i}`.
fn sshd_lines(token: &str, count: usize) -> Vec<String> {
    (1..=count)
        .map(|i| {
            format!(
                "<38>Jan  2 03:04:05 relay-host sshd[{}]: Failed password for user{i} from 10.0.0.{i} port 22 ssh2 {token} n{i}",
                1000 + i
            )
        })
        .collect()
}

/// Every event of `token`, checked: one per line, with its fields and source.
fn assert_delivered(cairn: &Cairn, token: &str, count: usize) {
    cairn.search_until(token, count as u64);
    let events = all_events(cairn, token);
    assert_eq!(events.len(), count, "every line exactly once");
    let mut seen = vec![false; count + 1];
    for event in &events {
        let message = event["message"].as_str().expect("message");
        let number: usize = message
            .rsplit(" n")
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no line number in {event}"));
        assert!(!seen[number], "line {number} twice");
        seen[number] = true;
        assert_eq!(event["source"], "syslog_tls", "{event}");
        assert_eq!(event["host"], "relay-host", "{event}");
        assert_eq!(event["app"], "sshd", "{event}");
        assert_eq!(event["procid"], (1000 + number).to_string(), "{event}");
        assert_eq!(event["fields"]["user"], format!("user{number}"), "{event}");
        assert_eq!(
            event["fields"]["src_ip"],
            format!("10.0.0.{number}"),
            "{event}"
        );
    }
}

fn handshake_failures(stats: &Value, reason: &str) -> u64 {
    stats["tls_handshake_failed"][reason].as_u64().unwrap_or(0)
}

#[test]
fn mutual_tls_delivers_a_trusted_client_and_refuses_and_counts_the_others() {
    let Some((openssl, syslog_ng_path)) = programs("mutual_tls") else {
        return;
    };
    let data = TempDir::new("tls-mutual");
    let pki = Pki::create(&openssl, data.path());
    let (cairn, port) = start_cairn(&data, &pki, true);
    let token = unique_token("tlsmutual");

    // A client certificate of the trusted CA, RFC 5424 with octet counting.
    let mut trusted = syslog_ng(
        &syslog_ng_path,
        &pki,
        data.path(),
        "trusted",
        "syslog",
        port,
        Some("client"),
    );
    feed(&mut trusted, &sshd_lines(&token, 40));
    assert_delivered(&cairn, &token, 40);
    assert!(
        cairn.log().contains("CN=relay-1.test"),
        "the verified client identity is logged"
    );

    // A certificate of another CA, and no certificate at all: refused before any byte of
    // syslog is read, and counted by reason.
    let rogue_token = unique_token("tlsrogue");
    let mut rogue = syslog_ng(
        &syslog_ng_path,
        &pki,
        data.path(),
        "rogue",
        "syslog",
        port,
        Some("rogue"),
    );
    feed(&mut rogue, &sshd_lines(&rogue_token, 5));
    let mut anonymous = syslog_ng(
        &syslog_ng_path,
        &pki,
        data.path(),
        "anonymous",
        "network",
        port,
        None,
    );
    feed(&mut anonymous, &sshd_lines(&rogue_token, 5));
    let stats = cairn.stats_until("both refusals counted", |stats| {
        handshake_failures(stats, "untrusted_certificate") >= 1
            && handshake_failures(stats, "no_client_certificate") >= 1
    });
    let metrics = cairn.get("/metrics").text();
    assert!(
        metrics.contains("cairn_tls_handshake_failed_total{reason=\"untrusted_certificate\"}"),
        "{metrics}"
    );
    // Nothing of theirs was received: the 40 trusted lines are all syslog_tls has.
    assert_eq!(stats["received_by_source"]["syslog_tls"], 40, "{stats}");
    drop(rogue);
    drop(anonymous);
    trusted.terminate();
    // Received is counted before the WAL append: nothing of theirs ever entered.
    assert_eq!(
        cairn.stats()["received_by_source"]["syslog_tls"],
        40,
        "only the trusted lines"
    );
    assert_eq!(cairn.search(&rogue_token, "")["total"], 0);
    cairn.stop();
}

#[test]
fn server_only_tls_delivers_a_client_without_certificate_lf_framed() {
    let Some((openssl, syslog_ng_path)) = programs("server_only_tls") else {
        return;
    };
    let data = TempDir::new("tls-server-only");
    let pki = Pki::create(&openssl, data.path());
    let (cairn, port) = start_cairn(&data, &pki, false);
    let token = unique_token("tlsplain");
    let mut sender = syslog_ng(
        &syslog_ng_path,
        &pki,
        data.path(),
        "plain",
        "network",
        port,
        None,
    );
    feed(&mut sender, &sshd_lines(&token, 25));
    assert_delivered(&cairn, &token, 25);
    // A CEF event relayed over TLS: its header and extension become searchable fields.
    let cef_token = unique_token("tlscef");
    feed(
        &mut sender,
        &[format!(
            "<134>Jan  2 03:04:05 fw01 CEF:0|Security|threatmanager|1.0|100|worm successfully stopped {cef_token}|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 act=blocked a \\= b"
        )],
    );
    let found = cairn.search_until(&cef_token, 1);
    let event = &found["events"][0];
    assert_eq!(event["fields"]["device_vendor"], "Security", "{event}");
    assert_eq!(
        event["fields"]["device_product"], "threatmanager",
        "{event}"
    );
    assert_eq!(event["fields"]["signature_id"], "100", "{event}");
    assert_eq!(event["fields"]["cef_severity"], 10, "{event}");
    assert_eq!(event["fields"]["src_ip"], "10.0.0.1", "{event}");
    assert_eq!(event["fields"]["src_port"], 1232, "{event}");
    assert_eq!(event["fields"]["act"], "blocked a = b", "{event}");
    let by_field = cairn.search(
        &format!("{cef_token} AND fields.device_product:threatmanager"),
        "",
    );
    assert_eq!(by_field["total"], 1, "{by_field}");
    assert_eq!(
        handshake_failures(&cairn.stats(), "no_client_certificate"),
        0
    );
    sender.terminate();
    cairn.stop();
}

#[test]
fn tls_config_errors_name_the_key_or_the_file() {
    let data = TempDir::new("tls-config");
    // On without a certificate.
    let (status, log) =
        Cairn::start_expecting_failure(data.path(), &["--syslog-tls", "127.0.0.1:0"]);
    assert!(!status.success());
    assert!(log.contains("syslog.tls_cert"), "{log}");
    // A certificate file that does not exist.
    let config = data.path().join("cairn.toml");
    write_file(
        &config,
        "[syslog]\ntls_cert = \"/nonexistent/cairn-cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
    );
    let started = Instant::now();
    let (status, log) = Cairn::start_expecting_failure(
        &data.path().join("data"),
        &[
            "--config",
            &config.display().to_string(),
            "--syslog-tls",
            "127.0.0.1:0",
        ],
    );
    assert!(!status.success());
    assert!(log.contains("/nonexistent/cairn-cert.pem"), "{log}");
    assert!(started.elapsed() < DEADLINE);
}

/// `curl` over HTTPS against the API: the HTTP status, or `None` when the TLS connection failed.
fn curl(
    curl: &Path,
    pki: &Pki,
    client: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut command = Command::new(curl);
    command
        .args(["-s", "-S", "--max-time", "10", "-X", method])
        .args(["--cacert", &pki.path("ca.pem")])
        .args(["-w", "\n%{http_code}"]);
    if let Some(name) = client {
        command
            .args(["--cert", &pki.path(&format!("{name}.pem"))])
            .args(["--key", &pki.path(&format!("{name}.key"))]);
    }
    if let Some(body) = body {
        command.args(["--data-binary", body]);
    }
    let output = command.arg(url).output().expect("run curl");
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

#[test]
fn the_api_over_https_requires_a_trusted_client_certificate_when_configured() {
    let Some(openssl) = find_program("CAIRN_OPENSSL", &["openssl"], "https_api") else {
        return;
    };
    let Some(curl_path) = find_program("CAIRN_CURL", &["curl"], "https_api") else {
        return;
    };
    let data = TempDir::new("https-api");
    let pki = Pki::create(&openssl, data.path());
    let config = data.path().join("cairn.toml");
    write_file(
        &config,
        &format!(
            "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem")
        ),
    );
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let log = std::fs::File::create(data.path().join("cairn.log")).expect("log");
    let _cairn = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("serve")
            .args(["--config", &config.display().to_string()])
            .args([
                "--data-dir",
                &data.path().join("data").display().to_string(),
            ])
            .args(["--http", &format!("127.0.0.1:{port}")])
            .args(["--syslog-udp", "off", "--syslog-tcp", "off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cairn"),
    );
    let start = Instant::now();
    while curl(
        &curl_path,
        &pki,
        Some("client"),
        "GET",
        &format!("{base}/readyz"),
        None,
    )
    .map(|(code, _)| code)
        != Some(200)
    {
        assert!(
            start.elapsed() < DEADLINE,
            "cairn never answered over HTTPS"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A trusted client ingests and searches over HTTPS.
    let token = unique_token("https");
    let ingested = curl(
        &curl_path,
        &pki,
        Some("client"),
        "POST",
        &format!("{base}/api/v1/ingest"),
        Some(&format!("{{\"message\":\"{token} over https\"}}\n")),
    )
    .expect("ingest over https");
    assert_eq!(ingested.0, 200, "{}", ingested.1);
    let start = Instant::now();
    loop {
        let (code, body) = curl(
            &curl_path,
            &pki,
            Some("client"),
            "GET",
            &format!("{base}/api/v1/search?q={token}"),
            None,
        )
        .expect("search over https");
        assert_eq!(code, 200, "{body}");
        let found: Value = serde_json::from_str(&body).expect("json");
        if found["total"] == 1 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the event never became searchable"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // No certificate, or one of another CA: the handshake fails, and each is counted.
    assert!(
        curl(
            &curl_path,
            &pki,
            None,
            "GET",
            &format!("{base}/healthz"),
            None
        )
        .is_none()
    );
    assert!(
        curl(
            &curl_path,
            &pki,
            Some("rogue"),
            "GET",
            &format!("{base}/healthz"),
            None
        )
        .is_none()
    );
    let start = Instant::now();
    loop {
        let (_, body) = curl(
            &curl_path,
            &pki,
            Some("client"),
            "GET",
            &format!("{base}/api/v1/stats"),
            None,
        )
        .expect("stats over https");
        let stats: Value = serde_json::from_str(&body).expect("json");
        if handshake_failures(&stats, "no_client_certificate") >= 1
            && handshake_failures(&stats, "untrusted_certificate") >= 1
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "refused handshakes not counted: {stats}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
