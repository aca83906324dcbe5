-- Every version of the project a server ran, with its files, so that a run pinned to a version can be
-- resumed on that version's flows after a reload or a restart (the folder may hold another by then).
-- `seq` orders versions as they were first loaded; `hash` is the SHA-256 of the files, so loading the
-- same files again finds the same version.
CREATE TABLE project_versions (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    files TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The project version a run started on (NULL: started before versions were recorded, or by a process
-- that records none; such a run goes on with the project loaded now).
ALTER TABLE runs ADD COLUMN version INTEGER;
