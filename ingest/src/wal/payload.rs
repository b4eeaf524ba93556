//! The payload of a WAL record: one [`RawBatch`] with its metadata, in a compact little-endian
//! binary form (layout in the module docs of [`crate::wal`]).
//!
//! Decoding is fully validated: every length is checked against the bytes that remain before
//! anything is allocated, unknown codes are errors, trailing bytes are errors. A corrupt payload
//! is a [`PayloadError`], never a panic. Frames of a decoded batch are zero-copy slices of the
//! payload's `Bytes`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;

use crate::batch::{RawBatch, RawFrame};
use crate::event::{EventFlags, Seq, Source, Timestamp};

/// Version byte that starts every payload written by this code.
pub(crate) const PAYLOAD_VERSION: u8 = 1;
/// The smallest valid payload: version, format, source, peer flag, received_at, peers count,
/// frame count.
pub(crate) const MIN_PAYLOAD_LEN: usize = 4 + 8 + 4 + 4;

/// How the frames of a record are to be decoded when they are processed (and replayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameFormat {
    /// Syslog frames (RFC 5424 / RFC 3164 / JSON line, auto-detected by the parser).
    Syslog,
    /// Each frame is one accepted NDJSON line of an HTTP ingest body.
    NdjsonLine,
}

impl FrameFormat {
    fn code(self) -> u8 {
        match self {
            FrameFormat::Syslog => 0,
            FrameFormat::NdjsonLine => 1,
        }
    }

    fn from_code(code: u8) -> Option<FrameFormat> {
        match code {
            0 => Some(FrameFormat::Syslog),
            1 => Some(FrameFormat::NdjsonLine),
            _ => None,
        }
    }
}

fn source_code(source: Source) -> u8 {
    match source {
        Source::SyslogUdp => 0,
        Source::SyslogTcp => 1,
        Source::HttpNdjson => 2,
        Source::File => 3,
        Source::HttpElastic => 4,
        Source::HttpHec => 5,
        Source::SyslogTls => 6,
        Source::Relp => 7,
    }
}

fn source_from_code(code: u8) -> Option<Source> {
    match code {
        0 => Some(Source::SyslogUdp),
        1 => Some(Source::SyslogTcp),
        2 => Some(Source::HttpNdjson),
        3 => Some(Source::File),
        4 => Some(Source::HttpElastic),
        5 => Some(Source::HttpHec),
        6 => Some(Source::SyslogTls),
        7 => Some(Source::Relp),
        _ => None,
    }
}

/// The frame flags a payload may carry, by bit.
const KNOWN_FLAGS: [EventFlags; 5] = [
    EventFlags::PARSE_ERROR,
    EventFlags::TRUNCATED,
    EventFlags::INVALID_UTF8,
    EventFlags::TS_FROM_RECEIVE,
    EventFlags::FIELDS_TRUNCATED,
];

fn flags_from_bits(bits: u8) -> Option<EventFlags> {
    let mut flags = EventFlags::empty();
    let mut known_bits = 0u8;
    for flag in KNOWN_FLAGS {
        known_bits |= flag.bits();
        if bits & flag.bits() != 0 {
            flags.insert(flag);
        }
    }
    (bits & !known_bits == 0).then_some(flags)
}

/// Why a payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload ends inside {0}")]
    Truncated(&'static str),
    #[error("payload version {0} is not supported")]
    UnknownVersion(u8),
    #[error("unknown frame format code {0}")]
    UnknownFormat(u8),
    #[error("unknown source code {0}")]
    UnknownSource(u8),
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    #[error("unknown address family {0}")]
    UnknownAddressFamily(u8),
    #[error("bad peer flag {0}")]
    BadPeerFlag(u8),
    #[error("{count} {what} cannot fit in the {remaining} bytes left")]
    CountTooLarge {
        what: &'static str,
        count: u32,
        remaining: usize,
    },
    #[error("{0} bytes after the last frame")]
    TrailingBytes(usize),
}

/// Appends the payload of `batch` to `out`. The batch's `first_seq` is not in the payload: it is
/// the record header's `seq`.
pub(crate) fn encode_payload(format: FrameFormat, batch: &RawBatch, out: &mut Vec<u8>) {
    out.reserve(MIN_PAYLOAD_LEN + batch.byte_len() + batch.frames.len() * 5 + 32);
    out.push(PAYLOAD_VERSION);
    out.push(format.code());
    out.push(source_code(batch.source));
    match batch.peer {
        None => out.push(0),
        Some(peer) => {
            out.push(1);
            encode_addr(peer, out);
        }
    }
    out.extend_from_slice(&batch.received_at.0.to_le_bytes());
    out.extend_from_slice(&count_u32(batch.peers.len()).to_le_bytes());
    for peer in &batch.peers {
        encode_addr(*peer, out);
    }
    out.extend_from_slice(&count_u32(batch.frames.len()).to_le_bytes());
    for frame in &batch.frames {
        out.push(frame.flags.bits());
        out.extend_from_slice(&count_u32(frame.bytes.len()).to_le_bytes());
        out.extend_from_slice(&frame.bytes);
    }
}

