//! The console's Messages and Consent pages in process: the ledger and its filters (a phone typed as
//! people write it), paging past one page, a message's status history beside its receipts, opt-outs
//! with the inbound message that set them, the `read_runs` scope, escaping, and no secret on any of
//! these pages.

mod common;

use axum::http::StatusCode;
use common::{APIKEY, Api, BUSINESSID, PHONE, WRONG_APIKEY};
use herald_store::{MessageFilter, MessageRow, NewMessage, NewReceipt};
use serde_json::json;

const SCRIPT: &str = "<script>alert(1)</script>";

/// The one message of the ledger a lead's welcome text wrote.
async fn sent_message(api: &Api) -> (MessageRow, String) {
    let (_, runs) = api.lead(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": PHONE})).await;
    let filter = MessageFilter { run_id: Some(runs[0].clone()), limit: 10, ..MessageFilter::default() };
    let mut rows = api.engine.messages(&filter).await.unwrap();
    assert_eq!(rows.len(), 1, "one text per lead");
    (rows.remove(0), runs[0].clone())
}

/// A ledger row written straight to the store, at `at`.
fn message(id: &str, at_second: usize) -> (NewMessage, String) {
    let row = NewMessage {
        id: id.into(),
        run_id: None,
        element: None,
        idempotency_key: format!("key-{id}"),
        position: 0,
        provider: "kixie".into(),
        named_credential: "Kixie_Endpoint".into(),
        channel: "sms".into(),
        destination: "+14155550111".into(),
        sender: None,
        client_message_id: Some(format!("c-{id}")),
        encoding: Some("gsm7".into()),
        segments: Some(1),
        status: "sent".into(),
        history: json!([{"status": "pending", "at": "2026-01-01T00:00:00.000000Z", "source": "herald"}]),
    };
    (
        row,
        format!(
            "2026-01-01T{:02}:{:02}:{:02}.000000Z",
            at_second / 3600,
            at_second / 60 % 60,
            at_second % 60
        ),
    )
}

/// The ids of the messages a ledger page links to, in its order.
fn listed(page: &str) -> Vec<String> {
    page.split("href=\"/console/messages/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The `Older →` link of a page, unescaped as a browser follows it.
fn older_link(page: &str) -> Option<String> {
    let start = page.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    Some(page[start..].split('"').next().unwrap().replace("&amp;", "&"))
}

#[tokio::test]
async fn the_ledger_shows_a_sent_sms_and_a_phone_status_provider_or_channel_that_does_not_match_hides_it() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (row, run) = sent_message(&api).await;
    let ledger = api.page("/console/messages", Some(&session)).await;
    assert_eq!(ledger.status, StatusCode::OK);
    for shown in [
        format!("href=\"/console/messages/{}\"", row.id),
        PHONE.to_string(),
        "<td>kixie</td>".to_string(),
        "<td>sms</td>".to_string(),
        format!("class=\"status message-{}\"", row.status),
        format!("href=\"/console/runs/{run}\""),
    ] {
        assert!(ledger.text.contains(&shown), "{shown} in {}", ledger.text);
    }
    let matching = [
        "?phone=(415)+555-0100".to_string(),
        format!("?phone={}", PHONE.replace('+', "%2B")),
        format!("?status={}", row.status),
        "?provider=kixie&channel=sms".to_string(),
    ];
    for query in matching {
        let page = api.page(&format!("/console/messages{query}"), Some(&session)).await;
        assert_eq!(listed(&page.text), std::slice::from_ref(&row.id), "{query} shows it");
    }
    let typed = api.page("/console/messages?phone=(415)+555-0100", Some(&session)).await;
    assert!(typed.text.contains("Showing messages to +14155550100."), "{}", typed.text);
    for query in ["?phone=4155550199", "?status=failed", "?provider=twilio", "?channel=whatsapp"] {
        let page = api.page(&format!("/console/messages{query}"), Some(&session)).await;
        assert!(listed(&page.text).is_empty(), "{query} hides it: {}", page.text);
        assert!(page.text.contains("No messages match."), "{query}");
    }
}

#[tokio::test]
async fn the_ledger_pages_fifty_at_a_time_newest_first_through_every_message() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    api.engine
        .store()
        .write(|tx| {
            for n in 0..120 {
                let (row, at) = message(&format!("msg_{n:03}"), n);
                tx.upsert_message(&row, &at)?;
            }
            Ok::<_, herald_store::StoreError>(())
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut path = Some("/console/messages".to_string());
    let mut pages = 0;
    while let Some(next) = path {
        let page = api.page(&next, Some(&session)).await;
        let ids = listed(&page.text);
        assert!(ids.len() <= 50, "a page holds 50: {}", ids.len());
        seen.extend(ids);
        path = older_link(&page.text);
        pages += 1;
    }
    assert_eq!(pages, 3, "120 messages are three pages");
    let expected: Vec<String> = (0..120).rev().map(|n| format!("msg_{n:03}")).collect();
    assert_eq!(seen, expected, "every message once, newest first");
}

#[tokio::test]
async fn a_message_page_shows_its_status_history_in_order_with_the_receipt_each_came_from_and_ignored_ones_marked()
 {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (mut row, at) = message("msg_history", 1);
    row.history = json!([
        {"status": "pending", "at": "2026-01-01T00:00:01.000000Z", "source": "herald"},
        {"status": "sent", "at": "2026-01-01T00:00:02.000000Z", "source": "answer"},
        {"status": "delivered", "at": "2026-01-01T00:00:05.000000Z", "source": "receipt:Kixie_Events", "detail": "DELIVRD"},
        {"status": "sent", "at": "2026-01-01T00:00:07.000000Z", "source": "receipt:Kixie_Events", "ignored": "older than the current status"}
    ]);
    api.engine
        .store()
        .write(move |tx| {
            tx.upsert_message(&row, &at)?;
            for (status, at, applied) in [
                ("delivered", "2026-01-01T00:00:05.000000Z", true),
                ("sent", "2026-01-01T00:00:07.000000Z", false),
            ] {
                tx.insert_receipt(&NewReceipt {
                    webhook: "Kixie_Events",
                    provider: "kixie",
                    kind: "status",
                    message_id: Some("msg_history"),
                    provider_message_id: Some("pm-1"),
                    client_message_id: None,
                    status: Some(status),
                    applied,
                    body: "{}",
                    received_at: at,
                })?;
            }
            Ok::<_, herald_store::StoreError>(())
        })
        .await
        .unwrap();
    let page = api.page("/console/messages/msg_history", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = &page.text;
    let history = &text[text.find("Status history").unwrap()..text.find("<h2>Receipts").unwrap()];
    let order: Vec<usize> = [
        "message-pending\">pending",
        "the provider's answer",
        "message-delivered\">delivered",
        "DELIVRD",
        "Ignored: older than the current status",
    ]
    .iter()
    .map(|shown| history.find(shown).unwrap_or_else(|| panic!("{shown} in {history}")))
    .collect();
    assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "in the order they came: {order:?}");
    assert_eq!(history.matches("a receipt through webhook Kixie_Events").count(), 2);
    assert!(history.contains("href=\"#receipt-1\"") && history.contains("href=\"#receipt-2\""), "{history}");
    let receipts = &text[text.find("<h2>Receipts").unwrap()..];
    assert!(
        receipts.contains("id=\"receipt-1\"") && receipts.contains("no (a duplicate or an older status)")
    );
    for shown in ["GSM-7", "key-msg_history", "c-msg_history", "+14155550111"] {
        assert!(text.contains(shown), "{shown}");
    }
}

#[tokio::test]
async fn a_sent_message_page_links_its_run_and_a_kixie_receipt_for_it_shows_as_an_ignored_duplicate() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (row, run) = sent_message(&api).await;
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    let provider_id = row.provider_message_id.clone().expect("Kixie's answer names the message");
    let body = json!({"data": {"messageid": provider_id, "direction": "outgoing", "customernumber": PHONE,
        "businessnumber": "+14155550123", "message": "Hi Ada"}});
    let answer = api
        .send(
            axum::http::Method::POST,
            &format!("/webhooks/Kixie_Events?secret={}", secret.as_str()),
            common::Who::Anonymous,
            body.to_string(),
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.text);
    let page = api.page(&format!("/console/messages/{}", row.id), Some(&session)).await;
    assert!(page.text.contains(&format!("href=\"/console/runs/{run}\"")), "{}", page.text);
    assert!(page.text.contains("a receipt through webhook Kixie_Events"), "{}", page.text);
    assert!(page.text.contains("Ignored: duplicate"), "sent twice is a duplicate: {}", page.text);
    assert!(!page.text.contains(secret.as_str()), "the webhook secret is not shown");
}

#[tokio::test]
async fn a_stop_through_the_kixie_webhook_shows_in_consent_with_the_word_and_the_webhook_it_came_through() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let before = api.page("/console/consent", Some(&session)).await;
    assert!(before.text.contains("No number has opted out."));
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    let answer = api.kixie_inbound(&format!("?secret={}", secret.as_str()), "stop").await;
    assert!(answer.status.is_success(), "{}", answer.text);
    let page = api.page("/console/consent", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        format!("href=\"/console/messages?phone=%2B14155550100\">{PHONE}</a>"),
        "opted out".to_string(),
        "“STOP”".to_string(),
        "<code>Kixie_Events</code>".to_string(),
    ] {
        assert!(page.text.contains(&shown), "{shown} in {}", page.text);
    }
    assert!(!page.text.contains(secret.as_str()), "the webhook secret is not shown");
}

#[tokio::test]
async fn the_messages_and_consent_pages_need_read_runs_as_the_api_does() {
    let api = Api::new().await;
    let (row, _) = sent_message(&api).await;
    let pages =
        ["/console/messages".to_string(), format!("/console/messages/{}", row.id), "/console/consent".into()];
    let records_only = api.session("only_read_records").await;
    let runs_only = api.session("only_read_runs").await;
    for path in &pages {
        let refused = api.page(path, Some(&records_only)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.text.contains("lacks the API scope read_runs"), "{path}: {}", refused.text);
        assert!(!refused.text.contains(PHONE), "{path} shows nothing of the ledger");
        let allowed = api.page(path, Some(&runs_only)).await;
        assert_eq!(allowed.status, StatusCode::OK, "{path}");
        let csp = allowed.headers.get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
        assert!(csp.is_some_and(|csp| csp.starts_with("default-src 'self'")), "{path}: the console's CSP");
        assert!(
            !allowed.text.contains("<script") && !allowed.text.contains("style="),
            "{path}: no inline script or style"
        );
    }
    let missing = api.page("/console/messages/msg_nothing", Some(&runs_only)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = api.page("/console/messages", None).await;
    assert_eq!(anonymous.location(), "/console/login");
}

#[tokio::test]
async fn a_providers_error_full_of_markup_and_a_typed_phone_are_escaped_on_the_messages_pages() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (mut row, at) = message("msg_markup", 1);
    row.status = "failed".into();
    api.engine.store().write(move |tx| tx.upsert_message(&row, &at)).await.unwrap();
    let change = herald_store::MessageChange {
        error_text: Some(SCRIPT.into()),
        error_code: Some(SCRIPT.into()),
        ..Default::default()
    };
    api.engine.store().write(move |tx| tx.update_message("msg_markup", &change, "t1")).await.unwrap();
    let phone = urlencode(SCRIPT);
    for path in [
        "/console/messages".to_string(),
        "/console/messages/msg_markup".into(),
        format!("/console/messages?phone={phone}"),
    ] {
        let page = api.page(&path, Some(&session)).await;
        assert!(!page.text.contains(SCRIPT), "{path}: {}", page.text);
        assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path} shows it as text");
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn no_secret_set_through_the_credentials_route_appears_on_the_messages_or_consent_pages() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (row, _) = sent_message(&api).await;
    api.set_secret("apikey", WRONG_APIKEY).await;
    let (failed, _) = api.lead(json!({"LastName": "Byron", "Phone": PHONE})).await;
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    api.kixie_inbound(&format!("?secret={}", secret.as_str()), "STOP").await;
    let mut paths = vec![
        "/console/messages".to_string(),
        format!("/console/messages/{}", row.id),
        "/console/consent".into(),
    ];
    let all = api.engine.messages(&MessageFilter { limit: 100, ..MessageFilter::default() }).await.unwrap();
    paths.extend(all.iter().map(|message| format!("/console/messages/{}", message.id)));
    assert!(!failed.is_empty());
    for path in paths {
        let page = api.page(&path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret_value in [BUSINESSID, APIKEY, WRONG_APIKEY, secret.as_str(), session.as_str()] {
            assert!(!page.text.contains(secret_value), "{path} shows a secret");
        }
        for token in api.tokens.values() {
            assert!(!page.text.contains(token.as_str()), "{path} shows a token");
        }
    }
}
