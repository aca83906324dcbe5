//! The vault's rows: data keys, their wrappings under master keys, the master keys by fingerprint, and
//! the processes that hold the vault open.
//!
//! The store keeps bytes it cannot read: what a wrapping or a ciphertext means is the engine's. The
//! engine composes these pieces inside one [`WriteTx`](crate::WriteTx), so that a rotation step or a re-encryption batch
//! reads and rewrites its rows in one transaction, even with another process writing beside it.

use crate::{PlacedSecret, Result, Store};
use serde::Serialize;

/// A data key wrapped (encrypted) under one master key.
#[derive(Clone)]
pub struct KeyWrap {
    pub key_id: i64,
    pub master_id: String,
    /// nonce || ciphertext of the data key.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for KeyWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWrap")
            .field("key_id", &self.key_id)
            .field("master_id", &self.master_id)
            .finish_non_exhaustive()
    }
}

/// A data key and how many secrets are sealed under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataKeyRow {
    pub id: i64,
    pub created_at: String,
    pub retired_at: Option<String>,
    pub secrets: i64,
}

/// A master key, by fingerprint, and how many data keys it still wraps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterRow {
    pub id: String,
    pub added_at: String,
    pub retired_at: Option<String>,
    pub wrapped_keys: i64,
}

/// A process that holds the vault open, and the master key it uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultNode {
    pub id: String,
    pub pid: i64,
    pub host: String,
    pub master_id: String,
    pub started_at: String,
    pub seen_at: String,
}

/// A stored secret with its row number, so that a re-encryption pages through the table in batches.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub row: i64,
    pub placed: PlacedSecret,
}

/// What keeps a rotation from being finished, in counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultSummary {
    /// Data keys not retired.
    pub live_data_keys: i64,
    /// Master keys not retired.
    pub live_masters: i64,
    /// Secrets sealed under a data key other than the active one.
    pub secrets_on_old_keys: i64,
}

/// What became of an attempt to retire a master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterRetirement {
    /// Its wrappings are deleted: it opens nothing any more.
    Retired,
    /// Live processes still use it.
    InUse(Vec<VaultNode>),
    /// It is the newest master key, or a data key is wrapped under it alone: retiring it would lose data.
    Needed,
}

/// The meta key naming the data key new secrets are sealed under.
pub const ACTIVE_KEY_META: &str = "vault.active_key";

impl Store {
    /// The wrappings of every data key not retired under one master key.
    pub async fn wraps_under(&self, master_id: &str) -> Result<Vec<KeyWrap>> {
        self.backend.wraps_under(master_id).await
    }

    /// Whether any data key exists yet (none in a new database, or one from before data keys).
    pub async fn has_data_keys(&self) -> Result<bool> {
        self.backend.has_data_keys().await
    }

    /// Every data key, oldest first, with the number of secrets sealed under it.
    pub async fn data_keys(&self) -> Result<Vec<DataKeyRow>> {
        self.backend.data_keys().await
    }

    /// Every master key that ever wrapped a data key, oldest first.
    pub async fn vault_masters(&self) -> Result<Vec<MasterRow>> {
        self.backend.vault_masters().await
    }

    /// A master key by fingerprint, if the database knows it (retired or not).
    pub async fn vault_master(&self, id: &str) -> Result<Option<MasterRow>> {
        Ok(self.backend.vault_masters().await?.into_iter().find(|master| master.id == id))
    }

    /// The processes that registered as holding the vault open, live or not.
    pub async fn vault_nodes(&self) -> Result<Vec<VaultNode>> {
        self.backend.vault_nodes().await
    }

    /// Records that `node` is alive and uses its master key; forgets nodes not seen since `forget_before`.
    pub async fn see_vault_node(&self, node: &VaultNode, forget_before: &str) -> Result<()> {
        let (node, forget_before) = (node.clone(), forget_before.to_string());
        self.write(move |tx| tx.see_vault_node(&node, &forget_before)).await
    }

    /// A process that stops takes its node away, so it holds no master key back.
    pub async fn remove_vault_node(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |tx| tx.remove_vault_node(&id)).await
    }

    /// Counts that say whether a rotation is still finishing.
    pub async fn vault_summary(&self) -> Result<VaultSummary> {
        self.backend.vault_summary().await
    }
}
