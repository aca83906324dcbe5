//! Stage 2 of a callout: the principal's secret values, opened from the vault and wiped from memory
//! when dropped, and the masking that keeps them (and access tokens) out of everything herald keeps.

use crate::{Engine, SecretPlace, VaultError};
use herald_flow::SecretSource;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The decrypted parameters of one principal, wiped from memory when dropped, and any access token
/// fetched with them (masked too, but not readable by formulas).
/// Why a principal's secrets could not be had.
pub(crate) enum SecretsError {
    /// A stored secret does not open: herald's to fix, not the provider's.
    Unreadable(VaultError),
    /// The database could not be read: a fault of the element.
    Other(String),
}

/// The fault of a run whose secret does not open: which secret, why, and what fixes it; never a value.
pub(crate) fn unreadable_secret_message(
    error: &VaultError,
    per_user: Option<&String>,
    run_id: Option<&str>,
) -> String {
    let (name, why, fix) = match error {
        VaultError::Tampered { external_credential, principal, parameter } => {
            let user = per_user.map(|name| format!(" --user {name}")).unwrap_or_default();
            (
                format!("{external_credential}/{principal}/{parameter}"),
                "failed its integrity check: it was altered or copied from elsewhere".to_string(),
                format!(
                    "set it again with `herald credential set {external_credential} {principal} {parameter}{user}` (the value on standard input) or PUT /api/v1/credentials/{external_credential}/{principal}/{parameter}"
                ),
            )
        }
        VaultError::KeyUnavailable { external_credential, principal, parameter, key_id, master } => (
            format!("{external_credential}/{principal}/{parameter}"),
            format!(
                "is sealed under data key {key_id}, which the master key this server uses (fingerprint {master}) does not unwrap: a key rotation retired that master key"
            ),
            "restart this server with the current master key (`herald vault status` shows it)".to_string(),
        ),
        other => {
            (String::from("of this principal"), other.to_string(), "see `herald vault status`".to_string())
        }
    };
    let retry = match run_id {
        Some(run_id) => format!("then `herald runs retry {run_id}`"),
        None => "then run it again".to_string(),
    };
    format!(
        "the stored secret {name} cannot be opened: it {why}. Nothing was sent, and the flow's fault path was not taken: the provider refused nothing, herald could not read its own credential. To fix it, {fix}, {retry}"
    )
}

pub(crate) struct Secrets {
    pub(crate) values: HashMap<String, Zeroizing<String>>,
    /// What herald made of them and sent: access tokens, the generated `Authorization` header's
    /// credentials, headers whose formulas read them. Masked like the values, never readable by
    /// formulas.
    derived: Vec<Zeroizing<String>>,
}

impl SecretSource for Secrets {
    fn secret(&self, parameter: &str) -> Option<Arc<str>> {
        self.values.get(parameter).map(|v| Arc::from(v.as_str()))
    }
}

impl Secrets {
    pub(crate) fn new(values: HashMap<String, Zeroizing<String>>) -> Secrets {
        Secrets { values, derived: Vec::new() }
    }

    /// Notes a value herald derived from the secrets and sends, such as a header value. A value of
    /// the form `Scheme credentials` (`Basic dXNlcjpwYXNz`, `Bearer abc`) is noted without its scheme
    /// too, since a provider may echo the credentials alone.
    pub(crate) fn sends(&mut self, value: &str) {
        if let Some((scheme, credentials)) = value.split_once(' ')
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphabetic())
        {
            self.derived.push(Zeroizing::new(credentials.trim().to_string()));
        }
        self.derived.push(Zeroizing::new(value.to_string()));
    }

    pub(crate) fn mask(&self, text: &str) -> String {
        mask_secrets(text, self.values.values().chain(self.derived.iter()).map(|v| v.as_str()))
    }
}

