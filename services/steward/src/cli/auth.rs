//! `steward keys` (offline, against the database) and `steward grants` / `steward whoami`
//! (online, through `steward.auth.v1.AuthService`).

use clap::Subcommand;

use super::ServerArgs;

/// API keys, managed directly in the database of the configuration (`--config`,
/// `STEWARD_DATABASE_URL`, `--data-dir`): works before any key exists, to bootstrap the first
/// admin.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a key and print it (once: only its hash is stored).
    Create {
        /// Who the key authenticates (the actor of their audit records).
        #[arg(long, default_value = "admin")]
        principal: String,
        /// Also grant this role globally: viewer, editor, reviewer or admin.
        #[arg(long)]
        role: Option<String>,
        /// A key for a service calling others (STEWARD_SERVICE_TOKEN) rather than a person.
        #[arg(long)]
        service: bool,
        /// Expire after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List keys (never their secrets).
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a key (`apiKeys/{id}` or the id); servers refuse it within 5 seconds.
    Revoke {
        /// The key.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Role grants, through the AuthService (needs a global admin key).
#[derive(Subcommand, Debug)]
pub enum GrantsCmd {
    /// Grant a role on a resource (`*` for global) to a principal.
    Add {
        /// Who.
        principal: String,
        /// viewer, editor, reviewer or admin.
        role: String,
        /// `*`, `experiments/{e}`, `registeredModels/{m}` or `deployments/{d}`.
        #[arg(default_value = "*")]
        resource: String,
    },
    /// List grants.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Remove a principal's grant on a resource.
    Remove {
        /// Who.
        principal: String,
        /// `*` or the resource.
        #[arg(default_value = "*")]
        resource: String,
    },
}
