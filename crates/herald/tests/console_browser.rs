//! The console in a real browser: Debian's Chromium, driven through WebDriver (`chromedriver`) by
//! fantoccini, against a real `herald serve` and sandbox that the harness starts. It signs in with a
//! password set by `herald user password`, posts a lead through the API, finds its run in the Runs
//! page, opens it and sees its trace, and signs out; and an admin retries an `unknown` run from its
//! page and debugs an autolaunched flow from the Debug page; and a user finds the Task a failed text
//! left through Records, and the text through Messages; and an admin sets a credential value, then
//! creates and revokes a token; and a user opens a flow's diagram and clicks an element to see its
//! configuration.
//!
//! Without `chromium` and `chromedriver` on the PATH the test says why and passes, unless
//! `HERALD_REQUIRE_BROWSER=1` (CI sets it; `scripts/test` installs them with apt where it can), in
//! which case it fails.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const REQUIRE_VAR: &str = "HERALD_REQUIRE_BROWSER";
const PASSWORD: &str = "browser-test-password-7c1d";
const SCRIPT: &str = "<script>alert(1)</script>";

/// An executable of that name on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| path.is_file())
}

/// Chromium and chromedriver, or `None` (with the reason printed) when the test must skip.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = on_path("chromium").zip(on_path("chromedriver"));
    if found.is_none() {
        let reason = "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)";
        if std::env::var(REQUIRE_VAR).is_ok_and(|value| value == "1") {
            panic!("{reason}, and {REQUIRE_VAR}=1 requires the browser tests to run");
        }
        eprintln!("skipped: {reason}; set {REQUIRE_VAR}=1 to make this a failure");
    }
    found
}

/// A running chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session on `driver`, retried while chromedriver is still starting.
async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--hide-scrollbars", format!("--user-data-dir={}", profile.display())],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let mut last = String::new();
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&driver.url).await {
            Ok(client) => return client,
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no browser session from chromedriver at {}: {last}", driver.url);
}

