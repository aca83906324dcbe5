//! Every route of the HTTP API, in process: requests go to the router with `tower::ServiceExt::oneshot`
//! (no socket), against an engine on a temporary database and project folder, with callouts answered
//! by the in-process sandbox. What is checked: each route's success status and answer shape, its
//! 404s and error shapes (`[{errorCode, message, fields}]`, docs/errors.md), that every route of the
//! route table needs a token (401) and exactly its scope (403), that access is decided before the
//! body is read, and that no answer carries a secret set through the credentials route.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use herald_project::ApiScope;
use herald_store::RunStatus;
use serde_json::{Value, json};

// Access: the route table.

#[tokio::test]
async fn the_route_table_gives_each_route_the_scope_the_docs_promise() {
    use ApiScope::*;
    let table: Vec<(String, &str, ApiScope)> =
        herald_server::api_routes().iter().map(|r| (r.method.to_string(), r.path, r.scope)).collect();
    let promised = [
        ("POST", "/api/v1/records/{object}", WriteRecords),
        ("GET", "/api/v1/records/{object}/{id}", ReadRecords),
        ("PATCH", "/api/v1/records/{object}/{id}", WriteRecords),
        ("GET", "/api/v1/records/{object}/{id}/runs", ReadRuns),
        ("GET", "/api/v1/runs", ReadRuns),
        ("GET", "/api/v1/runs/{id}", ReadRuns),
        ("POST", "/api/v1/runs/{id}/retry", ManageFlows),
        ("POST", "/api/v1/runs/{id}/wake", ManageFlows),
        ("GET", "/api/v1/messages", ReadRuns),
        ("GET", "/api/v1/messages/{id}", ReadRuns),
        ("GET", "/api/v1/receipts", ReadRuns),
        ("GET", "/api/v1/consent", ReadRuns),
        ("PUT", "/api/v1/credentials/{external}/{principal}/{parameter}", ManageCredentials),
        ("GET", "/services/data/{version}/actions/custom/flow", RunFlows),
        ("POST", "/services/data/{version}/actions/custom/flow/{flow}", RunFlows),
        ("POST", "/api/v1/project/reload", ManageFlows),
    ];
    let promised: Vec<(String, &str, ApiScope)> =
        promised.into_iter().map(|(m, p, s)| (m.to_string(), p, s)).collect();
    assert_eq!(table, promised);
}

#[tokio::test]
async fn every_api_route_answers_401_invalid_session_id_without_a_token() {
    let api = Api::new().await;
    for route in herald_server::api_routes() {
        let answer = api.send(route.method.clone(), &concrete(route.path), Who::Anonymous, "{}").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{} {}", route.method, route.path);
        let (code, message, fields) = answer.error();
        assert_eq!(code, "INVALID_SESSION_ID");
        assert!(message.contains("Authorization: Bearer <token>") && message.contains("herald token create"));
        assert!(fields.is_empty());
    }
}

#[tokio::test]
async fn every_api_route_answers_401_to_a_forged_a_malformed_or_a_basic_token() {
    let api = Api::new().await;
    let forged = "hrld_notarealtokennotarealtoken00";
    for authorization in
        [format!("Bearer {forged}"), "Bearer".into(), "Bearer nothrld".into(), "Basic YTpi".into()]
    {
        for route in herald_server::api_routes() {
            let from = Who::Header(&authorization);
            let answer = api.send(route.method.clone(), &concrete(route.path), from, "{}").await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{authorization}: {} {}",
                route.method,
                route.path
            );
            assert_eq!(answer.error_code(), "INVALID_SESSION_ID");
            assert!(!answer.text.contains(forged), "the answer does not repeat the token");
        }
    }
}

#[tokio::test]
async fn every_api_route_answers_403_naming_the_permission_sets_that_grant_its_scope() {
    let api = Api::new().await;
    for route in herald_server::api_routes() {
        let user = format!("all_but_{}", route.scope.name());
        let answer = api.send(route.method.clone(), &concrete(route.path), Who::User(&user), "{}").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{} {}", route.method, route.path);
        let (code, message, _) = answer.error();
        assert_eq!(code, "INSUFFICIENT_ACCESS");
        assert_eq!(
            message,
            format!(
                "user {user} lacks the API scope {}; assign permission set Admin or {}",
                route.scope.name(),
                set_granting(route.scope)
            )
        );
    }
}

