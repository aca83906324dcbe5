//! The write transaction over the writer's connection: every write operation's SQL.
//!
//! It runs inside the savepoint the writer opened for one write, in the group transaction. The
//! statements that several nodes may run on the same rows at once (claims, takeovers) are written so
//! that PostgreSQL's row locks decide: an `UPDATE` re-checks its condition on the row as the other
//! writer left it, and a takeover skips rows another node has locked instead of waiting for them.

use super::cache::CACHE_CHANNEL;
use super::rows::{
    Conn, HAS_DATA_KEYS, NODE_COLUMNS, WRAPS_UNDER, by_creation, get, live_nodes_using, masters,
    message_from_row, owned, receipt_from_row, run_from_row, secret_row, wrap_from_row,
};
use crate::{
    ConsentRow, KeyWrap, MasterRow, MessageChange, MessageRow, NewMessage, NewReceipt, NewRun, PlacedSecret,
    ReceiptRow, Result, RunRow, RunStatus, SealedSecret, SecretRow, SessionRow, StoreError, StoredRecord,
    VaultNode, WriteTx,
};
use serde_json::{Map, Value};

/// The channel consent changes are announced on (see `listen`).
pub(super) const CONSENT_CHANNEL: &str = "herald_consent";
/// The channel work another node could take is announced on: the due time of a run written
/// `waiting` (see `listen`).
pub(super) const WORK_CHANNEL: &str = "herald_work";
/// How soon a waiting run must be due for its write to announce it (see `PgTx::announce_due`): the
/// engine's backstop poll period (`herald_engine::DUE_POLL_EVERY`).
const ANNOUNCED_WITHIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

pub(super) struct PgTx<'c> {
    conn: &'c mut Conn,
    /// A record's waiting runs, read with the record (an update reads both, one after the other):
    /// good until this write writes a waiting run or changes a run's status (a `ready` run
    /// inserted changes no record's waiting runs).
    waiting_of_record: Option<(String, Vec<RunRow>)>,
}

impl<'c> PgTx<'c> {
    pub(super) fn new(conn: &'c mut Conn) -> PgTx<'c> {
        PgTx { conn, waiting_of_record: None }
    }

    /// This write changes users, tokens or secrets: every node forgets what it kept of them when
    /// it commits (see `cache`).
    fn forget_cached(&mut self) -> Result<()> {
        self.conn.changes_cached();
        self.conn.defer("SELECT pg_notify($1, '')", owned![CACHE_CHANNEL])
    }
}

fn record_json(id: &str, data: &Map<String, Value>) -> Result<String> {
    serde_json::to_string(data).map_err(|source| StoreError::Corrupt { what: format!("record {id}"), source })
}

impl WriteTx for PgTx<'_> {
    fn insert_record(&mut self, object: &str, id: &str, data: &Map<String, Value>, now: &str) -> Result<()> {
        let data = record_json(id, data)?;
        // Deferred: an id taken already fails the statement, and with it the whole write, when the
        // write's statements are sent ("duplicate key value violates unique constraint
        // records_pkey"), before anything of it is committed.
        self.conn.defer(
            "INSERT INTO records (id, object, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            owned![id, object, &data, now],
        )
    }

    /// With the record, its waiting runs, in the same round trip: whoever reads a record inside a
    /// write is about to update it, and an update moves its waiting scheduled paths.
    fn record(&mut self, object: &str, id: &str) -> Result<Option<StoredRecord>> {
        let (row, waiting) = self.conn.query_opt_and_query(
            ("SELECT id, object, data FROM records WHERE id = $1 AND object = $2", &[&id, &object]),
            (super::rows::WAITING_RUNS_OF_RECORD, &[&id]),
        )?;
        let waiting = waiting.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        self.waiting_of_record = Some((id.to_string(), waiting));
        row.as_ref().map(super::rows::record_from_row).transpose()
    }

    fn update_record(&mut self, id: &str, data: &Map<String, Value>, now: &str) -> Result<()> {
        let data = record_json(id, data)?;
        self.conn.defer("UPDATE records SET data = $1, updated_at = $2 WHERE id = $3", owned![&data, now, id])
    }

    fn delete_record(&mut self, object: &str, id: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM records WHERE id = $1 AND object = $2", &[&id, &object])? == 1)
    }

