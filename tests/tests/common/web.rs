//! A small blocking HTTP/1.1 client over loopback TCP, for the tests'
//! own servers (the dashboard, ChromeDriver): one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: the status code, the headers (names lowercased) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `METHOD url` with `headers` and a body (JSON when given).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("an http:// url: {url}"));
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write the request");
    // Read the head, then the body by its length (ChromeDriver keeps the
    // connection open whatever the request asks), by its chunks, or to the end.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = s.read(&mut buf).expect("read the answer");
        assert!(n > 0, "the connection closed before the end of the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let mut rest = raw[head_end + 4..].to_vec();
    let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    loop {
        let done = match length {
            Some(n) => rest.len() >= n,
            None if chunked => rest.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).expect("read the answer");
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&rest).into_owned();
    let body = if chunked { unchunk(&text) } else { text };
    Answer { status, headers, body }
}

/// A chunked body, put back together.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or_default();
    }
    out
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    request("GET", url, headers, None)
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    request("POST", url, headers, Some(body))
}
