//! A scenario is a small description: which project to serve, which secrets to set, what a lead looks
//! like, and where in the provider request the lead's phone shows up (so receipts match leads).

use crate::BenchError;
use serde_json::{Value, json};

/// One secret parameter of an external credential, set with `herald credential set` before serving.
#[derive(Clone, Copy, Debug)]
pub struct Secret {
    pub external_credential: &'static str,
    pub principal: &'static str,
    pub parameter: &'static str,
    /// The value the sandbox accepts by default (a test value, never a real key).
    pub value: &'static str,
}

/// What one benchmark scenario drives and measures.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    /// The project folder, relative to the repository root.
    pub project: &'static str,
    pub secrets: &'static [Secret],
    /// The object whose records are posted (`POST /api/v1/records/{object}`).
    pub object: &'static str,
    /// The provider host the sandbox records the send under (`GET /_sandbox/requests?host=`).
    pub provider_host: &'static str,
    pub provider_path: &'static str,
    /// A JSON pointer to the recipient's phone number in the provider request body.
    /// Where the destination phones sit in a provider request body, `*` for every array item. 8x8
    /// sends may arrive single or coalesced into a batch.
    pub phone_pointers: &'static [&'static str],
    /// Provider messages expected per lead.
    pub messages_per_lead: u32,
    /// A bulk campaign: one record (the `object`) launches a flow that texts every Lead linked to it,
    /// so the bulk phase (seed the Leads, launch, count what arrives) replaces the per-lead phases.
    pub bulk: bool,
    /// Whether `bench/peers/node-red/flows.json` implements this scenario.
    pub node_red: bool,
    /// `Some(reason)` while the scenario is planned but not built: running it is an error.
    pub not_available: Option<&'static str>,
}

const KIXIE_SECRETS: &[Secret] = &[
    Secret {
        external_credential: "Kixie_API_Auth",
        principal: "Kixie_Principal",
        parameter: "businessid",
        value: "sandbox-business",
    },
    Secret {
        external_credential: "Kixie_API_Auth",
        principal: "Kixie_Principal",
        parameter: "apikey",
        value: "sandbox-apikey",
    },
];

const EIGHT_BY_EIGHT_SECRETS: &[Secret] = &[Secret {
    external_credential: "X8x8_CPaaS_Authentication",
    principal: "X8x8_API_Key_Principal",
    parameter: "Authorization",
    value: "Bearer sandbox-8x8-key",
}];

/// Every scenario the harness knows, available or planned.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "kixie",
        summary: "one Kixie text (POST /app/event) per new Lead, examples/kixie-welcome-sms",
        project: "examples/kixie-welcome-sms",
        secrets: KIXIE_SECRETS,
        object: "Lead",
        provider_host: "apig.kixie.com",
        provider_path: "/app/event",
        phone_pointers: &["/target"],
        messages_per_lead: 1,
        bulk: false,
        node_red: true,
        not_available: None,
    },
    Scenario {
        name: "8x8-sms",
        summary: "one 8x8 SMS (POST /api/v1/subaccounts/{id}/messages) per new Lead",
        project: "examples/8x8-sms",
        secrets: EIGHT_BY_EIGHT_SECRETS,
        object: "Lead",
        provider_host: "sms.8x8.com",
        provider_path: "/api/v1/subaccounts/{subAccountId}/messages",
        phone_pointers: &["/destination", "/messages/*/destination"],
        messages_per_lead: 1,
        bulk: false,
        node_red: false,
        not_available: None,
    },
    Scenario {
        name: "bulk-8x8",
        summary: "a bulk campaign: one flow sending to 100,000 recipients through 8x8's batch endpoint",
        project: "examples/8x8-bulk",
        secrets: EIGHT_BY_EIGHT_SECRETS,
        object: "Campaign",
        // The project's named credential is the North America host, https://sms.us.8x8.com.
        provider_host: "sms.us.8x8.com",
        provider_path: "/api/v1/subaccounts/{subAccountId}/messages/batch",
        // Send-Many-Sms carries the phones in `messages` (one SmsRequest each, as the example's flow
        // sends them) or, with a template, in `destinations`.
        phone_pointers: &["/destinations/*", "/messages/*/destination"],
        messages_per_lead: 1,
        bulk: true,
        node_red: false,
        not_available: None,
    },
];

