//! Child processes (herald serve, herald sandbox, Node-RED) and what /proc tells about them.

use crate::BenchError;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// How much of a child's output is kept for error messages.
const OUTPUT_TAIL: usize = 16 * 1024;

/// A child process, killed when dropped, with the tail of what it printed kept.
pub struct Process {
    pub what: String,
    child: Child,
    pub pid: u32,
    /// The `http://...` address from its ready line.
    pub url: String,
    /// From spawn to the ready line.
    pub to_ready: Duration,
    pub spawned_at: Instant,
    output: Arc<Mutex<String>>,
}

impl Process {
    /// Spawns `command` and waits (up to `limit`) for a line on stdout containing `ready_marker`; the
    /// first `http://` word of that line is the process's address.
    pub async fn start(
        what: &str,
        mut command: Command,
        ready_marker: &str,
        limit: Duration,
    ) -> Result<Process, BenchError> {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child =
            command.spawn().map_err(|source| BenchError::Spawn { what: what.to_string(), source })?;
        let pid = child.id().unwrap_or(0);
        let output = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(drain(stdout, output.clone(), Some((ready_marker.to_string(), ready_tx))));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(drain(stderr, output.clone(), None));
        }
        let line = tokio::select! {
            line = ready_rx => line.ok(),
            () = tokio::time::sleep(limit) => None,
        };
        let to_ready = spawned_at.elapsed();
        let Some(line) = line else {
            // Give the output readers a moment to collect what the process said before it died.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let status = child.try_wait().ok().flatten();
            let _ = child.start_kill();
            let text = tail(&output);
            return Err(match status {
                Some(status) => {
                    BenchError::Exited { what: what.to_string(), status: status.to_string(), output: text }
                }
                None => BenchError::NotReady { what: what.to_string(), limit, output: text },
            });
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string())
            .unwrap_or_default();
        Ok(Process { what: what.to_string(), child, pid, url, to_ready, spawned_at, output })
    }

    /// The tail of what the process printed.
    pub fn output(&self) -> String {
        tail(&self.output)
    }

    /// An error unless the process is still running.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(BenchError::Exited {
                what: self.what.clone(),
                status: status.to_string(),
                output: self.output(),
            }),
            _ => Ok(()),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn tail(output: &Arc<Mutex<String>>) -> String {
    output.lock().map(|o| o.clone()).unwrap_or_default()
}

async fn drain<R: AsyncRead + Unpin>(
    reader: R,
    output: Arc<Mutex<String>>,
    mut ready: Option<(String, oneshot::Sender<String>)>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut output) = output.lock() {
            output.push_str(&line);
            output.push('\n');
            if output.len() > OUTPUT_TAIL {
                let mut cut = output.len() - OUTPUT_TAIL;
                while !output.is_char_boundary(cut) {
                    cut += 1;
                }
                output.drain(..cut);
            }
        }
        if ready.as_ref().is_some_and(|(marker, _)| line.contains(marker.as_str()))
            && let Some((_, sender)) = ready.take()
        {
            let _ = sender.send(line);
        }
    }
}

/// Runs `program args` to completion with `stdin` as its standard input.
pub async fn run_with_stdin(what: &str, mut command: Command, stdin: &[u8]) -> Result<(), BenchError> {
    use tokio::io::AsyncWriteExt;
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| BenchError::Spawn { what: what.to_string(), source })?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .await
            .map_err(|source| BenchError::Spawn { what: what.to_string(), source })?;
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| BenchError::NotReady {
            what: what.to_string(),
            limit: Duration::from_secs(60),
            output: String::new(),
        })?
        .map_err(|source| BenchError::Spawn { what: what.to_string(), source })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BenchError::Exited {
            what: what.to_string(),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// Resident memory and CPU time of a process, from /proc (Linux); zeros elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the peak resident set since the process started.
    pub peak_rss_kib: u64,
    /// utime + stime, in microseconds.
    pub cpu_us: u64,
}

impl Usage {
    /// Reads /proc/PID/status and /proc/PID/stat. `pid` 0 means this process.
    pub fn of(pid: u32) -> Usage {
        let dir = if pid == 0 { "/proc/self".to_string() } else { format!("/proc/{pid}") };
        let status = std::fs::read_to_string(Path::new(&dir).join("status")).unwrap_or_default();
        let stat = std::fs::read_to_string(Path::new(&dir).join("stat")).unwrap_or_default();
        let (rss_kib, peak_rss_kib) = parse_status(&status);
        Usage { rss_kib, peak_rss_kib, cpu_us: parse_stat_cpu_ticks(&stat) * 1_000_000 / clock_ticks() }
    }

    /// The usage of several processes serving as one target (herald's nodes): CPU summed (the work
    /// the target did), memory the largest one's (what one node needs).
    pub fn of_all(pids: &[u32]) -> Usage {
        Usage::combine(pids.iter().map(|&pid| Usage::of(pid)))
    }

    pub fn combine(usages: impl IntoIterator<Item = Usage>) -> Usage {
        usages.into_iter().fold(Usage::default(), |all, one| Usage {
            rss_kib: all.rss_kib.max(one.rss_kib),
            peak_rss_kib: all.peak_rss_kib.max(one.peak_rss_kib),
            cpu_us: all.cpu_us + one.cpu_us,
        })
    }
}

/// (VmRSS, VmHWM) in KiB from the text of /proc/PID/status.
pub fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime (fields 14 and 15) in clock ticks from the text of /proc/PID/stat. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted after the last ')'.
pub fn parse_stat_cpu_ticks(stat: &str) -> u64 {
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    // After ')' come fields 3 (state), 4, ...; utime is field 14, i.e. index 11 here.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    number(11) + number(12)
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked.
pub fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// A free loopback port (for programs that cannot listen on port 0 and say which port they got).
pub fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(BenchError::Io)?;
    Ok(listener.local_addr().map_err(BenchError::Io)?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\therald\nVmPeak:\t  900000 kB\nVmHWM:\t   24680 kB\nVmRSS:\t   12340 kB\n";
        assert_eq!(parse_status(status), (12_340, 24_680));
        assert_eq!(parse_status(""), (0, 0));
    }

    #[test]
    fn stat_cpu_ticks_skip_a_command_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 37 0 0 20 0 5 0 100 1 2";
        assert_eq!(parse_stat_cpu_ticks(stat), 287);
        assert_eq!(parse_stat_cpu_ticks("garbage"), 0);
    }

    #[test]
    fn nodes_add_up_their_cpu_and_report_the_largest_memory() {
        let node = |rss_kib, peak_rss_kib, cpu_us| Usage { rss_kib, peak_rss_kib, cpu_us };
        let all = Usage::combine([node(100, 300, 1_000), node(250, 260, 2_000), node(50, 90, 500)]);
        assert_eq!(all, node(250, 300, 3_500));
        assert_eq!(Usage::combine([]), Usage::default());
    }

    #[test]
    fn this_process_has_a_resident_set() {
        if Path::new("/proc/self/status").exists() {
            let usage = Usage::of(0);
            assert!(usage.rss_kib > 0 && usage.peak_rss_kib >= usage.rss_kib, "{usage:?}");
        }
    }
}
