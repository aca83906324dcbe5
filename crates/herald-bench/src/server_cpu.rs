//! The PostgreSQL server's CPU during a phase. On PostgreSQL part of herald's work per lead moves
//! into the server's processes (planning, executing, writing the log), so herald's own CPU per lead
//! alone would flatter it. The server's processes that count are those serving the bench's scratch
//! database: their title in /proc/PID/cmdline (`postgres: [cluster: ]user database host(port)
//! activity`, or `postgres: autovacuum worker database`) names it, and the name is unique to the run.
//! The server's shared processes (WAL writer, checkpointer, background writer) serve every database
//! and are left out.
//!
//! Backends come and go (herald opens reader connections beyond its idle pool and closes them after),
//! so the processes are sampled during the phase, not only at its ends: a backend that ended counts
//! up to its last sample. A remote server's processes are not in this machine's /proc: nothing is
//! found, and the report says so rather than showing zero.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the server's processes are read during a phase.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Whether a process's command line (as /proc/PID/cmdline holds it: NUL-separated, NUL-padded) is a
/// PostgreSQL process serving `database`.
pub fn serves(cmdline: &[u8], database: &str) -> bool {
    let text = String::from_utf8_lossy(cmdline).replace('\0', " ");
    let mut words = text.split_whitespace();
    words.next() == Some("postgres:") && words.any(|word| word == database)
}

/// The CPU time (utime + stime, in clock ticks) of every process under `proc_root` (normally `/proc`)
/// serving `database`, by process id. Processes that end while being read are skipped.
pub fn scan(proc_root: &Path, database: &str) -> HashMap<u32, u64> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else { return found };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else { continue };
        if !serves(&cmdline, database) {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(dir.join("stat")) {
            found.insert(pid, crate::process::parse_stat_cpu_ticks(&stat));
        }
    }
    found
}

/// The CPU the server's processes for one database used since the meter started, from samples.
pub struct ServerCpuMeter {
    proc_root: PathBuf,
    database: String,
    /// Each process's ticks when it was first seen: at the start for those already running (their
    /// earlier work is not the phase's), 0 for those that started during the phase.
    start: HashMap<u32, u64>,
    /// Each process's ticks at its latest sample.
    latest: HashMap<u32, u64>,
    /// Ticks of processes whose id was taken over by a newer process, up to their last sample.
    ended: u64,
}

impl ServerCpuMeter {
    /// Takes the first sample.
    pub fn start(proc_root: &Path, database: &str) -> ServerCpuMeter {
        let start = scan(proc_root, database);
        ServerCpuMeter {
            proc_root: proc_root.to_path_buf(),
            database: database.to_string(),
            latest: start.clone(),
            start,
            ended: 0,
        }
    }

    pub fn sample(&mut self) {
        for (pid, ticks) in scan(&self.proc_root, &self.database) {
            self.record(pid, ticks);
        }
    }

    fn record(&mut self, pid: u32, ticks: u64) {
        match self.latest.get(&pid) {
            // CPU time never goes down: fewer ticks is a new process with a reused id.
            Some(&seen) if ticks < seen => {
                self.ended += seen.saturating_sub(self.start.get(&pid).copied().unwrap_or(0));
                self.start.insert(pid, 0);
            }
            Some(_) => {}
            None => {
                self.start.insert(pid, 0);
            }
        }
        self.latest.insert(pid, ticks);
    }

    /// Ticks used since the start by every process seen, or `None` when none was ever seen (a
    /// remote server, or /proc not readable).
    pub fn used_ticks(&self) -> Option<u64> {
        if self.latest.is_empty() {
            return None;
        }
        let running: u64 = self
            .latest
            .iter()
            .map(|(pid, &ticks)| ticks.saturating_sub(self.start.get(pid).copied().unwrap_or(0)))
            .sum();
        Some(running + self.ended)
    }
}

