//! WAL throughput on this machine, per fsync policy (ignored by default; run with
//! `cargo test -p cairn-ingest --release --test wal_bench -- --ignored --nocapture`).
//!
//! Each case appends batches of syslog frames (~130 bytes each) for about a second from N
//! threads, each append waiting until it is durable under the policy (what HTTP ingest does
//! before it answers), and prints records/s, events/s, MB/s and how many appends one fsync
//! covered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_ingest::batch::{RawBatch, RawFrame};
use cairn_ingest::wal::{FrameFormat, FsyncPolicy, Wal, WalOptions};
use cairn_ingest::{EventFlags, Seq, Source, Timestamp};

const LINE: &[u8] = b"<34>1 2026-06-15T12:00:00.123Z fw01.example.net sshd 4242 - - Failed password for invalid user admin from 198.51.100.23 port 52";

fn batch(frames: usize) -> RawBatch {
    RawBatch {
        source: Source::SyslogTcp,
        peer: Some("192.0.2.7:40000".parse().expect("addr")),
        peers: Vec::new(),
        received_at: Timestamp(1),
        first_seq: Seq(1),
        frames: (0..frames)
            .map(|_| RawFrame {
                bytes: Bytes::from_static(LINE),
                flags: EventFlags::empty(),
            })
            .collect(),
    }
}

fn run(policy: FsyncPolicy, threads: usize, frames: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(
        Wal::open(
            dir.path(),
            WalOptions {
                fsync: policy,
                ..WalOptions::default()
            },
        )
        .expect("open"),
    );
    let run_for = Duration::from_secs(1);
    let started = Instant::now();
    let handles = (0..threads)
        .map(|_| {
            let wal = Arc::clone(&wal);
            let batch = batch(frames);
            std::thread::spawn(move || {
                let mut appended = 0u64;
                while started.elapsed() < run_for {
                    wal.append_durable_blocking(FrameFormat::Syslog, &batch)
                        .expect("append");
                    appended += 1;
                }
                appended
            })
        })
        .collect::<Vec<_>>();
    let records: u64 = handles
        .into_iter()
        .map(|handle| handle.join().expect("thread"))
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    let stats = wal.stats();
    println!(
        "{:<16} threads={threads:<2} frames/batch={frames:<3} {:>9.0} records/s {:>10.0} events/s {:>7.1} MB/s  fsyncs={:<6} appends/fsync={:.1}",
        format!("{policy:?}"),
        records as f64 / elapsed,
        (records * frames as u64) as f64 / elapsed,
        stats.appended_bytes as f64 / elapsed / 1e6,
        stats.fsyncs,
        stats.mean_group_commit_records,
    );
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn wal_throughput_per_policy() {
    for policy in [
        FsyncPolicy::Never,
        FsyncPolicy::Interval(Duration::from_millis(10)),
        FsyncPolicy::Always,
    ] {
        for (threads, frames) in [(1, 1), (1, 64), (4, 64), (16, 64)] {
            run(policy, threads, frames);
        }
    }
}
