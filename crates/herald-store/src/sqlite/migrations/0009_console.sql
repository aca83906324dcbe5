-- Console sign-in. A password is kept only as an Argon2id hash (a PHC string); a user without a
-- row here signs in with an API token or not at all.
CREATE TABLE user_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Console sessions, kept under the SHA-256 of their id (the cookie's value is never stored). Not
-- copied between databases: a copy signs everyone out.
CREATE TABLE console_sessions (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
