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
    pub(crate) tokens: Vec<Zeroizing<String>>,
}

impl SecretSource for Secrets {
    fn secret(&self, parameter: &str) -> Option<Arc<str>> {
        self.values.get(parameter).map(|v| Arc::from(v.as_str()))
    }
}

impl Secrets {
    pub(crate) fn mask(&self, text: &str) -> String {
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
        Ok(Secrets { values, tokens: Vec::new() })
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
