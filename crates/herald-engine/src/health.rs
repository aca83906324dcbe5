//! What `/health` reports: whether this process can do its job, which node it is on which database
//! (a load balancer in front of several nodes tells them apart by it), and the counts an operator
//! watches for defects (runs the sweep had to rescue) and for the vault (a secret that cannot be
//! opened, a key rotation still finishing).

use crate::Engine;
use crate::queue::SweepCounts;
use crate::vault::VaultHealth;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `degraded` when something needs a person (see the other fields).
    pub status: &'static str,
    pub node: NodeHealth,
    pub sweep: SweepCounts,
    pub vault: VaultHealth,
}

/// This process among the nodes on its database.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHealth {
    /// This process's node id (the owner of the runs it takes).
    pub id: String,
    /// `sqlite` or `postgresql`; never the location, which may carry a password.
    pub database: &'static str,
    /// Whether other nodes may share the database.
    pub shared: bool,
    /// Nodes seen within the last seconds (this one included once its first heartbeat is written);
    /// `null` when the database could not be read.
    pub live_nodes: Option<usize>,
    /// Runs this node holds now: queued, being driven, or parked in memory.
    pub runs_held: usize,
    /// Round trips this process has made to a database server since it started (`null` on SQLite):
    /// divided by the leads between two readings, what a lead costs the database (`herald bench`).
    pub database_round_trips: Option<u64>,
}

impl Engine {
    pub async fn health(&self) -> Health {
        let sweep = self.inner.queue.sweep_counts();
        let vault = self.inner.vault.health().await;
        let status = if sweep.defects > 0 || vault.unreadable_secrets > 0 { "degraded" } else { "ok" };
        let store = &self.inner.store;
        let live_since = crate::vault::live_since();
        let live_nodes = store
            .vault_nodes()
            .await
            .ok()
            .map(|nodes| nodes.iter().filter(|node| node.seen_at >= live_since).count());
        let node = NodeHealth {
            id: self.node_id().to_string(),
            database: store.kind(),
            shared: store.shared(),
            live_nodes,
            runs_held: self.inner.queue.held_count(),
            database_round_trips: store.round_trips(),
        };
        Health { status, node, sweep, vault }
    }
}
