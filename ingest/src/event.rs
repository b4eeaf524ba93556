//! The event model.
//!
//! An [`Event`] owns its raw frame as [`Bytes`] and points into it with [`Text::Span`]s instead of
//! holding one `String` per field. Values that do not exist verbatim in the frame (an RFC 5424
//! structured-data value with escapes, a JSON string with escapes, a number rendered as text) are
//! [`Text::Owned`].
//!
//! Invariants, upheld by every constructor in this crate:
//! - `raw` is valid UTF-8 (a frame that was not is converted lossily and flagged
//!   [`EventFlags::INVALID_UTF8`]);
//! - every [`Span`] lies inside `raw` and on `char` boundaries, so [`Event::text`] never fails.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// Appliance-wide, monotonic event sequence number (assigned at ingest, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in time as nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Converts to a `jiff::Timestamp` (saturating at jiff's range).
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(i128::from(self.0)).unwrap_or(if self.0 < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
    }

    /// Converts from a `jiff::Timestamp`, saturating to the `i64` nanosecond range.
    pub fn from_jiff(ts: jiff::Timestamp) -> Timestamp {
        let nanos = ts.as_nanosecond();
        Timestamp(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }))
    }

    /// RFC 3339 rendering in UTC with the precision needed (e.g. `2024-01-02T03:04:05.123Z`).
    pub fn to_rfc3339(self) -> String {
        self.to_jiff().to_string()
    }
}

/// Syslog severity (RFC 5424 §6.2.1), 0 = emergency … 7 = debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Severity {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
    Debug = 7,
}

impl Severity {
    /// All severities, index = numeric code.
    pub const ALL: [Severity; 8] = [
        Severity::Emergency,
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Informational,
        Severity::Debug,
    ];

    /// From the numeric code; `None` above 7.
    pub fn from_code(code: u8) -> Option<Severity> {
        Severity::ALL.get(usize::from(code)).copied()
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The keyword rsyslog and syslog-ng print (`emerg`, `alert`, `crit`, `err`, `warning`,
    /// `notice`, `info`, `debug`). This is what is indexed and shown.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Emergency => "emerg",
            Severity::Alert => "alert",
            Severity::Critical => "crit",
            Severity::Error => "err",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Informational => "info",
            Severity::Debug => "debug",
        }
    }

    /// Parses a keyword or number as senders write it (`err`, `error`, `warn`, `INFO`, `3`…).
    pub fn parse(text: &str) -> Option<Severity> {
        let trimmed = text.trim();
        if let Ok(code) = trimmed.parse::<u8>() {
            return Severity::from_code(code);
        }
        let severity = match trimmed.to_ascii_lowercase().as_str() {
            "emerg" | "emergency" | "panic" | "fatal" => Severity::Emergency,
            "alert" => Severity::Alert,
            "crit" | "critical" => Severity::Critical,
            "err" | "error" => Severity::Error,
            "warning" | "warn" => Severity::Warning,
            "notice" => Severity::Notice,
            "info" | "informational" | "information" => Severity::Informational,
            "debug" | "trace" => Severity::Debug,
            _ => return None,
        };
        Some(severity)
    }
}

/// Syslog facility code (RFC 5424 §6.2.1), 0 = kern … 23 = local7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(u8);

impl Facility {
    const NAMES: [&'static str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];

    /// From the numeric code; `None` above 23.
    pub fn from_code(code: u8) -> Option<Facility> {
        (code < 24).then_some(Facility(code))
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The keyword (`kern`, `auth`, `local0`…).
    pub fn name(self) -> &'static str {
        Facility::NAMES[usize::from(self.0)]
    }

    /// Parses a keyword or number.
    pub fn parse(text: &str) -> Option<Facility> {
        let trimmed = text.trim();
        if let Ok(code) = trimmed.parse::<u8>() {
            return Facility::from_code(code);
        }
        let lower = trimmed.to_ascii_lowercase();
        Facility::NAMES
            .iter()
            .position(|name| *name == lower)
            .and_then(|index| u8::try_from(index).ok())
            .map(Facility)
    }
}

/// A byte range into [`Event::raw`]. Always inside `raw` and on `char` boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span from `usize` offsets. Frames are capped far below 4 GiB, so offsets fit.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A piece of text of an event: a span into the raw frame, or an owned value when the text does
/// not appear verbatim in the frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Text {
    Span(Span),
    Owned(Box<str>),
}

impl Text {
    /// An owned text.
    pub fn owned(value: impl Into<Box<str>>) -> Text {
        Text::Owned(value.into())
    }

