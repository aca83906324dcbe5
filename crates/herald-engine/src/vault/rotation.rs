//! `herald vault rotate-key`, run beside a `herald serve` on the same database file.
//!
//! 1. A new master key: written to `herald.key.new` first (key file), or taken from
//!    `HERALD_NEW_MASTER_KEY`.
//! 2. One transaction: a new data key wrapped under both the new and the current master key, every
//!    other data key also wrapped under the new one, the new data key made active, and values still
//!    sealed under the master key itself moved under it.
//! 3. The key file is renamed into place (a start after a stop between 2 and 3 finishes the rename).
//! 4. Every secret is re-sealed under the new data key in small batches, each its own transaction
//!    (so a running server's writes go on between them); then the data keys no secret uses are
//!    retired, and the old master key's wrappings are deleted once no live process uses that key.
//!
//! A server that still holds the old master key can unwrap the new data key (it is wrapped under
//! both), so it keeps opening every secret and sealing new ones throughout. Step 4 is idempotent: a
//! running server's upkeep finishes it too if the rotating process stops half way.

use super::{
    Keys, Master, Resealed, Vault, VaultError, decode_key, pending_key_file, random_key, read_key_file,
    reseal_all, reseal_batch, write_key_file,
};
use super::{NEW_MASTER_KEY_ENV, SecretPlace};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use herald_store::{ACTIVE_KEY_META, MasterRetirement, VaultNode, VaultSummary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// What `herald vault rotate-key` did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Fingerprints only: a fingerprint reveals nothing of its key.
    pub old_master: String,
    pub new_master: String,
    /// The data key new secrets are sealed under from now on.
    pub data_key: i64,
    /// The secrets that all opened before anything changed.
    pub secrets: usize,
    pub progress: RotationProgress,
}

/// How far the end of a rotation (step 4) got.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationProgress {
    pub resealed: usize,
    /// Secrets that failed their integrity check and stay under their old data key.
    pub unreadable: usize,
    pub retired_data_keys: Vec<i64>,
    pub retired_masters: Vec<String>,
    /// Old master keys that live processes still use: retired once they switch.
    pub masters_in_use: Vec<MasterInUse>,
    pub summary: VaultSummary,
}

impl RotationProgress {
    /// One data key, one master key, every secret under the active data key.
    pub fn finished(&self) -> bool {
        pending(&self.summary).is_none()
    }

    /// Adds a later pass to this one.
    pub fn absorb(&mut self, later: RotationProgress) {
        self.resealed += later.resealed;
        self.unreadable = later.unreadable;
        self.retired_data_keys.extend(later.retired_data_keys);
        self.retired_masters.extend(later.retired_masters);
        self.masters_in_use = later.masters_in_use;
        self.summary = later.summary;
    }
}

/// What keeps a rotation from being finished, in words; `None` when nothing does.
pub(crate) fn pending(summary: &VaultSummary) -> Option<String> {
    let mut left = Vec::new();
    if summary.secrets_on_old_keys > 0 {
        left.push(format!("{} secrets still sealed under an older data key", summary.secrets_on_old_keys));
    }
    if summary.live_data_keys > 1 {
        left.push(format!("{} data keys not yet retired", summary.live_data_keys - 1));
    }
    if summary.live_masters > 1 {
        left.push(format!("{} older master keys not yet retired", summary.live_masters - 1));
    }
    (!left.is_empty()).then(|| left.join(", "))
}

/// An old master key and the live processes that still use it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterInUse {
    pub master: String,
    pub nodes: Vec<VaultNode>,
}

/// "pid 41 on web-1, pid 77 on web-2".
pub(crate) fn describe_nodes(nodes: &[VaultNode]) -> String {
    let listed: Vec<String> = nodes.iter().map(|node| format!("pid {} on {}", node.pid, node.host)).collect();
    if listed.is_empty() { "no live process".to_string() } else { listed.join(", ") }
}

impl Vault {
    /// Rotates the master key (see the module documentation). With `HERALD_MASTER_KEY`, the new key
    /// comes from `HERALD_NEW_MASTER_KEY`, and processes must be restarted with it.
    pub async fn rotate(&self) -> Result<Rotation, VaultError> {
        let environment = std::env::var(NEW_MASTER_KEY_ENV).ok().map(Zeroizing::new);
        self.rotate_with(environment.as_ref().map(|text| text.as_str())).await
    }

