//! API authentication, authorisation and per-token rate limits.
//!
//! # Tokens
//! Operators configure API tokens in `[[auth.token]]` (see `deploy/cairn.toml`), each with a
//! name, a [`Role`] and the **SHA-256 of the token** (lowercase hex): the token itself is never
//! stored. `cairn token new` prints a fresh token (`cairn_` + 64 hex digits, 256 random bits)
//! and its hash; `cairn token hash` hashes an existing one read from stdin. A high-entropy
//! token needs no slow password hash: SHA-256 is a one-way function and the token cannot be
//! guessed.
//!
//! A request presents its token as `Authorization: Bearer <token>` (also accepted:
//! `ApiKey <token>`, as the Elasticsearch clients send it). The presented token is hashed and
//! compared with every configured hash in constant time (no early exit), so response timing
//! says nothing about how close a guess was.
//!
//! # Roles
//! `ingest` (send events), `read` (search, incidents, tail, rules, stats, metrics) and
//! `admin` (everything, including what changes state: incident ack/resolve, rule reload).
//! `admin` grants `ingest` and `read`; `ingest` and `read` are disjoint, so a shipper's token
//! cannot read the logs and a dashboard's token cannot inject events.
//!
//! # What each route requires
//! Every route declares its [`Access`] in the router's table (`http/mod.rs`); the
//! [`authorize`] middleware wraps the whole router and looks the matched route up in that
//! table. A route missing from the table fails closed (`admin` only); an unknown path needs a
//! valid token before it is told 404. `/healthz`, `/readyz` and `/api/v1/openapi.json` are
//! open (probes and tooling carry no token; none of them reveals data).
//!
//! # Answers
//! - no or unusable `Authorization` → 401, `WWW-Authenticate: Bearer realm="cairn"`;
//! - unknown token → 401, `WWW-Authenticate: Bearer realm="cairn", error="invalid_token"`;
//! - role too small → 403;
//! - over the token's rate → 429 with `Retry-After` (token bucket: `rate_per_sec` refill,
//!   `burst` capacity; checked after the role, so refused requests do not spend it).
//!
//! Each is counted (`auth_failed{reason}`, `rate_limited{token}`).
//!
//! # Without tokens
//! With no `[[auth.token]]` at all, authentication is off and Cairn refuses to serve the API on
//! anything but a loopback address (see `config.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ApiError;

/// What a token may do. `Admin` grants the two others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send events (`POST /api/v1/ingest`, `/_bulk`).
    Ingest,
    /// Read events, incidents, rules, stats and metrics; follow the live tail.
    Read,
    /// Everything, including changing state (incident ack/resolve, rule reload).
    Admin,
}

impl Role {
    /// Every role, smallest first.
    pub const ALL: [Role; 3] = [Role::Ingest, Role::Read, Role::Admin];

    /// Parses `ingest`, `read` or `admin`.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == text)
    }

    /// The name used in the config and in OpenAPI security scopes.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    /// True when a token of this role may do what `required` allows.
    pub fn grants(self, required: Role) -> bool {
        self == required || self == Role::Admin
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (`/healthz`, `/readyz`, the OpenAPI document).
    Open,
    /// A token whose role grants this one.
    Role(Role),
    /// The handler authenticates the request with a scheme of its own (Splunk HEC tokens);
    /// the bearer-token middleware lets it through.
    Handler,
}

/// A per-token request rate: a bucket of `burst` requests refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_sec: f64,
    pub burst: f64,
}

/// One configured token, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Shown in logs and metrics, never the token.
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// `None`: unlimited.
    pub rate: Option<RateLimit>,
}

/// The validated `[auth]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// Empty: authentication is off (and the API is served on loopback only).
    pub tokens: Vec<TokenConfig>,
}

impl AuthConfig {
    /// True when requests must carry a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// Length of a token's random part, bytes (256 bits).
const TOKEN_RANDOM_BYTES: usize = 32;
/// Prefix of generated tokens: lets secret scanners and people recognise them.
pub const TOKEN_PREFIX: &str = "cairn_";

/// A fresh random token: [`TOKEN_PREFIX`] followed by 64 lowercase hex digits.
///
/// # Errors
/// When the operating system's random source fails.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut random = [0u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut random)?;
    Ok(format!("{TOKEN_PREFIX}{}", to_hex(&random)))
}

/// SHA-256 of a token as stored in the config (lowercase hex).
pub fn token_sha256_hex(token: &str) -> String {
    to_hex(&Sha256::digest(token.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parses 64 hex digits (either case) into a SHA-256 digest.
pub fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(digest)
}

/// Compares two digests without an early exit.
fn digests_equal(left: &[u8; 32], right: &[u8; 32]) -> bool {
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (left, right)| acc | (left ^ right));
    std::hint::black_box(difference) == 0
}

/// Why a request was refused before reaching its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header, or not a scheme Cairn accepts.
    Missing,
    /// A token that no configured hash matches.
    Invalid,
    /// A valid token whose role is too small for the route.
    Forbidden,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 3] = [
        AuthFailure::Missing,
        AuthFailure::Invalid,
        AuthFailure::Forbidden,
    ];

    /// The `reason` label of `auth_failed`.
    pub fn name(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Forbidden => "forbidden",
        }
    }
}

