//! What happened lately, for the console's home page: speed to lead as percentiles, and how many
//! records, runs and messages were created, over the last hour minute by minute and the last day
//! hour by hour.
//!
//! Speed to lead is measured per record, from the record's creation to the provider's answer
//! accepting the first message its runs sent (the `answer` entry of the ledger row's history). A
//! record whose first message was refused, failed or is still unanswered gives no sample: it shows
//! among the failed runs and messages instead. Every figure is computed from the store, so every node
//! of a shared database shows the same page.

use crate::{Engine, EngineError};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use herald_store::{Bucket, Created, CreatedCount, LeadMessage};
use std::collections::{BTreeMap, HashSet};

/// At most this many ledger rows are read for the day's speed to lead; beyond it the percentiles are
/// those of the newest leads ([`Activity::sampled`] says so).
pub const SPEED_SAMPLE_LIMIT: i64 = 50_000;

/// Ledger statuses that mean the provider took the message.
const ACCEPTED: [&str; 4] = ["queued", "sent", "delivered", "read"];

/// Ledger statuses that mean the message did not go out.
const NOT_SENT: [&str; 3] = ["failed", "rejected", "undelivered"];

/// The last hour and the last day.
#[derive(Clone, Debug)]
pub struct Activity {
    /// 60 minutes, oldest first, the last one being the current minute.
    pub hour: Vec<Slot>,
    /// 24 hours, oldest first, the last one being the current hour.
    pub day: Vec<Slot>,
    /// Speed to lead over the whole hour and the whole day.
    pub hour_speed: Option<Speed>,
    pub day_speed: Option<Speed>,
    /// Whether the day had more ledger rows than [`SPEED_SAMPLE_LIMIT`], so that its speed to lead
    /// comes from the newest leads only.
    pub sampled: bool,
}

/// One minute or hour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slot {
    /// Its first instant.
    pub start: DateTime<Utc>,
    pub speed: Option<Speed>,
    /// Records created, by object.
    pub records: BTreeMap<String, i64>,
    /// Runs created, by their status now.
    pub runs: BTreeMap<String, i64>,
    /// Ledger rows created, by their status now.
    pub messages: BTreeMap<String, i64>,
}

/// Speed to lead over a slot's records, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub leads: usize,
}

impl Slot {
    pub fn records_total(&self) -> i64 {
        self.records.values().sum()
    }

    pub fn runs_total(&self) -> i64 {
        self.runs.values().sum()
    }

    pub fn messages_total(&self) -> i64 {
        self.messages.values().sum()
    }

    /// Runs created in this slot that failed.
    pub fn runs_failed(&self) -> i64 {
        self.runs.get("failed").copied().unwrap_or(0)
    }

    /// Runs created in this slot whose outcome is unknown: a person must look.
    pub fn runs_unknown(&self) -> i64 {
        self.runs.get("unknown").copied().unwrap_or(0)
    }

    /// Messages created in this slot that the provider refused or could not deliver.
    pub fn messages_not_sent(&self) -> i64 {
        NOT_SENT.iter().filter_map(|status| self.messages.get(*status)).sum()
    }
}

/// The slots of a whole period added up (their speed is not: percentiles do not add).
pub fn totals(slots: &[Slot]) -> Slot {
    let mut total =
        Slot { start: slots.first().map(|slot| slot.start).unwrap_or_default(), ..Slot::default() };
    for slot in slots {
        for (into, from) in [
            (&mut total.records, &slot.records),
            (&mut total.runs, &slot.runs),
            (&mut total.messages, &slot.messages),
        ] {
            for (key, count) in from {
                *into.entry(key.clone()).or_default() += count;
            }
        }
    }
    total
}

impl Engine {
    /// The last hour and day as of `now`.
    pub async fn activity(&self, now: DateTime<Utc>) -> Result<Activity, EngineError> {
        let store = &self.inner.store;
        let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
        let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let hour_start = minute - Duration::minutes(59);
        let day_start = hour - Duration::hours(23);
        let text = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Micros, true);

