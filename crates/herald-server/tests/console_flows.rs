//! The console's Flows pages in process: the list of the served project's flows and how each starts,
//! a flow drawn as SVG (a box per element, fault connectors marked), an element's configuration
//! shown when it is clicked (`?element=`), load warnings on the boxes they concern, the `read_runs`
//! scope, a did-you-mean for an unknown flow, escaping of labels, and no secret on any of it.

mod common;

use axum::http::StatusCode;
use common::{APIKEY, Api, BUSINESSID, PHONE, WRONG_APIKEY, project_files};
use serde_json::json;

/// An autolaunched draft flow with an element of every kind, a label that is markup, an SMS whose
/// fixed text forces UCS-2 (HW001) and a text template holding HTML (HW002).
const GALLERY: &str = r#"kind: flow
label: "<script>alert(1)</script> Gallery"
status: draft
variables:
  phone: {type: Text, input: true}
  count: {type: Number, output: true, default: 0}
text_templates:
  Greeting: {text: "<p>Hello {!phone}</p>"}
start: Get_Tasks
elements:
  Get_Tasks:
    label: Get SMS Tasks
    get: Task
    conditions:
      - {field: Subject, operator: StartsWith, right: SMS}
    how_many: all
    next: Each_Task
    fault: Log_Failure
  Each_Task:
    label: Each Task
    loop: "{!Get_Tasks}"
    each: Count_It
    after: Enough
  Count_It:
    label: "<img src=x onerror=alert(2)>"
    assign:
      - count: {add: 1}
    next: Each_Task
  Enough:
    label: Enough?
    decision:
      - name: Many
        label: Many tasks
        conditions:
          - {left: "{!count}", operator: GreaterThan, right: 10}
        next: Send
    default: Pause
  Pause:
    wait: {minutes: 5}
    next: Send
  Send:
    label: Send the SMS
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!phone}"
      eventname: sms
      message: "Done ✓ {!count} tasks"
    retry: {max_attempts: 2}
    next: Call_Send
    fault: Log_Failure
  Call_Send:
    subflow: Kixie_Send
    inputs:
      phone: "{!phone}"
      text: "{!Greeting}"
    next: Rename
  Rename:
    update: Task
    conditions:
      - {field: Subject, operator: EqualTo, right: SMS}
    fields: {Subject: SMS sent}
    next: Tidy
  Tidy:
    delete: Task
    conditions:
      - {field: Subject, operator: EqualTo, right: Old}
    fault: Log_Failure
  Log_Failure:
    create: Task
    fields: {Subject: "Failed: {!$Flow.FaultMessage}"}
"#;

const ELEMENTS: [&str; 11] = [
    "Get_Tasks",
    "Each_Task",
    "Count_It",
    "Enough",
    "Pause",
    "Send",
    "Call_Send",
    "Rename",
    "Tidy",
    "Log_Failure",
    "$Start",
];

/// The route fixture's project and the gallery flow, with `admin` (every scope) signed in.
async fn console() -> (Api, String) {
    let mut files = project_files();
    files.push(("flows/Gallery.yaml".into(), GALLERY.into()));
    let api = Api::with_project(files).await;
    let session = api.session("admin").await;
    (api, session)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test]
