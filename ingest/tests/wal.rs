//! The write-ahead log against real files in a temporary directory: round trips across
//! roll-over, reopen, replay from a position, torn and corrupt tails, corrupt middle segments,
//! group commit, retention, a full disk and a failing fsync.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_ingest::batch::{RawBatch, RawFrame};
use cairn_ingest::wal::{
    Appended, DiskBudget, FaultInjection, FrameFormat, FsyncPolicy, Position, Wal, WalError,
    WalOptions, WalRecord, decode_payload,
};
use cairn_ingest::{EventFlags, Seq, Source, Timestamp};
use proptest::prelude::*;

const HEADER: u64 = 32;

fn batch(index: u64) -> RawBatch {
    let frame_count = 1 + (index % 4) as usize;
    let frames = (0..frame_count)
        .map(|frame| RawFrame {
            bytes: Bytes::from(format!(
                "<13>Jun 15 12:00:00 host app[{index}]: message {index}.{frame} {}",
                "x".repeat((index as usize * 7) % 50)
            )),
            flags: if frame == 1 {
                EventFlags::TRUNCATED
            } else {
                EventFlags::empty()
            },
        })
        .collect::<Vec<_>>();
    let udp = index.is_multiple_of(2);
    RawBatch {
        source: if udp {
            Source::SyslogUdp
        } else {
            Source::SyslogTcp
        },
        peer: (!udp).then(|| "192.0.2.7:40000".parse().expect("addr")),
        peers: if udp {
            (0..frame_count)
                .map(|frame| format!("[2001:db8::{frame}]:514").parse().expect("addr"))
                .collect()
        } else {
            Vec::new()
        },
        received_at: Timestamp(1_700_000_000_000_000_000 + index as i64),
        first_seq: Seq(1 + index * 10),
        frames,
    }
}

fn format_of(index: u64) -> FrameFormat {
    if index.is_multiple_of(3) {
        FrameFormat::NdjsonLine
    } else {
        FrameFormat::Syslog
    }
}

fn assert_record_is(record: &WalRecord, index: u64) {
    let expected = batch(index);
    assert_eq!(record.format, format_of(index), "record {index}");
    assert_eq!(record.batch.first_seq, expected.first_seq, "record {index}");
    assert_eq!(record.batch.source, expected.source);
    assert_eq!(record.batch.peer, expected.peer);
    assert_eq!(record.batch.peers, expected.peers);
    assert_eq!(record.batch.received_at, expected.received_at);
    assert_eq!(record.batch.frames.len(), expected.frames.len());
    for (read, written) in record.batch.frames.iter().zip(&expected.frames) {
        assert_eq!(read.bytes, written.bytes);
        assert_eq!(read.flags, written.flags);
    }
}

fn options(policy: FsyncPolicy) -> WalOptions {
    WalOptions {
        fsync: policy,
        max_segment_bytes: 4096,
        max_record_bytes: 2048,
        fault_injection: None,
    }
}

fn append_many(wal: &Wal, range: std::ops::Range<u64>) -> Vec<Appended> {
    range
        .map(|index| wal.append(format_of(index), &batch(index)).expect("append"))
        .collect()
}

fn read_all(wal: &Wal, from: Position) -> Vec<WalRecord> {
    wal.read_from(from)
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("every record reads back")
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect::<Vec<_>>();
    files.sort();
    files
}

#[test]
fn round_trip_across_segment_rollover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    assert_eq!(wal.end(), Position(0));
    let appended = append_many(&wal, 0..200);
    for pair in appended.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "records are contiguous");
    }
    let files = segment_files(dir.path());
    assert!(files.len() > 5, "rolled over: {} segments", files.len());
    for file in &files {
        assert!(fs::metadata(file).expect("meta").len() <= 4096);
    }
    // Each segment is named by the position of its first record.
    let starts = appended
        .iter()
        .map(|appended| appended.start.0)
        .collect::<Vec<_>>();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("stem");
        assert_eq!(stem.len(), 20);
        let base: u64 = stem.parse().expect("numeric");
        assert!(starts.contains(&base), "segment {stem} starts at a record");
    }
    let records = read_all(&wal, Position(0));
    assert_eq!(records.len(), 200);
    for (index, (record, appended)) in records.iter().zip(&appended).enumerate() {
        assert_record_is(record, index as u64);
        assert_eq!((record.start, record.end), (appended.start, appended.end));
    }
    assert_eq!(wal.end(), appended[199].end);
    let stats = wal.stats();
    assert_eq!(stats.appended_records, 200);
    assert_eq!(stats.segments_created as usize, files.len());
    wal.close().expect("close");
}

