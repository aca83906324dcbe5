//! Secrets encrypted at rest, with envelope keys, so that a master key can be rotated under a running
//! server.
//!
//! Each secret is sealed with XChaCha20-Poly1305 under a *data key*; data keys live in the database
//! only wrapped (encrypted) under a *master key*, which never enters it (`HERALD_MASTER_KEY`, or a key
//! file beside the database). A rotation adds a master key and wraps every data key under it as well,
//! so a process that still holds the old master key keeps opening every secret and sealing new ones
//! until it switches; the old key's wrappings are deleted only once no live process uses it.
//!
//! Each ciphertext is bound to its place (external credential, principal, parameter, user) and to its
//! data key through the associated data, so a row copied onto another parameter fails to decrypt
//! instead of leaking where it does not belong.

mod rotation;
mod status;
#[cfg(test)]
mod tests;
mod upkeep;

pub use rotation::{MasterInUse, Rotation, RotationProgress};
pub use status::{UnreadableSecret, VaultHealth, VaultMasterStatus, VaultNodeStatus, VaultStatus};
pub(crate) use upkeep::live_since;
pub use upkeep::{LIVE_FOR, UPKEEP_EVERY};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use herald_store::{ACTIVE_KEY_META, PlacedSecret, SealedSecret, SecretRow, Store, StoreError, WriteTx};
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use zeroize::Zeroizing;

/// The environment variable that carries the master key (32 bytes, base64 or hex).
pub const MASTER_KEY_ENV: &str = "HERALD_MASTER_KEY";
/// With `HERALD_MASTER_KEY`, `herald vault rotate-key` takes the new key from this variable.
pub const NEW_MASTER_KEY_ENV: &str = "HERALD_NEW_MASTER_KEY";
/// Where a database from before data keys kept a value sealed under the master key, to prove a key.
const LEGACY_CHECK_KEY: &str = "vault.check";
const CHECK_PLAINTEXT: &[u8] = b"herald vault key check v1";
/// Secrets a re-encryption rewrites per transaction.
const BATCH: i64 = 64;

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
        "the master key (fingerprint {master}) was retired by a key rotation on {retired_at} and opens nothing any more; use the current key (the key file beside the database, or {MASTER_KEY_ENV} set to the key the rotation took from {NEW_MASTER_KEY_ENV})"
    )]
    RetiredMaster { master: String, retired_at: String },
    #[error(
        "the stored secret {external_credential}/{principal}/{parameter} failed its integrity check: it was altered or copied from elsewhere; set it again with `herald credential set`"
    )]
    Tampered { external_credential: String, principal: String, parameter: String },
    #[error(
        "the stored secret {external_credential}/{principal}/{parameter} is sealed under data key {key_id}, which the master key in use (fingerprint {master}) does not unwrap: this process still uses a master key that a rotation retired; restart it with the current key"
    )]
    KeyUnavailable {
        external_credential: String,
        principal: String,
        parameter: String,
        key_id: i64,
        master: String,
    },
    #[error(
        "the active data key {key_id} is not wrapped under the master key in use (fingerprint {master}): this process still uses a master key that a rotation retired; restart it with the current key"
    )]
    ActiveKeyUnavailable { key_id: i64, master: String },
    #[error("the master key comes from {MASTER_KEY_ENV}: put the new key in {NEW_MASTER_KEY_ENV} to rotate")]
    NoNewKey,
    #[error(
        "{NEW_MASTER_KEY_ENV} holds the master key already in use (fingerprint {master}); generate a new one with `openssl rand -base64 32`"
    )]
    SameKey { master: String },
    #[error(
        "this process uses master key {master}, but a rotation already moved the database to master key {newest}; rotate with the current key"
    )]
    NotNewestMaster { master: String, newest: String },
    #[error(
        "an earlier rotation is still finishing: its old master key {master} is still used by {users}. A server whose key comes from its key file switches within seconds; one that uses {MASTER_KEY_ENV} must be restarted with the new key. Then rotate again (`herald vault status` shows the servers and their keys)"
    )]
    RotationUnfinished { master: String, users: String },
    #[error(
        "data key {key_id} is not wrapped under the master key in use (fingerprint {master}), so a rotation cannot carry it over; see `herald vault status`"
    )]
    KeyNotWrapped { key_id: i64, master: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VaultError {
    /// Whether this is about one stored secret that cannot be opened (rather than the vault as a whole).
    pub fn is_unreadable_secret(&self) -> bool {
        matches!(self, VaultError::Tampered { .. } | VaultError::KeyUnavailable { .. })
    }
}

/// Where the master key came from, for messages that must never show the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
}

