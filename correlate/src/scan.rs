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

fn filter_index(window: u32, shift: u32) -> usize {
    (window.wrapping_mul(0x9E37_79B1) >> shift) as usize
}

/// Words frequent in syslog text (sshd, sudo, PAM, systemd, kernel, cron, mail, web access
/// logs, containers). Their 4-byte windows (with the blanks around them) are poor anchors: a
/// needle anchored on `user` or `/bin` would be compared on most lines.
const COMMON_LOG_WORDS: &[&str] = &[
    "user",
    "users",
    "root",
    "from",
    "port",
    "for",
    "the",
    "and",
    "with",
    "session",
    "opened",
    "closed",
    "failed",
    "failure",
    "password",
    "accepted",
    "publickey",
    "invalid",
    "connection",
    "connect",
    "disconnect",
    "disconnected",
    "received",
    "authentication",
    "error",
    "warning",
    "info",
    "notice",
    "debug",
    "started",
    "starting",
    "stopped",
    "finished",
    "service",
    "systemd",
    "kernel",
    "sshd",
    "sudo",
    "cron",
    "command",
    "status",
    "restart",
    "reload",
    "request",
    "get",
    "post",
    "head",
    "http",
    "https",
    "http://",
    "https://",
    "http/1.1",
    "mozilla/5.0",
    "linux",
    "x86_64",
    "windows",
    "nginx",
    "apache",
    "docker",
    "container",
    "level=info",
    "msg=",
    "uid=",
    "pid=",
    "src=",
    "dst=",
    "proto=",
    "tty=pts/",
    "pwd=",
    "user=",
    "command=",
    "/bin/",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/",
    "/home/",
    "/var/log/",
    "/var/",
    "/etc/",
    "/tmp/",
    "/dev/",
    "/proc/",
    "/run/",
    "/srv/",
    "/opt/",
    "/lib/",
    "/api/",
    "/index.html",
    "daily",
    "activities",
    "cleanup",
    "temporary",
    "directories",
    "rotate",
    "files",
    "file",
    "mail",
    "client",
    "unknown",
    "reject",
    "relay",
    "access",
    "denied",
    "deploy",
    "admin",
    "backup",
    "ubuntu",
    "data",
    "host",
    "server",
    "local",
    "system",
    "process",
    "pam_unix",
    "ssh2",
    "eth0",
    "interface",
    "mounted",
    "filesystem",
    "device",
    "number",
    "using",
    "link",
    "flow",
    "control",
    "new",
    "high",
    "speed",
    "tcp",
    "udp",
];

/// The 4-byte windows of [`COMMON_LOG_WORDS`] with their surrounding blanks.
fn common_windows() -> std::collections::HashSet<u32> {
    let mut windows = std::collections::HashSet::new();
    for word in COMMON_LOG_WORDS {
        let padded = format!(" {word} ");
        let bytes = padded.as_bytes();
        for at in 0..=bytes.len() - ANCHOR {
            windows.insert(window_at(bytes, at));
        }
    }
    windows
}

/// How common a byte is in log text (higher: more common), for choosing rare anchors: blanks
/// and frequent lowercase letters most, then other letters and digits, the usual separators,
/// uppercase, other punctuation, non-ASCII.
fn byte_commonness(byte: u8) -> u32 {
    match byte {
        b' ' => 10,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'h' | b'l' | b'd' | b'c'
        | b'u' => 8,
        b'a'..=b'z' | b'0'..=b'9' => 6,
        b'/' | b'.' | b'-' | b':' | b'=' | b'_' => 5,
        b'A'..=b'Z' => 3,
        0..=0x7f => 2,
        _ => 1,
    }
}

fn window_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One needle of 4 bytes or more, found by its anchor window (16 bytes: the hot part only; the
/// needle itself is in `LiteralScanner::long`).
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The anchor: 4 bytes of the (lowercased when the scanner folds) needle at `offset`.
    window: u32,
    /// The needle's last 4 bytes as compared (cased or lowercased), checked before the full
    /// comparison so a common anchor costs no `memcmp` call.
    tail: u32,
    /// Index into `LiteralScanner::long`.
    long: u32,
    offset: u16,
    /// Compared against the field as is (else against its lowercased copy).
    cased: bool,
}