#[test]
fn reopen_continues_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = {
        let wal = Wal::open(dir.path(), options(FsyncPolicy::Always)).expect("open");
        let appended = append_many(&wal, 0..50);
        wal.close().expect("close");
        appended
    };
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Always)).expect("reopen");
    let recovery = wal.recovery().clone();
    assert_eq!(recovery.end, first[49].end);
    assert_eq!(recovery.oldest, Position(0));
    assert_eq!(recovery.truncated_records, 0);
    assert_eq!(recovery.truncated_bytes, 0);
    assert!(recovery.gaps.is_empty());
    assert_eq!(
        wal.durable(),
        first[49].end,
        "recovered records are durable"
    );
    let second = append_many(&wal, 50..80);
    assert_eq!(second[0].start, first[49].end);
    let records = read_all(&wal, Position(0));
    assert_eq!(records.len(), 80);
    for (index, record) in records.iter().enumerate() {
        assert_record_is(record, index as u64);
    }
}

#[test]
fn replay_from_a_middle_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let appended = append_many(&wal, 0..120);
    for from in [0usize, 1, 37, 64, 119] {
        let records = read_all(&wal, appended[from].start);
        assert_eq!(records.len(), 120 - from, "from record {from}");
        for (offset, record) in records.iter().enumerate() {
            assert_record_is(record, (from + offset) as u64);
        }
    }
    // From a segment boundary (the end of one record is the start of the next).
    assert_eq!(read_all(&wal, appended[63].end).len(), 120 - 64);
    assert!(read_all(&wal, wal.end()).is_empty());
    assert!(matches!(
        wal.read_from(Position(wal.end().0 + 1)),
        Err(WalError::PositionUnavailable { .. })
    ));
    // A reader sees the end as it was when it was made.
    let reader = wal.read_from(appended[100].start).expect("reader");
    append_many(&wal, 120..130);
    assert_eq!(reader.count(), 20);
}

/// Builds a WAL of `count` records in one segment with policy `never`, closed. Returns the
/// segment's bytes and the records' ranges.
fn one_segment_wal(count: u64) -> (Vec<u8>, Vec<Appended>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let appended = append_many(&wal, 0..count);
    wal.close().expect("close");
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    (fs::read(&files[0]).expect("read"), appended)
}

fn open_with_segment(bytes: &[u8]) -> (tempfile::TempDir, Wal) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("00000000000000000000.seg"), bytes).expect("write");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open repairs the tail");
    (dir, wal)
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record_recovers_the_previous_record() {
    let (bytes, appended) = one_segment_wal(5);
    let last = appended[4];
    let last_offset = HEADER + last.start.0;
    assert_eq!(bytes.len() as u64, HEADER + last.end.0);
    for cut in last_offset..bytes.len() as u64 {
        let (dir, wal) = open_with_segment(&bytes[..cut as usize]);
        let recovery = wal.recovery().clone();
        assert_eq!(recovery.end, last.start, "cut at {cut}");
        let dropped_bytes = cut - last_offset;
        assert_eq!(recovery.truncated_bytes, dropped_bytes, "cut at {cut}");
        assert_eq!(
            recovery.truncated_records,
            u64::from(dropped_bytes > 0),
            "cut at {cut}"
        );
        assert_eq!(wal.stats().recovery_truncated_bytes, dropped_bytes);
        let records = read_all(&wal, Position(0));
        assert_eq!(records.len(), 4, "cut at {cut}");
        assert_record_is(&records[3], 3);
        // The file was cut, and appending goes on where the valid part ends.
        let again = wal.append(format_of(4), &batch(4)).expect("append");
        assert_eq!(again, last);
        drop(wal);
        let reopened = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
        assert_eq!(reopened.recovery().truncated_bytes, 0);
        assert_eq!(read_all(&reopened, Position(0)).len(), 5);
    }
}

