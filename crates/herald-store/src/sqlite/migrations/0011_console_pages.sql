-- The console pages through the ledger newest first, 50 rows at a time, filtered or not by
-- destination: these indexes give each page from an index's end instead of sorting the ledger.
CREATE INDEX messages_by_time ON messages (created_at, id);
CREATE INDEX messages_by_destination ON messages (destination, created_at, id);

-- A message's page lists the receipts matched to it.
CREATE INDEX receipts_by_message ON receipts (message_id);
