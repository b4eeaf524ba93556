//! CEF (ArcSight Common Event Format) and LEEF (IBM QRadar Log Event Extended Format) messages:
//! header and extension fields become event fields.
//!
//! # CEF
//!
//! `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`
//!
//! - Header: `|` separates the seven fields; inside them `\|` is a pipe and `\\` a backslash.
//!   They become `cef_version` (number), `device_vendor`, `device_product`, `device_version`,
//!   `signature_id`, `event_name` and `cef_severity` (a number when it is one, else the text,
//!   e.g. `High`).
//! - Extension: `key=value` pairs separated by spaces; a value may contain spaces, and runs to
//!   the last space before the next `key=` (a key is `[A-Za-z0-9_.\[\]-]+` after a space). In
//!   values `\=` is `=`, `\\` a backslash, `\n` and `\r` a newline and a carriage return; an
//!   unescaped `=` that does not follow a key-like word after a space (`request=http://h/?a=b`)
//!   stays in the value.
//!
//! # LEEF
//!
//! `LEEF:1.0|Vendor|Product|Version|EventID|attributes` with attributes separated by a tab, and
//! `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attributes` where the delimiter is one
//! character, or its code in hex (`x5E`, `0x5E`; `^` = `x5E`); an empty or missing delimiter
//! field means tab. Header fields become `leef_version` (text), `device_vendor`,
//! `device_product`, `device_version` and `event_id`; each attribute `key=value` (split at the
//! first `=`) becomes a field. LEEF defines no escaping in values; header fields accept `\|`.
//!
//! # Both
//!
//! The message is recognised when it starts with `CEF:` or `LEEF:`, or when the syslog parser
//! took `CEF` / `LEEF` for the app (an RFC 3164 line `host CEF:0|…` reads as tag `CEF`). Keys
//! that other formats spell as Cairn's canonical names are renamed like key=value extraction
//! does (`src` → `src_ip` when it is an address, `spt`/`srcPort` → `src_port`, `suser`/`usrName`
//! → `user`…); other keys are kept as written. Values without escapes are spans into the frame;
//! only unescaped values are owned. At most [`super::kv::MAX_PAIRS`] extension fields are taken.

use std::net::IpAddr;

use crate::event::{Field, FieldValue, Span, Text};

use super::kv::{MAX_PAIRS, Rename, rename};

/// Which of the two formats a message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cef,
    Leef,
}

/// If `body` is a CEF or LEEF message (see the module docs), its kind and where the version
/// starts in `body`.
pub(crate) fn detect(app: Option<&str>, body: &str) -> Option<(Kind, usize)> {
    if body.starts_with("CEF:") {
        return Some((Kind::Cef, 4));
    }
    if body.starts_with("LEEF:") {
        return Some((Kind::Leef, 5));
    }
    let starts_with_version = body.as_bytes().first().is_some_and(u8::is_ascii_digit);
    match app {
        Some("CEF") if starts_with_version => Some((Kind::Cef, 0)),
        Some("LEEF") if starts_with_version => Some((Kind::Leef, 0)),
        _ => None,
    }
}

/// Where the extracted fields go: the text of `body` starts at `base` in the raw frame when
/// `base` is `Some` (values become spans), else values are owned.
pub(crate) struct Sink<'a, 'f> {
    pub body: &'a str,
    pub base: Option<usize>,
    pub fields: &'f mut Vec<Field>,
    pub wanted: &'a dyn Fn(&[Field], &str) -> bool,
}

impl Sink<'_, '_> {
    fn text(&self, start: usize, end: usize) -> Text {
        match self.base {
            Some(base) => Text::Span(Span::new(base + start, base + end)),
            None => Text::owned(self.body.get(start..end).unwrap_or("")),
        }
    }

    /// Adds a field named `name` (a constant) whose value is `body[start..end]`, unescaped
    /// with `unescape` when it contains a backslash.
    fn push_named(&mut self, name: &'static str, start: usize, end: usize, unescape: Unescape) {
        let Some(value) = self.body.get(start..end) else {
            return;
        };
        if value.is_empty() || !(self.wanted)(self.fields, name) {
            return;
        }
        let value = self.value(value, start, end, unescape);
        self.fields.push(Field {
            name: Text::Owned(name.into()),
            value,
        });
    }

    /// A number field when `body[start..end]` is one, else a text field.
    fn push_number_or_text(&mut self, name: &'static str, start: usize, end: usize) {
        match self
            .body
            .get(start..end)
            .map(|text| text.trim().parse::<u64>())
        {
            Some(Ok(number)) if (self.wanted)(self.fields, name) => self.fields.push(Field {
                name: Text::Owned(name.into()),
                value: FieldValue::U64(number),
            }),
            Some(Ok(_)) => {}
            _ => self.push_named(name, start, end, Unescape::Header),
        }
    }

