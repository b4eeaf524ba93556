//! Field extraction: well-known message formats become named fields (`src_ip`, `user`,
//! `action`, `interface`, `unit`…) before matching, so rules and correlations need no regexes.
//!
//! Patterns are data ([`PatternDef`]: a name, an optional app, a template; syntax in
//! [`template`](self::template)) in the manner of syslog-ng's patterndb. The built-ins
//! ([`builtin`](self::builtin)) cover OpenSSH, sudo, su, PAM, account tools, systemd, kernel
//! (UFW/iptables, OOM, segfault, I/O errors, panic), mdadm, pfSense filterlog, Cisco ASA and IOS,
//! Juniper and web server access logs; operators add their own from the config.
//!
//! Per event, a CEF or LEEF message ([`cef`](self::cef): `CEF:0|…`, `LEEF:2.0|…`) gets its
//! header and extension fields and nothing else. Any other message, [`Normaliser::normalise`]
//! tries, and stops at the first template that verifies:
//! 1. the patterns scoped to the event's app (one hash lookup), in order;
//! 2. when the message carries a Cisco tag (`…: %ASA-4-106023: Deny …`, a relayed line whose
//!    tag the parser could not take as the app), the patterns scoped to that tag, on the text
//!    after it;
//! 3. the unscoped patterns whose anchor (the leading literal, else the longest literal, found
//!    with a prebuilt `memmem` finder) occurs in the message;
//! 4. when nothing matched and the message is mostly `key=value` pairs (FortiGate, many
//!    firewalls), every pair ([`kv`](self::kv), with vendor keys renamed).
//!
//! Invariants: captured values are spans into the frame (the message is a span of it) and
//! numbers are typed; only field *names* (and constants, renamed keys, unescaped values) are
//! owned. Existing fields win: a name already present before normalisation is not added again.
//! Nothing panics on any input, and the work per event is bounded by the message length times
//! the number of candidate templates.

mod builtin;
mod cef;
mod kv;
mod template;

use serde::Deserialize;

use crate::error::IngestError;
use crate::event::{Event, Field, FieldValue, Span, Text};
use crate::hash::FnvMap;

use template::{Captured, Captures, Piece, Template};

/// One pattern, as written in the config:
///
/// ```toml
/// [[normalise.pattern]]
/// name = "myapp_login_failed"
/// app = "myapp"                       # optional: only events of this app
/// template = "login failed for %{user:word} from %{src_ip:ip}"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternDef {
    /// A name for error messages and stats (unique names are recommended, not required).
    pub name: String,
    /// Only events whose app (syslog tag/program) is exactly this are tried; `None` tries every
    /// event whose message contains the template's anchor literal.
    #[serde(default)]
    pub app: Option<String>,
    /// The template (see the module docs of `normalise::template`).
    pub template: String,
}

#[derive(Debug)]
struct CompiledPattern {
    name: Box<str>,
    template: Template,
}

/// An unscoped pattern and how to find its candidates cheaply.
#[derive(Debug)]
struct Unscoped {
    pattern: u32,
    /// `None` when the template starts with a literal (verification starts with that compare).
    anchor: Option<memchr::memmem::Finder<'static>>,
}

/// Extracts fields from messages by pattern. Built once, shared by every worker (`Send + Sync`,
/// immutable).
#[derive(Debug)]
pub struct Normaliser {
    patterns: Vec<CompiledPattern>,
    by_app: FnvMap<Box<str>, Vec<u32>>,
    unscoped: Vec<Unscoped>,
    /// Interned field names; pieces refer to them by index.
    names: Vec<Box<str>>,
}

/// Is a text in the field list yet (only the fields present before normalisation count)?
fn has_field_named(raw: &[u8], fields: &[Field], name: &str) -> bool {
    fields
        .iter()
        .any(|field| text_in(raw, &field.name) == Some(name))
}

/// Resolves a text of an event against its raw bytes, validating only the span's bytes (the
/// whole frame is valid UTF-8 by the event invariants, but checking all of it costs more than
/// the rest of normalisation on a miss).
fn text_in<'a>(raw: &'a [u8], text: &'a Text) -> Option<&'a str> {
    match text {
        Text::Span(span) => raw
            .get(span.range())
            .and_then(|bytes| std::str::from_utf8(bytes).ok()),
        Text::Owned(owned) => Some(owned),
    }
}

impl Normaliser {
    /// The built-in patterns only.
    pub fn builtin() -> Normaliser {
        match Normaliser::new(Vec::new()) {
            Ok(normaliser) => normaliser,
            // The built-ins are tested to compile; an error here is a bug in this crate.
            Err(error) => unreachable!("built-in normalisation pattern invalid: {error}"),
        }
    }

