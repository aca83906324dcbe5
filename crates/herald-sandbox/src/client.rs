//! The HTTP/1.1 POST the emulated providers use for their webhooks.
//!
//! Hand-written on a plain TCP stream rather than reqwest: reqwest (built here with
//! `rustls-no-provider`) panics when a client is built before a TLS crypto provider is installed, and the
//! sandbox must run in any process, tests included. Webhooks from the sandbox go to herald on loopback
//! over `http://`; an `https://` target is reported as a delivery error, never a panic.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Enough for any status line; a longer first line is not HTTP.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Posts `body` to `url` and returns the status code of the answer.
pub(crate) async fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    match tokio::time::timeout(timeout, post_inner(url, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The address to connect to and the request target, for an `http://` URL.
pub(crate) fn split_url(url: &str) -> Result<(String, String, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            "the sandbox posts webhooks over http:// only; use an http:// URL".to_string()
        } else {
            format!("not an http:// URL: {url}")
        });
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("no usable host in {url}"));
    }
    let tail = tail.split('#').next().unwrap_or("");
    let target = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
    if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the URL holds blanks or control characters: {url}"));
    }
    let has_port = !authority.ends_with(']')
        && authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let address = if has_port { authority.to_string() } else { format!("{authority}:80") };
    Ok((address, authority.to_string(), target))
}

async fn post_inner(url: &str, headers: &[(String, String)], body: &[u8]) -> Result<u16, String> {
    let (address, host, target) = split_url(url)?;
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        // Header values come from the control API, which refuses line breaks; checked again so that a
        // bad value can never split the request.
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(format!("refused header {name:?}: it holds a line break"));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(&address).await.map_err(|e| format!("connect {address}: {e}"))?;
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    stream.write_all(body).await.map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&answer[..end]);
        }
        if answer.len() > MAX_STATUS_LINE {
            return Err("the answer's first line is too long to be HTTP".into());
        }
        let read = stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            return Err("connection closed before an HTTP status line".into());
        }
        answer.extend_from_slice(&chunk[..read]);
    }
}

fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!("not an HTTP status line: {line:?}"));
    }
    code.parse().map_err(|_| format!("not an HTTP status line: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_into_address_host_and_target() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/hooks/sms?token=a#frag").unwrap(),
            ("127.0.0.1:8080".into(), "127.0.0.1:8080".into(), "/hooks/sms?token=a".into())
        );
        assert_eq!(
            split_url("http://example.test?x=1").unwrap(),
            ("example.test:80".into(), "example.test".into(), "/?x=1".into())
        );
        assert_eq!(split_url("http://[::1]").unwrap().0, "[::1]:80");
        assert_eq!(split_url("http://[::1]:9/").unwrap().0, "[::1]:9");
        assert!(split_url("https://secure.test/").unwrap_err().contains("http:// only"));
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://user@host/").is_err());
        assert!(split_url("http:///path").is_err());
        assert!(split_url("http://h/a b").is_err());
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content"), Ok(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 500"), Ok(500));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"HTTP/1.1 2x0 OK").is_err());
    }

    #[tokio::test]
    async fn reports_a_refused_connection_as_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error =
            post(&format!("http://{address}/"), &[], b"{}", Duration::from_secs(2)).await.unwrap_err();
        assert!(error.starts_with("connect"), "{error}");
    }
}
