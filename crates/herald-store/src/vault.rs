//! The vault's rows: data keys, their wrappings under master keys, the master keys by fingerprint, and
//! the processes that hold the vault open.
//!
//! The store keeps bytes it cannot read: what a wrapping or a ciphertext means is the engine's. The
//! engine composes these pieces inside one [`WriteTx`], so that a rotation step or a re-encryption batch
//! reads and rewrites its rows in one transaction, even with another process writing beside it.

use crate::{PlacedSecret, Result, SealedSecret, Store, WriteTx, query_all, set_meta};
use rusqlite::{OptionalExtension, Row, params};
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

const NODE_COLUMNS: &str = "id, pid, host, master_id, started_at, seen_at";

fn node_from_row(row: &Row<'_>) -> Result<VaultNode> {
    Ok(VaultNode {
        id: row.get(0)?,
        pid: row.get(1)?,
        host: row.get(2)?,
        master_id: row.get(3)?,
        started_at: row.get(4)?,
        seen_at: row.get(5)?,
    })
}

fn secret_row(row: &Row<'_>) -> Result<SecretRow> {
    Ok(SecretRow {
        row: row.get(0)?,
        placed: PlacedSecret {
            external_credential: row.get(1)?,
            principal: row.get(2)?,
            user_id: row.get(3)?,
            sealed: SealedSecret {
                parameter: row.get(4)?,
                key_id: row.get(5)?,
                nonce: row.get(6)?,
                ciphertext: row.get(7)?,
            },
        },
    })
}

fn wrap_from_row(row: &Row<'_>) -> Result<KeyWrap> {
    Ok(KeyWrap { key_id: row.get(0)?, master_id: row.get(1)?, wrapped: row.get(2)? })
}

const WRAPS_UNDER: &str = "SELECT w.key_id, w.master_id, w.wrapped FROM vault_key_wraps w
     JOIN vault_keys k ON k.id = w.key_id WHERE w.master_id = ? AND k.retired_at IS NULL ORDER BY w.key_id";

fn live_nodes_using(
    conn: &rusqlite::Connection,
    master_id: &str,
    live_since: &str,
) -> Result<Vec<VaultNode>> {
    query_all(
        conn,
        &format!("SELECT {NODE_COLUMNS} FROM vault_nodes WHERE master_id = ? AND seen_at >= ? ORDER BY id"),
        params![master_id, live_since],
        node_from_row,
    )
}

impl Store {
    /// The wrappings of every data key not retired under one master key.
    pub async fn wraps_under(&self, master_id: &str) -> Result<Vec<KeyWrap>> {
        self.lookup(|conn| query_all(conn, WRAPS_UNDER, [master_id], wrap_from_row))
    }

