-- Every webhook delivery herald applied, by a digest of its endpoint and body: a replayed delivery
-- (an attacker's, or a provider's retry of one herald already took) changes nothing and adds no row.
CREATE TABLE webhook_deliveries (
    digest TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