/// One configured token at run time: its identity and its bucket.
#[derive(Debug)]
struct TokenState {
    config: TokenConfig,
    /// Requests answered 429.
    rate_limited: AtomicU64,
    /// Locked once per request of this token (never per event).
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    available: f64,
    refilled_at: Instant,
}

impl TokenState {
    /// Takes one request from the bucket; `Err(wait)` when it is empty.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.config.rate else {
            return Ok(());
        };
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.available = (bucket.available + elapsed * rate.per_sec).min(rate.burst);
        bucket.refilled_at = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.available;
        Err(Duration::from_secs_f64(missing / rate.per_sec))
    }
}

/// The counters of authentication, for `/api/v1/stats` and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct AuthStatsSnapshot {
    /// True when requests must carry a token.
    pub enabled: bool,
    /// Requests refused, by reason (`missing`, `invalid`, `forbidden`).
    pub failed: std::collections::BTreeMap<&'static str, u64>,
    /// Requests answered 429, by token name.
    pub rate_limited: std::collections::BTreeMap<String, u64>,
}

/// Checks requests against the configured tokens and the route table. Shared by all requests.
#[derive(Debug)]
pub struct Guard {
    tokens: Vec<TokenState>,
    /// (method, route path) → access, from the router's table.
    routes: HashMap<(Method, String), Access>,
    failed: [AtomicU64; 3],
}

