//! Sigma string values: wildcards and escapes, encoding modifiers, CIDR ranges, and the direct
//! (non-automaton) string tests used by the naive evaluator and for glob patterns.
//!
//! Case-insensitive means ASCII case folding here and in the aho-corasick automata alike, so the
//! prefilter and the exact evaluation always agree (a non-ASCII letter matches only itself).

use std::net::IpAddr;

/// One token of a Sigma string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Parses wildcards and escapes: `\*`, `\?`, `\\` are literals; a `\` before anything else is a
/// plain backslash.
pub(crate) fn parse_wildcards(text: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    tokens.push(Token::Literal(next));
                }
                _ => tokens.push(Token::Literal('\\')),
            },
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            other => tokens.push(Token::Literal(other)),
        }
    }
    tokens
}

/// Plain text as literal tokens (no wildcard interpretation).
pub(crate) fn literal_tokens(text: &str) -> Vec<Token> {
    text.chars().map(Token::Literal).collect()
}

pub(crate) fn has_wildcards(tokens: &[Token]) -> bool {
    tokens
        .iter()
        .any(|token| !matches!(token, Token::Literal(_)))
}

pub(crate) fn tokens_to_string(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|token| match token {
            Token::Literal(c) => *c,
            Token::Star => '*',
            Token::One => '?',
        })
        .collect()
}

/// The dash-like characters `windash` permutes.
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn is_word(token: Option<&Token>) -> bool {
    matches!(token, Some(Token::Literal(c)) if c.is_alphanumeric() || *c == '_')
}

