//! Framing: turning datagrams and byte streams into syslog frames.
//!
//! - UDP: one datagram is one frame ([`datagram_frame`]).
//! - TCP: RFC 6587, detected per frame by [`StreamFramer`]: octet counting (`MSGLEN SP MSG`) or
//!   non-transparent framing (LF, CRLF or NUL terminated). See `stream.rs` for the rules.
//!
//! Frames are zero-copy `Bytes` slices of the receive buffer. A frame longer than
//! `max_frame_bytes` is cut (at a UTF-8 boundary when the cut falls inside a character) and marked
//! `truncated`; the rest of it is skipped without being buffered.

mod stream;

use bytes::Bytes;

pub use stream::StreamFramer;

/// Default cap on one frame (64 KiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// One syslog frame (without its framing: no octet count, no trailing terminator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Bytes,
    /// The frame was longer than `max_frame_bytes` and was cut.
    pub truncated: bool,
}

/// What the stream framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingEvent {
    Frame(Frame),
    /// An oversized frame was discarded entirely. [`StreamFramer`] currently never discards a
    /// whole frame (it emits the first `max_frame_bytes` as a truncated frame); the variant is
    /// kept for framers that cannot.
    Discarded {
        bytes: usize,
    },
}

/// Where to cut `bytes` to at most `max` bytes without splitting a UTF-8 character (if the data is
/// UTF-8; otherwise at `max`).
pub(crate) fn cut_point(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut cut = max;
    for _ in 0..3 {
        match bytes.get(cut) {
            Some(byte) if cut > 0 && (byte & 0xC0) == 0x80 => cut -= 1,
            _ => break,
        }
    }
    if bytes.get(cut).is_some_and(|byte| (byte & 0xC0) == 0x80) {
        max
    } else {
        cut.max(1).min(max)
    }
}

/// UDP: one datagram = one frame; trailing LF / CRLF / NUL are stripped; cut to
/// `max_frame_bytes` (`truncated = true`).
pub fn datagram_frame(mut datagram: Bytes, max_frame_bytes: usize) -> Frame {
    let mut end = datagram.len();
    while end > 0 && matches!(datagram.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    let truncated = end > max_frame_bytes;
    if truncated {
        end = cut_point(&datagram[..end], max_frame_bytes);
    }
    datagram.truncate(end);
    Frame {
        bytes: datagram,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_trailers_are_stripped() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"<13>hi\n", b"<13>hi"),
            (b"<13>hi\r\n", b"<13>hi"),
            (b"<13>hi\0", b"<13>hi"),
            (b"<13>hi", b"<13>hi"),
            (b"\n", b""),
        ];
        for (input, expected) in cases {
            let frame = datagram_frame(Bytes::copy_from_slice(input), 100);
            assert_eq!(&frame.bytes[..], *expected);
            assert!(!frame.truncated);
        }
    }

    #[test]
    fn oversized_datagram_is_cut_on_a_char_boundary() {
        let frame = datagram_frame(Bytes::from_static(b"abcdef\n"), 4);
        assert_eq!((&frame.bytes[..], frame.truncated), (&b"abcd"[..], true));
        // "aé" is 3 bytes; a cut at 2 would split "é".
        let frame = datagram_frame(Bytes::from("aébc"), 2);
        assert_eq!((&frame.bytes[..], frame.truncated), ("a".as_bytes(), true));
    }
}
