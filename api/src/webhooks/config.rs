//! `[webhooks]` and `[[webhooks.target]]`: the wire form, its validation, and the domain form.

use std::time::Duration;

use cairn_correlate::Level;
use cairn_correlate::incident::{ChangeKind, Incident, IncidentChange};
use serde::Deserialize;

use crate::config::ConfigError;

/// `[webhooks]`: outbound deliveries of incident changes.
///
/// ```toml
/// [webhooks]
/// history_retention_secs = 604800
///
/// [[webhooks.target]]
/// name = "ops"
/// url = "https://hooks.example.com/cairn"
/// format = "json"                 # json | pagerduty | slack
/// secret_env = "CAIRN_WEBHOOK_OPS_SECRET"
/// min_level = "high"
/// rules = []                      # rule ids or titles; empty = every rule
/// events = ["open", "update", "acknowledge", "resolve"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksSection {
    /// Seconds delivered and dead deliveries stay listed in the API before they are pruned
    /// (pending ones are never pruned). Default 604800 (7 days).
    pub history_retention_secs: u64,
    /// The targets.
    pub target: Vec<TargetSection>,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        WebhooksSection {
            history_retention_secs: 7 * 24 * 3600,
            target: Vec::new(),
        }
    }
}

/// One `[[webhooks.target]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetSection {
    /// Unique name: letters, digits, `-` and `_`, at most 64. It keys the target's position in
    /// the change log: renaming a target makes it a new one (starting at the end of the log).
    pub name: String,
    /// `http://` or `https://` URL the payload is POSTed to.
    pub url: String,
    /// Payload: `json` (Cairn's generic JSON), `pagerduty` (Events API v2) or `slack`
    /// (incoming webhook with `text` and `blocks`). Default `json`.
    pub format: String,
    /// HMAC-SHA256 key for `X-Cairn-Signature`. Without `secret` or `secret_env`, deliveries
    /// are not signed.
    pub secret: Option<String>,
    /// Name of an environment variable holding the HMAC key (instead of `secret`).
    pub secret_env: Option<String>,
    /// PagerDuty integration (routing) key; required for `format = "pagerduty"`.
    pub routing_key: Option<String>,
    /// Name of an environment variable holding the routing key (instead of `routing_key`).
    pub routing_key_env: Option<String>,
    /// Only incidents at or above this level are delivered. Default `informational` (all).
    pub min_level: String,
    /// Only incidents of these rules (rule id or title, exact) are delivered; empty = all.
    pub rules: Vec<String>,
    /// Which changes are delivered: `open`, `update`, `acknowledge`, `resolve` (manual or
    /// after the quiet period). Default all four.
    pub events: Vec<String>,
    /// Seconds one attempt may take (connect, send, answer). Default 10, 1 to 300.
    pub timeout_secs: u64,
    /// Attempts before a delivery is marked dead. Default 20, 1 to 1000.
    pub max_attempts: u32,
    /// Delay before the first retry, ms; each further retry doubles it. Default 1000.
    pub backoff_base_ms: u64,
    /// Longest delay between retries, ms. Default 600000 (10 minutes).
    pub backoff_max_ms: u64,
}

impl Default for TargetSection {
    fn default() -> Self {
        TargetSection {
            name: String::new(),
            url: String::new(),
            format: "json".to_string(),
            secret: None,
            secret_env: None,
            routing_key: None,
            routing_key_env: None,
            min_level: "informational".to_string(),
            rules: Vec::new(),
            events: EventKind::ALL
                .iter()
                .map(|event| event.name().to_string())
                .collect(),
            timeout_secs: 10,
            max_attempts: 20,
            backoff_base_ms: 1000,
            backoff_max_ms: 600_000,
        }
    }
}

/// The payload shape of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    PagerDuty,
    Slack,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::PagerDuty => "pagerduty",
            Format::Slack => "slack",
        }
    }
}

