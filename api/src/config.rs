//! Configuration: an optional TOML file, then CLI flags, then validation.
//!
//! [`ConfigFile`] is the wire form (every key optional, unknown keys rejected); [`ConfigFile::validate`]
//! checks it without doing I/O and produces the domain [`Config`] the appliance runs on. With no
//! file and no flags, the defaults of DESIGN.md apply: data in `./cairn-data`, syslog UDP and TCP on
//! `0.0.0.0:5514`, HTTP on `127.0.0.1:8080`. `deploy/cairn.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// A listen address as written by the operator: `HOST:PORT`, or `off` to disable the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub Option<SocketAddr>);

impl ListenAddr {
    /// Parses `HOST:PORT` or `off`.
    pub fn parse(text: &str) -> Result<ListenAddr, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("off") {
            return Ok(ListenAddr(None));
        }
        trimmed
            .parse::<SocketAddr>()
            .map(|addr| ListenAddr(Some(addr)))
            .map_err(|_| format!("`{trimmed}` is neither HOST:PORT (e.g. 0.0.0.0:5514) nor `off`"))
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ListenAddr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The TOML file. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// Where the index (and later the WAL and incident store) live.
    pub data_dir: PathBuf,
    pub http: HttpSection,
    pub syslog: SyslogSection,
    pub pipeline: PipelineSection,
    pub index: IndexSection,
    pub parse: ParseSection,
    pub rules: RulesSection,
    pub normalise: NormaliseSection,
    pub incidents: IncidentsSection,
    pub correlation: CorrelationSection,
    pub wal: WalSection,
    pub hec: HecSection,
    pub webhooks: crate::webhooks::WebhooksSection,
    pub auth: AuthSection,
    pub tail: TailSection,
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile {
            data_dir: PathBuf::from("./cairn-data"),
            http: HttpSection::default(),
            syslog: SyslogSection::default(),
            pipeline: PipelineSection::default(),
            index: IndexSection::default(),
            parse: ParseSection::default(),
            rules: RulesSection::default(),
            normalise: NormaliseSection::default(),
            incidents: IncidentsSection::default(),
            correlation: CorrelationSection::default(),
            wal: WalSection::default(),
            hec: HecSection::default(),
            webhooks: crate::webhooks::WebhooksSection::default(),
            auth: AuthSection::default(),
            tail: TailSection::default(),
        }
    }
}

/// `[auth]`: API tokens. With none, the API needs no token and is served on loopback only.
///
/// ```toml
/// [[auth.token]]
/// name = "siem"                 # shown in logs and metrics
/// role = "read"                 # ingest | read | admin
/// sha256 = "<64 hex digits>"    # `cairn token new` prints a token and this
/// rate_per_sec = 20             # optional
/// burst = 40                    # optional
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The API tokens.
    pub token: Vec<TokenSection>,
}

/// One `[[auth.token]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// A unique name for logs and metrics (the token itself is never logged).
    pub name: String,
    /// `ingest` (send events), `read` (search, incidents, tail, rules, stats, metrics) or
    /// `admin` (everything, including incident ack/resolve and rule reload).
    pub role: String,
    /// SHA-256 of the token, 64 hex digits (`cairn token hash` computes it).
    pub sha256: String,
    /// Requests per second the token may make on average; 0 = no limit. Default 100.
    #[serde(default = "TokenSection::default_rate")]
    pub rate_per_sec: f64,
    /// Requests the token may make at once above its rate. Default 2 × `rate_per_sec` (at
    /// least 1).
    pub burst: Option<f64>,
}

impl TokenSection {
    fn default_rate() -> f64 {
        100.0
    }
}

impl AuthSection {
    fn validate(self) -> Result<crate::http::AuthConfig, ConfigError> {
        use crate::http::auth::{RateLimit, TokenConfig, parse_sha256_hex};
        let invalid = |message: String| ConfigError::Invalid {
            key: "auth.token",
            message,
        };
        let mut tokens: Vec<TokenConfig> = Vec::with_capacity(self.token.len());
        for token in self.token {
            let name = token.name.trim().to_string();
            if name.is_empty() || tokens.iter().any(|known| known.name == name) {
                return Err(invalid(format!(
                    "each token needs a name of its own (`{name}` is empty or used twice)"
                )));
            }
            let role = crate::http::Role::parse(token.role.trim()).ok_or_else(|| {
                invalid(format!(
                    "token `{name}`: role `{}` is not one of ingest, read, admin",
                    token.role
                ))
            })?;
            let sha256 = parse_sha256_hex(&token.sha256).ok_or_else(|| {
                invalid(format!(
                    "token `{name}`: sha256 must be 64 hex digits (`cairn token hash` prints them)"
                ))
            })?;
            if tokens.iter().any(|known| known.sha256 == sha256) {
                return Err(invalid(format!(
                    "token `{name}`: the same sha256 is configured twice"
                )));
            }
            if !token.rate_per_sec.is_finite() || token.rate_per_sec < 0.0 {
                return Err(invalid(format!(
                    "token `{name}`: rate_per_sec must be 0 (no limit) or more"
                )));
            }
            let burst = token.burst.unwrap_or((token.rate_per_sec * 2.0).max(1.0));
            if !burst.is_finite() || burst < 1.0 {
                return Err(invalid(format!("token `{name}`: burst must be at least 1")));
            }
            let rate = (token.rate_per_sec > 0.0).then_some(RateLimit {
                per_sec: token.rate_per_sec,
                burst,
            });
            tokens.push(TokenConfig {
                name,
                role,
                sha256,
                rate,
            });
        }
        Ok(crate::http::AuthConfig { tokens })
    }
}

/// `[tail]`: the live tail (`GET /api/v1/tail`).
///
/// ```toml
/// [tail]
/// max_clients = 64
/// buffer_events = 1024
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailSection {
    /// Tail clients served at once; more get 503. Default 64.
    pub max_clients: usize,
    /// Matching events buffered per client; a client further behind is cut off (it gets an
    /// `overflow` event and the stream ends). Default 1024.
    pub buffer_events: usize,
}

impl Default for TailSection {
    fn default() -> Self {
        TailSection {
            max_clients: 64,
            buffer_events: 1024,
        }
    }
}

impl TailSection {
    fn validate(self) -> Result<crate::http::tail::TailConfig, ConfigError> {
        if self.max_clients == 0 || self.max_clients > 10_000 {
            return Err(ConfigError::Invalid {
                key: "tail.max_clients",
                message: "must be between 1 and 10000".to_string(),
            });
        }
        if self.buffer_events == 0 || self.buffer_events > 1_000_000 {
            return Err(ConfigError::Invalid {
                key: "tail.buffer_events",
                message: "must be between 1 and 1000000".to_string(),
            });
        }
        Ok(crate::http::tail::TailConfig {
            max_clients: self.max_clients,
            buffer_events: self.buffer_events,
        })
    }
}

/// With no API tokens the API must stay on loopback: anyone who can reach it could read and
/// inject events.
fn check_unauthenticated_listen(
    http: Option<SocketAddr>,
    auth: &crate::http::AuthConfig,
) -> Result<(), ConfigError> {
    match http {
        Some(addr) if !auth.enabled() && !addr.ip().is_loopback() => Err(ConfigError::Invalid {
            key: "http.listen",
            message: format!(
                "refusing to serve the API on {addr} without API tokens: anyone who reaches it \
                 could read and send events. Add [[auth.token]] entries to the config (`cairn \
                 token new` prints one) or listen on a loopback address such as 127.0.0.1:{}",
                addr.port()
            ),
        }),
        _ => Ok(()),
    }
}

