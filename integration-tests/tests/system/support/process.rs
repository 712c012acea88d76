//! Child processes that never outlive a test.
//!
//! [`Proc`] owns a child whose stdout and stderr go to files in its own temporary directory.
//! Dropping it kills the child (SIGKILL) and reaps it, so a failing test leaks no process; if
//! the drop happens while the test is panicking, the child's output is printed, so a failure
//! shows what the server said.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed on drop. See the module docs.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    stdout: PathBuf,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
}

/// The outcome of a command run to completion.
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A command for one of the binaries under test, with a clean environment: every `STEWARD_*`
/// and `OTEL_*` variable of the test process is removed (a developer's `STEWARD_DATABASE_URL`
/// must not leak into an embedded test), so each test sets exactly what it means.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("STEWARD_") || k.starts_with("OTEL_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("STEWARD_LOG", "info").stdin(Stdio::null());
    cmd
}

impl Proc {
    /// Starts `cmd`; `name` labels its output in failure messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let logs = tempfile::Builder::new()
            .prefix("steward-proc-")
            .tempdir()
            .expect("tempdir for process output");
        let stdout = logs.path().join("stdout.log");
        let stderr = logs.path().join("stderr.log");
        cmd.stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child,
            status: None,
            stdout,
            stderr,
            _logs: logs,
        }
    }

    /// Runs `cmd` to completion, failing the test if it takes longer than `timeout`.
    pub async fn run(name: &str, cmd: Command, timeout: Duration) -> Output {
        let mut p = Proc::spawn(name, cmd);
        let Some(status) = p.wait_exit(timeout).await else {
            panic!("{name} did not finish within {timeout:?}\n{}", p.logs());
        };
        Output {
            status,
            stdout: p.stdout(),
            stderr: p.stderr(),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM (what `kill`, systemd and Kubernetes send to stop a service).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Kills the process at once (SIGKILL, like a crash or OOM kill) and reaps it.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both streams with a header, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "===== {} (pid {}) stdout =====\n{}\n===== {} stderr =====\n{}\n===== end of {} =====",
            self.name,
            self.pid(),
            self.stdout(),
            self.name,
            self.stderr(),
            self.name
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}
