//! Stage 2 of a callout: the principal's secret values, opened from the vault and wiped from memory
//! when dropped, and the masking that keeps them (and access tokens) out of everything herald keeps.

use crate::{Engine, SecretPlace};
use herald_flow::SecretSource;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The decrypted parameters of one principal, wiped from memory when dropped, and any access token
/// fetched with them (masked too, but not readable by formulas).
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
    ) -> Result<Secrets, String> {
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