/// `[correlation]`: event time and the correlation engine's bounds.
///
/// ```toml
/// [correlation]
/// allowed_lateness_secs = 60
/// shards = 2
/// max_groups_per_rule = 100000
/// snapshot_interval_secs = 2
/// alert_delay_ms = 1000
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationSection {
    /// How far behind the newest event time an event may arrive and still be correlated in its
    /// own time order; windows close (and absences fire) this far behind the newest event, or
    /// by the wall clock when the stream is idle. Later events are indexed, counted as late, and
    /// still correlated while their window is open. Default 60, at most 86400.
    pub allowed_lateness_secs: u64,
    /// Correlation shard threads (state is split between them by group key). Default 2.
    pub shards: usize,
    /// Most open groups per correlation rule; beyond it the least recently updated groups are
    /// evicted (counted, and that rule's next alerts are flagged `possibly_incomplete`).
    /// Default 100000.
    pub max_groups_per_rule: usize,
    /// Longest time between two snapshots of the correlation state while input flows
    /// (checkpoints in `incidents.sqlite`; a restart resumes open windows from the latest and
    /// replays the WAL from its position, which the WAL keeps until then). Default 2, 1..=3600.
    pub snapshot_interval_secs: u64,
    /// Longest time an alert waits before it reaches the incident store: alerts are committed
    /// with the checkpoint that covers them, so a crash never applies one twice. Default 1000,
    /// 10..=60000.
    pub alert_delay_ms: u64,
}

impl Default for CorrelationSection {
    fn default() -> Self {
        let engine = cairn_correlate::EngineConfig::default();
        CorrelationSection {
            allowed_lateness_secs: engine.allowed_lateness.as_secs(),
            shards: engine.shards,
            max_groups_per_rule: engine.max_groups_per_rule,
            snapshot_interval_secs: 2,
            alert_delay_ms: 1000,
        }
    }
}

impl CorrelationSection {
    fn checkpoint_policy(&self) -> Result<crate::correlation::CheckpointPolicy, ConfigError> {
        if !(1..=3600).contains(&self.snapshot_interval_secs) {
            return Err(ConfigError::Invalid {
                key: "correlation.snapshot_interval_secs",
                message: "must be between 1 and 3600".to_string(),
            });
        }
        if !(10..=60_000).contains(&self.alert_delay_ms) {
            return Err(ConfigError::Invalid {
                key: "correlation.alert_delay_ms",
                message: "must be between 10 and 60000".to_string(),
            });
        }
        Ok(crate::correlation::CheckpointPolicy {
            snapshot_interval: Duration::from_secs(self.snapshot_interval_secs),
            alert_delay: Duration::from_millis(self.alert_delay_ms),
        })
    }

    fn validate(self) -> Result<cairn_correlate::EngineConfig, ConfigError> {
        if self.allowed_lateness_secs > 86_400 {
            return Err(ConfigError::Invalid {
                key: "correlation.allowed_lateness_secs",
                message: "must be at most 86400 (one day)".to_string(),
            });
        }
        if self.shards == 0 || self.shards > 64 {
            return Err(ConfigError::Invalid {
                key: "correlation.shards",
                message: "must be between 1 and 64".to_string(),
            });
        }
        if self.max_groups_per_rule == 0 {
            return Err(ConfigError::Invalid {
                key: "correlation.max_groups_per_rule",
                message: "must be greater than 0".to_string(),
            });
        }
        Ok(cairn_correlate::EngineConfig {
            shards: self.shards,
            allowed_lateness: Duration::from_secs(self.allowed_lateness_secs),
            max_groups_per_rule: self.max_groups_per_rule,
            ..cairn_correlate::EngineConfig::default()
        })
    }
}

/// `[wal]`: the write-ahead log in `<data_dir>/wal/`. Every ingested batch is appended there
/// before it is processed; HTTP ingest answers 2xx only once its events are durable under
/// `fsync`.
///
/// ```toml
/// [wal]
/// fsync = "interval"        # always | interval | never
/// fsync_interval_ms = 10
/// max_segment_mb = 128
/// max_record_mb = 32
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalSection {
    /// When appends are fsynced: `always` (every acknowledgement waits for an fsync, shared by
    /// concurrent requests), `interval` (fsyncs at most every `fsync_interval_ms`; an
    /// acknowledgement waits for the next one) or `never` (the OS writes back when it likes: a
    /// power loss, not a crash, can lose acknowledged events). Default `interval`.
    pub fsync: String,
    /// Milliseconds between fsyncs under `interval`. Default 10, at least 1.
    pub fsync_interval_ms: u64,
    /// Segment file size, MiB; disk is reclaimed a whole segment at a time once the index has
    /// committed past it. Default 128, at least 2.
    pub max_segment_mb: u64,
    /// Largest record (one batch), MiB; larger batches are split. Must be below
    /// `max_segment_mb` and hold one `syslog.max_frame_bytes` frame and one
    /// `http.max_line_bytes` line. Default 32.
    pub max_record_mb: u64,
    /// Test only, never in production: pretend the WAL's disk has only this many bytes left
    /// (appends beyond fail as "disk full"). Unset by default.
    pub debug_fault_disk_budget_bytes: Option<u64>,
    /// Test only, never in production: every WAL fsync fails once this many bytes were written
    /// (the WAL then stops for good, as after a real failed fsync). Unset by default.
    pub debug_fault_fail_fsync_after_bytes: Option<u64>,
    /// Test only, never in production: the WAL's disk is full while this file exists (appends
    /// fail as "disk full"), and has room again once it is deleted. Unset by default.
    pub debug_fault_disk_full_while_exists: Option<PathBuf>,
}

impl Default for WalSection {
    fn default() -> Self {
        WalSection {
            fsync: "interval".to_string(),
            fsync_interval_ms: 10,
            max_segment_mb: 128,
            max_record_mb: 32,
            debug_fault_disk_budget_bytes: None,
            debug_fault_fail_fsync_after_bytes: None,
            debug_fault_disk_full_while_exists: None,
        }
    }
}

/// The `debug_fault_fail_fsync_after_bytes` fault: fsyncs fail once `threshold` bytes were
/// written.
#[derive(Debug)]
struct FailSyncsAfter {
    written: std::sync::atomic::AtomicU64,
    threshold: u64,
}

impl cairn_ingest::wal::FaultInjection for FailSyncsAfter {
    fn writable_bytes(&self, len: usize) -> usize {
        self.written
            .fetch_add(len as u64, std::sync::atomic::Ordering::SeqCst);
        len
    }