    pub(crate) async fn rotate_with(&self, new_environment: Option<&str>) -> Result<Rotation, VaultError> {
        let secrets = self.check_every_secret().await?;
        let old = self.master();
        self.let_go_of_older_masters(&old).await?;
        let (new, pending) = self.new_master(new_environment)?;
        let data_key = match self.commit_rotation(&old, &new).await {
            Ok(id) => id,
            Err(error) => {
                if let Some((pending, _)) = &pending {
                    let _ = std::fs::remove_file(pending);
                }
                return Err(error);
            }
        };
        if let Some((pending, path)) = pending
            && let Err(error) = std::fs::rename(&pending, &path)
        {
            // Another process opening the database meanwhile may have finished the rename itself.
            let renamed = read_key_file(&path).is_ok_and(|key| Master::new(&key).id == new.id);
            if !renamed {
                return Err(VaultError::KeyFile { path, reason: error.to_string() });
            }
        }
        self.switch_master(Arc::clone(&new)).await?;
        let progress = self.finish_rotation().await?;
        Ok(Rotation { old_master: old.id.clone(), new_master: new.id.clone(), data_key, secrets, progress })
    }

    /// Every secret must open before anything changes: a rotation never carries a broken row along
    /// unnoticed. Returns how many there are.
    async fn check_every_secret(&self) -> Result<usize, VaultError> {
        let secrets = self.store.all_secrets().await?;
        for placed in &secrets {
            let place = SecretPlace::new(&placed.external_credential, &placed.principal, &placed.user_id);
            self.open_secret(&place, &placed.sealed).await?;
        }
        Ok(secrets.len())
    }

    /// The database must be on this process's master key, and an older master key that an earlier
    /// rotation left (a server still used it) is retired first, unless a live process still uses it:
    /// a new data key would not be wrapped under it, and that process could not open what is re-sealed.
    async fn let_go_of_older_masters(&self, old: &Master) -> Result<(), VaultError> {
        let masters = self.store.vault_masters().await?;
        let newest = masters.iter().rev().find(|m| m.retired_at.is_none()).map(|m| m.id.clone());
        if newest.as_deref() != Some(old.id.as_str()) {
            return Err(VaultError::NotNewestMaster {
                master: old.id.clone(),
                newest: newest.unwrap_or_default(),
            });
        }
        for master in masters.into_iter().filter(|m| m.retired_at.is_none() && m.id != old.id) {
            let (id, since, now) = (master.id.clone(), super::upkeep::live_since(), crate::now_text());
            let outcome = self.write_retrying(move |tx| Ok(tx.retire_master(&id, &since, &now)?)).await?;
            if let MasterRetirement::InUse(nodes) = outcome {
                return Err(VaultError::RotationUnfinished {
                    master: master.id,
                    users: describe_nodes(&nodes),
                });
            }
        }
        Ok(())
    }

    /// Step 1: the new master key, and with a key file, where it waits until the commit.
    #[allow(clippy::type_complexity)]
    pub(crate) fn new_master(
        &self,
        new_environment: Option<&str>,
    ) -> Result<(Arc<Master>, Option<(PathBuf, PathBuf)>), VaultError> {
        let old = self.master();
        let (key, pending) = match &self.source {
            super::KeySource::Environment => {
                (decode_key(new_environment.ok_or(VaultError::NoNewKey)?.trim())?, None)
            }
            super::KeySource::File(path) => {
                let pending = pending_key_file(path);
                let _ = std::fs::remove_file(&pending);
                let key = random_key();
                write_key_file(&pending, &key)?;
                (key, Some((pending, path.clone())))
            }
        };
        let new = Arc::new(Master::new(&key));
        if new.id == old.id {
            return Err(VaultError::SameKey { master: old.id.clone() });
        }
        Ok((new, pending))
    }

