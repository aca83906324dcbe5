//! Copying a database into another, whichever backends they are (a SQLite file into PostgreSQL when a
//! second node joins, a PostgreSQL database back into a file, debug's rollback copy).
//!
//! The copy is an export and an import of rows in a form no backend owns: a [`Row`] of [`Cell`]s, in
//! the columns [`TABLES`] lists, the one place that names herald's tables and their columns for
//! copying. A backend reads a page of a table with [`Backend::export_rows`](crate::Backend::export_rows)
//! and writes one with [`WriteTx::import_rows`](crate::WriteTx::import_rows); [`Store::copy_into`]
//! moves the pages, one write each, so a table of 100,000 records is never in memory whole.
//!
//! What a copy keeps: every row and its ids (receipt ids, data key ids, project version numbers),
//! and the order a table is read in (records in creation order, secrets and master keys as they were
//! added): rows are written in the order they are read, and a table ordered by insertion is read in
//! that order. After the copy, a new receipt, data key or project version gets an id after the copied
//! ones. Secrets are copied sealed, as stored: the target needs the same master key.
//!
//! What it leaves out: `vault_nodes`, the live processes (a node registers itself when it starts),
//! and each backend's own bookkeeping (its schema version).

use crate::{Result, Store, StoreError};

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// One row of a table, in the order of its [`Table::columns`].
pub type Row = Vec<Cell>;

/// A column's type, whatever the backend calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A 64-bit integer.
    Int,
    Bytes,
    Bool,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

/// The order a table is read and written in.
#[derive(Debug)]
pub enum Order {
    /// The order its rows were inserted in, which herald reads it in (SQLite's `rowid`, PostgreSQL's
    /// `seq`): the rows are written to the target in that order, which gives them the same order there.
    Insertion,
    /// By these columns, its primary key (integer ids among them are kept as they are).
    Key(&'static [&'static str]),
}

/// A table as it is copied.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub order: Order,
}

impl Table {
    /// The columns, comma separated, as a statement lists them.
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|column| column.name).collect::<Vec<_>>().join(", ")
    }

    /// The positions in [`Table::columns`] of the key columns (none for [`Order::Insertion`]).
    pub fn key_positions(&self) -> Vec<usize> {
        let Order::Key(keys) = &self.order else { return Vec::new() };
        keys.iter()
            .map(|key| {
                self.columns
                    .iter()
                    .position(|column| column.name == *key)
                    .unwrap_or_else(|| panic!("key column {key} is not a column of {}", self.name))
            })
            .collect()
    }

    /// The cursor after `row` for a table ordered by key: its key values.
    pub fn key_of(&self, row: &Row) -> Vec<Cell> {
        self.key_positions().into_iter().map(|at| row[at].clone()).collect()
    }
}

/// A page of rows read from a table.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    /// Where the next page starts (give it back as `after`), or `None` when this was the last one.
    pub next: Option<Vec<Cell>>,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

use Kind::{Bool, Bytes, Int, Text};

