//! The writer thread and its group commit.
//!
//! One thread owns the write connection. It takes every write queued at that moment (up to
//! `GROUP_LIMIT`) into one transaction and commits once: one commit's round trip and flush serve them
//! all. When several writes share a transaction each runs in a savepoint of its own, so that a write
//! that fails is rolled back alone and the others still commit.
//!
//! Round trips are what a write costs here, so statements ride together (see `rows::Conn`): the
//! statements whose answers a write does not read are deferred and sent in one round trip when the
//! write ends, with the release of its savepoint and the next write's new one; `BEGIN` goes with the
//! first statement; a write alone in its transaction has no savepoint. A write is known to have
//! failed when its closure returns an error or when any of its statements failed (PostgreSQL then
//! refuses the rest of the transaction, and a `COMMIT` would silently roll it back): either way it
//! is rolled back at once, before the next write runs. The `COMMIT` is a round trip of its own, so
//! that a failure in the last write cannot take the group's other writes with it.
//!
//! A lost connection is opened again before the next group; the writes of a group whose commit was
//! never answered hear [`StoreError::Commit`] (PostgreSQL may have committed it: the engine's
//! idempotency keys and journals are written so that a write done twice changes nothing more).

use super::rows::Conn;
use super::tx::PgTx;
use crate::{Ran, StoreError, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Writes per transaction. Each write of a group is a subtransaction, and PostgreSQL keeps the ids
/// of only 64 of them per transaction in shared memory before every other session's snapshots get
/// slower: a group stays within that.
const GROUP_LIMIT: usize = 64;
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
                    let message = format!("the database cannot be reached: {error}");
                    for write in group.drain(..) {
                        write.refuse(StoreError::Busy(message.clone()));
                    }
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
        if group.len() == GROUP_LIMIT {
            commit_group(&mut conn, &mut group);
        }
    }
    commit_group(&mut conn, &mut group);
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Answers every write: those that ran hear `error`, those that did not are refused with it.
fn fail_all(ran: Vec<Ran>, rest: impl Iterator<Item = Write>, error: &str) {
    for done in ran {
        done.failed(StoreError::Commit(error.to_string()));
    }
    for write in rest {
        write.refuse(StoreError::Commit(error.to_string()));
    }
}

fn commit_group(conn: &mut Conn, group: &mut Vec<Write>) {
    if group.is_empty() {
        return;
    }
    let alone = group.len() == 1;
    let mut writes = group.drain(..);
    conn.defer_control(if alone { "BEGIN" } else { "BEGIN; SAVEPOINT write" });
    let mut ran: Vec<Ran> = Vec::with_capacity(GROUP_LIMIT);
    while let Some(write) = writes.next() {
        let failures = conn.failures();
        let done = write.run(&mut PgTx::new(conn));
        // The write's deferred statements go now, and with them the release of its savepoint and the
        // next write's (`then`): one round trip, however many statements the write deferred.
        let sent = if done.succeeded() && conn.failures() == failures {
            let then =
                if alone || writes.len() == 0 { "" } else { "RELEASE SAVEPOINT write; SAVEPOINT write" };
            conn.flush(then).map_err(|error| super::rows::described(&error))
        } else {
            conn.discard_deferred();
            Err(String::new())
        };
        if sent.is_ok() {
            ran.push(done);
            continue;
        }
        // Undo this write alone. Its savepoint was not released (a failed statement made the
        // release fail too), and a rollback to it keeps it, ready for the next write.
        let undo = if alone { "ROLLBACK" } else { "ROLLBACK TO SAVEPOINT write" };
        if let Err(error) = conn.batch(undo) {
            let _ = conn.batch("ROLLBACK");
            let message = super::rows::described(&error);
            done.failed(StoreError::Commit(message.clone()));
            fail_all(ran, writes, &message);
            return;
        }
        match sent {
            Err(statement_failed) if done.succeeded() => {
                // The closure went on after a statement failed, or a deferred statement failed:
                // what it wrote cannot be kept.
                let why = if statement_failed.is_empty() {
                    "a statement of this write failed and the write went on regardless; nothing of it was kept"
                        .to_string()
                } else {
                    statement_failed
                };
                done.failed(StoreError::Database(why.into()));
            }
            // Its caller hears the closure's own error.
            _ => done.committed(),
        }
        if alone {
            return;
        }
    }
    match conn.batch("COMMIT") {
        Ok(()) => ran.into_iter().for_each(Ran::committed),
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            fail_all(ran, std::iter::empty(), &super::rows::described(&error));
        }
    }
}
