//! RFC 5424 parsing.
//!
//! [`parse_rfc5424_strict`] checks the full ABNF (PRI 0–191, VERSION 1–999, RFC 3339 timestamp
//! with at most 6 fraction digits and an offset, header field lengths and US-ASCII charset,
//! NILVALUEs, structured data with `\"` `\\` `\]` escapes and unique SD-IDs, BOM in MSG). The
//! lenient mode used by [`super::parse_syslog`] takes the same path but keeps going after an
//! error, so a frame that starts like RFC 5424 still yields its best fields.

use std::borrow::Cow;
use std::fmt;

use super::timestamp::parse_rfc3339;
use crate::event::Timestamp;

/// A parsed RFC 5424 message, borrowing from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rfc5424Message<'a> {
    pub priority: u8,
    pub version: u16,
    /// `None` for the NILVALUE (or, in lenient mode, an unparseable timestamp).
    pub timestamp: Option<Timestamp>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    pub structured_data: Vec<SdElementRef<'a>>,
    /// The MSG part with a leading UTF-8 BOM removed; `None` when absent or empty.
    pub message: Option<&'a str>,
}

/// One SD-ELEMENT of an [`Rfc5424Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElementRef<'a> {
    pub id: &'a str,
    /// `(name, value)`; the value is unescaped (borrowed when it had no escapes).
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

/// Which part of an RFC 5424 message is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rfc5424ErrorKind {
    InvalidUtf8,
    Priority,
    Version,
    Timestamp,
    Hostname,
    AppName,
    ProcId,
    MsgId,
    StructuredData,
    DuplicateSdId,
    /// A separator space is missing (or something follows the structured data directly).
    ExpectedSpace,
}

/// Why a frame is not valid RFC 5424, and the byte offset where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rfc5424Error {
    pub kind: Rfc5424ErrorKind,
    pub offset: usize,
}

impl fmt::Display for Rfc5424Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Rfc5424ErrorKind::InvalidUtf8 => "invalid utf-8",
            Rfc5424ErrorKind::Priority => "expected <PRI> with a value 0-191",
            Rfc5424ErrorKind::Version => "expected a version 1-999",
            Rfc5424ErrorKind::Timestamp => "expected an rfc 3339 timestamp or -",
            Rfc5424ErrorKind::Hostname => "expected a hostname (1-255 printable us-ascii) or -",
            Rfc5424ErrorKind::AppName => "expected an app-name (1-48 printable us-ascii) or -",
            Rfc5424ErrorKind::ProcId => "expected a procid (1-128 printable us-ascii) or -",
            Rfc5424ErrorKind::MsgId => "expected a msgid (1-32 printable us-ascii) or -",
            Rfc5424ErrorKind::StructuredData => "invalid structured data",
            Rfc5424ErrorKind::DuplicateSdId => "duplicate structured data element id",
            Rfc5424ErrorKind::ExpectedSpace => "expected a space",
        };
        write!(f, "{what} at byte {}", self.offset)
    }
}

impl std::error::Error for Rfc5424Error {}

/// Parses one frame as strict RFC 5424.
///
/// # Errors
/// [`Rfc5424Error`] with the first violation of the RFC 5424 grammar and its byte offset.
pub fn parse_rfc5424_strict(raw: &[u8]) -> Result<Rfc5424Message<'_>, Rfc5424Error> {
    let text = std::str::from_utf8(raw).map_err(|error| Rfc5424Error {
        kind: Rfc5424ErrorKind::InvalidUtf8,
        offset: error.valid_up_to(),
    })?;
    let (message, error) = parse(text, true);
    match (message, error) {
        (Some(message), None) => Ok(message),
        (_, Some(error)) => Err(error),
        (None, None) => Err(Rfc5424Error {
            kind: Rfc5424ErrorKind::Priority,
            offset: 0,
        }),
    }
}

