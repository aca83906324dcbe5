//! The console's Records pages: the project's objects, an object's records (newest first, paged by
//! keyset on the server, searchable by one field as SOQL compares it), and a record with its fields,
//! the runs it started and the records of other objects that point to it. The related lists are how
//! an admin finds what a flow did about a record, such as the Task its fault path created with
//! `WhoId` set to the Lead. Everything here needs `read_records`, as the API's record routes do.

use super::pages::{Viewer, layout, message_page, url_segment};
use super::{Session, failure};
use crate::error::ApiError;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use herald_engine::{Engine, EngineError};
use herald_flow::RecordQuery;
use herald_project::{ApiScope, FieldDef, FieldType, ObjectDef, Project, STANDARD_FIELDS, did_you_mean};
use herald_store::{RunRow, StoredRecord};
use maud::{Markup, html};
use serde_json::{Map, Value};

/// Records shown on one page of an object's records.
const RECORDS_PER_PAGE: usize = 50;

/// Records shown in one related list; past it the page says there are more.
const RELATED_SHOWN: usize = 50;

/// Runs of a record shown on its page (the newest); the Runs page lists them all.
const RUNS_SHOWN: usize = 50;

/// Fields of an object's own shown as columns of its records.
const COLUMNS: usize = 4;

/// Fields that name a record, shown first in that order (Salesforce's name fields and the like).
const NAME_LIKE: [&str; 9] =
    ["Name", "FirstName", "LastName", "Subject", "Title", "Company", "Email", "Phone", "Status"];

pub(super) fn routes() -> Router<Engine> {
    Router::new()
        .route("/console/records", get(objects))
        .route("/console/records/{object}", get(records))
        .route("/console/records/{object}/{id}", get(record))
}

fn object_link(object: &str) -> String {
    format!("/console/records/{}", url_segment(object))
}

fn record_link(object: &str, id: &str) -> String {
    format!("/console/records/{}/{}", url_segment(object), url_segment(id))
}

fn label_of<'a>(object: &'a str, def: &'a ObjectDef) -> &'a str {
    def.label.as_deref().unwrap_or(object)
}

/// A field's value as text: text as it is, an empty field as nothing, anything else as JSON.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The fields shown as an object's columns: name-like ones first, then the others as declared.
fn columns(def: &ObjectDef) -> Vec<String> {
    let mut columns: Vec<String> = NAME_LIKE
        .iter()
        .filter(|name| def.fields.contains_key(**name))
        .map(|name| name.to_string())
        .collect();
    columns.extend(def.fields.keys().filter(|name| !NAME_LIKE.contains(&name.as_str())).cloned());
    columns.truncate(COLUMNS);
    columns
}

/// Every field of an object a search may name: the standard ones, then its own.
fn searchable(def: &ObjectDef) -> Vec<(String, FieldType)> {
    let mut fields: Vec<(String, FieldType)> =
        STANDARD_FIELDS.iter().map(|(name, ty)| (name.to_string(), *ty)).collect();
    fields.extend(def.fields.iter().map(|(name, field)| (name.clone(), field.field_type)));
    fields
}