/// Lengths are checked against `max_record_bytes` (≤ 1 GiB) before encoding, so they fit.
fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// An upper bound of the payload size of `batch`, computed without encoding: what a caller
/// compares with `max_record_bytes` to split a large batch (e.g. a big HTTP body) into records.
pub fn payload_len_bound(batch: &RawBatch) -> usize {
    const ADDR_MAX: usize = 1 + 16 + 2 + 4 + 4;
    MIN_PAYLOAD_LEN
        + ADDR_MAX
        + batch.peers.len() * ADDR_MAX
        + batch.frames.len() * 5
        + batch.byte_len()
}

fn encode_addr(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&v4.port().to_le_bytes());
        }
        SocketAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.port().to_le_bytes());
            out.extend_from_slice(&v6.flowinfo().to_le_bytes());
            out.extend_from_slice(&v6.scope_id().to_le_bytes());
        }
    }
}

/// Decodes a payload into its format and batch; `seq` is the record header's sequence number.
///
/// # Errors
/// [`PayloadError`] for any malformed input (never panics).
pub fn decode_payload(seq: u64, payload: &Bytes) -> Result<(FrameFormat, RawBatch), PayloadError> {
    let mut cursor = Cursor {
        bytes: payload,
        offset: 0,
    };
    let version = cursor.u8("version")?;
    if version != PAYLOAD_VERSION {
        return Err(PayloadError::UnknownVersion(version));
    }
    let format_code = cursor.u8("format")?;
    let format =
        FrameFormat::from_code(format_code).ok_or(PayloadError::UnknownFormat(format_code))?;
    let source_byte = cursor.u8("source")?;
    let source = source_from_code(source_byte).ok_or(PayloadError::UnknownSource(source_byte))?;
    let peer = match cursor.u8("peer flag")? {
        0 => None,
        1 => Some(cursor.addr()?),
        other => return Err(PayloadError::BadPeerFlag(other)),
    };
    let received_at = Timestamp(i64::from_le_bytes(cursor.array::<8>("received_at")?));
    // The smallest address is 7 bytes, the smallest frame 5: counts are bounded by what remains
    // before any allocation.
    let peer_count = cursor.count("peers", 7)?;
    let mut peers = Vec::with_capacity(peer_count);
    for _ in 0..peer_count {
        peers.push(cursor.addr()?);
    }
    let frame_count = cursor.count("frames", 5)?;
    let mut frames = Vec::with_capacity(frame_count);
    for _ in 0..frame_count {
        let bits = cursor.u8("frame flags")?;
        let flags = flags_from_bits(bits).ok_or(PayloadError::UnknownFlags(bits))?;
        let len = u32::from_le_bytes(cursor.array::<4>("frame length")?);
        let bytes = cursor.slice(len as usize, "frame bytes")?;
        frames.push(RawFrame { bytes, flags });
    }
    let trailing = payload.len().saturating_sub(cursor.offset);
    if trailing != 0 {
        return Err(PayloadError::TrailingBytes(trailing));
    }
    let batch = RawBatch {
        source,
        peer,
        peers,
        received_at,
        first_seq: Seq(seq),
        frames,
    };
    Ok((format, batch))
}

