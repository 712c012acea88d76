//! Command-line definitions of `steward audit`: export, anchor and verify the audit trail.

use std::path::PathBuf;

use clap::Subcommand;

/// `steward audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Export audit records as JSON Lines, one record per line exactly as hashed (to stdout, or
    /// to a file with a progress indicator).
    Export {
        /// Only this service's chain (e.g. tracking, registry).
        #[arg(long)]
        service: Option<String>,
        /// Only records at or after this RFC 3339 time (e.g. 2026-01-31T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Print the head (last seq and hash) of every chain as JSON: keep it somewhere the
    /// database's administrators cannot rewrite, and pass it back with `verify --anchors`.
    Heads,
    /// Verify an export offline (no server needed), or with --server the server's chains.
    /// Exits non-zero and names the first broken record if verification fails.
    Verify {
        /// An export written by `steward audit export`.
        #[arg(required_unless_present = "server", conflicts_with = "server")]
        file: Option<PathBuf>,
        /// Heads saved earlier by `steward audit heads`: each chain must still contain them.
        #[arg(long, value_name = "HEADS.json")]
        anchors: Option<PathBuf>,
        /// Ask the server to verify its chains (VerifyAuditChain) instead of reading a file.
        #[arg(long)]
        server: bool,
        /// With --server: only this chain.
        #[arg(long, requires = "server")]
        service: Option<String>,
    },
}
