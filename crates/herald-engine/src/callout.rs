//! Callouts: choose the principal the running user may use, open its secrets, build the request on the
//! named credential's own host, send it, and read the answer with the provider's rules.

use crate::SecretPlace;
use crate::{Engine, EngineError, now_text};
use herald_expr::EvalContext;
use herald_flow::{CalloutResult, CompiledFlow, PreparedCallout, RunState, RunUser, SecretSource};
use herald_openapi::Method;
use herald_project::{PrincipalType, Protocol};
use herald_providers::Verdict;
use herald_store::RunStatus;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// Answers larger than this are cut off and the callout fails: no provider answers a send with more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Requests larger than this are not sent: no SMS or WhatsApp send needs more.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How much of a response body a fault message quotes; the whole body stays in the trace.
const FAULT_BODY_CHARS: usize = 300;

/// The decrypted parameters of one principal, wiped from memory when dropped, and any access token
/// fetched with them (masked too, but not readable by formulas).
struct Secrets {
    values: HashMap<String, Zeroizing<String>>,
    tokens: Vec<Zeroizing<String>>,
}

impl SecretSource for Secrets {
    fn secret(&self, parameter: &str) -> Option<Arc<str>> {
        self.values.get(parameter).map(|v| Arc::from(v.as_str()))
    }
}

impl Secrets {
    fn mask(&self, text: &str) -> String {
        mask_secrets(text, self.values.values().chain(self.tokens.iter()).map(|v| v.as_str()))
    }
}

/// Replaces every occurrence of a secret value in `text`. Values shorter than four characters are
/// not masked: they would blank ordinary text and are no secret worth the name.
pub fn mask_secrets<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut masked = text.to_string();
    for secret in secrets {
        if secret.chars().count() >= 4 && masked.contains(secret) {
            masked = masked.replace(secret, herald_flow::MASK);
        }
    }
    masked
}

fn fault(message: String) -> CalloutResult {
    CalloutResult { status: None, body: String::new(), fault: Some(message), micros: 0 }
}

impl Engine {
    /// The first principal of `external` that the running user's permission sets grant.
    async fn principal_for(&self, external: &str, user: &RunUser) -> Result<(String, PrincipalType), String> {
        let project = &self.inner.project.project;
        let granted = self.permission_sets_of(user).await.map_err(|e| e.to_string())?;
        let Some(definition) = project.external_credentials.get(external) else {
            return Err(format!("external credential {external} is not defined"));
        };
        if definition.def.protocol == Protocol::NoAuthentication && definition.def.principals.is_empty() {
            return Ok((String::new(), PrincipalType::Named));
        }
        for principal in &definition.def.principals {
            let grant = format!("{external}-{}", principal.name);
            let has = granted
                .iter()
                .filter_map(|set| project.permission_sets.get(set))
                .any(|set| set.def.external_credential_principal_access.contains(&grant));
            if has {
                return Ok((principal.name.clone(), principal.principal_type));
            }
        }
        let grants: Vec<String> =
            definition.def.principals.iter().map(|p| format!("{external}-{}", p.name)).collect();
        let sets: Vec<&str> = project
            .permission_sets
            .values()
            .filter(|s| s.def.external_credential_principal_access.iter().any(|g| grants.contains(g)))
            .map(|s| s.def.name.as_str())
            .collect();
        let how = if user.id == crate::AUTOMATION_USER_ID {
            "add it to [automation] permission_sets in herald.toml".to_string()
        } else {
            format!("herald user add creates users with --permission-set; assign it to {}", user.name)
        };
        let assign = if sets.is_empty() {
            format!("create a permission set that grants {} and assign it", grants.join(" or "))
        } else {
            format!("assign permission set {} ({how})", sets.join(" or "))
        };
        Err(format!(
            "user {} has no access to external credential {external}: no assigned permission set grants External Credential Principal Access to {}; {assign}",
            user.name,
            grants.join(" or "),
        ))
    }

    async fn secrets(&self, external: &str, principal: &str, user_id: &str) -> Result<Secrets, String> {
        let sealed =
            self.inner.store.secrets(external, principal, user_id).await.map_err(|e| e.to_string())?;
        let place = SecretPlace::new(external, principal, user_id);
        let mut values = HashMap::new();
        for secret in &sealed {
            let value = self.inner.vault.open_secret(&place, secret).map_err(|e| e.to_string())?;
            values.insert(secret.parameter.clone(), value);
        }
        Ok(Secrets { values, tokens: Vec::new() })
    }

