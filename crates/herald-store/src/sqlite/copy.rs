//! Copies: a table's rows out of and into a SQLite file in the form no backend owns (`crate::copy`).
//!
//! A table ordered by insertion is read by `rowid`, which is its cursor; rows written in the order
//! they come get increasing `rowid`s, so they keep that order. Explicit integer ids are inserted as
//! they are: a later insert without an id gets one after the greatest (`INTEGER PRIMARY KEY`), and
//! `AUTOINCREMENT` notes an inserted id greater than any before it in `sqlite_sequence`.

use super::placeholders;
use crate::copy::{Cell, Kind, Order, Page, Row, Table};
use crate::{Result, StoreError};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

impl rusqlite::ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Cell::Null => ToSqlOutput::Owned(Value::Null),
            Cell::Int(value) => ToSqlOutput::Owned(Value::Integer(*value)),
            Cell::Bool(value) => ToSqlOutput::Owned(Value::Integer(i64::from(*value))),
            Cell::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Cell::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// A stored value as a cell of the column's kind.
fn cell(value: ValueRef<'_>, kind: Kind, table: &Table, column: &str) -> Result<Cell> {
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            StoreError::Database(format!("{}.{column} holds text that is not UTF-8", table.name).into())
        })
    };
    Ok(match (value, kind) {
        (ValueRef::Null, _) => Cell::Null,
        (ValueRef::Integer(value), Kind::Int) => Cell::Int(value),
        (ValueRef::Integer(value), Kind::Bool) => Cell::Bool(value != 0),
        (ValueRef::Text(bytes), Kind::Text) => Cell::Text(text(bytes)?),
        (ValueRef::Blob(bytes), Kind::Bytes) => Cell::Bytes(bytes.to_vec()),
        // A column's affinity stores a number written into a text column as text; one read by an
        // older herald as a number is still text to herald.
        (ValueRef::Integer(value), Kind::Text) => Cell::Text(value.to_string()),
        (other, kind) => {
            return Err(StoreError::Database(
                format!(
                    "{}.{column} holds a {:?} where herald keeps {kind:?}",
                    table.name,
                    other.data_type()
                )
                .into(),
            ));
        }
    })
}

pub(super) fn export(conn: &Connection, table: &Table, after: Option<Vec<Cell>>, limit: i64) -> Result<Page> {
    let (name, columns) = (table.name, table.column_list());
    let (sql, mut values) = match &table.order {
        Order::Insertion => (
            format!("SELECT {columns}, rowid FROM {name} WHERE rowid > ? ORDER BY rowid LIMIT ?"),
            vec![after.and_then(|cursor| cursor.into_iter().next()).unwrap_or(Cell::Int(0))],
        ),
        Order::Key(keys) => {
            let keys = keys.join(", ");
            let filter = match &after {
                Some(cursor) => format!(" WHERE ({keys}) > ({})", placeholders(cursor.len())),
                None => String::new(),
            };
            (
                format!("SELECT {columns} FROM {name}{filter} ORDER BY {keys} LIMIT ?"),
                after.unwrap_or_default(),
            )
        }
    };
    values.push(Cell::Int(limit));
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values.iter()))?;
    let mut page = Vec::new();
    let mut last_rowid = 0i64;
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(table.columns.len());
        for (at, column) in table.columns.iter().enumerate() {
            cells.push(cell(row.get_ref(at)?, column.kind, table, column.name)?);
        }
        if let Order::Insertion = table.order {
            last_rowid = row.get(table.columns.len())?;
        }
        page.push(cells);
    }
    let next = match page.last() {
        Some(last) if page.len() as i64 >= limit => Some(match table.order {
            Order::Insertion => vec![Cell::Int(last_rowid)],
            Order::Key(_) => table.key_of(last),
        }),
        _ => None,
    };
    Ok(Page { rows: page, next })
}

pub(super) fn import(conn: &Connection, table: &Table, rows: &[Row]) -> Result<()> {
    let count = table.columns.len();
    let sql =
        format!("INSERT INTO {} ({}) VALUES ({})", table.name, table.column_list(), placeholders(count));
    let mut statement = conn.prepare_cached(&sql)?;
    for row in rows {
        if row.len() != count {
            return Err(StoreError::Database(
                format!("a row of {} has {} values for {count} columns", table.name, row.len()).into(),
            ));
        }
        statement.execute(params_from_iter(row.iter()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::copy::{NOT_COPIED, TABLES};
    use rusqlite::Connection;
    use std::collections::BTreeSet;

    #[tokio::test]
    async fn a_copy_carries_every_table_and_column_of_the_sqlite_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.db");
        crate::Store::open(&path).await.unwrap().close().await;
        let conn = Connection::open(&path).unwrap();
        let mut names = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .unwrap();
        let tables: BTreeSet<String> =
            names.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
        let listed: BTreeSet<String> =
            TABLES.iter().map(|t| t.name).chain(NOT_COPIED.iter().copied()).map(String::from).collect();
        assert_eq!(tables, listed, "a table is missing from crate::copy::TABLES (or from NOT_COPIED)");
        for table in TABLES {
            let mut info =
                conn.prepare(&format!("SELECT name FROM pragma_table_info('{}')", table.name)).unwrap();
            let columns: BTreeSet<String> =
                info.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
            let listed: BTreeSet<String> = table.columns.iter().map(|c| c.name.to_string()).collect();
            assert_eq!(columns, listed, "the columns of {} in crate::copy::TABLES", table.name);
        }
    }
}
