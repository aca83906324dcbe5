//! What `/health` reports: whether this process can do its job, and the counts an operator watches
//! for defects (runs the sweep had to rescue) and for the vault (a secret that cannot be opened, a key
//! rotation still finishing).

use crate::Engine;
use crate::queue::SweepCounts;
use crate::vault::VaultHealth;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `degraded` when something needs a person (see the other fields).
    pub status: &'static str,
    pub sweep: SweepCounts,
    pub vault: VaultHealth,
}

impl Engine {
    pub async fn health(&self) -> Health {
        let sweep = self.inner.queue.sweep_counts();
        let vault = self.inner.vault.health().await;
        let status = if sweep.defects > 0 || vault.unreadable_secrets > 0 { "degraded" } else { "ok" };
        Health { status, sweep, vault }
    }
}
