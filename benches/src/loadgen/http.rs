//! A minimal HTTP/1.1 client over `std::net::TcpStream`: keep-alive, `Content-Length` and chunked
//! response bodies, nothing else (no TLS, no redirects, no proxies). It only ever talks to the
//! appliance on loopback, so a full client crate would add compile time and nothing we use.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Response headers larger than this are refused (the appliance sends a handful).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Response bodies larger than this are refused (search with `limit=1` and stats are small).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One response, body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response is not JSON ({error}): {}", self.body_snippet()),
            )
        })
    }

    /// The start of the body, for error messages.
    pub fn body_snippet(&self) -> String {
        let end = self.body.len().min(300);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }
}

/// A keep-alive connection to one server; reconnects when the server closed it.
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    pub fn new(addr: SocketAddr, timeout: Duration) -> HttpClient {
        HttpClient {
            addr,
            timeout,
            connection: None,
        }
    }

    /// Opens the connection now (so connection setup is not timed with the first request).
    pub fn connect(&mut self) -> io::Result<()> {
        if self.connection.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            self.connection = Some(BufReader::with_capacity(64 * 1024, stream));
        }
        Ok(())
    }

    pub fn get(&mut self, path_and_query: &str) -> io::Result<Response> {
        self.request("GET", path_and_query, &[], &[])
    }

    pub fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.request("POST", path, headers, body)
    }

    /// Sends one request. A kept-alive connection the server has closed meanwhile is reopened
    /// once, but only when no byte of a response had arrived (so a request is never sent twice
    /// after the server answered it).
    fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let reused = self.connection.is_some();
        match self.try_request(method, target, headers, body) {
            Ok(response) => Ok(response),
            Err(RequestError::BeforeResponse(_)) if reused => {
                self.connection = None;
                self.try_request(method, target, headers, body)
                    .map_err(RequestError::into_io)
            }
            Err(error) => {
                self.connection = None;
                Err(error.into_io())
            }
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, RequestError> {
        self.connect().map_err(RequestError::BeforeResponse)?;
        let host = self.addr.to_string();
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| RequestError::BeforeResponse(io::ErrorKind::NotConnected.into()))?;

        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cairn-loadgen\r\nAccept: application/json\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if method != "GET" || !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = connection.get_mut();
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(RequestError::BeforeResponse)?;

        let mut status_line = String::new();
        match connection.read_line(&mut status_line) {
            Ok(0) => {
                return Err(RequestError::BeforeResponse(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                )));
            }
            Ok(_) => {}
            Err(error) => return Err(RequestError::BeforeResponse(error)),
        }
        let response = read_response(connection, &status_line).map_err(RequestError::During)?;
        let server_closes = response
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        if server_closes {
            self.connection = None;
        }
        Ok(response)
    }
}

enum RequestError {
    /// Failed before any byte of a response arrived: safe to retry on a fresh connection.
    BeforeResponse(io::Error),
    /// Failed while reading a response.
    During(io::Error),
}

impl RequestError {
    fn into_io(self) -> io::Error {
        match self {
            RequestError::BeforeResponse(error) | RequestError::During(error) => error,
        }
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn read_response(connection: &mut BufReader<TcpStream>, status_line: &str) -> io::Result<Response> {
    // `HTTP/1.1 200 OK`
    let status = status_line
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;

    let mut headers = Vec::new();
    let mut head_bytes = status_line.len();
    loop {
        let mut line = String::new();
        let read = connection.read_line(&mut line)?;
        if read == 0 {
            return Err(invalid("connection closed inside the response head"));
        }
        head_bytes += read;
        if head_bytes > MAX_HEAD_BYTES {
            return Err(invalid("response head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };

    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = read_chunked(connection)?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        if length > MAX_BODY_BYTES {
            return Err(invalid("response body too large"));
        }
        response.body = vec![0; length];
        connection.read_exact(&mut response.body)?;
    } else if status != 204 && status != 304 {
        // No length: the body runs to the end of the connection.
        connection
            .take(MAX_BODY_BYTES as u64)
            .read_to_end(&mut response.body)?;
        response
            .headers
            .push(("connection".to_owned(), "close".to_owned()));
    }
    Ok(response)
}

fn read_chunked(connection: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if connection.read_line(&mut size_line)? == 0 {
            return Err(invalid("connection closed inside a chunked body"));
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if connection.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("response body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        connection.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        connection.read_exact(&mut crlf)?;
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986 unreserved characters).
pub fn url_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn url_encode_escapes_reserved_characters() {
        assert_eq!(url_encode("lgabc"), "lgabc");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    /// A one-connection server that answers each request with the next canned response.
    fn serve(responses: Vec<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            for response in responses {
                let mut content_length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("read");
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        content_length = value.trim().parse().expect("length");
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; content_length];
                reader.read_exact(&mut body).expect("body");
                writer.write_all(response.as_bytes()).expect("write");
            }
        });
        addr
    }

    #[test]
    fn reads_content_length_and_chunked_bodies_on_one_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"total\":7}",
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
        ]);
        let mut client = HttpClient::new(addr, Duration::from_secs(5));
        let first = client.get("/api/v1/search?q=x").expect("first");
        assert_eq!(first.status, 200);
        assert_eq!(first.json().expect("json")["total"], 7);
        let second = client
            .post(
                "/api/v1/ingest",
                &[("Content-Type", "application/x-ndjson")],
                b"{}\n",
            )
            .expect("second");
        assert_eq!(second.status, 429);
        assert_eq!(second.header("Retry-After"), Some("2"));
        assert_eq!(second.body, b"{\"a\":1}");
    }
}
