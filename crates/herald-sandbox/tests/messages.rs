mod common;

use common::*;
use herald_sandbox::SandboxOptions;
use serde_json::{Value, json};

fn bearer() -> String {
    format!("Bearer {KEY_8X8}")
}

#[tokio::test]
async fn eight_by_eight_deduplicates_a_client_message_id_and_answers_as_the_first_time() {
    let (_, address) = start(SandboxOptions::default()).await;
    let body = json!({"destination": "+6591234567", "text": "Your code is 1234", "source": "ACME",
                      "clientMessageId": "lead-42"});
    let first = send_sms(address, &body).await.json();
    let second = send_sms(address, &body).await;
    assert_eq!(second.status, 200);
    let second = second.json();
    assert_eq!(second["umid"], first["umid"]);
    assert_eq!(second["status"]["code"], "QUEUED");
    assert_eq!(second["clientMessageId"], "lead-42");

    // The same id inside a batch is the same message too; a new id in the batch is a new one.
    let batch = json!({"includeMessagesInResponse": true, "messages": [
        {"destination": "+6591234567", "text": "Your code is 1234", "clientMessageId": "lead-42"},
        {"destination": "+6591234568", "text": "Hi", "clientMessageId": "lead-43"}]});
    let reply = post_json(address, &format!("{SMS_PATH}/batch"), &[("authorization", &bearer())], &batch)
        .await
        .json();
    assert_eq!(reply["messages"][0]["umid"], first["umid"]);
    assert_ne!(reply["messages"][1]["umid"], first["umid"]);

    let messages = get_json(address, "/_sandbox/messages?host=sms.8x8.com").await;
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["id"], first["umid"]);
    assert_eq!(messages[0]["submissions"], 3);
    assert_eq!(messages[0]["provider"], "8x8-sms");
    assert_eq!(messages[0]["client_message_id"], "lead-42");
    assert_eq!(messages[0]["destination"], "+6591234567");
    assert_eq!(messages[0]["source"], "ACME");
    assert_eq!(messages[0]["text"], "Your code is 1234");
    assert!(chrono::DateTime::parse_from_rfc3339(messages[0]["accepted_at"].as_str().unwrap()).is_ok());
    assert_eq!(messages[1]["submissions"], 1);
}

#[tokio::test]
async fn deduplication_is_per_subaccount_and_product() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let sms = json!({"destination": "+6591234567", "text": "Hi", "clientMessageId": "same"});
    let a = send_sms(address, &sms).await.json();
    let other_subaccount = post_json(
        address,
        "/sms.8x8.com/api/v1/subaccounts/acme-02/messages",
        &[("authorization", &bearer())],
        &sms,
    )
    .await
    .json();
    assert_ne!(a["umid"], other_subaccount["umid"]);
    let chat = json!({"user": {"msisdn": "+6591234567"}, "type": "text", "content": {"text": "Hi"},
                      "clientMessageId": "same"});
    let chat_path = "/chatapps.8x8.com/api/v1/subaccounts/acme-01/messages";
    let c1 = post_json(address, chat_path, &[("authorization", &bearer())], &chat).await.json();
    let c2 = post_json(address, chat_path, &[("authorization", &bearer())], &chat).await.json();
    assert_ne!(c1["umid"], a["umid"], "Chat Apps is another product");
    assert_eq!(c1["umid"], c2["umid"]);
    assert_eq!(c2["status"]["state"], "queued");
    let messages = sandbox.messages();
    assert_eq!(messages.len(), 3);
    let chat_message = messages.iter().find(|m| m.provider == "8x8-chatapps").unwrap();
    assert_eq!((chat_message.submissions, chat_message.text.as_deref()), (2, Some("Hi")));
    assert_eq!(chat_message.host, "chatapps.8x8.com");
    // Messages without a clientMessageId are never merged.
    let plain = json!({"destination": "+6591234567", "text": "Hi"});
    let x = send_sms(address, &plain).await.json();
    let y = send_sms(address, &plain).await.json();
    assert_ne!(x["umid"], y["umid"]);
    assert_eq!(sandbox.messages().len(), 5);
}

#[tokio::test]
async fn rejected_and_refused_messages_are_not_registered() {
    let (sandbox, address) = start(SandboxOptions::default()).await;
    let rejected = send_sms(address, &json!({"destination": "+9991234567", "text": "Hi"})).await.json();
    assert_eq!(rejected["status"]["code"], "REJECTED");
    assert_eq!(send_sms(address, &json!({"destination": "12", "text": "Hi"})).await.status, 400);
    assert!(sandbox.messages().is_empty());
}

fn kixie_event(message: &str) -> Value {
    json!({"businessid": "sandbox-business", "apikey": "sandbox-apikey", "target": "+14155550100",
           "eventname": "sms", "message": message, "email": "agent@acme.test"})
}

