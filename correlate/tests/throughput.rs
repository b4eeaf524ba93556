//! Throughput of `Matcher` against `NaiveMatcher` on 1,000 synthetic literal-heavy rules.
//!
//! Ignored by default (it is a measurement, and only meaningful in release):
//! `cargo test -p cairn-correlate --release --test throughput -- --ignored --nocapture`

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use cairn_correlate::{CompileOptions, Matcher, NaiveMatcher, parse_rules_str};
use common::{EventExt, event};

/// A small deterministic generator (xorshift), so runs are comparable.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
    fn word(&mut self) -> String {
        let length = 5 + self.below(6);
        (0..length)
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }
}

fn synthetic_rules(count: usize, random: &mut Random) -> (String, Vec<String>) {
    let mut yaml = String::new();
    let mut needles = Vec::new();
    for index in 0..count {
        let a = random.word();
        let b = random.word();
        let c = random.word();
        let d = random.word();
        let f = random.word();
        needles.extend([a.clone(), b.clone(), c.clone(), d.clone()]);
        let detection = match index % 4 {
            0 => format!("  keywords:\n    - '{a} {b}'\n    - '{c}'\n  condition: keywords\n"),
            1 => format!(
                "  sel:\n    CommandLine|contains|all: ['{a}', '{b}']\n    Image|endswith: '/{c}'\n  filter:\n    CommandLine|contains: '{f}'\n  condition: sel and not filter\n"
            ),
            2 => format!(
                "  sel:\n    CommandLine|contains: ['{a}', '{b}', '{c}']\n  sel2:\n    User: ['{d}', 'root']\n  condition: sel and sel2\n"
            ),
            _ => format!(
                "  sel:\n    msg|startswith: '{a}'\n  sel_x:\n    CommandLine|re: '{b}\\s+-[a-z]'\n  condition: 1 of sel*\n"
            ),
        };
        let _ = write!(
            yaml,
            "title: synthetic {index}\nlevel: medium\nlogsource:\n  product: linux\ndetection:\n{detection}---\n"
        );
    }
    (yaml, needles)
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn matcher_throughput_on_1000_rules() {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let (yaml, needles) = synthetic_rules(1000, &mut random);
    let report = parse_rules_str(&yaml, "synthetic.yml");
    assert!(report.rejected.is_empty(), "{}", report.rejected[0]);
    let options = CompileOptions::default();
    let started = Instant::now();
    let (matcher, rejected) = Matcher::compile(&report.loaded, &options);
    assert!(rejected.is_empty());
    println!("compile: {:?}, {:?}", started.elapsed(), matcher.stats());
    let (naive, _) = NaiveMatcher::compile(&report.loaded, &options);

    // ~130-byte syslog-like events; about one in 50 carries a rule needle.
    let events: Vec<_> = (0..10_000)
        .map(|index| {
            let mut message = String::from("session ");
            while message.len() < 110 {
                message.push_str(&random.word());
                message.push(' ');
            }
            if index % 50 == 0 {
                message.push_str(&needles[random.below(needles.len())]);
            }
            let command = format!("/usr/bin/{} -x {}", random.word(), random.word());
            event(&message)
                .host("web-01")
                .app("sshd")
                .text("CommandLine", &command)
                .text("User", "alice")
        })
        .collect();

    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    let mut matched = 0usize;
    for event in &events {
        matcher.match_event(event, &mut scratch, &mut out);
        assert_eq!(out, naive.match_event(event));
    }
    let rounds: usize = std::env::var("CAIRN_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let started = Instant::now();
    for _ in 0..rounds {
        for event in &events {
            matcher.match_event(event, &mut scratch, &mut out);
            matched += out.len();
        }
    }
    let elapsed = started.elapsed();
    let per_second = (rounds * events.len()) as f64 / elapsed.as_secs_f64();
    println!(
        "matcher: {:.0} events/s ({:.0} ns/event), {matched} matches",
        per_second,
        1e9 / per_second
    );
    let started = Instant::now();
    for event in &events[..2000] {
        std::hint::black_box(naive.match_event(event));
    }
    let naive_per_second = 2000.0 / started.elapsed().as_secs_f64();
    println!(
        "naive:   {naive_per_second:.0} events/s; matcher is {:.0}x faster",
        per_second / naive_per_second
    );
}
