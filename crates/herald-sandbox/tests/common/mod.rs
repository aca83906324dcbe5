//! A running sandbox, a raw HTTP client (so that a cut connection shows as what it is), and a webhook
//! receiver that answers from a script.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use herald_sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const KEY_8X8: &str = "sandbox-8x8-key";
pub const SMS_PATH: &str = "/sms.8x8.com/api/v1/subaccounts/acme-01/messages";

pub async fn start(options: SandboxOptions) -> (Sandbox, SocketAddr) {
    let sandbox = Sandbox::new(options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(sandbox.clone().serve(listener));
    (sandbox, address)
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole answer is read and checked against its
/// Content-Length, so a cut body is an `Err`.
pub async fn request(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(|e| format!("read: {e}"))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no complete head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(length) = headers.get("content-length") {
        let length: usize = length.parse().map_err(|_| "bad content-length")?;
        if body.len() < length {
            return Err(format!("connection closed after {} of {length} body bytes", body.len()));
        }
    } else if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    }
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").ok_or("cut chunk size")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        let data = raw.get(end + 2..end + 2 + size).ok_or("cut chunk")?;
        out.extend_from_slice(data);
        raw = raw.get(end + 4 + size..).ok_or("cut chunk")?;
    }
}

pub async fn get_json(address: SocketAddr, target: &str) -> Value {
    let reply = request(address, "GET", target, &[], b"").await.unwrap();
    assert_eq!(reply.status, 200, "{target}: {}", reply.body);
    reply.json()
}

pub async fn put_json(address: SocketAddr, target: &str, body: &Value) -> Reply {
    request(address, "PUT", target, &[("content-type", "application/json")], body.to_string().as_bytes())
        .await
        .unwrap()
}

pub async fn post_json(address: SocketAddr, target: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(address, "POST", target, &all, body.to_string().as_bytes()).await.unwrap()
}

pub async fn send_sms(address: SocketAddr, body: &Value) -> Reply {
    post_json(address, SMS_PATH, &[("authorization", &format!("Bearer {KEY_8X8}"))], body).await
}

pub fn basic(sid: &str, token: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}")))
}

/// Posts a form to Twilio's Messages.json of the default account.
pub async fn twilio_send(address: SocketAddr, fields: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let sid = herald_providers::twilio::emulator::DEFAULT_ACCOUNT_SID;
    let auth = basic(sid, herald_providers::twilio::emulator::DEFAULT_AUTH_TOKEN);
    request(
        address,
        "POST",
        &format!("/api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"),
        &[("content-type", "application/x-www-form-urlencoded"), ("authorization", &auth)],
        body.as_bytes(),
    )
    .await
    .unwrap()
}

/// Polls until `check` holds, or fails the test after `within`.
pub async fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One webhook the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer, in order; 200 once they run out.
    pub script: Arc<Mutex<VecDeque<u16>>>,
    pub address: Option<SocketAddr>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        let mut receiver = Receiver::default();
        receiver.script.lock().unwrap().extend(script);
        let app = Router::new().fallback(receive).with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        receiver.address = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address.unwrap())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub async fn wait_hits(&self, count: usize, within: Duration) -> Vec<Hit> {
        wait_for(within, &format!("{count} webhooks"), || {
            let hits = self.hits();
            (hits.len() >= count).then_some(hits)
        })
        .await
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.hits.lock().unwrap().push(Hit {
        path: uri.path().to_string(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let status = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}