    pub(crate) async fn callout(
        &self,
        flow: &CompiledFlow,
        state: &mut RunState,
        run_id: Option<&str>,
        cx: &EvalContext,
    ) -> Result<CalloutResult, EngineError> {
        let Some(credential) = flow.pending_credential(state) else {
            return Ok(fault("the pending element is not an action".into()));
        };
        let named_name = credential.named_credential.to_string();
        let external = credential.external_credential.to_string();
        let user = state.user.clone();
        let (principal, principal_type) = match self.principal_for(&external, &user).await {
            Ok(found) => found,
            Err(message) => return Ok(fault(message)),
        };
        let user_id = if principal_type == PrincipalType::PerUser { user.id.as_str() } else { "" };
        let mut secrets = match self.secrets(&external, &principal, user_id).await {
            Ok(secrets) => secrets,
            Err(message) => return Ok(fault(message)),
        };
        let prepared = match flow.prepare_callout(state, &secrets, cx) {
            Ok(prepared) => prepared,
            Err(message) => return Ok(fault(secrets.mask(&message))),
        };
        let Some(named) = self.inner.project.named_credentials.get(&named_name).cloned() else {
            return Ok(fault(format!("named credential {named_name} is not loaded")));
        };
        let mut headers = match named.render_headers(&secrets, cx) {
            Ok(headers) => headers,
            Err(message) => return Ok(fault(secrets.mask(&message))),
        };
        headers.extend(prepared.headers.iter().cloned());
        if named.generate_authorization_header
            && named.protocol == Protocol::Custom
            && let Some(value) = secrets.secret("Authorization")
        {
            // Seed 001's setup: a Custom principal whose `Authorization` parameter holds "Bearer <key>".
            headers.push(("Authorization".into(), value.to_string()));
        }
        if named.generate_authorization_header && named.protocol == Protocol::Basic {
            use base64::Engine as _;
            let user = secrets.secret("username").unwrap_or_else(|| Arc::from(""));
            let password = secrets.secret("password").unwrap_or_else(|| Arc::from(""));
            let token = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
            );
            headers.push(("Authorization".into(), format!("Basic {}", token.as_str())));
        }
        let url = match self.target_url(&named.url, &named.host, &prepared) {
            Ok(url) => url,
            Err(message) => return Ok(fault(message)),
        };
        // OAuth 2.0 client credentials: a cached access token, fetched before anything is sent.
        let oauth = if named.protocol == Protocol::OAuth2ClientCredentials {
            let key = format!("{external}/{principal}/{user_id}");
            match self.access_token(&external, &key, &secrets).await {
                Ok(token) => {
                    if named.generate_authorization_header {
                        headers.push(("Authorization".into(), format!("Bearer {}", token.as_str())));
                    }
                    secrets.tokens.push(token.clone());
                    Some((key, token))
                }
                Err(message) => return Ok(fault(secrets.mask(&message))),
            }
        } else {
            None
        };

        if let Some(problem) = self.schema_problems(&prepared) {
            return Ok(fault(secrets.mask(&problem)));
        }