    /// Step 2, in one transaction. Returns the new data key's id.
    pub(crate) async fn commit_rotation(
        &self,
        old: &Arc<Master>,
        new: &Arc<Master>,
    ) -> Result<i64, VaultError> {
        let (old, new) = (Arc::clone(old), Arc::clone(new));
        let fresh = random_key();
        let now = crate::now_text();
        self.write_retrying(move |tx| {
            let newest = tx.newest_master()?;
            if newest.as_deref() != Some(old.id.as_str()) {
                return Err(VaultError::NotNewestMaster {
                    master: old.id.clone(),
                    newest: newest.unwrap_or_default(),
                });
            }
            tx.add_master(&new.id, &now)?;
            let wraps = tx.wraps_under(&old.id)?;
            let mut held = BTreeMap::new();
            for key_id in tx.live_data_keys()? {
                let not_wrapped = || VaultError::KeyNotWrapped { key_id, master: old.id.clone() };
                let wrap = wraps.iter().find(|w| w.key_id == key_id).ok_or_else(not_wrapped)?;
                let key = old.unwrap_key(key_id, &wrap.wrapped).ok_or_else(not_wrapped)?;
                tx.insert_wrap(key_id, &new.id, &new.wrap(key_id, &key), &now)?;
                held.insert(key_id, Arc::new(XChaCha20Poly1305::new((&*key).into())));
            }
            let id = tx.insert_data_key(&now)?;
            tx.insert_wrap(id, &new.id, &new.wrap(id, &fresh), &now)?;
            tx.insert_wrap(id, &old.id, &old.wrap(id, &fresh), &now)?;
            tx.set_meta(ACTIVE_KEY_META, &id.to_string())?;
            let target = XChaCha20Poly1305::new((&*fresh).into());
            let keys = Keys { master: Arc::clone(&old), data: held };
            reseal_all(tx, &keys, (id, &target), true, &now)?;
            Ok(id)
        })
        .await
    }

    /// Step 4: re-seals every secret under the active data key in batches, retires the data keys no
    /// secret uses, and the master keys no live process uses. Safe to run from several processes at
    /// once, and again after a stop.
    pub async fn finish_rotation(&self) -> Result<RotationProgress, VaultError> {
        let mut progress = RotationProgress::default();
        let active = self.active_key().await?;
        let target = self
            .data_key(active)
            .await?
            .ok_or_else(|| VaultError::ActiveKeyUnavailable { key_id: active, master: self.master_id() })?;
        let mut after = 0;
        loop {
            let (keys, target, now) = (self.snapshot(), Arc::clone(&target), crate::now_text());
            let (done, next) = self
                .write_retrying(move |tx| {
                    let mut done = Resealed::default();
                    let next = reseal_batch(tx, &keys, (active, &target), false, after, &now, &mut done)?;
                    Ok((done, next))
                })
                .await?;
            progress.resealed += done.resealed;
            progress.unreadable += done.unreadable.len();
            self.note_all_unreadable(done.unreadable);
            match next {
                Some(last) => after = last,
                None => break,
            }
        }
        let now = crate::now_text();
        progress.retired_data_keys =
            self.write_retrying(move |tx| Ok(tx.retire_unused_data_keys(active, &now)?)).await?;
        for master in self.store.vault_masters().await?.into_iter().filter(|m| m.retired_at.is_none()) {
            let (id, since, now) = (master.id.clone(), super::upkeep::live_since(), crate::now_text());
            match self.write_retrying(move |tx| Ok(tx.retire_master(&id, &since, &now)?)).await? {
                MasterRetirement::Retired => progress.retired_masters.push(master.id),
                MasterRetirement::InUse(nodes) => {
                    progress.masters_in_use.push(MasterInUse { master: master.id, nodes })
                }
                MasterRetirement::Needed => {}
            }
        }
        progress.summary = self.store.vault_summary().await?;
        Ok(progress)
    }
}

impl Vault {
    /// [`Vault::rotate`], then finishes what it can within `wait`: values a running server sealed
    /// under the old data key meanwhile, and the old master key once the live servers switched to the
    /// new one (a server reads its key file every [`super::UPKEEP_EVERY`]).
    pub async fn rotate_and_finish(&self, wait: std::time::Duration) -> Result<Rotation, VaultError> {
        let mut rotation = self.rotate().await?;
        let deadline = std::time::Instant::now() + wait;
        while !rotation.progress.finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            rotation.progress.absorb(self.finish_rotation().await?);
        }
        Ok(rotation)
    }
}