    fn insert_run(&mut self, run: NewRun<'_>, now: &str) -> Result<()> {
        self.conn.defer(
            "INSERT INTO runs (id, flow, object, record_id, status, state, created_at, updated_at, version, owner)
             VALUES ($1, $2, $3, $4, 'ready', $5, $6, $6, $7, $8)",
            owned![run.id, run.flow, run.object, run.record_id, &run.state.to_string(), now, &run.version, &run.owner],
        )
    }

    fn save_run(
        &mut self,
        id: &str,
        status: RunStatus,
        state: &str,
        fault: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.waiting_of_record = None;
        self.conn.defer(
            "UPDATE runs SET status = $1, state = $2, fault = $3, next_attempt_at = NULL, updated_at = $4 WHERE id = $5",
            owned![status.as_str(), state, &fault, now, id],
        )
    }

    fn insert_waiting_run(&mut self, run: NewRun<'_>, at: &str, reason: &str, now: &str) -> Result<()> {
        self.waiting_of_record = None;
        self.conn.defer(
            "INSERT INTO runs (id, flow, object, record_id, status, state, fault, next_attempt_at, created_at, updated_at, version, owner)
             VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $7, $8, $8, $9, $10)",
            owned![
                run.id,
                run.flow,
                run.object,
                run.record_id,
                &run.state.to_string(),
                reason,
                at,
                now,
                &run.version,
                &run.owner,
            ],
        )?;
        self.announce_due(at, now)
    }

    fn waiting_runs_of_record(&mut self, record_id: &str) -> Result<Vec<RunRow>> {
        match self.waiting_of_record.take() {
            Some((id, runs)) if id == record_id => Ok(runs),
            _ => self.conn.all(super::rows::WAITING_RUNS_OF_RECORD, &[&record_id], run_from_row),
        }
    }

    fn wait_run(&mut self, id: &str, state: &str, at: &str, reason: &str, now: &str) -> Result<()> {
        self.waiting_of_record = None;
        self.conn.defer(
            "UPDATE runs SET status = 'waiting', state = $1, fault = $2, next_attempt_at = $3, updated_at = $4 WHERE id = $5",
            owned![state, reason, at, now, id],
        )?;
        self.announce_due(at, now)
    }

    /// One conditional `UPDATE ... RETURNING`. Of two nodes claiming the same run, the second waits
    /// for the first's row lock, then re-checks the condition on the row the first left: `running`,
    /// so it takes nothing.
    fn claim_run(&mut self, id: &str, owner: &str, now: &str) -> Result<Option<RunRow>> {
        self.waiting_of_record = None;
        self.conn.optional(
            concat!(
                "UPDATE runs SET status = 'running', owner = $3, next_attempt_at = NULL, updated_at = $1
                 WHERE id = $2 AND (status = 'ready' OR (status = 'waiting' AND COALESCE(next_attempt_at, '') <= $1))
                 RETURNING ",
                run_columns!()
            ),
            &[&now, &id, &owner],
            run_from_row,
        )
    }

    /// `FOR UPDATE SKIP LOCKED`: nodes taking over at once each lock the orphans they read and pass
    /// over those another has locked, so each run goes to one node and none waits for another.
    fn adopt_orphaned_runs(&mut self, owner: &str, live_since: &str, limit: i64) -> Result<Vec<RunRow>> {
        self.waiting_of_record = None;
        self.conn
            .all_planned_each_time(
                concat!(
                    "UPDATE runs SET owner = $1 WHERE id IN (
                         SELECT id FROM runs WHERE status IN ('ready', 'running')
                         AND (owner IS NULL OR (owner <> $1 AND owner NOT IN (SELECT id FROM vault_nodes WHERE seen_at >= $2)))
                         ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING ",
                    run_columns!()
                ),
                &[&owner, &live_since, &limit],
                run_from_row,
            )
            .map(by_creation)
    }

    /// Every node asks each second: the range on `next_attempt_at` reads the `runs_due` index from its
    /// start to now, not every waiting run (an hour-out scheduled path leaves one per lead).
    fn claim_due_runs(&mut self, owner: &str, now: &str, limit: i64) -> Result<Vec<RunRow>> {
        self.waiting_of_record = None;
        let runs = self.conn.all_planned_each_time(
            concat!(
                "UPDATE runs SET status = 'running', owner = $1, next_attempt_at = NULL, updated_at = $2 WHERE id IN (
                     SELECT id FROM runs WHERE status = 'waiting' AND (next_attempt_at <= $2 OR next_attempt_at IS NULL)
                     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING ",
                run_columns!()
            ),
            &[&owner, &now, &limit],
            run_from_row,
        )?;
        // RETURNING gives no order, and next_attempt_at is cleared by now: creation order is the
        // fairest one left (the earliest due are nearly always the earliest created).
        Ok(by_creation(runs))
    }

    fn upsert_message(&mut self, message: &NewMessage, now: &str) -> Result<()> {
        self.conn.defer(
            "INSERT INTO messages (id, run_id, element, idempotency_key, position, provider, named_credential, channel, destination, sender, client_message_id, encoding, segments, status, history, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, $16, $16)
             ON CONFLICT (idempotency_key, position) DO UPDATE SET attempts = messages.attempts + 1, updated_at = excluded.updated_at",
            owned![
                &message.id,
                &message.run_id,
                &message.element,
                &message.idempotency_key,
                &message.position,
                &message.provider,
                &message.named_credential,
                &message.channel,
                &message.destination,
                &message.sender,
                &message.client_message_id,
                &message.encoding,
                &message.segments,
                &message.status,
                &message.history.to_string(),
                now,
            ],
        )
    }

    fn messages_of_attempt(&mut self, idempotency_key: &str) -> Result<Vec<MessageRow>> {
        self.conn.all(
            select_messages!("WHERE idempotency_key = $1 ORDER BY position"),
            &[&idempotency_key],
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
            let found = self.conn.optional(
                select_messages!("WHERE provider = $1 AND provider_message_id = $2 LIMIT 1"),
                &[&provider, &id],
                message_from_row,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        match client_message_id {
            Some(id) => self.conn.optional(
                select_messages!("WHERE provider = $1 AND client_message_id = $2 LIMIT 1"),
                &[&provider, &id],
                message_from_row,
            ),
            None => Ok(None),
        }
    }

    fn attempt_all_pending(&mut self, idempotency_key: &str) -> Result<bool> {
        let row = self.conn.query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE idempotency_key = $1 AND status <> 'pending')",
            &[&idempotency_key],
        )?;
        get(&row, 0)
    }

    /// The history is JSON text as the engine wrote it (an array, no trailing space); the entry is
    /// appended as text, so the other entries keep their bytes (their key order included).
    fn answer_pending(
        &mut self,
        idempotency_key: &str,
        status: &str,
        entry: &str,
        now: &str,
    ) -> Result<usize> {
        let moved = self.conn.execute(
            "UPDATE messages SET status = $1,
                history = CASE WHEN rtrim(history) IN ('[]', '')
                    THEN '[' || $2 || ']'
                    ELSE left(rtrim(history), -1) || ',' || $2 || ']' END,
                updated_at = $3
             WHERE idempotency_key = $4 AND status = 'pending'",
            &[&status, &entry, &now, &idempotency_key],
        )?;
        Ok(moved as usize)
    }

    fn update_message(&mut self, id: &str, change: &MessageChange, now: &str) -> Result<()> {
        self.conn.defer(
            "UPDATE messages SET status = COALESCE($1, status), history = COALESCE($2, history),
                provider_message_id = COALESCE($3, provider_message_id), error_code = COALESCE($4, error_code),
                error_text = COALESCE($5, error_text), price = COALESCE($6, price), currency = COALESCE($7, currency),
                segments = COALESCE($8, segments), encoding = COALESCE($9, encoding), updated_at = $10
             WHERE id = $11",
            owned![
                &change.status,
                &change.history.as_ref().map(ToString::to_string),
                &change.provider_message_id,
                &change.error_code,
                &change.error_text,
                &change.price,
                &change.currency,
                &change.segments,
                &change.encoding,
                now,
                id,
            ],
        )
    }

    fn insert_receipt(&mut self, receipt: &NewReceipt<'_>) -> Result<i64> {
        let row = self.conn.query_one(
            "INSERT INTO receipts (webhook, provider, kind, message_id, provider_message_id, client_message_id, status, applied, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &receipt.webhook,
                &receipt.provider,
                &receipt.kind,
                &receipt.message_id,
                &receipt.provider_message_id,
                &receipt.client_message_id,
                &receipt.status,
                &receipt.applied,
                &receipt.body,
                &receipt.received_at,
            ],
        )?;
        get(&row, 0)
    }

    fn unmatched_receipts(&mut self, provider: &str, provider_message_id: &str) -> Result<Vec<ReceiptRow>> {
        self.conn.all(
            select_receipts!(
                "WHERE message_id IS NULL AND kind = 'status' AND provider = $1 AND provider_message_id = $2 ORDER BY id"
            ),
            &[&provider, &provider_message_id],
            receipt_from_row,
        )
    }

    fn match_receipt(&mut self, id: i64, message_id: &str, applied: bool) -> Result<()> {
        self.conn.defer(
            "UPDATE receipts SET message_id = $1, applied = $2 WHERE id = $3",
            owned![message_id, &applied, &id],
        )
    }

    fn lift_unknown_sender_opt_out(&mut self, phone: &str, now: &str) -> Result<()> {
        let lifted = self.conn.all(
            "UPDATE consent SET status = 'opted_in', updated_at = $1 WHERE phone = $2 AND sender = '' AND status = 'opted_out'
             RETURNING phone, sender, status, keyword, source, updated_at",
            &[&now, &phone],
            consent_from_row,
        )?;
        for consent in &lifted {
            self.announce(consent)?;
        }
        Ok(())
    }

    fn set_consent(&mut self, consent: &ConsentRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO consent (phone, sender, status, keyword, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (phone, sender) DO UPDATE SET status = excluded.status, keyword = excluded.keyword,
                source = excluded.source, updated_at = excluded.updated_at",
            &[
                &consent.phone,
                &consent.sender,
                &consent.status,
                &consent.keyword,
                &consent.source,
                &consent.updated_at,
            ],
        )?;
        self.announce(consent)
    }

    fn first_delivery(&mut self, digest: &str, webhook: &str, now: &str) -> Result<bool> {
        let noted = self.conn.execute(
            "INSERT INTO webhook_deliveries (digest, webhook, received_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
            &[&digest, &webhook, &now],
        )?;
        Ok(noted == 1)
    }

    fn set_webhook_secret(&mut self, name: &str, hash: &str, now: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO webhook_secrets (name, hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
            &[&name, &hash, &now],
        )?;
        Ok(())
    }

    fn create_user(&mut self, id: &str, name: &str, permission_sets: &[String], now: &str) -> Result<()> {
        self.forget_cached()?;
        let created = self.conn.execute(
            "INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&id, &name, &now],
        )?;
        if created == 0 {
            return Err(StoreError::Database(format!("a user named {name} already exists").into()));
        }
        for set in permission_sets {
            self.conn.execute(
                "INSERT INTO user_permission_sets (user_id, permission_set) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&id, set],
            )?;
        }
        Ok(())
    }

    fn deactivate_user(&mut self, name: &str) -> Result<bool> {
        self.forget_cached()?;
        Ok(self.conn.execute("UPDATE users SET active = FALSE WHERE name = $1 AND active", &[&name])? == 1)
    }

    fn create_token(&mut self, id: &str, user_id: &str, hash: &str, now: &str) -> Result<()> {
        self.forget_cached()?;
        self.conn.execute(
            "INSERT INTO tokens (id, user_id, hash, created_at) VALUES ($1, $2, $3, $4)",
            &[&id, &user_id, &hash, &now],
        )?;
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, now: &str) -> Result<bool> {
        // Every node keeps users by token hash: they must forget them, or the token keeps working there.
        self.forget_cached()?;
        Ok(self.conn.execute(
            "UPDATE tokens SET revoked = TRUE, revoked_at = $1 WHERE id = $2 AND NOT revoked",
            &[&now, &id],
        )? == 1)
    }

    fn set_password_hash(&mut self, user_id: &str, hash: &str, now: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO user_passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
            &[&user_id, &hash, &now],
        )?;
        Ok(())
    }

    fn create_session(&mut self, hash: &str, session: &SessionRow) -> Result<()> {
        self.conn.execute("DELETE FROM console_sessions WHERE expires_at <= $1", &[&session.created_at])?;
        self.conn.execute(
            "INSERT INTO console_sessions (hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &session.user_id, &session.csrf_token, &session.created_at, &session.expires_at],
        )?;
        Ok(())
    }

    fn delete_session(&mut self, hash: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM console_sessions WHERE hash = $1", &[&hash])? == 1)
    }

    fn upsert_secret(
        &mut self,
        external_credential: &str,
        principal: &str,
        user_id: &str,
        secret: &SealedSecret,
        now: &str,
    ) -> Result<()> {
        self.forget_cached()?;
        self.conn.execute(
            "INSERT INTO secrets (external_credential, principal, user_id, parameter, key_id, nonce, ciphertext, updated_at, set_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (external_credential, principal, user_id, parameter)
             DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at, set_at = excluded.set_at",
            &[
                &external_credential,
                &principal,
                &user_id,
                &secret.parameter,
                &secret.key_id,
                &secret.nonce,
                &secret.ciphertext,
                &now,
            ],
        )?;
        Ok(())
    }

    fn data_key_retired(&mut self, key_id: i64) -> Result<Option<bool>> {
        self.conn.optional("SELECT retired_at IS NOT NULL FROM vault_keys WHERE id = $1", &[&key_id], |row| {
            get(row, 0)
        })
    }

    fn has_data_keys(&mut self) -> Result<bool> {
        get(&self.conn.query_one(HAS_DATA_KEYS, &[])?, 0)
    }

    fn newest_master(&mut self) -> Result<Option<String>> {
        self.conn.optional(
            "SELECT id FROM vault_masters WHERE retired_at IS NULL ORDER BY seq DESC LIMIT 1",
            &[],
            |row| get(row, 0),
        )
    }

    fn add_master(&mut self, id: &str, now: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO vault_masters (id, added_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn insert_data_key(&mut self, now: &str) -> Result<i64> {
        get(&self.conn.query_one("INSERT INTO vault_keys (created_at) VALUES ($1) RETURNING id", &[&now])?, 0)
    }

    fn insert_wrap(&mut self, key_id: i64, master_id: &str, wrapped: &[u8], now: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO vault_key_wraps (key_id, master_id, wrapped, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_id, master_id) DO UPDATE SET wrapped = excluded.wrapped",
            &[&key_id, &master_id, &wrapped, &now],
        )?;
        Ok(())
    }

    fn wraps_under(&mut self, master_id: &str) -> Result<Vec<KeyWrap>> {
        self.conn.all(WRAPS_UNDER, &[&master_id], wrap_from_row)
    }

    fn live_data_keys(&mut self) -> Result<Vec<i64>> {
        self.conn
            .all("SELECT id FROM vault_keys WHERE retired_at IS NULL ORDER BY id", &[], |row| get(row, 0))
    }

    fn secrets_not_under(&mut self, key_id: i64, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        self.conn.all(
            "SELECT seq, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE (key_id IS NULL OR key_id <> $1) AND seq > $2 ORDER BY seq LIMIT $3",
            &[&key_id, &after, &limit],
            secret_row,
        )
    }

    fn legacy_secrets(&mut self, after: i64, limit: i64) -> Result<Vec<SecretRow>> {
        self.conn.all(
            "SELECT seq, external_credential, principal, user_id, parameter, key_id, nonce, ciphertext
             FROM secrets WHERE key_id IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
            secret_row,
        )
    }

    fn reseal_secret(&mut self, placed: &PlacedSecret, now: &str) -> Result<()> {
        self.forget_cached()?;
        self.conn.execute(
            "UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3, updated_at = $4
             WHERE external_credential = $5 AND principal = $6 AND user_id = $7 AND parameter = $8",
            &[
                &placed.sealed.key_id,
                &placed.sealed.nonce,
                &placed.sealed.ciphertext,
                &now,
                &placed.external_credential,
                &placed.principal,
                &placed.user_id,
                &placed.sealed.parameter,
            ],
        )?;
        Ok(())
    }

    fn retire_unused_data_keys(&mut self, keep: i64, now: &str) -> Result<Vec<i64>> {
        let retired = self.conn.all(
            "UPDATE vault_keys SET retired_at = $1
             WHERE retired_at IS NULL AND id <> $2 AND NOT EXISTS (SELECT 1 FROM secrets WHERE key_id = vault_keys.id)
             RETURNING id",
            &[&now, &keep],
            |row| get::<i64>(row, 0),
        )?;
        for id in &retired {
            self.conn.execute("DELETE FROM vault_key_wraps WHERE key_id = $1", &[id])?;
        }
        Ok(retired)
    }

    fn master_wraps_a_key_alone(&mut self, master_id: &str) -> Result<bool> {
        let row = self.conn.query_one(
            "SELECT EXISTS (SELECT 1 FROM vault_key_wraps w JOIN vault_keys k ON k.id = w.key_id
             WHERE w.master_id = $1 AND k.retired_at IS NULL AND NOT EXISTS
                 (SELECT 1 FROM vault_key_wraps o WHERE o.key_id = w.key_id AND o.master_id <> $1))",
            &[&master_id],
        )?;
        get(&row, 0)
    }

    fn retire_master_rows(&mut self, master_id: &str, now: &str) -> Result<()> {
        self.conn.execute("DELETE FROM vault_key_wraps WHERE master_id = $1", &[&master_id])?;
        self.conn.execute(
            "UPDATE vault_masters SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL",
            &[&now, &master_id],
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
        self.conn.execute(
            &format!(
                "INSERT INTO vault_nodes ({NODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET master_id = excluded.master_id, seen_at = excluded.seen_at"
            ),
            &[&node.id, &node.pid, &node.host, &node.master_id, &node.started_at, &node.seen_at],
        )?;
        self.conn.execute("DELETE FROM vault_nodes WHERE seen_at < $1", &[&forget_before])?;
        Ok(())
    }

    fn remove_vault_node(&mut self, id: &str) -> Result<()> {
        self.conn.execute("DELETE FROM vault_nodes WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn add_project_version(&mut self, hash: &str, files: &str, now: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO project_versions (hash, files, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING",
            &[&hash, &files, &now],
        )?;
        get(&self.conn.query_one("SELECT seq FROM project_versions WHERE hash = $1", &[&hash])?, 0)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        super::rows::meta(self.conn, key)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.conn.execute("DELETE FROM meta WHERE key = $1", &[&key])?;
        Ok(())
    }

    fn import_rows(&mut self, table: &crate::copy::Table, rows: &[crate::copy::Row]) -> Result<()> {
        self.waiting_of_record = None;
        self.forget_cached()?;
        super::copy::import(self.conn, table, rows)
    }
}

