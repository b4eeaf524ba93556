//! Finding every occurrence of many literal needles in one field value.
//!
//! One scanner per field slot holds both the case-insensitive needles (ASCII-lowercased) and the
//! case-sensitive ones (`|cased`, regex literals without `(?i)`). Needles of 4 bytes or more are
//! found by one *anchor*: a 4-byte window of the needle, chosen at build time to be shared by as
//! few needles as possible (so `/etc/cron.d/kinsing` is found by `sing`, not by the `/etc` that
//! 200 other needles and most log lines start with). At each position of the lowercased field
//! the 4-byte window is hashed into a 64 Ki-bit filter (8 KiB, stays in L1); on a filter hit (a
//! few per event) a rank over the filter gives the bucket of entries with that hash, and each
//! entry whose window is equal is compared byte for byte where its needle would start:
//! against the lowercased field for case-insensitive needles, against the field itself for
//! case-sensitive ones. Needles of 1–3 bytes go to small aho-corasick automata (one per case
//! sensitivity) with overlapping search. Every occurrence is reported, so the hit flags are
//! exact.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::compile::{NeedleId, hit};

/// How a scanner finds needles of 4 bytes or more (needles of 1–3 bytes always go to a small
/// aho-corasick automaton). Both report every occurrence, so matching results are identical;
/// only the speed differs (figures in `matcher.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiteralEngine {
    /// A 4-byte anchor filter and table (the default).
    #[default]
    AnchorTable,
    /// One aho-corasick DFA (overlapping, `MatchKind::Standard`) over all needles of the
    /// scanner per case sensitivity.
    AhoCorasickDfa,
}

const ANCHOR: usize = 4;
const FILTER_BITS: usize = 1 << 16;
const FILTER_WORDS: usize = FILTER_BITS / 64;

