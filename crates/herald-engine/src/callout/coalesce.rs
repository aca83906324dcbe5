//! Batch coalescing: single sends queued on one credential share one batch request, for providers
//! whose connector takes batches (8x8 SMS; see `herald_providers::Batching`).
//!
//! Each lane (one URL with one set of headers, so one API key) lets a few requests be in flight at
//! once. A send that finds a free place goes out alone at once: at low load nothing waits and nothing
//! changes on the wire. A send that finds the lane busy queues; when a request of the lane comes back,
//! everything queued meanwhile leaves as one batch request (up to the connector's `max_batch`
//! messages). The connector splits the batch's answer into one answer per message, in the shape of a
//! single send's answer, which goes back to its own run, so the ledger, the flow's outputs and the
//! fault path see what they would have seen for a single send.
//!
//! Every message keeps its idempotency key, so a batch resent after a lost answer is deduplicated by
//! the provider message by message, as single sends are. The lanes are I/O and live here; what a
//! batch looks like is the connector's.

use crate::Engine;
use crate::callout::{Exchange, exchange};
use herald_flow::PreparedCallout;
use herald_openapi::BodyEncoding;
use herald_providers::{BatchSplit, Batching};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Requests of one lane in flight at once; sends beyond wait and go out together.
const IN_FLIGHT_PER_LANE: usize = 2;

/// No `Debug`: the headers hold the credential.
#[derive(Clone)]
struct LaneKey {
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    batching: &'static dyn Batching,
    /// Who answers, for messages ("8x8 SMS").
    provider: &'static str,
}

impl PartialEq for LaneKey {
    fn eq(&self, other: &LaneKey) -> bool {
        self.url == other.url && self.headers == other.headers
    }
}

impl Eq for LaneKey {}

impl std::hash::Hash for LaneKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.url.hash(state);
        self.headers.hash(state);
    }
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
    /// How this send may share a batch, if it may: a JSON send its provider's connector can batch,
    /// on a credential that has not turned batching off.
    pub(crate) fn coalescing(&self, prepared: &PreparedCallout) -> Option<&'static dyn Batching> {
        let batching = prepared.provider.connector().batching()?;
        let coalescible = prepared.body_encoding == BodyEncoding::Json
            && prepared
                .body
                .as_ref()
                .is_some_and(|body| batching.coalescible(prepared.method.as_str(), &prepared.path, body))
            && self
                .project()
                .project
                .named_credentials
                .get(&prepared.named_credential)
                .is_none_or(|named| named.def.batch_sends.unwrap_or(true));
        coalescible.then_some(batching)
    }

    /// Sends `message` (`body` is its encoding) alone if its lane has room, else with the others
    /// queued behind the lane's requests in flight. Returns the exchange as a single send would have
    /// had it.
    pub(crate) async fn send_coalesced(
        &self,
        batching: &'static dyn Batching,
        provider: &'static str,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        message: &Value,
        body: Vec<u8>,
    ) -> Exchange {
        let key = LaneKey { url, headers, batching, provider };
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
                let take = lane.waiting.len().min(key.batching.max_batch());
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
            let answered = send_batch(&self.inner.http, &key, messages.clone()).await;
            match split_batch_answer(&key, &answered, &messages) {
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
    let (path, body) = key.batching.batch_request(key.url.path(), messages);
    let mut url = key.url.clone();
    url.set_path(&path);
    let body = serde_json::to_vec(&body).unwrap_or_default();
    exchange(http, reqwest::Method::POST, url, &key.headers, Some((body, "application/json"))).await
}

/// How a batch's answer goes back to its messages.
#[derive(Debug)]
enum Split {
    /// Each message's own exchange, shaped as a single send's.
    PerMessage(Vec<Exchange>),
    /// The same answer for all: a lost request, a rate limit, a server error, a refused key.
    Shared,
    /// Refused as a whole for its content: send each message alone.
    Alone,
}

fn split_batch_answer(key: &LaneKey, answered: &Exchange, messages: &[Value]) -> Split {
    let Exchange::Answered { status, body, retry_after, micros, .. } = answered else { return Split::Shared };
    match key.batching.split_answer(*status, body, messages) {
        BatchSplit::Shared => Split::Shared,
        BatchSplit::Alone => Split::Alone,
        BatchSplit::PerMessage(answers) => Split::PerMessage(
            answers
                .into_iter()
                .map(|answer| match answer {
                    Some(body) => Exchange::Answered {
                        status: *status,
                        body,
                        truncated: false,
                        retry_after: *retry_after,
                        micros: *micros,
                    },
                    // Accepted as a batch, but its answer does not say what became of this message:
                    // maybe sent (the provider deduplicates a resend by its key).
                    None => Exchange::Lost {
                        what: format!(
                            "failed: {} accepted the batch this message was in, but its answer did not list the message",
                            key.provider
                        ),
                        maybe_arrived: true,
                        micros: *micros,
                    },
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lane() -> LaneKey {
        let provider = herald_providers::Provider::named("8x8-sms");
        LaneKey {
            url: reqwest::Url::parse("https://sms.8x8.com/api/v1/subaccounts/a/messages").unwrap(),
            headers: Vec::new(),
            batching: provider.connector().batching().unwrap(),
            provider: provider.label(),
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

    #[test]
    fn a_message_the_batch_answer_leaves_out_may_have_been_sent() {
        let messages = [json!({"clientMessageId": "a"}), json!({"clientMessageId": "b"})];
        let answer = answered(200, json!({"messages": [{"umid": "1", "clientMessageId": "a"}]}));
        let Split::PerMessage(exchanges) = split_batch_answer(&lane(), &answer, &messages) else {
            panic!("not split")
        };
        assert!(matches!(&exchanges[0], Exchange::Answered { status: 200, micros: 7, .. }));
        let Exchange::Lost { what, maybe_arrived, .. } = &exchanges[1] else { panic!("{:?}", exchanges[1]) };
        assert!(*maybe_arrived);
        assert!(what.contains("8x8 SMS accepted the batch"), "{what}");
    }

    #[test]
    fn a_lost_batch_request_is_everyones_answer() {
        let lost = Exchange::Lost { what: "timed out".into(), maybe_arrived: true, micros: 1 };
        assert!(matches!(split_batch_answer(&lane(), &lost, &[json!({})]), Split::Shared));
        let refused = answered(400, json!({"code": 1000}));
        assert!(matches!(split_batch_answer(&lane(), &refused, &[json!({})]), Split::Alone));
    }
}