    fn value(&self, value: &str, start: usize, end: usize, unescape: Unescape) -> FieldValue {
        if unescape != Unescape::None && value.contains('\\') {
            FieldValue::Text(Text::owned(unescape.apply(value)))
        } else {
            FieldValue::Text(self.text(start, end))
        }
    }

    /// Adds an extension pair, renamed when its key has a canonical name.
    fn push_pair(&mut self, key: (usize, usize), value: (usize, usize), unescape: Unescape) {
        let (Some(key_text), Some(value_text)) =
            (self.body.get(key.0..key.1), self.body.get(value.0..value.1))
        else {
            return;
        };
        if key_text.is_empty() || value_text.is_empty() {
            return;
        }
        let renamed = rename(key_text).or_else(|| vendor_rename(key_text));
        let (name, number) = match renamed {
            Some(Rename::Address(name))
                if value_text.len() <= 45 && value_text.parse::<IpAddr>().is_ok() =>
            {
                (Some(name), None)
            }
            Some(Rename::Port(name)) => match value_text.parse::<u64>() {
                Ok(port) => (Some(name), Some(port)),
                Err(_) => (None, None),
            },
            Some(Rename::Plain(name)) => (Some(name), None),
            _ => (None, None),
        };
        if !(self.wanted)(self.fields, name.unwrap_or(key_text)) {
            return;
        }
        let value = match number {
            Some(port) => FieldValue::U64(port),
            None => self.value(value_text, value.0, value.1, unescape),
        };
        let name = match name {
            Some(name) => Text::Owned(name.into()),
            None => self.text(key.0, key.1),
        };
        self.fields.push(Field { name, value });
    }
}

/// Keys of CEF and LEEF dictionaries that have a canonical Cairn name beyond key=value's.
fn vendor_rename(key: &str) -> Option<Rename> {
    let rename = match key {
        "srcPort" => Rename::Port("src_port"),
        "dstPort" => Rename::Port("dst_port"),
        "suser" | "usrName" => Rename::Plain("user"),
        _ => return None,
    };
    Some(rename)
}

/// The escaping rules of a part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unescape {
    /// CEF header: `\|` and `\\`.
    Header,
    /// CEF extension: `\=`, `\\`, `\n`, `\r` (and a lenient `\|`).
    Extension,
    /// LEEF values: taken as written.
    None,
}

impl Unescape {
    fn apply(self, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let mut chars = value.chars();
        while let Some(ch) = chars.next() {
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            match (self, chars.next()) {
                (_, Some(escaped @ ('\\' | '|'))) => out.push(escaped),
                (Unescape::Extension, Some('=')) => out.push('='),
                (Unescape::Extension, Some('n')) => out.push('\n'),
                (Unescape::Extension, Some('r')) => out.push('\r'),
                (_, Some(other)) => {
                    // Not an escape of this part: kept as written.
                    out.push('\\');
                    out.push(other);
                }
                (_, None) => out.push('\\'),
            }
        }
        out
    }
}

/// Splits up to `count` header fields off `body[from..]` at unescaped `|`: their (start, end)
/// and where the rest starts. `None` when fewer than `count` separators are there.
fn header_fields<const N: usize>(body: &str, from: usize) -> Option<([(usize, usize); N], usize)> {
    let bytes = body.as_bytes();
    let mut fields = [(0, 0); N];
    let mut start = from;
    let mut index = from;
    let mut found = 0;
    while found < N {
        match bytes.get(index)? {
            b'\\' => index += 2,
            b'|' => {
                fields[found] = (start, index);
                found += 1;
                index += 1;
                start = index;
            }
            _ => index += 1,
        }
    }
    Some((fields, index))
}

/// Extracts the fields of a CEF or LEEF message; `from` is where its version starts in the
/// sink's body. Returns false (and adds nothing) when the header is incomplete.
pub(crate) fn extract(kind: Kind, from: usize, sink: &mut Sink<'_, '_>) -> bool {
    match kind {
        Kind::Cef => extract_cef(from, sink),
        Kind::Leef => extract_leef(from, sink),
    }
}

fn extract_cef(from: usize, sink: &mut Sink<'_, '_>) -> bool {
    let Some((header, extension_start)) = header_fields::<7>(sink.body, from) else {
        return false;
    };
    let [
        version,
        vendor,
        product,
        device_version,
        signature,
        name,
        severity,
    ] = header;
    sink.push_number_or_text("cef_version", version.0, version.1);
    sink.push_named("device_vendor", vendor.0, vendor.1, Unescape::Header);
    sink.push_named("device_product", product.0, product.1, Unescape::Header);
    sink.push_named(
        "device_version",
        device_version.0,
        device_version.1,
        Unescape::Header,
    );
    sink.push_named("signature_id", signature.0, signature.1, Unescape::Header);
    sink.push_named("event_name", name.0, name.1, Unescape::Header);
    sink.push_number_or_text("cef_severity", severity.0, severity.1);
    for (key, value) in cef_extension_pairs(sink.body, extension_start) {
        sink.push_pair(key, value, Unescape::Extension);
    }
    true
}

