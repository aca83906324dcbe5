//! A provider's receipts and inbound messages, `POST /webhooks/{name}`. Outside the route table:
//! providers cannot hold an API token, so the engine authenticates each delivery by the endpoint's
//! own secret (header or `?secret=`) or by the signature a provider makes with its own credential
//! (Twilio's over the URL and body); which one is the connector's to say.

use crate::error::{ApiError, Query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use herald_codes as codes;
use herald_engine::{Engine, WebhookError, WebhookReport, WebhookRequest};

#[derive(serde::Deserialize)]
pub(crate) struct WebhookQuery {
    secret: Option<String>,
    token: Option<String>,
}

/// 200 with what the delivery changed; 401 `INVALID_SESSION_ID` for a missing or wrong secret or
/// signature, 404 for an unknown endpoint, 400 `JSON_PARSER_ERROR` for a body the provider's format
/// does not read.
pub(crate) async fn receive(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    Query(query): Query<WebhookQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReport>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A provider that signs (Twilio) signs the URL it was told to post to: `public_url` when the
    // project sets it, else the URL as this request names it.
    let url = engine.webhook_public_url(&name).unwrap_or_else(|| {
        let host = header("host").unwrap_or("localhost");
        let scheme = header("x-forwarded-proto").unwrap_or("http");
        format!("{scheme}://{host}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()))
    });
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let request = WebhookRequest {
        headers: &headers,
        query_secret: query.secret.as_deref().or(query.token.as_deref()),
        url: &url,
        body: &body,
    };
    match engine.receive_webhook(&name, &request).await {
        Ok(report) => Ok(Json(report)),
        Err(error @ WebhookError::NotFound { .. }) => Err(ApiError::not_found(error.to_string())),
        Err(error @ WebhookError::Unauthorized(_)) => {
            tracing::warn!(webhook = %name, %error, "webhook refused");
            Err(ApiError::new(codes::api::INVALID_SESSION_ID, error.to_string()))
        }
        Err(error @ WebhookError::Invalid(_)) => {
            Err(ApiError::new(codes::api::JSON_PARSER_ERROR, error.to_string()))
        }
        Err(WebhookError::Engine(error)) => Err(error.into()),
    }
}