/// A needle of 4 bytes or more: its id and bytes (lowercased unless case-sensitive).
#[derive(Debug)]
struct LongNeedle {
    id: NeedleId,
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
    /// `hash >> filter_shift` indexes `filter` (sized to the needle count: small filters stay
    /// in L1 next to the other slots' filters).
    filter_shift: u32,
    /// Per filter word: the number of set filter bits before it.
    rank: Vec<u32>,
    /// Per set filter bit (in order): where its entries start in `entries`; one extra end.
    bucket_starts: Vec<u32>,
    entries: Vec<Entry>,
    long: Vec<LongNeedle>,
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
            filter_shift: 32,
            rank: Vec::new(),
            bucket_starts: Vec::new(),
            entries: Vec::new(),
            long: Vec::new(),
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
        // Needles with fewer windows choose first; each takes, in this order of preference, a
        // window not found in common log words (so `strace -r /root/.ssh` is not found by
        // `root`), the window the fewest needles chosen so far share, the one of the rarest
        // bytes, the later offset.
        let common = common_windows();
        let mut order: Vec<&NeedleSpec<'_>> = long.iter().collect();
        order.sort_by_key(|needle| (needle.text.len(), needle.id));
        let mut usage: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        let mut entries = Vec::with_capacity(order.len());
        let mut long_needles = Vec::with_capacity(order.len());
        for needle in order {
            let bytes = needle.text.as_bytes();
            let anchor_bytes: Vec<u8> = if self.fold {
                bytes.to_ascii_lowercase()
            } else {
                bytes.to_vec()
            };
            let commonness = |at: usize| -> u32 {
                anchor_bytes[at..at + ANCHOR]
                    .iter()
                    .map(|byte| byte_commonness(*byte))
                    .sum()
            };
            let last_start = bytes.len() - ANCHOR;
            let offset = (0..=last_start.min(usize::from(u16::MAX)))
                .rev()
                .min_by_key(|&at| {
                    let shared = usage
                        .get(&window_at(&anchor_bytes, at))
                        .copied()
                        .unwrap_or(0);
                    let lowered_window = window_at(&anchor_bytes, at).to_le_bytes();
                    let in_common_word = common.contains(&u32::from_le_bytes(
                        lowered_window.map(|byte| byte.to_ascii_lowercase()),
                    ));
                    (in_common_word, shared, commonness(at))
                })
                .unwrap_or(0);
            let window = window_at(&anchor_bytes, offset);
            *usage.entry(window).or_default() += 1;
            let compared: &[u8] = if needle.cased { bytes } else { &anchor_bytes };
            entries.push(Entry {
                window,
                tail: window_at(compared, last_start),
                long: long_needles.len() as u32,
                offset: u16::try_from(offset).unwrap_or(u16::MAX),
                cased: needle.cased,
            });
            long_needles.push(LongNeedle {
                id: needle.id,
                bytes: compared.into(),
            });
        }
        // About 32 filter bits per needle, 4 Ki to 64 Ki bits.
        let filter_bits = (entries.len() * 32)
            .next_power_of_two()
            .clamp(1 << 12, 1 << 16);
        let shift = 32 - filter_bits.trailing_zeros();
        entries.sort_by_key(|entry| (filter_index(entry.window, shift), entry.window, entry.long));
        let mut filter = vec![0u64; filter_bits / 64];
        for entry in &entries {
            let index = filter_index(entry.window, shift);
            filter[index / 64] |= 1 << (index % 64);
        }
        let mut rank = Vec::with_capacity(filter.len());
        let mut set_bits = 0u32;
        for word in &filter {
            rank.push(set_bits);
            set_bits += word.count_ones();
        }
        let mut bucket_starts = Vec::with_capacity(set_bits as usize + 1);
        let mut previous = None;
        for (position, entry) in entries.iter().enumerate() {
            let index = filter_index(entry.window, shift);
            if previous != Some(index) {
                bucket_starts.push(position as u32);
                previous = Some(index);
            }
        }
        bucket_starts.push(entries.len() as u32);
        self.filter = filter;
        self.filter_shift = shift;
        self.rank = rank;
        self.bucket_starts = bucket_starts;
        self.entries = entries;
        self.long = long_needles;
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
            let index = filter_index(window, self.filter_shift);
            let Some(&word) = self.filter.get(index / 64) else {
                continue;
            };
            let bit = 1u64 << (index % 64);
            if word & bit == 0 {
                continue;
            }
            let Some(&rank) = self.rank.get(index / 64) else {
                continue;
            };
            let bucket = rank as usize + (word & (bit - 1)).count_ones() as usize;
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
                let Some(start) = position.checked_sub(usize::from(entry.offset)) else {
                    continue;
                };
                let source = if entry.cased { original } else { haystack };
                let Some(needle) = self.long.get(entry.long as usize) else {
                    continue;
                };
                let end = start + needle.bytes.len();
                if end > length || window_at(source, end - ANCHOR) != entry.tail {
                    continue;
                }
                if source.get(start..end) == Some(&needle.bytes[..]) {
                    on_hit(needle.id, flags_for(start, end));
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
        let texts: Vec<String> = (0..50)
            .map(|i| format!("/etc/cron.d/implant{i:02}"))
            .collect();
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
        assert_eq!(scanner.filter.len() * 64, 1 << 12);
        assert!(distinct.len() >= 45, "{}", distinct.len());
        for (id, text) in texts.iter().enumerate() {
            let found = hits(&scanner, &format!("x {text} y"));
            assert_eq!(found, vec![(id as NeedleId, hit::ANY)], "{text}");
        }
    }
}