/// Every table a copy carries, parents before the tables that refer to them.
pub static TABLES: &[Table] = &[
    Table { name: "meta", columns: &[col("key", Text), col("value", Text)], order: Order::Key(&["key"]) },
    Table {
        name: "users",
        columns: &[col("id", Text), col("name", Text), col("active", Bool), col("created_at", Text)],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "user_permission_sets",
        columns: &[col("user_id", Text), col("permission_set", Text)],
        order: Order::Key(&["user_id", "permission_set"]),
    },
    Table {
        name: "user_passwords",
        columns: &[col("user_id", Text), col("hash", Text), col("updated_at", Text)],
        order: Order::Key(&["user_id"]),
    },
    Table {
        name: "tokens",
        columns: &[
            col("id", Text),
            col("user_id", Text),
            col("hash", Text),
            col("created_at", Text),
            col("last_used_at", Text),
            col("revoked", Bool),
            col("revoked_at", Text),
        ],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "records",
        columns: &[
            col("id", Text),
            col("object", Text),
            col("data", Text),
            col("created_at", Text),
            col("updated_at", Text),
        ],
        order: Order::Insertion,
    },
    Table {
        name: "runs",
        columns: &[
            col("id", Text),
            col("flow", Text),
            col("object", Text),
            col("record_id", Text),
            col("status", Text),
            col("state", Text),
            col("fault", Text),
            col("created_at", Text),
            col("updated_at", Text),
            col("next_attempt_at", Text),
            col("version", Int),
            col("owner", Text),
        ],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "messages",
        columns: &[
            col("id", Text),
            col("run_id", Text),
            col("element", Text),
            col("idempotency_key", Text),
            col("position", Int),
            col("provider", Text),
            col("named_credential", Text),
            col("channel", Text),
            col("destination", Text),
            col("sender", Text),
            col("client_message_id", Text),
            col("provider_message_id", Text),
            col("encoding", Text),
            col("segments", Int),
            col("status", Text),
            col("history", Text),
            col("error_code", Text),
            col("error_text", Text),
            col("price", Text),
            col("currency", Text),
            col("attempts", Int),
            col("created_at", Text),
            col("updated_at", Text),
        ],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "receipts",
        columns: &[
            col("id", Int),
            col("webhook", Text),
            col("provider", Text),
            col("kind", Text),
            col("message_id", Text),
            col("provider_message_id", Text),
            col("client_message_id", Text),
            col("status", Text),
            col("applied", Bool),
            col("body", Text),
            col("received_at", Text),
        ],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "consent",
        columns: &[
            col("phone", Text),
            col("sender", Text),
            col("status", Text),
            col("keyword", Text),
            col("source", Text),
            col("updated_at", Text),
        ],
        order: Order::Key(&["phone", "sender"]),
    },
    Table {
        name: "webhook_secrets",
        columns: &[col("name", Text), col("hash", Text), col("created_at", Text)],
        order: Order::Key(&["name"]),
    },
    Table {
        name: "webhook_deliveries",
        columns: &[col("digest", Text), col("webhook", Text), col("received_at", Text)],
        order: Order::Key(&["digest"]),
    },
    Table {
        name: "vault_masters",
        columns: &[col("id", Text), col("added_at", Text), col("retired_at", Text)],
        order: Order::Insertion,
    },
    Table {
        name: "vault_keys",
        columns: &[col("id", Int), col("created_at", Text), col("retired_at", Text)],
        order: Order::Key(&["id"]),
    },
    Table {
        name: "vault_key_wraps",
        columns: &[
            col("key_id", Int),
            col("master_id", Text),
            col("wrapped", Bytes),
            col("created_at", Text),
        ],
        order: Order::Key(&["key_id", "master_id"]),
    },
    Table {
        name: "secrets",
        columns: &[
            col("external_credential", Text),
            col("principal", Text),
            col("user_id", Text),
            col("parameter", Text),
            col("key_id", Int),
            col("nonce", Bytes),
            col("ciphertext", Bytes),
            col("updated_at", Text),
            col("set_at", Text),
        ],
        order: Order::Insertion,
    },
    Table {
        name: "project_versions",
        columns: &[col("seq", Int), col("hash", Text), col("files", Text), col("created_at", Text)],
        order: Order::Key(&["seq"]),
    },
];

/// Tables a database has that a copy leaves out on purpose.
pub const NOT_COPIED: &[&str] = &["vault_nodes", "console_sessions"];

/// The table named `name` in [`TABLES`].
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|table| table.name == name)
}

/// Rows read and written per page (and per write).
const PAGE: i64 = 500;

/// How many rows a copy wrote, per table, in [`TABLES`]' order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

impl CopyReport {
    /// The rows copied of one table.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.iter().find(|(name, _)| *name == table).map_or(0, |(_, rows)| *rows)
    }
}

impl Store {
    /// Copies every row of every table in [`TABLES`] from this database into `target`, keeping ids
    /// and the order rows are read in; `vault_nodes` is not copied. Secrets are copied sealed: the
    /// target is read with the same master key.
    ///
    /// The target must hold none of herald's data (a database just opened): one that does is refused
    /// with [`StoreError::TargetNotEmpty`] before anything is written. Each page of rows is one write
    /// on the target, so a copy that fails half-way leaves part of the rows there: start again on an
    /// empty database. The source is read page by page, not as one snapshot: stop the servers that
    /// write to it first.
    pub async fn copy_into(&self, target: &Store) -> Result<CopyReport> {
        let mut holding = Vec::new();
        for table in TABLES {
            if !target.backend.export_rows(table, None, 1).await?.rows.is_empty() {
                holding.push(table.name.to_string());
            }
        }
        if !holding.is_empty() {
            return Err(StoreError::TargetNotEmpty { tables: holding });
        }
        let mut report = CopyReport::default();
        for table in TABLES {
            let mut copied = 0u64;
            let mut after = None;
            loop {
                let Page { rows, next } = self.backend.export_rows(table, after.take(), PAGE).await?;
                if !rows.is_empty() {
                    copied += rows.len() as u64;
                    target.write(move |tx| tx.import_rows(table, &rows)).await?;
                }
                match next {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            report.tables.push((table.name, copied));
        }
        Ok(report)
    }
}

/// The migrations a database has and the ones this herald knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Migrations applied to the database (0: a database not made yet, or empty).
    pub applied: usize,
    /// Migrations this herald knows: the schema's version once up to date.
    pub known: usize,
}

impl SchemaVersion {
    /// Migrations that opening the database would apply.
    pub fn pending(&self) -> usize {
        self.known.saturating_sub(self.applied)
    }

    /// A newer herald wrote the schema: this one refuses to open it.
    pub fn newer(&self) -> bool {
        self.applied > self.known
    }
}

#[cfg(test)]
mod tests;
