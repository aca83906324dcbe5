//! The console's Messages and Consent pages: the answer to "did the lead get the text, and if not,
//! why?" without reading JSON. The ledger is paged on the server by keyset (the last row of a page
//! starts the next), so a page costs an index read however long the ledger is; a message's page
//! puts its status history beside the receipts that moved it; the Consent page says which numbers
//! opted out, when, and by which inbound message. Everything here needs `read_runs`, as the API's
//! `/api/v1/messages`, `/receipts` and `/consent` routes do.

use super::pages::{self, Viewer, layout, url_segment};
use super::{Session, failure};
use crate::error::ApiError;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use herald_engine::Engine;
use herald_project::ApiScope;
use herald_providers::{MessageStatus, Provider};
use herald_store::{ConsentRow, MessageFilter, MessageRow, ReceiptRow};
use maud::{Markup, html};
use serde_json::Value;

/// Messages shown on one page of the ledger.
const MESSAGES_PER_PAGE: i64 = 50;

/// The channels a message can go out on.
const CHANNELS: [&str; 2] = ["sms", "whatsapp"];

pub(super) fn routes() -> Router<Engine> {
    Router::new()
        .route("/console/messages", get(list))
        .route("/console/messages/{id}", get(message))
        .route("/console/consent", get(consent))
}

#[derive(serde::Deserialize, Default)]
struct LedgerQuery {
    phone: Option<String>,
    status: Option<String>,
    provider: Option<String>,
    channel: Option<String>,
    /// The keyset of the page: the `created_at` and id of the last message of the page before.
    before: Option<String>,
    before_id: Option<String>,
}

/// What the phone box asked for: the number to match, and what to tell the user about it.
struct Phone {
    typed: String,
    matched: String,
    note: Option<String>,
}

/// A number as typed (`(415) 555-0100`) becomes the E.164 form the ledger keeps, with the
/// project's default country, as herald reads every number; one it cannot read is matched as typed.
fn phone_of(typed: &str, country: Option<&str>) -> Phone {
    let typed = typed.trim().to_string();
    match herald_sms::normalize_e164(&typed, country) {
        Ok(e164) if e164 != typed => {
            Phone { note: Some(format!("Showing messages to {e164}.")), matched: e164, typed }
        }
        Ok(e164) => Phone { matched: e164, typed, note: None },
        Err(error) => Phone {
            note: Some(format!("{typed} is not a phone number herald can read ({error}); matched as typed.")),
            matched: typed.clone(),
            typed,
        },
    }
}

fn given(value: Option<String>) -> Option<String> {
    value.map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

/// `GET /console/messages?phone=&status=&provider=&channel=&before=&before_id=`.
async fn list(
    State(engine): State<Engine>,
    session: Session,
    query: Result<Query<LedgerQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let country = engine.project().project.config.runtime.default_country.clone();
    let phone = given(query.phone).map(|typed| phone_of(&typed, country.as_deref()));
    let status = given(query.status);
    let provider = given(query.provider);
    let channel = given(query.channel);
    let before = given(query.before).zip(given(query.before_id));
    let filter = MessageFilter {
        destination: phone.as_ref().map(|phone| phone.matched.clone()),
        status: status.clone(),
        provider: provider.clone(),
        channel: channel.clone(),
        before: before.clone(),
        // One more than a page tells whether there is an older page.
        limit: MESSAGES_PER_PAGE + 1,
        ..MessageFilter::default()
    };
    let mut rows = match engine.messages(&filter).await {
        Ok(rows) => rows,
        Err(error) => return failure(ApiError::from(error)),
    };
    let more = rows.len() as i64 > MESSAGES_PER_PAGE;
    rows.truncate(MESSAGES_PER_PAGE as usize);
    let view = LedgerView {
        rows: &rows,
        phone: phone.as_ref(),
        status: status.as_deref(),
        provider: provider.as_deref(),
        channel: channel.as_deref(),
        paged: before.is_some(),
        more,
    };
    Html(ledger_page(&session.view(), &view).into_string()).into_response()
}

struct LedgerView<'a> {
    rows: &'a [MessageRow],
    phone: Option<&'a Phone>,
    status: Option<&'a str>,
    provider: Option<&'a str>,
    channel: Option<&'a str>,
    paged: bool,
    more: bool,
}

