//! The write transaction over the writer's connection: every write operation's SQL.
//!
//! It runs inside the savepoint `db` opened for one write, in the group transaction; statements are
//! cached on the connection, so each is parsed once.

use super::rows::{
    CLAIM_RUN, HAS_DATA_KEYS, NODE_COLUMNS, RUN_COLUMNS, SAVE_RUN, WAITING_RUNS_OF_RECORD, WRAPS_UNDER,
    by_creation, live_nodes_using, masters, message_from_row, query_all, query_optional, receipt_from_row,
    run_from_row, secret_row, wrap_from_row,
};
use crate::{
    ConsentRow, KeyWrap, MasterRow, MessageChange, MessageRow, NewMessage, NewReceipt, NewRun, PlacedSecret,
    ReceiptRow, Result, RunRow, RunStatus, SealedSecret, SecretRow, SessionRow, StoreError, StoredRecord,
    VaultNode, WriteTx,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

pub(super) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn new(conn: &'c Connection) -> SqliteTx<'c> {
        SqliteTx { conn }
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }
}

fn record_json(id: &str, data: &Map<String, Value>) -> Result<String> {
    serde_json::to_string(data).map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })
}

impl WriteTx for SqliteTx<'_> {
    fn insert_record(&mut self, object: &str, id: &str, data: &Map<String, Value>, now: &str) -> Result<()> {
        let data = record_json(id, data)?;
        self.execute(
            "INSERT INTO records (id, object, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            params![id, object, data, now, now],
        )?;
        Ok(())
    }

    fn record(&mut self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        super::rows::record(self.conn, object, id)
    }

    fn update_record(&mut self, id: &str, data: &Map<String, Value>, now: &str) -> Result<()> {
        let data = record_json(id, data)?;
        self.execute("UPDATE records SET data = ?, updated_at = ? WHERE id = ?", params![data, now, id])?;
        Ok(())
    }

    fn delete_record(&mut self, object: &str, id: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM records WHERE id = ? AND object = ?", params![id, object])? == 1)
    }

    fn insert_run(&mut self, run: NewRun<'_>, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO runs (id, flow, object, record_id, status, state, created_at, updated_at, version, owner)
             VALUES (?, ?, ?, ?, 'ready', ?, ?, ?, ?, ?)",
            params![
                run.id,
                run.flow,
                run.object,
                run.record_id,
                run.state.to_string(),
                now,
                now,
                run.version,
                run.owner
            ],
        )?;
        Ok(())
    }

    fn save_run(
        &mut self,
        id: &str,
        status: RunStatus,
        state: &str,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.execute(SAVE_RUN, params![status.as_str(), state, fault, now, id])?;
        Ok(())
    }

    fn insert_waiting_run(&mut self, run: NewRun<'_>, at: &str, reason: &str, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO runs (id, flow, object, record_id, status, state, fault, next_attempt_at, created_at, updated_at, version, owner)
             VALUES (?, ?, ?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?)",
            params![
                run.id,
                run.flow,
                run.object,
                run.record_id,
                run.state.to_string(),
                reason,
                at,
                now,
                now,
                run.version,
                run.owner
            ],
        )?;
        Ok(())
    }

    fn waiting_runs_of_record(&mut self, record_id: &str) -> Result<Vec<RunRow>> {
        query_all(self.conn, WAITING_RUNS_OF_RECORD, [record_id], run_from_row)
    }

    fn wait_run(&mut self, id: &str, state: &str, at: &str, reason: &str, now: &str) -> Result<()> {
        self.execute(
            "UPDATE runs SET status = 'waiting', state = ?, fault = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
            params![state, reason, at, now, id],
        )?;
        Ok(())
    }

    /// One conditional `UPDATE ... RETURNING`: SQLite has one writer, and the condition is checked by
    /// the statement that changes the row, so a second claim finds the run `running`.
    fn claim_run(&mut self, id: &str, owner: &str, now: &str) -> Result<Option<RunRow>> {
        query_optional(self.conn, CLAIM_RUN, [now, id, owner], run_from_row)
    }

    fn adopt_orphaned_runs(&mut self, owner: &str, live_since: &str, limit: i64) -> Result<Vec<RunRow>> {
        query_all(
            self.conn,
            &format!(
                "UPDATE runs SET owner = ?1 WHERE id IN (
                     SELECT id FROM runs WHERE status IN ('ready', 'running')
                     AND (owner IS NULL OR (owner <> ?1 AND owner NOT IN (SELECT id FROM vault_nodes WHERE seen_at >= ?2)))
                     ORDER BY created_at, id LIMIT ?3)
                 RETURNING {RUN_COLUMNS}"
            ),
            params![owner, live_since, limit],
            run_from_row,
        )
        .map(by_creation)
    }

    fn claim_due_runs(&mut self, owner: &str, now: &str, limit: i64) -> Result<Vec<RunRow>> {
        query_all(
            self.conn,
            &format!(
                "UPDATE runs SET status = 'running', owner = ?1, next_attempt_at = NULL, updated_at = ?2 WHERE id IN (
                     SELECT id FROM runs WHERE status = 'waiting' AND COALESCE(next_attempt_at, '') <= ?2
                     ORDER BY next_attempt_at, id LIMIT ?3)
                 RETURNING {RUN_COLUMNS}"
            ),
            params![owner, now, limit],
            run_from_row,
        )
    }

    fn upsert_message(&mut self, message: &NewMessage, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO messages (id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, encoding, segments, status, history, attempts, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
             ON CONFLICT (idempotency_key, position) DO UPDATE SET attempts = attempts + 1, updated_at = excluded.updated_at",
            params![
                message.id,
                message.run_id,
                message.element,
                message.idempotency_key,
                message.position,
                message.provider,
                message.named_credential,
                message.channel,
                message.destination,
                message.sender,
                message.client_message_id,
                message.encoding,
                message.segments,
                message.status,
                message.history.to_string(),
                now,
                now
            ],
        )?;
        Ok(())
    }

    fn messages_of_attempt(&mut self, idempotency_key: &str) -> Result<Vec<MessageRow>> {
        query_all(
            self.conn,
            select_messages!("WHERE idempotency_key = ? ORDER BY position"),
            [idempotency_key],
            message_from_row,
        )
    }

    fn find_message(
        &mut self,
        provider: &str,
        provider_message_id: Option<&str>,
        client_message_id: Option<&str>,
    ) -> Result<Option<MessageRow>> {
        if let Some(id) = provider_message_id {
            let found = query_optional(
                self.conn,
                select_messages!("WHERE provider = ? AND provider_message_id = ? LIMIT 1"),
                [provider, id],
                message_from_row,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        match client_message_id {
            Some(id) => query_optional(
                self.conn,
                select_messages!("WHERE provider = ? AND client_message_id = ? LIMIT 1"),
                [provider, id],
                message_from_row,
            ),
            None => Ok(None),
        }
    }

    fn attempt_all_pending(&mut self, idempotency_key: &str) -> Result<bool> {
        let others: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE idempotency_key = ? AND status <> 'pending'",
            )?
            .query_row([idempotency_key], |row| row.get(0))?;
        Ok(others == 0)
    }

    fn answer_pending(
        &mut self,
        idempotency_key: &str,
        status: &str,
        entry: &str,
        now: &str,
    ) -> Result<usize> {
        self.execute(
            "UPDATE messages SET status = ?, history = json_insert(history, '$[#]', json(?)), updated_at = ?
             WHERE idempotency_key = ? AND status = 'pending'",
            params![status, entry, now, idempotency_key],
        )
    }

    fn update_message(&mut self, id: &str, change: &MessageChange, now: &str) -> Result<()> {
        self.execute(
            "UPDATE messages SET status = COALESCE(?, status), history = COALESCE(?, history),
                provider_message_id = COALESCE(?, provider_message_id), error_code = COALESCE(?, error_code),
                error_text = COALESCE(?, error_text), price = COALESCE(?, price), currency = COALESCE(?, currency),
                segments = COALESCE(?, segments), encoding = COALESCE(?, encoding), updated_at = ?
             WHERE id = ?",
            params![
                change.status,
                change.history.as_ref().map(ToString::to_string),
                change.provider_message_id,
                change.error_code,
                change.error_text,
                change.price,
                change.currency,
                change.segments,
                change.encoding,
                now,
                id
            ],
        )?;
        Ok(())
    }

    fn insert_receipt(&mut self, receipt: &NewReceipt<'_>) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO receipts (webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )?
            .query_row(
                params![
                    receipt.webhook,
                    receipt.provider,
                    receipt.kind,
                    receipt.message_id,
                    receipt.provider_message_id,
                    receipt.client_message_id,
                    receipt.status,
                    receipt.applied as i64,
                    receipt.body,
                    receipt.received_at
                ],
                |row| row.get(0),
            )?)
    }

    fn unmatched_receipts(&mut self, provider: &str, provider_message_id: &str) -> Result<Vec<ReceiptRow>> {
        query_all(
            self.conn,
            select_receipts!(
                "WHERE message_id IS NULL AND kind = 'status' AND provider = ? AND provider_message_id = ? ORDER BY id"
            ),
            [provider, provider_message_id],
            receipt_from_row,
        )
    }

    fn match_receipt(&mut self, id: i64, message_id: &str, applied: bool) -> Result<()> {
        self.execute(
            "UPDATE receipts SET message_id = ?, applied = ? WHERE id = ?",
            params![message_id, applied as i64, id],
        )?;
        Ok(())
    }

    fn lift_unknown_sender_opt_out(&mut self, phone: &str, now: &str) -> Result<()> {
        self.execute(
            "UPDATE consent SET status = 'opted_in', updated_at = ? WHERE phone = ? AND sender = '' AND status = 'opted_out'",
            [now, phone],
        )?;
        Ok(())
    }

    fn set_consent(&mut self, consent: &ConsentRow) -> Result<()> {
        self.execute(
            "INSERT INTO consent (phone, sender, status, keyword, source, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (phone, sender) DO UPDATE SET status = excluded.status, keyword = excluded.keyword,
                source = excluded.source, updated_at = excluded.updated_at",
            params![
                consent.phone,
                consent.sender,
                consent.status,
                consent.keyword,
                consent.source,
                consent.updated_at
            ],
        )?;
        Ok(())
    }

    fn first_delivery(&mut self, digest: &str, webhook: &str, now: &str) -> Result<bool> {
        let noted = self.execute(
            "INSERT INTO webhook_deliveries (digest, webhook, received_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING",
            [digest, webhook, now],
        )?;
        Ok(noted == 1)
    }

    fn set_webhook_secret(&mut self, name: &str, hash: &str, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO webhook_secrets (name, hash, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
            [name, hash, now],
        )?;
        Ok(())
    }

    fn create_user(&mut self, id: &str, name: &str, permission_sets: &[String], now: &str) -> Result<()> {
        self.execute("INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)", [id, name, now])?;
        for set in permission_sets {
            self.execute(
                "INSERT INTO user_permission_sets (user_id, permission_set) VALUES (?, ?)",
                [id, set.as_str()],
            )?;
        }
        Ok(())
    }

    fn deactivate_user(&mut self, name: &str) -> Result<bool> {
        Ok(self.execute("UPDATE users SET active = 0 WHERE name = ? AND active = 1", [name])? == 1)
    }

    fn create_token(&mut self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)",
            [id, user_id, hash, now],
        )?;
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, now: &str) -> Result<bool> {
        Ok(self.execute(
            "UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ? AND revoked = 0",
            [now, id],
        )? == 1)
    }

    fn set_password_hash(&mut self, user_id: &str, hash: &str, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO user_passwords (user_id, hash, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
            [user_id, hash, now],
        )?;
        Ok(())
    }

    fn create_session(&mut self, hash: &str, session: &SessionRow) -> Result<()> {
        self.execute("DELETE FROM console_sessions WHERE expires_at <= ?", [&session.created_at])?;
        self.execute(
            "INSERT INTO console_sessions (hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            [
                hash,
                session.user_id.as_str(),
                session.csrf_token.as_str(),
                session.created_at.as_str(),
                session.expires_at.as_str(),
            ],
        )?;
        Ok(())
    }

    fn delete_session(&mut self, hash: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM console_sessions WHERE hash = ?", [hash])? == 1)
    }

    fn upsert_secret(
        &mut self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
        secret: &SealedSecret,
        now: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO secrets (external_credential, principal, user_id, parameter, key_id, nonce, ciphertext, updated_at, set_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?8)
             ON CONFLICT (external_credential, principal, user_id, parameter)
             DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at, set_at = excluded.set_at",
            params![
                external_credential,
                principal,
                user_id,
                secret.parameter,
                secret.key_id,
                secret.nonce,
                secret.ciphertext,
                now
            ],
        )?;
        Ok(())
    }

    fn data_key_retired(&mut self, key_id: i64) -> Result<Option<bool>> {
        let retired_at: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT retired_at FROM vault_keys WHERE id = ?")?
            .query_row([key_id], |row| row.get(0))
            .optional()?;
        Ok(retired_at.map(|at| at.is_some()))
    }

    fn has_data_keys(&mut self) -> Result<bool> {
        Ok(self.conn.prepare_cached(HAS_DATA_KEYS)?.query_row([], |r| r.get(0))?)
    }

    fn newest_master(&mut self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM vault_masters WHERE retired_at IS NULL ORDER BY rowid DESC LIMIT 1",
            )?
            .query_row([], |row| row.get(0))
            .optional()?)
    }

    fn add_master(&mut self, id: &str, now: &str) -> Result<()> {
        self.execute("INSERT OR IGNORE INTO vault_masters (id, added_at) VALUES (?, ?)", [id, now])?;
        Ok(())
    }

    fn insert_data_key(&mut self, now: &str) -> Result<i64> {
        self.execute("INSERT INTO vault_keys (created_at) VALUES (?)", [now])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn insert_wrap(&mut self, key_id: i64, master_id: &str, wrapped: &[u8], now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO vault_key_wraps (key_id, master_id, wrapped, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (key_id, master_id) DO UPDATE SET wrapped = excluded.wrapped",
            params![key_id, master_id, wrapped, now],
        )?;
        Ok(())
    }

    fn wraps_under(&mut self, master_id: &str) -> Result<Vec<KeyWrap>> {
        query_all(self.conn, WRAPS_UNDER, [master_id], wrap_from_row)
    }

    fn live_data_keys(&mut self) -> Result<Vec<i64>> {
        query_all(self.conn, "SELECT id FROM vault_keys WHERE retired_at IS NULL ORDER BY id", [], |row| {
            Ok(row.get(0)?)
        })
    }

    fn secrets_not_under(&mut self, key_id: i64, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        query_all(
            self.conn,
            "SELECT rowid, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE (key_id IS NULL OR key_id != ?) AND rowid > ? ORDER BY rowid LIMIT ?",
            params![key_id, after, limit],
            secret_row,
        )
    }

    fn legacy_secrets(&mut self, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        query_all(
            self.conn,
            "SELECT rowid, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE key_id IS NULL AND rowid > ? ORDER BY rowid LIMIT ?",
            params![after, limit],
            secret_row,
        )
    }

    fn reseal_secret(&mut self, placed: &PlacedSecret, now: &str) -> Result<()> {
        self.execute(
            "UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?
             WHERE external_credential = ? AND principal = ? AND user_id = ? AND parameter = ?",
            params![
                placed.sealed.key_id,
                placed.sealed.nonce,
                placed.sealed.ciphertext,
                now,
                placed.external_credential,
                placed.principal,
                placed.user_id,
                placed.sealed.parameter
            ],
        )?;
        Ok(())
    }

    fn retire_unused_data_keys(&mut self, keep: i64, now: &str) -> Result<Vec<i64>> {
        let retired = query_all(
            self.conn,
            "UPDATE vault_keys SET retired_at = ?
             WHERE retired_at IS NULL AND id != ? AND NOT EXISTS (SELECT 1 FROM secrets WHERE key_id = vault_keys.id)
             RETURNING id",
            params![now, keep],
            |row| Ok(row.get::<_, i64>(0)?),
        )?;
        for id in &retired {
            self.execute("DELETE FROM vault_key_wraps WHERE key_id = ?", [id])?;
        }
        Ok(retired)
    }

    fn master_wraps_a_key_alone(&mut self, master_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
                 WHERE w.master_id = ?1 AND k.retired_at IS NULL AND NOT EXISTS
                     (SELECT 1 FROM vault_key_wraps o WHERE o.key_id = w.key_id AND o.master_id != ?1))",
            )?
            .query_row([master_id], |row| row.get(0))?)
    }

    fn retire_master_rows(&mut self, master_id: &str, now: &str) -> Result<()> {
        self.execute("DELETE FROM vault_key_wraps WHERE master_id = ?", [master_id])?;
        self.execute(
            "UPDATE vault_masters SET retired_at = ? WHERE id = ? AND retired_at IS NULL",
            [now, master_id],
        )?;
        Ok(())
    }

    fn vault_masters(&mut self) -> Result<Vec<MasterRow>> {
        masters(self.conn)
    }

    fn live_nodes_using(&mut self, master_id: &str, live_since: &str) -> Result<Vec<VaultNode>> {
        live_nodes_using(self.conn, master_id, live_since)
    }

    fn see_vault_node(&mut self, node: &VaultNode, forget_before: &str) -> Result<()> {
        self.execute(
            &format!(
                "INSERT INTO vault_nodes ({NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET master_id = excluded.master_id, seen_at = excluded.seen_at"
            ),
            params![node.id, node.pid, node.host, node.master_id, node.started_at, node.seen_at],
        )?;
        self.execute("DELETE FROM vault_nodes WHERE seen_at < ?", [forget_before])?;
        Ok(())
    }

    fn remove_vault_node(&mut self, id: &str) -> Result<()> {
        self.execute("DELETE FROM vault_nodes WHERE id = ?", [id])?;
        Ok(())
    }

    fn add_project_version(&mut self, hash: &str, files: &str, now: &str) -> Result<i64> {
        self.execute(
            "INSERT INTO project_versions (hash, files, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING",
            params![hash, files, now],
        )?;
        Ok(self
            .conn
            .query_row("SELECT seq FROM project_versions WHERE hash = ?", [hash], |row| row.get(0))?)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        super::rows::meta(self.conn, key)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.execute("DELETE FROM meta WHERE key = ?", [key])?;
        Ok(())
    }

    fn import_rows(&mut self, table: &crate::copy::Table, rows: &[crate::copy::Row]) -> Result<()> {
        super::copy::import(self.conn, table, rows)
    }
}