        let mut counts = Vec::new();
        for table in [Created::Records, Created::Runs, Created::Messages] {
            let per_minute = store.created_per_bucket(table, Bucket::Minute, &text(hour_start)).await?;
            let per_hour = store.created_per_bucket(table, Bucket::Hour, &text(day_start)).await?;
            counts.push((table, per_minute, per_hour));
        }
        let until = text(now + Duration::seconds(1));
        let messages = store.lead_messages(&text(day_start), &until, SPEED_SAMPLE_LIMIT).await?;
        let sampled = messages.len() as i64 >= SPEED_SAMPLE_LIMIT;
        let samples = speed_samples(&messages);

        let mut hour_slots = slots(hour_start, Duration::minutes(1), 60);
        let mut day_slots = slots(day_start, Duration::hours(1), 24);
        for (table, per_minute, per_hour) in &counts {
            add_counts(&mut hour_slots, Bucket::Minute, *table, per_minute);
            add_counts(&mut day_slots, Bucket::Hour, *table, per_hour);
        }
        add_speed(&mut hour_slots, Duration::minutes(1), &samples);
        add_speed(&mut day_slots, Duration::hours(1), &samples);
        let within = |from: DateTime<Utc>| -> Vec<f64> {
            samples.iter().filter(|(at, _)| *at >= from).map(|(_, ms)| *ms).collect()
        };
        Ok(Activity {
            hour: hour_slots,
            day: day_slots,
            hour_speed: speed(&mut within(hour_start)),
            day_speed: speed(&mut within(day_start)),
            sampled,
        })
    }
}

fn slots(start: DateTime<Utc>, width: Duration, count: i32) -> Vec<Slot> {
    (0..count).map(|index| Slot { start: start + width * index, ..Slot::default() }).collect()
}

fn add_counts(slots: &mut [Slot], bucket: Bucket, table: Created, counts: &[CreatedCount]) {
    let width = bucket.prefix_len();
    for count in counts {
        let Some(slot) = slots.iter_mut().find(|slot| {
            slot.start.to_rfc3339_opts(SecondsFormat::Micros, true).get(..width)
                == Some(count.bucket.as_str())
        }) else {
            continue;
        };
        let into = match table {
            Created::Records => &mut slot.records,
            Created::Runs => &mut slot.runs,
            Created::Messages => &mut slot.messages,
        };
        *into.entry(count.key.clone()).or_default() += count.count;
    }
}

/// Each record's speed to lead: (the record's creation, milliseconds to the answer accepting its first
/// message). `messages` come newest record first, each record's rows oldest first.
fn speed_samples(messages: &[LeadMessage]) -> Vec<(DateTime<Utc>, f64)> {
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for message in messages {
        if !seen.insert(message.record_id.as_str()) {
            continue;
        }
        let Ok(created) = DateTime::parse_from_rfc3339(&message.record_created_at) else { continue };
        let Some(answered) = accepted_at(message) else { continue };
        let millis =
            (answered - created.with_timezone(&Utc)).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
        samples.push((created.with_timezone(&Utc), millis.max(0.0)));
    }
    samples
}

/// When the provider's answer accepted the message: the first history entry that did.
fn accepted_at(message: &LeadMessage) -> Option<DateTime<Utc>> {
    let entries = message.history.as_array()?;
    let accepting = |entry: &&serde_json::Value| {
        entry["status"].as_str().is_some_and(|status| ACCEPTED.contains(&status))
    };
    // The synchronous answer, else (a receipt overtook it) whichever entry accepted it first.
    let entry = entries
        .iter()
        .filter(accepting)
        .find(|entry| entry["source"] == "answer")
        .or_else(|| entries.iter().find(accepting))?;
    DateTime::parse_from_rfc3339(entry["at"].as_str()?).ok().map(|at| at.with_timezone(&Utc))
}

