//! RELP, the Reliable Event Logging Protocol of rsyslog (`omrelp` → this listener): syslog
//! messages acknowledged one by one, each only once it is durable in the WAL.
//!
//! # Wire format
//!
//! Both directions carry frames `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR 1-9 digits,
//! COMMAND 1-32 letters, DATALEN 1-9 digits (no `SP DATA` when it is 0). The client sends
//! `open` (its offers, `name=value` lines: `relp_version`, `relp_software`, `commands`), then
//! `syslog` frames whose DATA is one message, then `close`. The server answers each with an
//! `rsp` frame of the same TXNR whose DATA starts with a status (`200 OK`, `500 reason`); the
//! answer to `open` also carries the server's offers, the answer to `close` is empty. The server
//! may send the hint `0 serverclose 0` before it closes a session (it gets no answer).
//!
//! # What an acknowledgement means
//!
//! The syslog frames of one read are appended to the WAL as one batch and queued (the same path
//! and backpressure as TCP, [`super::connection::append_and_queue`]); then the session waits
//! until the WAL is durable up to the batch's end under the fsync policy, and only then sends the
//! batch's `200 OK`s, in TXNR order. The sender's window (rsyslog: 128 unacknowledged frames)
//! bounds what one session has in flight; the session does not read while it waits, so a slow
//! disk or a full pipeline pushes back on the sender. Frames whose data is longer than
//! `max_frame_bytes` are kept truncated (flagged), the rest of their data is skipped, and they
//! are acknowledged like the others: the stream stays in sync. A malformed frame ends the
//! session (counted as `relp_protocol_errors`): the sender reconnects and resends everything not
//! acknowledged.
//!
//! # Delivery across restarts
//!
//! - A graceful stop (SIGTERM) stops reading, lets every batch already read become durable and
//!   acknowledges it, sends `serverclose` and closes: nothing acknowledged is resent and nothing
//!   read is left unacknowledged, so a restart neither loses nor duplicates a message.
//! - A crash (SIGKILL, power loss) between the WAL append and the `rsp` leaves messages that are
//!   in the WAL (replayed, indexed) but not acknowledged: the sender resends them after it
//!   reconnects, and they are indexed twice. That is RELP's at-least-once contract; RELP carries
//!   no message identity that would let the server recognise a resend across sessions. At most
//!   one batch per session (bounded by the sender's window) is exposed. Nothing acknowledged is
//!   ever lost (the `rsp` follows the fsync).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::ListenerContext;
use super::connection::{accept_loop, append_and_queue, bind_tcp};
use super::tcp::TcpConfig;
use crate::batch::RawFrame;
use crate::error::IngestError;
use crate::event::{EventFlags, Source, Timestamp};

/// Longest TXNR, and longest DATALEN, in digits.
const MAX_NUMBER_DIGITS: usize = 9;
/// Longest COMMAND.
const MAX_COMMAND_LEN: usize = 32;
/// Longest header `TXNR SP COMMAND SP DATALEN` plus the byte after it.
const MAX_HEADER_LEN: usize = MAX_NUMBER_DIGITS + 1 + MAX_COMMAND_LEN + 1 + MAX_NUMBER_DIGITS + 1;

/// What the server offers in its answer to `open`.
const SERVER_OFFERS: &str = concat!(
    "relp_version=0\nrelp_software=cairn,",
    env!("CARGO_PKG_VERSION"),
    "\ncommands=syslog"
);

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, IngestError> {
    bind_tcp(addr, "relp").await
}

/// Accepts and serves RELP sessions until the context's shutdown token is cancelled; returns
/// once every session has acknowledged what it read and closed. `config` gives the frame limit
/// (longest message kept), connection limit, idle timeout and read size.
pub async fn run(listener: TcpListener, config: TcpConfig, context: ListenerContext) {
    let limiter = config.limiter();
    let config = Arc::new(config);
    accept_loop(
        listener,
        limiter,
        "relp",
        context,
        move |stream, peer, context| {
            let config = Arc::clone(&config);
            async move { serve_session(stream, peer, &config, &context).await }
        },
    )
    .await;
}

