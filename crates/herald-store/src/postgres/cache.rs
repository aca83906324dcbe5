//! What every lead reads and almost nothing changes: the user a token belongs to, the user a run acts
//! as, and a named credential's sealed secrets, kept in the node's memory.
//!
//! Each was a round trip per lead (three of a Kixie lead's ten), for rows that change when an admin
//! sets a credential or adds a user. A cached row is only as good as the news of its change, so:
//! - every write that changes users, tokens or secrets sends a `NOTIFY` on [`CACHE_CHANNEL`] in its
//!   transaction (`PgTx::forget_cached`), which every node (this one included) hears when it
//!   commits, and forgets everything it kept;
//! - the writer forgets too, on its own thread, as soon as such a write commits, so that the
//!   writer's caller never reads back what it just changed as it was before;
//! - nothing is kept while the listening connection is down (a change announced then would be
//!   missed), and everything is forgotten when it is lost and when it listens again;
//! - a read that started before a forget does not keep what it read (the generation it started
//!   under has passed).
//!
//! Misses are not kept (a client trying tokens at random would fill memory); the entries are few (the
//! tokens and credentials in use), and past [`ENTRY_LIMIT`] the cache starts again empty.
//!
//! Secrets stay sealed here: they are opened by the vault for each callout, as before.

use crate::{SealedSecret, UserRow};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The channel on which a change to users, tokens or secrets is announced (no payload).
pub(super) const CACHE_CHANNEL: &str = "herald_cache";

/// Entries kept before the cache starts again empty.
const ENTRY_LIMIT: usize = 4096;

/// A credential's place: external credential, principal, user id.
type Place = (String, String, String);

#[derive(Default)]
pub(super) struct ReadCache {
    /// Bumped by every forget: a read keeps its answer only if none happened since it began.
    generation: AtomicU64,
    /// Whether the node hears changes now (its listening connection is up).
    hearing: AtomicBool,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    users_by_token: HashMap<String, UserRow>,
    users_by_id: HashMap<String, UserRow>,
    secrets: HashMap<Place, Vec<SealedSecret>>,
}

impl Entries {
    fn len(&self) -> usize {
        self.users_by_token.len() + self.users_by_id.len() + self.secrets.len()
    }
}

/// What a read began under: it may keep its answer only while this still holds.
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

impl ReadCache {
    /// Forgets everything kept.
    pub(super) fn forget_all(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *entries = Entries::default();
    }

    /// The listening connection is up (`true`) or lost (`false`); either way what was kept goes.
    pub(super) fn hearing(&self, hearing: bool) {
        self.forget_all();
        self.hearing.store(hearing, Ordering::SeqCst);
    }

    /// A ticket for a read that may keep its answer, if the node hears changes now.
    pub(super) fn ticket(&self) -> Option<Ticket> {
        let ticket = Ticket(self.generation.load(Ordering::SeqCst));
        self.hearing.load(Ordering::SeqCst).then_some(ticket)
    }

    pub(super) fn user_by_token(&self, hash: &str) -> Option<UserRow> {
        self.ticket()?;
        self.lock().users_by_token.get(hash).cloned()
    }

    pub(super) fn user(&self, id: &str) -> Option<UserRow> {
        self.ticket()?;
        self.lock().users_by_id.get(id).cloned()
    }

    pub(super) fn secrets(&self, place: &Place) -> Option<Vec<SealedSecret>> {
        self.ticket()?;
        self.lock().secrets.get(place).cloned()
    }

    pub(super) fn keep_user_by_token(&self, ticket: Ticket, hash: String, user: &UserRow) {
        self.keep(ticket, |entries| {
            entries.users_by_token.insert(hash, user.clone());
        });
    }

    pub(super) fn keep_user(&self, ticket: Ticket, user: &UserRow) {
        self.keep(ticket, |entries| {
            entries.users_by_id.insert(user.id.clone(), user.clone());
        });
    }

    pub(super) fn keep_secrets(&self, ticket: Ticket, place: Place, secrets: &[SealedSecret]) {
        self.keep(ticket, |entries| {
            entries.secrets.insert(place, secrets.to_vec());
        });
    }

    fn keep(&self, ticket: Ticket, put: impl FnOnce(&mut Entries)) {
        let mut entries = self.lock();
        // Under the lock: a forget either happened before (the generation moved on) or waits.
        if self.generation.load(Ordering::SeqCst) != ticket.0 || !self.hearing.load(Ordering::SeqCst) {
            return;
        }
        if entries.len() >= ENTRY_LIMIT {
            *entries = Entries::default();
        }
        put(&mut entries);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserRow {
        UserRow { id: id.into(), name: id.into(), permission_sets: vec!["Set".into()] }
    }

    #[test]
    fn nothing_is_kept_while_the_node_does_not_hear_changes() {
        let cache = ReadCache::default();
        assert!(cache.ticket().is_none());
        cache.hearing(true);
        let ticket = cache.ticket().unwrap();
        cache.hearing(false);
        cache.keep_user(ticket, &user("u1"));
        cache.hearing(true);
        assert_eq!(cache.user("u1"), None, "kept under a ticket from before the connection was lost");
    }

    #[test]
    fn a_read_that_began_before_a_forget_does_not_keep_its_answer() {
        let cache = ReadCache::default();
        cache.hearing(true);
        let before = cache.ticket().unwrap();
        cache.forget_all();
        cache.keep_user_by_token(before, "h".into(), &user("u1"));
        assert_eq!(cache.user_by_token("h"), None);
        let after = cache.ticket().unwrap();
        cache.keep_user_by_token(after, "h".into(), &user("u1"));
        assert_eq!(cache.user_by_token("h"), Some(user("u1")));
        cache.forget_all();
        assert_eq!(cache.user_by_token("h"), None);
    }

    #[test]
    fn past_its_limit_the_cache_starts_again_empty() {
        let cache = ReadCache::default();
        cache.hearing(true);
        for n in 0..=ENTRY_LIMIT {
            cache.keep_user(cache.ticket().unwrap(), &user(&format!("u{n}")));
        }
        assert_eq!(cache.user("u0"), None);
        assert_eq!(cache.user(&format!("u{ENTRY_LIMIT}")), Some(user(&format!("u{ENTRY_LIMIT}"))));
    }
}
