//! What the vault holds, for `herald vault status` and `/health`: fingerprints, ids, dates and counts,
//! never a key or a value.

use super::{KeySource, SecretPlace, Vault, VaultError};
use herald_store::{DataKeyRow, MasterRow, VaultNode};
use serde::Serialize;
use std::sync::atomic::Ordering;

/// The vault's part of `/health`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultHealth {
    /// The fingerprint of the master key this process uses.
    pub master_key: String,
    /// Data keys not retired (2 or more while a rotation finishes).
    pub data_keys: i64,
    pub rotation_pending: bool,
    /// Secrets this process failed to open and that have not opened since.
    pub unreadable_secrets: usize,
    /// Runs ended `failed` because a secret could not be opened, since this process started.
    pub failed_runs: u64,
}

/// `herald vault status`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultStatus {
    /// The fingerprint of the master key this process uses.
    pub master_key: String,
    /// `HERALD_MASTER_KEY`, or the key file's path.
    pub key_source: String,
    /// The data key new secrets are sealed under.
    pub active_data_key: i64,
    pub data_keys: Vec<DataKeyRow>,
    pub master_keys: Vec<VaultMasterStatus>,
    /// The processes that said they hold the vault open, live ones and those not seen lately.
    pub nodes: Vec<VaultNodeStatus>,
    pub rotation_pending: bool,
    /// What keeps the rotation from being finished, in words.
    pub still_to_do: Option<String>,
    /// Every stored secret that this process cannot open, and why.
    pub unreadable_secrets: Vec<UnreadableSecret>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultMasterStatus {
    #[serde(flatten)]
    pub master: MasterRow,
    /// Whether this process uses it.
    pub in_use_here: bool,
    /// Live processes that use it.
    pub live_nodes: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultNodeStatus {
    #[serde(flatten)]
    pub node: VaultNode,
    /// Seen within [`super::LIVE_FOR`].
    pub live: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableSecret {
    pub external_credential: String,
    pub principal: String,
    /// Empty for a named principal.
    pub user_id: String,
    pub parameter: String,
    pub reason: String,
}

impl Vault {
    /// Cheap enough for every `/health` request: a few indexed counts, and a retry of the secrets
    /// already known not to open.
    pub async fn health(&self) -> VaultHealth {
        self.recheck_unreadable().await;
        let summary = match self.store.vault_summary().await {
            Ok(summary) => summary,
            Err(error) => {
                tracing::warn!(%error, "/health could not read the vault's counts");
                herald_store::VaultSummary::default()
            }
        };
        VaultHealth {
            master_key: self.master_id(),
            data_keys: summary.live_data_keys,
            rotation_pending: super::rotation::pending(&summary).is_some(),
            unreadable_secrets: self.unreadable.lock().unwrap_or_else(|e| e.into_inner()).len(),
            failed_runs: self.failed_runs.load(Ordering::Relaxed),
        }
    }

    /// Everything `herald vault status` shows; tries to open every stored secret.
    pub async fn status(&self) -> Result<VaultStatus, VaultError> {
        let master_key = self.master_id();
        let live_since = super::upkeep::live_since();
        let nodes: Vec<VaultNodeStatus> = self
            .store
            .vault_nodes()
            .await?
            .into_iter()
            .map(|node| {
                let live = node.seen_at >= live_since;
                VaultNodeStatus { node, live }
            })
            .collect();
        let master_keys = self
            .store
            .vault_masters()
            .await?
            .into_iter()
            .map(|master| VaultMasterStatus {
                in_use_here: master.id == master_key,
                live_nodes: nodes.iter().filter(|n| n.live && n.node.master_id == master.id).count(),
                master,
            })
            .collect();
        let mut unreadable_secrets = Vec::new();
        for placed in self.store.all_secrets().await? {
            let place = SecretPlace::new(&placed.external_credential, &placed.principal, &placed.user_id);
            if let Err(error) = self.open_secret(&place, &placed.sealed).await {
                unreadable_secrets.push(UnreadableSecret {
                    reason: error.to_string(),
                    parameter: placed.sealed.parameter.clone(),
                    external_credential: placed.external_credential,
                    principal: placed.principal,
                    user_id: placed.user_id,
                });
            }
        }
        let summary = self.store.vault_summary().await?;
        let still_to_do = super::rotation::pending(&summary);
        Ok(VaultStatus {
            master_key,
            key_source: match &self.source {
                KeySource::Environment => super::MASTER_KEY_ENV.to_string(),
                KeySource::File(path) => path.display().to_string(),
            },
            active_data_key: self.active_key().await?,
            data_keys: self.store.data_keys().await?,
            master_keys,
            nodes,
            rotation_pending: still_to_do.is_some(),
            still_to_do,
            unreadable_secrets,
        })
    }
}
