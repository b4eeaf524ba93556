//! Bytes of engine state per open group, measured with a counting global allocator
//! (`stats_alloc`): the reference sshd rule (`event_count`, `gte: 5` over 60 s, grouped by
//! `src_ip`), 100,000 groups each holding 4 failures (the most a group holds before it fires).
//!
//! `cargo test -p cairn-correlate --release --test correlation_memory -- --nocapture`

use std::alloc::System;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_correlate::correlation::{CorrelationOptions, Correlations, GroupKey};
use cairn_correlate::{
    CompileOptions, Correlator, EngineConfig, FieldMapping, Matcher, Observation, ObservationBatch,
    parse_rules_str,
};
use cairn_ingest::{Seq, Timestamp};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const GROUPS: usize = 100_000;
const PER_GROUP: usize = 4;
/// The target from the design: at most this many bytes per open group of the sshd rule.
const TARGET_BYTES_PER_GROUP: usize = 256;

fn correlations() -> Arc<Correlations> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/sigma/spec-correlation/sshd_bruteforce_correlation.yml");
    let text = std::fs::read_to_string(path).expect("rule");
    let report = parse_rules_str(&text, "sshd_bruteforce_correlation.yml");
    let (matcher, _) = Matcher::compile(&report.loaded, &CompileOptions::default());
    let (correlations, rejected) = Correlations::build(
        &report.loaded,
        &matcher,
        &FieldMapping::new(),
        &CorrelationOptions::default(),
    );
    assert!(rejected.is_empty(), "{rejected:?}");
    Arc::new(correlations)
}

/// An IPv4 address per group, as long as real ones (`203.0.x.y` style, 11–15 bytes).
fn address(group: usize) -> String {
    format!(
        "203.{}.{}.{}",
        (group >> 16) & 0xff,
        (group >> 8) & 0xff,
        group & 0xff
    )
}

#[test]
fn bytes_per_open_group_of_the_sshd_rule() {
    let correlations = correlations();
    let correlation = correlations
        .find("9a1c2b3d-0000-4000-8000-000000000002")
        .expect("rule");
    let config = EngineConfig {
        allowed_lateness: Duration::ZERO,
        ..EngineConfig::default()
    };
    let mut correlator = Correlator::new(Arc::clone(&correlations), &config);
    let mut alerts = Vec::new();
    let base = 1_700_000_000_000_000_000i64;
    let region = Region::new(GLOBAL);
    // Batches are built inside the region and consumed by the engine, so what stays allocated
    // is the engine's state. Times are 1 ns apart: every group stays open (60 s window).
    let mut seq = 0u64;
    for round in 0..PER_GROUP {
        for chunk in (0..GROUPS).collect::<Vec<_>>().chunks(1000) {
            let mut batch = ObservationBatch::default();
            for group in chunk {
                seq += 1;
                let ts = Timestamp(base + (round * GROUPS + group) as i64);
                batch.observations.push(Observation {
                    ts,
                    seq: Seq(seq),
                    correlation,
                    input: 0,
                    group: GroupKey::from_values([address(*group).as_str()]),
                    value: 0,
                    incomplete: false,
                });
                batch.saw(Timestamp(ts.0 + 1));
            }
            correlator.submit(batch, &mut alerts);
        }
    }
    let change = region.change();
    // (stats_alloc already folds reallocations into these two.)
    let net = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let stats = correlator.stats();
    assert!(alerts.is_empty());
    assert_eq!(stats.open_groups, GROUPS as u64);
    assert_eq!(stats.queued, 0);
    let per_group = net as usize / GROUPS;
    println!(
        "sshd rule: {GROUPS} open groups x {PER_GROUP} failures: {net} bytes net allocated = {per_group} bytes/group (engine's own estimate {} bytes/group)",
        correlator.approximate_group_bytes(correlation) / GROUPS
    );
    assert!(
        per_group <= TARGET_BYTES_PER_GROUP,
        "{per_group} bytes per group, more than {TARGET_BYTES_PER_GROUP}"
    );
}