/// A RELP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Open,
    Syslog,
    Close,
    /// Any other command (answered `500`, the session goes on).
    Other(String),
}

impl Command {
    fn parse(name: &[u8]) -> Command {
        match name {
            b"open" => Command::Open,
            b"syslog" => Command::Syslog,
            b"close" => Command::Close,
            other => Command::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }
}

/// One frame received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelpFrame {
    pub txnr: u32,
    pub command: Command,
    /// The frame's DATA (at most `max_data_bytes` of it).
    pub data: Bytes,
    /// DATA was longer than `max_data_bytes` and was cut.
    pub truncated: bool,
}

/// Why the byte stream is not RELP. The session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelpError {
    #[error("invalid transaction number")]
    Txnr,
    #[error("invalid command")]
    Command,
    #[error("invalid data length")]
    DataLength,
    #[error("frame does not end with LF")]
    Trailer,
}

/// A frame whose data is being skipped past `max_data_bytes`.
#[derive(Debug)]
struct Skipping {
    frame: RelpFrame,
    remaining: usize,
}

/// Splits a byte stream into RELP frames. Incremental: feed it the read buffer after every read.
#[derive(Debug)]
pub struct RelpDecoder {
    max_data_bytes: usize,
    skipping: Option<Skipping>,
}

impl RelpDecoder {
    /// A decoder keeping at most `max_data_bytes` of each frame's data.
    pub fn new(max_data_bytes: usize) -> RelpDecoder {
        RelpDecoder {
            max_data_bytes,
            skipping: None,
        }
    }

    /// The next complete frame at the start of `buffer` (consumed), `Ok(None)` when more bytes
    /// are needed.
    ///
    /// # Errors
    /// [`RelpError`] when the bytes cannot be RELP; the stream cannot be resynchronised.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<RelpFrame>, RelpError> {
        if let Some(skipping) = &mut self.skipping {
            let skipped = skipping.remaining.min(buffer.len());
            buffer.advance(skipped);
            skipping.remaining -= skipped;
            if skipping.remaining > 0 || buffer.is_empty() {
                return Ok(None);
            }
            if buffer[0] != b'\n' {
                return Err(RelpError::Trailer);
            }
            buffer.advance(1);
            return Ok(self.skipping.take().map(|skipping| skipping.frame));
        }
        let Some(header) = parse_header(buffer)? else {
            return Ok(None);
        };
        if header.data_len == 0 {
            let frame = RelpFrame {
                txnr: header.txnr,
                command: Command::parse(&buffer[header.command.clone()]),
                data: Bytes::new(),
                truncated: false,
            };
            buffer.advance(header.len);
            return Ok(Some(frame));
        }
        let kept = header.data_len.min(self.max_data_bytes);
        if header.data_len <= self.max_data_bytes {
            // Data and trailer must be complete.
            let Some(&trailer) = buffer.get(header.len + header.data_len) else {
                return Ok(None);
            };
            if trailer != b'\n' {
                return Err(RelpError::Trailer);
            }
        } else if buffer.len() < header.len + kept {
            return Ok(None);
        }
        let command = Command::parse(&buffer[header.command.clone()]);
        buffer.advance(header.len);
        let data = buffer.split_to(kept).freeze();
        let frame = RelpFrame {
            txnr: header.txnr,
            command,
            data,
            truncated: kept < header.data_len,
        };
        if frame.truncated {
            self.skipping = Some(Skipping {
                frame,
                remaining: header.data_len - kept,
            });
            return self.decode(buffer);
        }
        buffer.advance(1);
        Ok(Some(frame))
    }
}

#[derive(Debug)]
struct Header {
    txnr: u32,
    command: std::ops::Range<usize>,
    data_len: usize,
    /// Bytes up to the data (after `DATALEN SP`), or the whole frame when `data_len` is 0.
    len: usize,
}

