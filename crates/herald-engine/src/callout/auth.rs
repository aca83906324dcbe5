//! Stage 3 of a callout: the headers that authenticate it. The named credential's custom headers
//! (formulas over the principal's secrets), the generated `Authorization` header (Basic, a Custom
//! principal's `Authorization` parameter, or an OAuth 2.0 access token fetched and cached), then the
//! action's own header parameters.

use super::secrets::Secrets;
use crate::Engine;
use zeroize::Zeroizing;

impl Engine {
    /// The access token of an OAuth 2.0 client-credentials external credential (cached until expiry).
    pub(crate) async fn access_token(
        &self,
        external: &str,
        key: &str,
        secrets: &Secrets,
    ) -> Result<Zeroizing<String>, String> {
        let project = self.project();
        let definition = project
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
}

/// The headers that authenticate a request and the action's own: the named credential's custom
/// headers, the generated `Authorization` header for Basic and for a Custom principal that holds one,
/// then the action's header parameters. (OAuth's bearer token is added once fetched.)
///
/// Every value made from the secrets is noted in `secrets`, so that an answer echoing it is masked.
pub(crate) fn headers(
    named: &herald_flow::NamedCredentialRuntime,
    secrets: &mut Secrets,
    prepared: &herald_flow::PreparedCallout,
    cx: &herald_expr::EvalContext,
) -> Result<Vec<(String, String)>, String> {
    use herald_flow::SecretSource;
    use herald_project::Protocol;
    let mut headers = Vec::new();
    for header in named.render_headers(secrets, cx)? {
        if header.carries_secret {
            secrets.sends(&header.value);
        }
        headers.push((header.name, header.value));
    }
    headers.extend(prepared.headers.iter().cloned());
    // The loader already refuses these in named credentials and specs; checked again here, where
    // the request is made, so that no path to a request can set its framing or routing.
    if let Some((name, why)) =
        headers.iter().find_map(|(name, _)| herald_openapi::header_refusal(name).map(|why| (name, why)))
    {
        return Err(format!("the header {name} is refused: {why}"));
    }
    if named.generate_authorization_header
        && named.protocol == Protocol::Custom
        && let Some(value) = secrets.secret("Authorization")
    {
        // Seed 001's setup: a Custom principal whose `Authorization` parameter holds "Bearer <key>".
        secrets.sends(&value);
        headers.push(("Authorization".into(), value.to_string()));
    }
    if named.generate_authorization_header && named.protocol == Protocol::Basic {
        use base64::Engine as _;
        let user = secrets.secret("username").unwrap_or_else(|| std::sync::Arc::from(""));
        let password = secrets.secret("password").unwrap_or_else(|| std::sync::Arc::from(""));
        let token =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let value = format!("Basic {}", token.as_str());
        secrets.sends(&value);
        headers.push(("Authorization".into(), value));
    }
    Ok(headers)
}

/// `headers` with the bearer token replaced by `token` (after a provider refused the cached one).
pub(crate) fn with_bearer(headers: Vec<(String, String)>, token: &str) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(
            |(name, value)| {
                if name == "Authorization" { (name, format!("Bearer {token}")) } else { (name, value) }
            },
        )
        .collect()
}