struct Cursor<'a> {
    bytes: &'a Bytes,
    offset: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&[u8], PayloadError> {
        let end = self
            .offset
            .checked_add(len)
            .ok_or(PayloadError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or(PayloadError::Truncated(what))?;
        self.offset = end;
        Ok(slice)
    }

    fn slice(&mut self, len: usize, what: &'static str) -> Result<Bytes, PayloadError> {
        let start = self.offset;
        self.take(len, what)?;
        Ok(self.bytes.slice(start..self.offset))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PayloadError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PayloadError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn count(&mut self, what: &'static str, min_item_len: usize) -> Result<usize, PayloadError> {
        let count = u32::from_le_bytes(self.array::<4>(what)?);
        let remaining = self.remaining();
        if (count as usize).saturating_mul(min_item_len) > remaining {
            return Err(PayloadError::CountTooLarge {
                what,
                count,
                remaining,
            });
        }
        Ok(count as usize)
    }

    fn addr(&mut self) -> Result<SocketAddr, PayloadError> {
        match self.u8("address family")? {
            4 => {
                let ip = Ipv4Addr::from(self.array::<4>("ipv4 address")?);
                let port = u16::from_le_bytes(self.array::<2>("port")?);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            6 => {
                let ip = Ipv6Addr::from(self.array::<16>("ipv6 address")?);
                let port = u16::from_le_bytes(self.array::<2>("port")?);
                let flowinfo = u32::from_le_bytes(self.array::<4>("flowinfo")?);
                let scope_id = u32::from_le_bytes(self.array::<4>("scope id")?);
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip, port, flowinfo, scope_id,
                )))
            }
            other => Err(PayloadError::UnknownAddressFamily(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_batch() -> RawBatch {
        RawBatch {
            source: Source::SyslogUdp,
            peer: Some("10.1.2.3:514".parse().expect("addr")),
            peers: vec![
                "10.0.0.1:1000".parse().expect("addr"),
                "[fe80::1%3]:514".parse().expect("addr"),
            ],
            received_at: Timestamp(-5),
            first_seq: Seq(1000),
            frames: vec![
                RawFrame {
                    bytes: Bytes::from_static(b"<13>hello"),
                    flags: EventFlags::empty(),
                },
                RawFrame {
                    bytes: Bytes::new(),
                    flags: EventFlags::TRUNCATED | EventFlags::INVALID_UTF8,
                },
            ],
        }
    }

    fn assert_same(left: &RawBatch, right: &RawBatch) {
        assert_eq!(left.source, right.source);
        assert_eq!(left.peer, right.peer);
        assert_eq!(left.peers, right.peers);
        assert_eq!(left.received_at, right.received_at);
        assert_eq!(left.first_seq, right.first_seq);
        assert_eq!(left.frames.len(), right.frames.len());
        for (a, b) in left.frames.iter().zip(&right.frames) {
            assert_eq!(a.bytes, b.bytes);
            assert_eq!(a.flags, b.flags);
        }
    }

    #[test]
    fn payload_round_trips() {
        let batch = sample_batch();
        let mut encoded = Vec::new();
        encode_payload(FrameFormat::NdjsonLine, &batch, &mut encoded);
        assert!(encoded.len() <= payload_len_bound(&batch));
        let (format, decoded) = decode_payload(1000, &Bytes::from(encoded)).expect("decodes");
        assert_eq!(format, FrameFormat::NdjsonLine);
        assert_same(&batch, &decoded);
        assert_eq!(decoded.peers[1].ip().to_string(), "fe80::1");
    }

    fn arbitrary_addr() -> impl proptest::strategy::Strategy<Value = SocketAddr> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
            (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
                |(ip, port, flowinfo, scope_id)| SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    flowinfo,
                    scope_id
                ))
            ),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_batch_round_trips(
            ndjson in proptest::bool::ANY,
            source in 0u8..6,
            peer in proptest::option::of(arbitrary_addr()),
            peers in proptest::collection::vec(arbitrary_addr(), 0..4),
            received_at in proptest::num::i64::ANY,
            seq in proptest::num::u64::ANY,
            frames in proptest::collection::vec(
                (proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0u8..32),
                0..8
            ),
        ) {
            let batch = RawBatch {
                source: source_from_code(source).unwrap_or(Source::File),
                peer,
                peers,
                received_at: Timestamp(received_at),
                first_seq: Seq(seq),
                frames: frames
                    .into_iter()
                    .map(|(bytes, bits)| RawFrame {
                        bytes: Bytes::from(bytes),
                        flags: flags_from_bits(bits).unwrap_or_default(),
                    })
                    .collect(),
            };
            let format = if ndjson { FrameFormat::NdjsonLine } else { FrameFormat::Syslog };
            let mut encoded = Vec::new();
            encode_payload(format, &batch, &mut encoded);
            proptest::prop_assert!(encoded.len() <= payload_len_bound(&batch));
            let decoded = decode_payload(seq, &Bytes::from(encoded));
            proptest::prop_assert!(decoded.is_ok());
            if let Ok((decoded_format, decoded_batch)) = decoded {
                proptest::prop_assert_eq!(decoded_format, format);
                assert_same(&batch, &decoded_batch);
            }
        }
    }

    #[test]
    fn every_strict_prefix_is_rejected() {
        let mut encoded = Vec::new();
        encode_payload(FrameFormat::Syslog, &sample_batch(), &mut encoded);
        for len in 0..encoded.len() {
            let prefix = Bytes::copy_from_slice(&encoded[..len]);
            assert!(decode_payload(1, &prefix).is_err(), "prefix of {len} bytes");
        }
        encoded.push(0);
        assert_eq!(
            decode_payload(1, &Bytes::from(encoded)).err(),
            Some(PayloadError::TrailingBytes(1))
        );
    }

    #[test]
    fn huge_counts_are_rejected_before_allocating() {
        let mut encoded = vec![PAYLOAD_VERSION, 0, 0, 0];
        encoded.extend_from_slice(&0i64.to_le_bytes());
        encoded.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_payload(1, &Bytes::from(encoded)),
            Err(PayloadError::CountTooLarge { what: "peers", .. })
        ));
    }

    #[test]
    fn unknown_codes_are_rejected() {
        let mut encoded = Vec::new();
        encode_payload(FrameFormat::Syslog, &sample_batch(), &mut encoded);
        for (index, value, expected) in [
            (0usize, 9u8, PayloadError::UnknownVersion(9)),
            (1, 7, PayloadError::UnknownFormat(7)),
            (2, 8, PayloadError::UnknownSource(8)),
            (3, 2, PayloadError::BadPeerFlag(2)),
            (4, 5, PayloadError::UnknownAddressFamily(5)),
        ] {
            let mut damaged = encoded.clone();
            damaged[index] = value;
            assert_eq!(
                decode_payload(1, &Bytes::from(damaged)).err(),
                Some(expected)
            );
        }
        assert_eq!(flags_from_bits(0x80), None);
        assert_eq!(flags_from_bits(0b10), Some(EventFlags::TRUNCATED));
    }
}