/// A master key: the cipher that wraps data keys, and its fingerprint.
pub(crate) struct Master {
    /// The first 16 hex digits of HMAC-SHA256(key, "herald master key id"): names the key, reveals nothing.
    pub(crate) id: String,
    cipher: Arc<XChaCha20Poly1305>,
}

impl Master {
    fn new(key: &[u8; 32]) -> Master {
        Master { id: fingerprint(key), cipher: Arc::new(XChaCha20Poly1305::new(key.into())) }
    }

    /// nonce || ciphertext of a data key, bound to its id.
    fn wrap(&self, key_id: i64, data_key: &[u8; 32]) -> Vec<u8> {
        let nonce = random_nonce();
        let aad = wrap_associated_data(key_id);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: data_key, aad: aad.as_bytes() })
            .unwrap_or_default();
        let mut wrapped = nonce.to_vec();
        wrapped.extend(ciphertext);
        wrapped
    }

    /// A data key's bytes, if `wrapped` is its wrapping under this master key.
    fn unwrap_key(&self, key_id: i64, wrapped: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        if wrapped.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = wrapped.split_at(24);
        let aad = wrap_associated_data(key_id);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
                .ok()?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(plain.get(..32).filter(|_| plain.len() == 32)?);
        Some(key)
    }

    fn unwrap(&self, key_id: i64, wrapped: &[u8]) -> Option<Arc<XChaCha20Poly1305>> {
        self.unwrap_key(key_id, wrapped).map(|key| Arc::new(XChaCha20Poly1305::new((&*key).into())))
    }
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master").field("id", &self.id).finish_non_exhaustive()
    }
}

fn fingerprint(key: &[u8; 32]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"herald master key id");
    mac.finalize().into_bytes().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn wrap_associated_data(key_id: i64) -> String {
    format!("herald-data-key-v1\0{key_id}")
}

/// The keys a process holds: its master key and the data keys wrapped under it. The ciphers wipe
/// their keys when the last reference is dropped.
#[derive(Clone)]
pub(crate) struct Keys {
    master: Arc<Master>,
    data: BTreeMap<i64, Arc<XChaCha20Poly1305>>,
}

impl Keys {
    /// The cipher a secret was sealed with: its data key, or the master key for the form before data keys.
    fn cipher_for(&self, key_id: Option<i64>) -> Option<&XChaCha20Poly1305> {
        match key_id {
            None => Some(&self.master.cipher),
            Some(id) => self.data.get(&id).map(|cipher| &**cipher),
        }
    }
}

/// A stored secret by name, for the list of those that cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SecretName {
    pub external_credential: String,
    pub principal: String,
    pub user_id: String,
    pub parameter: String,
}

impl SecretName {
    fn of(place: &SecretPlace<'_>, parameter: &str) -> SecretName {
        SecretName {
            external_credential: place.external_credential.to_string(),
            principal: place.principal.to_string(),
            user_id: place.user_id.to_string(),
            parameter: parameter.to_string(),
        }
    }
}

/// Who this process is among those that hold the vault open (see `upkeep`).
#[derive(Clone, Debug)]
pub(crate) struct NodeIdentity {
    pub id: String,
    pub pid: i64,
    pub host: String,
    pub started_at: String,
}

pub struct Vault {
    store: Store,
    pub source: KeySource,
    keys: RwLock<Keys>,
    /// Held while the data keys are read again, so that many runs meeting a new key reload once.
    reloading: tokio::sync::Mutex<()>,
    /// Secrets that failed to open and have not opened since.
    unreadable: Mutex<BTreeSet<SecretName>>,
    /// Runs ended `failed` because a secret could not be opened.
    failed_runs: AtomicU64,
    node: NodeIdentity,
    /// The fingerprint of a key file this process already warned it does not know.
    warned_key_file: Mutex<Option<String>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("source", &self.source)
            .field("master", &self.master().id)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// This process's id among the nodes on the database: the owner of the runs it takes.
    pub(crate) fn node_id(&self) -> &str {
        &self.node.id
    }

