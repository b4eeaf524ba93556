//! RFC 3164 ("BSD syslog") and the variants real devices send, parsed the way rsyslog's
//! `pmrfc3164` does where that is sensible:
//!
//! `[<PRI>][ ][SEQ: ][*|.]TIMESTAMP[:] [HOSTNAME ]TAG[:] MSG`
//!
//! - PRI optional; a space after it is tolerated;
//! - TIMESTAMP: `Mmm dd hh:mm:ss`, `Mmm d yyyy hh:mm:ss`, optional `.frac`, or RFC 3339;
//!   a Cisco sequence number (`16261: `) or unsynchronised-clock mark (`*`, `.`) before it is
//!   skipped;
//! - HOSTNAME only after a timestamp: a token of letters, digits, `.`, `-`, `_` (or an IPv6
//!   address) that ends in a letter or digit and is followed by a space or the end;
//! - TAG: up to `:` or a space, and only when it ends with `:` or is `app[pid]` followed by a
//!   space (as go-syslog; rsyslog would also take the first word of free text); `app[pid]`
//!   splits into app and procid; Cisco `%ASA-4-106023:` is an app;
//! - MSG: the rest, after one space.
//!
//! A frame with neither PRI nor timestamp is not RFC 3164, and one with only a PRI (no timestamp,
//! no tag) is incomplete: the caller flags both `parse_error`.

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
}

impl Parsed3164 {
    /// Whether the frame looked like syslog at all (a PRI or a timestamp).
    pub fn recognised(&self) -> bool {
        self.priority.is_some() || self.had_timestamp
    }

    /// Whether more than the PRI was understood (a timestamp or a tag).
    pub fn complete(&self) -> bool {
        self.had_timestamp || self.app.is_some()
    }
}

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
) -> Option<(Option<Timestamp>, usize)> {
    let rest = bytes.get(index..)?;
    let (ts, used) = if let Some((parsed, used)) = parse_bsd(rest) {
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

pub(crate) fn parse(text: &str, tz: &TimeZone, received_at: Timestamp) -> Parsed3164 {
    let bytes = text.as_bytes();
    let mut out = Parsed3164::default();
    let mut index = 0;
    if let Some((priority, used)) = parse_pri(bytes) {
        out.priority = Some(priority);
        index = used;
    }
    while bytes.get(index) == Some(&b' ') {
        index += 1;
    }

    // TIMESTAMP, possibly after a Cisco sequence number or clock-status mark.
    let mut found = timestamp_at(bytes, index, tz, received_at);
    if found.is_none() {
        let mut skip = index;
        while bytes.get(skip).is_some_and(u8::is_ascii_digit) {
            skip += 1;
        }
        if skip > index && bytes.get(skip) == Some(&b':') && bytes.get(skip + 1) == Some(&b' ') {
            skip += 2;
        } else {
            skip = index;
        }
        if matches!(bytes.get(skip), Some(b'*' | b'.')) {
            skip += 1;
        }
        if skip > index {
            found = timestamp_at(bytes, skip, tz, received_at);
        }
    }
    if let Some((ts, next)) = found {
        out.timestamp = ts;
        out.had_timestamp = true;
        index = next;
        while bytes.get(index) == Some(&b' ') {
            index += 1;
        }
        // HOSTNAME
        let host_start = index;
        let mut host_end = index;
        while host_end - host_start < MAX_HOST_BYTES
            && bytes.get(host_end).is_some_and(|byte| is_host_byte(*byte))
        {
            host_end += 1;
        }
        let token = bytes.get(host_start..host_end).unwrap_or_default();
        let colons = token.iter().filter(|byte| **byte == b':').count();
        let host_ok = !token.is_empty()
            && matches!(bytes.get(host_end), None | Some(b' '))
            && token.last().is_some_and(u8::is_ascii_alphanumeric)
            && (colons == 0
                || (colons >= 2
                    && token
                        .iter()
                        .all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.'))));
        if host_ok {
            out.host = Some((host_start, host_end));
            index = host_end;
            if bytes.get(index) == Some(&b' ') {
                index += 1;
            }
        }
    }

    // TAG
    let tag_start = index;
    let mut tag_end = index;
    while tag_end - tag_start <= MAX_TAG_BYTES
        && bytes
            .get(tag_end)
            .is_some_and(|byte| *byte != b':' && *byte != b' ')
    {
        tag_end += 1;
    }
    let terminator = bytes.get(tag_end).copied();
    let with_colon = terminator == Some(b':');
    let tag_ok = tag_end > tag_start
        && tag_end - tag_start <= MAX_TAG_BYTES
        && matches!(terminator, None | Some(b':' | b' '))
        && (with_colon || bracketed_pid(bytes, tag_start, tag_end).is_some());
    if tag_ok {
        let (app, procid) = split_tag(bytes, tag_start, tag_end);
        out.app = app;
        out.procid = procid;
        index = if with_colon { tag_end + 1 } else { tag_end };
        if bytes.get(index) == Some(&b' ') {
            index += 1;
        }
    } else if out.had_timestamp && bytes.get(index) == Some(&b' ') {
        index += 1;
    }

    let mut end = bytes.len();
    while end > index && matches!(bytes.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    out.message = (index.min(end), end);
    out
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
        let parsed = parse(text, &TimeZone::UTC, received);
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
                (None, true, Some("serverX"), None, None, "-- MARK --"),
            ),
            (
                "<166>Jul  6 20:33:28 ABC-1-234567 Some message here",
                (
                    Some(166),
                    true,
                    Some("ABC-1-234567"),
                    None,
                    None,
                    "Some message here",
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
                (Some(14), true, Some("X4711"), None, None, "AAAA"),
            ),
            (
                "<14>Aug 30 23:00:05 X4711",
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
