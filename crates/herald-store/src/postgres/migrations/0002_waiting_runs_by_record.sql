-- A record's waiting runs, read in every write that changes a record with scheduled paths. The
-- writer keeps a plan per statement (made once per connection, often while the tables are still
-- empty), and on an empty table the planner prefers runs_due, whose condition matches too, which
-- would then walk every waiting run of every record. This index matches the same condition and the
-- record, so it is the cheaper plan whatever the table holds.
CREATE INDEX runs_waiting_by_record ON runs (record_id, created_at, id) WHERE status = 'waiting';