    /// Resolves against the event's raw frame. Returns `""` for a span outside `raw` (which the
    /// invariants rule out) rather than panicking.
    pub fn resolve<'a>(&'a self, raw: &'a str) -> &'a str {
        match self {
            Text::Span(span) => raw.get(span.range()).unwrap_or(""),
            Text::Owned(value) => value,
        }
    }
}

/// A typed field value (from JSON bodies, NDJSON keys, key=value extraction).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(Text),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// One named field of an event. Nested JSON objects are flattened with dotted names
/// (`{"host":{"name":"a"}}` → `host.name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Text,
    pub value: FieldValue,
}

/// One RFC 5424 SD-ELEMENT: `[id name="value" …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: Text,
    pub params: Vec<(Text, Text)>,
}

/// Which parser produced the event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Not parsed: the whole frame is the message (see [`EventFlags::PARSE_ERROR`]).
    #[default]
    Unparsed,
    Rfc5424,
    Rfc3164,
    /// A JSON object line (NDJSON over HTTP, or a syslog line that is only JSON).
    Json,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Unparsed => "unparsed",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Json => "json",
        }
    }
}

/// Where an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    SyslogUdp,
    SyslogTcp,
    HttpNdjson,
    /// `cairn replay` and other file input.
    File,
    /// Elasticsearch-compatible `_bulk` ingest.
    HttpElastic,
    /// Splunk HTTP Event Collector ingest (`/services/collector/…`).
    HttpHec,
    /// Syslog over TLS (RFC 5425).
    SyslogTls,
    /// RELP (rsyslog's reliable event logging protocol).
    Relp,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::SyslogUdp => "syslog_udp",
            Source::SyslogTcp => "syslog_tcp",
            Source::HttpNdjson => "http_ndjson",
            Source::File => "file",
            Source::HttpElastic => "http_elastic",
            Source::HttpHec => "http_hec",
            Source::SyslogTls => "syslog_tls",
            Source::Relp => "relp",
        }
    }
}

/// Quality flags of an event, indexed so that analysts can find problem input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventFlags(u8);

impl EventFlags {
    /// The frame did not parse as any syslog format; the raw text is the message.
    pub const PARSE_ERROR: EventFlags = EventFlags(1);
    /// The frame was longer than `max_frame_bytes` and was cut.
    pub const TRUNCATED: EventFlags = EventFlags(1 << 1);
    /// The frame was not valid UTF-8 and was converted lossily.
    pub const INVALID_UTF8: EventFlags = EventFlags(1 << 2);
    /// The timestamp is the receive time because the frame had none (or none that parsed).
    pub const TS_FROM_RECEIVE: EventFlags = EventFlags(1 << 3);
    /// A JSON body exceeded a field-count or depth limit; the excess was not extracted.
    pub const FIELDS_TRUNCATED: EventFlags = EventFlags(1 << 4);

    pub const fn empty() -> EventFlags {
        EventFlags(0)
    }

