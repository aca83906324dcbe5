//! Secret values of external credentials: set one (sealed by the vault, never returned), and rotate
//! the key that seals them.

use crate::{Engine, EngineError, KeySource, Rotation, SecretPlace};
use herald_project::{PrincipalType, did_you_mean};

impl Engine {
    /// Stores one secret parameter, encrypted. The principal and parameter must be declared; a per-user
    /// principal needs the user it belongs to.
    pub async fn set_secret(
        &self,
        external: &str,
        principal: &str,
        parameter: &str,
        value: &[u8],
        user: Option<&str>,
    ) -> Result<(), EngineError> {
        let externals = &self.project().project.external_credentials;
        let Some(definition) = externals.get(external) else {
            return Err(EngineError::UnknownPrincipal {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                hint: did_you_mean(external, externals.keys().map(String::as_str))
                    .map(|h| format!("no external credential `{external}`; {h}")),
            });
        };
        let Some(declared) = definition.def.principals.iter().find(|p| p.name == principal) else {
            return Err(EngineError::UnknownPrincipal {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                hint: did_you_mean(principal, definition.def.principals.iter().map(|p| p.name.as_str())),
            });
        };
        if !declared.parameters.iter().any(|p| p == parameter) {
            return Err(EngineError::UnknownParameter {
                external_credential: external.to_string(),
                principal: principal.to_string(),
                parameter: parameter.to_string(),
                known: declared.parameters.join(", "),
            });
        }
        let user_id = match (declared.principal_type, user) {
            (PrincipalType::Named, None) => String::new(),
            (PrincipalType::PerUser, Some(name)) => self.user_named(name).await?.id,
            (PrincipalType::Named, Some(_)) => {
                return Err(EngineError::UserNotAllowed {
                    external_credential: external.into(),
                    principal: principal.into(),
                });
            }
            (PrincipalType::PerUser, None) => {
                return Err(EngineError::UserRequired {
                    external_credential: external.into(),
                    principal: principal.into(),
                });
            }
        };
        let place = SecretPlace::new(external, principal, &user_id);
        self.inner.vault.store_secret(&place, parameter, value).await?;
        Ok(())
    }

    /// Where each secret value is stored and when it was last set; never a value.
    pub async fn secret_settings(&self) -> Result<Vec<herald_store::SecretSetting>, EngineError> {
        Ok(self.inner.store.secret_settings().await?)
    }

    /// Rotates the master key while servers may be running (see [`Vault::rotate`]). With a key file,
    /// waits up to 20 s for the running servers to switch to the new key, so that the old one is
    /// retired before this returns; servers keyed by `HERALD_MASTER_KEY` switch only when restarted.
    pub async fn rotate_key(&self) -> Result<Rotation, EngineError> {
        let wait = match self.inner.vault.source {
            KeySource::File(_) => std::time::Duration::from_secs(20),
            KeySource::Environment => std::time::Duration::from_secs(2),
        };
        Ok(self.inner.vault.rotate_and_finish(wait).await?)
    }
}
