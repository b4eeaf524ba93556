//! RFC 6587 stream framing, detected per frame.
//!
//! At the start of each frame:
//! - octet counting if the bytes are `MSGLEN SP <` with MSGLEN a nonzero digit and at most 8 more
//!   digits. The frame is the next MSGLEN bytes; a trailing LF, CRLF or NUL inside the count
//!   (rsyslog, syslog-ng) is stripped;
//! - otherwise non-transparent framing: the frame ends at LF (CR before it stripped) or NUL.
//!
//! Empty and blank frames are skipped. Oversized frames: the first `max_frame_bytes` are emitted
//! with `truncated = true`, and the rest is skipped as it arrives (octet counting: the remaining
//! counted bytes, across reads; LF framing: up to the next terminator), never buffered. The
//! framer only ever waits for more bytes while the buffer holds less than `max_frame_bytes` plus
//! the octet-count header (≤ 10 bytes) plus one CRLF.

use bytes::{Buf, BytesMut};

use super::{Frame, FramingEvent, cut_point};

/// Splits a TCP byte stream into frames. One per connection.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    max_frame_bytes: usize,
    /// Octet-counted bytes of an oversized frame still to skip.
    skip_counted: usize,
    /// Skipping the rest of an oversized LF-framed frame until its terminator.
    skip_to_terminator: bool,
}

enum Header {
    /// `MSGLEN SP <`: the count and the header length (digits + space).
    Octets(usize, usize),
    /// Not octet counting: non-transparent framing.
    NotOctets,
    /// Cannot tell yet.
    NeedMore,
}