#[test]
fn torn_segment_header_is_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
        append_many(&wal, 0..60);
    }
    let files = segment_files(dir.path());
    let last = files.last().expect("segments");
    let header = fs::read(last).expect("read");
    fs::write(last, &header[..10]).expect("tear the header");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let base: u64 = last
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .expect("base");
    assert_eq!(wal.end(), Position(base));
    let appended = wal.append(format_of(1), &batch(1)).expect("append");
    assert_eq!(appended.start, Position(base));
}

#[test]
fn flipped_bytes_in_the_last_record_cut_only_that_record() {
    let (bytes, appended) = one_segment_wal(4);
    let last = appended[3];
    let last_offset = (HEADER + last.start.0) as usize;
    for index in last_offset..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[index] ^= 0x5a;
        let (_dir, wal) = open_with_segment(&damaged);
        assert_eq!(wal.recovery().end, last.start, "byte {index}");
        assert_eq!(wal.recovery().truncated_records, 1, "byte {index}");
        let records = read_all(&wal, Position(0));
        assert_eq!(records.len(), 3);
    }
}

#[test]
fn zero_filled_tail_is_cut_without_counting_a_record() {
    let (mut bytes, appended) = one_segment_wal(3);
    bytes.extend_from_slice(&[0u8; 100]);
    let (_dir, wal) = open_with_segment(&bytes);
    assert_eq!(wal.recovery().end, appended[2].end);
    assert_eq!(wal.recovery().truncated_bytes, 100);
    assert_eq!(wal.recovery().truncated_records, 0);
}

#[test]
fn corrupt_tail_followed_by_records_counts_them_all() {
    let (bytes, appended) = one_segment_wal(6);
    let mut damaged = bytes.clone();
    // A payload byte of record 3: records 3, 4 and 5 are cut (never fsynced after a crash).
    let index = (HEADER + appended[3].start.0) as usize + 20;
    damaged[index] ^= 0xff;
    let (_dir, wal) = open_with_segment(&damaged);
    assert_eq!(wal.recovery().end, appended[3].start);
    assert_eq!(wal.recovery().truncated_records, 3);
    assert_eq!(
        wal.recovery().truncated_bytes,
        appended[5].end.0 - appended[3].start.0
    );
}

fn multi_segment_wal(dir: &Path) -> Vec<Appended> {
    let wal = Wal::open(dir, options(FsyncPolicy::Never)).expect("open");
    let appended = append_many(&wal, 0..100);
    wal.close().expect("close");
    assert!(segment_files(dir).len() >= 4);
    appended
}

