//! The console's actions, in process: retrying a failed or `unknown` run from its page (with the
//! confirmation that says what may be sent twice), and debugging a flow from the browser in rollback
//! mode against the sandbox.

mod common;

use axum::http::StatusCode;
use common::*;
use herald_sandbox::FaultConfig;
use herald_store::RunStatus;
use serde_json::json;

/// A Lead_Welcome_SMS run whose Kixie send was accepted but whose answer was cut: `unknown`.
async fn unknown_kixie_run(api: &Api) -> String {
    let reset = FaultConfig { reset_rate: 1.0, ..FaultConfig::default() };
    api.sandbox.set_faults("apig.kixie.com", reset).unwrap();
    let (_, runs) = api.lead(json!({"FirstName": "Ada", "LastName": "Lovelace", "Phone": PHONE})).await;
    api.sandbox.set_faults("apig.kixie.com", FaultConfig::default()).unwrap();
    assert_eq!(api.ended(&runs[0]).await, RunStatus::Unknown);
    runs[0].clone()
}

/// A Kixie_Later run whose send Kixie refused (a wrong API key; it has no fault path): `failed`.
async fn refused_kixie_run(api: &Api) -> String {
    api.set_secret("apikey", WRONG_APIKEY).await;
    let run = api.waiting_run("Kixie_Later", json!({"phone": PHONE})).await;
    assert_eq!(api.wake(&run).await, RunStatus::Failed);
    run
}

