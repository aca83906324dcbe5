-- The console's home page counts what was created in the last hour and day (messages through
-- messages_by_time, made for the Messages page), and the Runs list pages
-- through every run newest first: both read a range of `created_at`, which no index had (runs had
-- it only after their status). Each index costs one more entry per insert.
CREATE INDEX records_by_creation ON records (created_at);
CREATE INDEX runs_by_creation ON runs (created_at);
