//! RFC 3164 ("BSD syslog") and the variants real devices send, parsed with the semantics of
//! rsyslog's `pmrfc3164` (the reference syslog server operators compare Cairn with):
//!
//! `[<PRI>][SEQ: ][*|.]TIMESTAMP[:] [HOSTNAME ]TAG MSG`
//!
//! - PRI optional. A space after it is skipped only when a timestamp follows (HP ProCurve sends
//!   `<PRI> Mmm dd ...`); otherwise that space starts an empty TAG, as in rsyslog;
//! - TIMESTAMP: `Mmm dd hh:mm:ss`, `Mmm d yyyy hh:mm:ss`, optional `.frac`, a trailing `:`, or
//!   RFC 3339; a Cisco sequence number (`16261: `) or unsynchronised-clock mark (`*`, `.`) before
//!   it is skipped;
//! - HOSTNAME only after a timestamp (RFC 3164 §4.3.2: without a valid timestamp there is no
//!   header; rsyslog would take the first word even then): a token of letters, digits, `.`, `-`,
//!   `_` (or an IPv6 address) that ends in a letter or digit and is followed by a space or the
//!   end. Otherwise the word is the TAG (`app[12]: msg`, `%ASA-4-106023: msg`). Without a
//!   timestamp only an evident TAG (`app:`, `app[pid]`) is taken and free text stays whole;
//! - TAG: everything up to the first `:` or space, the `:` included (rsyslog's rule: `host Some
//!   message` has tag `Some`, `host -- MARK --` has tag `--`); it may be empty (a space where the
//!   tag would start). `app[pid]` splits into app and procid. A token longer than 256 bytes is
//!   not a tag (rsyslog cuts it at 510 and calls that the tag);
//! - MSG: the rest, without the one space that separates it from the TAG (rsyslog's `%msg%` keeps
//!   it; its `remove.msgFirstSpace` option gives Cairn's message).
//!
//! syslogd's own `last message repeated N times` (PRI, no header) is all MSG, as rsyslog's
//! `pmlastmsg` does. A frame with neither PRI nor timestamp is not RFC 3164, and one with only a
//! PRI (no timestamp, no tag) is incomplete: the caller flags both `parse_error`.

use jiff::tz::TimeZone;

use super::rfc5424::parse_pri;
use super::timestamp::{parse_bsd, parse_rfc3339};
use crate::event::Timestamp;

/// Byte ranges into the frame (always on ASCII delimiters, hence on char boundaries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Parsed3164 {
    pub priority: Option<u8>,
    pub timestamp: Option<Timestamp>,
    /// A timestamp was found in the text (even if it could not be resolved).
    pub had_timestamp: bool,
    pub host: Option<(usize, usize)>,
    pub app: Option<(usize, usize)>,
    pub procid: Option<(usize, usize)>,
    pub message: (usize, usize),
    /// syslogd's `last message repeated N times`: a PRI and a message, nothing else by design.
    pub repeat_notice: bool,
}

impl Parsed3164 {
    /// Whether the frame looked like syslog at all (a PRI or a timestamp).
    pub fn recognised(&self) -> bool {
        self.priority.is_some() || self.had_timestamp
    }

    /// Whether more than the PRI was understood (a timestamp or a tag).
    pub fn complete(&self) -> bool {
        self.had_timestamp || self.app.is_some() || self.repeat_notice
    }
}

/// rsyslog accepts tags up to 510 bytes; a longer "tag" is free text, not a program name.
const MAX_TAG_BYTES: usize = 256;
const MAX_HOST_BYTES: usize = 255;

fn is_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b':')
}

/// A timestamp at `index`: returns (timestamp, had one, next index).
fn timestamp_at(
    bytes: &[u8],
    index: usize,
    tz: &TimeZone,
    received_at: Timestamp,
    fixed_year: Option<i32>,
) -> Option<(Option<Timestamp>, usize)> {
    let rest = bytes.get(index..)?;
    let (ts, used) = if let Some((mut parsed, used)) = parse_bsd(rest) {
        parsed.year = parsed.year.or(fixed_year);
        (parsed.to_timestamp(tz, received_at), used)
    } else if let Some((parsed, used)) = parse_rfc3339(rest, false) {
        (parsed.to_timestamp(tz), used)
    } else {
        return None;
    };
    let next = index + used;
    match bytes.get(next) {
        None | Some(b' ') => Some((ts, next)),
        _ => None,
    }
}

