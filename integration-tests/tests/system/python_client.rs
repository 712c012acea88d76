//! The Python client (`clients/python/`) against `steward up`: the raw-stub example, run end to
//! end with a client nobody on the team wrote (stubs from `grpc_tools.protoc`, grpcio,
//! grpcio-health-checking and grpcio-reflection v1alpha); and the `steward-client` package,
//! installed offline with pip and checked by its own unittest suite (the fluent helper's runs,
//! params, metrics, artifacts, search paging and errors, read back with raw stubs).
//!
//! Asked for with `STEWARD_TEST_PYTHON` = a Python interpreter that has the packages of
//! `clients/python/requirements.txt` (CI sets it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use steward_proto::tracking as pb;

use crate::support::env;
use crate::support::process::{Output, Proc, command};
use crate::support::server::Server;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python")
}

fn check(what: &str, out: Output) -> Output {
    assert!(out.status.success(), "{what} failed\n{}", out.describe());
    out
}

#[tokio::test]
async fn python_example_runs_against_steward_up() {
    let Some(python) = env("STEWARD_TEST_PYTHON") else {
        eprintln!("python example not asked for (set STEWARD_TEST_PYTHON)");
        return;
    };

    // The example as a user copies it: the script, with its stubs generated beside it.
    let work = tempfile::tempdir().unwrap();
    let example = work.path().join("example.py");
    std::fs::copy(clients_dir().join("example.py"), &example).expect("copy example.py");
    let mut generate = command("bash");
    generate
        .arg(clients_dir().join("generate.sh"))
        .arg(work.path().join("gen"))
        .env("PYTHON", &python);
    check(
        "generate.sh",
        Proc::run("generate.sh", generate, Duration::from_secs(120)).await,
    );

    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let mut cmd = command(&python);
    cmd.arg(&example)
        .env("STEWARD_ADDR", server.addr.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = check(
        "example.py",
        Proc::run("example.py", cmd, Duration::from_secs(120)).await,
    );

    let lines: Vec<&str> = out.stdout.lines().collect();
    let line = |prefix: &str| -> &str {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}\n{}", out.describe()))
    };
    assert_eq!(line("health:"), "health: SERVING");
    let services = line("services:");
    for s in [
        "steward.tracking.v1.TrackingService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(s), "{services}");
    }
    assert!(line("experiment:").starts_with("experiment: experiments/"));
    assert_eq!(line("logged:"), "logged: 4 metric points");
    assert_eq!(line("search:"), "search: 1 run(s) with accuracy > 0.9");
    let run_name = line("run:")
        .strip_prefix("run: ")
        .expect("run line")
        .to_owned();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&run_name) && l.contains("baseline accuracy=0.93")),
        "the search lists the run with its latest accuracy\n{}",
        out.describe()
    );
    assert_eq!(
        line("finished:"),
        format!("finished: {run_name} FINISHED"),
        "{}",
        out.describe()
    );

    // The registry flow: a version from the run's artifacts, an alias, the lineage.
    assert!(
        line("version:").contains("/versions/1 READY sha256:"),
        "{}",
        out.describe()
    );
    assert!(
        line("champion:").ends_with("/versions/1 accuracy=0.93 lr=0.01"),
        "{}",
        out.describe()
    );

    // What the script wrote is on the server.
    let run = server
        .tracking()
        .get_run(pb::GetRunRequest { name: run_name })
        .await
        .expect("the run the example created")
        .into_inner();
    assert_eq!(run.status(), pb::RunStatus::Finished);
    assert_eq!(run.params.get("epochs").map(String::as_str), Some("3"));
    assert!(run.end_time.is_some(), "finishing sets end_time: {run:?}");
}

/// Copies the package sources (not build outputs or generated stubs) to `to`.
fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if ["build", "dist", "gen", "__pycache__"].contains(&name.as_str())
                || name.ends_with(".egg-info")
                // Generated stub packages below steward/ (see clients/python/.gitignore).
                || (from.file_name().is_some_and(|n| n == "steward"))
            {
                continue;
            }
            copy_package(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

#[tokio::test]
async fn python_package_installs_offline_and_its_helper_works_against_steward_up() {
    let Some(python) = env("STEWARD_TEST_PYTHON") else {
        eprintln!("python package not asked for (set STEWARD_TEST_PYTHON)");
        return;
    };
    // `pip install` from a copy of the sources, as a user's checkout, offline: the build
    // (stubs generated by grpc_tools.protoc) needs only what requirements.txt installed.
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("steward-client");
    copy_package(&clients_dir(), &pkg);
    let site = work.path().join("site");
    let mut install = command(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args([
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
        ])
        .arg(&site)
        .arg(&pkg)
        .env("STEWARD_PROTO_DIR", clients_dir().join("../../proto"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    check(
        "pip install clients/python",
        Proc::run("pip install", install, Duration::from_secs(300)).await,
    );

    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let mut tests = command(&python);
    tests
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(clients_dir().join("tests"))
        .current_dir(work.path())
        .env("STEWARD_ADDR", server.addr.to_string())
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = check(
        "python -m unittest (clients/python/tests)",
        Proc::run("unittest", tests, Duration::from_secs(300)).await,
    );
    // unittest reports on stderr; a skipped module (no STEWARD_ADDR) would still say OK.
    let report = out.stderr.trim_end();
    assert!(report.ends_with("OK"), "{}", out.describe());
    assert!(!report.contains("skipped"), "{}", out.describe());
    let ran: usize = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no test count\n{}", out.describe()));
    assert!(ran >= 10, "{ran} tests ran\n{}", out.describe());
}
