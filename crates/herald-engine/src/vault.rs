//! Secrets encrypted at rest with XChaCha20-Poly1305 under a master key that never enters the database.
//!
//! Each ciphertext is bound to its place (external credential, principal, parameter) through the
//! associated data, so a row copied onto another parameter fails to decrypt instead of leaking.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use herald_store::{PlacedSecret, SealedSecret, Store};
use rand::RngCore;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable that carries the master key (32 bytes, base64 or hex).
pub const MASTER_KEY_ENV: &str = "HERALD_MASTER_KEY";
/// With `HERALD_MASTER_KEY`, `herald vault rotate-key` takes the new key from this variable.
pub const NEW_MASTER_KEY_ENV: &str = "HERALD_NEW_MASTER_KEY";
const CHECK_KEY: &str = "vault.check";
const CHECK_PLAINTEXT: &[u8] = b"herald vault key check v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "{MASTER_KEY_ENV} is not a 32-byte key in base64 or hex; generate one with `openssl rand -base64 32`"
    )]
    BadKeyEncoding,
    #[error("cannot read or create the master key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "the master key does not match this database (its secrets were sealed with another key); use the key the database was created with"
    )]
    WrongKey,
    #[error(
        "the stored secret {external_credential}/{principal}/{parameter} failed its integrity check: it was altered or copied from elsewhere; set it again with `herald credential set`"
    )]
    Tampered { external_credential: String, principal: String, parameter: String },
    #[error("the master key comes from {MASTER_KEY_ENV}: put the new key in {NEW_MASTER_KEY_ENV} to rotate")]
    NoNewKey,
    #[error(transparent)]
    Store(#[from] herald_store::StoreError),
}

/// Where the master key came from, for messages that must never show the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
}

pub struct Vault {
    cipher: XChaCha20Poly1305,
    pub source: KeySource,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Vault {
    /// The key from `HERALD_MASTER_KEY`, or from `key_file`, created with mode 0600 on first use.
    pub async fn open(store: &Store, key_file: &Path) -> Result<Vault, VaultError> {
        let (key, source) = match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => (decode_key(text.trim())?, KeySource::Environment),
            Err(_) => (read_or_create_key_file(key_file)?, KeySource::File(key_file.to_path_buf())),
        };
        let vault = Vault { cipher: XChaCha20Poly1305::new((&*key).into()), source };
        match vault.check(store).await {
            Err(VaultError::WrongKey) if vault.source != KeySource::Environment => {
                // A rotation that committed the database but stopped before renaming the new key file.
                let pending = pending_key_file(key_file);
                if !pending.exists() {
                    return Err(VaultError::WrongKey);
                }
                let new_key = read_key_file(&pending)?;
                let rotated = Vault {
                    cipher: XChaCha20Poly1305::new((&*new_key).into()),
                    source: vault.source.clone(),
                };
                rotated.check(store).await?;
                std::fs::rename(&pending, key_file).map_err(|e| VaultError::KeyFile {
                    path: key_file.to_path_buf(),
                    reason: e.to_string(),
                })?;
                Ok(rotated)
            }
            Err(error) => Err(error),
            Ok(()) => Ok(vault),
        }
    }