impl LedgerView<'_> {
    /// The same filter, from the start or after `last`.
    fn link(&self, last: Option<&MessageRow>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(phone) = self.phone {
            query.append_pair("phone", &phone.typed);
        }
        for (name, value) in [("status", self.status), ("provider", self.provider), ("channel", self.channel)]
        {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        if let Some(last) = last {
            query.append_pair("before", &last.created_at);
            query.append_pair("before_id", &last.id);
        }
        format!("/console/messages?{}", query.finish())
    }
}

/// The link to the ledger of one phone number.
pub(super) fn phone_link(phone: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("phone", phone);
    format!("/console/messages?{}", query.finish())
}

/// A message status as a coloured badge (see console.css, "Messages").
fn badge(status: &str) -> Markup {
    html! { span class=(format!("status message-{status}")) { (status) } }
}

fn ledger_page(viewer: &Viewer<'_>, view: &LedgerView<'_>) -> Markup {
    layout(
        Some(viewer),
        "Messages",
        html! {
            h1 { "Messages" }
            form.filter method="get" action="/console/messages" {
                label { "Phone "
                    input type="text" name="phone" inputmode="tel" placeholder="+1 415 555 0100"
                        value=(view.phone.map_or("", |phone| phone.typed.as_str()));
                }
                label { "Status "
                    select name="status" {
                        option value="" { "Any status" }
                        @for status in MessageStatus::all() {
                            option value=(status.as_str()) selected[view.status == Some(status.as_str())] { (status.as_str()) }
                        }
                    }
                }
                label { "Provider "
                    select name="provider" {
                        option value="" { "Any provider" }
                        @for provider in Provider::names() {
                            option value=(provider) selected[view.provider == Some(provider)] { (provider) }
                        }
                    }
                }
                label { "Channel "
                    select name="channel" {
                        option value="" { "Any channel" }
                        @for channel in CHANNELS {
                            option value=(channel) selected[view.channel == Some(channel)] { (channel) }
                        }
                    }
                }
                button type="submit" { "Filter" }
                a href="/console/messages" { "Clear" }
            }
            @if let Some(note) = view.phone.and_then(|phone| phone.note.as_deref()) {
                p.hint { (note) }
            }
            @if view.rows.is_empty() {
                p.empty { "No messages match." }
            } @else {
                div.scroll {
                    table.listing.messages {
                        thead { tr {
                            th { "Time" } th { "Destination" } th { "Provider" } th { "Channel" }
                            th { "Status" } th { "Segments" } th { "Run" } th { "Error" }
                        } }
                        tbody {
                            @for row in view.rows {
                                tr {
                                    td { a href=(format!("/console/messages/{}", url_segment(&row.id))) { (row.created_at) } }
                                    td { a href=(phone_link(&row.destination)) { (row.destination) } }
                                    td { (row.provider) }
                                    td { (row.channel) }
                                    td { (badge(&row.status)) }
                                    td { (row.segments.map(|n| n.to_string()).unwrap_or_default()) }
                                    td { @if let Some(run) = &row.run_id {
                                        a href=(format!("/console/runs/{}", url_segment(run))) { code { (run) } }
                                    } }
                                    td.fault { (error_of(row)) }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if view.paged { a href=(view.link(None)) { "← Newest" } }
                @if view.more { a rel="next" href=(view.link(view.rows.last())) { "Older →" } }
            }
        },
    )
}

/// A message's error as one line: its code and its text, whichever the provider gave.
fn error_of(row: &MessageRow) -> String {
    match (&row.error_code, &row.error_text) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(one), None) | (None, Some(one)) => one.clone(),
        (None, None) => String::new(),
    }
}

/// `GET /console/messages/{id}`: one message, its status history and the receipts behind it.
async fn message(State(engine): State<Engine>, session: Session, Path(id): Path<String>) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let row = match engine.message(&id).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            let page = pages::message_page(
                &session.view(),
                "Message not found",
                &format!("no message with id {id}"),
            );
            return (StatusCode::NOT_FOUND, Html(page.into_string())).into_response();
        }
        Err(error) => return failure(ApiError::from(error)),
    };
    let receipts = match engine.store().receipts_for_message(&row.id).await {
        Ok(receipts) => receipts,
        Err(error) => return failure(ApiError::from(herald_engine::EngineError::from(error))),
    };
    Html(message_page(&session.view(), &row, &receipts).into_string()).into_response()
}

/// How people name an encoding: GSM-7 fits 160 characters a segment, UCS-2 (any character outside
/// the GSM alphabet, an emoji) 70.
fn encoding_name(encoding: &str) -> &str {
    match encoding.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "gsm7" | "gsm" => "GSM-7",
        "ucs2" | "unicode" => "UCS-2",
        _ => encoding,
    }
}