/// `<PRI>` at the start; returns (value, bytes used). Lenient about nothing: 1–3 digits, ≤ 191.
pub(crate) fn parse_pri(bytes: &[u8]) -> Option<(u8, usize)> {
    if bytes.first() != Some(&b'<') {
        return None;
    }
    let mut value: u32 = 0;
    let mut index = 1;
    while let Some(byte) = bytes.get(index) {
        if !byte.is_ascii_digit() {
            break;
        }
        if index > 3 {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
        index += 1;
    }
    if index == 1 || bytes.get(index) != Some(&b'>') || value > 191 {
        return None;
    }
    // Leading zeros are not allowed (`<00>`, `<01>`), except `<0>` itself.
    if index > 2 && bytes.get(1) == Some(&b'0') {
        return None;
    }
    Some((u8::try_from(value).ok()?, index + 1))
}

/// True if the frame starts like RFC 5424: `<PRI>` then a version digit and a space.
pub(crate) fn looks_like_rfc5424(bytes: &[u8]) -> bool {
    let Some((_, used)) = parse_pri(bytes) else {
        return false;
    };
    let mut index = used;
    while bytes.get(index).is_some_and(u8::is_ascii_digit) {
        index += 1;
    }
    index > used && bytes.get(index) == Some(&b' ')
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    index: usize,
    strict: bool,
    error: Option<Rfc5424Error>,
}

impl<'a> Cursor<'a> {
    /// Records the first error; in strict mode the caller stops.
    fn fail(&mut self, kind: Rfc5424ErrorKind, offset: usize) {
        if self.error.is_none() {
            self.error = Some(Rfc5424Error { kind, offset });
        }
    }

    fn failed_strict(&self) -> bool {
        self.strict && self.error.is_some()
    }

    /// The bytes up to the next space (or the end).
    fn token(&mut self) -> (usize, usize) {
        let start = self.index;
        let end = memchr::memchr(b' ', self.bytes.get(start..).unwrap_or_default())
            .map_or(self.bytes.len(), |position| start + position);
        self.index = end;
        (start, end)
    }

    fn space(&mut self) -> bool {
        if self.bytes.get(self.index) == Some(&b' ') {
            self.index += 1;
            true
        } else {
            self.fail(Rfc5424ErrorKind::ExpectedSpace, self.index);
            false
        }
    }

    fn str(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or("")
    }

    /// A header field: NILVALUE or 1..=max printable US-ASCII.
    fn header_field(&mut self, max: usize, kind: Rfc5424ErrorKind) -> Option<&'a str> {
        let (start, end) = self.token();
        let field = self.bytes.get(start..end).unwrap_or_default();
        if field == b"-" {
            return None;
        }
        let valid = !field.is_empty()
            && field.len() <= max
            && field.iter().all(|byte| (33..=126).contains(byte));
        if !valid {
            self.fail(kind, start);
            if self.strict || field.is_empty() {
                return None;
            }
        }
        Some(self.str(start, end))
    }
}

fn is_sd_name_byte(byte: u8) -> bool {
    (33..=126).contains(&byte) && byte != b'=' && byte != b']' && byte != b'"'
}