/// A change as webhook filters and payloads name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Open,
    Update,
    Acknowledge,
    Resolve,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Open,
        EventKind::Update,
        EventKind::Acknowledge,
        EventKind::Resolve,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Update => "update",
            EventKind::Acknowledge => "acknowledge",
            EventKind::Resolve => "resolve",
        }
    }

    fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|event| event.name() == text.trim())
    }

    /// The event of a change (manual and quiet-period resolution are both `resolve`).
    pub fn of(change: ChangeKind) -> EventKind {
        match change {
            ChangeKind::Opened => EventKind::Open,
            ChangeKind::Updated => EventKind::Update,
            ChangeKind::Acknowledged => EventKind::Acknowledge,
            ChangeKind::Resolved | ChangeKind::AutoResolved => EventKind::Resolve,
        }
    }
}

/// A validated target.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub name: String,
    pub url: String,
    pub format: Format,
    /// The HMAC key; `None` sends unsigned.
    pub secret: Option<Vec<u8>>,
    /// PagerDuty's routing key (`format = "pagerduty"` only).
    pub routing_key: Option<String>,
    pub min_level: Level,
    pub rules: Vec<String>,
    pub events: Vec<EventKind>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl WebhookTarget {
    /// Whether `change` is owed to this target.
    pub fn wants(&self, change: &IncidentChange) -> bool {
        self.events.contains(&EventKind::of(change.kind)) && self.wants_incident(&change.incident)
    }

    fn wants_incident(&self, incident: &Incident) -> bool {
        incident.level >= self.min_level
            && (self.rules.is_empty()
                || self
                    .rules
                    .iter()
                    .any(|rule| *rule == incident.rule || *rule == incident.title))
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failures (at least one):
    /// `backoff_base × 2^(attempts − 1)`, at most `backoff_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        self.backoff_base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.backoff_max)
    }
}

/// The validated `[webhooks]`.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    pub history_retention: Duration,
    pub targets: Vec<WebhookTarget>,
}

fn invalid(key: &'static str, name: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: if name.is_empty() {
            message.to_string()
        } else {
            format!("target `{name}`: {message}")
        },
    }
}

/// A value given inline or through an environment variable (not both).
fn inline_or_env(
    key: &'static str,
    name: &str,
    inline: Option<String>,
    env: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(invalid(
            key,
            name,
            "set it inline or from the env, not both",
        )),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(variable)) => match std::env::var(&variable) {
            Ok(value) if !value.is_empty() => Ok(Some(value)),
            _ => Err(invalid(
                key,
                name,
                format!("environment variable {variable} is not set"),
            )),
        },
        (None, None) => Ok(None),
    }
}

