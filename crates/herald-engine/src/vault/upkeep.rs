//! What a running server does for the vault every few seconds.
//!
//! - It re-reads its key file: when the file now holds a key that the database has wrappings for (a
//!   rotation by `herald vault rotate-key`), it switches to it, without a restart. A server whose key
//!   comes from `HERALD_MASTER_KEY` keeps its key until it is restarted with the new one.
//! - It records that it is alive and which master key it uses (`vault_nodes`): an old master key is
//!   retired only once no live process uses it.
//! - It finishes a rotation that is still pending (re-sealing, retiring data keys and master keys no
//!   live process uses), so a rotation whose process stopped half way still ends.
//! - It tries again the secrets that failed to open, so `/health` turns `ok` once one is set again.

use super::{Master, SecretName, SecretPlace, Vault, VaultError, read_key_file};
use crate::Engine;
use herald_store::VaultNode;
use std::sync::Arc;
use std::time::Duration;

/// How often a server re-reads its key file, says it is alive, and finishes a pending rotation.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(2);
/// A process not seen for this long no longer holds a master key back from retirement.
pub const LIVE_FOR: Duration = Duration::from_secs(15);
/// Processes not seen for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

fn ago(duration: Duration) -> String {
    (chrono::Utc::now() - chrono::Duration::from_std(duration).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Processes seen since this time are live.
pub(crate) fn live_since() -> String {
    ago(LIVE_FOR)
}

/// This process among those that hold the vault open.
pub(crate) fn identity() -> super::NodeIdentity {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    super::NodeIdentity {
        id: format!("node_{}", crate::ids::random_text(16)),
        pid: i64::from(std::process::id()),
        host,
        started_at: crate::now_text(),
    }
}

impl Vault {
    /// One round of upkeep (see the module documentation).
    pub async fn upkeep(&self) -> Result<(), VaultError> {
        self.follow_key_file().await;
        self.heartbeat().await?;
        if super::rotation::pending(&self.store.vault_summary().await?).is_some() {
            let progress = self.finish_rotation().await?;
            if progress.resealed > 0
                || !progress.retired_data_keys.is_empty()
                || !progress.retired_masters.is_empty()
            {
                tracing::info!(
                    resealed = progress.resealed,
                    retired_data_keys = ?progress.retired_data_keys,
                    retired_masters = ?progress.retired_masters,
                    "a key rotation moved on"
                );
            }
        }
        self.recheck_unreadable().await;
        Ok(())
    }

    /// Switches to the key in the key file when a rotation replaced it. Returns whether it switched.
    pub(crate) async fn follow_key_file(&self) -> bool {
        let super::KeySource::File(path) = &self.source else { return false };
        let key = match read_key_file(path) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(%error, "the master key file cannot be read; still using the key read before");
                return false;
            }
        };
        let candidate = Arc::new(Master::new(&key));
        let current = self.master_id();
        if candidate.id == current {
            return false;
        }
        match self.switch_master(Arc::clone(&candidate)).await {
            Ok(()) => {
                tracing::info!(
                    from = %current,
                    to = %candidate.id,
                    "the key file holds a rotated master key; switched to it"
                );
                if let Err(error) = self.heartbeat().await {
                    tracing::warn!(%error, "could not record the switch to the new master key yet");
                }
                true
            }
            Err(error) => {
                let mut warned = self.warned_key_file.lock().unwrap_or_else(|e| e.into_inner());
                if warned.as_deref() != Some(candidate.id.as_str()) {
                    tracing::warn!(
                        %error,
                        file = %path.display(),
                        in_use = %current,
                        "the key file holds a key this database has no wrappings for; still using the key read before"
                    );
                    *warned = Some(candidate.id.clone());
                }
                false
            }
        }
    }

    /// Records that this process is alive and which master key it uses.
    pub async fn heartbeat(&self) -> Result<(), VaultError> {
        let node = VaultNode {
            id: self.node.id.clone(),
            pid: self.node.pid,
            host: self.node.host.clone(),
            master_id: self.master_id(),
            started_at: self.node.started_at.clone(),
            seen_at: crate::now_text(),
        };
        Ok(self.store.see_vault_node(&node, &ago(FORGET_AFTER)).await?)
    }

    /// This process stops holding the vault open: it no longer keeps its master key from retirement.
    pub async fn leave(&self) -> Result<(), VaultError> {
        Ok(self.store.remove_vault_node(&self.node.id).await?)
    }

    /// Tries again each secret that failed to open; one set again since is forgotten.
    pub(crate) async fn recheck_unreadable(&self) {
        let names: Vec<SecretName> =
            self.unreadable.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        for name in names {
            let Ok(stored) =
                self.store.secrets(&name.external_credential, &name.principal, &name.user_id).await
            else {
                continue;
            };
            match stored.iter().find(|sealed| sealed.parameter == name.parameter) {
                None => self.forget_unreadable(&name),
                Some(sealed) => {
                    let place = SecretPlace::new(&name.external_credential, &name.principal, &name.user_id);
                    let _ = self.open_secret(&place, sealed).await;
                }
            }
        }
    }
}

impl Engine {
    /// Starts the vault's upkeep (see the module documentation); `herald serve` runs it.
    pub(crate) fn start_vault_upkeep(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = engine.inner.vault.upkeep().await {
                    tracing::warn!(%error, "vault upkeep did not finish; it runs again in a few seconds");
                }
            }
        });
    }

    /// Called when `herald serve` stops: this process no longer holds its master key from retirement.
    pub async fn leave_vault(&self) {
        if let Err(error) = self.inner.vault.leave().await {
            tracing::warn!(%error, "could not remove this process from the vault's live processes");
        }
    }

    /// What the vault holds and whether a rotation is still finishing (`herald vault status`).
    pub async fn vault_status(&self) -> Result<super::VaultStatus, crate::EngineError> {
        Ok(self.inner.vault.status().await?)
    }
}
