//! Scratch PostgreSQL databases for tests: each test gets a database of its own on the server named
//! by `HERALD_TEST_POSTGRES` (default: the local server, `postgres://root@127.0.0.1:5432/postgres`),
//! dropped when the test ends.
//!
//! Where no server answers, a test is skipped with a message saying how to run it; with
//! `HERALD_REQUIRE_POSTGRES=1` (as CI sets it) a missing server fails the test instead.

use std::sync::atomic::{AtomicU64, Ordering};

/// The server tests create their databases on.
pub const SERVER_VAR: &str = "HERALD_TEST_POSTGRES";
/// Set to `1` to make a missing server a failure instead of a skip.
pub const REQUIRE_VAR: &str = "HERALD_REQUIRE_POSTGRES";
const LOCAL_SERVER: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A database that exists until this value is dropped.
pub struct ScratchDatabase {
    /// Where the database is, for `Store::open` or `herald serve --db`.
    pub url: String,
    name: String,
    server: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl ScratchDatabase {
    /// A new empty database, or `None` (after saying why on stderr) when no PostgreSQL server answers
    /// and none is required. Panics when one is required and none answers.
    pub fn create() -> Option<ScratchDatabase> {
        let server =
            std::env::var(SERVER_VAR).ok().filter(|url| !url.is_empty()).unwrap_or(LOCAL_SERVER.into());
        let name = format!(
            "herald_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let created = {
            let (server, name) = (server.clone(), name.clone());
            // The synchronous client runs its own runtime: off any async thread.
            std::thread::spawn(move || -> Result<(), postgres::Error> {
                let mut admin = server.parse::<postgres::Config>()?.connect(postgres::NoTls)?;
                admin.batch_execute(&format!("CREATE DATABASE {name}"))
            })
            .join()
            .unwrap_or_else(|_| panic!("creating a scratch database panicked"))
        };
        match created {
            Ok(()) => {
                let url = database_url(&server, &name);
                Some(ScratchDatabase { url, name, server })
            }
            Err(error) if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => panic!(
                "{REQUIRE_VAR}=1 but no scratch database could be made on {}: {error}",
                crate::postgres::masked(&server)
            ),
            Err(error) => {
                eprintln!(
                    "skipped: no PostgreSQL server answers at {} ({error}); start one, or set {SERVER_VAR} to a server where databases may be created",
                    crate::postgres::masked(&server)
                );
                None
            }
        }
    }
}

/// The server's URL with its database replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || -> Result<(), postgres::Error> {
            let mut admin = server.parse::<postgres::Config>()?.connect(postgres::NoTls)?;
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scratch_database_url_keeps_the_server_and_its_options() {
        assert_eq!(
            super::database_url("postgres://root@127.0.0.1:5432/postgres", "t1"),
            "postgres://root@127.0.0.1:5432/t1"
        );
        assert_eq!(
            super::database_url("postgresql://u:p@h/db?sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(super::database_url("postgres://h:5432", "t3"), "postgres://h:5432/t3");
    }
}