    /// The built-in patterns plus `extra` (from the config). Extra patterns are tried before
    /// the built-ins of the same app, so an operator can override a built-in.
    ///
    /// # Errors
    ///
    /// [`IngestError::BadInput`] naming the pattern, the byte offset in its template and the
    /// problem (`normalise pattern 'x': unknown capture type 'float' in '%{n:float}' at byte 6`).
    pub fn new(extra: Vec<PatternDef>) -> Result<Normaliser, IngestError> {
        let mut normaliser = Normaliser {
            patterns: Vec::new(),
            by_app: FnvMap::default(),
            unscoped: Vec::new(),
            names: Vec::new(),
        };
        for def in &extra {
            normaliser.add(&def.name, def.app.as_deref(), &def.template)?;
        }
        for (name, app, template) in builtin::BUILTIN_PATTERNS {
            normaliser.add(name, *app, template)?;
        }
        Ok(normaliser)
    }

    /// How many patterns are loaded.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The names of the loaded patterns, in the order they are tried.
    pub fn pattern_names(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|pattern| &*pattern.name)
    }

    fn add(
        &mut self,
        name: &str,
        app: Option<&str>,
        template_text: &str,
    ) -> Result<(), IngestError> {
        let names = &mut self.names;
        let mut intern = |field: &str| -> u16 {
            if let Some(at) = names.iter().position(|known| &**known == field) {
                return at as u16;
            }
            names.push(field.into());
            (names.len() - 1) as u16
        };
        let template = template::parse_template(template_text, &mut intern).map_err(|error| {
            IngestError::BadInput(format!(
                "normalise pattern '{name}': {} at byte {}",
                error.problem, error.offset
            ))
        })?;
        if self.names.len() > usize::from(u16::MAX) {
            return Err(IngestError::BadInput(format!(
                "normalise pattern '{name}': too many distinct field names"
            )));
        }
        let index = self.patterns.len() as u32;
        match app {
            Some(app) if !app.is_empty() => {
                self.by_app.entry(app.into()).or_default().push(index);
            }
            _ => {
                let anchor = if template.starts_with_literal() {
                    None
                } else {
                    let Some(literal) = template.longest_literal() else {
                        return Err(IngestError::BadInput(format!(
                            "normalise pattern '{name}': a pattern without an app needs literal text to find it by"
                        )));
                    };
                    Some(memchr::memmem::Finder::new(literal.as_bytes()).into_owned())
                };
                self.unscoped.push(Unscoped {
                    pattern: index,
                    anchor,
                });
            }
        }
        self.patterns.push(CompiledPattern {
            name: name.into(),
            template,
        });
        Ok(())
    }

    /// Adds the fields the first matching pattern extracts from `event`'s message (see the
    /// module docs for the order). Never fails: an event no pattern matches is left as it was.
    pub fn normalise(&self, event: &mut Event) {
        let Event {
            raw,
            message,
            app,
            fields,
            ..
        } = event;
        let raw_text: &[u8] = raw;
        let message: &Text = message;
        let Some(message_text) = text_in(raw_text, message) else {
            return;
        };
        let base = match message {
            Text::Span(span) => Some(span.start as usize),
            Text::Owned(_) => None,
        };
        let app_text = app.as_ref().and_then(|app| text_in(raw_text, app));

        // Leading blanks are not part of any template; the kernel's uptime stamp neither.
        let mut offset = message_text.len() - message_text.trim_start().len();
        if app_text == Some("kernel") {
            offset += kernel_uptime_prefix(&message_text[offset..]);
        }
        let body = &message_text[offset..];
        let at = |start: usize| base.map(|base| base + offset + start);

        let preexisting = fields.len();
        if let Some((kind, version_at)) = cef::detect(app_text, body) {
            let wanted = |fields: &[Field], name: &str| {
                !has_field_named(raw_text, &fields[..preexisting.min(fields.len())], name)
            };
            let mut sink = cef::Sink {
                body,
                base: at(0),
                fields,
                wanted: &wanted,
            };
            if cef::extract(kind, version_at, &mut sink) {
                return;
            }
        }
        let mut captures = Captures::new();

        if let Some(app_text) = app_text
            && let Some(candidates) = self.by_app.get(app_text)
            && let Some(pattern) = self.first_match(candidates, body, &mut captures)
        {
            self.apply(
                pattern,
                body,
                at(0),
                raw_text,
                fields,
                preexisting,
                &captures,
            );
            return;
        }
        if let Some((tag, tag_end)) = embedded_cisco_tag(body)
            && Some(tag) != app_text
            && let Some(candidates) = self.by_app.get(tag)
            && let Some(rest) = body.get(tag_end..)
            && let Some(pattern) = self.first_match(candidates, rest, &mut captures)
        {
            self.apply(
                pattern,
                rest,
                at(tag_end),
                raw_text,
                fields,
                preexisting,
                &captures,
            );
            return;
        }
        for unscoped in &self.unscoped {
            if let Some(anchor) = &unscoped.anchor
                && anchor.find(body.as_bytes()).is_none()
            {
                continue;
            }
            let pattern = &self.patterns[unscoped.pattern as usize];
            if template::verify(&pattern.template, body, &mut captures) {
                self.apply(
                    pattern,
                    body,
                    at(0),
                    raw_text,
                    fields,
                    preexisting,
                    &captures,
                );
                return;
            }
        }
        if memchr::memchr(b'=', body.as_bytes()).is_some() && kv::is_mostly_key_values(body) {
            let wanted = |fields: &[Field], name: &str| {
                !has_field_named(raw_text, &fields[..preexisting.min(fields.len())], name)
            };
            kv::extract(body, at(0), fields, &wanted);
        }
    }

    fn first_match(
        &self,
        candidates: &[u32],
        body: &str,
        captures: &mut Captures,
    ) -> Option<&CompiledPattern> {
        candidates
            .iter()
            .map(|index| &self.patterns[*index as usize])
            .find(|pattern| template::verify(&pattern.template, body, captures))
    }

    /// Turns verified captures into fields. `base` is where `body` starts in the raw frame
    /// (`None` when the message is owned, not a span).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        pattern: &CompiledPattern,
        body: &str,
        base: Option<usize>,
        raw_text: &[u8],
        fields: &mut Vec<Field>,
        preexisting: usize,
        captures: &Captures,
    ) {
        fields.reserve(captures.len);
        for (name_index, captured) in captures.iter() {
            let name = self
                .names
                .get(usize::from(*name_index))
                .map_or("", |name| &**name);
            if preexisting > 0 && has_field_named(raw_text, &fields[..preexisting], name) {
                continue;
            }
            let value = match *captured {
                Captured::U64(number) => FieldValue::U64(number),
                Captured::I64(number) => FieldValue::I64(number),
                Captured::Span(start, end) => FieldValue::Text(match base {
                    Some(base) => Text::Span(Span::new(base + start as usize, base + end as usize)),
                    None => Text::owned(body.get(start as usize..end as usize).unwrap_or("")),
                }),
                Captured::Const(piece) => match pattern.template.pieces.get(usize::from(piece)) {
                    Some(Piece::Const { value, .. }) => {
                        FieldValue::Text(Text::Owned(value.clone()))
                    }
                    _ => continue,
                },
            };
            fields.push(Field {
                name: Text::Owned(name.into()),
                value,
            });
        }
        if let Some(kv_start) = captures.key_values_at
            && let Some(rest) = body.get(kv_start..)
        {
            let wanted = |fields: &[Field], name: &str| {
                !has_field_named(raw_text, &fields[..preexisting.min(fields.len())], name)
            };
            kv::extract(rest, base.map(|base| base + kv_start), fields, &wanted);
        }
    }
}

