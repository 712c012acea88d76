//! `steward backup DIR` / `steward restore DIR` on the embedded mode: a snapshot taken while
//! `steward up` serves writes holds what was committed before it and nothing after, artifacts
//! included; restore verifies every byte first and never overwrites a data dir silently.

use std::path::Path;
use std::time::Duration;

use steward_proto::tracking as pb;

use crate::support::binaries;
use crate::support::process::{Output, Proc, command};
use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

async fn steward(args: &[&str], data_dir: &Path) -> Output {
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(args).arg("--data-dir").arg(data_dir);
    Proc::run(
        &format!("steward {}", args.join(" ")),
        cmd,
        Duration::from_secs(120),
    )
    .await
}

fn fails(out: &Output, needle: &str) {
    assert!(!out.status.success(), "succeeded\n{}", out.describe());
    assert!(
        out.stderr.contains(needle),
        "{needle:?}\n{}",
        out.describe()
    );
}

fn succeeds(out: &Output) {
    assert!(out.status.success(), "failed\n{}", out.describe());
}

/// Deterministic, incompressible-looking bytes.
fn blob(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn exists(tc: &mut t::Client, name: &str) -> bool {
    match tc
        .get_experiment(pb::GetExperimentRequest {
            name: name.into(),
            ..Default::default()
        })
        .await
    {
        Ok(_) => true,
        Err(s) if s.code() == tonic::Code::NotFound => false,
        Err(s) => panic!("GetExperiment {name}: {s:?}"),
    }
}

fn first_file(dir: &Path) -> std::path::PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                return p;
            }
        }
    }
    panic!("no file under {}", dir.display())
}

#[tokio::test]
async fn backup_while_serving_then_restore_verified_into_a_new_data_dir() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backup = root.path().join("backup");
    let model = blob(3 << 20);

    let server = Server::steward_up(&data, &[]).await;
    let mut tc = server.tracking();
    let before = t::create_experiment(&mut tc, &unique("before-backup")).await;
    let run = t::create_run(&mut tc, &before.name, "train").await;
    t::upload(&mut tc, &run.name, "model/model.bin", &model).await;

    let out = steward(&["backup", backup.to_str().unwrap()], &data).await;
    succeeds(&out);
    assert!(out.stdout.contains("backed up"), "{}", out.describe());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "steward-backup/1");
    assert_eq!(manifest["files"][0]["path"], "steward.db");
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["bytes"] == model.len()),
        "the artifact is in the manifest: {manifest}"
    );
    // Written after the snapshot: not in it.
    let after = t::create_experiment(&mut tc, &unique("after-backup")).await;
    fails(
        &steward(&["backup", backup.to_str().unwrap()], &data).await,
        "not empty",
    );
    drop(server);

    // Restore into a new data dir and serve it.
    let restored = root.path().join("restored");
    succeeds(&steward(&["restore", backup.to_str().unwrap()], &restored).await);
    let server = Server::steward_up(&restored, &[]).await;
    let mut tc = server.tracking();
    assert!(exists(&mut tc, &before.name).await);
    assert!(
        !exists(&mut tc, &after.name).await,
        "written after the backup"
    );
    let (_, bytes) = t::download(&mut tc, &run.name, "model/model.bin").await;
    assert!(bytes == model, "artifact bytes differ after restore");
    drop(server);

    // A data dir in use is not overwritten without --force, and with it is kept aside.
    fails(
        &steward(&["restore", backup.to_str().unwrap()], &restored).await,
        "--force",
    );
    let out = steward(&["restore", backup.to_str().unwrap(), "--force"], &restored).await;
    succeeds(&out);
    assert!(
        out.stdout.contains("previous data dir is kept at"),
        "{}",
        out.describe()
    );
    let kept = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("restored.pre-restore-")
        })
        .count();
    assert_eq!(kept, 1);

    // A damaged backup is refused before anything is written.
    let victim = first_file(&backup.join("artifacts"));
    let mut damaged = std::fs::read(&victim).unwrap();
    damaged[0] ^= 0xff;
    std::fs::write(&victim, damaged).unwrap();
    let elsewhere = root.path().join("elsewhere");
    let out = steward(&["restore", backup.to_str().unwrap()], &elsewhere).await;
    fails(&out, "does not match the manifest");
    assert!(
        !elsewhere.exists(),
        "nothing restored from a damaged backup"
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging dirs left behind: {leftovers:?}"
    );

    // Not a backup; and the embedded-only commands say what to do on Postgres.
    fails(
        &steward(&["restore", root.path().to_str().unwrap()], &elsewhere).await,
        "no MANIFEST.json",
    );
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(["backup", root.path().join("pg").to_str().unwrap()])
        .env("STEWARD_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    fails(
        &Proc::run("steward backup (postgres)", cmd, Duration::from_secs(60)).await,
        "README.md",
    );
}