    /// Re-encrypts every secret under a new key, in one transaction. With a key file, the new key is
    /// written beside it first and takes its place once the database is committed; with
    /// `HERALD_MASTER_KEY`, the new key comes from `HERALD_NEW_MASTER_KEY` and the caller must switch
    /// the variable afterwards. Returns how many secrets were re-encrypted.
    pub async fn rotate(&self, store: &Store) -> Result<usize, VaultError> {
        let secrets = store.all_secrets().await?;
        let mut plain = Vec::with_capacity(secrets.len());
        for placed in &secrets {
            let place = SecretPlace::new(&placed.external_credential, &placed.principal, &placed.user_id);
            plain.push((placed, self.open_secret(&place, &placed.sealed)?));
        }
        let (new_key, pending) = match &self.source {
            KeySource::Environment => {
                let text = std::env::var(NEW_MASTER_KEY_ENV).map_err(|_| VaultError::NoNewKey)?;
                (decode_key(text.trim())?, None)
            }
            KeySource::File(path) => {
                let pending = pending_key_file(path);
                let _ = std::fs::remove_file(&pending);
                let mut key = Zeroizing::new([0u8; 32]);
                rand::thread_rng().fill_bytes(&mut *key);
                let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*key));
                write_private(&pending, encoded.as_bytes())
                    .map_err(|e| VaultError::KeyFile { path: pending.clone(), reason: e.to_string() })?;
                (key, Some((pending, path.clone())))
            }
        };
        let rotated =
            Vault { cipher: XChaCha20Poly1305::new((&*new_key).into()), source: self.source.clone() };
        let resealed: Vec<PlacedSecret> = plain
            .iter()
            .map(|(placed, value)| {
                let place = SecretPlace::new(&placed.external_credential, &placed.principal, &placed.user_id);
                PlacedSecret {
                    external_credential: placed.external_credential.clone(),
                    principal: placed.principal.clone(),
                    user_id: placed.user_id.clone(),
                    sealed: rotated.seal(&place, &placed.sealed.parameter, value.as_bytes()),
                }
            })
            .collect();
        let check = rotated.check_value();
        store.rewrite_secrets(&resealed, (CHECK_KEY, &check), &crate::now_text()).await?;
        if let Some((pending, path)) = pending {
            std::fs::rename(&pending, &path)
                .map_err(|e| VaultError::KeyFile { path, reason: e.to_string() })?;
        }
        Ok(resealed.len())
    }

    fn check_value(&self) -> String {
        let nonce = random_nonce();
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: CHECK_PLAINTEXT, aad: CHECK_KEY.as_bytes() })
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        base64::engine::general_purpose::STANDARD.encode(sealed)
    }

    /// Proves the key is the database's own before anything is sealed with it.
    async fn check(&self, store: &Store) -> Result<(), VaultError> {
        match store.meta(CHECK_KEY).await? {
            Some(stored) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(stored)
                    .map_err(|_| VaultError::WrongKey)?;
                if bytes.len() < 24 {
                    return Err(VaultError::WrongKey);
                }
                let (nonce, ciphertext) = bytes.split_at(24);
                let plain = self
                    .cipher
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload { msg: ciphertext, aad: CHECK_KEY.as_bytes() },
                    )
                    .map_err(|_| VaultError::WrongKey)?;
                if plain != CHECK_PLAINTEXT {
                    return Err(VaultError::WrongKey);
                }
            }
            None => store.set_meta(CHECK_KEY, &self.check_value()).await?,
        }
        Ok(())
    }

    pub fn seal(&self, place: &SecretPlace<'_>, parameter: &str, value: &[u8]) -> SealedSecret {
        let nonce = random_nonce();
        let aad = place.associated_data(parameter);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: aad.as_bytes() })
            .unwrap_or_default();
        SealedSecret { parameter: parameter.to_string(), nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open_secret(
        &self,
        place: &SecretPlace<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, VaultError> {
        let tampered = || VaultError::Tampered {
            external_credential: place.external_credential.to_string(),
            principal: place.principal.to_string(),
            parameter: sealed.parameter.clone(),
        };
        if sealed.nonce.len() != 24 {
            return Err(tampered());
        }
        let aad = place.associated_data(&sealed.parameter);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload { msg: &sealed.ciphertext, aad: aad.as_bytes() },
            )
            .map_err(|_| tampered())?;
        let plain = Zeroizing::new(plain);
        match std::str::from_utf8(&plain) {
            Ok(text) => Ok(Zeroizing::new(text.to_string())),
            Err(_) => Err(tampered()),
        }
    }
}

/// Where a secret belongs: the associated data of its ciphertext, so a row moved elsewhere fails.
#[derive(Clone, Copy, Debug)]
pub struct SecretPlace<'a> {
    pub external_credential: &'a str,
    pub principal: &'a str,
    /// Empty for a named principal; the user's id for a per-user principal.
    pub user_id: &'a str,
}

impl<'a> SecretPlace<'a> {
    pub fn new(external_credential: &'a str, principal: &'a str, user_id: &'a str) -> SecretPlace<'a> {
        SecretPlace { external_credential, principal, user_id }
    }

    fn associated_data(&self, parameter: &str) -> String {
        let mut aad = associated_data(self.external_credential, self.principal, parameter);
        if !self.user_id.is_empty() {
            aad.push_str("\0user:");
            aad.push_str(self.user_id);
        }
        aad
    }
}

fn pending_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| VaultError::KeyFile { path: path.to_path_buf(), reason: e.to_string() })?,
    );
    decode_key(text.trim()).map_err(|_| VaultError::KeyFile {
        path: path.to_path_buf(),
        reason: "it does not hold a base64 32-byte key".into(),
    })
}

fn associated_data(external_credential: &str, principal: &str, parameter: &str) -> String {
    format!("herald-secret-v1\0{external_credential}\0{principal}\0{parameter}")
}

fn random_nonce() -> [u8; 24] {
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

fn decode_key(text: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let bytes = Zeroizing::new(if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).unwrap_or(0)).collect::<Vec<u8>>()
    } else {
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| VaultError::BadKeyEncoding)?
    });
    if bytes.len() != 32 {
        return Err(VaultError::BadKeyEncoding);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn read_or_create_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    match std::fs::metadata(path) {
        Ok(_) => read_key_file(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::thread_rng().fill_bytes(&mut *key);
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*key));
            write_private(path, encoded.as_bytes())
                .map_err(|e| VaultError::KeyFile { path: path.to_path_buf(), reason: e.to_string() })?;
            Ok(key)
        }
        Err(error) => Err(VaultError::KeyFile { path: path.to_path_buf(), reason: error.to_string() }),
    }
}

