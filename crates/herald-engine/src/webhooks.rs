//! Webhook endpoints: providers post delivery receipts and inbound messages to
//! `POST /webhooks/<Name>`. How a delivery proves where it comes from is the connector's to say: an
//! endpoint secret of its own (a static Authorization header, or `?secret=` for providers that only
//! take a URL), or a signature the provider makes with a credential parameter.
//!
//! Every event is kept in `receipts`, matched to a message or not; statuses only move forward.

use crate::access::{same_secret, secret_hash};
use crate::ids::random_text;
use crate::ledger::{MessageEvent, apply_event, normalize_sender};
use crate::{Engine, EngineError, SecretPlace, now_text};
use herald_project::PrincipalType;
use herald_providers::{Provider, SignedRequest, WebhookAuth, WebhookEvent};
use herald_sms::Keyword;
use herald_store::{ConsentRow, NewReceipt};
use serde::Serialize;
use zeroize::Zeroizing;

/// A webhook request as the server received it.
pub struct WebhookRequest<'a> {
    /// The request's headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// `?secret=` (or `?token=`), for providers that cannot send a header.
    pub query_secret: Option<&'a str>,
    /// The full URL the provider posted to, as it signed it.
    pub url: &'a str,
    pub body: &'a [u8],
}

/// What a webhook delivery changed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WebhookReport {
    pub events: usize,
    /// Status events that found their message.
    pub matched: usize,
    /// Status events that moved a message forward (duplicates and late ones do not).
    pub applied: usize,
    /// Status events kept for a message herald does not know (yet).
    pub unmatched: usize,
    pub inbound: usize,
    pub opt_outs: usize,
    pub opt_ins: usize,
    /// The same delivery (endpoint and body) was applied before: nothing changed, nothing was kept.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook named `{name}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    NotFound { name: String, hint: Option<String> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<herald_store::StoreError> for WebhookError {
    fn from(error: herald_store::StoreError) -> Self {
        WebhookError::Engine(error.into())
    }
}

/// What tells one webhook delivery from another: its endpoint and its exact body. A provider's own
/// event ids are inside the body, so two deliveries of one event have one digest.
fn delivery_digest(webhook: &str, body: &[u8]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(webhook.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A webhook body as receipts keep it: the provider's credential `fields` masked, in a JSON body at
/// any depth or in a form body. A body that is neither is kept as it came.
fn kept_body(body: &[u8], fields: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    if fields.is_empty() {
        return text.into_owned();
    }
    fn mask(value: &mut serde_json::Value, fields: &[&str]) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if fields.iter().any(|field| field.eq_ignore_ascii_case(key)) && !value.is_null() {
                        *value = serde_json::Value::from(herald_flow::MASK);
                    } else {
                        mask(value, fields);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|item| mask(item, fields)),
            _ => {}
        }
    }
    if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) {
        mask(&mut json, fields);
        return json.to_string();
    }
    if text.contains('=') && !text.contains(char::is_whitespace) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(body) {
            let masked = fields.iter().any(|field| field.eq_ignore_ascii_case(&key));
            form.append_pair(&key, if masked { herald_flow::MASK } else { &value });
        }
        return form.finish();
    }
    text.into_owned()
}

/// Prefix of webhook secrets, so a leaked one is recognisable.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// The secret in `Authorization: Bearer <s>`, `Authorization: Basic base64(user:<s>)`, or the query.
fn presented_secret(request: &WebhookRequest<'_>) -> Option<Zeroizing<String>> {
    let authorization =
        request.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")).map(|(_, v)| v);
    if let Some(value) = authorization {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return Some(Zeroizing::new(token.trim().to_string()));
        }
        if let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
            let text = Zeroizing::new(String::from_utf8(decoded).ok()?);
            return text.split_once(':').map(|(_, password)| Zeroizing::new(password.to_string()));
        }
        return Some(Zeroizing::new(value.to_string()));
    }
    request.query_secret.map(|s| Zeroizing::new(s.to_string()))
}

impl Engine {
    /// Creates (or replaces) an endpoint's secret; it is shown once and only its hash is kept.
    pub async fn create_webhook_secret(&self, name: &str) -> Result<Zeroizing<String>, WebhookError> {
        self.webhook(name)?;
        let secret = Zeroizing::new(format!("{WEBHOOK_SECRET_PREFIX}{}", random_text(32)));
        self.inner.store.set_webhook_secret(name, &secret_hash(&secret), &now_text()).await?;
        Ok(secret)
    }