    pub fn contains(self, other: EventFlags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn insert(&mut self, other: EventFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags in `other`.
    pub fn remove(&mut self, other: EventFlags) {
        self.0 &= !other.0;
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    /// Names of the set flags (`parse_error`, `truncated`, …), as indexed.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (EventFlags::PARSE_ERROR, "parse_error"),
            (EventFlags::TRUNCATED, "truncated"),
            (EventFlags::INVALID_UTF8, "invalid_utf8"),
            (EventFlags::TS_FROM_RECEIVE, "ts_from_receive"),
            (EventFlags::FIELDS_TRUNCATED, "fields_truncated"),
        ]
        .into_iter()
        .filter(move |(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
    }
}

impl std::ops::BitOr for EventFlags {
    type Output = EventFlags;
    fn bitor(self, other: EventFlags) -> EventFlags {
        EventFlags(self.0 | other.0)
    }
}

/// One log event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: Seq,
    pub received_at: Timestamp,
    /// Event time: from the frame when it has one, else `received_at` (and
    /// [`EventFlags::TS_FROM_RECEIVE`] is set).
    pub ts: Timestamp,
    pub severity: Option<Severity>,
    pub facility: Option<Facility>,
    pub host: Option<Text>,
    pub app: Option<Text>,
    pub procid: Option<Text>,
    pub msgid: Option<Text>,
    pub message: Text,
    pub structured_data: Vec<SdElement>,
    pub fields: Vec<Field>,
    /// The sender's address (UDP/TCP peer, HTTP client).
    pub peer: Option<SocketAddr>,
    /// Ids of the signatures (detection rules) this event matched, set by the pipeline's matcher.
    /// Shared strings: tagging an event costs a refcount, not an allocation per match.
    pub signatures: Vec<std::sync::Arc<str>>,
    /// Titles of those signatures, same order (indexed word by word as `rule`).
    pub signature_titles: Vec<std::sync::Arc<str>>,
    pub source: Source,
    pub format: Format,
    pub flags: EventFlags,
    /// The frame as received (lossily converted if it was not UTF-8). Spans point into it.
    pub raw: Bytes,
}

impl Event {
    /// An unparsed event whose message is the whole frame. Used as the parsers' fallback and as a
    /// starting point for their results.
    pub fn unparsed(raw: Bytes, meta: &FrameMeta) -> Event {
        let (raw, utf8_flag) = ensure_utf8(raw);
        let message = Text::Span(Span::new(0, raw.len()));
        Event {
            seq: meta.seq,
            received_at: meta.received_at,
            ts: meta.received_at,
            severity: None,
            facility: None,
            host: None,
            app: None,
            procid: None,
            msgid: None,
            message,
            structured_data: Vec::new(),
            fields: Vec::new(),
            peer: meta.peer,
            signatures: Vec::new(),
            signature_titles: Vec::new(),
            source: meta.source,
            format: Format::Unparsed,
            flags: meta.flags | utf8_flag | EventFlags::TS_FROM_RECEIVE,
            raw,
        }
    }

    /// The raw frame as text (always valid UTF-8 by the invariants).
    pub fn raw_str(&self) -> &str {
        std::str::from_utf8(&self.raw).unwrap_or("")
    }

    /// Resolves a [`Text`] of this event. Validates only the span's bytes as UTF-8 (not the
    /// whole frame: this runs for every field a matcher or indexer reads); `""` for a span
    /// outside `raw` or off `char` boundaries, which the invariants rule out.
    pub fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text {
            Text::Span(span) => self
                .raw
                .get(span.range())
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or(""),
            Text::Owned(value) => value,
        }
    }

    pub fn host_str(&self) -> Option<&str> {
        self.host.as_ref().map(|text| self.text(text))
    }

    pub fn app_str(&self) -> Option<&str> {
        self.app.as_ref().map(|text| self.text(text))
    }

    pub fn procid_str(&self) -> Option<&str> {
        self.procid.as_ref().map(|text| self.text(text))
    }

    pub fn msgid_str(&self) -> Option<&str> {
        self.msgid.as_ref().map(|text| self.text(text))
    }

    pub fn message_str(&self) -> &str {
        self.text(&self.message)
    }

    /// The first field of that name.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields
            .iter()
            .find(|field| self.text(&field.name) == name)
            .map(|field| &field.value)
    }
}

/// What the listener knows about a frame before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub seq: Seq,
    pub received_at: Timestamp,
    pub peer: Option<SocketAddr>,
    pub source: Source,
    /// Flags the framer already knows (e.g. [`EventFlags::TRUNCATED`]).
    pub flags: EventFlags,
}

/// Makes `raw` valid UTF-8, converting lossily when it is not.
pub fn ensure_utf8(raw: Bytes) -> (Bytes, EventFlags) {
    if std::str::from_utf8(&raw).is_ok() {
        return (raw, EventFlags::empty());
    }
    let lossy = String::from_utf8_lossy(&raw).into_owned();
    (Bytes::from(lossy), EventFlags::INVALID_UTF8)
}

/// Events crossing a queue together.
pub type EventBatch = Vec<Event>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_round_trip() {
        for severity in Severity::ALL {
            assert_eq!(Severity::parse(severity.name()), Some(severity));
            assert_eq!(Severity::from_code(severity.code()), Some(severity));
        }
        assert_eq!(Severity::parse("WARN"), Some(Severity::Warning));
        assert_eq!(Severity::parse("8"), None);
    }

    #[test]
    fn facility_names_round_trip() {
        for code in 0..24 {
            let facility = Facility::from_code(code).expect("valid code");
            assert_eq!(Facility::parse(facility.name()), Some(facility));
        }
        assert_eq!(Facility::from_code(24), None);
    }

    #[test]
    fn invalid_utf8_is_converted_and_flagged() {
        let meta = FrameMeta {
            seq: Seq(1),
            received_at: Timestamp(5),
            peer: None,
            source: Source::SyslogUdp,
            flags: EventFlags::empty(),
        };
        let event = Event::unparsed(Bytes::from_static(b"bad \xff byte"), &meta);
        assert!(event.flags.contains(EventFlags::INVALID_UTF8));
        assert!(event.flags.contains(EventFlags::TS_FROM_RECEIVE));
        assert_eq!(event.message_str(), "bad \u{fffd} byte");
    }

    #[test]
    fn flag_names_list_only_set_flags() {
        let flags = EventFlags::PARSE_ERROR | EventFlags::TRUNCATED;
        assert_eq!(
            flags.names().collect::<Vec<_>>(),
            ["parse_error", "truncated"]
        );
        assert!(!EventFlags::empty().contains(EventFlags::empty()));
    }
}