    /// The key from `HERALD_MASTER_KEY`, or from `key_file`, created with mode 0600 on first use.
    /// A database without data keys (new, or from before them) gets data key 1, and every value
    /// sealed under the master key itself moves under it, in one transaction.
    pub async fn open(store: &Store, key_file: &Path) -> Result<Vault, VaultError> {
        let environment = std::env::var(MASTER_KEY_ENV).ok().map(Zeroizing::new);
        Vault::open_with(store, key_file, environment.as_ref().map(|text| text.as_str())).await
    }

    /// [`Vault::open`] with the environment's key given (tests change no process environment).
    pub(crate) async fn open_with(
        store: &Store,
        key_file: &Path,
        environment: Option<&str>,
    ) -> Result<Vault, VaultError> {
        let (key, source) = match environment {
            Some(text) => (decode_key(text.trim())?, KeySource::Environment),
            None => (read_or_create_key_file(key_file)?, KeySource::File(key_file.to_path_buf())),
        };
        let mut master = Master::new(&key);
        if source != KeySource::Environment
            && let Some(rotated) = finish_interrupted_rename(store, key_file, &master).await?
        {
            master = rotated;
        }
        let vault = Vault {
            store: store.clone(),
            source,
            keys: RwLock::new(Keys { master: Arc::new(master), data: BTreeMap::new() }),
            reloading: tokio::sync::Mutex::new(()),
            unreadable: Mutex::new(BTreeSet::new()),
            failed_runs: AtomicU64::new(0),
            node: upkeep::identity(),
            warned_key_file: Mutex::new(None),
        };
        if !store.has_data_keys().await? {
            vault.create_first_data_key().await?;
        }
        vault.reload().await?;
        Ok(vault)
    }

