//! A raw HTTP/1.1 client for byte-exact requests: paths that `url`/reqwest would normalise
//! (`/a/../b`, `%2F`), duplicate headers, names with `_`.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// Send the request line and `headers`, plus `Host` and `Connection: close` (merged into a
/// caller's own `Connection` header), and read the whole response.
pub async fn request(port: u16, request_line: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut text = format!("{request_line}\r\nHost: 127.0.0.1:{port}\r\n");
    let mut has_connection = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") && !has_connection {
            has_connection = true;
            text.push_str(&format!("{name}: {value}, close\r\n"));
        } else {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !has_connection {
        text.push_str("Connection: close\r\n");
    }
    text.push_str("\r\n");
    send_bytes(port, text.as_bytes()).await
}

/// `GET <target>` with extra headers.
pub async fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    request(port, &format!("GET {target} HTTP/1.1"), headers).await
}

/// Write `bytes` to 127.0.0.1:`port` and read one response: up to `Content-Length`, the last
/// chunk, or the end of the connection.
pub async fn send_bytes(port: u16, bytes: &[u8]) -> RawResponse {
    let head_only = bytes.starts_with(b"HEAD ");
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.write_all(bytes).await.expect("write request");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if is_complete(&buf, head_only) {
                break;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("raw request timed out");
    parse(&buf)
}

/// Whether `buf` holds a whole response (as far as its framing tells).
fn is_complete(buf: &[u8], head_only: bool) -> bool {
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let body = &buf[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return true;
    }
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => false,
    }
}

fn parse(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete HTTP response head (connection closed?): {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let raw_body = &buf[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}
