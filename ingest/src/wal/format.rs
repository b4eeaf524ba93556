//! Byte layout of segment headers and record headers (see the module docs of [`crate::wal`]).

use std::path::{Path, PathBuf};

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CAIRNWAL";
/// Version of the segment and record layout written by this code.
pub(crate) const SEGMENT_VERSION: u32 = 1;
/// Bytes of the segment header: magic, version, reserved, base position, header crc, reserved.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes before a record's payload: `len: u32 | crc32c: u32 | seq: u64`.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// The format's hard limit on a payload; the configured `max_record_bytes` is at most this.
/// Recovery and replay accept any record up to it, so lowering the configured limit never makes
/// existing records unreadable.
pub(crate) const RECORD_PAYLOAD_LIMIT: u32 = 1 << 30;
/// Extension of segment files; the stem is the base position, 20 zero-padded decimal digits.
pub(crate) const SEGMENT_EXTENSION: &str = "seg";

/// The file name of the segment whose first record is at `base`.
pub(crate) fn segment_file_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_EXTENSION}")
}

pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

/// The base position named by a segment file name, or `None` for any other file.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The 32-byte header of a segment starting at `base`.
pub(crate) fn encode_segment_header(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    // 12..16 reserved (zero)
    header[16..24].copy_from_slice(&base.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    // 28..32 reserved (zero)
    header
}

/// Checks a segment header and returns its base position. The error is a reason for a
/// corruption report.
pub(crate) fn decode_segment_header(header: &[u8]) -> Result<u64, String> {
    let field = |range: std::ops::Range<usize>| -> Result<&[u8], String> {
        header
            .get(range)
            .ok_or_else(|| format!("segment header is shorter than {SEGMENT_HEADER_LEN} bytes"))
    };
    if field(0..8)? != SEGMENT_MAGIC {
        return Err("bad magic: not a cairn wal segment".to_string());
    }
    let stored_crc = read_u32(field(24..28)?);
    if crc32c::crc32c(field(0..24)?) != stored_crc {
        return Err("segment header checksum mismatch".to_string());
    }
    let version = read_u32(field(8..12)?);
    if version != SEGMENT_VERSION {
        return Err(format!(
            "segment format version {version} is not supported (this build reads {SEGMENT_VERSION})"
        ));
    }
    Ok(read_u64(field(16..24)?))
}

/// A record header as read from disk (not yet checked against its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub payload_len: u32,
    pub crc: u32,
    pub seq: u64,
}

impl RecordHeader {
    pub(crate) fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
        RecordHeader {
            payload_len: read_u32(&bytes[0..4]),
            crc: read_u32(&bytes[4..8]),
            seq: read_u64(&bytes[8..16]),
        }
    }

    /// Total record bytes (header + payload).
    pub(crate) fn record_len(self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// The checksum stored in a record: crc32c (Castagnoli), unmasked, over the little-endian `seq`
/// followed by the payload.
pub(crate) fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&seq.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Fills the first [`RECORD_HEADER_LEN`] bytes of `record` (whose payload follows them).
pub(crate) fn seal_record(record: &mut [u8], seq: u64) {
    let Some((header, payload)) = record.split_at_mut_checked(RECORD_HEADER_LEN) else {
        return;
    };
    let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = record_crc(seq, payload);
    header[0..4].copy_from_slice(&payload_len.to_le_bytes());
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut buffer = [0u8; 4];
    buffer.copy_from_slice(bytes.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(buffer)
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_numerically_and_parse_back() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(1234)),
            Some(1234)
        );
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg.corrupt"),
            None
        );
        assert_eq!(parse_segment_file_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = encode_segment_header(77);
        assert_eq!(decode_segment_header(&header), Ok(77));
        for index in 0..28 {
            let mut damaged = header;
            damaged[index] ^= 0x01;
            assert!(decode_segment_header(&damaged).is_err(), "byte {index}");
        }
        assert!(decode_segment_header(&header[..10]).is_err());
    }

    #[test]
    fn sealed_record_checks_out() {
        let mut record = vec![0u8; RECORD_HEADER_LEN];
        record.extend_from_slice(b"payload");
        seal_record(&mut record, 9);
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        header_bytes.copy_from_slice(&record[..RECORD_HEADER_LEN]);
        let header = RecordHeader::decode(&header_bytes);
        assert_eq!(header.payload_len, 7);
        assert_eq!(header.seq, 9);
        assert_eq!(header.crc, record_crc(9, b"payload"));
        assert_ne!(
            record_crc(0, &[]),
            0,
            "a zero-filled header never checks out"
        );
    }
}