    fn before_sync(&self) -> std::io::Result<()> {
        if self.written.load(std::sync::atomic::Ordering::SeqCst) >= self.threshold {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        Ok(())
    }
}

/// The `debug_fault_disk_full_while_exists` fault: no byte can be written while `flag` exists.
#[derive(Debug)]
struct DiskFullWhileExists {
    flag: PathBuf,
}

impl cairn_ingest::wal::FaultInjection for DiskFullWhileExists {
    fn writable_bytes(&self, len: usize) -> usize {
        if self.flag.exists() { 0 } else { len }
    }
}

/// Room kept in a record besides the frames' bytes (payload header, per-frame lengths).
const RECORD_SLACK_BYTES: usize = 4096;

impl WalSection {
    fn validate(
        self,
        max_frame_bytes: usize,
        max_line_bytes: usize,
    ) -> Result<cairn_ingest::wal::WalOptions, ConfigError> {
        use cairn_ingest::wal::{DiskBudget, FsyncPolicy, WalOptions};
        let fsync = match self.fsync.trim() {
            "always" => FsyncPolicy::Always,
            "interval" => {
                if self.fsync_interval_ms == 0 || self.fsync_interval_ms > 10_000 {
                    return Err(ConfigError::Invalid {
                        key: "wal.fsync_interval_ms",
                        message: "must be between 1 and 10000".to_string(),
                    });
                }
                FsyncPolicy::Interval(Duration::from_millis(self.fsync_interval_ms))
            }
            "never" => FsyncPolicy::Never,
            other => {
                return Err(ConfigError::Invalid {
                    key: "wal.fsync",
                    message: format!("`{other}` is not one of always, interval, never"),
                });
            }
        };
        if !(2..=64 * 1024).contains(&self.max_segment_mb) {
            return Err(ConfigError::Invalid {
                key: "wal.max_segment_mb",
                message: "must be between 2 and 65536".to_string(),
            });
        }
        if self.max_record_mb == 0 || self.max_record_mb >= self.max_segment_mb.min(1025) {
            return Err(ConfigError::Invalid {
                key: "wal.max_record_mb",
                message: format!(
                    "must be at least 1, below wal.max_segment_mb ({}) and at most 1024",
                    self.max_segment_mb
                ),
            });
        }
        let max_record_bytes = usize::try_from(self.max_record_mb << 20).unwrap_or(usize::MAX);
        let largest_unit = max_frame_bytes.max(max_line_bytes);
        if largest_unit.saturating_add(RECORD_SLACK_BYTES) > max_record_bytes {
            return Err(ConfigError::Invalid {
                key: "wal.max_record_mb",
                message: format!(
                    "{} MiB cannot hold one frame of syslog.max_frame_bytes ({max_frame_bytes}) \
                     or one line of http.max_line_bytes ({max_line_bytes}); raise it or lower those",
                    self.max_record_mb
                ),
            });
        }
        let faults_set = usize::from(self.debug_fault_disk_budget_bytes.is_some())
            + usize::from(self.debug_fault_fail_fsync_after_bytes.is_some())
            + usize::from(self.debug_fault_disk_full_while_exists.is_some());
        if faults_set > 1 {
            return Err(ConfigError::Invalid {
                key: "wal.debug_fault_fail_fsync_after_bytes",
                message: "set at most one debug fault".to_string(),
            });
        }
        let fault_injection: Option<std::sync::Arc<dyn cairn_ingest::wal::FaultInjection>> = match (
            self.debug_fault_disk_budget_bytes,
            self.debug_fault_fail_fsync_after_bytes,
            self.debug_fault_disk_full_while_exists,
        ) {
            (Some(budget), _, _) => Some(std::sync::Arc::new(DiskBudget::new(budget))),
            (None, Some(threshold), _) => Some(std::sync::Arc::new(FailSyncsAfter {
                written: std::sync::atomic::AtomicU64::new(0),
                threshold,
            })),
            (None, None, Some(flag)) => Some(std::sync::Arc::new(DiskFullWhileExists { flag })),
            (None, None, None) => None,
        };
        if fault_injection.is_some() {
            tracing::warn!("wal: a debug fault is configured; never do this in production");
        }
        Ok(WalOptions {
            fsync,
            max_segment_bytes: self.max_segment_mb << 20,
            max_record_bytes,
            fault_injection,
        })
    }
}

/// `[incidents]`: which alerts open incidents and when quiet incidents resolve. The store is
/// `<data_dir>/incidents.sqlite`.
///
/// ```toml
/// [incidents]
/// min_level = "medium"
/// quiet_period_secs = 3600
/// [incidents.quiet_period_by_rule]
/// "ssh-brute-force" = 600
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsSection {
    /// Alerts below this level (`informational`, `low`, `medium`, `high`, `critical`) do not
    /// open or update incidents; they only annotate events. Default `medium`.
    pub min_level: String,
    /// Seconds without a new alert after which an open or acknowledged incident resolves
    /// itself. Default 3600.
    pub quiet_period_secs: u64,
    /// Per-rule quiet periods: rule label (its id, or title when it has none) → seconds.
    pub quiet_period_by_rule: std::collections::HashMap<String, u64>,
    /// Event `seq`s kept as evidence per incident (the earliest half and the newest half).
    /// Default 64, at most 1000.
    pub max_evidence: usize,
    /// Seconds of full change history kept; older entries superseded by a later change of the
    /// same incident are compacted away. Default 604800 (7 days).
    pub change_log_retention_secs: u64,
}

impl Default for IncidentsSection {
    fn default() -> Self {
        IncidentsSection {
            min_level: "medium".to_string(),
            quiet_period_secs: 3600,
            quiet_period_by_rule: std::collections::HashMap::new(),
            max_evidence: cairn_correlate::MAX_EVIDENCE,
            change_log_retention_secs: 7 * 24 * 3600,
        }
    }
}

/// Most evidence seqs an incident may keep.
pub const MAX_INCIDENT_EVIDENCE: usize = 1000;

impl IncidentsSection {
    fn validate(self) -> Result<cairn_correlate::incident::IncidentPolicy, ConfigError> {
        let min_level = cairn_correlate::Level::parse(self.min_level.trim()).ok_or_else(|| {
            ConfigError::Invalid {
                key: "incidents.min_level",
                message: format!(
                    "`{}` is not one of informational, low, medium, high, critical",
                    self.min_level
                ),
            }
        })?;
        if self.quiet_period_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "incidents.quiet_period_secs",
                message: "must be greater than 0".to_string(),
            });
        }
        let mut quiet_period_by_rule = std::collections::HashMap::new();
        for (rule, seconds) in self.quiet_period_by_rule {
            if seconds == 0 {
                return Err(ConfigError::Invalid {
                    key: "incidents.quiet_period_by_rule",
                    message: format!("rule `{rule}`: must be greater than 0"),
                });
            }
            quiet_period_by_rule.insert(rule, Duration::from_secs(seconds));
        }
        if self.max_evidence == 0 || self.max_evidence > MAX_INCIDENT_EVIDENCE {
            return Err(ConfigError::Invalid {
                key: "incidents.max_evidence",
                message: format!("must be between 1 and {MAX_INCIDENT_EVIDENCE}"),
            });
        }
        if self.change_log_retention_secs < 60 {
            return Err(ConfigError::Invalid {
                key: "incidents.change_log_retention_secs",
                message: "must be at least 60".to_string(),
            });
        }
        Ok(cairn_correlate::incident::IncidentPolicy {
            min_level,
            quiet_period: Duration::from_secs(self.quiet_period_secs),
            quiet_period_by_rule,
            max_evidence: self.max_evidence,
            change_log_retention: Duration::from_secs(self.change_log_retention_secs),
        })
    }
}

/// `[normalise]`: field extraction patterns added to the built-in ones.
///
/// ```toml
/// [[normalise.pattern]]
/// name = "myapp-login"
/// app = "myapp"            # optional: only events of this app
/// template = "login failed for %{user} from %{src_ip:ip}"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormaliseSection {
    /// Operator patterns, tried before the built-in ones.
    pub pattern: Vec<cairn_ingest::normalise::PatternDef>,
}

/// `[rules]`: Sigma detection rules run on every event.
///
/// ```toml
/// [rules.fields]            # Sigma field name = event field name
/// CommandLine = "cmdline"
///
/// [[rules.logsource]]       # rules of this logsource only see events where...
/// service = "nginx"
/// match = { app = ["nginx", "nginx-proxy"] }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// Run the built-in pack compiled into the binary. Default true.
    pub builtin: bool,
    /// Rule files and folders (`.yml`/`.yaml`, searched recursively). `--rules` adds to these.
    pub paths: Vec<PathBuf>,
    /// Sigma field name → event field name, consulted before the built-in aliases (`message`,
    /// `host`/`Computer`, `app`/`program`, `pid`, …); the target may be an alias, an extracted
    /// or JSON field, or `sd.<id>.<param>`. Names are case-sensitive. Default empty.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Logsource mappings, added to the built-in ones (`service:` `sshd`, `sudo`, `su`, `cron`,
    /// `vsftpd`, `clamav` → that app; `auth` → facility auth/authpriv). An entry for the same
    /// `product`/`category`/`service` as a built-in one replaces it; an empty `match` lifts the
    /// restriction. Logsources no entry covers do not restrict matching.
    pub logsource: Vec<LogsourceDef>,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            builtin: true,
            paths: Vec::new(),
            fields: std::collections::BTreeMap::new(),
            logsource: Vec::new(),
        }
    }
}