    fn master(&self) -> Arc<Master> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()).master)
    }

    /// The fingerprint of the master key this process uses.
    pub fn master_id(&self) -> String {
        self.master().id.clone()
    }

    fn snapshot(&self) -> Keys {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Data key 1, wrapped under this master key; values sealed under the master key itself (a database
    /// from before data keys) move under it. Nothing happens if another process made one meanwhile.
    async fn create_first_data_key(&self) -> Result<(), VaultError> {
        let master = self.master();
        // A database from before data keys proves the key with its check value before anything is written.
        if let Some(stored) = self.store.meta(LEGACY_CHECK_KEY).await?
            && !legacy_check_holds(&master, &stored)
        {
            return Err(VaultError::WrongKey);
        }
        let mut data_key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(&mut *data_key);
        let now = crate::now_text();
        let moved = self
            .write_retrying(move |tx| {
                if tx.has_data_keys()? {
                    return Ok(None);
                }
                tx.add_master(&master.id, &now)?;
                let id = tx.insert_data_key(&now)?;
                tx.insert_wrap(id, &master.id, &master.wrap(id, &data_key), &now)?;
                tx.set_meta(ACTIVE_KEY_META, &id.to_string())?;
                let keys = Keys { master: Arc::clone(&master), data: BTreeMap::new() };
                let target = XChaCha20Poly1305::new((&*data_key).into());
                let outcome = reseal_all(tx, &keys, (id, &target), true, &now)?;
                tx.delete_meta(LEGACY_CHECK_KEY)?;
                Ok(Some(outcome))
            })
            .await?;
        if let Some(outcome) = moved {
            for name in &outcome.unreadable {
                tracing::warn!(
                    external_credential = %name.external_credential,
                    principal = %name.principal,
                    parameter = %name.parameter,
                    "a stored secret failed its integrity check and was left as it was; set it again with `herald credential set`"
                );
            }
            self.note_all_unreadable(outcome.unreadable);
        }
        Ok(())
    }

    /// Reads again every data key wrapped under the master key in use.
    async fn reload(&self) -> Result<(), VaultError> {
        let master = self.master();
        let data = self.unwrap_all(&master).await?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if Arc::ptr_eq(&keys.master, &master) {
            keys.data = data;
        }
        Ok(())
    }

    /// Every data key wrapped under `master`; a key with no wrapping under it is refused (wrong or retired).
    async fn unwrap_all(&self, master: &Master) -> Result<BTreeMap<i64, Arc<XChaCha20Poly1305>>, VaultError> {
        let wraps = self.store.wraps_under(&master.id).await?;
        let mut data = BTreeMap::new();
        for wrap in &wraps {
            match master.unwrap(wrap.key_id, &wrap.wrapped) {
                Some(cipher) => {
                    data.insert(wrap.key_id, cipher);
                }
                None => tracing::warn!(
                    key_id = wrap.key_id,
                    master = %master.id,
                    "the wrapping of a data key failed its integrity check; the key was left out"
                ),
            }
        }
        if data.is_empty() {
            if let Some(row) = self.store.vault_master(&master.id).await?
                && let Some(retired_at) = row.retired_at
            {
                return Err(VaultError::RetiredMaster { master: master.id.clone(), retired_at });
            }
            return Err(VaultError::WrongKey);
        }
        Ok(data)
    }

    /// Uses another master key from now on (a rotated key file, or the rotating process's new key).
    async fn switch_master(&self, master: Arc<Master>) -> Result<(), VaultError> {
        let _reloading = self.reloading.lock().await;
        let data = self.unwrap_all(&master).await?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Keys { master, data };
        Ok(())
    }

    /// A data key by id; one this process does not hold yet (another process rotated) is read again
    /// from the database first.
    async fn data_key(&self, id: i64) -> Result<Option<Arc<XChaCha20Poly1305>>, VaultError> {
        let held =
            |vault: &Vault| vault.keys.read().unwrap_or_else(|e| e.into_inner()).data.get(&id).cloned();
        if let Some(cipher) = held(self) {
            return Ok(Some(cipher));
        }
        let _reloading = self.reloading.lock().await;
        if let Some(cipher) = held(self) {
            return Ok(Some(cipher));
        }
        self.reload().await?;
        Ok(held(self))
    }

    /// The data key new secrets are sealed under.
    async fn active_key(&self) -> Result<i64, VaultError> {
        self.store
            .meta(ACTIVE_KEY_META)
            .await?
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| VaultError::Store(StoreError::Missing(format!("the vault's {ACTIVE_KEY_META}"))))
    }

    /// Seals a value under the active data key (read again each time: another process may have rotated).
    pub async fn seal(
        &self,
        place: &SecretPlace<'_>,
        parameter: &str,
        value: &[u8],
    ) -> Result<SealedSecret, VaultError> {
        let key_id = self.active_key().await?;
        let cipher = self
            .data_key(key_id)
            .await?
            .ok_or_else(|| VaultError::ActiveKeyUnavailable { key_id, master: self.master_id() })?;
        Ok(seal_with(&cipher, key_id, place, parameter, value))
    }

    /// Seals a value and stores it. If a rotation retired the data key between the two, it is sealed
    /// again under the new active key: a value is never stored under a key that no longer exists.
    pub async fn store_secret(
        &self,
        place: &SecretPlace<'_>,
        parameter: &str,
        value: &[u8],
    ) -> Result<(), VaultError> {
        let mut attempts = 0;
        loop {
            let sealed = self.seal(place, parameter, value).await?;
            let stored = self
                .store
                .put_secret(
                    place.external_credential,
                    place.principal,
                    place.user_id,
                    &sealed,
                    &crate::now_text(),
                )
                .await;
            match stored {
                Err(StoreError::RetiredKey(_) | StoreError::Busy(_)) if attempts < 5 => attempts += 1,
                Err(error) => return Err(error.into()),
                Ok(()) => {
                    self.forget_unreadable(&SecretName::of(place, parameter));
                    return Ok(());
                }
            }
        }
    }

    /// Opens a stored secret. A secret that cannot be opened is remembered until it opens again (see
    /// [`Vault::health`]).
    pub async fn open_secret(
        &self,
        place: &SecretPlace<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, VaultError> {
        let opened = self.try_open(place, sealed).await;
        match &opened {
            Ok(_) => self.forget_unreadable(&SecretName::of(place, &sealed.parameter)),
            Err(error) if error.is_unreadable_secret() => {
                self.note_all_unreadable([SecretName::of(place, &sealed.parameter)]);
            }
            Err(_) => {}
        }
        opened
    }

    async fn try_open(
        &self,
        place: &SecretPlace<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, VaultError> {
        let tampered = || VaultError::Tampered {
            external_credential: place.external_credential.to_string(),
            principal: place.principal.to_string(),
            parameter: sealed.parameter.clone(),
        };
        let cipher = match sealed.key_id {
            None => Arc::clone(&self.master().cipher),
            Some(key_id) => self.data_key(key_id).await?.ok_or_else(|| VaultError::KeyUnavailable {
                external_credential: place.external_credential.to_string(),
                principal: place.principal.to_string(),
                parameter: sealed.parameter.clone(),
                key_id,
                master: self.master_id(),
            })?,
        };
        let plain = open_with(&cipher, place, sealed).ok_or_else(tampered)?;
        match std::str::from_utf8(&plain) {
            Ok(text) => Ok(Zeroizing::new(text.to_string())),
            Err(_) => Err(tampered()),
        }
    }

    fn note_all_unreadable(&self, names: impl IntoIterator<Item = SecretName>) {
        self.unreadable.lock().unwrap_or_else(|e| e.into_inner()).extend(names);
    }

    fn forget_unreadable(&self, name: &SecretName) {
        let mut unreadable = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
        if !unreadable.is_empty() {
            unreadable.remove(name);
        }
    }

    /// A run ended `failed` because one of its secrets could not be opened.
    pub fn note_failed_run(&self) {
        self.failed_runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `work` as one write; when another process holds the database's write lock too long, tries
    /// again a few times (a rotation runs beside a busy server).
    async fn write_retrying<R, F>(&self, work: F) -> Result<R, VaultError>
    where
        F: FnOnce(&mut dyn WriteTx) -> Result<R, VaultError> + Clone + Send + 'static,
        R: Send + 'static,
    {
        let mut attempts = 0u64;
        loop {
            match self.store.write(work.clone()).await {
                Err(VaultError::Store(StoreError::Busy(_))) if attempts < 10 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempts)).await;
                }
                outcome => return outcome,
            }
        }
    }
}