fn add_speed(slots: &mut [Slot], width: Duration, samples: &[(DateTime<Utc>, f64)]) {
    for slot in slots {
        let end = slot.start + width;
        let mut millis: Vec<f64> =
            samples.iter().filter(|(at, _)| *at >= slot.start && *at < end).map(|(_, ms)| *ms).collect();
        slot.speed = speed(&mut millis);
    }
}

/// The nearest-rank p50 and p99 of `millis`; `None` without a sample.
pub fn speed(millis: &mut [f64]) -> Option<Speed> {
    if millis.is_empty() {
        return None;
    }
    millis.sort_by(f64::total_cmp);
    let rank = |p: f64| millis[((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1];
    Some(Speed { p50_ms: rank(0.50), p99_ms: rank(0.99), leads: millis.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lead(record: &str, created: &str, history: serde_json::Value) -> LeadMessage {
        LeadMessage {
            record_id: record.into(),
            record_created_at: created.into(),
            message_created_at: created.into(),
            status: "sent".into(),
            history,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_and_need_a_sample() {
        let mut hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(speed(&mut hundred), Some(Speed { p50_ms: 50.0, p99_ms: 99.0, leads: 100 }));
        assert_eq!(speed(&mut [7.0]), Some(Speed { p50_ms: 7.0, p99_ms: 7.0, leads: 1 }));
        assert_eq!(speed(&mut []), None);
    }

    #[test]
    fn speed_to_lead_runs_from_the_records_creation_to_the_answer_accepting_its_first_message() {
        let messages = [
            lead(
                "00Q1",
                "2026-12-03T15:00:00.000000Z",
                json!([
                    {"status": "pending", "at": "2026-12-03T15:00:00.100000Z", "source": "herald"},
                    {"status": "sent", "at": "2026-12-03T15:00:00.350000Z", "source": "answer"},
                    {"status": "delivered", "at": "2026-12-03T15:00:02.000000Z", "source": "receipt"}
                ]),
            ),
            // The same record's later message (a follow-up) is not its speed to lead.
            lead(
                "00Q1",
                "2026-12-03T15:00:00.000000Z",
                json!([{"status": "sent", "at": "2026-12-03T16:00:00.000000Z", "source": "answer"}]),
            ),
            // Refused: no sample.
            lead(
                "00Q2",
                "2026-12-03T15:00:01.000000Z",
                json!([{"status": "rejected", "at": "2026-12-03T15:00:01.200000Z", "source": "answer"}]),
            ),
            // A receipt overtook the answer.
            lead(
                "00Q3",
                "2026-12-03T15:00:02.000000Z",
                json!([{"status": "delivered", "at": "2026-12-03T15:00:02.040000Z", "source": "receipt"}]),
            ),
        ];
        let samples: Vec<f64> = speed_samples(&messages).into_iter().map(|(_, ms)| ms).collect();
        assert_eq!(samples, [350.0, 40.0]);
    }

    #[test]
    fn counts_land_in_the_slot_their_period_names_and_totals_add_them() {
        let start = DateTime::parse_from_rfc3339("2026-12-03T15:00:00Z").unwrap().with_timezone(&Utc);
        let mut hour = slots(start, Duration::minutes(1), 60);
        let counts = [
            CreatedCount { bucket: "2026-12-03T15:04".into(), key: "failed".into(), count: 2 },
            CreatedCount { bucket: "2026-12-03T15:04".into(), key: "finished".into(), count: 5 },
            CreatedCount { bucket: "2026-12-03T14:59".into(), key: "finished".into(), count: 9 },
        ];
        add_counts(&mut hour, Bucket::Minute, Created::Runs, &counts);
        assert_eq!((hour[4].runs_total(), hour[4].runs_failed()), (7, 2));
        assert_eq!(totals(&hour).runs_total(), 7, "a period outside the slots is left out");
    }
}