/// One `[[rules.logsource]]` entry: when a rule's logsource has every key set here (compared
/// ASCII case-insensitively), the rule only applies to events meeting every `match` condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsourceDef {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
    /// Sigma field name → allowed value or list of values (OR-ed, ASCII case-insensitive,
    /// exact); the fields are AND-ed. Resolved like rule fields (`[rules.fields]` applies).
    #[serde(rename = "match", default)]
    pub conditions: std::collections::BTreeMap<String, OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        }
    }
}

impl RulesSection {
    /// The built-in mappings with this section's entries applied.
    fn compile_options(
        fields: std::collections::BTreeMap<String, String>,
        logsources: Vec<LogsourceDef>,
    ) -> Result<cairn_correlate::CompileOptions, ConfigError> {
        let mut options = cairn_correlate::CompileOptions::default();
        for (sigma_name, event_field) in fields {
            if sigma_name.trim().is_empty() || event_field.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: "rules.fields",
                    message: format!(
                        "`{sigma_name}` = `{event_field}`: field names cannot be empty"
                    ),
                });
            }
            options.field_mapping.insert(sigma_name, event_field);
        }
        for (position, def) in logsources.into_iter().enumerate() {
            let invalid = |message: String| ConfigError::Invalid {
                key: "rules.logsource",
                message: format!("entry {}: {message}", position + 1),
            };
            let keys = [&def.product, &def.category, &def.service];
            if keys.iter().all(|key| key.is_none()) {
                return Err(invalid(
                    "set at least one of product, category, service".to_string(),
                ));
            }
            if keys
                .iter()
                .any(|key| key.as_deref().is_some_and(|k| k.trim().is_empty()))
            {
                return Err(invalid(
                    "product, category and service cannot be empty".to_string(),
                ));
            }
            let mut conditions = Vec::with_capacity(def.conditions.len());
            for (field, values) in def.conditions {
                let values = values.into_vec();
                if field.trim().is_empty() {
                    return Err(invalid("a match field name cannot be empty".to_string()));
                }
                if values.is_empty() || values.iter().any(|value| value.is_empty()) {
                    return Err(invalid(format!(
                        "match.{field}: give one or more non-empty values"
                    )));
                }
                conditions.push((field, values));
            }
            options
                .logsource_mapping
                .set(cairn_correlate::LogsourceEntry {
                    category: def.category,
                    product: def.product,
                    service: def.service,
                    conditions,
                });
        }
        Ok(options)
    }
}

/// `[hec]`: the Splunk HTTP Event Collector endpoints (`/services/collector/…`). Without a
/// token every request is refused (403, "Invalid token").
///
/// ```toml
/// [hec]
/// max_ack_channels = 1000
///
/// [[hec.token]]
/// name = "web-servers"
/// token = "5b0e6c0a-8d1f-4c59-9f0e-2f6f0d3c9a11"   # Authorization: Splunk <token>
/// index = "main"          # index of events that name none
/// sourcetype = "_json"    # sourcetype of events that name none
/// ack = false             # indexer acknowledgement (requests need a channel)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HecSection {
    /// The accepted tokens.
    pub token: Vec<HecTokenDef>,
    /// Acknowledgement channels kept at most (idle ones are forgotten first). Default 1000.
    pub max_ack_channels: usize,
    /// Unqueried ack ids kept per channel (the oldest is forgotten). Default 10000.
    pub max_pending_acks: usize,
    /// Seconds after which an idle ack channel may be forgotten. Default 600.
    pub ack_idle_timeout_secs: u64,
}

impl Default for HecSection {
    fn default() -> Self {
        let limits = crate::http::AckLimits::default();
        HecSection {
            token: Vec::new(),
            max_ack_channels: limits.max_channels,
            max_pending_acks: limits.max_pending,
            ack_idle_timeout_secs: limits.idle_timeout.as_secs(),
        }
    }
}

/// `[[hec.token]]`: one HEC token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecTokenDef {
    /// A name for logs (not secret).
    pub name: String,
    /// The secret, as senders put it in `Authorization: Splunk <token>`.
    pub token: String,
    /// `index` field of events that name none.
    #[serde(default)]
    pub index: Option<String>,
    /// `source` field of events that name none.
    #[serde(default)]
    pub source: Option<String>,
    /// `sourcetype` field of events that name none.
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// Indexer acknowledgement. Default false.
    #[serde(default)]
    pub ack: bool,
}

impl HecSection {
    fn validate(self) -> Result<crate::http::HecSettings, ConfigError> {
        let mut tokens: Vec<crate::http::HecToken> = Vec::with_capacity(self.token.len());
        for def in self.token {
            let invalid = |message: String| ConfigError::Invalid {
                key: "hec.token",
                message,
            };
            if def.token.trim().is_empty() || def.token.contains(char::is_whitespace) {
                return Err(invalid(format!(
                    "token `{}` is empty or contains whitespace",
                    def.name
                )));
            }
            if tokens.iter().any(|token| token.name == def.name) {
                return Err(invalid(format!("two tokens are named `{}`", def.name)));
            }
            if tokens.iter().any(|token| token.token == def.token) {
                return Err(invalid(format!(
                    "token `{}` has the secret of another token",
                    def.name
                )));
            }
            tokens.push(crate::http::HecToken {
                name: def.name,
                token: def.token,
                index: def.index,
                source: def.source,
                sourcetype: def.sourcetype,
                ack: def.ack,
            });
        }
        if self.max_ack_channels == 0 || self.max_pending_acks == 0 {
            return Err(ConfigError::Invalid {
                key: "hec.max_ack_channels",
                message: "max_ack_channels and max_pending_acks must be greater than 0".to_string(),
            });
        }
        Ok(crate::http::HecSettings {
            tokens,
            ack: crate::http::AckLimits {
                max_channels: self.max_ack_channels,
                max_pending: self.max_pending_acks,
                idle_timeout: Duration::from_secs(self.ack_idle_timeout_secs),
            },
        })
    }
}

/// `[http]`: the API and HTTP ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Listen address, or `off`. Default `127.0.0.1:8080`.
    pub listen: ListenAddr,
    /// Largest request body accepted (compressed size), bytes. Default 16 MiB. Larger → 413.
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression, bytes. Default 128 MiB. Inflation stops at the
    /// limit (a gzip bomb is never inflated) → 413.
    pub max_decompressed_bytes: usize,
    /// Longest NDJSON line, bytes. Default 1 MiB. Longer lines are rejected (`line_too_long`).
    pub max_line_bytes: usize,
    /// Seconds a client is told to wait (`Retry-After`) when the pipeline is full. Default 1.
    pub retry_after_secs: u64,
    /// Connections served at once; more are closed on accept and counted. Default 1024.
    pub max_connections: usize,
    /// Connections served at once from one source address. Default 64.
    pub max_connections_per_source: usize,
    /// Seconds a connection may take to send a request's head, and may stay idle between
    /// requests; then it is closed (slowloris). Default 10.
    pub header_timeout_secs: u64,
    /// Seconds a request may take to send its body; then it gets 408. Default 60.
    pub body_timeout_secs: u64,
    /// PEM certificate chain and private key: serve the API over HTTPS. Default none (HTTP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: with HTTPS, require client certificates signed by one of them.
    pub tls_client_ca: Option<PathBuf>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: ListenAddr(Some(SocketAddr::from(([127, 0, 0, 1], 8080)))),
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 128 << 20,
            max_line_bytes: 1 << 20,
            retry_after_secs: 1,
            max_connections: 1024,
            max_connections_per_source: 64,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

