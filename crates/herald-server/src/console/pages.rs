//! The console's pages, as maud templates: every `(value)` spliced into a page is HTML-escaped, so a
//! Lead named `<script>…` or a provider's error body full of markup shows as text. Nothing here
//! writes raw HTML (`PreEscaped`) from a value.

use herald_store::{RunRow, RunStatus};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// Who is looking: shown in the header, with the sign-out form (which carries the CSRF token).
pub(crate) struct Viewer<'a> {
    pub user: &'a str,
    pub csrf_token: &'a str,
}

/// Every status a run can have, in the order the filter offers them.
const STATUSES: [RunStatus; 7] = [
    RunStatus::Ready,
    RunStatus::Running,
    RunStatus::Waiting,
    RunStatus::Finished,
    RunStatus::Failed,
    RunStatus::Unknown,
    RunStatus::Skipped,
];

/// The console's sections, in the order of the header's navigation: (label, path).
const SECTIONS: &[(&str, &str)] = &[
    ("Home", "/console"),
    ("Runs", "/console/runs"),
    ("Flows", "/console/flows"),
    ("Messages", "/console/messages"),
    ("Consent", "/console/consent"),
    ("Records", "/console/records"),
    ("Credentials", "/console/credentials"),
    ("Users", "/console/users"),
    ("Debug", "/console/debug"),
];

