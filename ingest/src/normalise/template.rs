//! The template syntax of normalisation patterns: parsing (with precise errors) and left-to-right
//! verification against a message.
//!
//! A template is literal text with pieces in `%{…}`:
//!
//! | piece | meaning |
//! |---|---|
//! | `%{user}` | text up to the next literal of the template (the first occurrence), or the rest of the message when no literal follows |
//! | `%{src_port:int}` | an integer (`-?[0-9]+`, typed `U64`, or `I64` when negative) |
//! | `%{src_ip:ip}` | an IPv4 or IPv6 address |
//! | `%{user:word}` | non-empty text without whitespace |
//! | `%{_}`, `%{_:int}` | a capture that is checked but not kept |
//! | `%{action=deny}` | no input: sets the field to the constant |
//! | `%{:kv}` | the rest of the message is `key=value` pairs (last piece only) |
//! | `%%` | a literal `%` |
//!
//! A template matches a *prefix* of the message (trailing text is allowed). A typed capture with
//! no literal after it takes the longest run its type accepts (`port %{src_port:int}` matches
//! `port 22 ssh2`). A captured value that is empty or `-` is not emitted (access logs write `-`
//! for "none"); a typed capture must not be empty.

use std::net::IpAddr;

use memchr::memmem;

/// At most this many captures (constants included) per template.
pub(crate) const MAX_CAPTURES: usize = 32;
/// Templates longer than this are refused.
pub(crate) const MAX_TEMPLATE_BYTES: usize = 4096;

/// What a capture accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaptureKind {
    Text,
    Int,
    Ip,
    Word,
}

/// One piece of a compiled template. `name` is an index into the normaliser's name table;
/// `None` means "check, do not keep".
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Literal {
        text: Box<str>,
        /// Boxed: a finder is a few hundred bytes, the other pieces a few.
        finder: Box<memmem::Finder<'static>>,
    },
    Capture {
        name: Option<u16>,
        kind: CaptureKind,
    },
    Const {
        name: u16,
        value: Box<str>,
    },
    KeyValues,
}

/// A parsed template: its pieces (consecutive literals merged) and whether the pieces need the
/// name table (returned as owned names, interned by the caller).
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub pieces: Vec<Piece>,
}

impl Template {
    /// The longest literal (the anchor used to find candidate patterns), if any.
    pub(crate) fn longest_literal(&self) -> Option<&str> {
        self.pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Literal { text, .. } => Some(&**text),
                _ => None,
            })
            .max_by_key(|text| text.len())
    }

    /// Whether the template starts with a literal (then matching starts with a prefix compare).
    pub(crate) fn starts_with_literal(&self) -> bool {
        matches!(self.pieces.first(), Some(Piece::Literal { .. }))
    }
}

/// A template error: what is wrong and at which byte of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub offset: usize,
    pub problem: String,
}

