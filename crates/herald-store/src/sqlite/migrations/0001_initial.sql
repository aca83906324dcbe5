CREATE TABLE records (
    id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX records_by_object ON records (object);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    object TEXT NOT NULL,
    record_id TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    fault TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX runs_by_record ON runs (record_id);
CREATE INDEX runs_by_status ON runs (status, created_at);

CREATE TABLE secrets (
    external_credential TEXT NOT NULL,
    principal TEXT NOT NULL,
    parameter TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (external_credential, principal, parameter)
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
