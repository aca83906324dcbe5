//! Stage 8 of a callout: the request on the wire (pooled connections, bounded request and answer),
//! alone or in a batch with others queued on the same credential (see `coalesce`).

use super::judge::{Sent, judge_exchange};
use super::secrets::Secrets;
use super::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, fault};
use crate::Engine;
use chrono::Utc;
use herald_flow::{CalloutResult, PreparedCallout};
use herald_openapi::{BodyEncoding, Method};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The body as it goes on the wire.
fn encode_body(body: &Value, encoding: BodyEncoding) -> (Vec<u8>, &'static str) {
    match (encoding, body) {
        (BodyEncoding::Form, Value::Object(fields)) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                match value {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            form.append_pair(name, &form_text(item));
                        }
                    }
                    other => {
                        form.append_pair(name, &form_text(other));
                    }
                }
            }
            (form.finish().into_bytes(), "application/x-www-form-urlencoded")
        }
        (BodyEncoding::Text, Value::String(text)) => (text.clone().into_bytes(), "text/plain; charset=utf-8"),
        _ => (serde_json::to_vec(body).unwrap_or_default(), "application/json"),
    }
}

fn form_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Sends one prepared request and judges the answer by the provider's rules. A single 8x8 SMS
    /// may share a batch request with others queued on the same credential (see `coalesce`).
    pub(crate) async fn send(
        &self,
        prepared: &PreparedCallout,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        secrets: &Secrets,
    ) -> Sent {
        let unsent = |result: CalloutResult| Sent { result, retry_after: None, maybe_arrived: false };
        if let Some((name, _)) =
            headers.iter().find(|(_, value)| reqwest::header::HeaderValue::from_str(value).is_err())
        {
            return unsent(fault(format!(
                "{}: the header `{name}` has a value that cannot be sent in HTTP",
                prepared.action
            )));
        }
        let body = prepared.body.as_ref().map(|body| encode_body(body, prepared.body_encoding));
        if let Some((bytes, _)) = &body
            && bytes.len() > MAX_REQUEST_BYTES
        {
            return unsent(fault(format!(
                "{}: the request body is {} bytes, more than the {MAX_REQUEST_BYTES} a callout may send",
                prepared.action,
                bytes.len()
            )));
        }
        let exchange = match (self.coalescing(prepared), &prepared.body, body) {
            (Some(batching), Some(message), Some((bytes, _))) => {
                let provider = prepared.provider.label();
                self.send_coalesced(batching, provider, url, headers, message, bytes).await
            }
            (_, _, body) => {
                let method = match prepared.method {
                    Method::Get => reqwest::Method::GET,
                    Method::Post => reqwest::Method::POST,
                    Method::Put => reqwest::Method::PUT,
                    Method::Patch => reqwest::Method::PATCH,
                    Method::Delete => reqwest::Method::DELETE,
                };
                exchange(&self.inner.http, method, url, &headers, body).await
            }
        };
        judge_exchange(prepared, exchange, secrets)
    }
}

/// What came back for one request, before the provider's rules judge it.
#[derive(Clone, Debug)]
pub(crate) enum Exchange {
    Answered {
        status: u16,
        body: Vec<u8>,
        truncated: bool,
        retry_after: Option<Duration>,
        micros: u64,
    },
    /// No complete answer. `what` says why ("timed out: ..."); unless the connection was refused, the
    /// request may have arrived.
    Lost {
        what: String,
        maybe_arrived: bool,
        micros: u64,
    },
}

/// Sends one request on the pooled client and reads its answer (at most [`MAX_RESPONSE_BYTES`]).
pub(crate) async fn exchange(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    headers: &[(String, String)],
    body: Option<(Vec<u8>, &'static str)>,
) -> Exchange {
    let mut request = http.request(method, url);
    for (name, value) in headers {
        // Headers may carry credentials: sensitive values are kept out of debug output.
        if let Ok(mut value) = reqwest::header::HeaderValue::from_str(value) {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
    }
    if let Some((bytes, content_type)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            // A refused connection carried nothing; anything later may have delivered the request.
            let maybe_arrived = !error.is_connect();
            return Exchange::Lost {
                what: format!("{}: {}", transport_failure(&error), error.without_url()),
                maybe_arrived,
                micros: started.elapsed().as_micros() as u64,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| herald_providers::parse_retry_after(v, Utc::now()));
    let (body, truncated, complete) = read_limited(response).await;
    let micros = started.elapsed().as_micros() as u64;
    if !complete {
        return Exchange::Lost {
            what: format!("failed: the connection broke while the answer (HTTP {status}) was being read"),
            maybe_arrived: true,
            micros,
        };
    }
    Exchange::Answered { status, body, truncated, retry_after, micros }
}

/// How a request failed before any answer, in words for a fault message.
pub(crate) fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed before an answer"
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; says whether more was sent and whether the answer came whole.
pub(crate) async fn read_limited(mut response: reqwest::Response) -> (Vec<u8>, bool, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true, true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, false, true),
            Err(_) => return (body, false, false),
        }
    }
}
