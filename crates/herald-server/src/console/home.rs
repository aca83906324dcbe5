//! The home page: is herald texting leads, how fast, and what needs a look. Speed to lead over the
//! last hour and day as p50/p99 charts, records, runs and messages per minute, and the failures and
//! runs needing a person, each a link to the list behind it. The figures need the `read_runs` scope,
//! as the runs and messages they count do; without it the page says who is signed in and no more.

use super::charts::{Series, bar_chart, figure, line_chart};
use super::pages::{Viewer, layout};
use super::{Session, failure};
use crate::error::ApiError;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use herald_engine::{Activity, Engine, SPEED_SAMPLE_LIMIT, Slot, Speed, totals};
use herald_project::ApiScope;
use maud::{Markup, html};

/// `GET /console`.
pub(super) async fn home(State(engine): State<Engine>, session: Session) -> Response {
    let scopes: Vec<&str> = engine.scopes(&session.user).iter().map(|scope| scope.name()).collect();
    let activity = if crate::auth::require_scope(&engine, &session.user, ApiScope::ReadRuns).is_ok() {
        match engine.activity(chrono::Utc::now()).await {
            Ok(activity) => Some(activity),
            Err(error) => return failure(ApiError::from(error)),
        }
    } else {
        None
    };
    Html(page(&session.view(), &scopes, activity.as_ref()).into_string()).into_response()
}

fn page(viewer: &Viewer<'_>, scopes: &[&str], activity: Option<&Activity>) -> Markup {
    layout(
        Some(viewer),
        "Home",
        html! {
            h1 { "herald" }
            p.who-line {
                "Signed in as " strong { (viewer.user) } ". API scopes: "
                @if scopes.is_empty() { "none" } @else { (scopes.join(", ")) } "."
            }
            @match activity {
                Some(activity) => (dashboard(activity)),
                None => p.hint { "The figures of runs and messages need the read_runs API scope." },
            }
        },
    )
}

fn dashboard(activity: &Activity) -> Markup {
    let hour = totals(&activity.hour);
    let day = totals(&activity.day);
    let minutes: Vec<String> =
        activity.hour.iter().map(|slot| slot.start.format("%H:%M").to_string()).collect();
    let hours: Vec<String> = activity.day.iter().map(|slot| slot.start.format("%H:00").to_string()).collect();
    html! {
        section.tiles aria-label="The last hour and day" {
            (tile_speed("Speed to lead, last hour", activity.hour_speed))
            (tile_speed("Speed to lead, last 24 hours", activity.day_speed))
            (tile("Records created, last hour", hour.records_total(), None, &by_key(&hour.records)))
            (tile("Runs, last hour", hour.runs_total(), Some("/console/runs"), ""))
            (tile("Failed runs, last 24 hours", day.runs_failed(), Some("/console/runs?status=failed"), "Runs that ended on a fault with no fault path, or whose fault path failed."))
            (tile("Runs needing a person, last 24 hours", day.runs_unknown(), Some("/console/runs?status=unknown"), "A send whose outcome is unknown: it may have been delivered. Look before retrying."))
            (tile("Messages, last hour", hour.messages_total(), Some("/console/messages"), ""))
            (tile("Messages not sent, last 24 hours", day.messages_not_sent(), Some("/console/messages?status=failed"), "Refused, failed or undelivered, as the provider said."))
        }
        @if activity.sampled {
            p.hint { "More than " (SPEED_SAMPLE_LIMIT) " messages in the last 24 hours: the day's speed to lead is that of the newest leads." }
        }
        section.charts {
            (line_chart("Speed to lead, last hour (per minute)", &minutes, &speed_series(&activity.hour), " ms"))
            (line_chart("Speed to lead, last 24 hours (per hour)", &hours, &speed_series(&activity.day), " ms"))
            (bar_chart("Records created per minute", &minutes, &[Series { label: "records", class: "count", values: counts(&activity.hour, Slot::records_total) }], ""))
            (bar_chart("Runs per minute", &minutes, &[
                Series { label: "ended well or still going", class: "count", values: counts(&activity.hour, |slot| slot.runs_total() - slot.runs_failed() - slot.runs_unknown()) },
                Series { label: "unknown", class: "warn", values: counts(&activity.hour, Slot::runs_unknown) },
                Series { label: "failed", class: "bad", values: counts(&activity.hour, Slot::runs_failed) },
            ], ""))
            (bar_chart("Messages per minute", &minutes, &[
                Series { label: "sent or on their way", class: "count", values: counts(&activity.hour, |slot| slot.messages_total() - slot.messages_not_sent()) },
                Series { label: "not sent", class: "bad", values: counts(&activity.hour, Slot::messages_not_sent) },
            ], ""))
        }
        p.hint {
            "Speed to lead: from a record's creation to the provider's answer accepting the first text its flows sent. "
            "Counts are of what was created in each minute or hour, by its status now."
        }
    }
}

fn speed_series(slots: &[Slot]) -> [Series<'static>; 2] {
    [
        Series {
            label: "p50",
            class: "p50",
            values: slots.iter().map(|slot| slot.speed.map(|s| s.p50_ms)).collect(),
        },
        Series {
            label: "p99",
            class: "p99",
            values: slots.iter().map(|slot| slot.speed.map(|s| s.p99_ms)).collect(),
        },
    ]
}

fn counts(slots: &[Slot], count: impl Fn(&Slot) -> i64) -> Vec<Option<f64>> {
    slots.iter().map(|slot| Some(count(slot) as f64).filter(|value| *value > 0.0)).collect()
}

/// `Lead 12, Task 1`.
fn by_key(counts: &std::collections::BTreeMap<String, i64>) -> String {
    counts.iter().map(|(key, count)| format!("{key} {count}")).collect::<Vec<_>>().join(", ")
}

fn tile(title: &str, value: i64, link: Option<&str>, note: &str) -> Markup {
    html! {
        div.tile {
            h2 { (title) }
            p.figure {
                @match link {
                    Some(link) => a href=(link) { (value) },
                    None => (value),
                }
            }
            @if !note.is_empty() { p.note { (note) } }
        }
    }
}

fn tile_speed(title: &str, speed: Option<Speed>) -> Markup {
    html! {
        div.tile {
            h2 { (title) }
            @match speed {
                Some(speed) => {
                    p.figure { "p50 " (figure(speed.p50_ms)) " ms" }
                    p.note { "p99 " (figure(speed.p99_ms)) " ms over " (speed.leads) @if speed.leads == 1 { " lead" } @else { " leads" } }
                }
                None => p.figure.none { "no leads texted" },
            }
        }
    }
}
