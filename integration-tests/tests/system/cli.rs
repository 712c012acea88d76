//! The `steward` CLI as a person runs it, against a running `steward up`.

use std::path::Path;

use steward_proto::tracking as pb;

use crate::support::cli::{ok, steward};
use crate::support::server::Server;
use crate::support::tracking::{self as t, unique};

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[tokio::test]
async fn cli_round_trips_against_steward_up() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[]).await;
    let addr = server.url();
    let name = unique("cli");

    let created = ok(&addr, &["experiments", "create", &name]).await;
    assert!(
        created.stdout.contains("created experiments/") && created.stdout.contains(&name),
        "{}",
        created.describe()
    );
    let listed = ok(&addr, &["experiments", "list"]).await;
    assert!(listed.stdout.contains(&name), "{}", listed.describe());
    // `host:port` without a scheme works too (the form `steward up` prints).
    let bare = addr.trim_start_matches("http://");
    let listed = ok(bare, &["experiments", "list"]).await;
    assert!(listed.stdout.contains(&name), "{}", listed.describe());

    // Two runs, one above the filter's threshold and one below.
    let mut c = server.tracking();
    let exp = c
        .get_experiment(pb::GetExperimentRequest {
            name: String::new(),
            display_name: name.clone(),
        })
        .await
        .expect("the CLI created the experiment")
        .into_inner();
    let good = t::create_run(&mut c, &exp.name, "good-run").await;
    let poor = t::create_run(&mut c, &exp.name, "poor-run").await;
    t::log(&mut c, &good.name, &[("acc", 0.91, 0)], &[("lr", "0.01")]).await;
    t::log(&mut c, &poor.name, &[("acc", 0.12, 0)], &[("lr", "0.5")]).await;

    let found = ok(
        &addr,
        &[
            "runs",
            "search",
            "-e",
            &name,
            "--filter",
            "metrics.acc > 0.5",
        ],
    )
    .await;
    assert!(
        found.stdout.contains(&good.name) && found.stdout.contains("good-run"),
        "{}",
        found.describe()
    );
    assert!(
        !found.stdout.contains(&poor.name) && !found.stdout.contains("poor-run"),
        "{}",
        found.describe()
    );
    assert!(found.stdout.contains("1 run(s)"), "{}", found.describe());

    // Artifacts: a 3 MiB file up and down again (several 1 MiB chunks each way).
    let files = tempfile::tempdir().unwrap();
    let src = files.path().join("weights.bin");
    let bytes = t::content(3 * 1024 * 1024, 7);
    std::fs::write(&src, &bytes).unwrap();
    let up = ok(
        &addr,
        &[
            "artifacts",
            "upload",
            &good.name,
            path_arg(&src),
            "--path",
            "model/weights.bin",
        ],
    )
    .await;
    assert!(
        up.stdout.contains(&t::sha256(&bytes)),
        "upload reports the content's sha256\n{}",
        up.describe()
    );
    let dst = files.path().join("downloaded.bin");
    ok(
        &addr,
        &[
            "artifacts",
            "download",
            &good.name,
            "model/weights.bin",
            "-o",
            path_arg(&dst),
        ],
    )
    .await;
    let back = std::fs::read(&dst).expect("download wrote the file");
    assert_eq!(back.len(), bytes.len());
    assert!(back == bytes, "downloaded content differs from the upload");

    // A bad filter: a readable error naming the position, and a non-zero exit.
    let bad = steward(
        &addr,
        &["runs", "search", "-e", &name, "--filter", "metrics.acc >"],
    )
    .await;
    assert!(!bad.status.success(), "{}", bad.describe());
    assert!(
        bad.stderr.contains("filter") && bad.stderr.contains("position 13"),
        "the error names the field and the position\n{}",
        bad.describe()
    );
}
