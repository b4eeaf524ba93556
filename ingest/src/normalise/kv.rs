//! `key=value` extraction (iptables/UFW, FortiGate and other firewalls, PAM, generic bodies).
//!
//! A pair is `KEY=VALUE` where KEY is `[A-Za-z_][A-Za-z0-9_.-]*` (at most 64 bytes) and VALUE is
//! either quoted (`"…"` or `'…'`, backslash escapes) or runs to the next whitespace (a trailing
//! `,` or `;` separator is not part of it). Other tokens (`DF`, `SYN`, `;`) are skipped.
//!
//! Keys that vendors spell differently are renamed to Cairn's names (`SRC`/`srcip` → `src_ip`,
//! `DPT`/`dstport` → `dst_port`, `PROTO` → `protocol`, `IN` → `interface`…): an address rename
//! applies only when the value is an IP address and a port rename only when it is a number (then
//! typed `U64`); otherwise the key is kept as written. Unrenamed names and unescaped values are
//! spans into the frame: no allocation.

use std::net::IpAddr;

use crate::event::{Field, FieldValue, Span, Text};

/// At most this many pairs are extracted from one message.
pub(crate) const MAX_PAIRS: usize = 128;

/// One pair, as offsets into the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    pub key: (usize, usize),
    /// The value's text as written (inside the quotes for a quoted value).
    pub value: (usize, usize),
    /// The value contains backslash escapes (it must be unescaped, hence owned).
    pub escaped: bool,
}

fn is_key_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-')
}

/// Walks `message` token by token, calling `on_pair` for every pair; returns
/// `(pairs, other tokens)`.
pub(crate) fn scan(message: &str, mut on_pair: impl FnMut(Pair)) -> (usize, usize) {
    let bytes = message.as_bytes();
    let mut index = 0;
    let mut pairs = 0;
    let mut others = 0;
    while index < bytes.len() {
        while index < bytes.len() && bytes[index].is_ascii_whitespace() {
            index += 1;
        }
        if index >= bytes.len() {
            break;
        }
        let token_start = index;
        let mut key_end = index;
        if is_key_start(bytes[index]) {
            key_end += 1;
            while key_end < bytes.len() && is_key_byte(bytes[key_end]) {
                key_end += 1;
            }
        }
        let is_pair = key_end > token_start
            && key_end - token_start <= 64
            && bytes.get(key_end) == Some(&b'=');
        if !is_pair {
            others += 1;
            index = skip_token(bytes, index);
            continue;
        }
        let value_start = key_end + 1;
        let (value, escaped, next) = match bytes.get(value_start) {
            Some(&quote @ (b'"' | b'\'')) => quoted_value(bytes, value_start, quote),
            _ => {
                let mut end = value_start;
                while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
                    end += 1;
                }
                let mut value_end = end;
                while value_end > value_start && matches!(bytes[value_end - 1], b',' | b';') {
                    value_end -= 1;
                }
                ((value_start, value_end), false, end)
            }
        };
        if pairs < MAX_PAIRS {
            on_pair(Pair {
                key: (token_start, key_end),
                value,
                escaped,
            });
        }
        pairs += 1;
        index = next;
    }
    (pairs, others)
}

fn skip_token(bytes: &[u8], mut index: usize) -> usize {
    while index < bytes.len() && !bytes[index].is_ascii_whitespace() {
        index += 1;
    }
    index
}

/// A quoted value starting at the quote: ((start, end) inside the quotes, escaped, next index).
/// An unterminated quote runs to the end of the message.
fn quoted_value(bytes: &[u8], quote_at: usize, quote: u8) -> ((usize, usize), bool, usize) {
    let start = quote_at + 1;
    let mut index = start;
    let mut escaped = false;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => {
                escaped = true;
                index += 2;
            }
            byte if byte == quote => return ((start, index), escaped, index + 1),
            _ => index += 1,
        }
    }
    let end = bytes.len();
    ((start, end), escaped, end)
}

/// Whether a message is "mostly `key=value`": at least two pairs and no more other tokens than
/// half the pairs (so free text with an `a=b` in it is left alone).
pub(crate) fn is_mostly_key_values(message: &str) -> bool {
    let (pairs, others) = scan(message, |_| {});
    pairs >= 2 && others * 2 <= pairs
}

