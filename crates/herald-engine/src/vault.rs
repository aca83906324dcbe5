//! Secrets encrypted at rest with XChaCha20-Poly1305 under a master key that never enters the database.
//!
//! Each ciphertext is bound to its place (external credential, principal, parameter) through the
//! associated data, so a row copied onto another parameter fails to decrypt instead of leaking.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use herald_store::{SealedSecret, Store};
use rand::RngCore;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// The environment variable that carries the master key (32 bytes, base64 or hex).
pub const MASTER_KEY_ENV: &str = "HERALD_MASTER_KEY";
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
        vault.check(store).await?;
        Ok(vault)
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
            None => {
                let nonce = random_nonce();
                let ciphertext = self
                    .cipher
                    .encrypt(
                        XNonce::from_slice(&nonce),
                        Payload { msg: CHECK_PLAINTEXT, aad: CHECK_KEY.as_bytes() },
                    )
                    .map_err(|_| VaultError::WrongKey)?;
                let mut sealed = nonce.to_vec();
                sealed.extend(ciphertext);
                store.set_meta(CHECK_KEY, &base64::engine::general_purpose::STANDARD.encode(sealed)).await?;
            }
        }
        Ok(())
    }

    pub fn seal(
        &self,
        external_credential: &str,
        principal: &str,
        parameter: &str,
        value: &[u8],
    ) -> SealedSecret {
        let nonce = random_nonce();
        let aad = associated_data(external_credential, principal, parameter);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: aad.as_bytes() })
            .unwrap_or_default();
        SealedSecret { parameter: parameter.to_string(), nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open_secret(
        &self,
        external_credential: &str,
        principal: &str,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, VaultError> {
        let tampered = || VaultError::Tampered {
            external_credential: external_credential.to_string(),
            principal: principal.to_string(),
            parameter: sealed.parameter.clone(),
        };
        if sealed.nonce.len() != 24 {
            return Err(tampered());
        }
        let aad = associated_data(external_credential, principal, &sealed.parameter);
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
    let fail = |reason: String| VaultError::KeyFile { path: path.to_path_buf(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut text = Zeroizing::new(text);
            let key =
                decode_key(text.trim()).map_err(|_| fail("it does not hold a base64 32-byte key".into()));
            text.zeroize();
            key
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::thread_rng().fill_bytes(&mut *key);
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*key));
            write_private(path, encoded.as_bytes()).map_err(|e| fail(e.to_string()))?;
            Ok(key)
        }
        Err(error) => Err(fail(error.to_string())),
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
        let sealed = vault.seal("X", "P", "apikey", b"s3cret-value");
        assert!(!sealed.ciphertext.windows(12).any(|w| w == b"s3cret-value"));
        assert_eq!(vault.open_secret("X", "P", &sealed).unwrap().as_str(), "s3cret-value");
        let moved = SealedSecret { parameter: "businessid".into(), ..sealed.clone() };
        let error = vault.open_secret("X", "P", &moved).unwrap_err();
        assert!(matches!(error, VaultError::Tampered { .. }));
        assert!(!error.to_string().contains("s3cret"));
        let mut flipped = sealed;
        flipped.ciphertext[0] ^= 1;
        assert!(matches!(vault.open_secret("X", "P", &flipped), Err(VaultError::Tampered { .. })));
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
}