impl HttpSection {
    /// The HTTPS files: none, or both the certificate and the key.
    fn tls_files(&self) -> Result<Option<cairn_ingest::tls::TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) if self.tls_client_ca.is_none() => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(cairn_ingest::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })),
            _ => Err(ConfigError::Invalid {
                key: "http.tls_cert",
                message: "HTTPS needs both tls_cert and tls_key (and tls_client_ca only with them)"
                    .to_string(),
            }),
        }
    }
}

/// `[syslog]`: the syslog listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogSection {
    /// UDP listen address, or `off`. Default `0.0.0.0:5514`.
    pub udp: ListenAddr,
    /// TCP listen address, or `off`. Default `0.0.0.0:5514`.
    pub tcp: ListenAddr,
    /// Longest frame kept, bytes; longer frames are truncated and flagged. Default 65536.
    pub max_frame_bytes: usize,
    /// TCP connections served at once; more are closed and counted. Default 1024.
    pub max_connections: usize,
    /// TCP connections served at once from one source address. Default 256.
    pub max_connections_per_source: usize,
    /// Seconds of silence after which a TCP connection is closed. Default 300.
    pub idle_timeout_secs: u64,
    /// Requested kernel UDP receive buffer, bytes. Default 8 MiB (capped by `net.core.rmem_max`).
    pub udp_receive_buffer_bytes: usize,
    /// Syslog over TLS (RFC 5425) listen address, or `off`. Default `off` (needs `tls_cert` and
    /// `tls_key`); the usual port is 6514. Same framing and limits as `tcp`.
    pub tls: ListenAddr,
    /// Server certificate chain, PEM (leaf first). Required when `tls` is on.
    pub tls_cert: Option<PathBuf>,
    /// Server private key, PEM (PKCS#8, PKCS#1 or SEC1). Required when `tls` is on.
    pub tls_key: Option<PathBuf>,
    /// CA certificates, PEM: when set, clients must present a certificate that chains to one of
    /// them (mutual TLS); others are refused and counted. Default unset (no client certificate).
    pub tls_client_ca: Option<PathBuf>,
    /// Seconds a client has to finish its TLS handshake. Default 10.
    pub tls_handshake_timeout_secs: u64,
    /// RELP listen address, or `off`. Default `off`; rsyslog's `omrelp` usually sends to 2514.
    /// Messages are acknowledged once durable in the WAL. Same limits as `tcp`.
    pub relp: ListenAddr,
}

impl Default for SyslogSection {
    fn default() -> Self {
        let any = SocketAddr::from(([0, 0, 0, 0], 5514));
        SyslogSection {
            udp: ListenAddr(Some(any)),
            tcp: ListenAddr(Some(any)),
            max_frame_bytes: 64 * 1024,
            max_connections: 1024,
            max_connections_per_source: 256,
            idle_timeout_secs: 300,
            udp_receive_buffer_bytes: 8 << 20,
            tls: ListenAddr(None),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_handshake_timeout_secs: 10,
            relp: ListenAddr(None),
        }
    }
}

impl SyslogSection {
    /// The TLS listener's address and files, when `tls` is on; both files are required then.
    fn tls_listener(
        &self,
    ) -> Result<Option<(SocketAddr, cairn_ingest::tls::TlsFiles)>, ConfigError> {
        let Some(addr) = self.tls.0 else {
            return Ok(None);
        };
        let required = |key: &'static str, path: &Option<PathBuf>| {
            path.clone().ok_or_else(|| ConfigError::Invalid {
                key,
                message: format!("syslog over TLS on {addr} needs a PEM file here"),
            })
        };
        Ok(Some((
            addr,
            cairn_ingest::tls::TlsFiles {
                cert: required("syslog.tls_cert", &self.tls_cert)?,
                key: required("syslog.tls_key", &self.tls_key)?,
                client_ca: self.tls_client_ca.clone(),
            },
        )))
    }
}

/// `[pipeline]`: parse workers and queues.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Parse worker threads; 0 = one per core minus the indexer's, at least 1. Default 0.
    pub workers: usize,
    /// Batches the listener → worker queue holds before TCP pauses, HTTP gets 429 and UDP drops.
    /// A TCP batch is one read (up to 64 KiB). Default 256.
    pub queue_batches: usize,
    /// Batches the worker → indexer queue holds. Default 32.
    pub index_queue_batches: usize,
    /// Memory, MiB, that queued batches and HTTP request bodies in flight may hold together.
    /// When it is spent, TCP reads pause, HTTP gets 429 and UDP drops (counted). Default 256.
    pub memory_budget_mb: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            workers: 0,
            queue_batches: 256,
            index_queue_batches: 32,
            memory_budget_mb: 256,
        }
    }
}

/// `[index]`: the tantivy index.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSection {
    /// Milliseconds between commits; an event is searchable about this long after it arrives.
    /// Default 1000.
    pub commit_interval_ms: u64,
    /// Memory budget of the index writer, MiB (shared by its threads). Default 128.
    pub writer_memory_mb: usize,
    /// tantivy indexing threads; 0 = one per core (at most 4). Indexing is the costliest stage.
    /// Default 0.
    pub writer_threads: usize,
    /// Hours of event time per index partition (1..=8760), on the UTC grid: 24 is one partition
    /// per UTC day. Retention drops whole partitions. Default 24.
    pub partition_hours: u32,
    /// Drop partitions whose span ended more than this many days ago (and do not index events
    /// that old). Unset (default): keep forever.
    pub retention_days: Option<u32>,
    /// Drop the oldest partitions while the index takes more than this many GiB (never the
    /// newest one). Unset (default): no budget. At most one of this and `max_disk_bytes`.
    pub max_disk_gb: Option<u64>,
    /// As `max_disk_gb`, in bytes.
    pub max_disk_bytes: Option<u64>,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            commit_interval_ms: 1000,
            writer_memory_mb: 128,
            writer_threads: 0,
            partition_hours: 24,
            retention_days: None,
            max_disk_gb: None,
            max_disk_bytes: None,
        }
    }
}

impl IndexSection {
    /// The partitioning and retention keys, checked.
    fn retention(&self) -> Result<cairn_index::RetentionPolicy, ConfigError> {
        if !(1..=8760).contains(&self.partition_hours) {
            return Err(ConfigError::Invalid {
                key: "index.partition_hours",
                message: "must be between 1 and 8760".to_string(),
            });
        }
        if self.retention_days == Some(0) {
            return Err(ConfigError::Invalid {
                key: "index.retention_days",
                message: "must be at least 1 (leave it unset to keep everything)".to_string(),
            });
        }
        let max_disk_bytes = match (self.max_disk_gb, self.max_disk_bytes) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "index.max_disk_bytes",
                    message: "set at most one of max_disk_gb and max_disk_bytes".to_string(),
                });
            }
            (Some(gigabytes), None) => Some(gigabytes.saturating_mul(1 << 30)),
            (None, bytes) => bytes,
        };
        Ok(cairn_index::RetentionPolicy {
            partition_hours: self.partition_hours,
            max_age: self
                .retention_days
                .map(|days| Duration::from_secs(u64::from(days) * 86_400)),
            max_disk_bytes,
        })
    }
}

/// `[parse]`: parser settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseSection {
    /// Time zone for timestamps that carry no offset (RFC 3164): an IANA name
    /// (`Europe/Paris`), `UTC`, or `local`. Default `UTC`.
    pub default_timezone: String,
    /// Fields extracted from one JSON body at most. Default 256.
    pub max_json_fields: usize,
    /// JSON nesting flattened at most. Default 16.
    pub max_json_depth: usize,
}

