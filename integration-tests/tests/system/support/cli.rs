//! Running the `steward` CLI as a person does, against a running server.

use std::time::Duration;

use super::binaries;
use super::process::{Output, Proc, command};

/// Runs `steward ARGS --addr ADDR` with extra environment `env`.
pub async fn steward_env(addr: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(args)
        .args(["--addr", addr])
        .envs(env.iter().copied());
    Proc::run(
        &format!("steward {}", args.join(" ")),
        cmd,
        Duration::from_secs(60),
    )
    .await
}

/// Runs `steward ARGS --addr ADDR`.
pub async fn steward(addr: &str, args: &[&str]) -> Output {
    steward_env(addr, &[], args).await
}

/// Like [`steward`], failing the test unless it exits 0.
pub async fn ok(addr: &str, args: &[&str]) -> Output {
    let out = steward(addr, args).await;
    assert!(
        out.status.success(),
        "steward {args:?} failed\n{}",
        out.describe()
    );
    out
}

/// Runs `steward ARGS --addr ADDR --actor ACTOR`.
pub async fn steward_as(addr: &str, actor: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--actor", actor]);
    steward(addr, &all).await
}

/// Like [`steward_as`], failing the test unless it exits 0.
pub async fn ok_as(addr: &str, actor: &str, args: &[&str]) -> Output {
    let out = steward_as(addr, actor, args).await;
    assert!(
        out.status.success(),
        "steward {args:?} failed\n{}",
        out.describe()
    );
    out
}

/// Like [`steward_as`], failing the test unless it exits non-zero with `needle` on stderr.
pub async fn fails_as(addr: &str, actor: &str, args: &[&str], needle: &str) {
    let out = steward_as(addr, actor, args).await;
    assert!(
        !out.status.success(),
        "steward {args:?} succeeded\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(needle),
        "{needle:?}\n{}",
        out.describe()
    );
}

/// The single JSON value a `--json` command printed.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON value: {e}\n{}", out.describe()))
}

/// Asserts that `out` contains every one of `needles`.
pub fn contains_all(out: &Output, needles: &[&str]) {
    for n in needles {
        assert!(out.stdout.contains(n), "missing {n:?}\n{}", out.describe());
    }
}
