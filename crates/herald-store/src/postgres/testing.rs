//! Scratch PostgreSQL databases for tests: each test gets a database of its own on the server named
//! by `HERALD_TEST_POSTGRES` (default: the local server, `postgres://root@127.0.0.1:5432/postgres`),
//! dropped when the test ends.
//!
//! Where no server answers, a test is skipped with a message saying how to run it; with
//! `HERALD_REQUIRE_POSTGRES=1` (as CI sets it) a missing server fails the test instead.

pub use super::scratch::ScratchDatabase;

/// The server tests create their databases on.
pub const SERVER_VAR: &str = "HERALD_TEST_POSTGRES";
/// Set to `1` to make a missing server a failure instead of a skip.
pub const REQUIRE_VAR: &str = "HERALD_REQUIRE_POSTGRES";
const LOCAL_SERVER: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A new empty database for a test, or `None` (after saying why on stderr) when no PostgreSQL server
/// answers and none is required. Panics when one is required and none answers.
pub fn scratch_database() -> Option<ScratchDatabase> {
    let server = std::env::var(SERVER_VAR).ok().filter(|url| !url.is_empty()).unwrap_or(LOCAL_SERVER.into());
    match ScratchDatabase::create_on(&server, "herald_test") {
        Ok(scratch) => Some(scratch),
        Err(error) if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            panic!("{REQUIRE_VAR}=1, but {error}")
        }
        Err(error) => {
            eprintln!(
                "skipped: {error}; start a PostgreSQL server there, or set {SERVER_VAR} to a server where databases may be created"
            );
            None
        }
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
/// database lives until the test process ends; the next test's [`scratch_database`] drops it.
pub fn database_in(dir: &std::path::Path) -> std::path::PathBuf {
    if std::env::var(DATABASE_VAR).as_deref() != Ok("postgresql") {
        return dir.join("h.db");
    }
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, scratch)) = databases.iter().find(|(of, _)| of == dir) {
        return scratch.url.clone().into();
    }
    match scratch_database() {
        Some(scratch) => {
            let url = scratch.url.clone();
            databases.push((dir.to_path_buf(), scratch));
            url.into()
        }
        None => dir.join("h.db"),
    }
}