impl Default for ParseSection {
    fn default() -> Self {
        ParseSection {
            default_timezone: "UTC".to_string(),
            max_json_fields: 256,
            max_json_depth: 16,
        }
    }
}

/// Overrides from the command line (each `None` keeps the file's value).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub http: Option<ListenAddr>,
    pub syslog_udp: Option<ListenAddr>,
    pub syslog_tcp: Option<ListenAddr>,
    /// `--syslog-tls`.
    pub syslog_tls: Option<ListenAddr>,
    /// `--relp`.
    pub relp: Option<ListenAddr>,
    /// Extra rule paths (`--rules`, repeatable).
    pub rules: Vec<PathBuf>,
}

/// The validated configuration the appliance runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: Option<SocketAddr>,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog over TLS: the address and the files of the server identity (read at start).
    pub syslog_tls: Option<(SocketAddr, cairn_ingest::tls::TlsFiles)>,
    pub tls_handshake_timeout: Duration,
    pub relp: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_line_bytes: usize,
    pub retry_after: Duration,
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    pub idle_timeout: Duration,
    pub udp_receive_buffer_bytes: usize,
    /// `[http]` connection limits and timeouts.
    pub http_serve: crate::http::serve::ServeLimits,
    /// `[http]` TLS files, when the API is served over HTTPS.
    pub http_tls: Option<cairn_ingest::tls::TlsFiles>,
    pub workers: usize,
    pub queue_batches: usize,
    pub index_queue_batches: usize,
    pub memory_budget_bytes: usize,
    pub commit_interval: Duration,
    pub writer_memory_bytes: usize,
    pub writer_threads: usize,
    /// `[index]` partitioning and retention.
    pub index_retention: cairn_index::RetentionPolicy,
    pub default_timezone: jiff::tz::TimeZone,
    pub max_json_fields: usize,
    pub max_json_depth: usize,
    pub rules: crate::signatures::RuleSources,
    pub normaliser: std::sync::Arc<cairn_ingest::normalise::Normaliser>,
    /// `[incidents]`.
    pub incidents: cairn_correlate::incident::IncidentPolicy,
    /// `[correlation]`.
    pub correlation: cairn_correlate::EngineConfig,
    /// `[correlation]` snapshot and alert timing.
    pub correlation_checkpoints: crate::correlation::CheckpointPolicy,
    /// `[wal]`.
    pub wal: cairn_ingest::wal::WalOptions,
    /// `[hec]`.
    pub hec: crate::http::HecSettings,
    /// `[webhooks]`.
    pub webhooks: crate::webhooks::WebhooksConfig,
    /// `[auth]`.
    pub auth: crate::http::AuthConfig,
    /// `[tail]`.
    pub tail: crate::http::tail::TailConfig,
}

impl ConfigFile {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// Applies CLI overrides.
    pub fn with_overrides(mut self, overrides: Overrides) -> ConfigFile {
        if let Some(data_dir) = overrides.data_dir {
            self.data_dir = data_dir;
        }
        if let Some(http) = overrides.http {
            self.http.listen = http;
        }
        if let Some(udp) = overrides.syslog_udp {
            self.syslog.udp = udp;
        }
        if let Some(tcp) = overrides.syslog_tcp {
            self.syslog.tcp = tcp;
        }
        if let Some(tls) = overrides.syslog_tls {
            self.syslog.tls = tls;
        }
        if let Some(relp) = overrides.relp {
            self.syslog.relp = relp;
        }
        self.rules.paths.extend(overrides.rules);
        self
    }

    /// Checks every value (no I/O besides time-zone lookup) and builds the domain config.
    pub fn validate(self) -> Result<Config, ConfigError> {
        fn positive(key: &'static str, value: usize) -> Result<usize, ConfigError> {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be greater than 0".to_string(),
                });
            }
            Ok(value)
        }
        if self.syslog.max_frame_bytes < 480 || self.syslog.max_frame_bytes > 16 << 20 {
            return Err(ConfigError::Invalid {
                key: "syslog.max_frame_bytes",
                message: "must be between 480 (RFC 5424's minimum) and 16 MiB".to_string(),
            });
        }
        if self.index.commit_interval_ms < 10 {
            return Err(ConfigError::Invalid {
                key: "index.commit_interval_ms",
                message: "must be at least 10".to_string(),
            });
        }
        if self.index.writer_memory_mb < 16 {
            return Err(ConfigError::Invalid {
                key: "index.writer_memory_mb",
                message: "must be at least 16 (tantivy's minimum per thread)".to_string(),
            });
        }
        let syslog_tls = self.syslog.tls_listener()?;
        let default_timezone = parse_timezone(&self.parse.default_timezone)?;
        let auth = self.auth.validate()?;
        check_unauthenticated_listen(self.http.listen.0, &auth)?;
        let tail = self.tail.validate()?;
        let incidents = self.incidents.validate()?;
        let hec = self.hec.validate()?;
        let correlation_checkpoints = self.correlation.checkpoint_policy()?;
        let correlation = self.correlation.validate()?;
        let webhooks = self.webhooks.validate()?;
        let wal = self
            .wal
            .validate(self.syslog.max_frame_bytes, self.http.max_line_bytes)?;
        let normaliser = cairn_ingest::normalise::Normaliser::new(self.normalise.pattern)
            .map(std::sync::Arc::new)
            .map_err(|error| ConfigError::Invalid {
                key: "normalise.pattern",
                message: error.to_string(),
            })?;
        let cores = std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1);
        let writer_threads = if self.index.writer_threads == 0 {
            cores.clamp(1, 4)
        } else {
            self.index.writer_threads
        };
        if writer_threads > 8 || self.index.writer_memory_mb < 16 * writer_threads {
            return Err(ConfigError::Invalid {
                key: "index.writer_threads",
                message: format!(
                    "must be at most 8, with writer_memory_mb at least 16 per thread ({writer_threads} threads, {} MiB)",
                    self.index.writer_memory_mb
                ),
            });
        }
        let workers = if self.pipeline.workers == 0 {
            std::thread::available_parallelism()
                .map(|cores| cores.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        } else {
            self.pipeline.workers
        };
        Ok(Config {
            data_dir: self.data_dir,
            http: self.http.listen.0,
            syslog_udp: self.syslog.udp.0,
            syslog_tcp: self.syslog.tcp.0,
            syslog_tls,
            tls_handshake_timeout: Duration::from_secs(positive(
                "syslog.tls_handshake_timeout_secs",
                usize::try_from(self.syslog.tls_handshake_timeout_secs).unwrap_or(usize::MAX),
            )? as u64),
            relp: self.syslog.relp.0,
            max_body_bytes: positive("http.max_body_bytes", self.http.max_body_bytes)?,
            max_decompressed_bytes: positive(
                "http.max_decompressed_bytes",
                self.http.max_decompressed_bytes,
            )?,
            max_line_bytes: positive("http.max_line_bytes", self.http.max_line_bytes)?,
            retry_after: Duration::from_secs(self.http.retry_after_secs.max(1)),
            max_frame_bytes: self.syslog.max_frame_bytes,
            max_connections: positive("syslog.max_connections", self.syslog.max_connections)?,
            max_connections_per_source: positive(
                "syslog.max_connections_per_source",
                self.syslog.max_connections_per_source,
            )?,
            http_tls: self.http.tls_files()?,
            http_serve: crate::http::serve::ServeLimits {
                max_connections: positive("http.max_connections", self.http.max_connections)?,
                max_connections_per_source: positive(
                    "http.max_connections_per_source",
                    self.http.max_connections_per_source,
                )?,
                header_timeout: Duration::from_secs(self.http.header_timeout_secs.max(1)),
                body_timeout: Duration::from_secs(self.http.body_timeout_secs.max(1)),
            },
            idle_timeout: Duration::from_secs(positive(
                "syslog.idle_timeout_secs",
                usize::try_from(self.syslog.idle_timeout_secs).unwrap_or(usize::MAX),
            )? as u64),
            udp_receive_buffer_bytes: self.syslog.udp_receive_buffer_bytes,
            workers,
            queue_batches: positive("pipeline.queue_batches", self.pipeline.queue_batches)?,
            index_queue_batches: positive(
                "pipeline.index_queue_batches",
                self.pipeline.index_queue_batches,
            )?,
            memory_budget_bytes: positive(
                "pipeline.memory_budget_mb",
                self.pipeline.memory_budget_mb,
            )? << 20,
            commit_interval: Duration::from_millis(self.index.commit_interval_ms),
            writer_memory_bytes: self.index.writer_memory_mb << 20,
            writer_threads,
            index_retention: self.index.retention()?,
            default_timezone,
            max_json_fields: positive("parse.max_json_fields", self.parse.max_json_fields)?,
            max_json_depth: positive("parse.max_json_depth", self.parse.max_json_depth)?,
            rules: crate::signatures::RuleSources {
                builtin: self.rules.builtin,
                paths: self.rules.paths,
                options: RulesSection::compile_options(self.rules.fields, self.rules.logsource)?,
            },
            normaliser,
            incidents,
            correlation,
            correlation_checkpoints,
            wal,
            hec,
            webhooks,
            auth,
            tail,
        })
    }
}

