//! Batch coalescing: single 8x8 SMS sends queued on one credential share one batch request.
//!
//! Each lane (one subaccount URL with one set of headers, so one API key) lets a few requests be in
//! flight at once. A send that finds a free place goes out alone at once: at low load nothing waits
//! and nothing changes on the wire. A send that finds the lane busy queues; when a request of the lane
//! comes back, everything queued meanwhile leaves as one `POST .../messages/batch` (up to
//! [`BATCH_MAX`] messages). Each message's entry in the batch answer, which has the shape of a single
//! send's answer, goes back to its own run, so the ledger, the flow's outputs and the fault path see
//! what they would have seen for a single send. Never for Kixie, Twilio or Chat Apps.
//!
//! Every message keeps its `clientMessageId`, so a batch resent after a lost answer is deduplicated
//! by 8x8 message by message, as single sends are.

use crate::Engine;
use crate::callout::{Exchange, exchange};
use herald_flow::PreparedCallout;
use herald_openapi::{BodyEncoding, Method};
use herald_providers::Provider;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Requests of one lane in flight at once; sends beyond wait and go out together.
const IN_FLIGHT_PER_LANE: usize = 2;
/// Messages per batch request: far under 8x8's 10,000, and under the request size cap for any SMS.
pub(crate) const BATCH_MAX: usize = 500;

/// No `Debug`: the headers hold the credential.
#[derive(Clone, Hash, PartialEq, Eq)]
struct LaneKey {
    url: reqwest::Url,
    headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Lane {
    in_flight: usize,
    waiting: Vec<Waiting>,
}

struct Waiting {
    message: Value,
    answer: oneshot::Sender<Exchange>,
}

/// The lanes of the process.
#[derive(Default)]
pub(crate) struct Coalescer {
    lanes: Mutex<HashMap<LaneKey, Lane>>,
}

impl Engine {
    /// Whether this send may share a batch: a single 8x8 SMS (a JSON object with `destination`) to
    /// `.../messages`, on a credential that has not turned batching off.
    pub(crate) fn coalescible(&self, prepared: &PreparedCallout) -> bool {
        prepared.provider == Provider::EightByEightSms
            && prepared.method == Method::Post
            && prepared.body_encoding == BodyEncoding::Json
            && prepared.path.ends_with("/messages")
            && prepared.body.as_ref().is_some_and(|body| body.get("destination").is_some())
            && self
                .inner
                .project
                .project
                .named_credentials
                .get(&prepared.named_credential)
                .is_none_or(|named| named.def.batch_sends.unwrap_or(true))
    }

    /// Sends `message` (`body` is its encoding) alone if its lane has room, else with the others
    /// queued behind the lane's requests in flight. Returns the exchange as a single send would have
    /// had it.
    pub(crate) async fn send_coalesced(
        &self,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        message: &Value,
        body: Vec<u8>,
    ) -> Exchange {
        let key = LaneKey { url, headers };
        let queued = {
            let mut lanes = self.inner.coalescer.lanes.lock().unwrap_or_else(|e| e.into_inner());
            let lane = lanes.entry(key.clone()).or_default();
            if lane.in_flight < IN_FLIGHT_PER_LANE {
                lane.in_flight += 1;
                None
            } else {
                let (answer, answered) = oneshot::channel();
                lane.waiting.push(Waiting { message: message.clone(), answer });
                Some(answered)
            }
        };
        if let Some(answered) = queued {
            return answered.await.unwrap_or_else(|_| Exchange::Lost {
                what: "failed: the batch this message joined was dropped".into(),
                maybe_arrived: true,
                micros: 0,
            });
        }
        // Whoever queued meanwhile goes next, from a task of its own, so this run goes on at once;
        // also if this send is abandoned half-way (a debug run whose client went away), or the
        // lane would keep a place that no one gives back.
        let _handover = Handover { engine: self.clone(), key: Some(key.clone()) };
        send_single(&self.inner.http, &key, body).await
    }

