CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE user_permission_sets (
    user_id TEXT NOT NULL REFERENCES users (id),
    permission_set TEXT NOT NULL,
    PRIMARY KEY (user_id, permission_set)
);

-- Tokens are random 190-bit strings; only their SHA-256 is kept.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);

-- Per-user principals keep one value per user; named principals use the empty user id.
ALTER TABLE secrets RENAME TO secrets_v1;
CREATE TABLE secrets (
    external_credential TEXT NOT NULL,
    principal TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    parameter TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (external_credential, principal, user_id, parameter)
);
INSERT INTO secrets (external_credential, principal, user_id, parameter, nonce, ciphertext, updated_at)
    SELECT external_credential, principal, '', parameter, nonce, ciphertext, updated_at FROM secrets_v1;
DROP TABLE secrets_v1;
