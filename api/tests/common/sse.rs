//! A streaming HTTP/1.1 client for server-sent events: reads the status and headers as soon as
//! they arrive, then decodes the chunked body incrementally into SSE events. Also used to read
//! only the status of a response that never ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (empty for the default `message`).
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// What [`SseClient::next_event`] found.
#[derive(Debug)]
pub enum Next {
    Event(SseEvent),
    /// The server ended the response.
    End,
    /// Nothing within the wait.
    Timeout,
}

/// An open response.
#[derive(Debug)]
pub struct SseClient {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Decoded body bytes not consumed yet.
    body: Vec<u8>,
    chunked: bool,
    ended: bool,
}

impl SseClient {
    /// Sends `GET path` (or `method`) with `headers` and reads the response head.
    pub fn open(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line `{status_line}`"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let chunked = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
        });
        SseClient {
            reader,
            status,
            headers,
            body: Vec::new(),
            chunked,
            ended: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Reads more of the body into `self.body`; false at the end of the response.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        if !self.chunked {
            let mut buffer = [0u8; 8192];
            let read = self.reader.read(&mut buffer)?;
            self.body.extend_from_slice(&buffer[..read]);
            self.ended = read == 0;
            return Ok(read > 0);
        }
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line)? == 0 {
            self.ended = true;
            return Ok(false);
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size `{size_line}`")))?;
        if size == 0 {
            self.ended = true;
            return Ok(false);
        }
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk)?;
        self.body.extend_from_slice(&chunk[..size]);
        Ok(true)
    }

    /// The next event (comments are skipped), the end of the stream, or a timeout after `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.body.windows(2).position(|window| window == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let mut event = SseEvent::default();
                let mut data_lines = Vec::new();
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix("data:") {
                        data_lines.push(value.strip_prefix(' ').unwrap_or(value).to_string());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event.event = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_string());
                    }
                }
                if data_lines.is_empty() && event.event.is_empty() {
                    continue; // a comment (keep-alive)
                }
                event.data = data_lines.join("\n");
                return Next::Event(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Timeout;
            }
            let _ = self
                .reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Next::End,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Timeout;
                }
                Err(_) => return Next::End,
            }
        }
    }
}
