//! The console in a real browser: Debian's Chromium, driven through WebDriver (`chromedriver`) by
//! fantoccini, against a real `herald serve` and sandbox that the harness starts. It signs in with a
//! password set by `herald user password`, posts a lead through the API, finds its run in the Runs
//! page, opens it and sees its trace, and signs out; and it opens the Flows list, opens a flow, clicks
//! an element's box in the diagram and sees that element's configuration.
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
                 format!("--user-data-dir={}", profile.display())],
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

/// The harness on the Kixie example, with `webform`'s password set by `herald user password`.
async fn served() -> Harness {
    let h = tokio::task::spawn_blocking(|| Harness::example("kixie-welcome-sms").sandbox_account().start())
        .await
        .unwrap();
    let location = ["--project", h.project().to_str().unwrap(), "--db", h.db().to_str().unwrap()];
    let (code, stdout, stderr) =
        herald(&[&["user", "password", "webform"][..], &location].concat(), &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    h
}

/// Signs `webform` in through the form: /console sends the browser to it.
async fn sign_in(client: &Client, h: &Harness) {
    client.goto(&h.url("/console")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/login"));
    client.find(Locator::Css("input[name=user]")).await.unwrap().send_keys("webform").await.unwrap();
    client.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Css("form.signin button[type=submit]")).await.unwrap().click().await.unwrap();
    assert!(text_of(client, "main").await.contains("Signed in as webform"));
}

async fn text_of(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_finds_a_posted_leads_run_and_its_trace_and_signs_out_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let h = served().await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h).await;

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
    assert!(client.current_url().await.unwrap().path().ends_with(&format!("/console/runs/{run_id}")));
    let page = text_of(&client, "main").await;
    for shown in ["finished", "Lead_Welcome_SMS", "Send_SMS", "Inputs", "Outputs", SCRIPT, "••••••"]
    {
        assert!(page.contains(shown), "{shown} on the run page: {page}");
    }
    assert!(client.get_alert_text().await.is_err(), "no script from the lead's name ran");

    // Sign out: back to the sign-in form, and the console needs signing in again.
    client.find(Locator::Css("form.signout button")).await.unwrap().click().await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/login"));
    client.goto(&h.url("/console/runs")).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/login"), "signed out");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_opens_a_flow_and_clicks_an_element_in_its_diagram_to_see_its_configuration_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let h = served().await;
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;
    sign_in(&client, &h).await;

    // The Flows list, from the header: the example's flow and how it starts.
    client.find(Locator::LinkText("Flows")).await.unwrap().click().await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/flows"));
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
    assert!(client.current_url().await.unwrap().path().ends_with("/console/flows/Lead_Welcome_SMS"));
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
    let url = client.current_url().await.unwrap();
    assert_eq!(url.query(), Some("element=Send_SMS"), "{url}");
    let panel = text_of(&client, "#element").await;
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