/// What a vendor key becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rename {
    Address(&'static str),
    Port(&'static str),
    Plain(&'static str),
}

pub(crate) fn rename(key: &str) -> Option<Rename> {
    let rename = match key {
        "SRC" | "src" | "srcip" | "src_ip" | "saddr" | "rhost" | "srcaddr" | "src-ip" => {
            Rename::Address("src_ip")
        }
        "DST" | "dst" | "dstip" | "dst_ip" | "daddr" | "dstaddr" | "dst-ip" => {
            Rename::Address("dst_ip")
        }
        "SPT" | "spt" | "srcport" | "src_port" | "sport" | "src-port" => Rename::Port("src_port"),
        "DPT" | "dpt" | "dstport" | "dst_port" | "dport" | "dst-port" => Rename::Port("dst_port"),
        "PROTO" | "proto" => Rename::Plain("protocol"),
        "IN" | "srcintf" => Rename::Plain("interface"),
        "OUT" | "dstintf" => Rename::Plain("out_interface"),
        _ => return None,
    };
    Some(rename)
}

/// Extracts the pairs of `message` (which starts at `base` in the raw frame when it is a span
/// there) into `fields`. `wanted(name)` says whether a field of that name may be added (existing
/// fields win).
pub(crate) fn extract(
    message: &str,
    base: Option<usize>,
    fields: &mut Vec<Field>,
    wanted: &dyn Fn(&[Field], &str) -> bool,
) {
    let text_at = |(start, end): (usize, usize)| -> Text {
        match base {
            Some(base) => Text::Span(Span::new(base + start, base + end)),
            None => Text::owned(message.get(start..end).unwrap_or("")),
        }
    };
    scan(message, |pair| {
        let (Some(key), Some(value)) = (
            message.get(pair.key.0..pair.key.1),
            message.get(pair.value.0..pair.value.1),
        ) else {
            return;
        };
        if value.is_empty() || value == "-" {
            return;
        }
        let (name, number) = match rename(key) {
            Some(Rename::Address(name)) if value.len() <= 45 && value.parse::<IpAddr>().is_ok() => {
                (Text::owned(name), None)
            }
            Some(Rename::Port(name)) => match value.parse::<u64>() {
                Ok(port) => (Text::owned(name), Some(port)),
                Err(_) => (text_at(pair.key), None),
            },
            Some(Rename::Plain(name)) => (Text::owned(name), None),
            _ => (text_at(pair.key), None),
        };
        let name_text = match &name {
            Text::Owned(owned) => &**owned,
            Text::Span(_) => key,
        };
        if !wanted(fields, name_text) {
            return;
        }
        let value = match number {
            Some(port) => FieldValue::U64(port),
            None if pair.escaped => FieldValue::Text(Text::owned(unescape(value))),
            None => FieldValue::Text(text_at(pair.value)),
        };
        fields.push(Field { name, value });
    });
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(message: &str) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        extract(message, None, &mut fields, &|_, _| true);
        fields
            .iter()
            .map(|field| {
                let name = field.name.resolve(message).to_owned();
                let value = match &field.value {
                    FieldValue::Text(text) => text.resolve(message).to_owned(),
                    FieldValue::U64(number) => format!("u{number}"),
                    other => format!("{other:?}"),
                };
                (name, value)
            })
            .collect()
    }

    #[test]
    fn quoted_values_renames_and_flags() {
        let got = pairs(
            r#"devname="FG 1" srcip=10.0.0.1 srcport=5000 msg="say \"hi\"" DF SYN dstport=x, OUT= src=host"#,
        );
        let expected: Vec<(String, String)> = [
            ("devname", "FG 1"),
            ("src_ip", "10.0.0.1"),
            ("src_port", "u5000"),
            ("msg", "say \"hi\""),
            ("dstport", "x"),
            ("src", "host"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn mostly_key_values_leaves_free_text_alone() {
        assert!(is_mostly_key_values("a=1 b=2"));
        assert!(is_mostly_key_values(
            "IN=eth0 OUT= SRC=1.2.3.4 DF PROTO=TCP SYN"
        ));
        assert!(!is_mostly_key_values(
            "session opened for user root(uid=0) by (uid=0)"
        ));
        assert!(!is_mostly_key_values("set x=1 for the job y=2 now please"));
        assert!(!is_mostly_key_values("a=1"));
    }

    #[test]
    fn unterminated_quotes_and_odd_bytes_do_not_panic() {
        for message in [
            "a=\"open",
            "a=\"x\\",
            "=",
            "a= b=",
            "é=1 ł=\"ż\"",
            "a=1\u{0}b=2",
        ] {
            let _ = pairs(message);
        }
        assert_eq!(pairs("a=\"open")[0].1, "open");
    }
}