/// The timestamp [`parse`] finds in `bytes`, read without parsing the rest: `None` when there is
/// none or it does not resolve (the caller then parses the frame).
pub(crate) fn leading_timestamp(
    bytes: &[u8],
    tz: &TimeZone,
    received_at: Timestamp,
    fixed_year: Option<i32>,
) -> Option<Timestamp> {
    let mut index = 0;
    let priority = parse_pri(bytes);
    if let Some((_, used)) = priority {
        index = used;
    }
    let mut end = bytes.len();
    while end > index && matches!(bytes.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    if priority.is_some() && is_repeat_notice(bytes.get(index..end).unwrap_or_default()) {
        return None;
    }
    find_timestamp(bytes, index, tz, received_at, fixed_year)?.0
}

/// `fixed_year` is the year of a timestamp that has none; `None` infers it from `received_at`.
pub(crate) fn parse(
    text: &str,
    tz: &TimeZone,
    received_at: Timestamp,
    fixed_year: Option<i32>,
) -> Parsed3164 {
    let bytes = text.as_bytes();
    let mut out = Parsed3164::default();
    let mut index = 0;
    if let Some((priority, used)) = parse_pri(bytes) {
        out.priority = Some(priority);
        index = used;
    }
    let mut end = bytes.len();
    while end > index && matches!(bytes.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    if out.priority.is_some() && is_repeat_notice(bytes.get(index..end).unwrap_or_default()) {
        out.repeat_notice = true;
        out.message = (index, end);
        return out;
    }

    if let Some((ts, next)) = find_timestamp(bytes, index, tz, received_at, fixed_year) {
        out.timestamp = ts;
        out.had_timestamp = true;
        index = next;
        while bytes.get(index) == Some(&b' ') {
            index += 1;
        }
        if let Some(host_end) = hostname_end(bytes, index, end) {
            out.host = Some((index, host_end));
            index = host_end;
            if bytes.get(index) == Some(&b' ') {
                index += 1;
            }
        }
    }

    if out.priority.is_none() && !out.had_timestamp {
        // Not syslog: the caller keeps the whole frame as the message.
        out.message = (0, end);
        return out;
    }

    // TAG: up to the first `:` or space (the colon is part of it).
    let tag_start = index.min(end);
    let rest = bytes.get(tag_start..end).unwrap_or_default();
    let tag_end = memchr::memchr2(b':', b' ', rest).map_or(end, |position| tag_start + position);
    // Without a timestamp there is no header to speak of (RFC 3164 §4.3.2): only an evident tag
    // (`app:`, `app[pid]`) is taken, free text stays whole.
    let evident =
        bytes.get(tag_end) == Some(&b':') || bracketed_pid(bytes, tag_start, tag_end).is_some();
    if tag_end > tag_start && tag_end - tag_start <= MAX_TAG_BYTES && (out.had_timestamp || evident)
    {
        let (app, procid) = split_tag(bytes, tag_start, tag_end);
        out.app = app;
        out.procid = procid;
        index = tag_end;
        if bytes.get(index) == Some(&b':') {
            index += 1;
        }
    }
    // MSG, without the space that delimits it from the (possibly empty) tag.
    if index < end && bytes.get(index) == Some(&b' ') {
        index += 1;
    }
    out.message = (index.min(end), end);
    out
}

/// The timestamp at `index` (after optional spaces, a Cisco sequence number `16261: ` or a clock
/// mark `*`/`.`): (timestamp if resolvable, index after it).
fn find_timestamp(
    bytes: &[u8],
    index: usize,
    tz: &TimeZone,
    received_at: Timestamp,
    fixed_year: Option<i32>,
) -> Option<(Option<Timestamp>, usize)> {
    let mut start = index;
    while bytes.get(start) == Some(&b' ') {
        start += 1;
    }
    if let Some(found) = timestamp_at(bytes, start, tz, received_at, fixed_year) {
        return Some(found);
    }
    let mut skip = start;
    while bytes.get(skip).is_some_and(u8::is_ascii_digit) {
        skip += 1;
    }
    if skip > start && bytes.get(skip) == Some(&b':') && bytes.get(skip + 1) == Some(&b' ') {
        skip += 2;
    } else {
        skip = start;
    }
    if matches!(bytes.get(skip), Some(b'*' | b'.')) {
        skip += 1;
    }
    if skip > start {
        return timestamp_at(bytes, skip, tz, received_at, fixed_year);
    }
    None
}

/// The end of a HOSTNAME starting at `start`, if the word there is one (`limit`: the end of the
/// frame without its trailing line end).
fn hostname_end(bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
    let mut end = start;
    while end < limit
        && end - start < MAX_HOST_BYTES
        && bytes.get(end).is_some_and(|byte| is_host_byte(*byte))
    {
        end += 1;
    }
    let token = bytes.get(start..end).unwrap_or_default();
    let colons = token.iter().filter(|byte| **byte == b':').count();
    let is_host = !token.is_empty()
        && (end >= limit || bytes.get(end) == Some(&b' '))
        && token.last().is_some_and(u8::is_ascii_alphanumeric)
        && (colons == 0
            || (colons >= 2
                && token
                    .iter()
                    .all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.'))));
    is_host.then_some(end)
}

/// `last message repeated N times` (ASCII case-insensitive), as rsyslog's `pmlastmsg` matches it.
fn is_repeat_notice(text: &[u8]) -> bool {
    const OPENING: &[u8] = b"last message repeated ";
    const CLOSING: &[u8] = b" times";
    let Some(rest) = text
        .get(..OPENING.len())
        .filter(|opening| opening.eq_ignore_ascii_case(OPENING))
        .and_then(|_| text.get(OPENING.len()..))
    else {
        return false;
    };
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    digits > 0
        && rest
            .get(digits..)
            .is_some_and(|closing| closing.eq_ignore_ascii_case(CLOSING))
}

/// `app[pid]` → the pid range.
fn bracketed_pid(bytes: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    if end <= start + 2 || bytes.get(end - 1) != Some(&b']') {
        return None;
    }
    let open = start + memchr::memchr(b'[', bytes.get(start..end)?)?;
    (open > start).then_some((open + 1, end - 1))
}

/// Splits a tag into app and procid ranges.
type Range = (usize, usize);

fn split_tag(bytes: &[u8], start: usize, end: usize) -> (Option<Range>, Option<Range>) {
    match bracketed_pid(bytes, start, end) {
        Some((pid_start, pid_end)) => {
            let procid = (pid_end > pid_start).then_some((pid_start, pid_end));
            (Some((start, pid_start - 1)), procid)
        }
        None => (Some((start, end)), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::type_complexity)]
    fn fields(
        text: &str,
    ) -> (
        Option<u8>,
        bool,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        &str,
    ) {
        let received = Timestamp::from_jiff("2024-06-01T00:00:00Z".parse().unwrap());
        let parsed = parse(text, &TimeZone::UTC, received, None);
        let get =
            |range: Option<(usize, usize)>| range.and_then(|(start, end)| text.get(start..end));
        (
            parsed.priority,
            parsed.had_timestamp,
            get(parsed.host),
            get(parsed.app),
            get(parsed.procid),
            get(Some(parsed.message)).unwrap_or("<bad range>"),
        )
    }

    #[test]
    fn overlong_first_word_is_not_a_tag() {
        // A 300-byte token where the tag would be (a blob, not a program name).
        let blob = "x".repeat(300);
        let text = format!("<13>Jan  1 00:00:00 host {blob} tail");
        let message = format!("{blob} tail");
        assert_eq!(
            fields(&text),
            (Some(13), true, Some("host"), None, None, message.as_str())
        );
    }

    #[test]
    fn repeat_notice_is_complete_without_header() {
        let received = Timestamp::from_jiff("2024-06-01T00:00:00Z".parse().unwrap());
        let parsed = parse(
            "<13>Last Message Repeated 12 times",
            &TimeZone::UTC,
            received,
            None,
        );
        assert!(parsed.repeat_notice && parsed.complete());
        assert_eq!(parsed.message, (4, 34));
        let parsed = parse(
            "<13>last message repeated 12 times!",
            &TimeZone::UTC,
            received,
            None,
        );
        assert!(!parsed.repeat_notice);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn variants_table() {
        type Row = (
            &'static str,
            (
                Option<u8>,
                bool,
                Option<&'static str>,
                Option<&'static str>,
                Option<&'static str>,
                &'static str,
            ),
        );
        let cases: &[Row] = &[
            (
                "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
                (
                    Some(34),
                    true,
                    Some("mymachine"),
                    Some("su"),
                    None,
                    "'su root' failed",
                ),
            ),
            (
                "<13>Jan  1 00:00:00 app[12]: msg",
                (Some(13), true, None, Some("app"), Some("12"), "msg"),
            ),
            (
                "<13>Jan  1 00:00:00 host app[12]: msg",
                (Some(13), true, Some("host"), Some("app"), Some("12"), "msg"),
            ),
            (
                "<13>Jan  1 00:00:00 host app: msg",
                (Some(13), true, Some("host"), Some("app"), None, "msg"),
            ),
            (
                "<38> Mar  7 19:06:53 example tag: test",
                (Some(38), true, Some("example"), Some("tag"), None, "test"),
            ),
            (
                "Feb 18 16:01:59 serverX -- MARK --",
                (None, true, Some("serverX"), Some("--"), None, "MARK --"),
            ),
            (
                "<166>Jul  6 20:33:28 ABC-1-234567 Some message here",
                (
                    Some(166),
                    true,
                    Some("ABC-1-234567"),
                    Some("Some"),
                    None,
                    "message here",
                ),
            ),
            (
                "<175>Oct 16 2009 23:47:31 hostname tag[1234] This",
                (
                    Some(175),
                    true,
                    Some("hostname"),
                    Some("tag"),
                    Some("1234"),
                    "This",
                ),
            ),
            (
                "<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request",
                (
                    Some(167),
                    true,
                    Some("172.20.245.8"),
                    Some("%PIX-7-710005"),
                    None,
                    "UDP request",
                ),
            ),
            (
                "<14>May 21 2017 00:00:00: %ASA-4-102030: Deny udp",
                (
                    Some(14),
                    true,
                    None,
                    Some("%ASA-4-102030"),
                    None,
                    "Deny udp",
                ),
            ),
            (
                "<189>16261: May 28 16:09:56.185: %SYS-5-CONFIG_I: Configured",
                (
                    Some(189),
                    true,
                    None,
                    Some("%SYS-5-CONFIG_I"),
                    None,
                    "Configured",
                ),
            ),
            (
                "<189>16262: *May 28 16:09:56.185: %SYS-5-CONFIG_I: Configured",
                (
                    Some(189),
                    true,
                    None,
                    Some("%SYS-5-CONFIG_I"),
                    None,
                    "Configured",
                ),
            ),
            (
                "<167>Mar 27 19:06:53 source_server sshd(pam_unix)[12750]: session",
                (
                    Some(167),
                    true,
                    Some("source_server"),
                    Some("sshd(pam_unix)"),
                    Some("12750"),
                    "session",
                ),
            ),
            (
                "<14>2010-08-30T23:00:05Z X4711 AAAA",
                (Some(14), true, Some("X4711"), Some("AAAA"), None, ""),
            ),
            (
                "<14>Aug 30 23:00:05 X4711",
                (Some(14), true, Some("X4711"), None, None, ""),
            ),
            (
                "<14>Aug 30 23:00:05 X4711\r\n",
                (Some(14), true, Some("X4711"), None, None, ""),
            ),
            (
                "<14>Aug 30 23:00:05 ",
                (Some(14), true, None, None, None, ""),
            ),
            (
                "<13>Jan  1 00:00:00 fe80::1 app: x",
                (Some(13), true, Some("fe80::1"), Some("app"), None, "x"),
            ),
            (
                "<27>xapi: [error] died",
                (Some(27), false, None, Some("xapi"), None, "[error] died"),
            ),
            (
                "<13>last message repeated 5 times",
                (
                    Some(13),
                    false,
                    None,
                    None,
                    None,
                    "last message repeated 5 times",
                ),
            ),
            (
                "<6>AUG 10 22:18:24 2009  netips [audit] x",
                (Some(6), true, Some("2009"), None, None, "netips [audit] x"),
            ),
            (
                "<13>Jan  1 00:00:00 host app: msg\r\n",
                (Some(13), true, Some("host"), Some("app"), None, "msg"),
            ),
            (
                "<13>last message repeated 5.2 times",
                (
                    Some(13),
                    false,
                    None,
                    None,
                    None,
                    "last message repeated 5.2 times",
                ),
            ),
            (
                "<13>app[7] no timestamp",
                (
                    Some(13),
                    false,
                    None,
                    Some("app"),
                    Some("7"),
                    "no timestamp",
                ),
            ),
            (
                "<14> 05/21/2017:00:00:00 GMT HOSTNAME x",
                (
                    Some(14),
                    false,
                    None,
                    None,
                    None,
                    "05/21/2017:00:00:00 GMT HOSTNAME x",
                ),
            ),
            (
                "<167>Oct  8 23:05:06 10.321.1.123 05\",result_code=200,b",
                (
                    Some(167),
                    true,
                    Some("10.321.1.123"),
                    Some("05\",result_code=200,b"),
                    None,
                    "",
                ),
            ),
            (
                "<129>Mar 10 01:00:00 172.20.245.8 tag:msgnum:3",
                (
                    Some(129),
                    true,
                    Some("172.20.245.8"),
                    Some("tag"),
                    None,
                    "msgnum:3",
                ),
            ),
            (
                "<129>Mar 10 01:00:00 172.20.245.8 tag:  msgnum:2",
                (
                    Some(129),
                    true,
                    Some("172.20.245.8"),
                    Some("tag"),
                    None,
                    " msgnum:2",
                ),
            ),
            (
                "<14>May 21 12:00:01 hostname MSWinEventLog\t1\tN/A x",
                (
                    Some(14),
                    true,
                    Some("hostname"),
                    Some("MSWinEventLog\t1\tN/A"),
                    None,
                    "x",
                ),
            ),
            (
                "<13>Jan  1 00:00:00 host : x",
                (Some(13), true, Some("host"), None, None, ": x"),
            ),
            (
                "just some text",
                (None, false, None, None, None, "just some text"),
            ),
            ("", (None, false, None, None, None, "")),
        ];
        for (input, expected) in cases {
            assert_eq!(fields(input), *expected, "input {input:?}");
        }
    }
}