/// Replaces every occurrence of a secret value in `text`, in each form in which herald sends it: as
/// it is, JSON-escaped (in a JSON body), percent-encoded (in a URL) and form-encoded (in a form
/// body). Values shorter than four characters are not masked: they would blank ordinary text and are
/// no secret worth the name. A provider that transforms a secret in a way of its own (hashes it,
/// cuts it) can still echo it; see docs/security.md.
pub fn mask_secrets<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut forms: Vec<Zeroizing<String>> = Vec::new();
    for secret in secrets.into_iter().filter(|secret| secret.chars().count() >= 4) {
        for form in sent_forms(secret) {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    // Longest first: a form that holds another (the JSON-escaped value holds pieces of the raw one)
    // is masked whole, not piecemeal.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    let mut masked = text.to_string();
    for form in &forms {
        if masked.contains(form.as_str()) {
            masked = masked.replace(form.as_str(), herald_flow::MASK);
        }
    }
    masked
}

/// The forms in which a secret leaves herald: raw, JSON-escaped, percent-encoded (upper- and
/// lower-case hex) and form-encoded.
fn sent_forms(secret: &str) -> Vec<Zeroizing<String>> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut forms = vec![Zeroizing::new(secret.to_string())];
    let json = Zeroizing::new(serde_json::Value::from(secret).to_string());
    let percent = Zeroizing::new(utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string());
    let percent_lower = Zeroizing::new(lower_hex_escapes(&percent));
    let form = Zeroizing::new(form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>());
    for candidate in [Zeroizing::new(json[1..json.len() - 1].to_string()), percent, percent_lower, form] {
        if !forms.contains(&candidate) {
            forms.push(candidate);
        }
    }
    forms
}

/// `%2F` as `%2f`: some servers echo percent escapes in lower case.
fn lower_hex_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

impl Engine {
    pub(crate) async fn secrets(
        &self,
        external: &str,
        principal: &str,
        user_id: &str,
    ) -> Result<Secrets, SecretsError> {
        let sealed = self
            .inner
            .store
            .secrets(external, principal, user_id)
            .await
            .map_err(|e| SecretsError::Other(e.to_string()))?;
        let place = SecretPlace::new(external, principal, user_id);
        let mut values = HashMap::new();
        for secret in &sealed {
            let value = self.inner.vault.open_secret(&place, secret).await.map_err(|error| {
                if error.is_unreadable_secret() {
                    SecretsError::Unreadable(error)
                } else {
                    SecretsError::Other(error.to_string())
                }
            })?;
            values.insert(secret.parameter.clone(), value);
        }
        Ok(Secrets::new(values))
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

    #[test]
    fn a_secret_echoed_json_escaped_percent_encoded_or_form_encoded_is_masked() {
        let secret = r#"pa"ss/wo rd\1"#;
        let json = serde_json::json!({ "echo": secret }).to_string();
        assert!(!json.contains(secret), "the JSON form differs from the raw one: {json}");
        assert_eq!(mask_secrets(&json, [secret]), r#"{"echo":"••••••"}"#);
        let query = "https://x.test/?k=pa%22ss%2Fwo%20rd%5C1&k2=pa%22ss%2fwo%20rd%5c1";
        assert_eq!(mask_secrets(query, [secret]), "https://x.test/?k=••••••&k2=••••••");
        let form = "a=1&key=pa%22ss%2Fwo+rd%5C1";
        assert_eq!(mask_secrets(form, [secret]), "a=1&key=••••••");
    }

    #[test]
    fn the_credentials_of_a_header_herald_sent_are_masked_with_or_without_their_scheme() {
        let mut secrets = Secrets::new(HashMap::new());
        secrets.sends("Basic dXNlcjpodW50ZXIy");
        let echoed = r#"{"headers":{"authorization":"Basic dXNlcjpodW50ZXIy"},"seen":"dXNlcjpodW50ZXIy"}"#;
        assert_eq!(secrets.mask(echoed), r#"{"headers":{"authorization":"••••••"},"seen":"••••••"}"#);
    }
}