impl PgTx<'_> {
    /// Tells every node of a consent change; PostgreSQL delivers it when (and only if) the
    /// transaction commits.
    fn announce(&mut self, consent: &ConsentRow) -> Result<()> {
        let payload = serde_json::to_string(consent).map_err(|source| StoreError::Corrupt {
            what: format!("consent of {}", consent.phone),
            source,
        })?;
        self.conn.execute("SELECT pg_notify($1, $2)", &[&CONSENT_CHANNEL, &payload])?;
        Ok(())
    }

    /// Tells the other nodes that a run waits until `at`, so that one of them claims it then even if
    /// the node that parked it cannot (busy, or stopped by then). Deferred with the write's other
    /// statements, so it costs no round trip; PostgreSQL delivers it at commit, and a transaction's
    /// identical notices once. A `ready` run is not announced: the node that writes one runs it.
    ///
    /// Only a run due within [`ANNOUNCED_WITHIN`] is announced (a retry, a rate-limit wait, a run
    /// handed over): a notice costs every node's listener a wake-up, and a lead whose flow has an
    /// hour-out scheduled path would send one per lead (measured: a third more of PostgreSQL's CPU
    /// per lead). A run due later is found by every node's due poll, at most that poll's period late
    /// if its own node is gone by then.
    fn announce_due(&mut self, at: &str, now: &str) -> Result<()> {
        let soon = match (chrono::DateTime::parse_from_rfc3339(at), chrono::DateTime::parse_from_rfc3339(now))
        {
            (Ok(at), Ok(now)) => at.signed_duration_since(now) <= ANNOUNCED_WITHIN,
            _ => true,
        };
        if !soon {
            return Ok(());
        }
        self.conn.defer("SELECT pg_notify($1, $2)", owned![WORK_CHANNEL, at])
    }
}

pub(super) fn consent_from_row(row: &postgres::Row) -> Result<ConsentRow> {
    Ok(ConsentRow {
        phone: get(row, 0)?,
        sender: get(row, 1)?,
        status: get(row, 2)?,
        keyword: get(row, 3)?,
        source: get(row, 4)?,
        updated_at: get(row, 5)?,
    })
}

/// A consent row as `announce` wrote it.
pub(super) fn consent_from_json(payload: &str) -> serde_json::Result<ConsentRow> {
    serde_json::from_str(payload)
}