/// Creates the file with mode 0600 before any byte is written, and never overwrites one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn seals_and_opens_bound_to_the_parameter() {
        let (dir, store) = setup().await;
        let vault = Vault::open(&store, &dir.path().join("key")).await.unwrap();
        let place = SecretPlace::new("X", "P", "");
        let sealed = vault.seal(&place, "apikey", b"s3cret-value");
        assert!(!sealed.ciphertext.windows(12).any(|w| w == b"s3cret-value"));
        assert_eq!(vault.open_secret(&place, &sealed).unwrap().as_str(), "s3cret-value");
        let moved = SealedSecret { parameter: "businessid".into(), ..sealed.clone() };
        let error = vault.open_secret(&place, &moved).unwrap_err();
        assert!(matches!(error, VaultError::Tampered { .. }));
        assert!(!error.to_string().contains("s3cret"));
        let other_user = SecretPlace::new("X", "P", "005u");
        assert!(matches!(vault.open_secret(&other_user, &sealed), Err(VaultError::Tampered { .. })));
        let mut flipped = sealed;
        flipped.ciphertext[0] ^= 1;
        assert!(matches!(vault.open_secret(&place, &flipped), Err(VaultError::Tampered { .. })));
    }

    #[tokio::test]
    async fn the_key_file_is_private_and_a_wrong_key_is_refused() {
        let (dir, store) = setup().await;
        let key_path = dir.path().join("master.key");
        Vault::open(&store, &key_path).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The same key file opens again; another key is refused.
        Vault::open(&store, &key_path).await.unwrap();
        let other = dir.path().join("other.key");
        let error = Vault::open(&store, &other).await.unwrap_err();
        assert!(matches!(error, VaultError::WrongKey), "{error}");
    }

    #[tokio::test]
    async fn rotation_reencrypts_everything_and_retires_the_old_key() {
        let (dir, store) = setup().await;
        let key_path = dir.path().join("master.key");
        let vault = Vault::open(&store, &key_path).await.unwrap();
        let old_key = std::fs::read_to_string(&key_path).unwrap();
        for (parameter, value) in [("apikey", "value-one"), ("businessid", "value-two")] {
            let place = SecretPlace::new("X", "P", "");
            store
                .put_secret("X", "P", "", &vault.seal(&place, parameter, value.as_bytes()), "t")
                .await
                .unwrap();
        }
        let before = store.all_secrets().await.unwrap();
        assert_eq!(vault.rotate(&store).await.unwrap(), 2);
        let new_key = std::fs::read_to_string(&key_path).unwrap();
        assert_ne!(old_key, new_key);
        assert!(!pending_key_file(&key_path).exists());
        let after = store.all_secrets().await.unwrap();
        assert_ne!(before[0].sealed.ciphertext, after[0].sealed.ciphertext);
        let reopened = Vault::open(&store, &key_path).await.unwrap();
        let place = SecretPlace::new("X", "P", "");
        assert_eq!(reopened.open_secret(&place, &after[0].sealed).unwrap().as_str(), "value-one");
        // The old key no longer opens the database.
        let old_path = dir.path().join("old.key");
        std::fs::write(&old_path, old_key).unwrap();
        assert!(matches!(Vault::open(&store, &old_path).await, Err(VaultError::WrongKey)));
    }

    #[tokio::test]
    async fn a_rotation_interrupted_after_commit_finishes_on_the_next_open() {
        let (dir, store) = setup().await;
        let key_path = dir.path().join("master.key");
        let vault = Vault::open(&store, &key_path).await.unwrap();
        let place = SecretPlace::new("X", "P", "");
        store.put_secret("X", "P", "", &vault.seal(&place, "apikey", b"value-one"), "t").await.unwrap();
        vault.rotate(&store).await.unwrap();
        // Simulate the crash window: the database has the new key, the file still holds the old one.
        let new_key = std::fs::read_to_string(&key_path).unwrap();
        std::fs::write(pending_key_file(&key_path), &new_key).unwrap();
        let mut old = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut old);
        std::fs::write(&key_path, base64::engine::general_purpose::STANDARD.encode(old)).unwrap();
        let recovered = Vault::open(&store, &key_path).await.unwrap();
        assert_eq!(std::fs::read_to_string(&key_path).unwrap(), new_key);
        let sealed = &store.all_secrets().await.unwrap()[0].sealed;
        assert_eq!(recovered.open_secret(&place, sealed).unwrap().as_str(), "value-one");
    }

    #[tokio::test]
    async fn a_tampered_row_stops_a_rotation_before_anything_changes() {
        let (dir, store) = setup().await;
        let key_path = dir.path().join("master.key");
        let vault = Vault::open(&store, &key_path).await.unwrap();
        let place = SecretPlace::new("X", "P", "");
        let mut sealed = vault.seal(&place, "apikey", b"value-one");
        sealed.ciphertext[3] ^= 0x40;
        store.put_secret("X", "P", "", &sealed, "t").await.unwrap();
        let key_before = std::fs::read_to_string(&key_path).unwrap();
        assert!(matches!(vault.rotate(&store).await, Err(VaultError::Tampered { .. })));
        assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key_before);
        assert_eq!(store.all_secrets().await.unwrap()[0].sealed.ciphertext, sealed.ciphertext);
    }
}
