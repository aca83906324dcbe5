-- A run waiting for a retry or a rate limit says when it is due; a restart schedules it again.
ALTER TABLE runs ADD COLUMN next_attempt_at TEXT;

-- The message ledger: one row per outbound message, written before the request leaves.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    run_id TEXT,
    element TEXT,
    idempotency_key TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    provider TEXT NOT NULL,
    named_credential TEXT NOT NULL,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    sender TEXT,
    client_message_id TEXT,
    provider_message_id TEXT,
    encoding TEXT,
    segments INTEGER,
    status TEXT NOT NULL,
    history TEXT NOT NULL,
    error_code TEXT,
    error_text TEXT,
    price TEXT,
    currency TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (idempotency_key, position)
);
CREATE INDEX messages_by_provider_id ON messages (provider, provider_message_id);
CREATE INDEX messages_by_client_id ON messages (client_message_id);
CREATE INDEX messages_by_run ON messages (run_id);
CREATE INDEX messages_by_credential_day ON messages (named_credential, created_at);

-- Every webhook event received, matched to a message or not: nothing a provider says is dropped.
CREATE TABLE receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook TEXT NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    message_id TEXT,
    provider_message_id TEXT,
    client_message_id TEXT,
    status TEXT,
    applied INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX receipts_unmatched ON receipts (provider, provider_message_id) WHERE message_id IS NULL;

-- Consent of one phone for one sender ('' when the provider did not say which sender).
CREATE TABLE consent (
    phone TEXT NOT NULL,
    sender TEXT NOT NULL,
    status TEXT NOT NULL,
    keyword TEXT,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (phone, sender)
);

-- Per-endpoint webhook secrets; only their SHA-256 is kept.
CREATE TABLE webhook_secrets (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
