//! Finding every occurrence of many literal needles in one field value.
//!
//! Needles of 4 bytes or more are found by their first 4 bytes: a 64 Ki-bit filter (8 KiB, stays
//! in L1) indexed by a hash of the 4-byte window at each position, then a table lookup and a
//! byte comparison on the rare filter hits. That is a fixed, cache-friendly cost per byte,
//! where an aho-corasick DFA over thousands of needles misses the cache on most bytes. Needles
//! of 1–3 bytes go to a (small) aho-corasick automaton with overlapping search. Both report
//! every occurrence, so the hit flags are exact.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::compile::{NeedleId, hit};

/// How a scanner finds needles of 4 bytes or more (needles of 1–3 bytes always go to a small
/// aho-corasick automaton). Both report every occurrence, so matching results are identical;
/// only the speed differs (figures in `matcher.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiteralEngine {
    /// A 4-byte-prefix filter and table (the default).
    #[default]
    AnchorTable,
    /// One aho-corasick DFA (overlapping, `MatchKind::Standard`) over all needles of the
    /// scanner.
    AhoCorasickDfa,
}

const ANCHOR: usize = 4;

/// Needles by their first [`ANCHOR`] bytes.
type AnchorTable = HashMap<u32, Vec<(NeedleId, Box<[u8]>)>>;
const FILTER_BITS: usize = 1 << 16;

fn filter_index(window: u32) -> usize {
    (window.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// The scanner of one (field slot, case sensitivity).
#[derive(Debug)]
pub(crate) struct LiteralScanner {
    case_insensitive: bool,
    /// Needles shorter than [`ANCHOR`] bytes.
    short: Option<(AhoCorasick, Vec<NeedleId>)>,
    filter: Vec<u64>,
    /// First 4 bytes → (needle, its bytes).
    table: AnchorTable,
}

impl LiteralScanner {
    /// `needles` are lowercased already when `case_insensitive`. Fails only if aho-corasick
    /// cannot build the short-needle automaton.
    pub(crate) fn new(
        needles: &[(NeedleId, &str)],
        case_insensitive: bool,
        engine: LiteralEngine,
    ) -> Result<LiteralScanner, aho_corasick::BuildError> {
        if engine == LiteralEngine::AhoCorasickDfa {
            let patterns: Vec<&str> = needles.iter().map(|(_, text)| *text).collect();
            let automaton = AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(case_insensitive)
                .build(&patterns)?;
            return Ok(LiteralScanner {
                case_insensitive,
                short: Some((automaton, needles.iter().map(|(id, _)| *id).collect())),
                filter: Vec::new(),
                table: AnchorTable::new(),
            });
        }
        let mut filter = vec![0u64; FILTER_BITS / 64];
        let mut table = AnchorTable::new();
        let mut short_ids = Vec::new();
        let mut short_patterns = Vec::new();
        for (needle, text) in needles {
            let bytes = text.as_bytes();
            if bytes.len() < ANCHOR {
                short_ids.push(*needle);
                short_patterns.push(bytes);
                continue;
            }
            let window = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let index = filter_index(window);
            filter[index / 64] |= 1 << (index % 64);
            table
                .entry(window)
                .or_default()
                .push((*needle, bytes.into()));
        }
        let short = if short_patterns.is_empty() {
            None
        } else {
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(case_insensitive)
                .build(&short_patterns)?;
            Some((automaton, short_ids))
        };
        Ok(LiteralScanner {
            case_insensitive,
            short,
            filter,
            table,
        })
    }

    /// Calls `on_hit(needle, flags)` for every occurrence of every needle in `text`.
    /// `lowered` is a reusable buffer.
    pub(crate) fn scan(
        &self,
        text: &str,
        lowered: &mut Vec<u8>,
        mut on_hit: impl FnMut(NeedleId, u8),
    ) {
        let length = text.len();
        let flags_for = |start: usize, end: usize| {
            let mut flags = hit::ANY;
            if start == 0 {
                flags |= hit::START;
            }
            if end == length {
                flags |= hit::END;
            }
            if start == 0 && end == length {
                flags |= hit::WHOLE;
            }
            flags
        };
        if let Some((automaton, ids)) = &self.short {
            for found in automaton.find_overlapping_iter(text) {
                on_hit(
                    ids[found.pattern().as_usize()],
                    flags_for(found.start(), found.end()),
                );
            }
        }
        if self.table.is_empty() || length < ANCHOR {
            return;
        }
        let haystack: &[u8] = if self.case_insensitive {
            lowered.clear();
            lowered.extend(text.bytes().map(|byte| byte.to_ascii_lowercase()));
            lowered
        } else {
            text.as_bytes()
        };
        for (start, chunk) in haystack.windows(ANCHOR).enumerate() {
            let window = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = filter_index(window);
            if self.filter[index / 64] & (1 << (index % 64)) == 0 {
                continue;
            }
            let Some(candidates) = self.table.get(&window) else {
                continue;
            };
            let rest = &haystack[start..];
            for (needle, bytes) in candidates {
                if rest.starts_with(bytes) {
                    on_hit(*needle, flags_for(start, start + bytes.len()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(scanner: &LiteralScanner, text: &str) -> Vec<(NeedleId, u8)> {
        let mut out = Vec::new();
        scanner.scan(text, &mut Vec::new(), |needle, flags| {
            out.push((needle, flags))
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn finds_every_occurrence_with_position_flags() {
        for engine in [LiteralEngine::AnchorTable, LiteralEngine::AhoCorasickDfa] {
            finds_every_occurrence_with(engine);
        }
    }

    fn finds_every_occurrence_with(engine: LiteralEngine) {
        let scanner = LiteralScanner::new(
            &[(0, "ab"), (1, "abcd"), (2, "bcdx"), (3, "aaaa")],
            true,
            engine,
        )
        .unwrap();
        assert_eq!(
            hits(&scanner, "ABCDx"),
            vec![
                (0, hit::ANY | hit::START),
                (1, hit::ANY | hit::START),
                (2, hit::ANY | hit::END)
            ]
        );
        assert_eq!(
            hits(&scanner, "aaaaa"),
            vec![(3, hit::ANY | hit::START), (3, hit::ANY | hit::END)]
        );
        assert_eq!(hits(&scanner, "abcd"), vec![(0, 3), (1, 15)]);
        assert_eq!(hits(&scanner, "é"), vec![]);
    }

    #[test]
    fn case_sensitive_scanner_does_not_fold() {
        for engine in [LiteralEngine::AnchorTable, LiteralEngine::AhoCorasickDfa] {
            let scanner = LiteralScanner::new(&[(0, "Wget"), (1, "X")], false, engine).unwrap();
            assert_eq!(hits(&scanner, "wget x"), vec![]);
            assert_eq!(hits(&scanner, "a Wget X").len(), 2);
        }
    }
}
