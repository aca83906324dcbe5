-- The node (a `herald serve` process, by its id in `vault_nodes`) that runs a `ready` or `running`
-- run: the node that committed it, or the one that claimed it. Several nodes on one database take
-- over the runs of a node no longer seen (see `WriteTx::adopt_orphaned_runs`); NULL: no node yet (a
-- run from before owners were recorded, or a waiting run nobody has claimed).
ALTER TABLE runs ADD COLUMN owner TEXT;