/// Every page's frame: the header (navigation and sign-out, when someone is signed in) and `body`.
pub(crate) fn layout(viewer: Option<&Viewer<'_>>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · herald" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/console" { "herald" }
                    @if let Some(viewer) = viewer {
                        nav {
                            @for (label, path) in SECTIONS {
                                a href=(path) { (label) }
                            }
                        }
                        form.signout method="post" action="/console/logout" {
                            span.who { (viewer.user) }
                            input type="hidden" name="csrf" value=(viewer.csrf_token);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn login(problem: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            form.signin method="post" action="/console/login" {
                label { "User name" input type="text" name="user" autocomplete="username" autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password"; }
                p.or { "or" }
                label { "API token" input type="password" name="token" autocomplete="off" placeholder="hrld_…"; }
                button type="submit" { "Sign in" }
            }
            p.hint {
                "Set a password with " code { "herald user password NAME" } ", or paste a token from "
                code { "herald token create NAME" } "."
            }
        },
    )
}

/// A page that says one thing (a refusal, a run that does not exist), inside the layout.
pub(crate) fn message_page(viewer: &Viewer<'_>, title: &str, message: &str) -> Markup {
    layout(Some(viewer), title, html! { h1 { (title) } p.problem { (message) } })
}

/// A page that says one thing, for a request without a session.
pub(crate) fn bare_message_page(title: &str, message: &str) -> Markup {
    layout(
        None,
        title,
        html! { h1 { (title) } p.problem { (message) } p { a href="/console" { "Back to the console" } } },
    )
}

/// What the Runs page shows.
pub(crate) struct RunsView<'a> {
    pub runs: &'a [RunRow],
    pub flows: &'a [String],
    pub flow: Option<&'a str>,
    pub status: Option<RunStatus>,
    pub record: Option<&'a str>,
    /// The time filter as the form gave it (`2026-12-03T15:04`, UTC).
    pub before: Option<&'a str>,
    /// Whether this page starts after a cursor (so it is not the newest page).
    pub paged: bool,
    /// The cursor of the next (older) page, when there is one.
    pub next: Option<String>,
}

impl RunsView<'_> {
    /// The link to the same filter, from the newest run (`after` none) or after a cursor.
    fn page_link(&self, after: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(flow) = self.flow {
            query.append_pair("flow", flow);
        }
        if let Some(status) = self.status {
            query.append_pair("status", status.as_str());
        }
        if let Some(record) = self.record {
            query.append_pair("record", record);
        }
        if let Some(before) = self.before {
            query.append_pair("before", before);
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        format!("/console/runs?{}", query.finish())
    }
}

pub(crate) fn runs(viewer: &Viewer<'_>, view: &RunsView<'_>) -> Markup {
    layout(
        Some(viewer),
        "Runs",
        html! {
            h1 { "Runs" }
            form.filter method="get" action="/console/runs" {
                label { "Flow "
                    select name="flow" {
                        option value="" { "All flows" }
                        @for flow in view.flows {
                            option value=(flow) selected[view.flow == Some(flow.as_str())] { (flow) }
                        }
                    }
                }
                label { "Status "
                    select name="status" {
                        option value="" { "Any status" }
                        @for status in STATUSES {
                            option value=(status.as_str()) selected[view.status == Some(status)] { (status.as_str()) }
                        }
                    }
                }
                label { "Started before (UTC) "
                    input type="datetime-local" name="before" value=[view.before];
                }
                @if let Some(record) = view.record {
                    input type="hidden" name="record" value=(record);
                    span.record-filter { "Record " code { (record) } " " a href="/console/runs" { "(all records)" } }
                }
                button type="submit" { "Filter" }
            }
            @if view.runs.is_empty() {
                p.empty { "No runs match." }
            } @else {
                table.runs {
                    thead { tr { th { "Started" } th { "Flow" } th { "Status" } th { "Record" } th { "Fault" } } }
                    tbody {
                        @for run in view.runs {
                            tr {
                                td { a href=(format!("/console/runs/{}", url_segment(&run.id))) { (run.created_at) } }
                                td { a href=(flow_link(&run.flow)) { (run.flow) } }
                                td { span class=(format!("status {}", run.status.as_str())) { (run.status.as_str()) } }
                                td { (run.object) " " code { (run.record_id) } }
                                td.fault { (run.fault.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if view.paged { a rel="first" href=(view.page_link(None)) { "← Newest" } }
                @if let Some(next) = &view.next { a rel="next" href=(view.page_link(Some(next))) { "Older →" } }
            }
        },
    )
}

/// A run as [`crate::run_json`] shows it to the API: the same fields, the same masked trace. With
/// `retry`, a link to retry it (see `retry.rs`); `retried` is the element a retry just went on from.
pub(crate) fn run(viewer: &Viewer<'_>, run: &Value, retry: bool, retried: Option<&str>) -> Markup {
    let text = |key: &str| run[key].as_str().unwrap_or("").to_string();
    let trace = run["trace"].as_array().cloned().unwrap_or_default();
    let record_runs = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("record", &text("recordId"));
        format!("/console/runs?{}", query.finish())
    };
    layout(
        Some(viewer),
        &format!("Run {}", text("id")),
        html! {
            h1 { "Run " code { (text("id")) } }
            @if let Some(element) = retried {
                p.notice role="status" { "Retried: the run goes on from " code { (element) } ". Reload to follow it." }
            }
            @if retry {
                p.actions { a.button href=(format!("/console/runs/{}/retry", url_segment(&text("id")))) { "Retry…" } }
            }
            dl.run {
                dt { "Status" } dd { span class=(format!("status {}", text("status"))) { (text("status")) } }
                dt { "Flow" } dd { a href=(flow_link(&text("flow"))) { (text("flow")) } }
                dt { "Record" } dd {
                    (text("object")) " "
                    @if text("recordId").is_empty() {
                        "(none: an autolaunched flow)"
                    } @else {
                        a href=(format!("/console/records/{}/{}", url_segment(&text("object")), url_segment(&text("recordId")))) { code { (text("recordId")) } }
                        " " a href=(record_runs) { "runs of this record" }
                    }
                }
                dt { "Started" } dd { (text("createdAt")) }
                dt { "Updated" } dd { (text("updatedAt")) }
                @if let Some(next) = run["nextAttemptAt"].as_str() { dt { "Next attempt" } dd { (next) } }
                @if let Some(interview) = run["interviewId"].as_str() { dt { "Interview" } dd { code { (interview) } } }
                @if let Some(version) = run["version"].as_i64() { dt { "Project version" } dd { (version) } }
                @if let Some(fault) = run["fault"].as_str() { dt { "Fault" } dd.fault { (fault) } }
            }
            h2 { "Trace" }
            @if trace.is_empty() {
                p.empty { "No element has run yet." }
            } @else {
                ol.trace {
                    @for entry in &trace {
                        li.element {
                            h3 {
                                (entry["element"].as_str().unwrap_or(""))
                                @if let Some(label) = entry["label"].as_str().filter(|label| !label.is_empty() && Some(*label) != entry["element"].as_str()) {
                                    " " span.label { "(" (label) ")" }
                                }
                                " " span.kind { (entry["kind"].as_str().unwrap_or("")) }
                            }
                            p.timing {
                                (entry["at"].as_str().unwrap_or("")) " · "
                                (milliseconds(&entry["micros"])) " · "
                                span.result { (entry["result"].as_str().unwrap_or("")) }
                            }
                            @if let Some(fault) = entry["fault"].as_str() { p.fault { (fault) } }
                            div.io {
                                section { h4 { "Inputs" } pre { (pretty(&entry["inputs"])) } }
                                section { h4 { "Outputs" } pre { (pretty(&entry["outputs"])) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// An element's duration (microseconds in the trace) as people read it.
fn milliseconds(micros: &Value) -> String {
    let micros = micros.as_u64().unwrap_or(0);
    format!("{:.1} ms", micros as f64 / 1000.0)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters (run ids are `run_` and
/// alphanumerics); anything else is encoded, not trusted.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A flow's page (`/console/flows/NAME`).
pub(crate) fn flow_link(flow: &str) -> String {
    format!("/console/flows/{}", url_segment(flow))
}

/// A run id, a flow name or any value as one path segment.
pub(crate) fn url_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}
