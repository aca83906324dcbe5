//! The console's Records pages in process: the objects, an object's records paged and searched as
//! SOQL compares text, a record with its references as links, its runs, and the related list that
//! shows the Task a failed text's fault path created; unknown objects and records, the
//! `read_records` scope, escaping, and no secret on any of these pages.

mod common;

use axum::http::StatusCode;
use common::{APIKEY, Api, BUSINESSID, PHONE, WRONG_APIKEY};
use serde_json::{Value, json};

const SCRIPT: &str = "<script>alert(1)</script>";

/// The record ids a page links to under `object`, in its order.
fn listed(page: &str, object: &str) -> Vec<String> {
    let link = format!("href=\"/console/records/{object}/");
    page.split(&link).skip(1).map(|rest| rest.split('"').next().unwrap().to_string()).collect()
}

/// A lead whose welcome text failed (a wrong API key), and the Task its fault path created.
async fn failed_lead(api: &Api, last_name: &str) -> (String, String) {
    api.set_secret("apikey", WRONG_APIKEY).await;
    let (lead, runs) = api.lead(json!({"FirstName": "Ada", "LastName": last_name, "Phone": PHONE})).await;
    let run = api.get(&format!("/api/v1/runs/{}", runs[0])).await.json();
    let task =
        run["trace"][1]["outputs"]["Id"].as_str().unwrap_or_else(|| panic!("a Task: {run}")).to_string();
    api.set_secret("apikey", APIKEY).await;
    (lead, task)
}

#[tokio::test]
async fn the_records_page_lists_the_projects_objects_with_their_key_prefix_and_field_count() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let page = api.page("/console/records", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "<a href=\"/console/records/Lead\">Lead</a>",
        "<a href=\"/console/records/Task\">Task</a>",
        "<code>00Q</code>",
        "<code>00T</code>",
        "<td>5</td>",
        "<td>2</td>",
    ] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
}

#[tokio::test]
async fn a_search_by_last_name_finds_a_lead_without_regard_to_case_and_a_wrong_value_finds_none() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (ng, _) = api.lead(json!({"FirstName": "Andrew", "LastName": "Ng"})).await;
    let (other, _) = api.lead(json!({"FirstName": "Grace", "LastName": "Hopper"})).await;
    let every = api.page("/console/records/Lead", Some(&session)).await;
    assert_eq!(listed(&every.text, "Lead"), [other.clone(), ng.clone()], "newest first");
    for value in ["Ng", "ng", "NG"] {
        let page =
            api.page(&format!("/console/records/Lead?field=LastName&value={value}"), Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(listed(&page.text, "Lead"), std::slice::from_ref(&ng), "LastName = {value}");
        assert!(page.text.contains("<option value=\"LastName\" selected>"), "the field stays chosen");
    }
    let none = api.page("/console/records/Lead?field=LastName&value=N", Some(&session)).await;
    assert!(listed(&none.text, "Lead").is_empty(), "equal, not starting with");
    assert!(none.text.contains("No Lead record matches."));
    let by_id = api.page(&format!("/console/records/Lead?field=Id&value={ng}"), Some(&session)).await;
    assert_eq!(listed(&by_id.text, "Lead"), std::slice::from_ref(&ng));
    let unknown = api.page("/console/records/Lead?field=Surname&value=Ng", Some(&session)).await;
    assert!(unknown.text.contains("Lead has no field Surname."), "{}", unknown.text);
}

#[tokio::test]
async fn an_objects_records_are_paged_fifty_at_a_time_newest_first() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    api.engine
        .store()
        .write(|tx| {
            for n in 0..70 {
                let data =
                    json!({"LastName": format!("Lead {n:02}"), "CreatedDate": "2026-01-01T00:00:00.000000Z"});
                tx.insert_record("Lead", &format!("00Q{n:015}"), data.as_object().unwrap(), "t0")?;
            }
            Ok::<_, herald_store::StoreError>(())
        })
        .await
        .unwrap();
    let first = api.page("/console/records/Lead", Some(&session)).await;
    let first_ids = listed(&first.text, "Lead");
    assert_eq!(first_ids.len(), 50);
    assert_eq!(first_ids[0], format!("00Q{:015}", 69));
    let start =
        first.text.find("rel=\"next\" href=\"").expect("an older page") + "rel=\"next\" href=\"".len();
    let next = first.text[start..].split('"').next().unwrap().replace("&amp;", "&");
    let second = api.page(&next, Some(&session)).await;
    let second_ids = listed(&second.text, "Lead");
    let expected: Vec<String> = (0..20).rev().map(|n| format!("00Q{n:015}")).collect();
    assert_eq!(second_ids, expected, "the rest, and no record twice");
    assert!(!second.text.contains("rel=\"next\""), "no page after the last");
}