fn is_cef_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-' | b'[' | b']')
}

/// The (key, value) spans of a CEF extension starting at `from`.
fn cef_extension_pairs(body: &str, from: usize) -> Vec<((usize, usize), (usize, usize))> {
    let bytes = body.as_bytes();
    // (key start, position of its `=`) for every `=` that ends a key-like word after a space.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut index = from;
    while index < bytes.len() && keys.len() < MAX_PAIRS {
        match bytes[index] {
            b'\\' => index += 2,
            b'=' => {
                let key_start = (from..index)
                    .rev()
                    .take_while(|at| is_cef_key_byte(bytes[*at]))
                    .last()
                    .unwrap_or(index);
                let after_space = key_start == from || bytes[key_start - 1] == b' ';
                if key_start < index && after_space {
                    keys.push((key_start, index));
                }
                index += 1;
            }
            _ => index += 1,
        }
    }
    let mut pairs = Vec::with_capacity(keys.len());
    for (position, (key_start, equals)) in keys.iter().enumerate() {
        let value_start = equals + 1;
        let mut value_end = keys
            .get(position + 1)
            .map_or(bytes.len(), |(next_key, _)| *next_key);
        while value_end > value_start && bytes[value_end - 1].is_ascii_whitespace() {
            value_end -= 1;
        }
        pairs.push(((*key_start, *equals), (value_start, value_end)));
    }
    pairs
}

fn extract_leef(from: usize, sink: &mut Sink<'_, '_>) -> bool {
    let Some(([version, vendor, product, device_version, event_id], rest)) =
        header_fields::<5>(sink.body, from)
    else {
        return false;
    };
    let version_text = sink.body.get(version.0..version.1).unwrap_or("");
    let mut attributes_start = rest;
    let mut delimiter = '\t';
    if version_text.starts_with('2') {
        // The delimiter field, when the next `|` comes before any `=`.
        let tail = sink.body.get(rest..).unwrap_or("");
        if let Some(bar) = tail.find('|')
            && !tail[..bar].contains('=')
        {
            if let Some(declared) = leef_delimiter(&tail[..bar]) {
                delimiter = declared;
            }
            attributes_start = rest + bar + 1;
        }
    }
    sink.push_named("leef_version", version.0, version.1, Unescape::Header);
    sink.push_named("device_vendor", vendor.0, vendor.1, Unescape::Header);
    sink.push_named("device_product", product.0, product.1, Unescape::Header);
    sink.push_named(
        "device_version",
        device_version.0,
        device_version.1,
        Unescape::Header,
    );
    sink.push_named("event_id", event_id.0, event_id.1, Unescape::Header);
    let body = sink.body;
    let mut start = attributes_start;
    let mut taken = 0;
    while start < body.len() && taken < MAX_PAIRS {
        let end = body[start..]
            .find(delimiter)
            .map_or(body.len(), |offset| start + offset);
        if let Some(equals) = body[start..end].find('=') {
            let key_end = start + equals;
            let key_start =
                start + (body[start..key_end].len() - body[start..key_end].trim_start().len());
            let mut value_end = end;
            while value_end > key_end + 1 && body.as_bytes()[value_end - 1].is_ascii_whitespace() {
                value_end -= 1;
            }
            sink.push_pair(
                (key_start, key_end),
                (key_end + 1, value_end),
                Unescape::None,
            );
            taken += 1;
        }
        start = end + delimiter.len_utf8();
    }
    true
}

/// The LEEF 2.0 delimiter field: one character, or `x`/`0x` and its code in hex; `None` when
/// empty or not understood (then tab).
fn leef_delimiter(field: &str) -> Option<char> {
    let field = field.trim();
    let hex = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .or_else(|| field.strip_prefix('x'))
        .or_else(|| field.strip_prefix('X'));
    if let Some(hex) = hex
        && !hex.is_empty()
        && hex.len() <= 4
        && let Ok(code) = u32::from_str_radix(hex, 16)
    {
        return char::from_u32(code);
    }
    let mut chars = field.chars();
    match (chars.next(), chars.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_read_in_every_spelling() {
        assert_eq!(leef_delimiter("^"), Some('^'));
        assert_eq!(leef_delimiter("x5E"), Some('^'));
        assert_eq!(leef_delimiter("0x5e"), Some('^'));
        assert_eq!(leef_delimiter("x09"), Some('\t'));
        assert_eq!(leef_delimiter(""), None);
        assert_eq!(leef_delimiter("xZZ"), None);
    }

    #[test]
    fn unescaping_follows_the_part_rules() {
        assert_eq!(
            Unescape::Header.apply(r"a \| b \\ c \= d"),
            r"a | b \ c \= d"
        );
        assert_eq!(
            Unescape::Extension.apply(r"a \= b \\ c\nd \x"),
            "a = b \\ c\nd \\x"
        );
        assert_eq!(Unescape::Extension.apply("trailing\\"), "trailing\\");
    }
}