/// A rotation that committed but stopped before its new key file (`*.key.new`) took the old one's place:
/// when that file holds a key the database knows, it becomes the key file now.
async fn finish_interrupted_rename(
    store: &Store,
    key_file: &Path,
    current: &Master,
) -> Result<Option<Master>, VaultError> {
    let pending = pending_key_file(key_file);
    if !pending.exists() {
        return Ok(None);
    }
    let key = read_key_file(&pending)?;
    let candidate = Master::new(&key);
    if candidate.id == current.id {
        return Ok(None);
    }
    let known = if store.has_data_keys().await? {
        !store.wraps_under(&candidate.id).await?.is_empty()
    } else {
        // A database from before data keys, rotated by an earlier herald.
        store.meta(LEGACY_CHECK_KEY).await?.is_some_and(|stored| legacy_check_holds(&candidate, &stored))
    };
    if !known {
        // The rotation never committed: the next one writes the file afresh.
        return Ok(None);
    }
    std::fs::rename(&pending, key_file)
        .map_err(|e| VaultError::KeyFile { path: key_file.to_path_buf(), reason: e.to_string() })?;
    tracing::info!(master = %candidate.id, "finished an interrupted key rotation: the new key file took the old one's place");
    Ok(Some(candidate))
}

/// Whether `master` opens the check value a database from before data keys kept.
fn legacy_check_holds(master: &Master, stored: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(stored) else { return false };
    if bytes.len() < 24 {
        return false;
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    master
        .cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: LEGACY_CHECK_KEY.as_bytes() })
        .is_ok_and(|plain| plain == CHECK_PLAINTEXT)
}

