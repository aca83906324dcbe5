//! Console sign-in: passwords and sessions.
//!
//! A password is kept only as an Argon2id hash in its PHC string (algorithm, parameters and salt
//! travel with it, so stronger parameters later still verify old hashes). A session is a random id
//! given to the browser once, as a cookie; the store keeps only its SHA-256, as it does for API
//! tokens, so a copy of the database signs nobody in. Each session carries its own CSRF token, which
//! every state-changing console request must send back in its form.
//!
//! Signing in answers the same way whether the user is unknown, has no password, or gave a wrong
//! one, and an unknown user costs the same Argon2 work as a known one, so neither the answer nor its
//! timing says which names exist.

use crate::access::secret_hash;
use crate::ids::random_text;
use crate::{Engine, EngineError, now_text};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{SecondsFormat, Utc};
use herald_store::{SessionRow, UserRow};
use rand::Rng;
use zeroize::Zeroizing;

/// How long a console session lasts from sign-in: a working day, after which the user signs in again.
pub const SESSION_HOURS: i64 = 12;

/// A session just started: its id goes to the browser once (as the cookie) and is never stored.
pub struct NewSession {
    pub id: Zeroizing<String>,
    pub csrf_token: String,
    pub expires_at: String,
}

/// The user behind a live console session, and the CSRF token its forms carry.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: UserRow,
    pub csrf_token: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// The Argon2id hash (PHC string) of `password` under a fresh random salt.
fn hash_password(password: &str) -> Result<String, EngineError> {
    let salt_bytes: [u8; 16] = rand::thread_rng().r#gen();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|error| EngineError::Password(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| EngineError::Password(error.to_string()))
}

/// Whether `password` matches `stored` (argon2 compares the digests in constant time). A stored
/// string that does not parse matches nothing.
fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash no password matches, verified for an unknown user so that signing in as one takes as long
/// as signing in as a known user.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_text(32)).unwrap_or_default())
}

impl Engine {
    /// Sets (or replaces) the console password of the active user `name`.
    pub async fn set_password(&self, name: &str, password: Zeroizing<String>) -> Result<(), EngineError> {
        let user = self.user_named(name).await?;
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|error| EngineError::Password(error.to_string()))??;
        self.inner.store.set_password_hash(&user.id, &hash, &now_text()).await?;
        Ok(())
    }

    /// The active user `name`, if `password` is theirs; `None` for an unknown user, a user without a
    /// password, and a wrong password alike.
    pub async fn check_password(
        &self,
        name: &str,
        password: Zeroizing<String>,
    ) -> Result<Option<UserRow>, EngineError> {
        let user = self.inner.store.user_by_name(name).await?;
        let stored = match &user {
            Some(user) => self.inner.store.password_hash(&user.id).await?,
            None => None,
        };
        let matches = tokio::task::spawn_blocking(move || match stored {
            Some(stored) => password_matches(&password, &stored),
            None => {
                password_matches(&password, decoy_hash());
                false
            }
        })
        .await
        .map_err(|error| EngineError::Password(error.to_string()))?;
        Ok(if matches { user } else { None })
    }

    /// Starts a console session for `user`, lasting [`SESSION_HOURS`].
    pub async fn start_session(&self, user: &UserRow) -> Result<NewSession, EngineError> {
        let now = Utc::now();
        let expires_at =
            (now + chrono::Duration::hours(SESSION_HOURS)).to_rfc3339_opts(SecondsFormat::Micros, true);
        let id = Zeroizing::new(random_text(43));
        let csrf_token = random_text(43);
        let row = SessionRow {
            user_id: user.id.clone(),
            csrf_token: csrf_token.clone(),
            created_at: now.to_rfc3339_opts(SecondsFormat::Micros, true),
            expires_at: expires_at.clone(),
        };
        self.inner.store.create_session(&secret_hash(&id), &row).await?;
        Ok(NewSession { id, csrf_token, expires_at })
    }

    /// The user of a live session (not expired, user still active), with its CSRF token.
    pub async fn session_user(&self, session_id: &str) -> Result<Option<SignedIn>, EngineError> {
        let Some(session) = self.inner.store.session(&secret_hash(session_id)).await? else {
            return Ok(None);
        };
        if session.expires_at <= now_text() {
            return Ok(None);
        }
        let user = self.inner.store.user(&session.user_id).await?;
        Ok(user.map(|user| SignedIn { user, csrf_token: session.csrf_token }))
    }

    /// Ends a console session (signing out); an unknown or ended one is no error.
    pub async fn end_session(&self, session_id: &str) -> Result<(), EngineError> {
        self.inner.store.delete_session(&secret_hash(session_id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_argon2id_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horsf", &hash));
        assert!(!password_matches("correct horse", "not a phc string"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "each hash has its own salt");
    }
}
