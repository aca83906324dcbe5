-- Envelope encryption. Secrets are sealed under data keys; each data key is kept here only wrapped
-- (encrypted) under one or more master keys, which never enter the database. A master key is named by
-- a fingerprint that reveals nothing of it. While a key rotation finishes, a data key is wrapped under
-- both the old and the new master key, so a running process that still holds the old one keeps working.

-- Every master key that ever wrapped a data key. A retired one has no wrapping left: it opens nothing.
CREATE TABLE vault_masters (
    id TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    retired_at TEXT
);

-- Data keys are never deleted: a retired one loses its wrappings (its key material is gone) and keeps
-- its row, so its id is never reused and `herald vault status` can say when it was retired.
CREATE TABLE vault_keys (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE TABLE vault_key_wraps (
    key_id INTEGER NOT NULL REFERENCES vault_keys (id),
    master_id TEXT NOT NULL REFERENCES vault_masters (id),
    -- nonce || ciphertext of the 32-byte data key under the master key, bound to key_id.
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (key_id, master_id)
);
CREATE INDEX vault_key_wraps_by_master ON vault_key_wraps (master_id);

-- NULL: sealed directly under the master key (the form before data keys); the vault moves such rows
-- under a data key when it first opens the database.
ALTER TABLE secrets ADD COLUMN key_id INTEGER REFERENCES vault_keys (id);
CREATE INDEX secrets_by_key ON secrets (key_id);

-- Nothing is sealed under a retired data key, and only a data key no secret uses is retired: a value
-- sealed by one process under a key that another process is retiring can never be orphaned.
CREATE TRIGGER secrets_insert_needs_a_live_key BEFORE INSERT ON secrets
WHEN NEW.key_id IS NOT NULL AND (SELECT retired_at FROM vault_keys WHERE id = NEW.key_id) IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'the data key of this secret is retired');
END;
CREATE TRIGGER secrets_update_needs_a_live_key BEFORE UPDATE OF key_id ON secrets
WHEN NEW.key_id IS NOT NULL AND (SELECT retired_at FROM vault_keys WHERE id = NEW.key_id) IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'the data key of this secret is retired');
END;
CREATE TRIGGER vault_keys_retire_only_unused BEFORE UPDATE OF retired_at ON vault_keys
WHEN NEW.retired_at IS NOT NULL AND EXISTS (SELECT 1 FROM secrets WHERE key_id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'a data key that a secret uses cannot be retired');
END;

-- The processes that hold the vault open (`herald serve`), each with the master key it uses, seen
-- every few seconds: an old master key is retired only once no live process uses it.
CREATE TABLE vault_nodes (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    master_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