/// Parses `TXNR SP COMMAND SP DATALEN (SP | LF)`; `Ok(None)` when incomplete.
fn parse_header(buffer: &[u8]) -> Result<Option<Header>, RelpError> {
    let mut at = 0;
    let Some(txnr) = number(buffer, &mut at, RelpError::Txnr)? else {
        return Ok(None);
    };
    let command_start = at;
    while let Some(byte) = buffer.get(at) {
        if *byte == b' ' {
            break;
        }
        if !byte.is_ascii_alphabetic() || at - command_start >= MAX_COMMAND_LEN {
            return Err(RelpError::Command);
        }
        at += 1;
    }
    if at >= buffer.len() {
        return Ok(None);
    }
    if at == command_start {
        return Err(RelpError::Command);
    }
    let command = command_start..at;
    at += 1;
    let data_start = at;
    while let Some(byte) = buffer.get(at) {
        if !byte.is_ascii_digit() {
            break;
        }
        if at - data_start >= MAX_NUMBER_DIGITS {
            return Err(RelpError::DataLength);
        }
        at += 1;
    }
    let Some(&after) = buffer.get(at) else {
        return Ok(None);
    };
    if at == data_start {
        return Err(RelpError::DataLength);
    }
    let data_len = ascii_number(&buffer[data_start..at]);
    debug_assert!(at < MAX_HEADER_LEN);
    match (after, data_len) {
        (b'\n', 0) => Ok(Some(Header {
            txnr,
            command,
            data_len,
            len: at + 1,
        })),
        (b' ', 0) => match buffer.get(at + 1) {
            // `N cmd 0 LF` with a stray space: tolerated.
            Some(b'\n') => Ok(Some(Header {
                txnr,
                command,
                data_len,
                len: at + 2,
            })),
            Some(_) => Err(RelpError::Trailer),
            None => Ok(None),
        },
        (b' ', _) => Ok(Some(Header {
            txnr,
            command,
            data_len,
            len: at + 1,
        })),
        _ => Err(RelpError::DataLength),
    }
}

/// Reads `DIGITS SP` at `at` (advancing past the space); `Ok(None)` when incomplete.
fn number(buffer: &[u8], at: &mut usize, error: RelpError) -> Result<Option<u32>, RelpError> {
    let start = *at;
    loop {
        let Some(byte) = buffer.get(*at) else {
            return Ok(None);
        };
        match byte {
            b'0'..=b'9' if *at - start < MAX_NUMBER_DIGITS => *at += 1,
            b' ' if *at > start => break,
            _ => return Err(error),
        }
    }
    let value = ascii_number(&buffer[start..*at]);
    *at += 1;
    Ok(Some(value as u32))
}

/// The value of at most 9 ASCII digits.
fn ascii_number(digits: &[u8]) -> usize {
    digits.iter().fold(0usize, |value, digit| {
        value * 10 + usize::from(digit - b'0')
    })
}

/// Appends one `rsp` frame to `out`.
fn write_response(out: &mut Vec<u8>, txnr: u32, data: &str) {
    if data.is_empty() {
        out.extend_from_slice(format!("{txnr} rsp 0\n").as_bytes());
    } else {
        out.extend_from_slice(format!("{txnr} rsp {} {data}\n", data.len()).as_bytes());
    }
}

/// The answer to `open`: `200 OK` and the server's offers, or a `500` when the client does not
/// offer the `syslog` command.
fn open_response(offers: &[u8]) -> String {
    let offers = String::from_utf8_lossy(offers);
    let offers_syslog = offers.lines().any(|line| {
        line.split_once('=').is_some_and(|(name, values)| {
            name.trim() == "commands" && values.split(',').any(|value| value.trim() == "syslog")
        })
    });
    if offers_syslog {
        format!("200 OK\n{SERVER_OFFERS}")
    } else {
        "500 required command not supported by client".to_string()
    }
}

/// What a session does after one read's frames are handled.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Read,
    /// The client sent `close` (answered) or the session must end.
    End,
}