fn error(offset: usize, problem: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        problem: problem.into(),
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= 64
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

/// Parses `template`; `intern` turns a field name into its index in the name table.
pub(crate) fn parse_template(
    template: &str,
    intern: &mut dyn FnMut(&str) -> u16,
) -> Result<Template, TemplateError> {
    if template.is_empty() {
        return Err(error(0, "empty template"));
    }
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(error(
            MAX_TEMPLATE_BYTES,
            format!("template longer than {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut literal = String::new();
    let mut captures = 0usize;
    let mut key_values_at: Option<usize> = None;
    let bytes = template.as_bytes();
    let mut index = 0;
    let flush = |literal: &mut String, pieces: &mut Vec<Piece>| {
        if !literal.is_empty() {
            let text: Box<str> = std::mem::take(literal).into_boxed_str();
            let finder = Box::new(memmem::Finder::new(text.as_bytes()).into_owned());
            pieces.push(Piece::Literal { text, finder });
        }
    };
    while index < bytes.len() {
        let rest = &template[index..];
        if rest.starts_with("%%") {
            literal.push('%');
            index += 2;
            continue;
        }
        if !rest.starts_with("%{") {
            let next = rest
                .char_indices()
                .skip(1)
                .find(|(_, ch)| *ch == '%')
                .map_or(rest.len(), |(at, _)| at);
            literal.push_str(&rest[..next]);
            index += next;
            continue;
        }
        let Some(close) = rest.find('}') else {
            return Err(error(index, "unclosed '%{'"));
        };
        let body = &rest[2..close];
        let piece_offset = index;
        index += close + 1;
        flush(&mut literal, &mut pieces);
        if body == ":kv" {
            if key_values_at.is_some() {
                return Err(error(piece_offset, "'%{:kv}' may appear only once"));
            }
            key_values_at = Some(piece_offset);
            if matches!(
                last_consuming(&pieces),
                Some(Piece::Capture { .. } | Piece::KeyValues)
            ) {
                return Err(error(
                    piece_offset,
                    "'%{:kv}' must follow a literal, not a capture",
                ));
            }
            pieces.push(Piece::KeyValues);
            continue;
        }
        captures += 1;
        if captures > MAX_CAPTURES {
            return Err(error(
                piece_offset,
                format!("more than {MAX_CAPTURES} captures"),
            ));
        }
        if let Some((name, value)) = body.split_once('=') {
            if !is_valid_name(name) || name == "_" {
                return Err(error(
                    piece_offset,
                    format!("invalid field name '{name}' in '%{{{body}}}'"),
                ));
            }
            pieces.push(Piece::Const {
                name: intern(name),
                value: value.into(),
            });
            continue;
        }
        let (name, kind) = match body.split_once(':') {
            None => (body, CaptureKind::Text),
            Some((name, "int")) => (name, CaptureKind::Int),
            Some((name, "ip")) => (name, CaptureKind::Ip),
            Some((name, "word")) => (name, CaptureKind::Word),
            Some((name, "text")) => (name, CaptureKind::Text),
            Some((_, other)) => {
                return Err(error(
                    piece_offset,
                    format!(
                        "unknown capture type '{other}' in '%{{{body}}}' (expected int, ip, word, text or kv)"
                    ),
                ));
            }
        };
        if !is_valid_name(name) {
            return Err(error(
                piece_offset,
                format!("invalid field name '{name}' in '%{{{body}}}'"),
            ));
        }
        if matches!(last_consuming(&pieces), Some(Piece::Capture { .. })) {
            return Err(error(
                piece_offset,
                "two captures must be separated by literal text",
            ));
        }
        let name = (name != "_").then(|| intern(name));
        pieces.push(Piece::Capture { name, kind });
    }
    flush(&mut literal, &mut pieces);
    if let Some(offset) = key_values_at
        && !matches!(pieces.last(), Some(Piece::KeyValues))
    {
        return Err(error(offset, "'%{:kv}' must be the last piece"));
    }
    if !pieces.iter().any(|piece| {
        matches!(
            piece,
            Piece::Literal { .. } | Piece::Capture { .. } | Piece::KeyValues
        )
    }) {
        return Err(error(0, "a template needs literal text or a capture"));
    }
    Ok(Template { pieces })
}

/// The last piece that consumes input (constants do not).
fn last_consuming(pieces: &[Piece]) -> Option<&Piece> {
    pieces
        .iter()
        .rev()
        .find(|piece| !matches!(piece, Piece::Const { .. }))
}

/// A value found by verification, relative to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Captured {
    Span(u32, u32),
    U64(u64),
    I64(i64),
    /// The constant of piece `index`.
    Const(u16),
}

/// The captures of one successful verification (fixed size: no allocation).
#[derive(Debug)]
pub(crate) struct Captures {
    pub items: [(u16, Captured); MAX_CAPTURES],
    pub len: usize,
    /// Where `%{:kv}` starts in the message, when the template ends with it.
    pub key_values_at: Option<usize>,
}

impl Captures {
    pub(crate) fn new() -> Captures {
        Captures {
            items: [(0, Captured::U64(0)); MAX_CAPTURES],
            len: 0,
            key_values_at: None,
        }
    }

    fn push(&mut self, name: u16, value: Captured) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (name, value);
            self.len += 1;
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(u16, Captured)> {
        self.items[..self.len].iter()
    }
}

/// The length of the longest prefix of `text` that `kind` accepts (used when no literal follows
/// a typed capture).
fn typed_extent(kind: CaptureKind, text: &str) -> usize {
    let bytes = text.as_bytes();
    match kind {
        CaptureKind::Text => text.len(),
        CaptureKind::Int => {
            let sign = usize::from(bytes.first() == Some(&b'-'));
            sign + bytes[sign..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count()
        }
        CaptureKind::Ip => bytes
            .iter()
            .take_while(|byte| byte.is_ascii_hexdigit() || matches!(byte, b'.' | b':' | b'-'))
            .count(),
        CaptureKind::Word => bytes
            .iter()
            .take_while(|byte| !byte.is_ascii_whitespace())
            .count(),
    }
}

/// Checks a captured value against its kind; `Ok(None)` means "absent" (empty or `-`).
fn typed_value(kind: CaptureKind, text: &str, start: usize) -> Result<Option<Captured>, ()> {
    if text == "-" {
        return Ok(None);
    }
    let span = || Captured::Span(start as u32, (start + text.len()) as u32);
    match kind {
        CaptureKind::Text => Ok((!text.is_empty()).then(span)),
        CaptureKind::Word => {
            if text.is_empty() || text.bytes().any(|byte| byte.is_ascii_whitespace()) {
                Err(())
            } else {
                Ok(Some(span()))
            }
        }
        CaptureKind::Ip => {
            if text.len() <= 45 && text.parse::<IpAddr>().is_ok() {
                Ok(Some(span()))
            } else {
                Err(())
            }
        }
        CaptureKind::Int => {
            let is_digits = |digits: &str| {
                !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
            };
            if let Some(digits) = text.strip_prefix('-') {
                if !is_digits(digits) {
                    return Err(());
                }
                text.parse::<i64>()
                    .map(|number| Some(Captured::I64(number)))
                    .map_err(|_| ())
            } else if is_digits(text) {
                text.parse::<u64>()
                    .map(|number| Some(Captured::U64(number)))
                    .map_err(|_| ())
            } else {
                Err(())
            }
        }
    }
}

/// Verifies `template` against `message` left to right; fills `captures` on success.
pub(crate) fn verify(template: &Template, message: &str, captures: &mut Captures) -> bool {
    captures.len = 0;
    captures.key_values_at = None;
    let bytes = message.as_bytes();
    let mut position = 0usize;
    for (index, piece) in template.pieces.iter().enumerate() {
        match piece {
            Piece::Literal { text, .. } => {
                if !bytes[position..].starts_with(text.as_bytes()) {
                    return false;
                }
                position += text.len();
            }
            Piece::Const { name, .. } => {
                captures.push(*name, Captured::Const(index as u16));
            }
            Piece::KeyValues => {
                captures.key_values_at = Some(position);
                return true;
            }
            Piece::Capture { name, kind } => {
                let next_literal = template.pieces[index + 1..]
                    .iter()
                    .find(|piece| !matches!(piece, Piece::Const { .. }));
                let rest = &message[position..];
                let length = match next_literal {
                    Some(Piece::Literal { finder, .. }) => match finder.find(rest.as_bytes()) {
                        Some(at) => at,
                        None => return false,
                    },
                    _ => typed_extent(*kind, rest),
                };
                // Literals are whole UTF-8 strings and typed extents stop at ASCII bytes, so
                // `length` is a char boundary; `get` keeps that a non-panicking fact.
                let Some(value_text) = rest.get(..length) else {
                    return false;
                };
                match typed_value(*kind, value_text, position) {
                    Err(()) => return false,
                    Ok(Some(value)) => {
                        if let Some(name) = name {
                            captures.push(*name, value);
                        }
                    }
                    Ok(None) => {}
                }
                position += length;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(template: &str) -> Result<(Template, Vec<String>), TemplateError> {
        let mut names: Vec<String> = Vec::new();
        let mut intern = |name: &str| {
            if let Some(at) = names.iter().position(|known| known == name) {
                return at as u16;
            }
            names.push(name.to_owned());
            (names.len() - 1) as u16
        };
        let template = parse_template(template, &mut intern)?;
        Ok((template, names))
    }

    fn captured(template: &str, message: &str) -> Option<Vec<(String, String)>> {
        let (template, names) = parse(template).expect("valid template");
        let mut captures = Captures::new();
        if !verify(&template, message, &mut captures) {
            return None;
        }
        let mut out: Vec<(String, String)> = captures
            .iter()
            .map(|(name, value)| {
                let text = match *value {
                    Captured::Span(start, end) => message[start as usize..end as usize].to_owned(),
                    Captured::U64(number) => format!("u{number}"),
                    Captured::I64(number) => format!("i{number}"),
                    Captured::Const(piece) => match &template.pieces[piece as usize] {
                        Piece::Const { value, .. } => format!("c{value}"),
                        _ => String::from("?"),
                    },
                };
                (names[*name as usize].clone(), text)
            })
            .collect();
        if let Some(at) = captures.key_values_at {
            out.push((String::from("<kv>"), message[at..].to_owned()));
        }
        Some(out)
    }

    fn pairs(expected: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            expected
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn captures_end_at_the_next_literal_and_typed_ones_at_their_type() {
        assert_eq!(
            captured(
                "Failed password for %{user:word} from %{src_ip:ip} port %{src_port:int}",
                "Failed password for root from 10.0.0.1 port 22 ssh2"
            ),
            pairs(&[
                ("user", "root"),
                ("src_ip", "10.0.0.1"),
                ("src_port", "u22")
            ])
        );
        assert_eq!(
            captured("a %{x} b", "a one two b three"),
            pairs(&[("x", "one two")])
        );
        assert_eq!(
            captured("a %{x}", "a rest of it"),
            pairs(&[("x", "rest of it")])
        );
        assert_eq!(captured("n=%{n:int}", "n=-5;"), pairs(&[("n", "i-5")]));
    }

    #[test]
    fn near_misses_do_not_verify() {
        let template = "Failed password for %{user:word} from %{src_ip:ip} port %{src_port:int}";
        assert_eq!(
            captured(
                template,
                "Failed password for invalid user x from 1.2.3.4 port 2"
            ),
            None
        );
        assert_eq!(
            captured(template, "Failed password for x from host.example port 2"),
            None
        );
        assert_eq!(
            captured(template, "Failed password for x from 1.2.3.4 port ssh"),
            None
        );
        assert_eq!(captured(template, "Failed password for x"), None);
        assert_eq!(captured("abc", "ab"), None);
    }

    #[test]
    fn dash_and_empty_are_absent_and_constants_and_kv_are_kept() {
        assert_eq!(
            captured("%{a},%{b},%{c:int}", "-,,7"),
            pairs(&[("c", "u7")])
        );
        assert!(
            parse("[UFW %{action}] %{:kv}%{x=y}").is_err(),
            "nothing may follow kv"
        );
        assert_eq!(
            captured(
                "%{set=yes}[UFW %{action}] %{:kv}",
                "[UFW BLOCK] IN=eth0 OUT="
            ),
            pairs(&[
                ("set", "cyes"),
                ("action", "BLOCK"),
                ("<kv>", "IN=eth0 OUT=")
            ])
        );
        assert_eq!(captured("100%% %{x}", "100% done"), pairs(&[("x", "done")]));
    }

    #[test]
    fn invalid_templates_name_the_problem_and_offset() {
        let problem = |template: &str| parse(template).map(|_| ()).unwrap_err();
        assert_eq!(problem("").problem, "empty template");
        assert_eq!(problem("a %{x").offset, 2);
        assert!(
            problem("a %{x:float}")
                .problem
                .contains("unknown capture type 'float'")
        );
        assert!(problem("%{a}%{b}").problem.contains("separated by literal"));
        assert!(problem("%{:kv} tail").problem.contains("last piece"));
        assert!(
            problem("x %{1bad}")
                .problem
                .contains("invalid field name '1bad'")
        );
        assert!(problem("%{a=1}").problem.contains("needs literal text"));
    }

    #[test]
    fn multibyte_text_never_splits_a_char() {
        assert_eq!(
            captured("é %{x:word}", "é żółw więcej"),
            pairs(&[("x", "żółw")])
        );
        assert_eq!(captured("%{x} ł", "ab ł"), pairs(&[("x", "ab")]));
    }
}