    /// Sends what waits in a lane, batch after batch, then gives the lane's place back.
    async fn drain_lane(&self, key: LaneKey) {
        loop {
            let batch: Vec<Waiting> = {
                let mut lanes = self.inner.coalescer.lanes.lock().unwrap_or_else(|e| e.into_inner());
                let Some(lane) = lanes.get_mut(&key) else { return };
                if lane.waiting.is_empty() {
                    lane.in_flight -= 1;
                    if lane.in_flight == 0 {
                        lanes.remove(&key);
                    }
                    return;
                }
                let take = lane.waiting.len().min(BATCH_MAX);
                lane.waiting.drain(..take).collect()
            };
            if let [one] = batch.as_slice() {
                let single = send_single(&self.inner.http, &key, encode(&one.message)).await;
                batch.into_iter().for_each(|waiting| {
                    let _ = waiting.answer.send(single.clone());
                });
                continue;
            }
            let messages: Vec<Value> = batch.iter().map(|waiting| waiting.message.clone()).collect();
            let answered = send_batch(&self.inner.http, &key, messages).await;
            match split_batch_answer(&answered, &batch) {
                Split::PerMessage(exchanges) => {
                    for (waiting, exchange) in batch.into_iter().zip(exchanges) {
                        let _ = waiting.answer.send(exchange);
                    }
                }
                Split::Shared => {
                    for waiting in batch {
                        let _ = waiting.answer.send(answered.clone());
                    }
                }
                Split::Alone => {
                    // The batch as a whole was refused (one bad message can do that): each message
                    // goes alone, so that only the bad one fails.
                    for waiting in batch {
                        let single = send_single(&self.inner.http, &key, encode(&waiting.message)).await;
                        let _ = waiting.answer.send(single);
                    }
                }
            }
        }
    }
}

/// Hands a lane's place over to [`Engine::drain_lane`] when the send that held it ends, however it
/// ends.
struct Handover {
    engine: Engine,
    key: Option<LaneKey>,
}

impl Drop for Handover {
    fn drop(&mut self) {
        let (Some(key), Ok(runtime)) = (self.key.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let engine = self.engine.clone();
        runtime.spawn(async move { engine.drain_lane(key).await });
    }
}

fn encode(message: &Value) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

async fn send_single(http: &reqwest::Client, key: &LaneKey, body: Vec<u8>) -> Exchange {
    exchange(http, reqwest::Method::POST, key.url.clone(), &key.headers, Some((body, "application/json")))
        .await
}

async fn send_batch(http: &reqwest::Client, key: &LaneKey, messages: Vec<Value>) -> Exchange {
    let mut url = key.url.clone();
    url.set_path(&format!("{}/batch", url.path()));
    let body = json!({"messages": messages, "includeMessagesInResponse": true});
    let body = serde_json::to_vec(&body).unwrap_or_default();
    exchange(http, reqwest::Method::POST, url, &key.headers, Some((body, "application/json"))).await
}

/// How a batch's answer goes back to its messages.
#[derive(Debug)]
enum Split {
    /// Each message's own entry, shaped as a single send's answer.
    PerMessage(Vec<Exchange>),
    /// The same answer for all: a lost request, a rate limit, a server error, a refused key.
    Shared,
    /// Refused as a whole for its content: send each message alone.
    Alone,
}

fn split_batch_answer(answered: &Exchange, batch: &[Waiting]) -> Split {
    let Exchange::Answered { status, body, retry_after, micros, .. } = answered else { return Split::Shared };
    match status {
        200..=299 => {}
        400 | 404 | 413 | 422 => return Split::Alone,
        _ => return Split::Shared,
    }
    let entries = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| body.get("messages").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    // By clientMessageId, which herald sets on every message; by position when one is missing.
    let by_client_id: HashMap<&str, &Value> =
        entries.iter().filter_map(|entry| Some((entry.get("clientMessageId")?.as_str()?, entry))).collect();
    let mut exchanges = Vec::with_capacity(batch.len());
    for (position, waiting) in batch.iter().enumerate() {
        let client_id = waiting.message.get("clientMessageId").and_then(Value::as_str);
        let entry = client_id
            .and_then(|id| by_client_id.get(id).copied())
            .or_else(|| (entries.len() == batch.len()).then(|| &entries[position]));
        exchanges.push(match entry {
            Some(entry) => Exchange::Answered {
                status: *status,
                body: serde_json::to_vec(entry).unwrap_or_default(),
                truncated: false,
                retry_after: *retry_after,
                micros: *micros,
            },
            // Accepted as a batch, but its answer does not say what became of this message: treat
            // it as maybe sent (8x8 deduplicates a resend by clientMessageId).
            None => Exchange::Lost {
                what: "failed: 8x8 accepted the batch this message was in, but its answer did not list the message"
                    .into(),
                maybe_arrived: true,
                micros: *micros,
            },
        });
    }
    Split::PerMessage(exchanges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(client_id: &str) -> Waiting {
        let (answer, _) = oneshot::channel();
        Waiting {
            message: json!({"destination": "+6591234567", "text": "hi", "clientMessageId": client_id}),
            answer,
        }
    }

    fn answered(status: u16, body: Value) -> Exchange {
        Exchange::Answered {
            status,
            body: serde_json::to_vec(&body).unwrap(),
            truncated: false,
            retry_after: None,
            micros: 7,
        }
    }

    fn body_of(exchange: &Exchange) -> Value {
        match exchange {
            Exchange::Answered { body, .. } => serde_json::from_slice(body).unwrap(),
            Exchange::Lost { what, .. } => json!({"lost": what}),
        }
    }

    #[test]
    fn each_message_gets_its_own_entry_by_client_id_whatever_the_order() {
        let batch = [waiting("a"), waiting("b")];
        let answer = answered(
            200,
            json!({"batchId": "x", "acceptedCount": 1, "rejectedCount": 1, "messages": [
                {"umid": "2", "clientMessageId": "b", "status": {"code": "REJECTED", "description": "Invalid MSISDN"}},
                {"umid": "1", "clientMessageId": "a", "status": {"code": "QUEUED", "description": "ok"}},
            ]}),
        );
        let Split::PerMessage(exchanges) = split_batch_answer(&answer, &batch) else { panic!("not split") };
        assert_eq!(body_of(&exchanges[0])["umid"], "1");
        assert_eq!(body_of(&exchanges[1])["status"]["code"], "REJECTED");
    }

    #[test]
    fn a_message_missing_from_the_answer_is_maybe_sent() {
        let batch = [waiting("a"), waiting("b")];
        let answer = answered(200, json!({"messages": [{"umid": "1", "clientMessageId": "a"}]}));
        let Split::PerMessage(exchanges) = split_batch_answer(&answer, &batch) else { panic!("not split") };
        assert!(matches!(exchanges[1], Exchange::Lost { maybe_arrived: true, .. }), "{:?}", exchanges[1]);
    }

    #[test]
    fn a_refused_batch_goes_alone_and_a_busy_one_is_shared() {
        let batch = [waiting("a"), waiting("b")];
        assert!(matches!(split_batch_answer(&answered(400, json!({"code": 1000})), &batch), Split::Alone));
        assert!(matches!(split_batch_answer(&answered(429, json!({"code": 429})), &batch), Split::Shared));
        assert!(matches!(split_batch_answer(&answered(503, json!({})), &batch), Split::Shared));
        let lost = Exchange::Lost { what: "timed out".into(), maybe_arrived: true, micros: 1 };
        assert!(matches!(split_batch_answer(&lost, &batch), Split::Shared));
    }
}