    fn webhook(&self, name: &str) -> Result<herald_project::WebhookDef, WebhookError> {
        let project = self.project();
        let webhooks = &project.project.webhooks;
        webhooks.get(name).map(|w| w.def.clone()).ok_or_else(|| WebhookError::NotFound {
            name: name.to_string(),
            hint: herald_project::did_you_mean(name, webhooks.keys().map(String::as_str)),
        })
    }

    /// The URL a webhook's provider is told to post to, when `public_url` is set.
    pub fn webhook_public_url(&self, name: &str) -> Option<String> {
        self.webhook(name).ok().and_then(|w| w.public_url.clone())
    }

    async fn authenticate_webhook(
        &self,
        name: &str,
        def: &herald_project::WebhookDef,
        provider: Provider,
        request: &WebhookRequest<'_>,
    ) -> Result<(), WebhookError> {
        match provider.webhook_auth() {
            Some(WebhookAuth::EndpointSecret) => {}
            Some(WebhookAuth::Signed { parameter }) => {
                let key = self.webhook_signing_key(&def.named_credential, parameter, provider).await?;
                let signed = SignedRequest { url: request.url, headers: request.headers, body: request.body };
                return provider
                    .verify_signature(&key, &signed)
                    .map_err(|problem| WebhookError::Unauthorized(format!("webhook {name}: {problem}")));
            }
            None => {
                return Err(WebhookError::Invalid(format!(
                    "webhook {name}: herald reads no webhook of {}",
                    provider.label()
                )));
            }
        }
        let Some(expected) = self.inner.store.webhook_secret_hash(name).await? else {
            return Err(WebhookError::Unauthorized(format!(
                "webhook {name} has no secret yet; create one with `herald webhook secret {name}` and configure the provider with it"
            )));
        };
        let Some(presented) = presented_secret(request) else {
            return Err(WebhookError::Unauthorized(format!(
                "webhook {name} needs its secret: `Authorization: Bearer <secret>` or `?secret=<secret>`"
            )));
        };
        if !same_secret(&secret_hash(&presented), &expected) {
            return Err(WebhookError::Unauthorized(format!(
                "webhook {name}: the secret is not this endpoint's"
            )));
        }
        Ok(())
    }

    /// The key a provider signs its webhooks with: `parameter` of the named credential's shared
    /// principal (Twilio's auth token is its `password`).
    async fn webhook_signing_key(
        &self,
        named_credential: &str,
        parameter: &str,
        provider: Provider,
    ) -> Result<Zeroizing<String>, WebhookError> {
        let compiled = self.project();
        let project = &compiled.project;
        let missing = || {
            WebhookError::Unauthorized(format!(
                "the `{parameter}` of named credential {named_credential} is not set, so {} signatures cannot be checked; set it with `herald credential set`",
                provider.label()
            ))
        };
        let named = project.named_credentials.get(named_credential).ok_or_else(missing)?;
        let external = &named.def.external_credential;
        let definition = project.external_credentials.get(external).ok_or_else(missing)?;
        let principal = definition
            .def
            .principals
            .iter()
            .find(|p| p.principal_type == PrincipalType::Named)
            .ok_or_else(missing)?;
        let place = SecretPlace::new(external, &principal.name, "");
        let sealed = self.inner.store.secrets(external, &principal.name, "").await?;
        let secret = sealed.iter().find(|s| s.parameter == parameter).ok_or_else(missing)?;
        let value = self.inner.vault.open_secret(&place, secret).await.map_err(EngineError::from)?;
        Ok(value)
    }