fn filter_index(window: u32) -> usize {
    (window.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

fn window_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One needle of 4 bytes or more, found by its anchor window.
#[derive(Debug)]
struct Entry {
    /// The anchor: 4 bytes of the (lowercased when the scanner folds) needle at `offset`.
    window: u32,
    offset: u32,
    needle: NeedleId,
    /// Compared against the field as is (else against its lowercased copy).
    cased: bool,
    bytes: Box<[u8]>,
}

/// An aho-corasick automaton and the needle of each of its patterns.
#[derive(Debug)]
struct Automaton {
    automaton: AhoCorasick,
    ids: Vec<NeedleId>,
}

/// A needle for [`LiteralScanner::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NeedleSpec<'a> {
    pub id: NeedleId,
    /// ASCII-lowercased already when not `cased`.
    pub text: &'a str,
    pub cased: bool,
}

/// The scanner of one field slot.
#[derive(Debug)]
pub(crate) struct LiteralScanner {
    /// Aho-corasick automata: the short needles (anchor table), or all needles (DFA engine).
    automata: Vec<Automaton>,
    /// Windows are read from the ASCII-lowercased field (false when every entry is cased).
    fold: bool,
    filter: Vec<u64>,
    /// Per filter word: the number of set filter bits before it.
    rank: Vec<u32>,
    /// Per set filter bit (in order): where its entries start in `entries`; one extra end.
    bucket_starts: Vec<u32>,
    entries: Vec<Entry>,
}

impl LiteralScanner {
    /// Fails only if aho-corasick cannot build an automaton.
    pub(crate) fn new(
        needles: &[NeedleSpec<'_>],
        engine: LiteralEngine,
    ) -> Result<LiteralScanner, aho_corasick::BuildError> {
        let mut scanner = LiteralScanner {
            automata: Vec::new(),
            fold: needles.iter().any(|needle| !needle.cased),
            filter: Vec::new(),
            rank: Vec::new(),
            bucket_starts: Vec::new(),
            entries: Vec::new(),
        };
        let (automaton_needles, long): (Vec<NeedleSpec<'_>>, Vec<NeedleSpec<'_>>) =
            needles.iter().partition(|needle| {
                engine == LiteralEngine::AhoCorasickDfa || needle.text.len() < ANCHOR
            });
        for cased in [false, true] {
            let (ids, patterns): (Vec<NeedleId>, Vec<&str>) = automaton_needles
                .iter()
                .filter(|needle| needle.cased == cased)
                .map(|needle| (needle.id, needle.text))
                .unzip();
            if patterns.is_empty() {
                continue;
            }
            let mut builder = AhoCorasick::builder();
            builder
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(!cased);
            if engine == LiteralEngine::AhoCorasickDfa {
                builder.kind(Some(AhoCorasickKind::DFA));
            }
            scanner.automata.push(Automaton {
                automaton: builder.build(&patterns)?,
                ids,
            });
        }
        scanner.build_table(&long);
        Ok(scanner)
    }

    /// Chooses each long needle's anchor and lays out the filter, rank and buckets.
    fn build_table(&mut self, long: &[NeedleSpec<'_>]) {
        if long.is_empty() {
            return;
        }
        // Needles with fewer windows choose first; each takes the window the fewest needles
        // chosen so far share, preferring windows of letters (punctuation, digits and blanks
        // are common in log text), then later offsets (the distinctive part of a path).
        let mut order: Vec<&NeedleSpec<'_>> = long.iter().collect();
        order.sort_by_key(|needle| (needle.text.len(), needle.id));
        let mut usage: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        let mut entries = Vec::with_capacity(order.len());
        for needle in order {
            let bytes = needle.text.as_bytes();
            let anchor_bytes: Vec<u8> = if self.fold {
                bytes.to_ascii_lowercase()
            } else {
                bytes.to_vec()
            };
            let common = |at: usize| {
                anchor_bytes[at..at + ANCHOR]
                    .iter()
                    .filter(|byte| !byte.is_ascii_alphabetic())
                    .count()
            };
            let offset = (0..=bytes.len() - ANCHOR)
                .rev()
                .min_by_key(|&at| {
                    let shared = usage
                        .get(&window_at(&anchor_bytes, at))
                        .copied()
                        .unwrap_or(0);
                    (shared, common(at))
                })
                .unwrap_or(0);
            let window = window_at(&anchor_bytes, offset);
            *usage.entry(window).or_default() += 1;
            entries.push(Entry {
                window,
                offset: offset as u32,
                needle: needle.id,
                cased: needle.cased,
                bytes: bytes.into(),
            });
        }
        entries.sort_by_key(|entry| (filter_index(entry.window), entry.window, entry.needle));
        let mut filter = vec![0u64; FILTER_WORDS];
        for entry in &entries {
            let index = filter_index(entry.window);
            filter[index / 64] |= 1 << (index % 64);
        }
        let mut rank = Vec::with_capacity(FILTER_WORDS);
        let mut set_bits = 0u32;
        for word in &filter {
            rank.push(set_bits);
            set_bits += word.count_ones();
        }
        let mut bucket_starts = Vec::with_capacity(set_bits as usize + 1);
        let mut previous = None;
        for (position, entry) in entries.iter().enumerate() {
            let index = filter_index(entry.window);
            if previous != Some(index) {
                bucket_starts.push(position as u32);
                previous = Some(index);
            }
        }
        bucket_starts.push(entries.len() as u32);
        self.filter = filter;
        self.rank = rank;
        self.bucket_starts = bucket_starts;
        self.entries = entries;
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
        for Automaton { automaton, ids } in &self.automata {
            for found in automaton.find_overlapping_iter(text) {
                if let Some(id) = ids.get(found.pattern().as_usize()) {
                    on_hit(*id, flags_for(found.start(), found.end()));
                }
            }
        }
        if self.entries.is_empty() || length < ANCHOR {
            return;
        }
        let original = text.as_bytes();
        let haystack: &[u8] = if self.fold {
            lowered.clear();
            lowered.extend(original.iter().map(u8::to_ascii_lowercase));
            lowered
        } else {
            original
        };
        for (position, chunk) in haystack.windows(ANCHOR).enumerate() {
            let window = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = filter_index(window);
            let word = self.filter[index / 64];
            let bit = 1u64 << (index % 64);
            if word & bit == 0 {
                continue;
            }
            let bucket = self.rank[index / 64] as usize + (word & (bit - 1)).count_ones() as usize;
            let (Some(&from), Some(&to)) = (
                self.bucket_starts.get(bucket),
                self.bucket_starts.get(bucket + 1),
            ) else {
                continue;
            };
            let Some(bucket_entries) = self.entries.get(from as usize..to as usize) else {
                continue;
            };
            for entry in bucket_entries {
                if entry.window != window {
                    continue;
                }
                let Some(start) = position.checked_sub(entry.offset as usize) else {
                    continue;
                };
                let end = start + entry.bytes.len();
                let source = if entry.cased { original } else { haystack };
                if source.get(start..end) == Some(&entry.bytes[..]) {
                    on_hit(entry.needle, flags_for(start, end));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs<'a>(needles: &[(NeedleId, &'a str)], cased: bool) -> Vec<NeedleSpec<'a>> {
        needles
            .iter()
            .map(|(id, text)| NeedleSpec {
                id: *id,
                text,
                cased,
            })
            .collect()
    }

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
            &specs(&[(0, "ab"), (1, "abcd"), (2, "bcdx"), (3, "aaaa")], false),
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
            let scanner =
                LiteralScanner::new(&specs(&[(0, "Wget"), (1, "X")], true), engine).unwrap();
            assert_eq!(hits(&scanner, "wget x"), vec![]);
            assert_eq!(hits(&scanner, "a Wget X").len(), 2);
        }
    }

    #[test]
    fn mixed_case_sensitivity_in_one_scanner() {
        for engine in [LiteralEngine::AnchorTable, LiteralEngine::AhoCorasickDfa] {
            let mut needles = specs(&[(0, "wget"), (1, "x"), (2, "/etc/cron.d/kinsing")], false);
            needles.extend(specs(&[(3, "Wget"), (4, "X"), (5, "cron.D/")], true));
            let scanner = LiteralScanner::new(&needles, engine).unwrap();
            assert_eq!(
                hits(&scanner, "WGET x"),
                vec![(0, hit::ANY | hit::START), (1, hit::ANY | hit::END)]
            );
            assert_eq!(
                hits(&scanner, "Wget X"),
                vec![
                    (0, hit::ANY | hit::START),
                    (1, hit::ANY | hit::END),
                    (3, hit::ANY | hit::START),
                    (4, hit::ANY | hit::END)
                ]
            );
            assert_eq!(
                hits(&scanner, "/ETC/cron.D/kinsing"),
                vec![(2, 15), (5, hit::ANY)]
            );
            assert_eq!(hits(&scanner, "/etc/cron.d/kinsin"), vec![]);
        }
    }

    #[test]
    fn anchors_avoid_shared_prefixes() {
        let texts: Vec<String> = (0..50).map(|i| format!("/etc/cron.d/implant{i:02}")).collect();
        let needles: Vec<NeedleSpec<'_>> = texts
            .iter()
            .enumerate()
            .map(|(id, text)| NeedleSpec {
                id: id as NeedleId,
                text,
                cased: false,
            })
            .collect();
        let scanner = LiteralScanner::new(&needles, LiteralEngine::AnchorTable).unwrap();
        let distinct: std::collections::HashSet<u32> =
            scanner.entries.iter().map(|entry| entry.window).collect();
        assert!(distinct.len() >= 45, "{}", distinct.len());
        for (id, text) in texts.iter().enumerate() {
            let found = hits(&scanner, &format!("x {text} y"));
            assert_eq!(found, vec![(id as NeedleId, hit::ANY)], "{text}");
        }
    }
}
