//! The harness: binaries, processes, servers and client helpers.

pub mod binaries;
pub mod cli;
pub mod metrics;
pub mod private;
pub mod process;
pub mod server;
pub mod suite;
pub mod tracking;

/// A non-empty environment variable of the test process.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
