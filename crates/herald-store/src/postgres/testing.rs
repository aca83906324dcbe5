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
                drop_leftovers(&mut admin);
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

/// Drops the scratch databases of test processes that have ended (killed, or that kept theirs until
/// they exited): their names carry the process id.
fn drop_leftovers(admin: &mut postgres::Client) {
    // Whether a process still runs is read from /proc; where there is none, nothing is dropped.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(rows) = admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'herald\\_test\\_%'", &[])
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|pid| pid.parse::<u32>().ok());
        let ended = pid.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if ended {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
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

/// Set to `postgresql` to run a suite that keeps its state through [`database_in`] on scratch
/// PostgreSQL databases instead of SQLite files (`scripts/test` runs the engine's suite both ways).
pub const DATABASE_VAR: &str = "HERALD_TEST_DATABASE";

static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, ScratchDatabase)>> =
    std::sync::Mutex::new(Vec::new());

/// Where a test keeps its database: the SQLite file `h.db` in `dir`, or, with
/// `HERALD_TEST_DATABASE=postgresql` and a server that answers, a scratch PostgreSQL database, the
/// same one each time for the same `dir` (a test that restarts its engine finds its data). A scratch
/// database lives until the test process ends; the next test's [`ScratchDatabase::create`] drops it.
pub fn database_in(dir: &std::path::Path) -> std::path::PathBuf {
    if std::env::var(DATABASE_VAR).as_deref() != Ok("postgresql") {
        return dir.join("h.db");
    }
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, scratch)) = databases.iter().find(|(of, _)| of == dir) {
        return scratch.url.clone().into();
    }
    match ScratchDatabase::create() {
        Some(scratch) => {
            let url = scratch.url.clone();
            databases.push((dir.to_path_buf(), scratch));
            url.into()
        }
        None => dir.join("h.db"),
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