    /// Whether any data key exists yet (none in a new database, or one from before data keys).
    pub async fn has_data_keys(&self) -> Result<bool> {
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM vault_keys)")?
                .query_row([], |r| r.get(0))?)
        })
    }

    /// Every data key, oldest first, with the number of secrets sealed under it.
    pub async fn data_keys(&self) -> Result<Vec<DataKeyRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT k.id, k.created_at, k.retired_at, (SELECT COUNT(*) FROM secrets s WHERE s.key_id = k.id)
                 FROM vault_keys k ORDER BY k.id",
                [],
                |row| {
                    Ok(DataKeyRow {
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        retired_at: row.get(2)?,
                        secrets: row.get(3)?,
                    })
                },
            )
        })
        .await
    }

    /// Every master key that ever wrapped a data key, oldest first.
    pub async fn vault_masters(&self) -> Result<Vec<MasterRow>> {
        self.read(masters).await
    }

    /// A master key by fingerprint, if the database knows it (retired or not).
    pub async fn vault_master(&self, id: &str) -> Result<Option<MasterRow>> {
        self.lookup(|conn| Ok(masters(conn)?.into_iter().find(|m| m.id == id)))
    }

    /// The processes that registered as holding the vault open, live or not.
    pub async fn vault_nodes(&self) -> Result<Vec<VaultNode>> {
        self.read(|conn| {
            query_all(
                conn,
                &format!("SELECT {NODE_COLUMNS} FROM vault_nodes ORDER BY started_at, id"),
                [],
                node_from_row,
            )
        })
        .await
    }

    /// Records that `node` is alive and uses its master key; forgets nodes not seen since `forget_before`.
    pub async fn see_vault_node(&self, node: &VaultNode, forget_before: &str) -> Result<()> {
        let (node, forget_before) = (node.clone(), forget_before.to_string());
        self.write(move |tx| {
            tx.conn
                .prepare_cached(&format!(
                    "INSERT INTO vault_nodes ({NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (id) DO UPDATE SET master_id = excluded.master_id, seen_at = excluded.seen_at"
                ))?
                .execute(params![node.id, node.pid, node.host, node.master_id, node.started_at, node.seen_at])?;
            tx.conn.prepare_cached("DELETE FROM vault_nodes WHERE seen_at < ?")?.execute([forget_before])?;
            Ok(())
        })
        .await
    }

    /// A process that stops takes its node away, so it holds no master key back.
    pub async fn remove_vault_node(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |tx| {
            tx.conn.prepare_cached("DELETE FROM vault_nodes WHERE id = ?")?.execute([id])?;
            Ok(())
        })
        .await
    }

    /// Counts that say whether a rotation is still finishing; a few indexed reads.
    pub async fn vault_summary(&self) -> Result<VaultSummary> {
        self.lookup(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM vault_keys WHERE retired_at IS NULL),
                            (SELECT COUNT(*) FROM vault_masters WHERE retired_at IS NULL),
                            (SELECT COUNT(*) FROM secrets WHERE key_id IS NOT NULL AND key_id !=
                                (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'vault.active_key'))",
                )?
                .query_row([], |row| {
                    Ok(VaultSummary {
                        live_data_keys: row.get(0)?,
                        live_masters: row.get(1)?,
                        secrets_on_old_keys: row.get(2)?,
                    })
                })?)
        })
    }
}

fn masters(conn: &rusqlite::Connection) -> Result<Vec<MasterRow>> {
    query_all(
        conn,
        "SELECT m.id, m.added_at, m.retired_at,
                (SELECT COUNT(*) FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
                 WHERE w.master_id = m.id AND k.retired_at IS NULL)
         FROM vault_masters m ORDER BY m.rowid",
        [],
        |row| {
            Ok(MasterRow {
                id: row.get(0)?,
                added_at: row.get(1)?,
                retired_at: row.get(2)?,
                wrapped_keys: row.get(3)?,
            })
        },
    )
}

