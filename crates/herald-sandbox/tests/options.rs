mod common;

use common::*;
use herald_sandbox::SandboxOptions;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn options_load_from_a_json_file_with_defaults_for_the_rest() {
    let receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.json");
    let file = json!({
        "kixie": {"businessid": "biz-9", "apikey": "key-9"},
        "twilio": {"accounts": [["AC9", "tok-9"]], "landline_numbers": []},
        "kixie_line": {"business_number": "+14155550777"},
        "webhooks": {"apig.kixie.com": {"url": receiver.url("/k")}},
        "receipts": {"delay_ms": 0},
        "faults": {"api.twilio.com": {"rate_429": 1.0, "retry_after_seconds": 3}}
    });
    std::fs::write(&path, file.to_string()).unwrap();
    let options: SandboxOptions = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    options.validate().unwrap();
    let section = |key: &str| options.section(key).unwrap_or_else(|| panic!("no {key}")).clone();
    assert_eq!(section("eight_by_eight")["api_key"], "sandbox-8x8-key", "unset sections keep their defaults");
    assert_eq!(section("kixie_line")["userid"], "1001");
    assert_eq!(options.receipts.statuses, ["sent", "delivered"]);
    assert_eq!(options.faults["api.twilio.com"].hang_ms, 35_000);

    let (sandbox, address) = start(options).await;
    let event = json!({"businessid": "biz-9", "apikey": "key-9", "target": "+14155550100", "eventname": "sms",
                       "message": "Hi"});
    assert_eq!(post_json(address, "/apig.kixie.com/app/event", &[], &event).await.json()["success"], true);
    let hits = receiver.wait_hits(1, Duration::from_secs(5)).await;
    assert_eq!(hits[0].json()["data"]["businessnumber"], "+14155550777");
    let reply =
        twilio_send(address, &[("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi")]).await;
    assert_eq!((reply.status, reply.headers.get("retry-after").cloned()), (429, Some("3".to_string())));
    assert_eq!(sandbox.messages().len(), 1);
}

#[test]
fn options_refuse_typos_and_bad_values() {
    let typo = serde_json::from_value::<SandboxOptions>(json!({"recipts": {}}));
    assert!(typo.unwrap_err().to_string().contains("unknown field"));
    let nested = serde_json::from_value::<SandboxOptions>(json!({"faults": {"sms.8x8.com": {"error": 1}}}));
    assert!(nested.is_err());
    for bad in [
        json!({"faults": {"example.com": {}}}),
        json!({"faults": {"sms.8x8.com": {"reset_rate": 3}}}),
        json!({"webhooks": {"sms.8x8.com": {"url": "ftp://x"}}}),
        json!({"receipts": {"time_scale": -2}}),
    ] {
        let options: SandboxOptions = serde_json::from_value(bad.clone()).unwrap();
        assert!(options.validate().is_err(), "{bad}");
    }
    assert!(SandboxOptions::default().validate().is_ok());
}