/// Parses the message; returns what it could and the first error. In strict mode the message is
/// `None` when there is an error.
pub(crate) fn parse(
    text: &str,
    strict: bool,
) -> (Option<Rfc5424Message<'_>>, Option<Rfc5424Error>) {
    let bytes = text.as_bytes();
    let Some((priority, used)) = parse_pri(bytes) else {
        return (
            None,
            Some(Rfc5424Error {
                kind: Rfc5424ErrorKind::Priority,
                offset: 0,
            }),
        );
    };
    let mut cursor = Cursor {
        text,
        bytes,
        index: used,
        strict,
        error: None,
    };
    let mut message = Rfc5424Message {
        priority,
        ..Rfc5424Message::default()
    };

    // VERSION
    let version_start = cursor.index;
    let mut version: u32 = 0;
    while let Some(byte) = bytes.get(cursor.index).filter(|byte| byte.is_ascii_digit()) {
        // Saturating: a long run of digits is refused below, but must not overflow first.
        version = version
            .saturating_mul(10)
            .saturating_add(u32::from(byte - b'0'));
        cursor.index += 1;
    }
    let digits = cursor.index - version_start;
    if digits == 0 || digits > 3 || bytes.get(version_start) == Some(&b'0') {
        return (
            None,
            Some(Rfc5424Error {
                kind: Rfc5424ErrorKind::Version,
                offset: version_start,
            }),
        );
    }
    message.version = u16::try_from(version).unwrap_or(0);
    if !cursor.space() {
        return (None, cursor.error);
    }

    // TIMESTAMP
    let (start, end) = cursor.token();
    let token = bytes.get(start..end).unwrap_or_default();
    if token != b"-" {
        match parse_rfc3339(token, true) {
            Some((parsed, consumed)) if consumed == token.len() => {
                message.timestamp = parsed.to_timestamp(&jiff::tz::TimeZone::UTC);
            }
            _ => {
                cursor.fail(Rfc5424ErrorKind::Timestamp, start);
                if strict {
                    return (None, cursor.error);
                }
                message.timestamp = parse_rfc3339(token, false)
                    .and_then(|(parsed, _)| parsed.to_timestamp(&jiff::tz::TimeZone::UTC));
            }
        }
    }

    let fields = [
        (255, Rfc5424ErrorKind::Hostname),
        (48, Rfc5424ErrorKind::AppName),
        (128, Rfc5424ErrorKind::ProcId),
        (32, Rfc5424ErrorKind::MsgId),
    ];
    for (max, kind) in fields {
        if !cursor.space() {
            return finish(cursor, message);
        }
        let value = cursor.header_field(max, kind);
        if cursor.failed_strict() {
            return (None, cursor.error);
        }
        match kind {
            Rfc5424ErrorKind::Hostname => message.hostname = value,
            Rfc5424ErrorKind::AppName => message.app_name = value,
            Rfc5424ErrorKind::ProcId => message.procid = value,
            _ => message.msgid = value,
        }
    }

    // STRUCTURED-DATA
    if !cursor.space() {
        return finish(cursor, message);
    }
    let sd_start = cursor.index;
    match bytes.get(sd_start) {
        Some(b'-') => cursor.index += 1,
        Some(b'[') => {
            if !structured_data(&mut cursor, &mut message.structured_data) {
                if strict {
                    return (None, cursor.error);
                }
                // Lenient: the rest, from the structured data on, is the message.
                message.structured_data.clear();
                message.message = non_empty(cursor.str(sd_start, bytes.len()));
                return (Some(message), cursor.error);
            }
        }
        _ => {
            cursor.fail(Rfc5424ErrorKind::StructuredData, sd_start);
            if strict {
                return (None, cursor.error);
            }
            message.message = non_empty(cursor.str(sd_start, bytes.len()));
            return (Some(message), cursor.error);
        }
    }

    // MSG
    match bytes.get(cursor.index) {
        None => {}
        Some(b' ') => {
            let rest = cursor.str(cursor.index + 1, bytes.len());
            message.message = non_empty(rest.strip_prefix('\u{feff}').unwrap_or(rest));
        }
        Some(_) => {
            cursor.fail(Rfc5424ErrorKind::ExpectedSpace, cursor.index);
            if strict {
                return (None, cursor.error);
            }
            message.message = non_empty(cursor.str(cursor.index, bytes.len()));
        }
    }
    (Some(message), cursor.error)
}