async fn the_flows_list_shows_every_flow_with_how_it_starts_its_status_and_its_warnings() {
    let (console, session) = console().await;
    let list = console.page("/console/flows", Some(&session)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    for flow in ["Lead_Welcome_SMS", "Kixie_Send", "Kixie_Later", "Gallery"] {
        assert!(list.text.contains(&format!(r#"href="/console/flows/{flow}""#)), "{flow}: {}", list.text);
    }
    for shown in [
        "Record-triggered: Lead",
        "A record is created",
        "When Phone IsBlank false",
        "Autolaunched (no trigger)",
        "Inputs: phone (Text), text (Text)",
        "Outputs: code (Number)",
        "Project version",
        r#"<span class="status draft">draft</span>"#,
        r#"<span class="status active">active</span>"#,
        // Gallery's two warnings, linked to the list of them on its page.
        r#"href="/console/flows/Gallery?warnings=open#warnings">2</a>"#,
    ] {
        assert!(list.text.contains(shown), "{shown} in {}", list.text);
    }
    assert!(list.text.contains(r#"<a href="/console/flows">Flows</a>"#), "in the header's sections");
}

#[tokio::test]
async fn a_flow_page_draws_a_box_per_element_and_its_fault_connector_in_the_fault_class() {
    let (console, session) = console().await;
    let page = console.page("/console/flows/Lead_Welcome_SMS", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let text = &page.text;
    assert_eq!(count(text, "<svg "), 1);
    assert_eq!(count(text, r#"<a class="node-link""#), 3, "Start, Send_SMS, Log_SMS_Failure: {text}");
    for element in ["$Start", "Send_SMS", "Log_SMS_Failure"] {
        assert!(text.contains(&format!(r#"data-element="{element}""#)), "{element}");
    }
    assert_eq!(count(text, r#"<g class="edge "#), 2, "the path from Start, and the fault connector");
    assert!(
        text.contains(r#"<g class="edge fault" data-from="Send_SMS" data-to="Log_SMS_Failure">"#),
        "{text}"
    );
    assert!(text.contains(r#"stroke-dasharray="6 4""#), "dashed");
    assert!(text.contains("Record-Triggered: Lead") && text.contains("When Phone IsBlank false"));
    // Its runs, and debugging it from the browser.
    assert!(text.contains(r#"href="/console/runs?flow=Lead_Welcome_SMS""#), "{text}");
    assert!(text.contains(r#"href="/console/debug?flow=Lead_Welcome_SMS""#), "{text}");

    let gallery = console.page("/console/flows/Gallery", Some(&session)).await;
    let text = &gallery.text;
    assert_eq!(count(text, r#"<a class="node-link""#), ELEMENTS.len());
    for caption in [
        "Get Records",
        "Loop",
        "Assignment",
        "Decision",
        "Wait",
        "Action",
        "Subflow",
        "Update Records",
        "Delete Records",
        "Create Records",
        "Autolaunched Flow (No Trigger)",
        "Inputs: phone",
    ] {
        assert!(text.contains(&format!(">{caption}")), "{caption} in {text}");
    }
    for label in ["For Each", "After Last", "Many tasks", "Default Outcome", "Fault"] {
        assert!(text.contains(&format!(">{label}</text>")), "the connector label {label}: {text}");
    }
    assert_eq!(count(text, r#"<g class="edge fault""#), 3, "Get_Tasks, Send and Tidy fail to Log_Failure");
    assert_eq!(count(text, " back\""), 1, "Count_It goes back to the loop");
    assert!(text.contains(r#"<a class="subflow-link" href="/console/flows/Kixie_Send">"#), "{text}");
}

#[tokio::test]
async fn clicking_an_element_shows_its_configuration_as_the_flow_file_writes_it() {
    let (console, session) = console().await;
    let page = console.page("/console/flows/Lead_Welcome_SMS?element=Send_SMS", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = &page.text;
    assert!(text.contains(r#"<g class="node action selected" data-element="Send_SMS">"#), "{text}");
    let panel = &text[text.find(r#"id="element""#).expect("the panel")..];
    for shown in [
        "KixieService.Send_SMS",
        "{!$Credential.Kixie_API_Auth.apikey}",
        "Hi {!$Record.FirstName}, thanks for reaching out!",
        "not set: the provider's defaults",
        r#"href="?element=Log_SMS_Failure#element""#,
        "As written in <code>flows/Lead_Welcome_SMS.yaml</code>, lines 6–14",
        "fault: Log_SMS_Failure",
    ] {
        assert!(panel.contains(shown), "{shown} in {panel}");
    }

    let start = console.page("/console/flows/Lead_Welcome_SMS?element=%24Start", Some(&session)).await;
    let panel = &start.text[start.text.find(r#"id="element""#).unwrap()..];
    for shown in ["A record is created", "IsBlank", "Run immediately", "the user whose change triggered it"] {
        assert!(panel.contains(shown), "{shown} in {panel}");
    }

    for (element, shown) in [
        ("Send", "max_attempts: 2"),
        ("Count_It", "Add"),
        ("Enough", "Many tasks"),
        ("Enough", r#"href="?element=Pause#element""#),
        ("Each_Task", "{!Get_Tasks}"),
        ("Pause", "5 minutes"),
        ("Call_Send", r#"href="/console/flows/Kixie_Send""#),
        ("Rename", "SMS sent"),
        ("Tidy", "Delete records of"),
        ("Get_Tasks", "StartsWith"),
    ] {
        let page = console.page(&format!("/console/flows/Gallery?element={element}"), Some(&session)).await;
        let panel = &page.text[page.text.find(r#"id="element""#).unwrap()..];
        assert!(panel.contains(shown), "{element}: {shown} in {panel}");
    }

    let unknown = console.page("/console/flows/Lead_Welcome_SMS?element=Send_SM", Some(&session)).await;
    assert_eq!(unknown.status, StatusCode::OK, "the flow is there; the panel says what is not");
    assert!(unknown.text.contains("This flow has no element <code>Send_SM</code>"), "{}", unknown.text);
    assert!(
        unknown.text.contains(r#"Did you mean <a href="?element=Send_SMS#element">"#),
        "{}",
        unknown.text
    );
}

#[tokio::test]
async fn load_warnings_wear_a_badge_on_the_element_they_concern_and_are_listed_with_their_place() {
    let (console, session) = console().await;
    let page = console.page("/console/flows/Gallery?element=Send", Some(&session)).await;
    let text = &page.text;
    assert!(text.contains(r#"<g class="node action selected warned" data-element="Send">"#), "{text}");
    // The template holding HTML is read by the subflow's input: the warning is on that element.
    assert!(text.contains(r#"<g class="node subflow warned" data-element="Call_Send">"#), "{text}");
    assert_eq!(count(text, r#"<g class="badge">"#), 2);
    // In the order of the file: the template's (line 8), then the action's input (line 49).
    assert!(text.contains("Load warnings (2) — on Call_Send (1), Send (1)"), "{text}");
    for shown in ["HW001", "HW002", "flows/Gallery.yaml:49:22", "flows/Gallery.yaml:8:21"] {
        assert!(text.contains(shown), "{shown} in {text}");
    }
    let panel = &text[text.find(r#"id="element""#).unwrap()..];
    assert!(
        panel.contains("HW001") && !panel.contains("HW002"),
        "the panel lists the element's own: {panel}"
    );

    let clean = console.page("/console/flows/Lead_Welcome_SMS", Some(&session)).await;
    assert!(!clean.text.contains("Load warnings"), "no warnings, no list");
}

#[tokio::test]
async fn a_user_without_the_read_runs_scope_cannot_see_flows() {
    let (console, _) = console().await;
    let session = console.session("only_read_records").await;
    for path in [
        "/console/flows",
        "/console/flows/Lead_Welcome_SMS",
        "/console/flows/Lead_Welcome_SMS?element=Send_SMS",
    ] {
        let answer = console.page(path, Some(&session)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            answer.text.contains(
                "user only_read_records lacks the API scope read_runs; assign permission set Admin or Runs_Reader"
            ),
            "{}",
            answer.text
        );
        assert!(!answer.text.contains("KixieService"), "nothing of the flow is shown");
    }
    let reader = console.session("only_read_runs").await;
    assert_eq!(console.page("/console/flows", Some(&reader)).await.status, StatusCode::OK);
    for path in ["/console/flows", "/console/flows/Lead_Welcome_SMS"] {
        assert_eq!(console.page(path, None).await.location(), "/console/login", "{path} needs a session");
    }
}

#[tokio::test]
async fn an_unknown_flow_is_404_with_the_closest_name() {
    let (console, session) = console().await;
    let answer = console.page("/console/flows/Lead_Welcome_SMSS", Some(&session)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(
        answer.text.contains("no flow named `Lead_Welcome_SMSS` (did you mean `Lead_Welcome_SMS`?)"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains(r#"href="/console/flows""#));
    let far = console.page("/console/flows/%3Cscript%3E", Some(&session)).await;
    assert_eq!(far.status, StatusCode::NOT_FOUND);
    assert!(far.text.contains("no flow named `&lt;script&gt;`"), "{}", far.text);
}

#[tokio::test]
async fn a_label_that_is_markup_is_shown_as_text() {
    let (console, session) = console().await;
    for path in ["/console/flows", "/console/flows/Gallery", "/console/flows/Gallery?element=Count_It"] {
        let page = console.page(path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.text.contains("<script") && !page.text.contains("<img"), "{path}: {}", page.text);
        assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt; Gallery"), "{path}: {}", page.text);
        assert!(!page.text.contains("style="), "{path}: no inline style under the CSP");
        let csp = page.headers.get("content-security-policy").expect("a CSP").to_str().unwrap();
        assert_eq!(csp, herald_server::CONTENT_SECURITY_POLICY);
    }
    let page = console.page("/console/flows/Gallery?element=Count_It", Some(&session)).await;
    assert!(page.text.contains("&lt;img src=x onerror=alert(2)&gt;"), "{}", page.text);
}

#[tokio::test]
async fn no_secret_set_through_the_credentials_route_appears_on_the_flow_pages() {
    let (console, session) = console().await;
    console.set_secret("apikey", WRONG_APIKEY).await;
    console.set_secret("apikey", APIKEY).await;
    // A run of the welcome flow has used the secrets in a callout.
    console.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let mut pages = vec!["/console/flows".to_string(), "/console/runs".to_string()];
    for flow in ["Lead_Welcome_SMS", "Kixie_Send", "Kixie_Later"] {
        pages.push(format!("/console/flows/{flow}"));
        pages.push(format!("/console/flows/{flow}?element=Send_SMS"));
        pages.push(format!("/console/flows/{flow}?element=%24Start"));
    }
    for element in ELEMENTS {
        pages.push(format!("/console/flows/Gallery?element={}", element.replace('$', "%24")));
    }
    for path in &pages {
        let page = console.page(path, Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret in [BUSINESSID, APIKEY, WRONG_APIKEY] {
            assert!(!page.text.contains(secret), "{path} shows a secret");
        }
    }
    let panel = console.page("/console/flows/Lead_Welcome_SMS?element=Send_SMS", Some(&session)).await;
    assert!(panel.text.contains("{!$Credential.Kixie_API_Auth.businessid}"), "the formula, as written");
}

#[tokio::test]
async fn the_runs_list_and_a_run_link_to_their_flow() {
    let (console, session) = console().await;
    let (_, runs) = console.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let list = console.page("/console/runs", Some(&session)).await;
    assert!(
        list.text.contains(r#"<a href="/console/flows/Lead_Welcome_SMS">Lead_Welcome_SMS</a>"#),
        "{}",
        list.text
    );
    let run = console.page(&format!("/console/runs/{}", runs[0]), Some(&session)).await;
    assert!(
        run.text.contains(r#"<a href="/console/flows/Lead_Welcome_SMS">Lead_Welcome_SMS</a>"#),
        "{}",
        run.text
    );
}

#[tokio::test]
async fn the_same_flow_is_drawn_the_same_way_every_time() {
    let (console, session) = console().await;
    let svg = |text: &str| {
        let start = text.find("<svg ").unwrap();
        text[start..text.find("</svg>").unwrap()].to_string()
    };
    let first = console.page("/console/flows/Gallery", Some(&session)).await;
    let again = console.page("/console/flows/Gallery", Some(&session)).await;
    assert_eq!(svg(&first.text), svg(&again.text));
}
