//! Copies: a table's rows out of and into a PostgreSQL database in the form no backend owns
//! (`crate::copy`).
//!
//! A table ordered by insertion is read by its identity column `seq`, which is its cursor; rows
//! written in the order they come get increasing `seq`s, so they keep that order. Ids are inserted as
//! they are (`OVERRIDING SYSTEM VALUE` for the identity columns that generate them), and the identity's
//! sequence is then moved past the greatest, so that the next receipt, data key or project version
//! gets a new id.

use super::rows::{Conn, get};
use crate::copy::{Cell, Kind, Order, Page, Row, Table};
use crate::{Result, StoreError};
use postgres::types::ToSql;

/// A statement takes at most this many values.
const MAX_VALUES: usize = 65_535;

static NULL_TEXT: Option<String> = None;
static NULL_INT: Option<i64> = None;
static NULL_BYTES: Option<Vec<u8>> = None;
static NULL_BOOL: Option<bool> = None;

/// A cell as a value bound to a column of `kind` (a NULL takes the column's type).
fn bound(cell: &Cell, kind: Kind) -> &(dyn ToSql + Sync) {
    match cell {
        Cell::Null => match kind {
            Kind::Text => &NULL_TEXT,
            Kind::Int => &NULL_INT,
            Kind::Bytes => &NULL_BYTES,
            Kind::Bool => &NULL_BOOL,
        },
        Cell::Int(value) => value,
        Cell::Text(text) => text,
        Cell::Bytes(bytes) => bytes,
        Cell::Bool(value) => value,
    }
}

fn cell(row: &postgres::Row, at: usize, kind: Kind) -> Result<Cell> {
    Ok(match kind {
        Kind::Text => get::<Option<String>>(row, at)?.map_or(Cell::Null, Cell::Text),
        Kind::Int => get::<Option<i64>>(row, at)?.map_or(Cell::Null, Cell::Int),
        Kind::Bytes => get::<Option<Vec<u8>>>(row, at)?.map_or(Cell::Null, Cell::Bytes),
        Kind::Bool => get::<Option<bool>>(row, at)?.map_or(Cell::Null, Cell::Bool),
    })
}

fn kind_of(table: &Table, column: &str) -> Kind {
    table.columns.iter().find(|c| c.name == column).map_or(Kind::Text, |c| c.kind)
}

pub(super) fn export(conn: &mut Conn, table: &Table, after: Option<Vec<Cell>>, limit: i64) -> Result<Page> {
    let (name, columns) = (table.name, table.column_list());
    let rows = match &table.order {
        Order::Insertion => {
            let after = match after.and_then(|cursor| cursor.into_iter().next()) {
                Some(Cell::Int(seq)) => seq,
                _ => 0,
            };
            conn.query_planned_each_time(
                &format!("SELECT {columns}, seq FROM {name} WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after, &limit],
            )?
        }
        Order::Key(keys) => {
            let cursor = after.unwrap_or_default();
            let filter = if cursor.is_empty() {
                String::new()
            } else {
                let places: Vec<String> = (1..=cursor.len()).map(|at| format!("${at}")).collect();
                format!(" WHERE ({}) > ({})", keys.join(", "), places.join(", "))
            };
            let mut values: Vec<&(dyn ToSql + Sync)> =
                cursor.iter().zip(keys.iter()).map(|(cell, key)| bound(cell, kind_of(table, key))).collect();
            values.push(&limit);
            let sql = format!(
                "SELECT {columns} FROM {name}{filter} ORDER BY {} LIMIT ${}",
                keys.join(", "),
                cursor.len() + 1
            );
            conn.query_planned_each_time(&sql, &values)?
        }
    };
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        let cells = table
            .columns
            .iter()
            .enumerate()
            .map(|(at, column)| cell(row, at, column.kind))
            .collect::<Result<Row>>()?;
        page.push(cells);
    }
    let next = match (rows.last(), page.last()) {
        (Some(last_row), Some(last)) if page.len() as i64 >= limit => Some(match table.order {
            Order::Insertion => vec![Cell::Int(get(last_row, table.columns.len())?)],
            Order::Key(_) => table.key_of(last),
        }),
        _ => None,
    };
    Ok(Page { rows: page, next })
}

pub(super) fn import(conn: &mut Conn, table: &Table, rows: &[Row]) -> Result<()> {
    let count = table.columns.len();
    if let Some(row) = rows.iter().find(|row| row.len() != count) {
        return Err(StoreError::Database(
            format!("a row of {} has {} values for {count} columns", table.name, row.len()).into(),
        ));
    }
    for chunk in rows.chunks(MAX_VALUES / count) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|row| {
                let places: Vec<String> = (1..=count).map(|at| format!("${}", row * count + at)).collect();
                format!("({})", places.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {}",
            table.name,
            table.column_list(),
            tuples.join(", ")
        );
        let values: Vec<&(dyn ToSql + Sync)> = chunk
            .iter()
            .flat_map(|row| row.iter().zip(table.columns).map(|(cell, column)| bound(cell, column.kind)))
            .collect();
        conn.execute(&sql, &values)?;
    }
    // An id the database generates (an identity column) continues after the ids copied.
    if let Order::Key([key]) = table.order
        && kind_of(table, key) == Kind::Int
        && !rows.is_empty()
    {
        let sequence: Option<String> =
            get(&conn.query_one("SELECT pg_get_serial_sequence($1, $2)", &[&table.name, key])?, 0)?;
        if let Some(sequence) = sequence {
            conn.query_one(
                &format!("SELECT setval($1::text::regclass, (SELECT MAX({key}) FROM {}))", table.name),
                &[&sequence],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::copy::{NOT_COPIED, Order, TABLES};
    use crate::postgres::testing::scratch_database;
    use std::collections::BTreeSet;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_carries_every_table_and_column_of_the_postgresql_schema() {
        let Some(scratch) = scratch_database() else { return };
        crate::Store::open(std::path::Path::new(&scratch.url)).await.unwrap().close().await;
        let url = scratch.url.clone();
        let columns: Vec<(String, String)> = tokio::task::spawn_blocking(move || {
            let mut client = url.parse::<postgres::Config>().unwrap().connect(postgres::NoTls).unwrap();
            client
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name <> 'herald_schema'",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect()
        })
        .await
        .unwrap();
        let tables: BTreeSet<&str> = columns.iter().map(|(table, _)| table.as_str()).collect();
        let listed: BTreeSet<&str> =
            TABLES.iter().map(|t| t.name).chain(NOT_COPIED.iter().copied()).collect();
        assert_eq!(tables, listed, "a table is missing from crate::copy::TABLES (or from NOT_COPIED)");
        for table in TABLES {
            let stored: BTreeSet<&str> = columns
                .iter()
                .filter(|(name, column)| {
                    name == table.name && !(matches!(table.order, Order::Insertion) && column == "seq")
                })
                .map(|(_, column)| column.as_str())
                .collect();
            let listed: BTreeSet<&str> = table.columns.iter().map(|c| c.name).collect();
            assert_eq!(stored, listed, "the columns of {} in crate::copy::TABLES", table.name);
        }
    }
}