    /// Authenticates and applies one webhook delivery.
    pub async fn receive_webhook(
        &self,
        name: &str,
        request: &WebhookRequest<'_>,
    ) -> Result<WebhookReport, WebhookError> {
        let def = self.webhook(name)?;
        let provider = Provider::from_name(&def.provider)
            .ok_or_else(|| WebhookError::Invalid(format!("webhook {name} names an unknown provider")))?;
        self.authenticate_webhook(name, &def, provider, request).await?;
        let events = provider
            .parse_webhook(request.body)
            .map_err(|error| WebhookError::Invalid(format!("webhook {name}: {error}")))?;
        let digest = delivery_digest(name, request.body);
        let body = kept_body(request.body, provider.webhook_credential_fields());
        let now = now_text();
        let country = self.project().project.config.runtime.default_country.clone();
        let (engine, name) = (self.clone(), name.to_string());
        let writer = engine.clone();
        // An opt-out is remembered even if the provider stops waiting for this answer.
        let report = self
            .to_completion(async move {
                let (report, consents) = writer
                    .inner
                    .store
                    .write(move |tx| {
                        let name = name.as_str();
                        let mut report = WebhookReport { events: events.len(), ..WebhookReport::default() };
                        let mut consents = Vec::new();
                        // A replay, an attacker's or a provider's retry of a delivery herald took,
                        // changes nothing: statuses, consent and receipts are as the first left them.
                        if !tx.first_delivery(&digest, name, &now)? {
                            report.replayed = true;
                            return Ok((report, consents));
                        }
                        for event in &events {
                            match event {
                                WebhookEvent::Status(update) => {
                                    let row = tx.find_message(
                                        provider.name(),
                                        update.provider_message_id.as_deref(),
                                        update.client_message_id.as_deref(),
                                    )?;
                                    let applied = match &row {
                                        Some(row) => apply_event(
                                            tx,
                                            row,
                                            &MessageEvent::from_receipt(update, name),
                                            &now,
                                        )?,
                                        None => false,
                                    };
                                    if row.is_none() {
                                        engine
                                            .inner
                                            .unmatched_receipts
                                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    }
                                    report.matched += usize::from(row.is_some());
                                    report.unmatched += usize::from(row.is_none());
                                    report.applied += usize::from(applied);
                                    tx.insert_receipt(&NewReceipt {
                                        webhook: name,
                                        provider: provider.name(),
                                        kind: "status",
                                        message_id: row.as_ref().map(|r| r.id.as_str()),
                                        provider_message_id: update.provider_message_id.as_deref(),
                                        client_message_id: update.client_message_id.as_deref(),
                                        status: Some(update.status.as_str()),
                                        applied,
                                        body: &body,
                                        received_at: &now,
                                    })?;
                                }
                                WebhookEvent::Inbound(inbound) => {
                                    report.inbound += 1;
                                    tx.insert_receipt(&NewReceipt {
                                        webhook: name,
                                        provider: provider.name(),
                                        kind: "inbound",
                                        message_id: None,
                                        provider_message_id: inbound.provider_message_id.as_deref(),
                                        client_message_id: None,
                                        status: None,
                                        applied: false,
                                        body: &body,
                                        received_at: &now,
                                    })?;
                                    let status = match herald_sms::classify_keyword(&inbound.text) {
                                        Some(Keyword::OptOut) => "opted_out",
                                        Some(Keyword::OptIn) => "opted_in",
                                        _ => continue,
                                    };
                                    let phone = herald_sms::normalize_e164(&inbound.from, country.as_deref())
                                        .unwrap_or_else(|_| inbound.from.trim().to_string());
                                    let row = ConsentRow {
                                        phone,
                                        sender: normalize_sender(&inbound.to),
                                        status: status.into(),
                                        keyword: Some(inbound.text.trim().to_ascii_uppercase()),
                                        source: format!("inbound:{name}"),
                                        updated_at: now.clone(),
                                    };
                                    tx.set_consent(&row)?;
                                    if status == "opted_in" {
                                        tx.lift_unknown_sender_opt_out(&row.phone, &now)?;
                                    }
                                    if status == "opted_out" {
                                        report.opt_outs += 1;
                                    } else {
                                        report.opt_ins += 1;
                                    }
                                    consents.push(row);
                                }
                            }
                        }
                        Ok::<_, EngineError>((report, consents))
                    })
                    .await?;
                writer.remember_consents(&consents);
                Ok(report)
            })
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn receipts_keep_a_webhook_body_with_the_providers_credential_fields_masked() {
        let json =
            br#"{"data":{"messageid":"m1","businessid":"biz-123456","nested":[{"APIKEY":"k-99999"}]}}"#;
        let kept = super::kept_body(json, &["businessid", "apikey"]);
        assert!(!kept.contains("biz-123456") && !kept.contains("k-99999"), "{kept}");
        assert!(kept.contains(r#""messageid":"m1""#), "the rest is kept: {kept}");
        let form = super::kept_body(b"MessageSid=SM1&businessid=biz-123456", &["businessid"]);
        assert_eq!(form, "MessageSid=SM1&businessid=%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2%E2%80%A2");
        assert_eq!(
            super::kept_body(b"a=biz-123456", &[]),
            "a=biz-123456",
            "nothing to mask, kept as it came"
        );
    }
}