/// The length of a kernel uptime stamp (`[  123.456789] `) at the start of `text`, else 0.
fn kernel_uptime_prefix(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'[') {
        return 0;
    }
    let Some(close) = bytes.iter().take(24).position(|byte| *byte == b']') else {
        return 0;
    };
    let inside = &bytes[1..close];
    let is_stamp = inside.iter().any(u8::is_ascii_digit)
        && inside
            .iter()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b' ' | b'.'));
    if !is_stamp {
        return 0;
    }
    let after = close + 1;
    after + usize::from(bytes.get(after) == Some(&b' '))
}

/// A Cisco message tag inside the message (`…: %LINK-3-UPDOWN: Interface …`): returns the tag
/// (`%LINK-3-UPDOWN`) and where the text after `: ` starts. Only the first three `%` are looked at.
fn embedded_cisco_tag(body: &str) -> Option<(&str, usize)> {
    let bytes = body.as_bytes();
    for start in memchr::memchr_iter(b'%', bytes).take(3) {
        if start > 0 && bytes[start - 1] != b' ' {
            continue;
        }
        let Some(length) = cisco_tag_length(&bytes[start..]) else {
            continue;
        };
        let end = start + length;
        if bytes.get(end) == Some(&b':') {
            let after = end + 1 + usize::from(bytes.get(end + 1) == Some(&b' '));
            return Some((body.get(start..end)?, after));
        }
    }
    None
}

/// `%FACILITY-SEVERITY-MNEMONIC` (upper-case letters, digits, `_`; severity one digit 0-7).
fn cisco_tag_length(bytes: &[u8]) -> Option<usize> {
    let is_tag_byte =
        |byte: &u8| byte.is_ascii_uppercase() || byte.is_ascii_digit() || *byte == b'_';
    let facility = bytes
        .get(1..)?
        .iter()
        .take_while(|b| is_tag_byte(b))
        .count();
    let mut index = 1 + facility;
    if facility == 0 || bytes.get(index) != Some(&b'-') {
        return None;
    }
    index += 1;
    if !bytes
        .get(index)
        .is_some_and(|byte| (b'0'..=b'7').contains(byte))
    {
        return None;
    }
    index += 1;
    if bytes.get(index) != Some(&b'-') {
        return None;
    }
    index += 1;
    let mnemonic = bytes
        .get(index..)?
        .iter()
        .take_while(|b| is_tag_byte(b))
        .count();
    if mnemonic == 0 {
        return None;
    }
    Some(index + mnemonic)
}

#[cfg(test)]
mod tests;