fn octet_header(buf: &[u8]) -> Header {
    match buf.first() {
        Some(b'1'..=b'9') => {}
        Some(_) => return Header::NotOctets,
        None => return Header::NeedMore,
    }
    let mut count: usize = 0;
    let mut index = 0;
    while let Some(byte) = buf.get(index) {
        if !byte.is_ascii_digit() {
            break;
        }
        if index >= 9 {
            return Header::NotOctets;
        }
        count = count * 10 + usize::from(byte - b'0');
        index += 1;
    }
    match (buf.get(index), buf.get(index + 1)) {
        (None, _) | (Some(b' '), None) => Header::NeedMore,
        (Some(b' '), Some(b'<')) => Header::Octets(count, index + 1),
        _ => Header::NotOctets,
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

fn strip_trailer(bytes: &[u8]) -> usize {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes.get(end - 1), Some(b'\n' | b'\r' | b'\0')) {
        end -= 1;
    }
    end
}

impl StreamFramer {
    /// A framer that cuts frames at `max_frame_bytes` (at least 1).
    pub fn new(max_frame_bytes: usize) -> Self {
        StreamFramer {
            max_frame_bytes: max_frame_bytes.max(1),
            skip_counted: 0,
            skip_to_terminator: false,
        }
    }

    /// Next frame from the front of `buf` (consumed). `None` = need more bytes. Zero-copy: frames
    /// are `buf.split_to(n).freeze()` slices.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<FramingEvent> {
        loop {
            if !self.skip(buf) {
                return None;
            }
            if buf.is_empty() {
                return None;
            }
            let (event, progressed) = self.next_frame(buf);
            if let Some(event) = event {
                return Some(event);
            }
            if !progressed {
                return None;
            }
        }
    }

    /// At EOF: a last unterminated frame, if any (call repeatedly until `None`).
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<FramingEvent> {
        if let Some(event) = self.decode(buf) {
            return Some(event);
        }
        if self.skip_counted > 0 || self.skip_to_terminator {
            self.skip_counted = 0;
            self.skip_to_terminator = false;
            buf.clear();
            return None;
        }
        if buf.is_empty() {
            return None;
        }
        // An incomplete octet-counted frame: emit what arrived, without the header.
        if let Header::Octets(_, header_len) = octet_header(buf) {
            buf.advance(header_len);
        }
        let end = strip_trailer(buf);
        let mut rest = buf.split();
        rest.truncate(end);
        if is_blank(&rest) {
            return None;
        }
        let truncated = rest.len() > self.max_frame_bytes;
        if truncated {
            let cut = cut_point(&rest, self.max_frame_bytes);
            rest.truncate(cut);
        }
        Some(FramingEvent::Frame(Frame {
            bytes: rest.freeze(),
            truncated,
        }))
    }

    /// Skips what remains of an oversized frame. `false` if `buf` ran out while skipping.
    fn skip(&mut self, buf: &mut BytesMut) -> bool {
        if self.skip_counted > 0 {
            let n = self.skip_counted.min(buf.len());
            buf.advance(n);
            self.skip_counted -= n;
            if self.skip_counted > 0 {
                return false;
            }
        }
        if self.skip_to_terminator {
            match memchr::memchr2(b'\n', b'\0', buf) {
                Some(position) => {
                    buf.advance(position + 1);
                    self.skip_to_terminator = false;
                }
                None => {
                    buf.clear();
                    return false;
                }
            }
        }
        true
    }

    /// One attempt at a frame: (event, whether bytes were consumed).
    fn next_frame(&mut self, buf: &mut BytesMut) -> (Option<FramingEvent>, bool) {
        let max = self.max_frame_bytes;
        match octet_header(buf) {
            Header::NeedMore => return (None, false),
            Header::Octets(count, header_len) => {
                if count <= max {
                    if buf.len() < header_len + count {
                        return (None, false);
                    }
                    buf.advance(header_len);
                    let mut frame = buf.split_to(count);
                    frame.truncate(strip_trailer(&frame));
                    if is_blank(&frame) {
                        return (None, true);
                    }
                    return (
                        Some(FramingEvent::Frame(Frame {
                            bytes: frame.freeze(),
                            truncated: false,
                        })),
                        true,
                    );
                }
                // Wait for one byte past the cut to see whether it splits a character.
                if buf.len() < header_len + max + 1 {
                    return (None, false);
                }
                buf.advance(header_len);
                let cut = cut_point(&buf[..max + 1], max);
                let frame = buf.split_to(cut);
                self.skip_counted = count - cut;
                return (
                    Some(FramingEvent::Frame(Frame {
                        bytes: frame.freeze(),
                        truncated: true,
                    })),
                    true,
                );
            }
            Header::NotOctets => {}
        }
        // Non-transparent framing.
        let window = buf.len().min(max + 2);
        match memchr::memchr2(b'\n', b'\0', &buf[..window]) {
            Some(position) => {
                let end = if position > 0 && buf[position - 1] == b'\r' {
                    position - 1
                } else {
                    position
                };
                if end <= max {
                    let frame = buf.split_to(end);
                    buf.advance(position + 1 - end);
                    if is_blank(&frame) {
                        return (None, true);
                    }
                    return (
                        Some(FramingEvent::Frame(Frame {
                            bytes: frame.freeze(),
                            truncated: false,
                        })),
                        true,
                    );
                }
                let cut = cut_point(&buf[..end], max);
                let frame = buf.split_to(cut);
                buf.advance(position + 1 - cut);
                (
                    Some(FramingEvent::Frame(Frame {
                        bytes: frame.freeze(),
                        truncated: true,
                    })),
                    true,
                )
            }
            None if buf.len() >= max + 2 => {
                let cut = cut_point(&buf[..max + 1], max);
                let frame = buf.split_to(cut);
                self.skip_to_terminator = true;
                (
                    Some(FramingEvent::Frame(Frame {
                        bytes: frame.freeze(),
                        truncated: true,
                    })),
                    true,
                )
            }
            None => (None, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// All frames of `chunks` fed one after another, then EOF.
    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut framer = StreamFramer::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(event) = framer.decode(&mut buf) {
                if let FramingEvent::Frame(frame) = event {
                    out.push((frame.bytes.to_vec(), frame.truncated));
                }
            }
            assert!(buf.len() <= max + 12, "buffered {} bytes", buf.len());
        }
        while let Some(event) = framer.decode_eof(&mut buf) {
            if let FramingEvent::Frame(frame) = event {
                out.push((frame.bytes.to_vec(), frame.truncated));
            }
        }
        out
    }

    fn plain(items: &[&str]) -> Vec<(Vec<u8>, bool)> {
        items
            .iter()
            .map(|item| (item.as_bytes().to_vec(), false))
            .collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn framing_table() {
        let cases: &[(&str, &[u8], Vec<(Vec<u8>, bool)>)] = &[
            ("lf", b"<13>a\n<13>b\n", plain(&["<13>a", "<13>b"])),
            ("crlf", b"<13>a\r\n<13>b\r\n", plain(&["<13>a", "<13>b"])),
            (
                "nul (python SysLogHandler)",
                b"<13>a\0<13>b\0",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "blank lines skipped",
                b"\n\n<13>a\n\r\n\0\n<13>b\n",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "octet counting",
                b"5 <13>a5 <13>b",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "octet count includes trailing lf (rsyslog)",
                b"6 <13>a\n6 <13>b\n",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "lf after octet frame",
                b"5 <13>a\n5 <13>b\n",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "mixed per frame",
                b"5 <13>a<13>b\n5 <13>c",
                plain(&["<13>a", "<13>b", "<13>c"]),
            ),
            (
                "fortigate 3164 octet counted",
                b"29 <189>date=2024-01-01 a=b c=d",
                plain(&["<189>date=2024-01-01 a=b c=d"]),
            ),
            (
                "count without < is text",
                b"12 apples here\n",
                plain(&["12 apples here"]),
            ),
            ("zero count is text", b"0 <13>a\n", plain(&["0 <13>a"])),
            (
                "ten digit count is text",
                b"1234567890 <13>a\n",
                plain(&["1234567890 <13>a"]),
            ),
            (
                "unterminated last frame at eof",
                b"<13>a\n<13>b",
                plain(&["<13>a", "<13>b"]),
            ),
            (
                "incomplete octet frame at eof",
                b"16 <1>1",
                plain(&["<1>1"]),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(&frames(1024, &[input]), expected, "{name}");
        }
    }

    #[test]
    fn oversized_lf_frame_is_truncated_and_stream_resyncs() {
        let got = frames(4, &[b"abcdefgh", b"ijkl\n<1>x\n"]);
        assert_eq!(
            got,
            vec![(b"abcd".to_vec(), true), (b"<1>x".to_vec(), false)]
        );
        let got = frames(4, &[b"abcdefgh\nxy\n"]);
        assert_eq!(got, vec![(b"abcd".to_vec(), true), (b"xy".to_vec(), false)]);
    }

    #[test]
    fn oversized_octet_frame_skips_counted_bytes_across_reads() {
        let got = frames(4, &[b"10 <1>45", b"6789", b"0", b"3 <2>"]);
        assert_eq!(
            got,
            vec![(b"<1>4".to_vec(), true), (b"<2>".to_vec(), false)]
        );
    }

    #[test]
    fn frame_of_exactly_max_bytes_with_crlf_is_not_truncated() {
        assert_eq!(frames(4, &[b"abcd\r\nef\n"]), plain(&["abcd", "ef"]));
    }

    #[test]
    fn truncation_does_not_split_a_utf8_character() {
        let got = frames(4, &["abcé-rest\nok\n".as_bytes()]);
        assert_eq!(got, vec![(b"abc".to_vec(), true), (b"ok".to_vec(), false)]);
    }

    fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "<1[0-9]>[a-z ]{0,40}\n".prop_map(String::into_bytes),
            "<1[0-9]>[a-z ]{0,40}\r\n".prop_map(String::into_bytes),
            "<1[0-9]>[a-z ]{0,40}\0".prop_map(String::into_bytes),
            "<1[0-9]>[a-z \n]{0,40}".prop_map(|body| format!("{} {body}", body.len()).into_bytes()),
            "[0-9 <a-z]{0,12}\n".prop_map(String::into_bytes),
            Just(b"\n".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        #[test]
        fn any_chunking_gives_the_same_frames(
            stream in proptest::collection::vec(frame_strategy(), 0..12),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            max in 8usize..64,
        ) {
            let stream: Vec<u8> = stream.concat();
            let whole = frames(max, &[&stream]);
            let mut positions: Vec<usize> = cuts.iter().map(|index| index.index(stream.len() + 1)).collect();
            positions.sort_unstable();
            let mut chunks = Vec::new();
            let mut previous = 0;
            for position in positions {
                chunks.push(&stream[previous..position]);
                previous = position;
            }
            chunks.push(&stream[previous..]);
            prop_assert_eq!(frames(max, &chunks), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic_or_overbuffer(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10),
            max in 1usize..32,
        ) {
            let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            for (frame, _) in frames(max, &chunks) {
                prop_assert!(frame.len() <= max);
                prop_assert!(!frame.is_empty());
            }
        }
    }
}
