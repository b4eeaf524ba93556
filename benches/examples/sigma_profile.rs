//! Profiling driver for the sigma workload: runs one stage in a loop (for `perf record`) and
//! counts heap allocations per event with a counting global allocator.
//!
//! ```sh
//! cargo run --release -p cairn-benches --example sigma_profile -- [parse|match|all] [seconds] [regex%]
//! perf record -g target/release/examples/sigma_profile match 5 10
//! ```
//!
//! `regex%` is 10 (the mixed rule set, default) or 0 (literal-only). The allocator is the
//! system one behind a counter (the criterion bench uses mimalloc, as the `cairn` binary does).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_benches::sigma::{RegexShare, frame_meta, generate_corpus, generate_rules_with};
use cairn_correlate::{CompileOptions, Matcher, parse_rules_str};
use cairn_ingest::normalise::Normaliser;
use cairn_ingest::parse::{ParseOptions, parse_syslog};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// The one `unsafe` of the workspace, in this profiling tool only: `GlobalAlloc` cannot be
// implemented without it. Every method forwards to `System` unchanged (plus a counter), so the
// contracts are exactly the caller's.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("all", String::as_str);
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let regex_percent: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let rules = generate_rules_with(1000, 0x5EED_0001, RegexShare::from_percent(regex_percent));
    let report = parse_rules_str(&rules.yaml(), "generated.yml");
    let (matcher, _) = Matcher::compile(&report.loaded, &CompileOptions::default());
    eprintln!("{:?}", matcher.stats());
    let lines: Vec<Bytes> = generate_corpus(10_000, 0x5EED_0002, &rules, 3)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let options = ParseOptions::default();
    let normaliser = Normaliser::new(Vec::new()).expect("built-ins");
    let meta = frame_meta(1);
    let events: Vec<_> = lines
        .iter()
        .map(|line| {
            let mut event = parse_syslog(line.clone(), &meta, &options);
            normaliser.normalise(&mut event);
            event
        })
        .collect();
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut rounds, mut matches) = (0u64, 0usize);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    while Instant::now() < deadline || rounds == 0 {
        match mode {
            "parse" => {
                for line in &lines {
                    let mut event = parse_syslog(line.clone(), &meta, &options);
                    normaliser.normalise(&mut event);
                    black_box(&event);
                }
            }
            "match" => {
                for event in &events {
                    matcher.match_event(event, &mut scratch, &mut out);
                    matches += out.len();
                }
            }
            _ => {
                for line in &lines {
                    let mut event = parse_syslog(line.clone(), &meta, &options);
                    normaliser.normalise(&mut event);
                    matcher.match_event(&event, &mut scratch, &mut out);
                    matches += out.len();
                }
            }
        }
        rounds += 1;
    }
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let events = rounds * lines.len() as u64;
    eprintln!(
        "{mode}: {events} events in {elapsed:?}: {:.3} µs/event, {:.0} k events/s, {:.2} allocations/event ({} matches)",
        elapsed.as_secs_f64() * 1e6 / events as f64,
        events as f64 / elapsed.as_secs_f64() / 1e3,
        allocations as f64 / events as f64,
        black_box(matches)
    );
}
