//! Replay: iterate records from a position, across segments.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;

use super::Position;
use super::error::WalError;
use super::format::{SEGMENT_HEADER_LEN, decode_segment_header};
use super::log::{RecordCheck, next_record};
use super::payload::{FrameFormat, decode_payload};
use crate::batch::RawBatch;

/// One record read back: where it is, how to decode its frames, and the batch.
#[derive(Debug, Clone)]
pub struct WalRecord {
    pub start: Position,
    /// The position after this record (what to store as "replayed/indexed up to here").
    pub end: Position,
    pub format: FrameFormat,
    /// The batch as appended; `first_seq` is the record's `seq`. Frames share one buffer.
    pub batch: RawBatch,
}

/// The part of one segment a reader covers.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSpan {
    pub path: PathBuf,
    pub base: u64,
    /// Readable bytes (header plus complete records) when the reader was made.
    pub file_len: u64,
    /// File offset of the first record to read.
    pub start_offset: u64,
}

#[derive(Debug)]
struct OpenSegment {
    reader: BufReader<File>,
    span: SegmentSpan,
    offset: u64,
}

/// Iterator over [`WalRecord`]s from a position to the end the WAL had when the reader was made
/// ([`super::Wal::read_from`]). Yields `Err` once for a damaged or unreadable record and then
/// stops: [`WalError::Corruption`] names the file and offset.
#[derive(Debug)]
pub struct WalReader {
    spans: VecDeque<SegmentSpan>,
    current: Option<OpenSegment>,
    done: bool,
}

impl WalReader {
    pub(crate) fn new(spans: Vec<SegmentSpan>) -> WalReader {
        WalReader {
            spans: spans.into(),
            current: None,
            done: false,
        }
    }

    fn open(span: SegmentSpan) -> Result<OpenSegment, WalError> {
        let io_error = |source| WalError::from_io(&span.path, source);
        let file = File::open(&span.path).map_err(io_error)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        reader.read_exact(&mut header).map_err(io_error)?;
        let base = decode_segment_header(&header).map_err(|reason| WalError::Corruption {
            path: span.path.clone(),
            offset: 0,
            reason,
        })?;
        if base != span.base {
            return Err(WalError::Corruption {
                path: span.path.clone(),
                offset: 0,
                reason: format!("header says base {base}, expected {}", span.base),
            });
        }
        let offset = span.start_offset.max(SEGMENT_HEADER_LEN);
        reader.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        Ok(OpenSegment {
            reader,
            span,
            offset,
        })
    }

    fn read_next(&mut self) -> Option<Result<WalRecord, WalError>> {
        loop {
            if self.current.is_none() {
                let span = self.spans.pop_front()?;
                match WalReader::open(span) {
                    Ok(segment) => self.current = Some(segment),
                    Err(error) => return Some(Err(error)),
                }
            }
            let segment = self.current.as_mut()?;
            let offset = segment.offset;
            let mut payload = Vec::new();
            let check = next_record(
                &mut segment.reader,
                offset,
                segment.span.file_len,
                &mut payload,
            );
            let corruption = |reason: String| WalError::Corruption {
                path: segment.span.path.clone(),
                offset,
                reason: format!(
                    "{reason}; if this segment cannot be restored, move it aside (records in \
                     it are lost) and restart"
                ),
            };
            let header = match check {
                Ok(RecordCheck::End) => {
                    self.current = None;
                    continue;
                }
                Ok(RecordCheck::Valid(header)) => header,
                Ok(RecordCheck::Invalid(reason)) => return Some(Err(corruption(reason))),
                Err(source) => {
                    return Some(Err(WalError::from_io(&segment.span.path, source)));
                }
            };
            let start = segment.span.base + (offset - SEGMENT_HEADER_LEN);
            segment.offset += header.record_len();
            let end = segment.span.base + (segment.offset - SEGMENT_HEADER_LEN);
            let payload = Bytes::from(payload);
            return Some(match decode_payload(header.seq, &payload) {
                Ok((format, batch)) => Ok(WalRecord {
                    start: Position(start),
                    end: Position(end),
                    format,
                    batch,
                }),
                Err(error) => Err(corruption(format!("record payload: {error}"))),
            });
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<WalRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.read_next();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
