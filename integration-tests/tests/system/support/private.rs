//! Private PostgreSQL and Redis servers for the fault tests: each on a free port in its own
//! temporary directory, stopped and started again at will. Never the machine's shared ones,
//! which other tests are using.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::free_addr;

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_port(port: u16, up: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() != up {
        assert!(
            Instant::now() < deadline,
            "{what} did not {} in 30 s",
            if up { "start" } else { "stop" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster of its own (`initdb` + `pg_ctl`), trust auth, user `postgres`.
pub struct PrivatePostgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server as this user (root may not run it).
    user: Option<&'static str>,
}

impl PrivatePostgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// Creates and starts a cluster. Panics if PostgreSQL's server programs are missing.
    pub fn start() -> Self {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.join("initdb").exists())
            .expect("the fault tests need PostgreSQL's initdb and pg_ctl (pg_config --bindir)");
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL refuses to run as root; as root, run it as the `postgres` user.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let user = root.then_some("postgres");
        if root {
            run(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path()),
            );
        }
        let pg = Self {
            data: dir.path().join("data"),
            _dir: dir,
            bin,
            port: free_addr().port(),
            user,
        };
        run(
            "initdb",
            pg.command("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&pg.data)
                .stdout(Stdio::null()),
        );
        pg.start_again();
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.data.display()
        );
        run(
            "pg_ctl start",
            self.command("pg_ctl")
                .args(["-w", "-t", "60", "-o", &opts, "-l"])
                .arg(self.data.join("log"))
                .arg("-D")
                .arg(&self.data)
                .arg("start")
                .stdout(Stdio::null()),
        );
        wait_port(self.port, true, "postgres");
    }

    /// Stops the server (`fast`: open sessions are cut off, as in a restart or failover).
    pub fn stop(&self) {
        run(
            "pg_ctl stop",
            self.command("pg_ctl")
                .args(["-w", "-m", "fast", "-D"])
                .arg(&self.data)
                .arg("stop")
                .stdout(Stdio::null()),
        );
        wait_port(self.port, false, "postgres");
    }

    /// The server log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A Redis server of its own, without persistence (a restart loses its data, like a failover
/// to an empty replica).
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free port. Panics if it is missing.
    pub fn start() -> Self {
        let mut r = Self {
            port: free_addr().port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        r.start_again();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the fault tests need redis-server");
        self.child = Some(child);
        wait_port(self.port, true, "redis");
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.port, false, "redis");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
