//! The writer thread and its group commit.
//!
//! One thread owns the write connection. It takes every write queued at that moment (up to
//! `GROUP_LIMIT`) into one transaction, each write in a savepoint of its own, and commits once: one
//! commit's round trip and flush serve them all. A write that fails is rolled back to its savepoint,
//! and the others of its group still commit.
//!
//! A lost connection is opened again before the next group; the writes of a group whose commit was
//! never answered hear [`StoreError::Commit`] (PostgreSQL may have committed it: the engine's
//! idempotency keys and journals are written so that a write done twice changes nothing more).

use super::rows::Conn;
use super::tx::PgTx;
use crate::{Ran, StoreError, Write};
use std::sync::mpsc;
use std::time::Duration;

const GROUP_LIMIT: usize = 512;
/// How long the writer waits before opening a lost connection again.
const RECONNECT_WAIT: Duration = Duration::from_millis(200);

pub(super) enum Command {
    Write(Write),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// Opens the writer's connection: a new one each time the last was lost.
pub(super) type Connect = Box<dyn Fn() -> crate::Result<Conn> + Send>;

pub(super) fn write_loop(mut conn: Conn, connect: Connect, queue: mpsc::Receiver<Command>) {
    let mut group: Vec<Write> = Vec::with_capacity(GROUP_LIMIT);
    let mut stop = None;
    while stop.is_none() {
        match queue.recv() {
            Ok(Command::Write(job)) => group.push(job),
            Ok(Command::Stop(done)) => stop = Some(done),
            Err(_) => break,
        }
        while group.len() < GROUP_LIMIT && stop.is_none() {
            match queue.try_recv() {
                Ok(Command::Write(job)) => group.push(job),
                Ok(Command::Stop(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        if conn.is_closed() {
            match connect() {
                Ok(fresh) => conn = fresh,
                Err(error) => {
                    tracing::warn!(%error, "the database connection was lost and cannot be opened again yet");
                    refuse_all(&mut group, || {
                        StoreError::Busy(format!("the database cannot be reached: {error}"))
                    });
                    std::thread::sleep(RECONNECT_WAIT);
                    continue;
                }
            }
        }
        commit_group(&mut conn, &mut group);
    }
    // Writes queued before the stop are run, not dropped.
    while let Ok(Command::Write(job)) = queue.try_recv() {
        group.push(job);
        commit_group(&mut conn, &mut group);
    }
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

fn refuse_all(group: &mut Vec<Write>, error: impl Fn() -> StoreError) {
    for write in group.drain(..) {
        write.refuse(error());
    }
}

fn commit_group(conn: &mut Conn, group: &mut Vec<Write>) {
    if group.is_empty() {
        return;
    }
    if let Err(error) = conn.batch("BEGIN") {
        let message = super::rows::described(&error);
        refuse_all(group, || StoreError::Commit(message.clone()));
        return;
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(group.len());
    for write in group.drain(..) {
        if let Some(done) = in_savepoint(conn, write) {
            ran.push(done);
        }
    }
    match conn.batch("COMMIT") {
        Ok(()) => ran.into_iter().for_each(Ran::committed),
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            let message = super::rows::described(&error);
            for done in ran {
                done.failed(StoreError::Commit(message.clone()));
            }
        }
    }
}

/// Runs one write in a savepoint, undoing only it when it fails. A write whose closure swallowed a
/// database error and returned success cannot be released (PostgreSQL has marked the transaction
/// failed): it is rolled back to its savepoint and hears that error, and its group goes on.
fn in_savepoint(conn: &mut Conn, write: Write) -> Option<Ran> {
    if let Err(error) = conn.batch("SAVEPOINT write") {
        write.refuse(error.into());
        return None;
    }
    let ran = write.run(&mut PgTx::new(conn));
    if ran.succeeded() {
        match conn.batch("RELEASE SAVEPOINT write") {
            Ok(()) => return Some(ran),
            Err(error) => {
                let _ = conn.batch("ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write");
                ran.failed(error.into());
                return None;
            }
        }
    }
    match conn.batch("ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write") {
        Ok(()) => Some(ran),
        Err(error) => {
            ran.failed(error.into());
            None
        }
    }
}