/// The database name in a PostgreSQL URL (`postgres://user@host:port/NAME?options`).
pub fn database_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = rest.split('?').next()?;
    let name = path.split_once('/')?.1;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKEND: &[u8] = b"postgres: 15/main: root herald_bench_42_0_7 127.0.0.1(38260) idle\0\0\0\0";

    fn stat(pid: u32, utime: u64, stime: u64) -> String {
        format!("{pid} (postgres) S 6413 6413 6413 0 -1 4194624 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 5 1 2")
    }

    fn fake_process(root: &Path, pid: u32, cmdline: &[u8], utime: u64, stime: u64) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        std::fs::write(dir.join("stat"), stat(pid, utime, stime)).unwrap();
    }

    #[test]
    fn a_backend_serves_the_database_its_title_names_and_no_other() {
        assert!(serves(BACKEND, "herald_bench_42_0_7"));
        assert!(serves(b"postgres: root herald_bench_42_0_7 [local] INSERT", "herald_bench_42_0_7"));
        assert!(serves(b"postgres: autovacuum worker herald_bench_42_0_7", "herald_bench_42_0_7"));
        assert!(!serves(BACKEND, "herald_bench_42_0"), "a prefix of the name is another database");
        assert!(!serves(b"postgres: 15/main: walwriter ", "herald_bench_42_0_7"));
        assert!(
            !serves(b"psql\0-d\0herald_bench_42_0_7\0", "herald_bench_42_0_7"),
            "a client is not the server"
        );
        assert!(!serves(b"", "herald_bench_42_0_7"));
    }

    #[test]
    fn a_scan_sums_user_and_system_time_of_the_database_s_backends_only() {
        let root = tempfile::tempdir().unwrap();
        fake_process(root.path(), 100, BACKEND, 250, 37);
        fake_process(root.path(), 101, b"postgres: 15/main: root other_db 127.0.0.1(1) idle", 999, 1);
        fake_process(root.path(), 102, b"postgres: 15/main: checkpointer ", 5, 5);
        std::fs::create_dir_all(root.path().join("self")).unwrap();
        std::fs::write(root.path().join("uptime"), "1.0 2.0").unwrap();
        let found = scan(root.path(), "herald_bench_42_0_7");
        assert_eq!(found, HashMap::from([(100, 287)]));
        assert!(scan(&root.path().join("missing"), "herald_bench_42_0_7").is_empty());
    }

    #[test]
    fn the_meter_counts_new_ended_and_reused_backends_from_when_it_started() {
        let root = tempfile::tempdir().unwrap();
        // Running before the phase with 1,000 ticks already: only what follows counts.
        fake_process(root.path(), 100, BACKEND, 900, 100);
        let mut meter = ServerCpuMeter::start(root.path(), "herald_bench_42_0_7");
        assert_eq!(meter.used_ticks(), Some(0));
        // It works 50 ticks; a new backend starts and works 30, then ends.
        fake_process(root.path(), 100, BACKEND, 940, 110);
        fake_process(root.path(), 200, BACKEND, 20, 10);
        meter.sample();
        std::fs::remove_dir_all(root.path().join("200")).unwrap();
        meter.sample();
        assert_eq!(meter.used_ticks(), Some(80));
        // A newer backend takes the id 100 over: the old one's 50 stay counted, and the new one's 7.
        fake_process(root.path(), 100, BACKEND, 5, 2);
        meter.sample();
        assert_eq!(meter.used_ticks(), Some(50 + 30 + 7));
    }

    #[test]
    fn a_server_whose_processes_are_not_here_is_not_measured() {
        let root = tempfile::tempdir().unwrap();
        fake_process(root.path(), 101, b"postgres: 15/main: root other_db 127.0.0.1(1) idle", 10, 1);
        let mut meter = ServerCpuMeter::start(root.path(), "herald_bench_42_0_7");
        meter.sample();
        assert_eq!(meter.used_ticks(), None);
    }

    #[test]
    fn the_database_name_comes_from_the_url_path() {
        assert_eq!(
            database_of("postgres://root@127.0.0.1:5432/herald_bench_1_0_2"),
            Some("herald_bench_1_0_2")
        );
        assert_eq!(database_of("postgresql://u:p@h/db?sslmode=require"), Some("db"));
        assert_eq!(database_of("postgres://h:5432"), None);
        assert_eq!(database_of("herald.db"), None);
    }
}