#[tokio::test]
async fn every_api_route_lets_in_a_user_who_holds_only_its_scope() {
    let api = Api::new().await;
    for route in herald_server::api_routes() {
        let user = format!("only_{}", route.scope.name());
        // An empty body: every route refuses it or ignores it, so nothing is changed.
        let answer = api.send(route.method.clone(), &concrete(route.path), Who::User(&user), "").await;
        assert!(
            !matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{} {} as {user}: {} {}",
            route.method,
            route.path,
            answer.status,
            answer.text
        );
    }
}

#[tokio::test]
async fn a_user_without_any_scope_is_refused_everywhere_but_health() {
    let api = Api::new().await;
    for route in herald_server::api_routes() {
        let answer = api.send(route.method.clone(), &concrete(route.path), Who::User("no_scopes"), "").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{} {}", route.method, route.path);
    }
    let health = api.send(Method::GET, "/health", Who::User("no_scopes"), "").await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_users_token_is_refused_from_the_next_request_on() {
    let api = Api::new().await;
    assert_eq!(api.get("/api/v1/runs").await.status, StatusCode::OK);
    api.engine.deactivate_user("admin").await.unwrap();
    let answer = api.get("/api/v1/runs").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.error().1, "the bearer token is not valid (unknown, revoked, or its user was removed)");
}

