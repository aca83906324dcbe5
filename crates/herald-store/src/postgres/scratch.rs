//! Scratch databases: a database herald creates on a PostgreSQL server for a test or a benchmark, and
//! drops when done. Its name carries the process id, so that the databases of a process that ended
//! without dropping its own (killed, or keeping one until it exits) are dropped by the next one.

use super::rows::described;
use std::sync::atomic::{AtomicU64, Ordering};

/// A database that exists until this value is dropped.
pub struct ScratchDatabase {
    /// Where the database is, for `Store::open` or `herald serve --db`.
    pub url: String,
    name: String,
    server: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl ScratchDatabase {
    /// Creates an empty database named `<prefix>_<process id>_<n>_<nanoseconds>` on `server` (a
    /// PostgreSQL URL; its own database is only used to connect), after dropping the databases of
    /// that prefix left by processes that have ended. The error never holds the URL's password.
    pub fn create_on(server: &str, prefix: &str) -> Result<ScratchDatabase, String> {
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let created = {
            let (server, name, prefix) = (server.to_string(), name.clone(), prefix.to_string());
            // The synchronous client runs its own runtime: off any async thread.
            std::thread::spawn(move || -> Result<(), postgres::Error> {
                let mut admin = server.parse::<postgres::Config>()?.connect(postgres::NoTls)?;
                drop_leftovers(&mut admin, &prefix);
                admin.batch_execute(&format!("CREATE DATABASE {name}"))
            })
            .join()
            .map_err(|_| "creating a scratch database panicked".to_string())?
        };
        match created {
            Ok(()) => {
                Ok(ScratchDatabase { url: database_url(server, &name), name, server: server.to_string() })
            }
            Err(error) => {
                Err(format!("cannot create a database on {}: {}", super::masked(server), described(&error)))
            }
        }
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

/// Drops the scratch databases of processes that have ended (killed, or that kept theirs until
/// they exited): their names carry the process id.
fn drop_leftovers(admin: &mut postgres::Client, prefix: &str) {
    // Whether a process still runs is read from /proc; where there is none, nothing is dropped.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    // `_` matches any character in LIKE: the prefix's own are escaped.
    let pattern = format!("{}\\_%", prefix.replace('_', "\\_"));
    let Ok(rows) = admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern]) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name[prefix.len()..].split('_').nth(1).and_then(|pid| pid.parse::<u32>().ok());
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