#[tokio::test]
async fn a_lead_whose_text_failed_shows_the_task_its_fault_path_created_in_its_related_list() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (lead, task) = failed_lead(&api, "Byron").await;
    let page = api.page(&format!("/console/records/Lead/{lead}"), Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    let related = &page.text[page.text.find("<h2>Related</h2>").expect("a Related section")..];
    assert!(related.contains("Task"), "{related}");
    assert!(related.contains("(WhoId)"), "the field that points here: {related}");
    assert_eq!(listed(related, "Task"), std::slice::from_ref(&task), "{related}");
    assert!(related.contains("SMS failed"), "the Task's subject: {related}");
    let runs = &page.text[page.text.find("Runs it started").unwrap()..page.text.find("<h2>Related").unwrap()];
    assert!(runs.contains("Lead_Welcome_SMS"), "{runs}");
    assert!(runs.contains(&format!("href=\"/console/runs?record={lead}\"")), "{runs}");
    let run_links = runs.matches("href=\"/console/runs/run").count();
    assert_eq!(run_links, 1, "{runs}");
    for shown in ["Byron", "<code>LastName</code>", "Created", "Updated"] {
        assert!(page.text.contains(shown), "{shown}");
    }

    // The Task points back to the Lead: its WhoId is a link to it.
    let task_page = api.page(&format!("/console/records/Task/{task}"), Some(&session)).await;
    assert!(
        task_page.text.contains(&format!("<a href=\"/console/records/Lead/{lead}\"><code>{lead}</code></a>")),
        "{}",
        task_page.text
    );
}

#[tokio::test]
async fn an_unknown_object_is_a_404_naming_the_closest_and_an_unknown_record_a_404() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    for path in ["/console/records/Leed", "/console/records/Leed/00Q1"] {
        let page = api.page(path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.text.contains("The project defines no object Leed."), "{}", page.text);
        assert!(page.text.contains("Did you mean `Lead`?"), "{}", page.text);
    }
    let missing = api.page("/console/records/Lead/00Q000000000000AAA", Some(&session)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("No Lead record has the id 00Q000000000000AAA."), "{}", missing.text);
}

#[tokio::test]
async fn the_records_pages_need_read_records_as_the_api_does() {
    let api = Api::new().await;
    let (lead, _) = api.lead(json!({"LastName": "Scoped"})).await;
    let pages = [
        "/console/records".to_string(),
        "/console/records/Lead".into(),
        format!("/console/records/Lead/{lead}"),
    ];
    let runs_only = api.session("only_read_runs").await;
    let records_only = api.session("only_read_records").await;
    for path in &pages {
        let refused = api.page(path, Some(&runs_only)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.text.contains("lacks the API scope read_records"), "{path}: {}", refused.text);
        assert!(!refused.text.contains("Scoped"), "{path} shows no record");
        let allowed = api.page(path, Some(&records_only)).await;
        assert_eq!(allowed.status, StatusCode::OK, "{path}");
        let csp = allowed.headers.get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
        assert!(csp.is_some_and(|csp| csp.starts_with("default-src 'self'")), "{path}: the console's CSP");
        assert!(
            !allowed.text.contains("<script") && !allowed.text.contains("style="),
            "{path}: no inline script or style"
        );
    }
}

#[tokio::test]
async fn a_lead_named_like_a_script_is_text_on_every_records_page() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (lead, task) = failed_lead(&api, SCRIPT).await;
    let value: String = form_urlencoded::byte_serialize(SCRIPT.as_bytes()).collect();
    let paths = [
        "/console/records/Lead".to_string(),
        format!("/console/records/Lead?field=LastName&value={value}"),
        format!("/console/records/Lead/{lead}"),
        format!("/console/records/Lead?field=Nope&value={value}"),
    ];
    for path in paths {
        let page = api.page(&path, Some(&session)).await;
        assert!(!page.text.contains(SCRIPT), "{path}: {}", page.text);
        assert!(
            page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path} shows it as text: {}",
            page.text
        );
    }
    // The Task names its Lead only by id; its page has no raw markup either.
    let task_page = api.page(&format!("/console/records/Task/{task}"), Some(&session)).await;
    assert_eq!(task_page.status, StatusCode::OK);
    assert!(!task_page.text.contains("<script"), "{}", task_page.text);
}

#[tokio::test]
async fn no_secret_set_through_the_credentials_route_appears_on_the_records_pages() {
    let api = Api::new().await;
    let session = api.session("admin").await;
    let (lead, task) = failed_lead(&api, "Secretless").await;
    let (sent, _) = api.lead(json!({"LastName": "Sent", "Phone": PHONE})).await;
    let paths = [
        "/console/records".to_string(),
        "/console/records/Lead".into(),
        "/console/records/Task".into(),
        "/console/records/Lead?field=LastName&value=Secretless".into(),
        format!("/console/records/Lead/{lead}"),
        format!("/console/records/Lead/{sent}"),
        format!("/console/records/Task/{task}"),
    ];
    for path in paths {
        let page = api.page(&path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret in [BUSINESSID, APIKEY, WRONG_APIKEY, session.as_str()] {
            assert!(!page.text.contains(secret), "{path} shows a secret");
        }
        for token in api.tokens.values() {
            assert!(!page.text.contains(token.as_str()), "{path} shows a token");
        }
    }
    let task_record: Value = api.get(&format!("/api/v1/records/Task/{task}")).await.json();
    assert!(task_record["Subject"].as_str().unwrap().starts_with("SMS failed"), "{task_record}");
}