impl WriteTx<'_> {
    pub fn has_data_keys(&mut self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM vault_keys)")?
            .query_row([], |r| r.get(0))?)
    }

    /// The master key added last that is not retired: the one a rotation moved to.
    pub fn newest_master(&mut self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM vault_masters WHERE retired_at IS NULL ORDER BY rowid DESC LIMIT 1",
            )?
            .query_row([], |row| row.get(0))
            .optional()?)
    }

    pub fn add_master(&mut self, id: &str, now: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO vault_masters (id, added_at) VALUES (?, ?)")?
            .execute([id, now])?;
        Ok(())
    }

    /// A new data key's row; returns its id (never one used before: retired keys keep their rows).
    pub fn insert_data_key(&mut self, now: &str) -> Result<i64> {
        self.conn.prepare_cached("INSERT INTO vault_keys (created_at) VALUES (?)")?.execute([now])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn insert_wrap(&mut self, key_id: i64, master_id: &str, wrapped: &[u8], now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO vault_key_wraps (key_id, master_id, wrapped, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (key_id, master_id) DO UPDATE SET wrapped = excluded.wrapped",
            )?
            .execute(params![key_id, master_id, wrapped, now])?;
        Ok(())
    }

    /// The wrappings of every data key not retired under one master key.
    pub fn wraps_under(&mut self, master_id: &str) -> Result<Vec<KeyWrap>> {
        query_all(self.conn, WRAPS_UNDER, [master_id], wrap_from_row)
    }

    /// The ids of the data keys not retired.
    pub fn live_data_keys(&mut self) -> Result<Vec<i64>> {
        query_all(self.conn, "SELECT id FROM vault_keys WHERE retired_at IS NULL ORDER BY id", [], |row| {
            Ok(row.get(0)?)
        })
    }

    pub fn meta(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?")?
            .query_row([key], |row| row.get(0))
            .optional()?)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        set_meta(self.conn, key, value)
    }

    pub fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM meta WHERE key = ?")?.execute([key])?;
        Ok(())
    }

    /// Up to `limit` secrets not sealed under `key_id` (those sealed under the master key itself
    /// included), after row `after`, in row order.
    pub fn secrets_not_under(&mut self, key_id: i64, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        query_all(
            self.conn,
            "SELECT rowid, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE (key_id IS NULL OR key_id != ?) AND rowid > ? ORDER BY rowid LIMIT ?",
            params![key_id, after, limit],
            secret_row,
        )
    }

    /// Up to `limit` secrets sealed under the master key itself (the form before data keys), after row
    /// `after`, in row order.
    pub fn legacy_secrets(&mut self, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        query_all(
            self.conn,
            "SELECT rowid, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE key_id IS NULL AND rowid > ? ORDER BY rowid LIMIT ?",
            params![after, limit],
            secret_row,
        )
    }

    /// Replaces a secret's ciphertext and data key where it is stored.
    pub fn reseal_secret(&mut self, placed: &PlacedSecret, now: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?
                 WHERE external_credential = ? AND principal = ? AND user_id = ? AND parameter = ?",
            )?
            .execute(params![
                placed.sealed.key_id,
                placed.sealed.nonce,
                placed.sealed.ciphertext,
                now,
                placed.external_credential,
                placed.principal,
                placed.user_id,
                placed.sealed.parameter
            ])?;
        Ok(())
    }

    /// Retires every data key but `keep` that no secret uses: its wrappings are deleted, its row keeps
    /// the date. Returns their ids.
    pub fn retire_unused_data_keys(&mut self, keep: i64, now: &str) -> Result<Vec<i64>> {
        let retired = query_all(
            self.conn,
            "UPDATE vault_keys SET retired_at = ?
             WHERE retired_at IS NULL AND id != ? AND NOT EXISTS (SELECT 1 FROM secrets WHERE key_id = vault_keys.id)
             RETURNING id",
            params![now, keep],
            |row| Ok(row.get::<_, i64>(0)?),
        )?;
        for id in &retired {
            self.conn.prepare_cached("DELETE FROM vault_key_wraps WHERE key_id = ?")?.execute([id])?;
        }
        Ok(retired)
    }

    /// Retires master key `master_id` (deletes its wrappings) unless a process seen since `live_since`
    /// uses it, it is the newest master key, or a data key not retired is wrapped under it alone.
    pub fn retire_master(
        &mut self,
        master_id: &str,
        live_since: &str,
        now: &str,
    ) -> Result<MasterRetirement> {
        if self.newest_master()?.as_deref() == Some(master_id) {
            return Ok(MasterRetirement::Needed);
        }
        let users = live_nodes_using(self.conn, master_id, live_since)?;
        if !users.is_empty() {
            return Ok(MasterRetirement::InUse(users));
        }
        let alone: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
                 WHERE w.master_id = ?1 AND k.retired_at IS NULL AND NOT EXISTS
                     (SELECT 1 FROM vault_key_wraps o WHERE o.key_id = w.key_id AND o.master_id != ?1))",
            )?
            .query_row([master_id], |row| row.get(0))?;
        if alone {
            return Ok(MasterRetirement::Needed);
        }
        self.conn.prepare_cached("DELETE FROM vault_key_wraps WHERE master_id = ?")?.execute([master_id])?;
        self.conn
            .prepare_cached("UPDATE vault_masters SET retired_at = ? WHERE id = ? AND retired_at IS NULL")?
            .execute([now, master_id])?;
        Ok(MasterRetirement::Retired)
    }

    /// Every master key that ever wrapped a data key, oldest first.
    pub fn vault_masters(&mut self) -> Result<Vec<MasterRow>> {
        masters(self.conn)
    }

    /// The live processes that use `master_id`.
    pub fn live_nodes_using(&mut self, master_id: &str, live_since: &str) -> Result<Vec<VaultNode>> {
        live_nodes_using(self.conn, master_id, live_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    fn sealed(key_id: i64) -> SealedSecret {
        SealedSecret {
            parameter: "apikey".into(),
            key_id: Some(key_id),
            nonce: vec![1; 24],
            ciphertext: vec![2; 40],
        }
    }

    /// Two data keys (1, 2), both wrapped under master "m1"; 2 also under "m2", the newest.
    async fn two_keys() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db")).await.unwrap();
        store
            .write(|tx| {
                tx.add_master("m1", "t0")?;
                for _ in 0..2 {
                    let id = tx.insert_data_key("t0")?;
                    tx.insert_wrap(id, "m1", &[id as u8; 56], "t0")?;
                }
                tx.add_master("m2", "t1")?;
                tx.insert_wrap(2, "m2", &[9; 56], "t1")?;
                tx.set_meta(ACTIVE_KEY_META, "2")
            })
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_data_key_a_secret_uses_is_never_retired_and_nothing_is_sealed_under_a_retired_one() {
        let (_dir, store) = two_keys().await;
        store.put_secret("X", "P", "", &sealed(1), "t").await.unwrap();
        assert!(store.write(|tx| tx.retire_unused_data_keys(2, "t2")).await.unwrap().is_empty());
        // The database itself refuses it, whoever asks.
        let forced: Result<()> = store
            .write(|tx| {
                tx.conn.execute("UPDATE vault_keys SET retired_at = 't2' WHERE id = 1", [])?;
                Ok(())
            })
            .await;
        assert!(forced.unwrap_err().to_string().contains("cannot be retired"));

        store.put_secret("X", "P", "", &sealed(2), "t").await.unwrap();
        assert_eq!(store.write(|tx| tx.retire_unused_data_keys(2, "t2")).await.unwrap(), [1]);
        assert!(store.wraps_under("m1").await.unwrap().iter().all(|w| w.key_id == 2));
        let refused = store.put_secret("X", "P", "", &sealed(1), "t").await;
        assert!(matches!(refused, Err(StoreError::RetiredKey(1))), "{refused:?}");
        let forced: Result<()> = store
            .write(|tx| {
                tx.conn.execute("UPDATE secrets SET key_id = 1", [])?;
                Ok(())
            })
            .await;
        assert!(forced.unwrap_err().to_string().contains("retired"));
        let keys = store.data_keys().await.unwrap();
        assert_eq!(keys[0].retired_at.as_deref(), Some("t2"), "a retired key keeps its row");
        assert_eq!((keys[1].secrets, keys[1].retired_at.clone()), (1, None));
    }

    #[tokio::test]
    async fn a_master_key_is_retired_only_when_no_live_node_uses_it_and_nothing_needs_it() {
        let (_dir, store) = two_keys().await;
        // Data key 1 is wrapped under m1 alone: m1 is needed.
        assert_eq!(
            store.write(|tx| tx.retire_master("m1", "t5", "t9")).await.unwrap(),
            MasterRetirement::Needed
        );
        store.write(|tx| tx.insert_wrap(1, "m2", &[8; 56], "t1")).await.unwrap();
        // The newest master key is never retired.
        assert_eq!(
            store.write(|tx| tx.retire_master("m2", "t5", "t9")).await.unwrap(),
            MasterRetirement::Needed
        );
        let node = VaultNode {
            id: "n1".into(),
            pid: 7,
            host: "h".into(),
            master_id: "m1".into(),
            started_at: "t0".into(),
            seen_at: "t6".into(),
        };
        store.see_vault_node(&node, "t0").await.unwrap();
        let in_use = store.write(|tx| tx.retire_master("m1", "t5", "t9")).await.unwrap();
        assert_eq!(in_use, MasterRetirement::InUse(vec![node.clone()]));
        // Not seen since t5 any more: it no longer holds the key back.
        assert_eq!(
            store.write(|tx| tx.retire_master("m1", "t7", "t9")).await.unwrap(),
            MasterRetirement::Retired
        );
        assert!(store.wraps_under("m1").await.unwrap().is_empty());
        let masters = store.vault_masters().await.unwrap();
        assert_eq!(masters[0].retired_at.as_deref(), Some("t9"));
        assert_eq!(masters[1].wrapped_keys, 2);
        // Nodes not seen for long are forgotten.
        store
            .see_vault_node(&VaultNode { id: "n2".into(), seen_at: "t8".into(), ..node }, "t7")
            .await
            .unwrap();
        assert_eq!(store.vault_nodes().await.unwrap().len(), 1);
    }
}