#[tokio::test]
async fn kixie_and_twilio_never_deduplicate() {
    let (_, address) = start(SandboxOptions::default()).await;
    let a = post_json(address, "/apig.kixie.com/app/event", &[], &kixie_event("Hi")).await.json();
    let b = post_json(address, "/apig.kixie.com/app/event", &[], &kixie_event("Hi")).await.json();
    assert_eq!((a["success"].clone(), b["success"].clone()), (json!(true), json!(true)));
    assert_ne!(a["data"]["messageid"], b["data"]["messageid"]);
    let fields = [("To", "+14155550100"), ("From", "+14155550001"), ("Body", "Hi")];
    let s1 = twilio_send(address, &fields).await.json();
    let s2 = twilio_send(address, &fields).await.json();
    assert_ne!(s1["sid"], s2["sid"]);

    let kixie = get_json(address, "/_sandbox/messages?host=apig.kixie.com").await;
    assert_eq!(kixie.as_array().unwrap().len(), 2, "a resend is a second message");
    assert_eq!(kixie[0]["id"], a["data"]["messageid"]);
    assert_eq!(kixie[0]["destination"], "+14155550100");
    assert_eq!(kixie[0]["text"], "Hi");
    assert_eq!(kixie[0]["submissions"], 1);
    let twilio = get_json(address, "/_sandbox/messages?host=api.twilio.com").await;
    assert_eq!(twilio.as_array().unwrap().len(), 2);
    assert_eq!(twilio[1]["id"], s2["sid"]);
    assert_eq!(twilio[1]["source"], "+14155550001");

    let reply = request(address, "DELETE", "/_sandbox/messages", &[], b"").await.unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(get_json(address, "/_sandbox/messages").await, json!([]));
}

#[tokio::test]
async fn a_template_batch_sends_to_each_destination_and_answers_counts_only_unless_asked() {
    let (_, address) = start(SandboxOptions::default()).await;
    let path = "/sms.us.8x8.com/api/v1/subaccounts/acme-01/messages/batch";
    let template = json!({"source": "Acme", "text": "Sale today", "encoding": "AUTO"});
    let batch =
        json!({"destinations": ["+14152000000", "+14152000001", "not a number"], "template": template});
    let reply = post_json(address, path, &[("authorization", &bearer())], &batch).await.json();
    assert_eq!((reply["acceptedCount"].as_u64(), reply["rejectedCount"].as_u64()), (Some(2), Some(1)));
    assert!(reply.get("messages").is_none(), "{reply}");
    let messages = get_json(address, "/_sandbox/messages?host=sms.us.8x8.com").await;
    let sent: Vec<(&str, &str, &str)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (m["destination"].as_str().unwrap(), m["source"].as_str().unwrap(), m["text"].as_str().unwrap())
        })
        .collect();
    assert_eq!(sent, [("+14152000000", "Acme", "Sale today"), ("+14152000001", "Acme", "Sale today")]);

    // Asked for, each message has its entry, the refused one included.
    let batch = json!({"destinations": ["+14152000002", "+999123456789", "x"], "template": template,
                       "includeMessagesInResponse": true});
    let reply = post_json(address, path, &[("authorization", &bearer())], &batch).await.json();
    let codes: Vec<&str> =
        reply["messages"].as_array().unwrap().iter().map(|m| m["status"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["QUEUED", "REJECTED", "REJECTED"]);
    assert_eq!(reply["messages"][0]["destination"], "+14152000002");
    assert_eq!(reply["messages"][0]["encoding"], "GSM7");
    assert_eq!(reply["acceptedCount"], 1);
}

#[tokio::test]
async fn requests_after_a_sequence_are_only_the_newer_ones() {
    let (_, address) = start(SandboxOptions::default()).await;
    for n in 0..3 {
        let sms = json!({"destination": format!("+659123456{n}"), "text": "Hi"});
        assert_eq!(send_sms(address, &sms).await.status, 200);
    }
    let sequences = |list: Value| -> Vec<u64> {
        list.as_array().unwrap().iter().map(|r| r["sequence"].as_u64().unwrap()).collect()
    };
    assert_eq!(sequences(get_json(address, "/_sandbox/requests").await), [1, 2, 3]);
    assert_eq!(sequences(get_json(address, "/_sandbox/requests?after=1").await), [2, 3]);
    assert_eq!(sequences(get_json(address, "/_sandbox/requests?host=sms.8x8.com&after=2").await), [3]);
    assert!(sequences(get_json(address, "/_sandbox/requests?after=3").await).is_empty());
    assert!(sequences(get_json(address, "/_sandbox/requests?after=99").await).is_empty());
    assert!(sequences(get_json(address, "/_sandbox/requests?host=apig.kixie.com&after=0").await).is_empty());
}
