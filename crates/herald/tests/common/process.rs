//! herald as a child process: a long-running one (`herald sandbox`, `herald serve`) that is killed when the
//! test ends, and one-shot CLI commands. A process that does not come up fails the test with everything it
//! printed, so a broken start-up reads as its own error message instead of a timeout further on.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// How long a process may take to print its "listening on http://..." line.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A child process that is killed when the test ends, with everything it printed kept.
pub struct Process {
    command: String,
    child: Child,
    pub url: String,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    /// Starts `herald ARGS` and waits for its "listening on http://..." line. `HERALD_MASTER_KEY` is
    /// never inherited: the key file beside the database is the one every command of a test shares.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Process {
        let command = format!("herald {}", args.join(" "));
        let mut builder = Command::new(HERALD);
        builder.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        builder.env_remove("HERALD_MASTER_KEY");
        for (key, value) in env {
            builder.env(key, value);
        }
        let mut child = builder.spawn().unwrap_or_else(|e| panic!("`{command}` did not start: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (address, listening) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers =
            vec![keep_lines(stdout, output.clone(), Some(address)), keep_lines(stderr, output.clone(), None)];
        let mut process = Process { command, child, url: String::new(), output, readers };
        match listening.recv_timeout(START_LIMIT) {
            Ok(url) => process.url = url,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                process.join_readers();
                panic!(
                    "`{}` ended ({status}) before it was listening; its output:\n{}",
                    process.command,
                    process.output()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                process.kill();
                panic!(
                    "`{}` printed no \"listening on http://\" line within {START_LIMIT:?}; its output:\n{}",
                    process.command,
                    process.output()
                );
            }
        }
        process
    }

    /// Everything the process printed so far, stdout and stderr as their lines arrived. After `kill`,
    /// everything it ever printed.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The process id, for a test that signals it (SIGHUP).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then wait until the process is gone and its output is read to the end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    /// The exit status, if the process has ended on its own.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn command(&self) -> &str {
        &self.command
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Appends each line of `stream` to `output` until it closes; the first line that names an
/// `http://` address is also sent to `address`.
fn keep_lines(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    mut address: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&bytes);
            output.lock().unwrap().push_str(&line);
            if line.contains("listening on http://") {
                let url = line.split_whitespace().find(|word| word.starts_with("http://"));
                if let (Some(url), Some(sender)) = (url, address.take()) {
                    let _ = sender.send(url.to_string());
                }
            }
        }
    })
}

/// Runs `herald ARGS` to completion with `stdin`, returning (exit code, stdout, stderr).
pub fn herald(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(HERALD)
        .args(args)
        .env_remove("HERALD_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("`herald {}` did not start: {e}", args.join(" ")));
    // A command that exits without reading its input closes the pipe; its exit code says why.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