fn parse_timezone(name: &str) -> Result<jiff::tz::TimeZone, ConfigError> {
    let trimmed = name.trim();
    if trimmed.eq_ignore_ascii_case("utc") {
        return Ok(jiff::tz::TimeZone::UTC);
    }
    if trimmed.eq_ignore_ascii_case("local") {
        return Ok(jiff::tz::TimeZone::system());
    }
    jiff::tz::TimeZone::get(trimmed).map_err(|error| ConfigError::Invalid {
        key: "parse.default_timezone",
        message: format!("unknown time zone `{trimmed}`: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_design_defaults() {
        let config = ConfigFile::from_toml("")
            .expect("empty toml")
            .validate()
            .expect("defaults validate");
        assert_eq!(config.data_dir, PathBuf::from("./cairn-data"));
        assert_eq!(config.http, Some("127.0.0.1:8080".parse().expect("addr")));
        assert_eq!(
            config.syslog_udp,
            Some("0.0.0.0:5514".parse().expect("addr"))
        );
        assert_eq!(
            config.syslog_tcp,
            Some("0.0.0.0:5514".parse().expect("addr"))
        );
        assert_eq!(config.max_frame_bytes, 65536);
        assert_eq!(config.commit_interval, Duration::from_secs(1));
    }

    #[test]
    fn hec_tokens_are_validated() {
        let config = ConfigFile::from_toml(
            "[[hec.token]]\nname = \"a\"\ntoken = \"t1\"\nindex = \"main\"\nack = true\n",
        )
        .expect("toml")
        .validate()
        .expect("valid");
        assert_eq!(config.hec.tokens.len(), 1);
        assert!(config.hec.tokens[0].ack);
        assert_eq!(config.hec.tokens[0].index.as_deref(), Some("main"));
        for bad in [
            "[[hec.token]]\nname = \"a\"\ntoken = \" \"\n",
            "[[hec.token]]\nname = \"a\"\ntoken = \"x\"\n[[hec.token]]\nname = \"b\"\ntoken = \"x\"\n",
            "[[hec.token]]\nname = \"a\"\ntoken = \"x\"\n[[hec.token]]\nname = \"a\"\ntoken = \"y\"\n",
        ] {
            let error = ConfigFile::from_toml(bad)
                .expect("toml")
                .validate()
                .expect_err("invalid");
            assert!(error.to_string().contains("hec.token"), "{error}");
        }
    }

    #[test]
    fn auth_tokens_are_validated_and_guard_public_addresses() {
        let hash = crate::http::auth::token_sha256_hex("cairn_test");
        let entry = |name: &str, role: &str, sha256: &str| {
            format!("[[auth.token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{sha256}\"\n")
        };
        let validate = |text: &str| ConfigFile::from_toml(text).expect("toml").validate();
        let public = "[http]\nlisten = \"0.0.0.0:8080\"\n";

        let config = validate(&format!("{public}{}", entry("siem", "read", &hash))).expect("valid");
        assert_eq!(config.auth.tokens.len(), 1);
        assert_eq!(config.auth.tokens[0].role, crate::http::Role::Read);
        let rate = config.auth.tokens[0].rate.expect("default rate");
        assert_eq!((rate.per_sec, rate.burst), (100.0, 200.0));

        let error = validate(public).expect_err("public without tokens");
        let message = error.to_string();
        assert!(
            message.contains("http.listen") && message.contains("cairn token new"),
            "{message}"
        );
        assert!(validate("[http]\nlisten = \"[::1]:8080\"\n").is_ok());

        for (bad, why) in [
            (entry("x", "root", &hash), "role"),
            (entry("x", "read", "abc"), "sha256"),
            (
                format!(
                    "{}{}",
                    entry("x", "read", &hash),
                    entry("x", "admin", &hash)
                ),
                "name",
            ),
            (
                format!("{}rate_per_sec = -1\n", entry("x", "read", &hash)),
                "rate_per_sec",
            ),
            (
                format!("{}burst = 0.5\n", entry("x", "read", &hash)),
                "burst",
            ),
        ] {
            let message = validate(&bad).expect_err(why).to_string();
            assert!(
                message.contains("auth.token") && message.contains(why),
                "{why}: {message}"
            );
        }
        let unlimited = validate(&format!(
            "{}rate_per_sec = 0\n",
            entry("x", "ingest", &hash)
        ))
        .expect("valid");
        assert!(unlimited.auth.tokens[0].rate.is_none());
        assert!(validate("[tail]\nbuffer_events = 0\n").is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = ConfigFile::from_toml("[syslog]\nmax_frame = 10\n").expect_err("unknown key");
        assert!(error.contains("unknown field"), "{error}");
        let error = ConfigFile::from_toml("colour = 'blue'\n").expect_err("unknown key");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn off_disables_a_listener_and_overrides_win() {
        let file = ConfigFile::from_toml("[syslog]\nudp = \"off\"\ntcp = \"127.0.0.1:6514\"\n")
            .expect("toml");
        let config = file
            .with_overrides(Overrides {
                http: Some(ListenAddr::parse("off").expect("off")),
                syslog_tcp: Some(ListenAddr::parse("127.0.0.1:7514").expect("addr")),
                ..Overrides::default()
            })
            .validate()
            .expect("valid");
        assert_eq!(config.syslog_udp, None);
        assert_eq!(config.http, None);
        assert_eq!(
            config.syslog_tcp,
            Some("127.0.0.1:7514".parse().expect("addr"))
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = ConfigFile::from_toml("[syslog]\nmax_frame_bytes = 10\n")
            .expect("toml")
            .validate()
            .expect_err("too small");
        assert!(
            error.to_string().contains("syslog.max_frame_bytes"),
            "{error}"
        );
        let error = ConfigFile::from_toml("[parse]\ndefault_timezone = \"Mars/Olympus\"\n")
            .expect("toml")
            .validate()
            .expect_err("bad zone");
        assert!(
            error.to_string().contains("parse.default_timezone"),
            "{error}"
        );
        let error = ConfigFile::from_toml("[http]\nlisten = \"nowhere\"\n").expect_err("bad addr");
        assert!(error.contains("nowhere"), "{error}");
    }

    #[test]
    fn operator_patterns_are_validated() {
        let good = "[[normalise.pattern]]\nname = \"x\"\ntemplate = \"login failed for %{user}\"\n";
        let config = ConfigFile::from_toml(good)
            .expect("toml")
            .validate()
            .expect("valid pattern");
        assert!(config.normaliser.pattern_names().any(|name| name == "x"));
        let bad = "[[normalise.pattern]]\nname = \"bad\"\ntemplate = \"%{n:float}\"\n";
        let error = ConfigFile::from_toml(bad)
            .expect("toml")
            .validate()
            .expect_err("bad type");
        assert!(error.to_string().contains("normalise.pattern"), "{error}");
    }

    #[test]
    fn incidents_section_defaults_and_validation() {
        let config = ConfigFile::from_toml("")
            .expect("toml")
            .validate()
            .expect("defaults");
        assert_eq!(
            config.incidents,
            cairn_correlate::incident::IncidentPolicy::default()
        );
        let config = ConfigFile::from_toml(
            "[incidents]\nmin_level = \"high\"\nquiet_period_secs = 60\nmax_evidence = 1000\n\
             [incidents.quiet_period_by_rule]\n\"ssh-brute\" = 5\n",
        )
        .expect("toml")
        .validate()
        .expect("valid");
        assert_eq!(config.incidents.min_level, cairn_correlate::Level::High);
        assert_eq!(
            config.incidents.quiet_period_for("ssh-brute"),
            Duration::from_secs(5)
        );
        assert_eq!(
            config.incidents.quiet_period_for("other"),
            Duration::from_secs(60)
        );
        for (text, key) in [
            ("min_level = \"severe\"", "incidents.min_level"),
            ("quiet_period_secs = 0", "incidents.quiet_period_secs"),
            ("max_evidence = 0", "incidents.max_evidence"),
            ("max_evidence = 1001", "incidents.max_evidence"),
            (
                "change_log_retention_secs = 1",
                "incidents.change_log_retention_secs",
            ),
            (
                "[incidents.quiet_period_by_rule]\nr = 0",
                "incidents.quiet_period_by_rule",
            ),
        ] {
            let error = ConfigFile::from_toml(&format!("[incidents]\n{text}\n"))
                .expect("toml")
                .validate()
                .expect_err(text);
            assert!(error.to_string().contains(key), "{text}: {error}");
        }
        let error = ConfigFile::from_toml("[incidents]\nquiet = 1\n").expect_err("unknown key");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn rule_mappings_are_validated_and_applied() {
        let good = r#"
[rules.fields]
CommandLine = "cmdline"
[[rules.logsource]]
service = "nginx"
match = { app = ["nginx", "nginx-proxy"], facility = "daemon" }
[[rules.logsource]]
service = "SSHD"
"#;
        let config = ConfigFile::from_toml(good)
            .expect("toml")
            .validate()
            .expect("valid mappings");
        let entries = &config.rules.options.logsource_mapping.entries;
        let nginx = entries
            .iter()
            .find(|entry| entry.service.as_deref() == Some("nginx"))
            .expect("nginx entry added");
        assert_eq!(nginx.conditions.len(), 2);
        let sshd: Vec<_> = entries
            .iter()
            .filter(|entry| {
                entry
                    .service
                    .as_deref()
                    .is_some_and(|service| service.eq_ignore_ascii_case("sshd"))
            })
            .collect();
        assert_eq!(sshd.len(), 1, "the built-in sshd entry is replaced");
        assert!(sshd[0].conditions.is_empty());

        for (bad, wanted) in [
            (
                "[[rules.logsource]]
match = { app = \"x\" }
",
                "entry 1: set at least one",
            ),
            (
                "[[rules.logsource]]
service = \"x\"
match = { app = [] }
",
                "match.app: give one or more non-empty values",
            ),
            (
                "[rules.fields]
CommandLine = \"\"
",
                "rules.fields",
            ),
            (
                "[[rules.logsource]]
service = \"\"
",
                "cannot be empty",
            ),
        ] {
            let error = ConfigFile::from_toml(bad)
                .expect("toml")
                .validate()
                .expect_err(bad);
            assert!(error.to_string().contains(wanted), "{bad}: {error}");
        }
        let error = ConfigFile::from_toml(
            "[[rules.logsource]]
servce = \"x\"
",
        )
        .expect_err("unknown key");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn wal_section_defaults_and_validation() {
        let config = ConfigFile::from_toml("")
            .expect("toml")
            .validate()
            .expect("defaults");
        assert_eq!(
            config.wal.fsync,
            cairn_ingest::wal::FsyncPolicy::Interval(Duration::from_millis(10))
        );
        assert_eq!(config.wal.max_segment_bytes, 128 << 20);
        assert_eq!(config.wal.max_record_bytes, 32 << 20);
        assert!(config.wal.fault_injection.is_none());
        let config = ConfigFile::from_toml(
            "[wal]\nfsync = \"always\"\nmax_segment_mb = 4\nmax_record_mb = 2\n",
        )
        .expect("toml")
        .validate()
        .expect("valid");
        assert_eq!(config.wal.fsync, cairn_ingest::wal::FsyncPolicy::Always);
        config
            .wal
            .validate()
            .expect("the wal accepts what config accepts");
        for (text, key) in [
            ("fsync = \"sometimes\"", "wal.fsync"),
            ("fsync_interval_ms = 0", "wal.fsync_interval_ms"),
            ("max_segment_mb = 1", "wal.max_segment_mb"),
            ("max_record_mb = 0", "wal.max_record_mb"),
            ("max_segment_mb = 8\nmax_record_mb = 8", "wal.max_record_mb"),
        ] {
            let error = ConfigFile::from_toml(&format!("[wal]\n{text}\n"))
                .expect("toml")
                .validate()
                .expect_err(text);
            assert!(error.to_string().contains(key), "{text}: {error}");
        }
        let error = ConfigFile::from_toml(
            "[wal]\nmax_segment_mb = 4\nmax_record_mb = 1\n[syslog]\nmax_frame_bytes = 2000000\n",
        )
        .expect("toml")
        .validate()
        .expect_err("a frame must fit in a record");
        assert!(
            error.to_string().contains("syslog.max_frame_bytes"),
            "{error}"
        );
        let error = ConfigFile::from_toml("[wal]\nfsync_ms = 1\n").expect_err("unknown key");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let text = include_str!("../../deploy/cairn.toml");
        ConfigFile::from_toml(text)
            .expect("deploy/cairn.toml parses")
            .validate()
            .expect("deploy/cairn.toml validates");
    }

    #[test]
    fn index_retention_keys_are_checked_and_converted() {
        let config = ConfigFile::from_toml(
            "[index]\npartition_hours = 6\nretention_days = 7\nmax_disk_gb = 2\n",
        )
        .expect("toml")
        .validate()
        .expect("valid");
        assert_eq!(
            config.index_retention,
            cairn_index::RetentionPolicy {
                partition_hours: 6,
                max_age: Some(Duration::from_secs(7 * 86_400)),
                max_disk_bytes: Some(2 << 30),
            }
        );
        for (bad, key) in [
            ("partition_hours = 0", "index.partition_hours"),
            ("retention_days = 0", "index.retention_days"),
            (
                "max_disk_gb = 1\nmax_disk_bytes = 5",
                "index.max_disk_bytes",
            ),
        ] {
            let error = ConfigFile::from_toml(&format!("[index]\n{bad}\n"))
                .expect("toml")
                .validate()
                .expect_err(bad);
            assert!(error.to_string().contains(key), "{bad}: {error}");
        }
    }
}
