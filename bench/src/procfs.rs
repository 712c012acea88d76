//! What `/proc` says about the machine and about processes: CPU model, memory, a process's
//! resident set and CPU time. Linux only; every reader fails with context, never panics.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The machine a benchmark ran on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub nproc: usize,
    /// `MemTotal` in bytes.
    pub mem_total_bytes: u64,
    /// The first `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
}

impl Machine {
    /// Reads the machine description; unknown parts are reported as such, not as errors.
    pub fn detect() -> Machine {
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let mem_total_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| kb_field(&s, "MemTotal:"))
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            nproc,
            mem_total_bytes,
            cpu_model,
        }
    }

    /// One line: `nproc=2, memory=23.5 GiB, cpu=AMD EPYC`.
    pub fn line(&self) -> String {
        format!(
            "nproc={}, memory={:.1} GiB, cpu={}",
            self.nproc,
            self.mem_total_bytes as f64 / (1u64 << 30) as f64,
            self.cpu_model
        )
    }
}

/// The value in kB of a `Key:   123 kB` line of a `/proc` status-like file.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The resident set size of process `pid`, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    match kb_field(&text, "VmRSS:") {
        Some(kb) => Ok(kb * 1024),
        None => bail!("{path} has no VmRSS line (has the process exited?)"),
    }
}

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// User + system CPU time of the process whose stat file is `path`, in clock ticks.
fn cpu_ticks_at(path: &Path) -> Result<(String, u64)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so split at the last ')'.
    let (head, rest) = text
        .rsplit_once(')')
        .with_context(|| format!("{} is not a stat line", path.display()))?;
    let comm = head
        .split_once('(')
        .map(|(_, c)| c.to_string())
        .unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After comm: state is field 3 of stat(5), utime 14 and stime 15 => indices 11 and 12 here.
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{} has too few fields", path.display()))?
            .parse::<u64>()
            .with_context(|| format!("{} field {} is not a number", path.display(), i + 3))
    };
    Ok((comm, num(11)? + num(12)?))
}

/// CPU time (user + system) used so far by process `pid`.
pub fn cpu_time(pid: u32, ticks_per_s: u64) -> Result<Duration> {
    let (_, t) = cpu_ticks_at(Path::new(&format!("/proc/{pid}/stat")))?;
    Ok(Duration::from_secs_f64(t as f64 / ticks_per_s as f64))
}

/// CPU time used so far by this process.
pub fn own_cpu_time(ticks_per_s: u64) -> Result<Duration> {
    let (_, t) = cpu_ticks_at(Path::new("/proc/self/stat"))?;
    Ok(Duration::from_secs_f64(t as f64 / ticks_per_s as f64))
}

/// CPU time used so far by every process named `comm` (e.g. all `postgres` backends).
/// Processes that exit while being read are skipped. Backends that exited earlier are not
/// counted, so a difference of two readings can undercount; it is a lower bound.
pub fn cpu_time_of_all(comm: &str, ticks_per_s: u64) -> Result<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok((c, t)) = cpu_ticks_at(&entry.path().join("stat"))
            && c == comm
        {
            total += t;
        }
    }
    Ok(Duration::from_secs_f64(total as f64 / ticks_per_s as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kb_fields() {
        let s = "Name:\tsteward\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(kb_field(s, "VmRSS:"), Some(12345));
        assert_eq!(kb_field(s, "VmSwap:"), None);
    }

    #[test]
    fn reads_own_process() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        let ticks = clock_ticks();
        assert!(own_cpu_time(ticks).is_ok());
        assert!(cpu_time(std::process::id(), ticks).is_ok());
        assert!(Machine::detect().line().contains("nproc="));
    }
}

/// CPU time spent by the server, by this client and (optionally) by the database processes
/// while a section ran, next to its wall time: where the time went.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Wall time of the section.
    pub wall: Duration,
    /// CPU time of the server process (when the bench started it).
    pub server_cpu: Option<Duration>,
    /// CPU time of the bench process itself (the client).
    pub client_cpu: Option<Duration>,
    /// CPU time of the `postgres` processes (Postgres backend only; a lower bound).
    pub db_cpu: Option<Duration>,
    /// The server's RSS at the end of the section, in bytes.
    pub server_rss_end: Option<u64>,
}

/// A reading of the counters [`Usage`] is the difference of.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: std::time::Instant,
    server: Option<Duration>,
    client: Option<Duration>,
    db: Option<Duration>,
}

/// Takes [`Snapshot`]s of the server, client and database CPU counters.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    server_pid: Option<u32>,
    db_comm: Option<&'static str>,
    ticks: u64,
}

impl CpuProbe {
    /// A probe of server `server_pid` (if known) and of processes named `db_comm` (if any).
    pub fn new(server_pid: Option<u32>, db_comm: Option<&'static str>) -> CpuProbe {
        CpuProbe {
            server_pid,
            db_comm,
            ticks: clock_ticks(),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: std::time::Instant::now(),
            server: self.server_pid.and_then(|p| cpu_time(p, self.ticks).ok()),
            client: own_cpu_time(self.ticks).ok(),
            db: self
                .db_comm
                .and_then(|c| cpu_time_of_all(c, self.ticks).ok()),
        }
    }

    /// What was used since `start`.
    pub fn since(&self, start: &Snapshot) -> Usage {
        let end = self.snapshot();
        let diff = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Usage {
            wall: end.at - start.at,
            server_cpu: diff(start.server, end.server),
            client_cpu: diff(start.client, end.client),
            db_cpu: diff(start.db, end.db),
            server_rss_end: self.server_pid.and_then(|p| rss_bytes(p).ok()),
        }
    }
}