/// What one pass of re-sealing did.
#[derive(Debug, Default)]
pub(crate) struct Resealed {
    pub resealed: usize,
    pub unreadable: Vec<SecretName>,
    /// Rows sealed under a data key the pass did not hold (another process's newer key).
    pub unknown_key: usize,
}

/// Re-seals, in the current transaction, every secret not sealed under `target` (with `legacy_only`,
/// only those sealed under the master key itself) in row order, up to [`BATCH`] rows after `after`.
/// Returns what it did and the last row it looked at, if it saw a full batch.
fn reseal_batch(
    tx: &mut dyn WriteTx,
    keys: &Keys,
    target: (i64, &XChaCha20Poly1305),
    legacy_only: bool,
    after: i64,
    now: &str,
    done: &mut Resealed,
) -> Result<Option<i64>, VaultError> {
    let rows = if legacy_only {
        tx.legacy_secrets(after, BATCH)?
    } else {
        tx.secrets_not_under(target.0, after, BATCH)?
    };
    let full = rows.len() as i64 == BATCH;
    let last = rows.last().map(|row| row.row);
    for SecretRow { placed, .. } in rows {
        let place = SecretPlace::new(&placed.external_credential, &placed.principal, &placed.user_id);
        let Some(cipher) = keys.cipher_for(placed.sealed.key_id) else {
            done.unknown_key += 1;
            continue;
        };
        let Some(plain) = open_with(cipher, &place, &placed.sealed) else {
            done.unreadable.push(SecretName::of(&place, &placed.sealed.parameter));
            continue;
        };
        let sealed = seal_with(target.1, target.0, &place, &placed.sealed.parameter, &plain);
        tx.reseal_secret(&PlacedSecret { sealed, ..placed.clone() }, now)?;
        done.resealed += 1;
    }
    Ok(if full { last } else { None })
}

/// [`reseal_batch`] until every row was looked at, all in the current transaction.
fn reseal_all(
    tx: &mut dyn WriteTx,
    keys: &Keys,
    target: (i64, &XChaCha20Poly1305),
    legacy_only: bool,
    now: &str,
) -> Result<Resealed, VaultError> {
    let mut done = Resealed::default();
    let mut after = 0;
    while let Some(last) = reseal_batch(tx, keys, target, legacy_only, after, now, &mut done)? {
        after = last;
    }
    Ok(done)
}

fn seal_with(
    cipher: &XChaCha20Poly1305,
    key_id: i64,
    place: &SecretPlace<'_>,
    parameter: &str,
    value: &[u8],
) -> SealedSecret {
    let nonce = random_nonce();
    let aad = place.associated_data(parameter, Some(key_id));
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: aad.as_bytes() })
        .unwrap_or_default();
    SealedSecret { parameter: parameter.to_string(), key_id: Some(key_id), nonce: nonce.to_vec(), ciphertext }
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    place: &SecretPlace<'_>,
    sealed: &SealedSecret,
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.nonce.len() != 24 {
        return None;
    }
    let aad = place.associated_data(&sealed.parameter, sealed.key_id);
    cipher
        .decrypt(XNonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad: aad.as_bytes() })
        .ok()
        .map(Zeroizing::new)
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

    /// The place, and the data key for a secret sealed under one (none for the form before data keys).
    fn associated_data(&self, parameter: &str, key_id: Option<i64>) -> String {
        let mut aad =
            format!("herald-secret-v1\0{}\0{}\0{parameter}", self.external_credential, self.principal);
        if !self.user_id.is_empty() {
            aad.push_str("\0user:");
            aad.push_str(self.user_id);
        }
        if let Some(key_id) = key_id {
            aad.push_str(&format!("\0key:{key_id}"));
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

fn random_nonce() -> [u8; 24] {
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(&mut *key);
    key
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
            let key = random_key();
            write_key_file(path, &key)?;
            Ok(key)
        }
        Err(error) => Err(VaultError::KeyFile { path: path.to_path_buf(), reason: error.to_string() }),
    }
}

fn write_key_file(path: &Path, key: &[u8; 32]) -> Result<(), VaultError> {
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key));
    write_private(path, encoded.as_bytes())
        .map_err(|e| VaultError::KeyFile { path: path.to_path_buf(), reason: e.to_string() })
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