/// One RELP session over any byte stream (TCP here; TLS would wrap the same loop).
async fn serve_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    config: &TcpConfig,
    context: &ListenerContext,
) {
    let mut decoder = RelpDecoder::new(config.max_frame_bytes);
    let mut buffer = BytesMut::with_capacity(config.read_buffer_bytes);
    let mut session = Session {
        open: false,
        peer,
        out: Vec::new(),
    };
    loop {
        if buffer.capacity() - buffer.len() < config.read_buffer_bytes / 4 {
            buffer.reserve(config.read_buffer_bytes);
        }
        let read = tokio::select! {
            () = context.shutdown.cancelled() => {
                // Everything read so far is acknowledged; tell the client before closing.
                let _ = stream.write_all(b"0 serverclose 0\n").await;
                let _ = stream.shutdown().await;
                return;
            }
            read = tokio::time::timeout(config.idle_timeout, stream.read_buf(&mut buffer)) => read,
        };
        match read {
            Err(_elapsed) => {
                context.stats.connection_idle_closed();
                tracing::debug!(%peer, "relp session idle, closing");
                let _ = stream.write_all(b"0 serverclose 0\n").await;
                return;
            }
            Ok(Ok(0)) => return,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "relp read failed");
                return;
            }
        }
        let received_at = Timestamp::now();
        let next = session
            .handle_read(&mut decoder, &mut buffer, received_at, context)
            .await;
        if !session.out.is_empty() {
            let written = stream.write_all(&session.out).await;
            session.out.clear();
            if written.is_err() || stream.flush().await.is_err() {
                return;
            }
        }
        if next == Next::End {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

#[derive(Debug)]
struct Session {
    open: bool,
    peer: SocketAddr,
    /// Responses to send after this read's batch is durable.
    out: Vec<u8>,
}

impl Session {
    /// Decodes every complete frame of `buffer`, stores the syslog messages (WAL, durable,
    /// queued) and leaves the responses in `self.out`, in frame order.
    async fn handle_read(
        &mut self,
        decoder: &mut RelpDecoder,
        buffer: &mut BytesMut,
        received_at: Timestamp,
        context: &ListenerContext,
    ) -> Next {
        let mut frames = Vec::new();
        // (txnr, response) in frame order; syslog acks are sent only after the batch is durable.
        let mut responses: Vec<(u32, String)> = Vec::new();
        let mut next = Next::Read;
        loop {
            let frame = match decoder.decode(buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    context.stats.relp_protocol_error();
                    tracing::warn!(peer = %self.peer, %error, "relp protocol error, closing the session");
                    next = Next::End;
                    break;
                }
            };
            match frame.command {
                Command::Open if self.open => {
                    responses.push((frame.txnr, "200 connection already open - ignored".into()));
                }
                Command::Open => {
                    let response = open_response(&frame.data);
                    self.open = response.starts_with("200");
                    if self.open {
                        context.stats.relp_session_opened();
                    } else {
                        context.stats.relp_protocol_error();
                        next = Next::End;
                    }
                    responses.push((frame.txnr, response));
                }
                Command::Syslog if self.open => {
                    let mut data = frame.data;
                    if data.last() == Some(&b'\n') {
                        data.truncate(data.len() - 1);
                    }
                    let flags = if frame.truncated {
                        EventFlags::TRUNCATED
                    } else {
                        EventFlags::empty()
                    };
                    frames.push(RawFrame { bytes: data, flags });
                    responses.push((frame.txnr, "200 OK".into()));
                }
                Command::Syslog => {
                    context.stats.relp_protocol_error();
                    responses.push((frame.txnr, "500 session not open".into()));
                    next = Next::End;
                }
                Command::Close => {
                    responses.push((frame.txnr, String::new()));
                    next = Next::End;
                }
                Command::Other(ref name) => {
                    tracing::debug!(peer = %self.peer, command = %name, "relp command not supported");
                    responses.push((frame.txnr, format!("500 command `{name}` not supported")));
                }
            }
            if next == Next::End {
                break;
            }
        }
        if !frames.is_empty() && !self.store(frames, received_at, context).await {
            // Not acknowledged: the client resends after it reconnects.
            return Next::End;
        }
        for (txnr, response) in &responses {
            write_response(&mut self.out, *txnr, response);
        }
        next
    }

    /// Appends, queues and waits for durability. False when the batch must not be acknowledged.
    async fn store(
        &self,
        frames: Vec<RawFrame>,
        received_at: Timestamp,
        context: &ListenerContext,
    ) -> bool {
        let Ok(stored) =
            append_and_queue(frames, Source::Relp, self.peer, received_at, context).await
        else {
            return false;
        };
        match context.wal.wal.wait_durable(stored.end).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(peer = %self.peer, %error, "relp batch not durable, not acknowledged");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut RelpDecoder, bytes: &[u8]) -> Result<Vec<RelpFrame>, RelpError> {
        let mut buffer = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buffer)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn decodes_the_commands_omrelp_sends() {
        let stream = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n\
2 syslog 19 <13>Jan  1 host a b\n3 close 0\n";
        let frames = decode_all(&mut RelpDecoder::new(1024), stream).expect("valid");
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].command, Command::Open);
        assert!(open_response(&frames[0].data).starts_with("200 OK\n"));
        assert_eq!(frames[1].txnr, 2);
        assert_eq!(frames[1].command, Command::Syslog);
        assert_eq!(&frames[1].data[..], b"<13>Jan  1 host a b");
        assert_eq!(frames[2].command, Command::Close);
        assert!(frames[2].data.is_empty());
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let stream = b"7 syslog 5 hello\n8 syslog 3 abc\n9 close 0\n";
        let whole = decode_all(&mut RelpDecoder::new(1024), stream).expect("valid");
        for split in 0..stream.len() {
            let mut decoder = RelpDecoder::new(1024);
            let mut buffer = BytesMut::from(&stream[..split]);
            let mut frames = Vec::new();
            while let Some(frame) = decoder.decode(&mut buffer).expect("valid") {
                frames.push(frame);
            }
            buffer.extend_from_slice(&stream[split..]);
            while let Some(frame) = decoder.decode(&mut buffer).expect("valid") {
                frames.push(frame);
            }
            assert_eq!(frames, whole, "split at {split}");
        }
    }

    #[test]
    fn oversized_data_is_truncated_and_the_stream_stays_in_sync() {
        let stream = b"1 syslog 10 0123456789\n2 syslog 2 ok\n";
        for split in 0..stream.len() {
            let mut decoder = RelpDecoder::new(4);
            let mut buffer = BytesMut::from(&stream[..split]);
            let mut frames = Vec::new();
            while let Some(frame) = decoder.decode(&mut buffer).expect("valid") {
                frames.push(frame);
            }
            buffer.extend_from_slice(&stream[split..]);
            while let Some(frame) = decoder.decode(&mut buffer).expect("valid") {
                frames.push(frame);
            }
            assert_eq!(frames.len(), 2, "split at {split}");
            assert_eq!(&frames[0].data[..], b"0123");
            assert!(frames[0].truncated);
            assert_eq!(&frames[1].data[..], b"ok");
            assert!(!frames[1].truncated);
        }
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for bad in [
            &b"x syslog 1 a\n"[..],
            b"1 sys1og 1 a\n",
            b"1 syslog x a\n",
            b"1 syslog 1 ab\n",
            b"1234567890 syslog 1 a\n",
            b"1 syslog 1234567890 a\n",
            b"1  syslog 1 a\n",
            b"1 syslog 0 x\n",
        ] {
            let result = decode_all(&mut RelpDecoder::new(1024), bad);
            assert!(
                result.is_err(),
                "{:?} gave {result:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn open_without_syslog_is_refused() {
        assert!(open_response(b"relp_version=0\ncommands=foo").starts_with("500"));
        assert!(open_response(b"relp_version=0\ncommands=foo,syslog").starts_with("200 OK\n"));
    }

    #[test]
    fn responses_have_the_wire_format() {
        let mut out = Vec::new();
        write_response(&mut out, 5, "200 OK");
        write_response(&mut out, 6, "");
        assert_eq!(out, b"5 rsp 6 200 OK\n6 rsp 0\n");
    }
}