/// The page for an object the project does not define: 404, with the closest name.
fn unknown_object(session: &Session, project: &Project, object: &str) -> Response {
    let mut message = format!("The project defines no object {object}.");
    if let Some(hint) = did_you_mean(object, project.objects.keys().map(String::as_str)) {
        message.push_str(&format!(" {}", capitalised(&hint)));
    }
    let page = message_page(&session.view(), "Object not found", &message);
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `GET /console/records`: the project's objects.
async fn objects(State(engine): State<Engine>, session: Session) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRecords) {
        return refused;
    }
    let project = engine.project();
    let page = layout(
        Some(&session.view()),
        "Records",
        html! {
            h1 { "Records" }
            @if project.project.objects.is_empty() {
                p.empty { "The project defines no object." }
            } @else {
                div.scroll {
                    table.listing.objects {
                        thead { tr { th { "Object" } th { "API name" } th { "Key prefix" } th { "Fields" } } }
                        tbody {
                            @for (name, object) in &project.project.objects {
                                tr {
                                    td { a href=(object_link(name)) { (label_of(name, &object.def)) } }
                                    td { code { (name) } }
                                    td { code { (object.def.key_prefix.as_deref().unwrap_or("")) } }
                                    td { (object.def.fields.len()) }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    Html(page.into_string()).into_response()
}

#[derive(serde::Deserialize, Default)]
struct RecordsQuery {
    field: Option<String>,
    value: Option<String>,
    /// The keyset of a page of all records: the position of the last record of the page before.
    before: Option<i64>,
    /// The page of a search's matches.
    page: Option<usize>,
}

/// The records a page of an object shows.
enum Listing {
    /// Every record, newest first; `next`: the position the next page starts before.
    All { records: Vec<Map<String, Value>>, paged: bool, next: Option<i64> },
    /// The records whose `field` equals `value`, newest first, a page of them.
    Search {
        field: String,
        value: String,
        problem: Option<String>,
        records: Vec<Map<String, Value>>,
        page: usize,
        more: bool,
    },
}

/// `GET /console/records/{object}?field=&value=&before=&page=`.
async fn records(
    State(engine): State<Engine>,
    session: Session,
    Path(object): Path<String>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRecords) {
        return refused;
    }
    let compiled = engine.project();
    let project = &compiled.project;
    let Some(def) = project.objects.get(&object).map(|located| &located.def) else {
        return unknown_object(&session, project, &object);
    };
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let field = query.field.filter(|field| !field.trim().is_empty());
    let value = query.value.filter(|value| !value.trim().is_empty());
    let listing = match (field, value) {
        (Some(field), Some(value)) => {
            search(&engine, &object, def, &field, &value, query.page.unwrap_or(1).max(1)).await
        }
        _ => every_record(&engine, &object, query.before).await,
    };
    match listing {
        Ok(listing) => {
            Html(records_page(&session.view(), &object, def, &listing).into_string()).into_response()
        }
        Err(error) => failure(ApiError::from(error)),
    }
}

async fn every_record(engine: &Engine, object: &str, before: Option<i64>) -> Result<Listing, EngineError> {
    // One more than a page tells whether there is an older page.
    let mut page = engine.store().records_newest_first(object, before, RECORDS_PER_PAGE as i64 + 1).await?;
    let more = page.len() > RECORDS_PER_PAGE;
    page.truncate(RECORDS_PER_PAGE);
    let next = page.last().filter(|_| more).map(|last| last.position);
    let records = page
        .into_iter()
        .map(|at| {
            // The id is the row's key; a record's data need not repeat it.
            let mut data = at.record.data;
            data.insert("Id".into(), Value::String(at.record.id));
            data
        })
        .collect();
    Ok(Listing::All { records, paged: before.is_some(), next })
}

/// The records of `object` whose `field` equals `value` as a Get Records condition holds it (text
/// without regard to case), read as a Get Records reads them: every record of the object passes
/// through the matcher, and only the matches' shown fields are kept.
async fn search(
    engine: &Engine,
    object: &str,
    def: &ObjectDef,
    field: &str,
    value: &str,
    page: usize,
) -> Result<Listing, EngineError> {
    let refused = |field: &str, problem: String| Listing::Search {
        field: field.to_string(),
        value: value.to_string(),
        problem: Some(problem),
        records: Vec::new(),
        page: 1,
        more: false,
    };
    let Some((name, ty)) = searchable(def).into_iter().find(|(name, _)| name.eq_ignore_ascii_case(field))
    else {
        return Ok(refused(field, format!("{object} has no field {field}.")));
    };
    let matcher = match RecordQuery::field_equals(object, &name, ty, value.trim()) {
        Ok(matcher) => matcher,
        Err(problem) => return Ok(refused(&name, problem)),
    };
    let mut kept: Vec<String> = vec!["Id".into(), "CreatedDate".into(), name.clone()];
    kept.extend(columns(def));
    let mut found = engine
        .store()
        .select_records(object, None, false, move |record| {
            matcher.matches(&record).then(|| {
                record.into_iter().filter(|(field, _)| kept.contains(field)).collect::<Map<String, Value>>()
            })
        })
        .await?;
    found.reverse();
    let more = found.len() > page * RECORDS_PER_PAGE;
    let records = found.into_iter().skip((page - 1) * RECORDS_PER_PAGE).take(RECORDS_PER_PAGE).collect();
    Ok(Listing::Search { field: name, value: value.to_string(), problem: None, records, page, more })
}

/// A link to another page of an object's records.
fn records_link(object: &str, pairs: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    format!("{}?{}", object_link(object), query.finish())
}

/// Records as a table: the Id (a link), the given columns and when each was created.
fn records_table(object: &str, columns: &[String], records: &[Map<String, Value>]) -> Markup {
    html! {
        div.scroll {
            table.listing.records {
                thead { tr {
                    th { "Id" }
                    @for column in columns { th { (column) } }
                    th { "Created" }
                } }
                tbody {
                    @for record in records {
                        @let id = shown(record.get("Id"));
                        tr {
                            td { a href=(record_link(object, &id)) { code { (id) } } }
                            @for column in columns { td { (shown(record.get(column))) } }
                            td { (shown(record.get("CreatedDate"))) }
                        }
                    }
                }
            }
        }
    }
}

fn records_page(viewer: &Viewer<'_>, object: &str, def: &ObjectDef, listing: &Listing) -> Markup {
    let columns = columns(def);
    let (field, value) = match listing {
        Listing::Search { field, value, .. } => (field.as_str(), value.as_str()),
        Listing::All { .. } => ("", ""),
    };
    let title = label_of(object, def);
    layout(
        Some(viewer),
        title,
        html! {
            p.crumbs { a href="/console/records" { "Records" } " › " (title) }
            h1 { (title) " " code.api-name { (object) } }
            form.filter method="get" action=(object_link(object)) {
                label { "Field "
                    select name="field" {
                        @for (name, _) in searchable(def) {
                            option value=(name) selected[name == field] { (name) }
                        }
                    }
                }
                label { "Value " input type="text" name="value" value=(value); }
                button type="submit" { "Search" }
                a href=(object_link(object)) { "All records" }
            }
            @match listing {
                Listing::All { records, paged, next } => {
                    @if records.is_empty() {
                        p.empty { "No " (object) " records yet." }
                    } @else {
                        (records_table(object, &columns, records))
                    }
                    nav.pager {
                        @if *paged { a href=(object_link(object)) { "← Newest" } }
                        @if let Some(next) = next {
                            a rel="next" href=(records_link(object, &[("before", next.to_string())])) { "Older →" }
                        }
                    }
                }
                Listing::Search { field, value, problem, records, page, more } => {
                    @if let Some(problem) = problem {
                        p.problem { (problem) }
                    } @else {
                        p.hint { "Records whose " code { (field) } " is " strong { (value) } " (text without regard to case)." }
                        @let shown_columns: Vec<String> = if columns.contains(field) || field == "Id" {
                            columns.clone()
                        } else {
                            std::iter::once(field.clone()).chain(columns.iter().cloned()).collect()
                        };
                        @if records.is_empty() {
                            p.empty { "No " (object) " record matches." }
                        } @else {
                            (records_table(object, &shown_columns, records))
                        }
                        nav.pager {
                            @let pairs = |page: usize| vec![("field", field.clone()), ("value", value.clone()), ("page", page.to_string())];
                            @if *page > 1 { a rel="prev" href=(records_link(object, &pairs(page - 1))) { "← Newer" } }
                            @if *more { a rel="next" href=(records_link(object, &pairs(page + 1))) { "Older →" } }
                        }
                    }
                }
            }
        },
    )
}

/// The object a reference field's value points to: a lookup's `to`, else the object among those the
/// field may reference (any object, when it names none) whose key prefix starts the id. `objects`:
/// every object of the project with its key prefix.
fn referenced_object<'a>(
    objects: &[(&'a str, Option<&'a str>)],
    field: &'a FieldDef,
    id: &str,
) -> Option<&'a str> {
    if let Some(to) = &field.to {
        return Some(to);
    }
    let prefix = id.get(..3)?;
    let may_reference =
        |object: &str| field.references.is_empty() || field.references.iter().any(|r| r == object);
    objects
        .iter()
        .find(|(object, key_prefix)| may_reference(object) && *key_prefix == Some(prefix))
        .map(|(object, _)| *object)
        .or_else(|| (field.references.len() == 1).then(|| field.references[0].as_str()))
}

/// Whether `field` may point to a record of `object`.
fn points_to(field: &FieldDef, object: &str) -> bool {
    matches!(field.field_type, FieldType::Reference | FieldType::Lookup)
        && (field.to.as_deref() == Some(object)
            || field.references.iter().any(|target| target == object)
            || (field.to.is_none() && field.references.is_empty()))
}

/// The records of one object whose one field points to the record shown.
struct Related {
    object: String,
    label: String,
    field: String,
    columns: Vec<String>,
    records: Vec<Map<String, Value>>,
    more: bool,
}

/// Every related list of a record: for each field of each object that may point to `object`, the
/// first [`RELATED_SHOWN`] records whose field holds `id`, in creation order.
async fn related_lists(
    engine: &Engine,
    project: &Project,
    object: &str,
    id: &str,
) -> Result<Vec<Related>, EngineError> {
    let mut lists = Vec::new();
    for (other, located) in &project.objects {
        for (field, def) in &located.def.fields {
            if !points_to(def, object) {
                continue;
            }
            let columns: Vec<String> =
                columns(&located.def).into_iter().filter(|column| column != field).collect();
            let mut kept: Vec<String> = vec!["Id".into(), "CreatedDate".into()];
            kept.extend(columns.iter().cloned());
            let (field_name, id) = (field.clone(), id.to_string());
            let mut matched = 0usize;
            // One more than shown tells that there are more; past it nothing is kept.
            let records = engine
                .store()
                .select_records(other, None, false, move |record| {
                    if record.get(&field_name).and_then(Value::as_str) != Some(id.as_str()) {
                        return None;
                    }
                    matched += 1;
                    (matched <= RELATED_SHOWN + 1).then(|| {
                        record
                            .into_iter()
                            .filter(|(name, _)| kept.contains(name))
                            .collect::<Map<String, Value>>()
                    })
                })
                .await?;
            if records.is_empty() {
                continue;
            }
            let more = records.len() > RELATED_SHOWN;
            lists.push(Related {
                object: other.clone(),
                label: label_of(other, &located.def).to_string(),
                field: field.clone(),
                columns,
                records: records.into_iter().take(RELATED_SHOWN).collect(),
                more,
            });
        }
    }
    Ok(lists)
}

/// `GET /console/records/{object}/{id}`: a record's fields, its runs and its related lists.
async fn record(
    State(engine): State<Engine>,
    session: Session,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = session.refused_without(&engine, ApiScope::ReadRecords) {
        return refused;
    }
    let compiled = engine.project();
    let project = &compiled.project;
    let Some(def) = project.objects.get(&object).map(|located| &located.def) else {
        return unknown_object(&session, project, &object);
    };
    let record = match engine.get_record(&object, &id).await {
        Ok(record) => record,
        Err(EngineError::NotFound { .. }) => {
            let message = format!("No {object} record has the id {id}.");
            let page = message_page(&session.view(), "Record not found", &message);
            return (StatusCode::NOT_FOUND, Html(page.into_string())).into_response();
        }
        Err(error) => return failure(ApiError::from(error)),
    };
    let runs = match engine.runs_for_record(&id).await {
        Ok(runs) => runs,
        Err(error) => return failure(ApiError::from(error)),
    };
    let related = match related_lists(&engine, project, &object, &id).await {
        Ok(related) => related,
        Err(error) => return failure(ApiError::from(error)),
    };
    let view = RecordView { project, object: &object, def, record: &record, runs: &runs, related: &related };
    Html(record_page(&session.view(), &view).into_string()).into_response()
}

struct RecordView<'a> {
    project: &'a Project,
    object: &'a str,
    def: &'a ObjectDef,
    record: &'a StoredRecord,
    runs: &'a [RunRow],
    related: &'a [Related],
}

/// A field's value on the record page: a reference as a link to the record it points to.
fn field_value(objects: &[(&str, Option<&str>)], def: Option<&FieldDef>, value: Option<&Value>) -> Markup {
    let text = shown(value);
    let target = def
        .filter(|def| matches!(def.field_type, FieldType::Reference | FieldType::Lookup) && !text.is_empty())
        .and_then(|def| referenced_object(objects, def, &text));
    html! {
        @if let Some(target) = target {
            a href=(record_link(target, &text)) { code { (text) } } " " span.hint { "(" (target) ")" }
        } @else {
            (text)
        }
    }
}

fn record_page(viewer: &Viewer<'_>, view: &RecordView<'_>) -> Markup {
    let (object, def, data) = (view.object, view.def, &view.record.data);
    let title = label_of(object, def);
    let name: Vec<String> = ["Name", "FirstName", "LastName", "Subject"]
        .iter()
        .map(|field| shown(data.get(*field)))
        .filter(|part| !part.is_empty())
        .collect();
    // Fields the record holds that the object does not (any more) declare are shown too.
    let undeclared: Vec<&String> = data
        .keys()
        .filter(|field| {
            !def.fields.contains_key(*field) && !STANDARD_FIELDS.iter().any(|(standard, _)| standard == field)
        })
        .collect();
    let record_runs = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("record", &view.record.id);
        format!("/console/runs?{}", query.finish())
    };
    let newest_runs: Vec<&RunRow> = view.runs.iter().rev().take(RUNS_SHOWN).collect();
    let objects: Vec<(&str, Option<&str>)> = view
        .project
        .objects
        .iter()
        .map(|(name, object)| (name.as_str(), object.def.key_prefix.as_deref()))
        .collect();
    layout(
        Some(viewer),
        &format!("{title} {}", view.record.id),
        html! {
            p.crumbs { a href="/console/records" { "Records" } " › " a href=(object_link(object)) { (title) } }
            h1 {
                @if name.is_empty() { (title) } @else { (name.join(" ")) }
                " " code.api-name { (view.record.id) }
            }
            dl.run {
                dt { "Object" } dd { (title) " " code { (object) } }
                dt { "Created" } dd { (shown(data.get("CreatedDate"))) }
                dt { "Updated" } dd { (shown(data.get("LastModifiedDate"))) }
            }
            h2 { "Fields" }
            div.scroll {
                table.listing.fields {
                    thead { tr { th { "Field" } th { "API name" } th { "Value" } } }
                    tbody {
                        @for (field, field_def) in &def.fields {
                            tr {
                                td { (field_def.label.as_deref().unwrap_or(field)) }
                                td { code { (field) } }
                                td { (field_value(&objects, Some(field_def), data.get(field))) }
                            }
                        }
                        @for field in &undeclared {
                            tr {
                                td { (field) }
                                td { code { (field) } }
                                td { (field_value(&objects, None, data.get(*field))) }
                            }
                        }
                    }
                }
            }
            h2 { "Runs it started" }
            @if view.runs.is_empty() {
                p.empty { "No flow ran on this record." }
            } @else {
                div.scroll {
                    table.listing.runs {
                        thead { tr { th { "Started" } th { "Flow" } th { "Status" } th { "Fault" } } }
                        tbody {
                            @for run in &newest_runs {
                                tr {
                                    td { a href=(format!("/console/runs/{}", url_segment(&run.id))) { (run.created_at) } }
                                    td { (run.flow) }
                                    td { span class=(format!("status {}", run.status.as_str())) { (run.status.as_str()) } }
                                    td.fault { (run.fault.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                @if view.runs.len() > RUNS_SHOWN { p.hint { "The newest " (RUNS_SHOWN) " of " (view.runs.len()) " runs." } }
            }
            p { a href=(record_runs) { "This record's runs in the Runs list" } }
            h2 { "Related" }
            @if view.related.is_empty() {
                p.empty { "No other record points to this one." }
            }
            @for list in view.related {
                section.related {
                    h3 { (list.label) " " span.hint { "(" (list.field) ")" } }
                    (records_table(&list.object, &list.columns, &list.records))
                    @if list.more {
                        p.hint {
                            "The first " (RELATED_SHOWN) " are shown; "
                            a href=(records_link(&list.object, &[("field", list.field.clone()), ("value", view.record.id.clone())])) { "search " (list.object) " for all of them" }
                            "."
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
    use serde_json::json;

    fn field(value: Value) -> FieldDef {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn name_like_fields_come_first_and_only_a_few_are_columns() {
        let def: ObjectDef = serde_json::from_value(json!({"fields": {
            "Notes": {"type": "textarea"}, "LastName": {"type": "text"}, "Score": {"type": "number"},
            "FirstName": {"type": "text"}, "Rating": {"type": "text"}, "Source": {"type": "text"}
        }}))
        .unwrap();
        let shown = columns(&def);
        assert_eq!(shown.len(), COLUMNS);
        assert_eq!(&shown[..2], ["FirstName", "LastName"]);
    }

    #[test]
    fn a_reference_points_to_the_object_whose_key_prefix_starts_the_id_and_a_lookup_to_its_target() {
        let project = [("Lead", Some("00Q")), ("Task", Some("00T")), ("Contact", Some("003"))];
        let who = field(json!({"type": "reference", "references": ["Lead", "Contact"]}));
        assert_eq!(referenced_object(&project, &who, "003000000000001AAA"), Some("Contact"));
        assert_eq!(referenced_object(&project, &who, "00Q000000000001AAA"), Some("Lead"));
        assert_eq!(
            referenced_object(&project, &who, "00T000000000001AAA"),
            None,
            "Task is not one it references"
        );
        let anything = field(json!({"type": "reference"}));
        assert_eq!(referenced_object(&project, &anything, "00T000000000001AAA"), Some("Task"));
        let owner = field(json!({"type": "lookup", "to": "User"}));
        assert_eq!(referenced_object(&project, &owner, "005x"), Some("User"));
        assert!(points_to(&who, "Contact") && !points_to(&who, "Task"));
        assert!(!points_to(&field(json!({"type": "text"})), "Lead"), "only a reference points anywhere");
    }
}