impl Guard {
    /// A guard over `config`'s tokens for the routes of `table` ((method, path, access)).
    pub fn new<'a>(
        config: &AuthConfig,
        table: impl IntoIterator<Item = (&'a Method, &'a str, Access)>,
    ) -> Guard {
        let now = Instant::now();
        Guard {
            tokens: config
                .tokens
                .iter()
                .map(|token| TokenState {
                    config: token.clone(),
                    rate_limited: AtomicU64::new(0),
                    bucket: Mutex::new(Bucket {
                        available: token.rate.map_or(0.0, |rate| rate.burst),
                        refilled_at: now,
                    }),
                })
                .collect(),
            routes: table
                .into_iter()
                .map(|(method, path, access)| ((method.clone(), path.to_string()), access))
                .collect(),
            failed: Default::default(),
        }
    }

    /// True when requests must carry a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// What a request to `path` (the router's pattern, `None` for no route) needs.
    fn access(&self, method: &Method, path: Option<&str>) -> Required {
        let Some(path) = path else {
            // No such route: a valid token first, then 404 (paths are not probed anonymously).
            return Required::AnyToken;
        };
        let lookup_method = if *method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        match self.routes.get(&(lookup_method, path.to_string())) {
            Some(Access::Open | Access::Handler) => Required::Nothing,
            Some(Access::Role(role)) => Required::Role(*role),
            // A route whose method is not served answers 405 to a valid token.
            None if self.routes.keys().any(|(_, known)| known == path) => Required::AnyToken,
            // A route that is not in the table: fail closed.
            None => Required::Role(Role::Admin),
        }
    }

    /// The configured token `presented` is, if any. Compares against every hash.
    fn identify(&self, presented: &str) -> Option<&TokenState> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.tokens {
            if digests_equal(&digest, &token.config.sha256) && found.is_none() {
                found = Some(token);
            }
        }
        found
    }

    /// Decides on a request: `Ok` to pass it on.
    fn check(
        &self,
        method: &Method,
        path: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let required = self.access(method, path);
        if required == Required::Nothing {
            return Ok(());
        }
        let Some(presented) = presented_token(headers) else {
            return Err(self.fail(AuthFailure::Missing));
        };
        let Some(token) = self.identify(presented) else {
            return Err(self.fail(AuthFailure::Invalid));
        };
        if let Required::Role(role) = required
            && !token.config.role.grants(role)
        {
            self.count(AuthFailure::Forbidden);
            return Err(ApiError::Forbidden(format!(
                "token `{}` has role {}; this route needs {}",
                token.config.name,
                token.config.role.name(),
                role.name()
            )));
        }
        token.take(Instant::now()).map_err(|wait| {
            token.rate_limited.fetch_add(1, Ordering::Relaxed);
            ApiError::RateLimited {
                // Whole seconds, rounded up: `Retry-After` has no fractions.
                retry_after: Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64),
                token: token.config.name.clone(),
            }
        })
    }

    fn count(&self, failure: AuthFailure) {
        let slot = AuthFailure::ALL
            .iter()
            .position(|known| *known == failure)
            .unwrap_or(0);
        self.failed[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, failure: AuthFailure) -> ApiError {
        self.count(failure);
        match failure {
            AuthFailure::Missing => ApiError::Unauthorized {
                message: "this route needs an API token: send `Authorization: Bearer <token>`"
                    .to_string(),
                invalid_token: false,
            },
            AuthFailure::Invalid | AuthFailure::Forbidden => ApiError::Unauthorized {
                message: "the API token is not valid".to_string(),
                invalid_token: true,
            },
        }
    }

    /// The counters.
    pub fn snapshot(&self) -> AuthStatsSnapshot {
        AuthStatsSnapshot {
            enabled: self.enabled(),
            failed: AuthFailure::ALL
                .iter()
                .zip(&self.failed)
                .map(|(failure, count)| (failure.name(), count.load(Ordering::Relaxed)))
                .collect(),
            rate_limited: self
                .tokens
                .iter()
                .map(|token| {
                    (
                        token.config.name.clone(),
                        token.rate_limited.load(Ordering::Relaxed),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Required {
    Nothing,
    AnyToken,
    Role(Role),
}

/// The token of `Authorization: Bearer <token>` or `Authorization: ApiKey <token>`.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let accepted = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey");
    let token = token.trim();
    (accepted && !token.is_empty()).then_some(token)
}

/// The middleware over the whole router: refuses what the [`Guard`] refuses.
pub async fn authorize(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match guard.check(request.method(), path, request.headers()) {
        Ok(()) => next.run(request).await,
        // In the shape of the API asked (Elasticsearch's clients need their own).
        Err(error) => super::error_for_path(request.uri().path(), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(rate: Option<RateLimit>) -> (Guard, String) {
        let token = new_token().expect("random");
        let config = AuthConfig {
            tokens: vec![TokenConfig {
                name: "reader".to_string(),
                role: Role::Read,
                sha256: parse_sha256_hex(&token_sha256_hex(&token)).expect("hex"),
                rate,
            }],
        };
        let table = [
            (Method::GET, "/api/v1/search", Access::Role(Role::Read)),
            (Method::POST, "/api/v1/ingest", Access::Role(Role::Ingest)),
            (Method::GET, "/healthz", Access::Open),
        ];
        let guard = Guard::new(
            &config,
            table
                .iter()
                .map(|(method, path, access)| (method, *path, *access)),
        );
        (guard, token)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        headers
    }

    #[test]
    fn roles_grant_themselves_and_admin_grants_all() {
        assert!(Role::Admin.grants(Role::Read));
        assert!(Role::Admin.grants(Role::Ingest));
        assert!(Role::Read.grants(Role::Read));
        assert!(!Role::Read.grants(Role::Ingest));
        assert!(!Role::Ingest.grants(Role::Read));
        assert!(!Role::Read.grants(Role::Admin));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
    }

    #[test]
    fn tokens_are_random_and_hash_round_trips() {
        let first = new_token().expect("random");
        let second = new_token().expect("random");
        assert_ne!(first, second);
        assert!(first.starts_with(TOKEN_PREFIX) && first.len() == TOKEN_PREFIX.len() + 64);
        let hex = token_sha256_hex("abc");
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            parse_sha256_hex(&hex.to_uppercase()),
            parse_sha256_hex(&hex)
        );
        assert!(parse_sha256_hex("xyz").is_none());
        assert!(parse_sha256_hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn guard_decides_by_token_and_route() {
        let (guard, token) = guard(None);
        let search = Some("/api/v1/search");
        let none = HeaderMap::new();
        assert!(matches!(
            guard.check(&Method::GET, search, &none),
            Err(ApiError::Unauthorized {
                invalid_token: false,
                ..
            })
        ));
        assert!(matches!(
            guard.check(&Method::GET, search, &bearer("cairn_wrong")),
            Err(ApiError::Unauthorized {
                invalid_token: true,
                ..
            })
        ));
        assert!(guard.check(&Method::GET, search, &bearer(&token)).is_ok());
        assert!(guard.check(&Method::HEAD, search, &bearer(&token)).is_ok());
        assert!(matches!(
            guard.check(&Method::POST, Some("/api/v1/ingest"), &bearer(&token)),
            Err(ApiError::Forbidden(_))
        ));
        assert!(guard.check(&Method::GET, Some("/healthz"), &none).is_ok());
        // Not in the table: admin only.
        assert!(matches!(
            guard.check(&Method::GET, Some("/forgotten"), &bearer(&token)),
            Err(ApiError::Forbidden(_))
        ));
        // Unknown path: any valid token, then the router's 404.
        assert!(guard.check(&Method::GET, None, &bearer(&token)).is_ok());
        assert!(guard.check(&Method::GET, None, &none).is_err());
        let mut api_key = HeaderMap::new();
        api_key.insert(
            header::AUTHORIZATION,
            format!("ApiKey {token}").parse().expect("header"),
        );
        assert!(guard.check(&Method::GET, search, &api_key).is_ok());
        let snapshot = guard.snapshot();
        assert_eq!(snapshot.failed["missing"], 2);
        assert_eq!(snapshot.failed["invalid"], 1);
        assert_eq!(snapshot.failed["forbidden"], 2);
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let (guard, _) = guard(Some(RateLimit {
            per_sec: 10.0,
            burst: 3.0,
        }));
        let token = &guard.tokens[0];
        let start = Instant::now();
        for _ in 0..3 {
            assert!(token.take(start).is_ok());
        }
        let wait = token.take(start).expect_err("empty");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        assert!(token.take(start + Duration::from_millis(100)).is_ok());
        assert!(token.take(start + Duration::from_millis(100)).is_err());
    }
}