fn finish<'a>(
    cursor: Cursor<'a>,
    message: Rfc5424Message<'a>,
) -> (Option<Rfc5424Message<'a>>, Option<Rfc5424Error>) {
    if cursor.strict {
        (None, cursor.error)
    } else {
        (Some(message), cursor.error)
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// One or more SD-ELEMENTs at the cursor. `false` on a malformed element (error recorded).
fn structured_data<'a>(cursor: &mut Cursor<'a>, out: &mut Vec<SdElementRef<'a>>) -> bool {
    let bytes = cursor.bytes;
    while bytes.get(cursor.index) == Some(&b'[') {
        cursor.index += 1;
        let id_start = cursor.index;
        while bytes
            .get(cursor.index)
            .is_some_and(|byte| is_sd_name_byte(*byte))
        {
            cursor.index += 1;
        }
        let id_len = cursor.index - id_start;
        if id_len == 0 || id_len > 32 {
            cursor.fail(Rfc5424ErrorKind::StructuredData, id_start);
            return false;
        }
        let id = cursor.str(id_start, cursor.index);
        if out.iter().any(|element| element.id == id) {
            cursor.fail(Rfc5424ErrorKind::DuplicateSdId, id_start);
            if cursor.strict {
                return false;
            }
        }
        let mut params = Vec::new();
        loop {
            match bytes.get(cursor.index) {
                Some(b']') => {
                    cursor.index += 1;
                    break;
                }
                Some(b' ') => {
                    cursor.index += 1;
                    let Some(param) = sd_param(cursor) else {
                        return false;
                    };
                    params.push(param);
                }
                _ => {
                    cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
                    return false;
                }
            }
        }
        out.push(SdElementRef { id, params });
    }
    true
}

/// `name="value"` at the cursor.
fn sd_param<'a>(cursor: &mut Cursor<'a>) -> Option<(&'a str, Cow<'a, str>)> {
    let bytes = cursor.bytes;
    let name_start = cursor.index;
    while bytes
        .get(cursor.index)
        .is_some_and(|byte| is_sd_name_byte(*byte))
    {
        cursor.index += 1;
    }
    let name_len = cursor.index - name_start;
    if name_len == 0 || name_len > 32 || bytes.get(cursor.index) != Some(&b'=') {
        cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
        return None;
    }
    let name = cursor.str(name_start, cursor.index);
    cursor.index += 1;
    if !cursor.strict && bytes.get(cursor.index) == Some(&b' ') {
        // `name= "value"`: invalid, but rsyslog reads it as a parameter; lenient mode does too.
        cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
        while bytes.get(cursor.index) == Some(&b' ') {
            cursor.index += 1;
        }
    }
    if bytes.get(cursor.index) != Some(&b'"') {
        cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
        return None;
    }
    cursor.index += 1;
    let value_start = cursor.index;
    let mut has_escape = false;
    loop {
        let rest = bytes.get(cursor.index..).unwrap_or_default();
        let Some(position) = memchr::memchr3(b'"', b'\\', b']', rest) else {
            cursor.fail(Rfc5424ErrorKind::StructuredData, bytes.len());
            return None;
        };
        cursor.index += position;
        match bytes.get(cursor.index) {
            Some(b'\\') => {
                if matches!(bytes.get(cursor.index + 1), Some(b'"' | b'\\' | b']')) {
                    has_escape = true;
                    cursor.index += 2;
                } else {
                    // RFC 5424 §6.3.3 keeps such a backslash as is; go-syslog (and we, in strict
                    // mode) reject it. Lenient mode keeps it.
                    cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
                    if cursor.strict {
                        return None;
                    }
                    cursor.index += 1;
                }
            }
            Some(b']') => {
                cursor.fail(Rfc5424ErrorKind::StructuredData, cursor.index);
                if cursor.strict {
                    return None;
                }
                cursor.index += 1;
            }
            _ => break,
        }
    }
    let raw_value = cursor.str(value_start, cursor.index);
    cursor.index += 1;
    let value = if has_escape {
        Cow::Owned(unescape_sd_value(raw_value))
    } else {
        Cow::Borrowed(raw_value)
    };
    Some((name, value))
}

