//! The writer thread and its group commit.
//!
//! One thread owns the write connection. It takes every write queued at that moment (up to
//! `GROUP_LIMIT`) into one transaction and commits once: one commit's round trip and flush serve them
//! all. When several writes share a transaction each runs in a savepoint of its own, so that a write
//! that fails is rolled back alone and the others still commit.
//!
//! Round trips are what a write costs here, so statements ride together (see `rows::Conn`): the
//! statements whose answers a write does not read are deferred, and nothing waits for one write to
//! end before the next runs. `BEGIN` goes with the first statement; each write of a group opens a
//! savepoint of its own; what is still unsent when the last write has run goes in one round trip,
//! and `COMMIT` in another. A group whose writes read nothing costs two round trips however many
//! writes it holds; a write alone in its transaction has no savepoint, and sends its `COMMIT` with
//! its statements (one round trip: if a statement fails, PostgreSQL refuses the rest of the
//! transaction and the `COMMIT` ends it as a rollback).
//!
//! A write is known to have failed when its closure returns an error, when one of its statements
//! failed while it ran (PostgreSQL then refuses the rest of the transaction, and a `COMMIT` would
//! silently roll it back), or when one of its deferred statements fails when sent, which may be
//! during a later write of the group: the connection then rolls it back to its savepoint and sends
//! again what its failure refused (`Conn::take_undone`). Either way it alone is undone. The group's
//! `COMMIT` is a round trip of its own, so that a failure in the last write cannot take the group's
//! other writes with it.
//!
//! A lost connection is opened again before the next group; the writes of a group whose commit was
//! never answered hear [`StoreError::Commit`] (PostgreSQL may have committed it: the engine's
//! idempotency keys and journals are written so that a write done twice changes nothing more).

use super::cache::ReadCache;
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

pub(super) fn write_loop(
    mut conn: Conn,
    connect: Connect,
    queue: mpsc::Receiver<Command>,
    cache: &ReadCache,
) {
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
        commit_group(&mut conn, &mut group, cache);
    }
    // Writes queued before the stop are run, not dropped.
    while let Ok(Command::Write(job)) = queue.try_recv() {
        group.push(job);
        if group.len() == GROUP_LIMIT {
            commit_group(&mut conn, &mut group, cache);
        }
    }
    commit_group(&mut conn, &mut group, cache);
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// What became of a write whose closure has run, until its group's outcome is known.
enum Outcome {
    /// Its statements stand: it commits with the group, unless one of its deferred statements fails
    /// when sent.
    Kept,
    /// Its closure returned an error, which its caller hears; its statements were rolled back.
    Refused,
    /// A statement of it failed and its closure went on regardless: rolled back, and its caller
    /// hears why.
    WentOn,
    /// A deferred statement of it failed when sent, after its closure had returned: rolled back,
    /// and its caller hears the database's error.
    Failed(String),
}

/// Answers a write that was rolled back or never committed for its own reasons.
fn answer_undone(done: Ran, outcome: Outcome) {
    match outcome {
        // Its caller hears the closure's own error.
        Outcome::Refused => done.committed(),
        Outcome::WentOn => done.failed(StoreError::Database(
            "a statement of this write failed and the write went on regardless; nothing of it was kept"
                .into(),
        )),
        Outcome::Failed(error) => done.failed(StoreError::Database(error.into())),
        Outcome::Kept => unreachable!("a kept write is answered with its group"),
    }
}

/// Answers every write of a group that did not commit: those that were kept hear `error`, the
/// others their own reasons, and those that did not run are refused with `error`.
fn fail_all(ran: Vec<(Ran, Outcome)>, rest: impl Iterator<Item = Write>, error: &str) {
    for (done, outcome) in ran {
        match outcome {
            Outcome::Kept => done.failed(StoreError::Commit(error.to_string())),
            other => answer_undone(done, other),
        }
    }
    for write in rest {
        write.refuse(StoreError::Commit(error.to_string()));
    }
}

fn commit_group(conn: &mut Conn, group: &mut Vec<Write>, cache: &ReadCache) {
    if group.is_empty() {
        return;
    }
    let count = group.len();
    let alone = count == 1;
    conn.defer_control("BEGIN");
    let mut ran: Vec<(Ran, Outcome)> = Vec::with_capacity(count);
    let mut writes = group.drain(..).enumerate();
    while let Some((index, write)) = writes.next() {
        conn.start_write(index, !alone);
        let done = write.run(&mut PgTx::new(conn));
        let outcome = match (done.succeeded(), conn.failures()) {
            (true, 0) => Outcome::Kept,
            (false, _) => Outcome::Refused,
            (true, _) => Outcome::WentOn,
        };
        if conn.is_closed() {
            conn.end_group();
            ran.push((done, outcome));
            fail_all(ran, writes.map(|(_, write)| write), "the connection to the database was lost");
            return;
        }
        if !matches!(outcome, Outcome::Kept) {
            if alone {
                conn.end_group();
                if let Err(error) = conn.batch("ROLLBACK") {
                    tracing::warn!(error = %super::rows::described(&error), "a refused write could not be rolled back");
                }
                answer_undone(done, outcome);
                return;
            }
            conn.undo_write();
        }
        ran.push((done, outcome));
    }
    if alone {
        // A write alone sends its statements and COMMIT together: when one of them fails,
        // PostgreSQL has refused the rest of the transaction, and the COMMIT ends it as a rollback.
        let (done, _) = ran.pop().expect("the write ran");
        let sent = conn.flush("COMMIT");
        let changed_cached = conn.end_group();
        match sent {
            Ok(()) => {
                if changed_cached {
                    cache.forget_all();
                }
                done.committed()
            }
            Err(error) if conn.is_closed() => done.failed(StoreError::Commit(super::rows::described(&error))),
            Err(error) => {
                let _ = conn.batch("ROLLBACK");
                done.failed(error.into());
            }
        }
        return;
    }
    // The statements of the writes not sent yet go in one round trip; a write whose statement fails
    // there is rolled back to its savepoint alone (see `Conn::settle_group`).
    let settled = conn.settle_group(count);
    let undone = conn.take_undone();
    let changed_cached = conn.end_group();
    if let Err(error) = settled {
        let _ = conn.batch("ROLLBACK");
        fail_all(ran, std::iter::empty(), &super::rows::described(&error));
        return;
    }
    for failed in undone {
        ran[failed.write].1 = Outcome::Failed(failed.error);
    }
    match conn.batch("COMMIT") {
        Ok(()) => {
            // Before any caller hears of the commit, so none reads back what it changed as it was.
            if changed_cached {
                cache.forget_all();
            }
            for (done, outcome) in ran {
                match outcome {
                    Outcome::Kept => done.committed(),
                    other => answer_undone(done, other),
                }
            }
        }
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            fail_all(ran, std::iter::empty(), &super::rows::described(&error));
        }
    }
}
