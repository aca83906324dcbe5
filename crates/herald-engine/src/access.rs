//! Access: API users with their permission sets, bearer tokens (only their hash is kept), the API
//! scopes a user holds, and the user each run acts as (the triggering user, or the automation user).

use crate::ids::random_text;
use crate::{Engine, EngineError, now_text};
use herald_flow::{CompiledFlow, RunUser};
use herald_project::{ApiScope, RunAs, did_you_mean};
use herald_store::{AccountRow, TokenRow, UserRow};
use sha2::Digest;
use std::collections::BTreeSet;
use zeroize::Zeroizing;

/// The id of the automation user (Salesforce's "Automated Process"), whose permission sets are
/// `[automation] permission_sets` in herald.toml.
pub const AUTOMATION_USER_ID: &str = "005000000000000AAA";

/// Prefix of API tokens, so a leaked one is recognisable in a scanner.
pub const TOKEN_PREFIX: &str = "hrld_";

/// The SHA-256 (hex) kept instead of an API token or a webhook secret.
pub(crate) fn secret_hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets (or their hashes) are equal, in a time that depends on their length only, so
/// that how long a refusal takes tells nothing of how much of a guess was right.
pub fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A token just created: shown once, then only its id is known.
pub struct IssuedToken {
    /// Names the token in listings and revocations; not a secret.
    pub id: String,
    pub token: Zeroizing<String>,
}

/// The acting user of an API request.
pub fn run_user(user: &UserRow) -> RunUser {
    RunUser { id: user.id.clone(), name: user.name.clone() }
}

impl Engine {
    /// The user a run of `flow` acts as when `actor` made the change (`run_as` in the flow file).
    pub(crate) fn run_user_for(&self, flow: &CompiledFlow, actor: &RunUser) -> RunUser {
        match flow.run_as {
            RunAs::TriggeringUser => actor.clone(),
            RunAs::Automation => self.inner.automation.clone(),
        }
    }

    pub fn automation_user(&self) -> &RunUser {
        &self.inner.automation
    }

    /// The active user named `name`, or [`EngineError::UnknownUser`] with the closest name.
    pub async fn user_named(&self, name: &str) -> Result<UserRow, EngineError> {
        match self.inner.store.user_by_name(name).await? {
            Some(user) => Ok(user),
            None => Err(self.unknown_user(name).await?),
        }
    }

    async fn unknown_user(&self, name: &str) -> Result<EngineError, EngineError> {
        let users = self.inner.store.users().await?;
        let hint = did_you_mean(name, users.iter().map(|user| user.name.as_str()));
        Ok(EngineError::UnknownUser { name: name.to_string(), hint })
    }

    /// Creates an API user holding `permission_sets`, which must exist in the project.
    pub async fn create_user(&self, name: &str, permission_sets: &[String]) -> Result<UserRow, EngineError> {
        let known = &self.project().project.permission_sets;
        for set in permission_sets {
            if !known.contains_key(set) {
                return Err(EngineError::UnknownPermissionSet {
                    name: set.clone(),
                    hint: did_you_mean(set, known.keys().map(String::as_str)),
                });
            }
        }
        if self.inner.store.user_by_name(name).await?.is_some() {
            return Err(EngineError::UserExists(name.to_string()));
        }
        let id = format!("005{}", random_text(15));
        self.inner.store.create_user(&id, name, permission_sets, &now_text()).await?;
        self.user_named(name).await
    }

    /// Deactivates a user; its API tokens are refused from the next request on.
    pub async fn deactivate_user(&self, name: &str) -> Result<(), EngineError> {
        if self.inner.store.deactivate_user(name).await? {
            Ok(())
        } else {
            Err(self.unknown_user(name).await?)
        }
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, EngineError> {
        Ok(self.inner.store.users().await?)
    }

    /// Creates an API token for `user`; the token is returned once and only its hash is stored.
    pub async fn create_token(&self, user: &str) -> Result<Zeroizing<String>, EngineError> {
        Ok(self.issue_token(user).await?.token)
    }

    /// Creates an API token for `user`, with its id (which names it in listings and revocations and
    /// is no secret); the token is returned once and only its hash is stored.
    pub async fn issue_token(&self, user: &str) -> Result<IssuedToken, EngineError> {
        let user = self.user_named(user).await?;
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", random_text(32)));
        let id = format!("tok_{}", random_text(16));
        self.inner.store.create_token(&id, &user.id, &secret_hash(&token), &now_text()).await?;
        Ok(IssuedToken { id, token })
    }

    /// Revokes the API token `id`: it is refused from the next request on, on every node. A console
    /// session already signed in with it stays (sessions belong to users; deactivate the user to end
    /// them).
    pub async fn revoke_token(&self, id: &str) -> Result<(), EngineError> {
        if self.inner.store.revoke_token(id, &now_text()).await? {
            Ok(())
        } else {
            Err(EngineError::UnknownToken(id.to_string()))
        }
    }

    /// Every API token, revoked or not (ids and dates, never a hash), by user and creation time.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, EngineError> {
        Ok(self.inner.store.tokens().await?)
    }

    /// Every user, active or deactivated, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, EngineError> {
        Ok(self.inner.store.accounts().await?)
    }

    /// The user a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Option<UserRow>, EngineError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self.inner.store.user_by_token_hash(&secret_hash(token)).await?)
    }

    /// The API scopes `user`'s permission sets grant.
    pub fn scopes(&self, user: &UserRow) -> BTreeSet<ApiScope> {
        let sets = &self.project().project.permission_sets;
        user.permission_sets
            .iter()
            .filter_map(|name| sets.get(name))
            .flat_map(|set| set.def.api_scopes.iter().copied())
            .collect()
    }

    /// The permission sets that grant `scope`, for messages that say what to assign.
    pub fn permission_sets_granting(&self, scope: ApiScope) -> Vec<String> {
        self.project()
            .project
            .permission_sets
            .values()
            .filter(|set| set.def.api_scopes.contains(&scope))
            .map(|set| set.def.name.clone())
            .collect()
    }

    /// The permission sets of the user a run acts as.
    pub(crate) async fn permission_sets_of(&self, user: &RunUser) -> Result<Vec<String>, EngineError> {
        if user.id == AUTOMATION_USER_ID {
            return Ok(self.project().project.config.automation.permission_sets.clone());
        }
        Ok(self.inner.store.user(&user.id).await?.map(|u| u.permission_sets).unwrap_or_default())
    }
}
