//! Locating the binaries under test.
//!
//! `env!("CARGO_BIN_EXE_<name>")` exists only for binaries of the package being tested, and
//! `steward` (package `steward`) and `steward-tracking` (package `steward-tracking`) belong to
//! other packages. So the tests find them beside their own executable: a test binary runs as
//! `target/<profile>/deps/system-<hash>`, and cargo puts binaries in `target/<profile>/`.
//!
//! `cargo test -p steward-integration-tests` does not build other packages' binaries, and binaries
//! left over from an earlier build may be older than the sources. So, once per test process,
//! before the first binary is used, the tests run
//! `cargo build -p steward -p steward-tracking -p steward-registry -p steward-deployment
//! -p steward-monitoring` in the workspace with the tests' own profile,
//! using `$CARGO` (set by `cargo test`) or else `cargo` from `PATH`. When the binaries are up to
//! date this is a no-op that takes well under a second; otherwise it builds them (a few minutes
//! when cold), so the tests never run a missing or stale binary. Cargo releases its
//! build-directory lock before it runs test binaries, so this nested build does not wait on its
//! parent. The variables cargo sets for the package under test are not passed on (see
//! [`is_package_var`]): they would make the two builds invalidate each other's crates.
//!
//! Where no cargo can be started (a test binary copied to another machine), binaries already in
//! the directory are used as they are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The all-in-one binary (`steward up`, `steward migrate`, the CLI).
pub const STEWARD: &str = "steward";
/// The tracking service alone (distributed mode).
pub const STEWARD_TRACKING: &str = "steward-tracking";
/// The registry (and audit API) alone (distributed mode).
pub const STEWARD_REGISTRY: &str = "steward-registry";
/// The deployment service (and inference front door) alone (distributed mode).
pub const STEWARD_DEPLOYMENT: &str = "steward-deployment";
/// The monitoring service alone (distributed mode).
pub const STEWARD_MONITORING: &str = "steward-monitoring";

/// Path of `name` (one of [`STEWARD`], [`STEWARD_TRACKING`], [`STEWARD_REGISTRY`]), built first
/// if needed.
pub fn path(name: &str) -> PathBuf {
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = BIN_DIR.get_or_init(build);
    let exe = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.is_file(),
        "{} is missing after `cargo build` of the service packages",
        exe.display()
    );
    exe
}

/// `target/<profile>/`: the parent of the `deps/` directory this test binary runs from.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent directory")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// The workspace root (this crate's parent).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests/ is inside the workspace")
}

/// A variable cargo sets for the package under test, not a setting of the user's.
fn is_package_var(key: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ];
    const NAMES: [&str; 4] = [
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || NAMES.contains(&key)
}

/// Runs `cargo build` for both binaries with the profile of `bin_dir()`; returns that dir.
fn build() -> PathBuf {
    let dir = bin_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    // `cargo test` gives the test process the variables it gives build scripts of this package
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Some build scripts (ring's) declare them with
    // `rerun-if-env-changed`, so passing them on would make every build here and every
    // `cargo test` after it rebuild those crates and everything above them.
    for (key, _) in std::env::vars_os() {
        if is_package_var(&key.to_string_lossy()) {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(workspace_root()).args([
        "build",
        "-p",
        STEWARD,
        "-p",
        STEWARD_TRACKING,
        "-p",
        STEWARD_REGISTRY,
        "-p",
        STEWARD_DEPLOYMENT,
        "-p",
        STEWARD_MONITORING,
    ]);
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    let started = std::time::Instant::now();
    match cmd.output() {
        Ok(out) if out.status.success() => {
            let took = started.elapsed();
            if took.as_secs() >= 5 {
                eprintln!("built the Steward binaries in {took:.1?}");
            }
        }
        Ok(out) => panic!(
            "`{} build` of the Steward binaries failed ({}):\n{}",
            Path::new(&cargo).display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!(
            "cannot run {} ({e}); using the binaries already in {}",
            Path::new(&cargo).display(),
            dir.display()
        ),
    }
    dir
}