#[test]
fn corrupt_record_in_a_middle_segment_stops_replay_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = multi_segment_wal(dir.path());
    let files = segment_files(dir.path());
    let victim = &files[1];
    let mut bytes = fs::read(victim).expect("read");
    let flip_at = HEADER as usize + 30;
    bytes[flip_at] ^= 0x01;
    fs::write(victim, &bytes).expect("write");

    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("headers are fine");
    assert_eq!(
        wal.recovery().truncated_records,
        0,
        "only the last segment is cut"
    );
    let mut reader = wal.read_from(Position(0)).expect("reader");
    let mut good = 0;
    let error = loop {
        match reader.next() {
            Some(Ok(_)) => good += 1,
            Some(Err(error)) => break error,
            None => panic!("the corrupt record must be reported"),
        }
    };
    assert!(reader.next().is_none(), "the reader stops after an error");
    let second_base: u64 = victim
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .expect("base");
    assert_eq!(
        good,
        appended
            .iter()
            .filter(|appended| appended.start.0 < second_base)
            .count()
    );
    match &error {
        WalError::Corruption { path, offset, .. } => {
            assert_eq!(path, victim);
            assert_eq!(*offset, HEADER);
        }
        other => panic!("expected corruption, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("move it aside"), "{message}");
    drop(wal);

    // The way out: move the segment aside. The gap is reported and replay goes on after it.
    let aside = victim.with_extension("seg.corrupt");
    fs::rename(victim, &aside).expect("move aside");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    assert_eq!(wal.recovery().gaps.len(), 1);
    let (gap_start, gap_end) = wal.recovery().gaps[0];
    assert_eq!(gap_start, Position(second_base));
    let records = read_all(&wal, Position(0));
    let after_gap = appended
        .iter()
        .filter(|appended| appended.start < gap_start || appended.start >= gap_end)
        .count();
    assert_eq!(records.len(), after_gap);
    assert!(records.iter().any(|record| record.start == gap_end));
}

#[test]
fn corrupt_header_of_a_middle_segment_fails_open_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    multi_segment_wal(dir.path());
    let files = segment_files(dir.path());
    let mut bytes = fs::read(&files[2]).expect("read");
    bytes[3] ^= 0x10;
    fs::write(&files[2], &bytes).expect("write");
    match Wal::open(dir.path(), options(FsyncPolicy::Never)) {
        Err(WalError::Corruption { path, reason, .. }) => {
            assert_eq!(path, files[2]);
            assert!(reason.contains("magic"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn group_commit_many_threads_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal_options = options(FsyncPolicy::Always);
    wal_options.max_segment_bytes = 1 << 20;
    let wal = Arc::new(Wal::open(dir.path(), wal_options).expect("open"));
    let threads = 16u64;
    let per_thread = 40u64;
    let handles = (0..threads)
        .map(|thread| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for round in 0..per_thread {
                    let index = thread * per_thread + round;
                    let appended = wal
                        .append_durable_blocking(format_of(index), &batch(index))
                        .expect("append");
                    assert!(
                        wal.durable() >= appended.end,
                        "returned before an fsync covered the record"
                    );
                }
            })
        })
        .collect::<Vec<_>>();
    for handle in handles {
        handle.join().expect("thread");
    }
    let stats = wal.stats();
    let appends = threads * per_thread;
    assert_eq!(stats.appended_records, appends);
    assert_eq!(stats.synced_records, appends);
    assert!(stats.fsyncs > 0);
    assert!(
        stats.fsyncs < appends,
        "group commit: {} fsyncs for {appends} appends",
        stats.fsyncs
    );
    assert!(stats.max_group_commit_records > 1);
    assert_eq!(wal.durable(), wal.end());
    assert_eq!(read_all(&wal, Position(0)).len() as u64, appends);
}

#[test]
fn async_appenders_wait_for_the_interval_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal_options = options(FsyncPolicy::Interval(Duration::from_millis(5)));
    wal_options.max_segment_bytes = 1 << 20;
    let wal = Arc::new(Wal::open(dir.path(), wal_options).expect("open"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tasks = 64u64;
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for task in 0..tasks {
            let wal = Arc::clone(&wal);
            set.spawn(async move {
                for round in 0..5 {
                    let index = task * 5 + round;
                    let appended = wal
                        .append_durable(format_of(index), &batch(index))
                        .await
                        .expect("append");
                    assert!(wal.durable() >= appended.end);
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.expect("task");
        }
    });
    let stats = wal.stats();
    assert_eq!(stats.appended_records, tasks * 5);
    assert!(
        stats.fsyncs < tasks * 5,
        "{} fsyncs for {} appends",
        stats.fsyncs,
        tasks * 5
    );
}

#[test]
fn always_policy_async_waiters_trigger_the_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Always)).expect("open");
    let appended = wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    assert!(wal.durable() < appended.end, "append alone does not fsync");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(wal.wait_durable(appended.end))
        .expect("durable");
    assert!(wal.durable() >= appended.end);
}

#[test]
fn never_policy_does_not_wait_but_sync_forces_an_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let appended = wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    wal.wait_durable_blocking(appended.end).expect("no wait");
    assert!(wal.durable() < appended.end);
    assert_eq!(wal.sync().expect("sync"), appended.end);
    assert_eq!(wal.durable(), appended.end);
    assert_eq!(wal.stats().fsyncs, 1);
}

#[test]
fn truncate_before_deletes_only_whole_segments_before_the_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let appended = append_many(&wal, 0..150);
    let files = segment_files(dir.path());
    let bases = files
        .iter()
        .map(|file| {
            file.file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok())
                .expect("base")
        })
        .collect::<Vec<_>>();
    // A position inside the third segment: the first two go, the third stays.
    let cut = Position(bases[2] + 1);
    let truncated = wal.truncate_before(cut).expect("truncate");
    assert_eq!(truncated.segments, 2);
    assert_eq!(segment_files(dir.path()), files[2..].to_vec());
    assert_eq!(wal.oldest(), Position(bases[2]));
    assert!(matches!(
        wal.read_from(Position(0)),
        Err(WalError::PositionUnavailable { .. })
    ));
    let kept = read_all(&wal, wal.oldest());
    let first_kept = appended
        .iter()
        .position(|appended| appended.start.0 == bases[2])
        .expect("segment starts at a record");
    assert_eq!(kept.len(), 150 - first_kept);
    assert_record_is(&kept[0], first_kept as u64);
    // Exactly at a segment's end, that segment goes too; the active one never does.
    assert_eq!(
        wal.truncate_before(Position(bases[3]))
            .expect("truncate")
            .segments,
        1
    );
    wal.truncate_before(wal.end()).expect("truncate");
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.stats().segments_deleted as usize, files.len() - 1);
    let next = wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    assert_eq!(next.start, appended[149].end);
    drop(wal);
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("reopen");
    assert_eq!(wal.end(), next.end);
    assert!(wal.recovery().gaps.is_empty());
}