fn unescape_sd_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '\\'
            && let Some(next @ ('"' | '\\' | ']')) = chars.peek().copied()
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(character);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_accepts_rfc_examples() {
        let message = parse_rfc5424_strict(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...",
        )
        .unwrap();
        assert_eq!(message.priority, 165);
        assert_eq!(message.hostname, Some("mymachine.example.com"));
        assert_eq!(message.app_name, Some("evntslog"));
        assert_eq!(message.procid, None);
        assert_eq!(message.msgid, Some("ID47"));
        assert_eq!(message.structured_data[0].id, "exampleSDID@32473");
        assert_eq!(
            message.structured_data[0].params[1],
            ("eventSource", Cow::Borrowed("Application"))
        );
        assert_eq!(message.message, Some("An application event log entry..."));
    }

    #[test]
    fn sd_escapes_are_unescaped() {
        let message =
            parse_rfc5424_strict(br#"<1>1 - - - - - [id a="x\"y\\z\]w" b="cd"]"#).unwrap();
        assert_eq!(
            message.structured_data[0].params[0].1,
            Cow::<str>::Owned("x\"y\\z]w".into())
        );
        assert_eq!(message.structured_data[0].params[1].1, Cow::Borrowed("cd"));
        assert!(parse_rfc5424_strict(br#"<1>1 - - - - - [id a="c\d"]"#).is_err());
        let (lenient, _) = parse(r#"<1>1 - - - - - [id a="c\d"]"#, false);
        assert_eq!(
            lenient.unwrap().structured_data[0].params[0].1,
            Cow::Borrowed("c\\d")
        );
    }

    #[test]
    fn strict_rejections_table() {
        let cases: &[(&[u8], Rfc5424ErrorKind)] = &[
            (b"", Rfc5424ErrorKind::Priority),
            (b"<192>1 - - - - - -", Rfc5424ErrorKind::Priority),
            (b"<01>1 - - - - - -", Rfc5424ErrorKind::Priority),
            (b"<1>0 - - - - - -", Rfc5424ErrorKind::Version),
            (b"<1>1000 - - - - - -", Rfc5424ErrorKind::Version),
            (
                b"<1>1 2003-09-31T22:14:15Z - - - - -",
                Rfc5424ErrorKind::Timestamp,
            ),
            (
                b"<1>1 - - aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa - - -",
                Rfc5424ErrorKind::AppName,
            ),
            (
                b"<1>1 - - - - - [a b=\"]\"]",
                Rfc5424ErrorKind::StructuredData,
            ),
            (b"<1>1 - - - - - [a][a]", Rfc5424ErrorKind::DuplicateSdId),
            (b"<1>1 - - - - - -x", Rfc5424ErrorKind::ExpectedSpace),
            (b"<1>1 - - - - -", Rfc5424ErrorKind::ExpectedSpace),
            (b"<1>1 - - - - - x", Rfc5424ErrorKind::StructuredData),
            (b"<1>1 - \xff - - - -", Rfc5424ErrorKind::InvalidUtf8),
        ];
        for (input, kind) in cases {
            let error = parse_rfc5424_strict(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(
                error.kind,
                *kind,
                "input {}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn lenient_keeps_going_after_a_bad_timestamp() {
        let (message, error) = parse("<13>1 2003-10-11 host app 12 - - hello", false);
        let message = message.unwrap();
        assert_eq!(
            error.map(|error| error.kind),
            Some(Rfc5424ErrorKind::Timestamp)
        );
        assert_eq!(message.hostname, Some("host"));
        assert_eq!(message.procid, Some("12"));
        assert_eq!(message.message, Some("hello"));
    }

    #[test]
    fn pri_forms() {
        assert_eq!(parse_pri(b"<0>"), Some((0, 3)));
        assert_eq!(parse_pri(b"<191>x"), Some((191, 5)));
        assert_eq!(parse_pri(b"<1911>"), None);
        assert_eq!(parse_pri(b"<>"), None);
        assert_eq!(parse_pri(b"<13"), None);
        assert!(looks_like_rfc5424(b"<13>1 x"));
        assert!(!looks_like_rfc5424(b"<13>Jan  1"));
    }
}