/// Waits (up to 10 s) until the browser shows a page whose path `matches`: a click that navigates
/// returns before the next page arrives.
async fn arrives(client: &Client, matches: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let path = client.current_url().await.unwrap().path().to_string();
        if matches(&path) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still at {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of `css` on the page shown. A click that navigates can replace the page between finding
/// the element and reading it (a stale element): it is found again, for up to 10 s.
async fn text_of(client: &Client, css: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await,
            Err(error) => Err(error),
        };
        match read {
            Ok(text) => return text,
            Err(error) if std::time::Instant::now() > deadline => panic!("{css}: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The text of `css` once the page that follows a click shows it (a form's answer can take a moment
/// on a busy machine); panics after 10 s.
async fn text_when_shown(client: &Client, css: &str) -> String {
    let found = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
    match found {
        Ok(element) => element.text().await.unwrap(),
        Err(error) => panic!("{css} not shown at {:?}: {error}", client.current_url().await.ok()),
    }
}

/// With `HERALD_SCREENSHOTS=DIR`, saves what the browser shows as `DIR/NAME.png`: the screenshots in
/// docs/console.md are taken this way (`HERALD_SCREENSHOTS=$PWD/docs/console cargo nextest run -p
/// herald --test console_browser`). Without it, nothing is written.
async fn snap(client: &Client, name: &str) {
    let Some(dir) = std::env::var_os("HERALD_SCREENSHOTS") else { return };
    let png = client.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}

/// Gives `user` the console password [`PASSWORD`] with `herald user password`.
fn set_password(h: &Harness, user: &str) {
    let location = ["--project", h.project().to_str().unwrap(), "--db", h.db().to_str().unwrap()];
    let (code, stdout, stderr) =
        herald(&[&["user", "password", user][..], &location].concat(), &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// The harness on the Kixie example, with `webform`'s password set.
async fn served() -> Harness {
    let h = tokio::task::spawn_blocking(|| Harness::example("kixie-welcome-sms").sandbox_account().start())
        .await
        .unwrap();
    set_password(&h, "webform");
    h
}

/// Signs `user` in through the form: /console sends the browser to it.
async fn sign_in(client: &Client, h: &Harness, user: &str) {
    client.goto(&h.url("/console")).await.unwrap();
    arrives(client, |path| path.ends_with("/console/login")).await;
    client.find(Locator::Css("input[name=user]")).await.unwrap().send_keys(user).await.unwrap();
    client.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Css("form.signin button[type=submit]")).await.unwrap().click().await.unwrap();
    assert!(text_when_shown(client, "p.who-line").await.contains(&format!("Signed in as {user}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_finds_a_posted_leads_run_and_its_trace_and_signs_out_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let h = served().await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h, "webform").await;

    // A lead posted through the API, named like a script: its run is in the Runs page.
    let run = h.lead_run(json!({"FirstName": SCRIPT, "LastName": "Browser", "Phone": "+14155550100"})).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["status"], "finished", "{run}");
    client.find(Locator::LinkText("Runs")).await.unwrap().click().await.unwrap();
    let link = format!("a[href='/console/runs/{run_id}']");
    client
        .find(Locator::Css(&link))
        .await
        .unwrap_or_else(|e| panic!("run {run_id} listed: {e}"))
        .click()
        .await
        .unwrap();

    // Its page shows the run and its trace, the lead's name as text (no script ran).
    arrives(&client, |path| path.ends_with(&format!("/console/runs/{run_id}"))).await;
    let page = text_of(&client, "main").await;
    for shown in ["finished", "Lead_Welcome_SMS", "Send_SMS", "Inputs", "Outputs", SCRIPT, "••••••"]
    {
        assert!(page.contains(shown), "{shown} on the run page: {page}");
    }
    assert!(client.get_alert_text().await.is_err(), "no script from the lead's name ran");
    snap(&client, "run").await;
    client.find(Locator::LinkText("Home")).await.unwrap().click().await.unwrap();
    text_when_shown(&client, "section.tiles").await;
    snap(&client, "home").await;
    client.set_window_size(390, 844).await.unwrap();
    snap(&client, "home-phone").await;
    client.set_window_size(1280, 900).await.unwrap();
    client.find(Locator::LinkText("Runs")).await.unwrap().click().await.unwrap();
    text_when_shown(&client, "table.runs").await;
    snap(&client, "runs").await;

    // A form whose CSRF token is not the session's (as a page elsewhere would post it) is refused,
    // and the session stays.
    client
        .execute(
            "const form = document.querySelector('form.signout'); form.querySelector('input[name=csrf]').value = 'forged'; form.submit();",
            vec![],
        )
        .await
        .unwrap();
    assert!(text_when_shown(&client, "main").await.contains("CSRF token does not match"));
    client.goto(&h.url("/console")).await.unwrap();
    assert!(text_when_shown(&client, "p.who-line").await.contains("Signed in as webform"), "still signed in");

    // Sign out: back to the sign-in form, and the console needs signing in again.
    client.find(Locator::Css("form.signout button")).await.unwrap().click().await.unwrap();
    arrives(&client, |path| path.ends_with("/console/login")).await;
    client.goto(&h.url("/console/runs")).await.unwrap();
    arrives(&client, |path| path.ends_with("/console/login")).await;
    client.close().await.unwrap();
}

/// An autolaunched flow added to the example for the Debug page: one Kixie text to `phone`.
const KIXIE_SEND: &str = r#"kind: flow
label: Send a Kixie SMS
variables:
  phone: {type: Text, input: true}
  code: {type: Number, output: true}
start: Send_SMS
elements:
  Send_SMS:
    action: KixieService.Send_SMS
    inputs:
      businessid: "{!$Credential.Kixie_API_Auth.businessid}"
      apikey: "{!$Credential.Kixie_API_Auth.apikey}"
      target: "{!phone}"
      eventname: sms
      message: "Hello from the console"
    outputs: {responseCode: code}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retries_an_unknown_run_and_debugs_a_flow_from_the_console_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let setup = Harness::example("kixie-welcome-sms").sandbox_account().project_edit(|copy| {
        std::fs::write(copy.file("flows/Kixie_Send.yaml"), KIXIE_SEND).unwrap();
    });
    let h = tokio::task::spawn_blocking(|| setup.start()).await.unwrap();
    h.add_user("ada", &["Herald_Admin"]);
    set_password(&h, "ada");

    // Kixie takes the text but the answer is cut: the run ends unknown.
    let faults = "/_sandbox/faults/apig.kixie.com";
    h.sandbox_put(faults, &json!({"reset_rate": 1})).await;
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "Retry", "Phone": "+14155550100"})).await;
    h.sandbox_put(faults, &json!({})).await;
    assert_eq!(run["status"], "unknown", "{run}");
    let run_id = run["id"].as_str().unwrap().to_string();

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h, "ada").await;

    // The run's page → Retry… → the confirmation says what may be sent twice → Retry.
    client.goto(&h.url(&format!("/console/runs/{run_id}"))).await.unwrap();
    client.find(Locator::LinkText("Retry…")).await.unwrap().click().await.unwrap();
    let confirm = text_of(&client, "main").await;
    snap(&client, "retry").await;
    assert!(confirm.contains("+14155550100 may receive this message twice"), "{confirm}");
    let mut sources = vec![client.source().await.unwrap()];
    client.find(Locator::Css("form.retry button[type=submit]")).await.unwrap().click().await.unwrap();
    arrives(&client, |path| path.ends_with(&format!("/console/runs/{run_id}"))).await;
    let page = text_of(&client, "main").await;
    assert!(page.contains("Retried: the run goes on from Send_SMS"), "{page}");
    assert_eq!(h.finished_run(&run_id).await["status"], "finished");

    // Debug → pick Kixie_Send → its phone → run: the trace ends "All done.".
    client.find(Locator::LinkText("Debug")).await.unwrap().click().await.unwrap();
    let pick = client.find(Locator::Css("form.pick select[name=flow]")).await.unwrap();
    pick.select_by_value("Kixie_Send").await.unwrap();
    client.find(Locator::Css("form.pick button[type=submit]")).await.unwrap().click().await.unwrap();
    let phone = client.find(Locator::Css("input[name='input.phone']")).await.unwrap();
    phone.send_keys("+14155550100").await.unwrap();
    client.find(Locator::Css("form.debug button[type=submit]")).await.unwrap().click().await.unwrap();
    let result = text_of(&client, "section.debug-result").await;
    snap(&client, "debug").await;
    for shown in ["Send_SMS", "apikey", "••••••", "code", "200", "All done."] {
        assert!(result.contains(shown), "{shown} in the debug result: {result}");
    }
    sources.push(client.source().await.unwrap());
    client.close().await.unwrap();
    for (_, secret) in sandbox_account("kixie-welcome-sms").credentials {
        assert!(sources.iter().all(|source| !source.contains(secret)), "a secret on a console page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_finds_the_task_a_failed_text_left_through_records_and_the_text_through_messages_in_chromium()
{
    let Some((chromium, chromedriver)) = browser() else { return };
    const WRONG_KEY: &str = "browser-wrong-apikey-2f8e";
    let h = tokio::task::spawn_blocking(|| {
        Harness::example("kixie-welcome-sms")
            .sandbox_account()
            .credential(["Kixie_API_Auth", "Kixie_Principal", "apikey"], WRONG_KEY)
            .start()
    })
    .await
    .unwrap();
    set_password(&h, "webform");
    // The text fails on the wrong key; the flow's fault path logs a Task pointing to the lead.
    let run = h.lead_run(json!({"FirstName": "Ada", "LastName": "Browserby", "Phone": "+14155550100"})).await;
    let lead = run["recordId"].as_str().unwrap_or_else(|| panic!("a lead: {run}")).to_string();

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h, "webform").await;

    // The run's page → its record → the Task in the record's related list.
    let run_id = run["id"].as_str().unwrap();
    client.goto(&h.url(&format!("/console/runs/{run_id}"))).await.unwrap();
    let lead_link = format!("a[href='/console/records/Lead/{lead}']");
    client.find(Locator::Css(&lead_link)).await.expect("the run links to its record").click().await.unwrap();
    arrives(&client, |path| path.ends_with(&format!("/console/records/Lead/{lead}"))).await;
    let lead_page = text_of(&client, "main").await;
    snap(&client, "lead").await;
    for shown in ["Ada Browserby", "Runs it started", "Lead_Welcome_SMS", "Related", "WhoId"] {
        assert!(lead_page.contains(shown), "{shown} on the lead's page: {lead_page}");
    }
    client
        .find(Locator::Css("section.related a[href^='/console/records/Task/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives(&client, |path| path.starts_with("/console/records/Task/")).await;
    let task_page = text_of(&client, "main").await;
    assert!(task_page.contains("SMS failed"), "the fault path's Task: {task_page}");
    client.find(Locator::Css(&lead_link)).await.expect("the Task links back to its lead");

    // Records → Lead lists the lead.
    client.find(Locator::LinkText("Records")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css("a[href='/console/records/Lead']")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css(&lead_link)).await.unwrap_or_else(|e| panic!("lead {lead} listed: {e}"));

    // Messages → the message: where it went, and its status history.
    client.find(Locator::LinkText("Messages")).await.unwrap().click().await.unwrap();
    text_when_shown(&client, "table.messages").await;
    snap(&client, "messages").await;
    client
        .find(Locator::Css("table.messages tbody td a[href^='/console/messages/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let message_page = text_of(&client, "main").await;
    snap(&client, "message").await;
    for shown in ["+14155550100", "kixie", "Status history", "Idempotency key"] {
        assert!(message_page.contains(shown), "{shown} on the message's page: {message_page}");
    }
    for page in [&lead_page, &task_page, &message_page] {
        assert!(!page.contains(WRONG_KEY), "no secret on a page");
    }
    assert!(client.get_alert_text().await.is_err(), "no script ran");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_a_credential_value_then_creates_and_revokes_a_token_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let h = tokio::task::spawn_blocking(|| Harness::example("kixie-welcome-sms").sandbox_account().start())
        .await
        .unwrap();
    h.add_user("ops", &["Herald_Admin", "Kixie_Integration_User"]);
    set_password(&h, "ops");

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h, "ops").await;

    // Credentials: the sandbox's apikey, typed into its write-only field, is stored and used.
    client.wait().for_element(Locator::LinkText("Credentials")).await.unwrap().click().await.unwrap();
    let apikey_form = "form.value:has(input[name=parameter][value=apikey])";
    let field_css = format!("{apikey_form} input[name=value]");
    let field = client.wait().for_element(Locator::Css(&field_css)).await.unwrap();
    assert_eq!(field.attr("type").await.unwrap().as_deref(), Some("password"));
    assert_eq!(field.attr("autocomplete").await.unwrap().as_deref(), Some("off"));
    field.send_keys("sandbox-apikey").await.unwrap();
    client.find(Locator::Css(&format!("{apikey_form} button"))).await.unwrap().click().await.unwrap();
    let notice = text_when_shown(&client, "p.notice").await;
    assert_eq!(notice, "apikey of Kixie_API_Auth/Kixie_Principal set");
    snap(&client, "credentials").await;
    let apikey_state = text_of(&client, "li.parameter:has(input[name=parameter][value=apikey]) .state").await;
    assert!(apikey_state.contains("set"), "{apikey_state}");
    let source = client.source().await.unwrap();
    assert!(!source.contains("sandbox-apikey"), "the value is never shown: {source}");
    assert!(!client.current_url().await.unwrap().as_str().contains("sandbox-apikey"));
    let run = h.lead_run(json!({"LastName": "Browser", "Phone": "+14155550100"})).await;
    assert_eq!(run["status"], "finished", "the key set in the browser works: {run}");
    assert!(!run["trace"][0]["result"].as_str().unwrap_or("").starts_with("fault"), "{run}");

    // Users: a token for webform, shown once, works; revoked, it gets 401.
    client.find(Locator::LinkText("Users")).await.unwrap().click().await.unwrap();
    let create =
        "section.user:has(input[name=user][value=webform]) form[action='/console/users/token'] button";
    client.wait().for_element(Locator::Css(create)).await.unwrap().click().await.unwrap();
    let token = text_when_shown(&client, "#new-token").await;
    assert!(token.starts_with("hrld_"), "{token}");
    assert!(text_of(&client, "main").await.contains("it will not be shown again"));
    let token_id = text_of(&client, "code.token-id").await;
    let runs = |token: String| {
        let (client, url) = (h.plain().clone(), h.url("/api/v1/runs"));
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(runs(token.clone()).await, 200, "the new token signs in to the API");

    client.wait().for_element(Locator::LinkText("Back to Users")).await.unwrap().click().await.unwrap();
    let revoke = format!("a.revoke[href='/console/users/revoke?token={token_id}']");
    let revoke = client.wait().for_element(Locator::Css(&revoke)).await.unwrap();
    let page = client.source().await.unwrap();
    assert!(!page.contains(&token), "the Users page never shows a token");
    revoke.click().await.unwrap();
    assert!(text_when_shown(&client, "form.confirm").await.contains("Revoke"));
    assert!(text_of(&client, "main").await.contains("webform"), "the confirmation names whose token it is");
    client
        .wait()
        .for_element(Locator::Css("form.confirm button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_when_shown(&client, "p.notice").await, format!("Token {token_id} revoked."));
    assert_eq!(runs(token).await, 401, "the revoked token is refused");
    h.get("/api/v1/runs").await; // the harness's own token of webform still works (200)
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_opens_a_flow_and_clicks_an_element_in_its_diagram_to_see_its_configuration_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let h = served().await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h, "webform").await;

    // The Flows list, from the header: the example's flow and how it starts.
    client.find(Locator::LinkText("Flows")).await.unwrap().click().await.unwrap();
    arrives(&client, |path| path.ends_with("/console/flows")).await;
    let list = text_of(&client, "table.flows").await;
    for shown in
        ["Lead_Welcome_SMS", "Record-triggered: Lead", "A record is created", "Follow up after 1 hour"]
    {
        assert!(list.contains(shown), "{shown} in the list: {list}");
    }
    client
        .find(Locator::Css("a[href='/console/flows/Lead_Welcome_SMS']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The flow as a diagram: a box per element (and Start), its fault connectors drawn.
    arrives(&client, |path| path.ends_with("/console/flows/Lead_Welcome_SMS")).await;
    assert_eq!(client.find_all(Locator::Css("svg.flow-diagram a.node-link")).await.unwrap().len(), 6);
    assert_eq!(client.find_all(Locator::Css("svg.flow-diagram g.edge.fault")).await.unwrap().len(), 2);
    assert!(
        client.find_all(Locator::Css("#element dl.config")).await.unwrap().is_empty(),
        "nothing chosen yet"
    );

    // A click on Send_SMS's box: its configuration, and the box highlighted.
    client
        .find(Locator::Css("svg.flow-diagram g.node[data-element='Send_SMS']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives(&client, |_| true).await;
    let panel = text_when_shown(&client, "#element dl.config").await;
    assert!(panel.contains("KixieService.Send_SMS"), "{panel}");
    let url = client.current_url().await.unwrap();
    assert_eq!(url.query(), Some("element=Send_SMS"), "{url}");
    let panel = text_of(&client, "#element").await;
    snap(&client, "flow").await;
    for shown in [
        "Send SMS",
        "KixieService.Send_SMS",
        "{!$Credential.Kixie_API_Auth.apikey}",
        "Mark_Lead_Texted",
        "Log_SMS_Failure",
        "fault: Log_SMS_Failure",
    ] {
        assert!(panel.contains(shown), "{shown} in the panel: {panel}");
    }
    let selected = client.find(Locator::Css("svg.flow-diagram g.node.selected")).await.unwrap();
    assert_eq!(selected.attr("data-element").await.unwrap().as_deref(), Some("Send_SMS"));

    // Its fault path leads to the element it names.
    client.find(Locator::Css("#element .fault a")).await.unwrap().click().await.unwrap();
    assert_eq!(client.current_url().await.unwrap().query(), Some("element=Log_SMS_Failure"));
    assert!(text_of(&client, "#element").await.contains("Create Records"));
    client.close().await.unwrap();
}