        // Journal the attempt before it leaves: after a crash the engine must know it may have arrived.
        flow.mark_sent(state);
        if let Some(run_id) = run_id {
            let snapshot = serde_json::to_value(&*state).unwrap_or(Value::Null);
            self.inner.store.save_run(run_id, RunStatus::Running, &snapshot, None, &now_text()).await?;
        }
        let result = self.send(&prepared, url.clone(), headers.clone(), &secrets).await;
        let Some((key, token)) = oauth.filter(|_| result.status == Some(401)) else { return Ok(result) };
        // The provider refused the token, so nothing was accepted: fetch a fresh one and try once more.
        self.inner.oauth.invalidate_token(&key, &token);
        match self.access_token(&external, &key, &secrets).await {
            Ok(fresh) => {
                let headers: Vec<(String, String)> = headers
                    .into_iter()
                    .map(|(name, value)| {
                        if name == "Authorization" {
                            (name, format!("Bearer {}", fresh.as_str()))
                        } else {
                            (name, value)
                        }
                    })
                    .collect();
                secrets.tokens.push(fresh);
                Ok(self.send(&prepared, url, headers, &secrets).await)
            }
            Err(message) => Ok(fault(secrets.mask(&message))),
        }
    }

    /// The access token of an OAuth 2.0 client-credentials external credential (cached until expiry).
    async fn access_token(
        &self,
        external: &str,
        key: &str,
        secrets: &Secrets,
    ) -> Result<Zeroizing<String>, String> {
        let definition = self
            .inner
            .project
            .project
            .external_credentials
            .get(external)
            .ok_or_else(|| format!("external credential {external} is not defined"))?;
        let token_url =
            definition.def.token_url.as_deref().ok_or_else(|| format!("{external} has no token_url"))?;
        let token_url = self.routed(token_url)?;
        let missing = |parameter: &str| {
            format!(
                "external credential {external} needs `{parameter}`; set it with `herald credential set {external} <principal> {parameter}`"
            )
        };
        let client_id = secrets.values.get("client_id").ok_or_else(|| missing("client_id"))?;
        let client_secret = secrets.values.get("client_secret").ok_or_else(|| missing("client_secret"))?;
        let request = crate::oauth::TokenRequest {
            token_url: &token_url,
            client_id,
            client_secret,
            scope: definition.def.scope.as_deref(),
            cache_key: key,
        };
        self.inner.oauth.token(&request).await.map_err(|error| format!("{external}: {error}"))
    }

    /// A URL as this process reaches it: through the sandbox when one is configured.
    fn routed(&self, url: &str) -> Result<String, String> {
        let Some(sandbox) = &self.inner.sandbox else { return Ok(url.to_string()) };
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("{url} has no host"))?;
        let mut routed = sandbox.clone();
        routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), parsed.path()));
        routed.set_query(parsed.query());
        Ok(routed.to_string())
    }

    /// Checks the body against the operation's schema (external services); nothing invalid is sent.
    fn schema_problems(&self, prepared: &PreparedCallout) -> Option<String> {
        let body = prepared.body.as_ref()?;
        let service = self.inner.project.project.services.get(&prepared.service)?;
        let problems = herald_openapi::validate_request(&service.def.model, &prepared.operation, body);
        if problems.is_empty() {
            return None;
        }
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Some(format!(
            "{} was not sent: the request does not match the spec: {}",
            prepared.action,
            listed.join("; ")
        ))
    }

    fn target_url(&self, base: &str, host: &str, prepared: &PreparedCallout) -> Result<reqwest::Url, String> {
        let path = &prepared.path;
        let lower = path.to_ascii_lowercase();
        let refused = path.split('/').any(|segment| segment == ".." || segment == ".")
            || path.contains("//")
            || lower.contains("%2e%2e")
            || lower.contains("%5c")
            || path.contains('\\')
            || !path.starts_with('/');
        if refused {
            return Err(format!(
                "{}: the path `{path}` is refused: it could leave the named credential's base URL",
                prepared.action
            ));
        }
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| format!("{}: cannot build a URL from {base}{path}: {e}", prepared.action))?;
        if url.host_str() != Some(host) {
            return Err(format!(
                "{}: the request would go to {:?}, not {host}; refused",
                prepared.action,
                url.host_str()
            ));
        }
        if let Some(sandbox) = &self.inner.sandbox {
            let mut routed = sandbox.clone();
            routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), url.path()));
            url = routed;
        }
        if !prepared.query.is_empty() {
            url.query_pairs_mut().extend_pairs(prepared.query.iter());
        }
        Ok(url)
    }

    async fn send(
        &self,
        prepared: &PreparedCallout,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        secrets: &Secrets,
    ) -> CalloutResult {
        let method = match prepared.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self.inner.http.request(method, url);
        for (name, value) in &headers {
            // Headers may carry credentials: sensitive values are kept out of debug output.
            let Ok(mut value) = reqwest::header::HeaderValue::from_str(value) else {
                return fault(format!(
                    "{}: the header `{name}` has a value that cannot be sent in HTTP",
                    prepared.action
                ));
            };
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if let Some(body) = &prepared.body {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            if bytes.len() > MAX_REQUEST_BYTES {
                return fault(format!(
                    "{}: the request body is {} bytes, more than the {MAX_REQUEST_BYTES} a callout may send",
                    prepared.action,
                    bytes.len()
                ));
            }
            request = request.header("content-type", "application/json").body(bytes);
        }
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timed out"
                } else if error.is_connect() {
                    "could not connect"
                } else {
                    "failed before an answer"
                };
                let mut result =
                    fault(secrets.mask(&format!("{} {kind}: {}", prepared.action, error.without_url())));
                result.micros = started.elapsed().as_micros() as u64;
                return result;
            }
        };
        let status = response.status();
        let (body, truncated) = read_limited(response).await;
        let micros = started.elapsed().as_micros() as u64;
        let body_text = secrets.mask(&String::from_utf8_lossy(&body));
        let verdict = if status.is_redirection() {
            Verdict::Failure {
                reason: format!("HTTP {} redirect refused (herald never follows redirects)", status.as_u16()),
            }
        } else if truncated {
            Verdict::Failure { reason: format!("the answer exceeded {MAX_RESPONSE_BYTES} bytes") }
        } else {
            prepared.provider.interpret(status.as_u16(), &body)
        };
        let fault = match verdict {
            Verdict::Success => None,
            Verdict::Failure { reason } => {
                let quoted: String = body_text.chars().take(FAULT_BODY_CHARS).collect();
                let more = if body_text.chars().count() > FAULT_BODY_CHARS { "…" } else { "" };
                Some(format!("{} failed: {reason}. Response body: {quoted}{more}", prepared.action))
            }
        };
        CalloutResult { status: Some(status.as_u16()), body: body_text, fault, micros }
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; says whether more was sent.
async fn read_limited(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) | Err(_) => return (body, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_values_but_not_short_ones() {
        let text = "apikey=abcd1234 businessid=77 again abcd1234";
        let masked = mask_secrets(text, ["abcd1234", "77"]);
        assert_eq!(masked, "apikey=•••••• businessid=77 again ••••••");
    }
}