#[tokio::test]
async fn health_answers_ok_without_a_token() {
    let api = Api::new().await;
    let answer = api.send(Method::GET, "/health", Who::Anonymous, "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let mut health = answer.json();
    let master_key = health["vault"]["masterKey"].take();
    assert!(
        master_key.as_str().is_some_and(|key| key.len() == 16),
        "a fingerprint, never the key: {master_key}"
    );
    let node_id = health["node"]["id"].take();
    assert!(node_id.as_str().is_some_and(|id| id.starts_with("node_")), "{node_id}");
    assert_eq!(
        health,
        json!({
            "status": "ok",
            "node": {
                "id": null, "database": "sqlite", "shared": false, "liveNodes": 1, "runsHeld": 0,
                "databaseRoundTrips": null
            },
            "sweep": {"defects": 0, "handedOver": 0},
            "vault": {"masterKey": null, "dataKeys": 1, "rotationPending": false, "unreadableSecrets": 0, "failedRuns": 0}
        })
    );
}

// Access comes before the body.

#[tokio::test]
async fn an_unauthenticated_request_gets_401_whatever_its_body_or_query() {
    let api = Api::new().await;
    let too_large = vec![b'x'; 3 * 1024 * 1024];
    let cases: [(Method, &str, Body); 6] = [
        (Method::POST, "/api/v1/records/Lead", Body::from("{not json")),
        (Method::POST, "/api/v1/records/Lead", Body::from("[1, 2]")),
        (Method::POST, "/api/v1/records/Lead", Body::from(too_large.clone())),
        (Method::PUT, "/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey", Body::empty()),
        (Method::PUT, "/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey", Body::from(too_large)),
        (Method::GET, "/api/v1/runs?limit=ten&status=nonsense", Body::empty()),
    ];
    for (method, path, body) in cases {
        let answer = api.send(method.clone(), path, Who::Anonymous, body).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", answer.text);
        assert_eq!(answer.error_code(), "INVALID_SESSION_ID");
    }
}

#[tokio::test]
async fn a_caller_without_the_scope_gets_403_before_the_body_is_read() {
    let api = Api::new().await;
    let too_large = vec![b'x'; 3 * 1024 * 1024];
    let answer = api.send(Method::POST, "/api/v1/records/Lead", Who::User("no_scopes"), too_large).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = api.send(Method::POST, "/api/v1/records/Lead", Who::User("no_scopes"), "{not json").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_authorized_body_over_2_mb_gets_413() {
    let api = Api::new().await;
    let too_large = vec![b' '; 3 * 1024 * 1024];
    let answer = api.send(Method::POST, "/api/v1/records/Lead", Who::User("admin"), too_large).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

// Records.

#[tokio::test]
async fn creating_a_record_answers_201_with_its_id_and_the_runs_it_started() {
    let api = Api::new().await;
    let answer = api.post_json("/api/v1/records/Lead", json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let body = answer.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "success", "errors", "runs"]);
    assert!(body["id"].as_str().unwrap().starts_with("00Q"), "{body}");
    assert_eq!((&body["success"], &body["errors"]), (&json!(true), &json!([])));
    assert_eq!(body["runs"].as_array().unwrap().len(), 1, "the welcome flow started: {body}");

    let no_phone = api.post_json("/api/v1/records/Lead", json!({"LastName": "Quiet"})).await;
    assert_eq!(no_phone.status, StatusCode::CREATED);
    assert_eq!(no_phone.json()["runs"], json!([]), "no phone, no run");
}

#[tokio::test]
async fn invalid_fields_are_all_reported_in_the_salesforce_error_shape() {
    let api = Api::new().await;
    let answer = api
        .post_json("/api/v1/records/Lead", json!({"Phne": PHONE, "Email": "nope", "Status": "Closed"}))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let errors = answer.json();
    let mut found: Vec<(String, Value)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.as_object().unwrap().len(), 3, "{e}");
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            (e["errorCode"].as_str().unwrap().to_string(), e["fields"].clone())
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        [
            ("INVALID_EMAIL_ADDRESS".to_string(), json!(["Email"])),
            ("INVALID_FIELD".to_string(), json!(["Phne"])),
            ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_string(), json!(["Status"])),
            ("REQUIRED_FIELD_MISSING".to_string(), json!(["LastName"])),
        ]
    );
    assert!(answer.text.contains("did you mean `Phone`"), "{}", answer.text);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_gets_json_parser_error() {
    let api = Api::new().await;
    for (body, says) in [
        ("{not json", "the body is not valid JSON"),
        ("[1]", "must be a JSON object"),
        ("", "not valid JSON"),
    ] {
        for (method, path) in
            [(Method::POST, "/api/v1/records/Lead"), (Method::PATCH, "/api/v1/records/Lead/00Qx")]
        {
            let answer = api.send(method.clone(), path, Who::User("admin"), body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {body:?}");
            let (code, message, fields) = answer.error();
            assert_eq!(code, "JSON_PARSER_ERROR");
            assert!(message.contains(says), "{message}");
            assert!(fields.is_empty());
        }
    }
}

#[tokio::test]
async fn an_unknown_object_or_record_is_404_not_found() {
    let api = Api::new().await;
    let (id, _) = api.lead(json!({"LastName": "Known"})).await;
    let unknown_object = api.post_json("/api/v1/records/Leed", json!({"LastName": "X"})).await;
    assert_eq!(unknown_object.status, StatusCode::NOT_FOUND);
    let (code, message, _) = unknown_object.error();
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("Leed"), "{message}");
    let missing = "00Q000000000000AAA";
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/records/Lead/{missing}"), ""),
        (Method::PATCH, format!("/api/v1/records/Lead/{missing}"), r#"{"FirstName": "A"}"#),
        (Method::GET, format!("/api/v1/records/Lead/{missing}/runs"), ""),
        (Method::GET, format!("/api/v1/records/Task/{id}"), ""),
        (Method::GET, format!("/api/v1/records/Leed/{id}"), ""),
    ] {
        let answer = api.send(method.clone(), &path, Who::User("admin"), body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}: {}", answer.text);
        assert_eq!(answer.error_code(), "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_record_reads_back_with_salesforce_attributes_and_its_fields() {
    let api = Api::new().await;
    let (id, _) = api.lead(json!({"lastname": "Lovelace", "FirstName": "Ada"})).await;
    let answer = api.get(&format!("/api/v1/records/Lead/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body.as_object().unwrap().keys().next().unwrap(), "attributes");
    assert_eq!(body["attributes"], json!({"type": "Lead", "url": format!("/api/v1/records/Lead/{id}")}));
    assert_eq!(body["Id"], id);
    assert_eq!(body["LastName"], "Lovelace", "stored under the declared name");
    assert_eq!(body["Status"], "Open", "the default");
    assert!(body["CreatedDate"].is_string() && body["LastModifiedDate"].is_string(), "{body}");
}

#[tokio::test]
async fn updating_a_record_answers_200_in_the_shape_of_create_and_changes_it() {
    let api = Api::new().await;
    let (id, _) = api.lead(json!({"LastName": "Lovelace"})).await;
    let path = format!("/api/v1/records/Lead/{id}");
    let answer = api.send(Method::PATCH, &path, Who::User("admin"), r#"{"Status": "Working"}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"id": id, "success": true, "errors": [], "runs": []}));
    assert_eq!(api.get(&path).await.json()["Status"], "Working");
    let bad = api.send(Method::PATCH, &path, Who::User("admin"), r#"{"Status": "Gone"}"#).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let (code, _, fields) = bad.error();
    assert_eq!(
        (code.as_str(), fields),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", vec!["Status".to_string()])
    );
    assert_eq!(api.get(&path).await.json()["Status"], "Working", "a refused update changes nothing");
}

#[tokio::test]
async fn a_records_runs_are_the_runs_it_started() {
    let api = Api::new().await;
    let (id, runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let answer = api.get(&format!("/api/v1/records/Lead/{id}/runs")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    let listed: Vec<&str> =
        body["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, runs);
    assert_eq!(body["runs"][0]["recordId"], id);
    assert_eq!(body["runs"][0]["flow"], "Lead_Welcome_SMS");
}

// Runs.

#[tokio::test]
async fn runs_are_listed_by_status_and_read_one_by_one_with_their_trace() {
    let api = Api::new().await;
    let (id, runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    api.lead(json!({"LastName": "Byron", "Phone": PHONE})).await;
    let answer = api.get(&format!("/api/v1/runs/{}", runs[0])).await;
    assert_eq!(answer.status, StatusCode::OK);
    let run = answer.json();
    let keys: Vec<&str> = run.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "flow",
            "object",
            "recordId",
            "status",
            "fault",
            "createdAt",
            "updatedAt",
            "nextAttemptAt",
            "version",
            "node",
            "interviewId",
            "trace",
            "traceOmitted"
        ]
    );
    assert!(
        run["node"].as_str().is_some_and(|node| node.starts_with("node_")),
        "the node that ran it: {run}"
    );
    assert_eq!(
        (&run["status"], &run["recordId"], &run["fault"]),
        (&json!("finished"), &json!(id), &Value::Null)
    );
    assert_eq!(run["trace"][0]["element"], "Send_SMS");
    assert_eq!(run["trace"][0]["inputs"]["apikey"], "••••••", "a credential input is masked");

    let finished = api.get("/api/v1/runs?status=finished").await.json();
    assert_eq!(finished["runs"].as_array().unwrap().len(), 2);
    let failed = api.get("/api/v1/runs?status=failed,unknown").await.json();
    assert_eq!(failed, json!({"runs": []}));
    let one = api.get("/api/v1/runs?limit=0").await.json();
    assert_eq!(one["runs"].as_array().unwrap().len(), 1, "a limit below 1 lists one");

    let unknown = api.get("/api/v1/runs/run_nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "NOT_FOUND");
}

#[tokio::test]
async fn an_unknown_status_or_an_unreadable_query_value_is_400_invalid_field() {
    let api = Api::new().await;
    let answer = api.get("/api/v1/runs?status=finished,lost").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let (code, message, _) = answer.error();
    assert_eq!(code, "INVALID_FIELD");
    assert!(message.contains("lost"), "{message}");
    for path in ["/api/v1/runs?limit=ten", "/api/v1/messages?limit=ten", "/api/v1/receipts?unmatched=perhaps"]
    {
        let answer = api.get(path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        let (code, message, _) = answer.error();
        assert_eq!(code, "INVALID_FIELD", "{path}");
        assert!(message.contains("query string"), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_finished_run_is_retried_only_from_an_element_it_names() {
    let api = Api::new().await;
    let (_, runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let retry = format!("/api/v1/runs/{}/retry", runs[0]);

    let without = api.send(Method::POST, &retry, Who::User("admin"), "").await;
    assert_eq!(without.status, StatusCode::CONFLICT);
    assert_eq!(without.error_code(), "INVALID_STATUS");
    let unknown_element = api.post_json(&retry, json!({"fromElement": "Send_Fax"})).await;
    assert_eq!(unknown_element.status, StatusCode::CONFLICT);
    assert_eq!(unknown_element.error_code(), "INVALID_STATUS");
    let bad_json = api.send(Method::POST, &retry, Who::User("admin"), "{").await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.error_code(), "JSON_PARSER_ERROR");
    let unknown_run = api.post_json("/api/v1/runs/run_nothing/retry", json!({})).await;
    assert_eq!(unknown_run.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_run.error_code(), "NOT_FOUND");

    let accepted = api.post_json(&retry, json!({"fromElement": "Send_SMS"})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(accepted.json(), json!({"id": runs[0], "fromElement": "Send_SMS"}));
    assert_eq!(api.ended(&runs[0]).await, RunStatus::Finished);
}

// Messages, receipts, consent and webhooks.

#[tokio::test]
async fn the_ledger_lists_a_sent_message_and_reads_it_by_id() {
    let api = Api::new().await;
    let (_, runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    let answer = api.get(&format!("/api/v1/messages?runId={}", runs[0])).await;
    assert_eq!(answer.status, StatusCode::OK);
    let messages = answer.json()["messages"].clone();
    assert_eq!(messages.as_array().unwrap().len(), 1, "{messages}");
    let message = &messages[0];
    assert_eq!((&message["destination"], &message["provider"]), (&json!(PHONE), &json!("kixie")));
    assert!(message["history"].is_array(), "{message}");

    let one = api.get(&format!("/api/v1/messages/{}", message["id"].as_str().unwrap())).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(&one.json(), message);
    let none = api.get("/api/v1/messages?destination=%2B14155550199").await.json();
    assert_eq!(none, json!({"messages": []}));
    let unknown = api.get("/api/v1/messages/msg_nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error(), ("NOT_FOUND".into(), "no message with id msg_nothing".into(), vec![]));
}

#[tokio::test]
async fn a_webhook_with_its_secret_is_applied_and_shows_in_receipts_and_consent() {
    let api = Api::new().await;
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    let answer = api.kixie_inbound(&format!("?secret={}", secret.as_str()), "STOP").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let report = answer.json();
    assert_eq!(
        (&report["events"], &report["inbound"], &report["opt_outs"]),
        (&json!(1), &json!(1), &json!(1))
    );

    let status = json!({"data": {"messageid": "out-1", "direction": "outgoing", "customernumber": PHONE}});
    let path = format!("/webhooks/Kixie_Events?secret={}", secret.as_str());
    let answer = api.send(Method::POST, &path, Who::Anonymous, status.to_string()).await;
    assert_eq!(answer.json()["unmatched"], 1, "no message of herald has that id: {}", answer.text);

    let receipts = api.get("/api/v1/receipts").await;
    assert_eq!(receipts.status, StatusCode::OK);
    let receipts = receipts.json()["receipts"].clone();
    let kinds: Vec<(&Value, &Value)> =
        receipts.as_array().unwrap().iter().map(|r| (&r["webhook"], &r["kind"])).collect();
    let webhook = json!("Kixie_Events");
    assert_eq!(kinds, [(&webhook, &json!("status")), (&webhook, &json!("inbound"))], "newest first");
    let unmatched = api.get("/api/v1/receipts?unmatched=true&limit=5").await.json();
    let unmatched = unmatched["receipts"].as_array().unwrap();
    assert!(unmatched.iter().any(|r| r["provider_message_id"] == "out-1"), "{unmatched:?}");
    let consent = api.get("/api/v1/consent").await;
    assert_eq!(consent.status, StatusCode::OK);
    let consent = consent.json()["consent"].clone();
    assert_eq!(consent.as_array().unwrap().len(), 1, "{consent}");
    assert_eq!((&consent[0]["phone"], &consent[0]["status"]), (&json!(PHONE), &json!("opted_out")));
    assert_eq!(consent[0]["source"], "inbound:Kixie_Events");
}

#[tokio::test]
async fn a_webhook_refuses_a_missing_or_wrong_secret_and_an_api_token_with_401() {
    let api = Api::new().await;
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    let missing = api.kixie_inbound("", "hello").await;
    let wrong = api.kixie_inbound("?secret=whsec_wrong", "hello").await;
    let admin = api.tokens["admin"].clone();
    let body = r#"{"data": {"direction": "incoming", "customernumber": "+1", "businessnumber": "+1", "message": "x"}}"#;
    let token = api.send(Method::POST, "/webhooks/Kixie_Events", Who::User("admin"), body).await;
    for answer in [missing, wrong, token] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
        assert_eq!(answer.error_code(), "INVALID_SESSION_ID");
        assert!(!answer.text.contains(secret.as_str()) && !answer.text.contains(&admin));
    }
    assert_eq!(api.get("/api/v1/receipts").await.json(), json!({"receipts": []}), "nothing was kept");
}

#[tokio::test]
async fn an_unknown_webhook_is_404_and_a_delivery_it_cannot_read_is_400() {
    let api = Api::new().await;
    let secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    let unknown = api.send(Method::POST, "/webhooks/Kixie_Evnts", Who::Anonymous, "{}").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let (code, message, _) = unknown.error();
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("Kixie_Events"), "the hint names the endpoint: {message}");
    let path = format!("/webhooks/Kixie_Events?secret={}", secret.as_str());
    let unreadable = api.send(Method::POST, &path, Who::Anonymous, r#"{"messageid": "1"}"#).await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unreadable.error(),
        ("JSON_PARSER_ERROR".into(), "webhook Kixie_Events: Kixie webhook: data is missing".into(), vec![])
    );
}

// Credentials.

#[tokio::test]
async fn a_secret_set_through_the_api_is_the_one_the_callout_sends() {
    let api = Api::new().await;
    // The fixture set the sandbox's values through the route, so the welcome SMS goes out.
    let (_, runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    assert_eq!(api.ended(&runs[0]).await, RunStatus::Finished);
    // A wrong key set the same way replaces it: Kixie refuses the next send.
    api.set_secret("apikey", WRONG_APIKEY).await;
    let (_, runs) = api.lead(json!({"LastName": "Byron", "Phone": PHONE})).await;
    let run = api.get(&format!("/api/v1/runs/{}", runs[0])).await.json();
    assert_eq!(run["trace"][0]["result"], "fault: Log_SMS_Failure", "{run}");
    assert!(run["trace"][0]["fault"].as_str().unwrap().contains("HTTP 401"), "{run}");
}

#[tokio::test]
async fn a_credential_without_a_value_or_for_an_unknown_place_is_refused_with_400() {
    let api = Api::new().await;
    let empty = api
        .send(
            Method::PUT,
            "/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey",
            Who::User("admin"),
            "",
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.error(),
        ("REQUIRED_FIELD_MISSING".into(), "the request body must hold the value".into(), vec![])
    );
    for path in [
        "/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikeys",
        "/api/v1/credentials/Kixie_API_Auth/Other_Principal/apikey",
        "/api/v1/credentials/Kixie_API_Auth/Kixie_Principal/apikey?user=admin",
    ] {
        let answer = api.send(Method::PUT, path, Who::User("admin"), "s3cret-value-77").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {}", answer.text);
        assert_eq!(answer.error_code(), "INVALID_FIELD", "{path}");
        assert!(!answer.text.contains("s3cret-value-77"), "the value is not repeated: {}", answer.text);
    }
}

// Secrets.

#[tokio::test]
async fn no_answer_of_any_route_contains_a_secret_set_through_the_credentials_route() {
    let api = Api::new().await;
    let webhook_secret = api.engine.create_webhook_secret("Kixie_Events").await.unwrap();
    // A send that succeeds, and one that fails on a wrong key and logs a Task with the fault.
    let (sent, sent_runs) = api.lead(json!({"LastName": "Lovelace", "Phone": PHONE})).await;
    api.set_secret("apikey", WRONG_APIKEY).await;
    let (failed, failed_runs) = api.lead(json!({"LastName": "Byron", "Phone": PHONE})).await;
    let run = api.get(&format!("/api/v1/runs/{}", failed_runs[0])).await.json();
    let task =
        run["trace"][1]["outputs"]["Id"].as_str().unwrap_or_else(|| panic!("a Task: {run}")).to_string();
    api.kixie_inbound(&format!("?secret={}", webhook_secret.as_str()), "STOP").await;

    for path in [
        format!("/api/v1/records/Lead/{sent}"),
        format!("/api/v1/records/Lead/{failed}"),
        format!("/api/v1/records/Task/{task}"),
        format!("/api/v1/records/Lead/{sent}/runs"),
        format!("/api/v1/records/Lead/{failed}/runs"),
        format!("/api/v1/runs/{}", sent_runs[0]),
        "/api/v1/runs".into(),
        "/api/v1/messages".into(),
        "/api/v1/receipts".into(),
        "/api/v1/consent".into(),
    ] {
        assert_eq!(api.get(&path).await.status, StatusCode::OK, "{path}");
    }
    let messages = api.get("/api/v1/messages").await.json();
    for message in messages["messages"].as_array().unwrap() {
        api.get(&format!("/api/v1/messages/{}", message["id"].as_str().unwrap())).await;
    }
    let retried = api
        .post_json(&format!("/api/v1/runs/{}/retry", failed_runs[0]), json!({"fromElement": "Send_SMS"}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    api.ended(&failed_runs[0]).await;
    api.get(&format!("/api/v1/runs/{}", failed_runs[0])).await;

    let answers = api.answers.lock().unwrap();
    assert!(answers.len() > 20, "every route answered: {}", answers.len());
    let mut secrets = vec![BUSINESSID.to_string(), APIKEY.to_string(), WRONG_APIKEY.to_string()];
    secrets.push(webhook_secret.to_string());
    secrets.extend(api.tokens.values().cloned());
    for answer in answers.iter() {
        for secret in &secrets {
            assert!(!answer.contains(secret.as_str()), "an answer shows a secret: {answer}");
        }
    }
}

// Invocable actions: autolaunched flows over `/services/data/v{version}/actions/custom/flow`.

const ACTIONS: &str = "/services/data/v60.0/actions/custom/flow";

#[tokio::test]
async fn the_action_list_shows_autolaunched_flows_with_their_inputs_and_outputs() {
    let api = Api::new().await;
    let answer = api.get(ACTIONS).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({"actions": [{
            "name": "Kixie_Later", "label": "Send a Kixie SMS later", "type": "FLOW",
            "inputs": [{"name": "phone", "type": "Text", "required": false}],
            "outputs": [{"name": "code", "type": "Number", "required": false}],
        }, {
            "name": "Kixie_Send", "label": "Send a Kixie SMS", "type": "FLOW",
            "inputs": [{"name": "phone", "type": "Text", "required": false},
                       {"name": "text", "type": "Text", "required": false}],
            "outputs": [{"name": "code", "type": "Number", "required": false}],
        }]})
    );
}

#[tokio::test]
async fn invoking_a_flow_runs_one_interview_per_input_and_answers_their_outputs() {
    let api = Api::new().await;
    let body = json!({"inputs": [{"phone": PHONE, "text": "first"}, {"phone": PHONE}]});
    let answer = api.post_json(&format!("{ACTIONS}/Kixie_Send"), body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let finished = json!({"actionName": "Kixie_Send", "errors": null, "isSuccess": true,
        "outputValues": {"code": 200, "Flow__InterviewStatus": "Finished"}});
    assert_eq!(answer.json(), json!([finished, finished]));
    let messages = api.get("/api/v1/messages").await.json();
    assert_eq!(messages["messages"].as_array().unwrap().len(), 2, "both sends are in the ledger: {messages}");
    let runs = api.get("/api/v1/runs").await.json();
    assert_eq!(runs["runs"], json!([]), "invoked interviews are not stored as runs");
}

#[tokio::test]
async fn an_interview_that_reaches_a_wait_is_stored_waiting_answered_paused_and_goes_on_when_woken() {
    let api = Api::new().await;
    let answer =
        api.post_json(&format!("{ACTIONS}/Kixie_Later"), json!({"inputs": [{"phone": PHONE}]})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let result = answer.json()[0].clone();
    let run_id = result["runId"].as_str().unwrap_or_else(|| panic!("no run id: {result}")).to_string();
    assert_eq!(
        result,
        json!({"actionName": "Kixie_Later", "errors": null, "isSuccess": true,
            "outputValues": {"code": null, "Flow__InterviewStatus": "Paused"}, "runId": run_id})
    );
    let run = api.get(&format!("/api/v1/runs/{run_id}")).await.json();
    assert_eq!(run["status"], "waiting", "{run}");
    assert!(run["nextAttemptAt"].is_string(), "{run}");
    assert!(run["fault"].as_str().unwrap().starts_with("Wait element Pause: waiting until"), "{run}");
    assert_eq!(
        api.get("/api/v1/messages").await.json()["messages"],
        json!([]),
        "nothing sent before the wait"
    );

    let woken = api.post_json(&format!("/api/v1/runs/{run_id}/wake"), json!({})).await;
    assert_eq!(woken.status, StatusCode::ACCEPTED, "{}", woken.text);
    assert_eq!(api.ended(&run_id).await, RunStatus::Finished);
    let run = api.get(&format!("/api/v1/runs/{run_id}")).await.json();
    let kinds: Vec<&str> =
        run["trace"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Wait", "Action"], "{run}");
    assert_eq!(run["trace"][0]["outputs"]["waited"], json!(true));
    assert_eq!(api.get("/api/v1/messages").await.json()["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_a_waiting_run_can_be_woken() {
    let api = Api::new().await;
    let (_, runs) = api.lead(json!({"LastName": "Ng", "Phone": PHONE})).await;
    let answer = api.post_json(&format!("/api/v1/runs/{}/wake", runs[0]), json!({})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.error_code(), "INVALID_STATUS");
    let missing = api.post_json("/api/v1/runs/run_nothere/wake", json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
}

#[tokio::test]
async fn an_interview_whose_callout_fails_answers_is_success_false_with_the_fault() {
    let api = Api::new().await;
    api.set_secret("apikey", WRONG_APIKEY).await;
    let answer = api.post_json(&format!("{ACTIONS}/Kixie_Send"), json!({"inputs": [{"phone": PHONE}]})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let result = &answer.json()[0];
    assert_eq!(result["isSuccess"], json!(false), "{result}");
    assert_eq!(result["outputValues"]["Flow__InterviewStatus"], json!("Error"));
    assert_eq!(result["errors"][0]["statusCode"], json!("FLOW_FAILED"));
    assert!(!answer.text.contains(WRONG_APIKEY), "the fault masks the key: {}", answer.text);
}

#[tokio::test]
async fn bad_inputs_are_all_400_invalid_input_and_nothing_runs() {
    let api = Api::new().await;
    let body = json!({"inputs": [{"phone": PHONE}, {"phnoe": PHONE, "internal": "x", "text": 5}]});
    let answer = api.post_json(&format!("{ACTIONS}/Kixie_Send"), body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let errors = answer.json();
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for error in errors {
        assert_eq!(error["errorCode"], json!("INVALID_INPUT"));
        assert_eq!(error["fields"], json!(["inputs[1]"]));
    }
    let text = answer.text.clone();
    assert!(
        text.contains("did you mean `phone`") && text.contains("`internal` is not available for input"),
        "{text}"
    );
    let messages = api.get("/api/v1/messages").await.json();
    assert_eq!(messages["messages"], json!([]), "the good first input did not run either");
}

#[tokio::test]
async fn a_body_without_an_inputs_array_is_json_parser_error() {
    let api = Api::new().await;
    for body in ["", "[]", r#"{"inputs": {}}"#, r#"{"inputs": [1]}"#] {
        let answer = api
            .send(Method::POST, &format!("{ACTIONS}/Kixie_Send"), Who::User("admin"), body.to_string())
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.error_code(), "JSON_PARSER_ERROR", "{body}");
    }
    let empty = api.post_json(&format!("{ACTIONS}/Kixie_Send"), json!({"inputs": []})).await;
    assert_eq!(empty.error_code(), "INVALID_INPUT");
}

#[tokio::test]
async fn an_unknown_flow_or_version_is_404_and_a_record_triggered_flow_is_400() {
    let api = Api::new().await;
    let one = json!({"inputs": [{}]});
    let unknown = api.post_json(&format!("{ACTIONS}/Kixie_Sned"), one.clone()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let (code, message, _) = unknown.error();
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("Kixie_Send"), "did you mean: {message}");
    for version in ["60.0", "v60", "vX.0"] {
        let path = format!("/services/data/{version}/actions/custom/flow");
        assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND, "{version}");
        let answer = api.post_json(&format!("{path}/Kixie_Send"), one.clone()).await;
        assert_eq!(answer.error_code(), "NOT_FOUND", "{version}");
    }
    let triggered = api.post_json(&format!("{ACTIONS}/Lead_Welcome_SMS"), one).await;
    assert_eq!(triggered.status, StatusCode::BAD_REQUEST);
    let (code, message, _) = triggered.error();
    assert_eq!(code, "INVALID_INPUT");
    assert!(message.contains("only autolaunched flows"), "{message}");
}