#[test]
fn disk_full_refuses_and_recovers_by_itself_without_losing_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Arc::new(DiskBudget::new(u64::MAX));
    let mut wal_options = options(FsyncPolicy::Always);
    wal_options.fault_injection = Some(Arc::clone(&budget) as Arc<dyn FaultInjection>);
    let wal = Wal::open(dir.path(), wal_options.clone()).expect("open");
    let before = append_many(&wal, 0..10);
    wal.sync().expect("sync");

    // Room for half a record: the write is partial, the WAL cuts it back and refuses.
    budget.set_remaining(40);
    let refused = wal.append(format_of(10), &batch(10));
    assert!(
        matches!(refused, Err(WalError::DiskFull { .. })),
        "{refused:?}"
    );
    assert!(refused.as_ref().is_err_and(WalError::is_retryable));
    assert_eq!(wal.end(), before[9].end);
    let active = segment_files(dir.path()).pop().expect("segment");
    let active_base: u64 = active
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .expect("base");
    assert_eq!(
        fs::metadata(&active).expect("meta").len(),
        HEADER + before[9].end.0 - active_base,
        "the partial record was cut back"
    );
    for _ in 0..3 {
        assert!(matches!(
            wal.append(format_of(10), &batch(10)),
            Err(WalError::DiskFull { .. })
        ));
    }
    assert_eq!(wal.stats().disk_full_refusals, 4);

    // Space returns: appends go on at the same position, nothing earlier is lost.
    budget.set_remaining(u64::MAX);
    let after = append_many(&wal, 10..120);
    assert_eq!(after[0].start, before[9].end);
    wal.sync().expect("sync");
    let records = read_all(&wal, Position(0));
    assert_eq!(records.len(), 120);
    for (index, record) in records.iter().enumerate() {
        assert_record_is(record, index as u64);
    }

    wal.close().expect("close");

    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("reopen");
    assert_eq!(wal.recovery().truncated_bytes, 0);
    assert_eq!(read_all(&wal, Position(0)).len(), 120);
}

#[test]
fn disk_full_on_the_roll_over_keeps_the_full_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Arc::new(DiskBudget::new(u64::MAX));
    let mut wal_options = options(FsyncPolicy::Never);
    wal_options.fault_injection = Some(Arc::clone(&budget) as Arc<dyn FaultInjection>);
    let wal = Wal::open(dir.path(), wal_options).expect("open");
    let first = wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    let record_len = first.end.0 - first.start.0;
    // Fill the first segment until the next identical record has to roll over.
    while HEADER + wal.end().0 + record_len <= 4096 {
        wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    }
    let end_before = wal.end();
    budget.set_remaining(0);
    let refused = wal.append(FrameFormat::Syslog, &batch(1));
    assert!(
        matches!(refused, Err(WalError::DiskFull { .. })),
        "{refused:?}"
    );
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "no half-made segment left"
    );
    assert_eq!(wal.end(), end_before);
    budget.set_remaining(u64::MAX);
    let rolled = wal.append(FrameFormat::Syslog, &batch(1)).expect("append");
    assert_eq!(rolled.start, end_before);
    assert_eq!(segment_files(dir.path()).len(), 2);
    let records = read_all(&wal, Position(0));
    assert_eq!(records.last().map(|record| record.end), Some(rolled.end));
    assert!(
        records
            .iter()
            .all(|record| record.batch.first_seq == batch(1).first_seq)
    );
}