/// `windash`: every dash-like character in flag position (not after a word character, before a
/// word character, like pySigma's `\B[-/]\b`) becomes each of the five variants, in all
/// combinations. Returns `None` when that makes more than `max` values.
pub(crate) fn windash(tokens: &[Token], max: usize) -> Option<Vec<Vec<Token>>> {
    let positions: Vec<usize> = (0..tokens.len())
        .filter(|&index| {
            matches!(tokens[index], Token::Literal(c) if DASHES.contains(&c))
                && !is_word(index.checked_sub(1).and_then(|i| tokens.get(i)))
                && is_word(tokens.get(index + 1))
        })
        .collect();
    let mut count = 1usize;
    for _ in &positions {
        count = count.checked_mul(DASHES.len()).filter(|c| *c <= max)?;
    }
    let mut out = Vec::with_capacity(count);
    for mut combination in 0..count {
        let mut variant = tokens.to_vec();
        for &position in &positions {
            variant[position] = Token::Literal(DASHES[combination % DASHES.len()]);
            combination /= DASHES.len();
        }
        out.push(variant);
    }
    Some(out)
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(
                    BASE64_ALPHABET[((triple >> shift) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `base64offset`: the three encodings of `bytes` at offsets 0, 1 and 2 of a base64 stream, with
/// the characters that depend on the neighbouring bytes cut off (as pySigma does).
pub(crate) fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_CUT: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|shift| {
            let mut padded = vec![b' '; shift];
            padded.extend_from_slice(bytes);
            let encoded = base64_encode(&padded);
            let cut = END_CUT[(bytes.len() + shift) % 3];
            let end = encoded.len().saturating_sub(cut);
            encoded.get(START[shift]..end).unwrap_or("").to_owned()
        })
        .filter(|variant| !variant.is_empty())
        .collect()
}

/// UTF-16 encodings for `utf16le`/`wide`, `utf16be` and `utf16` (with a little-endian BOM).
pub(crate) fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2 + 2);
    if bom {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in text.encode_utf16() {
        if big_endian {
            out.extend_from_slice(&unit.to_be_bytes());
        } else {
            out.extend_from_slice(&unit.to_le_bytes());
        }
    }
    out
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` (a bare address is a host route).
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// A compiled glob: bytes, `?` (one character) and `*`. Literal bytes are ASCII-lowercased when
/// the glob is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GlobToken {
    Byte(u8),
    One,
    Star,
}

pub(crate) fn compile_glob(tokens: &[Token], cased: bool) -> Vec<GlobToken> {
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        match token {
            Token::Literal(c) => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push(GlobToken::Byte(if cased {
                        byte
                    } else {
                        byte.to_ascii_lowercase()
                    }));
                }
            }
            Token::One => out.push(GlobToken::One),
            Token::Star => {
                if out.last() != Some(&GlobToken::Star) {
                    out.push(GlobToken::Star);
                }
            }
        }
    }
    out
}

fn char_len_at(text: &[u8], index: usize) -> usize {
    let lead = text[index];
    let len = if lead < 0x80 {
        1
    } else if lead < 0xE0 {
        2
    } else if lead < 0xF0 {
        3
    } else {
        4
    };
    len.min(text.len() - index)
}

/// Matches a whole text against a glob (iterative, with single-star backtracking).
pub(crate) fn glob_match(pattern: &[GlobToken], text: &str, cased: bool) -> bool {
    let text = text.as_bytes();
    let (mut p, mut t) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if t == text.len() {
            return pattern[p..].iter().all(|token| *token == GlobToken::Star);
        }
        let step = match pattern.get(p) {
            Some(GlobToken::Star) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(GlobToken::Byte(byte)) => {
                let actual = if cased {
                    text[t]
                } else {
                    text[t].to_ascii_lowercase()
                };
                (actual == *byte).then_some(1)
            }
            Some(GlobToken::One) => Some(char_len_at(text, t)),
            None => None,
        };
        match step {
            Some(step) => {
                p += 1;
                t += step;
            }
            None => {
                let Some((star_p, star_t)) = backtrack else {
                    return false;
                };
                let next = star_t + char_len_at(text, star_t);
                backtrack = Some((star_p, next));
                p = star_p + 1;
                t = next;
            }
        }
    }
}

pub(crate) fn eq_text(haystack: &str, needle: &str, cased: bool) -> bool {
    if cased {
        haystack == needle
    } else {
        haystack.eq_ignore_ascii_case(needle)
    }
}

pub(crate) fn starts_with_text(haystack: &str, needle: &str, cased: bool) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    haystack.len() >= needle.len() && {
        let head = &haystack[..needle.len()];
        if cased {
            head == needle
        } else {
            head.eq_ignore_ascii_case(needle)
        }
    }
}

pub(crate) fn ends_with_text(haystack: &str, needle: &str, cased: bool) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    haystack.len() >= needle.len() && {
        let tail = &haystack[haystack.len() - needle.len()..];
        if cased {
            tail == needle
        } else {
            tail.eq_ignore_ascii_case(needle)
        }
    }
}

pub(crate) fn contains_text(haystack: &str, needle: &str, cased: bool) -> bool {
    if cased {
        return haystack.contains(needle);
    }
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec_table() {
        assert_eq!(tokens_to_string(&parse_wildcards(r"a\*b")), "a*b");
        assert_eq!(parse_wildcards(r"a\*b")[1], Token::Literal('*'));
        assert_eq!(
            parse_wildcards(r"\\*"),
            vec![Token::Literal('\\'), Token::Star]
        );
        assert_eq!(
            parse_wildcards(r"\\\*"),
            vec![Token::Literal('\\'), Token::Literal('*')]
        );
        assert_eq!(
            parse_wildcards(r"\\\\"),
            vec![Token::Literal('\\'), Token::Literal('\\')]
        );
        assert_eq!(
            parse_wildcards(r"C:\Windows"),
            literal_tokens(r"C:\Windows")
        );
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        // pySigma: `/bin/bash` with base64offset.
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn base64_offsets_are_found_in_encodings_of_surrounding_text() {
        let value = b"secret";
        for prefix in ["", "a", "ab", "abc"] {
            let mut whole = prefix.as_bytes().to_vec();
            whole.extend_from_slice(value);
            whole.extend_from_slice(b"tail");
            let encoded = base64_encode(&whole);
            assert!(
                base64_offsets(value)
                    .iter()
                    .any(|variant| encoded.contains(variant.as_str())),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn windash_permutes_flag_dashes_only() {
        let variants = windash(&literal_tokens("net user -add a-b"), 100).unwrap();
        assert_eq!(variants.len(), 5);
        let rendered: Vec<String> = variants.iter().map(|v| tokens_to_string(v)).collect();
        assert!(rendered.contains(&"net user /add a-b".to_owned()));
        assert!(rendered.contains(&"net user \u{2015}add a-b".to_owned()));
        assert!(windash(&literal_tokens("-a -b -c -d"), 100).is_none());
    }

    #[test]
    fn cidr_contains() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.2.3.4".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let net6 = Cidr::parse("fe80::/10").unwrap();
        assert!(net6.contains("fe80::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }

    #[test]
    fn globs() {
        let glob = compile_glob(&parse_wildcards("a*b?c"), false);
        assert!(glob_match(&glob, "AxxBéc", false));
        assert!(glob_match(&glob, "abxc", false));
        assert!(!glob_match(&glob, "abc", false));
        let star = compile_glob(&parse_wildcards("*é*?"), true);
        assert!(glob_match(&star, "xéyz", true));
        assert!(!glob_match(&star, "xé", true));
        assert!(glob_match(
            &compile_glob(&parse_wildcards("*"), true),
            "",
            true
        ));
    }
}
