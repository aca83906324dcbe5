-- When a secret's value was last set. `updated_at` also moves when a key rotation reseals the value,
-- which is not a change an administrator made; `set_at` moves only when a value is set. Values set
-- before this column existed take their `updated_at`, the best time known for them.
ALTER TABLE secrets ADD COLUMN set_at TEXT NOT NULL DEFAULT '';
UPDATE secrets SET set_at = updated_at;

-- When a token was revoked (`revoked` already refuses it).
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