/// The words of a page without its markup (a tag separates words), so that phrases split by tags
/// can be found.
fn text(page: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_retry_page_of_an_unknown_kixie_run_says_the_text_may_reach_the_phone_twice() {
    let api = Api::new().await;
    let run = unknown_kixie_run(&api).await;
    let session = api.session("admin").await;

    let page = api.page(&format!("/console/runs/{run}"), Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!("href=\"/console/runs/{run}/retry\"")), "{}", page.text);

    let confirm = api.page(&format!("/console/runs/{run}/retry"), Some(&session)).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    let shown = text(&confirm.text);
    assert!(shown.contains("Kixie does not deduplicate resends"), "{shown}");
    assert!(shown.contains(&format!("{PHONE} may receive this message twice")), "{shown}");
    assert!(!shown.contains("Nothing will be sent twice"), "{shown}");
    assert!(confirm.text.contains(r#"<option value="Send_SMS" selected>"#), "{}", confirm.text);
    // Nothing changed by looking.
    assert_eq!(api.engine.run(&run).await.unwrap().status, RunStatus::Unknown);
    api.assert_no_secret();
}

#[tokio::test]
async fn the_retry_page_of_a_refused_send_says_nothing_is_sent_twice() {
    let api = Api::new().await;
    let run = refused_kixie_run(&api).await;
    let session = api.session("admin").await;
    let confirm = api.page(&format!("/console/runs/{run}/retry"), Some(&session)).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    let shown = text(&confirm.text);
    assert!(shown.contains("Nothing will be sent twice"), "{shown}");
    assert!(!shown.contains("may receive this message twice"), "{shown}");
    api.assert_no_secret();
}

#[tokio::test]
async fn a_confirmed_retry_goes_on_from_the_send_and_the_run_finishes_once_the_right_key_is_set() {
    let api = Api::new().await;
    let run = refused_kixie_run(&api).await;
    assert!(api.sandbox.messages().is_empty(), "Kixie accepted nothing yet");
    api.set_secret("apikey", APIKEY).await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;

    let path = format!("/console/runs/{run}/retry");
    let answer = api
        .post_form(&path, Some(&session), &[("csrf", &csrf), ("confirm", "yes"), ("from", "Send_SMS")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(answer.location(), format!("/console/runs/{run}?retried=Send_SMS"));
    assert_eq!(api.ended(&run).await, RunStatus::Finished);
    assert_eq!(api.sandbox.messages().len(), 1, "the retry sent the text once");

    let page = api.page(answer.location(), Some(&session)).await;
    let shown = text(&page.text);
    assert!(shown.contains("Retried: the run goes on from Send_SMS"), "{shown}");
    assert!(!page.text.contains("/retry\""), "a finished run offers no retry: {}", page.text);
    api.assert_no_secret();
}

#[tokio::test]
async fn a_retry_without_the_csrf_token_unconfirmed_or_from_an_unknown_element_retries_nothing() {
    let api = Api::new().await;
    let run = refused_kixie_run(&api).await;
    let before = api.engine.run(&run).await.unwrap();
    let session = api.session("admin").await;
    let path = format!("/console/runs/{run}/retry");

    let without = api.post_form(&path, Some(&session), &[("confirm", "yes")]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.text);
    let wrong = api.post_form(&path, Some(&session), &[("csrf", "not-the-token"), ("confirm", "yes")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let csrf = api.csrf(&session).await;
    let unconfirmed = api.post_form(&path, Some(&session), &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST, "{}", unconfirmed.text);
    let nowhere = api
        .post_form(&path, Some(&session), &[("csrf", &csrf), ("confirm", "yes"), ("from", "Send_SMSS")])
        .await;
    assert_eq!(nowhere.status, StatusCode::CONFLICT, "{}", nowhere.text);
    assert!(text(&nowhere.text).contains("Not retried"), "{}", nowhere.text);
    assert!(text(&nowhere.text).contains("has no element `Send_SMSS`"), "{}", nowhere.text);

    let after = api.engine.run(&run).await.unwrap();
    assert_eq!((after.status, after.updated_at), (RunStatus::Failed, before.updated_at), "nothing retried");
}

#[tokio::test]
async fn a_user_who_may_only_read_runs_sees_no_retry_button_and_is_refused_the_retry() {
    let api = Api::new().await;
    let run = refused_kixie_run(&api).await;
    let session = api.session("only_read_runs").await;
    let page = api.page(&format!("/console/runs/{run}"), Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(!page.text.contains("/retry\""), "{}", page.text);

    let path = format!("/console/runs/{run}/retry");
    let confirm = api.page(&path, Some(&session)).await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN, "{}", confirm.text);
    assert!(confirm.text.contains("lacks the API scope manage_flows"), "{}", confirm.text);
    let csrf = api.csrf(&session).await;
    let post = api.post_form(&path, Some(&session), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN, "{}", post.text);
    assert_eq!(api.engine.run(&run).await.unwrap().status, RunStatus::Failed, "nothing retried");

    // Retrying from the console also shows the run and its messages: manage_flows alone is not enough.
    let manager = api.session("only_manage_flows").await;
    let confirm = api.page(&path, Some(&manager)).await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN, "{}", confirm.text);
    assert!(confirm.text.contains("lacks the API scope read_runs"), "{}", confirm.text);
}

#[tokio::test]
async fn finished_and_waiting_runs_offer_no_retry_and_a_forged_one_is_refused() {
    let api = Api::new().await;
    let (_, runs) = api.lead(json!({"LastName": "Ng", "Phone": PHONE})).await;
    let finished = runs[0].clone();
    assert_eq!(api.ended(&finished).await, RunStatus::Finished);
    let waiting = api.waiting_run("Kixie_Later", json!({"phone": PHONE})).await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;

    for (run, status) in [(&finished, "finished"), (&waiting, "waiting")] {
        let page = api.page(&format!("/console/runs/{run}"), Some(&session)).await;
        assert!(!page.text.contains("/retry\""), "{status}: {}", page.text);
        let path = format!("/console/runs/{run}/retry");
        let confirm = api.page(&path, Some(&session)).await;
        assert_eq!(confirm.status, StatusCode::CONFLICT, "{}", confirm.text);
        let post = api.post_form(&path, Some(&session), &[("csrf", &csrf), ("confirm", "yes")]).await;
        assert_eq!(post.status, StatusCode::CONFLICT, "{}", post.text);
        assert!(
            text(&post.text).contains(&format!("run {run} cannot be retried: it is {status}")),
            "{}",
            post.text
        );
    }
    assert_eq!(api.engine.run(&waiting).await.unwrap().status, RunStatus::Waiting);
    assert_eq!(api.sandbox.messages().len(), 1, "only the lead's own text was sent");
}

#[tokio::test]
async fn the_debug_page_offers_every_flow_and_a_record_template_for_a_record_triggered_one() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let page = api.page("/console/debug?flow=Lead_Welcome_SMS", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for flow in ["Lead_Welcome_SMS", "Kixie_Send", "Kixie_Later"] {
        assert!(page.text.contains(&format!("<option value=\"{flow}\"")), "{flow}: {}", page.text);
    }
    assert!(page.text.contains(r#"<option value="Lead_Welcome_SMS" selected>"#), "{}", page.text);
    assert!(page.text.contains("&quot;LastName&quot;: &quot;&quot;"), "the Lead template: {}", page.text);
    assert!(page.text.contains(r#"name="ignore_entry""#), "{}", page.text);

    let inputs = api.page("/console/debug?flow=Kixie_Send", Some(&session)).await;
    assert!(inputs.text.contains(r#"name="input.phone""#), "{}", inputs.text);
    assert!(inputs.text.contains(r#"name="input.text""#), "{}", inputs.text);

    let unknown = api.page("/console/debug?flow=Lead_Welcome", Some(&session)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert!(text(&unknown.text).contains("There is no flow named Lead_Welcome"), "{}", unknown.text);
}

#[tokio::test]
async fn debugging_the_welcome_flow_on_a_record_shows_its_trace_and_keeps_no_lead_run_or_message() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let store = api.engine.store();
    let record = json!({"FirstName": "Grace", "LastName": "Hopper", "Phone": PHONE, "Email": ""}).to_string();

    let answer = api
        .post_form(
            "/console/debug",
            Some(&session),
            &[("csrf", &csrf), ("flow", "Lead_Welcome_SMS"), ("source", "new"), ("record", &record)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let shown = text(&answer.text);
    for expected in ["Send_SMS", "Action", "apikey ••••••", "→ end", "All done.", "Rollback mode"]
    {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    assert_eq!(api.sandbox.messages().len(), 1, "the callout went to the sandbox");
    assert_eq!(api.sandbox.messages()[0].destination, PHONE);

    assert!(store.records_of("Lead", 10).await.unwrap().is_empty(), "no Lead kept");
    assert!(store.records_of("Task", 10).await.unwrap().is_empty(), "no Task kept");
    assert!(api.engine.list_runs(&[], 10).await.unwrap().is_empty(), "no run kept");
    let all = herald_store::MessageFilter { limit: 10, ..Default::default() };
    assert!(api.engine.messages(&all).await.unwrap().is_empty(), "no ledger row kept");
    api.assert_no_secret();
}

#[tokio::test]
async fn debugging_an_existing_lead_that_fails_the_entry_condition_says_the_flow_would_not_start() {
    let api = Api::new().await;
    let (lead, _) = api.lead(json!({"LastName": "Quiet"})).await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let fields =
        [("csrf", csrf.as_str()), ("flow", "Lead_Welcome_SMS"), ("source", "existing"), ("record_id", &lead)];

    let answer = api.post_form("/console/debug", Some(&session), &fields).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(text(&answer.text).contains("does not meet the entry condition"), "{}", answer.text);
    assert!(api.sandbox.messages().is_empty());

    let ignoring = [&fields[..], &[("ignore_entry", "yes")]].concat();
    let answer = api.post_form("/console/debug", Some(&session), &ignoring).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let shown = text(&answer.text);
    // Without a phone Kixie refuses the text, and the fault path logs a Task (in the copy only).
    assert!(shown.contains("Log_SMS_Failure"), "{shown}");
    assert!(shown.contains("All done."), "{shown}");
    assert!(api.engine.store().records_of("Task", 10).await.unwrap().is_empty(), "no Task kept");
}

#[tokio::test]
async fn debugging_kixie_send_with_its_inputs_shows_its_output_variables() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let answer = api
        .post_form(
            "/console/debug",
            Some(&session),
            &[
                ("csrf", &csrf),
                ("flow", "Kixie_Send"),
                ("input.phone", PHONE),
                ("input.text", "Hi <b>there</b>"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let shown = text(&answer.text);
    assert!(shown.contains("Output variables code 200"), "{shown}");
    assert!(shown.contains("All done."), "{shown}");
    assert!(answer.text.contains("Hi &lt;b&gt;there&lt;/b&gt;"), "the text is escaped: {}", answer.text);
    assert_eq!(api.sandbox.messages()[0].text.as_deref(), Some("Hi <b>there</b>"));
    api.assert_no_secret();
}

#[tokio::test]
async fn a_server_without_a_sandbox_debugs_against_one_it_starts_for_the_run_never_a_provider() {
    let api = Api::with_sandbox(false).await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let fields = [("csrf", csrf.as_str()), ("flow", "Kixie_Send"), ("input.phone", PHONE)];
    let answer = api.post_form("/console/debug", Some(&session), &fields).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let shown = text(&answer.text);
    assert!(shown.contains("a sandbox started for this run at http://127.0.0.1:"), "{shown}");
    // Its Kixie account is the sandbox's default one, not the vault's: the emulator refuses the key.
    assert!(shown.contains("HTTP 401") && shown.contains("Invalid apikey or businessid"), "{shown}");
    assert!(shown.contains("The flow failed:"), "{shown}");
    assert!(api.sandbox.requests().is_empty(), "the fixture's sandbox was not the one used");
    api.assert_no_secret();
}

#[tokio::test]
async fn bad_json_an_unknown_field_or_a_bad_input_shows_the_problem_and_runs_nothing() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let csrf = api.csrf(&session).await;
    let record = |text: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("flow", "Lead_Welcome_SMS".into()),
            ("source", "new".into()),
            ("record", text.into()),
        ]
    };
    let existing = |id: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("flow", "Lead_Welcome_SMS".into()),
            ("source", "existing".into()),
            ("record_id", id.into()),
        ]
    };
    let cases: [(Vec<(&str, String)>, &str); 5] = [
        (record(r#"{"LastName": "Ng",}"#).to_vec(), "Field values: not valid JSON"),
        (record(r#"["Ng"]"#).to_vec(), "Field values: give a JSON object of field values"),
        (record(r#"{"LastName": "Ng", "Phnoe": "+14155550100"}"#).to_vec(), "Phnoe"),
        (existing(""), "Record id: give the id of a stored Lead record"),
        (existing("00Qnothere"), "no Lead record with id 00Qnothere"),
    ];
    for (fields, problem) in cases {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = api.post_form("/console/debug", Some(&session), &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{problem}: {}", answer.text);
        let shown = text(&answer.text);
        assert!(shown.contains("Nothing ran:") && shown.contains(problem), "{problem}: {shown}");
    }
    assert!(api.sandbox.requests().is_empty(), "no callout was made");
}

#[tokio::test]
async fn debugging_needs_manage_flows_and_the_csrf_token() {
    let api = Api::new().await;
    let reader = api.session("all_but_manage_flows").await;
    let page = api.page("/console/debug", Some(&reader)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    let csrf = api.csrf(&reader).await;
    let fields = [("csrf", csrf.as_str()), ("flow", "Kixie_Send"), ("input.phone", PHONE)];
    let post = api.post_form("/console/debug", Some(&reader), &fields).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN, "{}", post.text);

    let admin = api.session("admin").await;
    let forged = api
        .post_form("/console/debug", Some(&admin), &[("flow", "Kixie_Send"), ("input.phone", PHONE)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert!(api.sandbox.requests().is_empty(), "nothing ran");
}