impl TargetSection {
    fn validate(self) -> Result<WebhookTarget, ConfigError> {
        let name = self.name;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid_name {
            return Err(invalid(
                "webhooks.target.name",
                "",
                format!("`{name}` must be 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        let url = self.url.trim().to_string();
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || reqwest::Url::parse(&url).is_err() {
            return Err(invalid(
                "webhooks.target.url",
                &name,
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        let format = match self.format.trim() {
            "json" => Format::Json,
            "pagerduty" => Format::PagerDuty,
            "slack" => Format::Slack,
            other => {
                return Err(invalid(
                    "webhooks.target.format",
                    &name,
                    format!("`{other}` is not one of json, pagerduty, slack"),
                ));
            }
        };
        let secret = inline_or_env(
            "webhooks.target.secret",
            &name,
            self.secret,
            self.secret_env,
        )?
        .map(String::into_bytes);
        if secret.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                "webhooks.target.secret",
                &name,
                "must not be empty",
            ));
        }
        let routing_key = inline_or_env(
            "webhooks.target.routing_key",
            &name,
            self.routing_key,
            self.routing_key_env,
        )?;
        if format == Format::PagerDuty && routing_key.is_none() {
            return Err(invalid(
                "webhooks.target.routing_key",
                &name,
                "format pagerduty needs routing_key or routing_key_env",
            ));
        }
        let min_level = Level::parse(self.min_level.trim()).ok_or_else(|| {
            invalid(
                "webhooks.target.min_level",
                &name,
                "must be one of informational, low, medium, high, critical",
            )
        })?;
        let mut events = Vec::with_capacity(self.events.len());
        for event in &self.events {
            let parsed = EventKind::parse(event).ok_or_else(|| {
                invalid(
                    "webhooks.target.events",
                    &name,
                    format!("`{event}` is not one of open, update, acknowledge, resolve"),
                )
            })?;
            events.push(parsed);
        }
        if events.is_empty() {
            return Err(invalid(
                "webhooks.target.events",
                &name,
                "must name at least one event",
            ));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(invalid(
                "webhooks.target.timeout_secs",
                &name,
                "must be between 1 and 300",
            ));
        }
        if !(1..=1000).contains(&self.max_attempts) {
            return Err(invalid(
                "webhooks.target.max_attempts",
                &name,
                "must be between 1 and 1000",
            ));
        }
        if self.backoff_base_ms == 0 || self.backoff_base_ms > self.backoff_max_ms {
            return Err(invalid(
                "webhooks.target.backoff_base_ms",
                &name,
                "must be at least 1 and at most backoff_max_ms",
            ));
        }
        if self.backoff_max_ms > 24 * 3600 * 1000 {
            return Err(invalid(
                "webhooks.target.backoff_max_ms",
                &name,
                "must be at most one day",
            ));
        }
        Ok(WebhookTarget {
            name,
            url,
            format,
            secret,
            routing_key,
            min_level,
            rules: self.rules,
            events,
            timeout: Duration::from_secs(self.timeout_secs),
            max_attempts: self.max_attempts,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
        })
    }
}

impl WebhooksSection {
    /// Checks every target (names unique) and builds the domain form. Reads the environment
    /// variables named by `secret_env` and `routing_key_env`.
    pub fn validate(self) -> Result<WebhooksConfig, ConfigError> {
        if self.history_retention_secs == 0 {
            return Err(invalid(
                "webhooks.history_retention_secs",
                "",
                "must be greater than 0",
            ));
        }
        let mut targets: Vec<WebhookTarget> = Vec::with_capacity(self.target.len());
        for section in self.target {
            let target = section.validate()?;
            if targets.iter().any(|other| other.name == target.name) {
                return Err(invalid(
                    "webhooks.target.name",
                    &target.name,
                    "appears twice",
                ));
            }
            targets.push(target);
        }
        Ok(WebhooksConfig {
            history_retention: Duration::from_secs(self.history_retention_secs),
            targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebhooksConfig, String> {
        let section: WebhooksSection = toml::from_str(text).map_err(|error| error.to_string())?;
        section.validate().map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_and_validation() {
        let config =
            parse("[[target]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/x\"\n").expect("valid");
        let target = &config.targets[0];
        assert_eq!(target.format, Format::Json);
        assert_eq!(target.events, EventKind::ALL.to_vec());
        assert_eq!(target.secret, None);
        assert_eq!(target.max_attempts, 20);
        assert_eq!(target.backoff(1), Duration::from_secs(1));
        assert_eq!(target.backoff(3), Duration::from_secs(4));
        assert_eq!(target.backoff(40), Duration::from_secs(600));
        for (text, key) in [
            ("name = \"a b\"\nurl = \"http://x\"", "webhooks.target.name"),
            ("name = \"a\"\nurl = \"ftp://x\"", "webhooks.target.url"),
            (
                "name = \"a\"\nurl = \"http://x\"\nformat = \"teams\"",
                "webhooks.target.format",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nformat = \"pagerduty\"",
                "webhooks.target.routing_key",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nsecret_env = \"CAIRN_TEST_SURELY_UNSET_VAR\"",
                "webhooks.target.secret",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nsecret = \"k\"\nsecret_env = \"HOME\"",
                "webhooks.target.secret",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nevents = [\"close\"]",
                "webhooks.target.events",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nmin_level = \"severe\"",
                "webhooks.target.min_level",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nmax_attempts = 0",
                "webhooks.target.max_attempts",
            ),
            (
                "name = \"a\"\nurl = \"http://x\"\nbackoff_base_ms = 5000\nbackoff_max_ms = 10",
                "webhooks.target.backoff_base_ms",
            ),
        ] {
            let error = parse(&format!("[[target]]\n{text}\n")).expect_err(text);
            assert!(error.contains(key), "{text}: {error}");
        }
        let twice = parse(
            "[[target]]\nname = \"a\"\nurl = \"http://x\"\n[[target]]\nname = \"a\"\nurl = \"http://y\"\n",
        )
        .expect_err("duplicate");
        assert!(twice.contains("appears twice"), "{twice}");
        assert!(parse("[[target]]\nname = \"a\"\nurl = \"http://x\"\ncolour = 1\n").is_err());
    }
}