/// The receipt a history entry came from: a receipt entry's source is `receipt:<webhook>`, and the
/// receipt was stored in the same write, with the same time and status.
fn receipt_of<'a>(entry: &Value, receipts: &'a [ReceiptRow]) -> Option<&'a ReceiptRow> {
    let webhook = entry["source"].as_str()?.strip_prefix("receipt:")?;
    receipts.iter().find(|receipt| {
        receipt.webhook == webhook
            && Some(receipt.received_at.as_str()) == entry["at"].as_str()
            && receipt.status.as_deref() == entry["status"].as_str()
    })
}

/// Where a history entry came from, as people say it.
fn source_name(source: &str) -> String {
    match source {
        "herald" => "herald (written before the request left)".into(),
        "answer" => "the provider's answer to the request".into(),
        other => match other.strip_prefix("receipt:") {
            Some(webhook) => format!("a receipt through webhook {webhook}"),
            None => other.into(),
        },
    }
}

fn message_page(viewer: &Viewer<'_>, row: &MessageRow, receipts: &[ReceiptRow]) -> Markup {
    let history = row.history.as_array().cloned().unwrap_or_default();
    let price = row.price.as_ref().map(|price| format!("{price} {}", row.currency.as_deref().unwrap_or("")));
    layout(
        Some(viewer),
        &format!("Message {}", row.id),
        html! {
            h1 { "Message " code { (row.id) } }
            dl.run {
                dt { "Status" } dd { (badge(&row.status)) }
                dt { "Destination" } dd { a href=(phone_link(&row.destination)) { (row.destination) } }
                dt { "Sender" } dd { (row.sender.as_deref().unwrap_or("the provider's default")) }
                dt { "Provider" } dd { (row.provider) " through " code { (row.named_credential) } }
                dt { "Provider's message id" } dd { code { (row.provider_message_id.as_deref().unwrap_or("none yet")) } }
                @if let Some(client) = &row.client_message_id { dt { "Herald's message id" } dd { code { (client) } } }
                dt { "Channel" } dd { (row.channel) }
                dt { "Encoding" } dd { (row.encoding.as_deref().map(encoding_name).unwrap_or("not known")) }
                dt { "Segments" } dd { (row.segments.map(|n| n.to_string()).unwrap_or_else(|| "not known".into())) }
                dt { "Price" } dd { (price.unwrap_or_else(|| "not reported".into())) }
                dt { "Idempotency key" } dd { code { (row.idempotency_key) } }
                dt { "Attempts" } dd { (row.attempts) }
                dt { "Run" } dd {
                    @if let Some(run) = &row.run_id {
                        a href=(format!("/console/runs/{}", url_segment(run))) { code { (run) } }
                        @if let Some(element) = &row.element { " (element " (element) ")" }
                    } @else { "none" }
                }
                dt { "Written" } dd { (row.created_at) }
                dt { "Updated" } dd { (row.updated_at) }
                @if let Some(code) = &row.error_code { dt { "Error code" } dd.fault { (code) } }
                @if let Some(text) = &row.error_text { dt { "Error" } dd.fault { (text) } }
            }
            h2 { "Status history" }
            @if history.is_empty() {
                p.empty { "No status recorded yet." }
            } @else {
                div.scroll {
                    table.listing.history {
                        thead { tr { th { "Status" } th { "When" } th { "From" } th { "Receipt" } th { "Note" } } }
                        tbody {
                            @for entry in &history {
                                @let ignored = entry["ignored"].as_str();
                                tr class=[ignored.map(|_| "ignored")] {
                                    td { (badge(entry["status"].as_str().unwrap_or(""))) }
                                    td { (entry["at"].as_str().unwrap_or("")) }
                                    td { (source_name(entry["source"].as_str().unwrap_or(""))) }
                                    td { @if let Some(receipt) = receipt_of(entry, receipts) {
                                        a href=(format!("#receipt-{}", receipt.id)) { "#" (receipt.id) }
                                    } }
                                    td {
                                        @if let Some(ignored) = ignored { strong { "Ignored: " (ignored) } " " }
                                        @if let Some(error) = entry["error"].as_str() { span.fault { (error) } " " }
                                        @if let Some(detail) = entry["detail"].as_str() { span.detail { "(" (detail) ")" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Receipts" }
            @if receipts.is_empty() {
                p.empty { "No receipt from the provider matched this message." }
            } @else {
                div.scroll {
                    table.listing.receipts {
                        thead { tr { th { "Receipt" } th { "Received" } th { "Webhook" } th { "Status" } th { "Changed the message" } } }
                        tbody {
                            @for receipt in receipts {
                                tr id=(format!("receipt-{}", receipt.id)) {
                                    td { "#" (receipt.id) }
                                    td { (receipt.received_at) }
                                    td { (receipt.webhook) " (" (receipt.provider) ")" }
                                    td { (badge(receipt.status.as_deref().unwrap_or(&receipt.kind))) }
                                    td { @if receipt.applied { "yes" } @else { "no (a duplicate or an older status)" } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /console/consent`: every number that opted out (or back in), and what made it so.
async fn consent(State(engine): State<Engine>, session: Session) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRuns) {
        return refused;
    }
    let mut rows = match engine.consents().await {
        Ok(rows) => rows,
        Err(error) => return failure(ApiError::from(error)),
    };
    // The latest change first: the question is usually about a number that just stopped.
    rows.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.phone.cmp(&b.phone)));
    Html(consent_page(&session.view(), &rows).into_string()).into_response()
}

/// What set a consent row, as people say it.
fn consent_cause(row: &ConsentRow) -> Markup {
    let keyword = row.keyword.as_deref().unwrap_or("");
    match row.source.strip_prefix("inbound:") {
        Some(webhook) => html! {
            "An inbound message " strong { "“" (keyword) "”" } " from this number, through webhook " code { (webhook) }
        },
        None => match row.source.strip_suffix(" error") {
            Some(provider) => html! {
                "The " (provider) " provider refused a message to this number as opted out (see its "
                a href=(phone_link(&row.phone)) { "messages" } ")"
            },
            None => html! { (row.source) @if !keyword.is_empty() { " (" (keyword) ")" } },
        },
    }
}

fn consent_page(viewer: &Viewer<'_>, rows: &[ConsentRow]) -> Markup {
    layout(
        Some(viewer),
        "Consent",
        html! {
            h1 { "Consent" }
            p.hint { "Numbers that replied STOP (or another opt-out word) get no message until they opt back in (START)." }
            @if rows.is_empty() {
                p.empty { "No number has opted out." }
            } @else {
                div.scroll {
                    table.listing.consent {
                        thead { tr { th { "Phone" } th { "Consent" } th { "Sender" } th { "When" } th { "Set by" } } }
                        tbody {
                            @for row in rows {
                                tr {
                                    td { a href=(phone_link(&row.phone)) { (row.phone) } }
                                    td { span class=(format!("status consent-{}", row.status)) {
                                        (if row.status == "opted_out" { "opted out" } else if row.status == "opted_in" { "opted back in" } else { row.status.as_str() })
                                    } }
                                    td { @if row.sender.is_empty() { "every sender" } @else { (row.sender) } }
                                    td { (row.updated_at) }
                                    td { (consent_cause(row)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_typed_as_people_write_it_is_matched_in_e164_and_one_herald_cannot_read_as_typed() {
        let typed = phone_of(" (415) 555-0100 ", Some("US"));
        assert_eq!((typed.matched.as_str(), typed.typed.as_str()), ("+14155550100", "(415) 555-0100"));
        assert!(typed.note.unwrap().contains("+14155550100"));
        assert!(phone_of("+14155550100", Some("US")).note.is_none(), "nothing to say about an E.164 number");
        let unreadable = phone_of("call me", Some("US"));
        assert_eq!(unreadable.matched, "call me");
        assert!(unreadable.note.unwrap().contains("matched as typed"));
    }

    #[test]
    fn a_receipt_entry_of_the_history_finds_the_receipt_stored_with_it() {
        let receipt = |id, status: &str, at: &str| ReceiptRow {
            id,
            webhook: "Hook".into(),
            provider: "kixie".into(),
            kind: "status".into(),
            message_id: Some("m1".into()),
            provider_message_id: None,
            client_message_id: None,
            status: Some(status.into()),
            applied: true,
            body: String::new(),
            received_at: at.into(),
        };
        let receipts = [receipt(1, "sent", "t1"), receipt(2, "delivered", "t2")];
        let entry = serde_json::json!({"status": "delivered", "at": "t2", "source": "receipt:Hook"});
        assert_eq!(receipt_of(&entry, &receipts).map(|r| r.id), Some(2));
        let answer = serde_json::json!({"status": "sent", "at": "t1", "source": "answer"});
        assert!(receipt_of(&answer, &receipts).is_none(), "an answer is not a receipt");
    }
}