#[test]
fn failed_fsync_stops_the_wal_until_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Arc::new(DiskBudget::new(u64::MAX));
    let mut wal_options = options(FsyncPolicy::Always);
    wal_options.fault_injection = Some(Arc::clone(&budget) as Arc<dyn FaultInjection>);
    let wal = Wal::open(dir.path(), wal_options).expect("open");
    let kept = wal
        .append_durable_blocking(FrameFormat::Syslog, &batch(0))
        .expect("append");
    budget.fail_syncs(true);
    let failed = wal.append_durable_blocking(FrameFormat::Syslog, &batch(1));
    assert!(matches!(failed, Err(WalError::Failed(_))), "{failed:?}");
    assert!(matches!(
        wal.append(FrameFormat::Syslog, &batch(2)),
        Err(WalError::Failed(_))
    ));
    assert!(wal.is_failed());
    assert!(wal.close().is_err());
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Always)).expect("restart");
    let records = read_all(&wal, Position(0));
    assert!(records.first().is_some_and(|record| record.end == kept.end));
}

#[test]
fn skip_to_never_reuses_positions_the_index_has_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let appended = append_many(&wal, 0..3);
    assert!(!wal.skip_to(appended[1].end).expect("no skip needed"));
    assert!(wal.skip_to(Position(1_000_000)).expect("skip"));
    let next = wal.append(FrameFormat::Syslog, &batch(3)).expect("append");
    assert_eq!(next.start, Position(1_000_000));
    drop(wal);
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("reopen");
    assert_eq!(
        wal.recovery().gaps,
        vec![(appended[2].end, Position(1_000_000))]
    );
    let records = read_all(&wal, Position(0));
    assert_eq!(records.len(), 4);
    assert_eq!(read_all(&wal, Position(1_000_000)).len(), 1);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::Locked { .. })
    ));
    drop(wal);
    Wal::open(dir.path(), WalOptions::default()).expect("free again");
}

#[test]
fn oversized_records_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), options(FsyncPolicy::Never)).expect("open");
    let mut big = batch(0);
    big.frames = vec![RawFrame {
        bytes: Bytes::from(vec![b'a'; 4000]),
        flags: EventFlags::empty(),
    }];
    assert!(matches!(
        wal.append(FrameFormat::Syslog, &big),
        Err(WalError::RecordTooLarge { .. })
    ));
    assert_eq!(wal.end(), Position(0));
    let mut bad = options(FsyncPolicy::Interval(Duration::ZERO));
    assert!(bad.validate().is_err());
    bad = options(FsyncPolicy::Never);
    bad.max_segment_bytes = 100;
    assert!(matches!(
        Wal::open(dir.path().join("other"), bad),
        Err(WalError::InvalidOptions(_))
    ));
}

#[test]
fn durable_waits_poll_with_a_deadline_under_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(
        dir.path(),
        options(FsyncPolicy::Interval(Duration::from_millis(20))),
    )
    .expect("open");
    let appended = wal.append(FrameFormat::Syslog, &batch(0)).expect("append");
    // Nobody waits, yet the periodic fsync comes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.durable() < appended.end {
        assert!(Instant::now() < deadline, "the interval fsync never came");
        std::thread::yield_now();
    }
    assert!(wal.stats().fsyncs >= 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn payload_decode_never_panics_on_garbage(seq in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_payload(seq, &Bytes::from(bytes));
    }

    #[test]
    fn payload_decode_never_panics_on_damaged_records(index in 0usize..50, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut payload = sample_payloads()[index].clone();
        prop_assert!(decode_payload(1, &Bytes::from(payload.clone())).is_ok());
        for (at, value) in flips {
            let len = payload.len();
            payload[at % len] ^= value;
        }
        payload.truncate(cut % (payload.len() + 1));
        let _ = decode_payload(1, &Bytes::from(payload));
    }
}

/// Payloads of `batch(0..50)` as the WAL wrote them.
fn sample_payloads() -> &'static Vec<Vec<u8>> {
    static PAYLOADS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    PAYLOADS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal_options = options(FsyncPolicy::Never);
        wal_options.max_segment_bytes = 1 << 20;
        let wal = Wal::open(dir.path(), wal_options).expect("open");
        let appended = append_many(&wal, 0..50);
        wal.close().expect("close");
        let file = segment_files(dir.path()).pop().expect("segment");
        let bytes = fs::read(&file).expect("read");
        appended
            .iter()
            .map(|record| {
                let start = (HEADER + record.start.0) as usize + 16;
                let end = (HEADER + record.end.0) as usize;
                bytes[start..end].to_vec()
            })
            .collect()
    })
}
