//! The writer thread and its group commit.
//!
//! One thread owns the write connection. It takes every write queued at that moment (up to
//! `GROUP_LIMIT`) into one transaction and commits once: one commit's round trip and flush serve them
//! all. When several writes share a transaction each runs in a savepoint of its own, so that a write
//! that fails is rolled back alone and the others still commit.
//!
//! Round trips are what a write costs here, so control statements ride together: `BEGIN` with the
//! first savepoint, each savepoint's release with the next one's creation, and none at all for a write
//! that is alone in its transaction. A write is known to have failed when its closure returns an
//! error or when any of its statements failed (PostgreSQL then refuses the rest of the transaction,
//! and a `COMMIT` would silently roll it back): either way it is rolled back at once, before the next
//! write runs.
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
    if let Err(error) = conn.batch(if alone { "BEGIN" } else { "BEGIN; SAVEPOINT write" }) {
        fail_all(Vec::new(), writes, &super::rows::described(&error));
        return;
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(GROUP_LIMIT);
    // Whether a write succeeded since the savepoint was set: the next one needs a savepoint of its own.
    let mut savepoint_used = false;
    while let Some(write) = writes.next() {
        if savepoint_used {
            if let Err(error) = conn.batch("RELEASE SAVEPOINT write; SAVEPOINT write") {
                let _ = conn.batch("ROLLBACK");
                fail_all(ran, writes, &super::rows::described(&error));
                return;
            }
            savepoint_used = false;
        }
        let failures = conn.failures();
        let done = write.run(&mut PgTx::new(conn));
        let clean = conn.failures() == failures;
        if done.succeeded() && clean {
            ran.push(done);
            savepoint_used = true;
            continue;
        }
        // Undo this write alone; the savepoint stays, ready for the next write.
        let undo = if alone { "ROLLBACK" } else { "ROLLBACK TO SAVEPOINT write" };
        if let Err(error) = conn.batch(undo) {
            let _ = conn.batch("ROLLBACK");
            let message = super::rows::described(&error);
            done.failed(StoreError::Commit(message.clone()));
            fail_all(ran, writes, &message);
            return;
        }
        if done.succeeded() {
            // The closure went on after a statement failed: what it wrote cannot be kept.
            done.failed(StoreError::Database(
                "a statement of this write failed and the write went on regardless; nothing of it was kept"
                    .into(),
            ));
        } else {
            // Its caller hears the closure's own error.
            done.committed();
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