impl Scenario {
    /// The scenario called `name`, if it is available now.
    pub fn by_name(name: &str) -> Result<&'static Scenario, BenchError> {
        let scenario = SCENARIOS.iter().find(|s| s.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
            BenchError::UnknownScenario {
                name: name.to_string(),
                known: SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            }
        })?;
        scenario.available()
    }

    /// This scenario, unless it is planned but not built.
    fn available(&'static self) -> Result<&'static Scenario, BenchError> {
        match self.not_available {
            Some(reason) => Err(BenchError::ScenarioNotAvailable { name: self.name, reason }),
            None => Ok(self),
        }
    }

    /// The record posted for lead number `index` (unique phone per lead).
    pub fn lead_body(&self, index: u64) -> Value {
        json!({
            "FirstName": "Ada",
            "LastName": format!("Bench{index}"),
            "Company": "Bench Co",
            "LeadSource": "Web",
            "Phone": lead_phone(index),
        })
    }

    /// The digits of the phone numbers in a provider request body (the match keys).
    pub fn phones_in(&self, body: &Value) -> Vec<String> {
        let mut phones = Vec::new();
        for pointer in self.phone_pointers {
            collect_phones(body, pointer.trim_start_matches('/'), &mut phones);
        }
        phones
    }
}

fn collect_phones(value: &Value, pointer: &str, out: &mut Vec<String>) {
    let (head, rest) = match pointer.split_once('/') {
        Some((head, rest)) => (head, Some(rest)),
        None => (pointer, None),
    };
    let children: Vec<&Value> = if head == "*" {
        value.as_array().map(|a| a.iter().collect()).unwrap_or_default()
    } else {
        value.get(head).into_iter().collect()
    };
    for child in children {
        match rest {
            Some(rest) => collect_phones(child, rest, out),
            None => {
                if let Some(text) = child.as_str() {
                    out.push(phone_digits(text));
                }
            }
        }
    }
}

/// A valid-looking, unique US number per lead: +1 415 2XX XXXX onwards (exchanges 200-999 are valid).
pub fn lead_phone(index: u64) -> String {
    format!("+1415{:07}", 2_000_000 + index)
}

/// How many leads one run may number uniquely with `lead_phone`.
pub const MAX_LEADS_PER_RUN: u64 = 7_999_999;

/// The digits of a phone number: the key receipts are matched on, whatever formatting the sender used.
pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_available_and_a_planned_one_would_say_why_not() {
        assert_eq!(Scenario::by_name("kixie").unwrap().name, "kixie");
        assert_eq!(Scenario::by_name("8x8-sms").unwrap().provider_host, "sms.8x8.com");
        let bulk = Scenario::by_name("BULK-8x8").unwrap();
        assert!(bulk.bulk && !Scenario::by_name("kixie").unwrap().bulk);
        assert_eq!((bulk.object, bulk.provider_host), ("Campaign", "sms.us.8x8.com"));
        static PLANNED: Scenario =
            Scenario { name: "later", not_available: Some("not built"), ..SCENARIOS[0] };
        let error = PLANNED.available().unwrap_err();
        assert!(matches!(error, BenchError::ScenarioNotAvailable { .. }), "{error}");
        assert!(error.to_string().contains("not available yet: not built"), "{error}");
        let error = Scenario::by_name("twilio").unwrap_err();
        assert!(error.to_string().contains("kixie, 8x8-sms, bulk-8x8"), "{error}");
    }

    #[test]
    fn lead_phones_are_unique_and_match_the_provider_body() {
        let kixie = Scenario::by_name("kixie").unwrap();
        assert_eq!(lead_phone(0), "+14152000000");
        assert_eq!(lead_phone(MAX_LEADS_PER_RUN), "+14159999999");
        let lead = kixie.lead_body(42);
        assert_eq!(lead["Phone"], "+14152000042");
        let body = json!({"businessid": "b", "target": "+1 (415) 200-0042", "message": "Hi"});
        assert_eq!(kixie.phones_in(&body), vec!["14152000042"]);
        assert!(kixie.phones_in(&json!({"target": 5})).is_empty());
    }

    #[test]
    fn wildcard_pointers_collect_every_recipient() {
        let bulk = SCENARIOS.iter().find(|s| s.name == "bulk-8x8").unwrap();
        let body = json!({"messages": [{"destination": "+14152000001"}, {"destination": "+14152000002"}]});
        assert_eq!(bulk.phones_in(&body), vec!["14152000001", "14152000002"]);
        let single_or_batch = Scenario::by_name("8x8-sms").unwrap();
        assert_eq!(single_or_batch.phones_in(&body), vec!["14152000001", "14152000002"]);
        assert_eq!(single_or_batch.phones_in(&json!({"destination": "+14152000003"})), vec!["14152000003"]);
    }
}
