//! `steward demo` as a new user runs it, with nothing else installed: the whole lifecycle
//! against its own embedded server, each step printed with the values the server returned,
//! and its temporary data dir removed at the end. And the same lifecycle through the public
//! gRPC APIs of the four services as separate processes on PostgreSQL, Redis and S3 (the
//! real-backend tier).

use std::path::Path;
use std::time::Duration;

use crate::support::binaries;
use crate::support::process::{Output, Proc, command};
use crate::support::suite::Suite;

/// The demo's time budget (it takes well under a minute in a debug build).
const TIMEOUT: Duration = Duration::from_secs(180);

/// The rest of the first stdout line that contains `prefix`, after it.
fn after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.find(prefix).map(|i| &l[i + prefix.len()..]))
        .unwrap_or_else(|| panic!("no line with {prefix:?} in\n{stdout}"))
}

/// The value of row `key` of the printed explanation (`  {key padded to 15} {value}`).
fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("  {key:<15} ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no explanation row {key:?} in\n{stdout}"))
}

/// The first whitespace-separated word of `s`.
fn word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or_default()
}

/// Checks the story a successful `steward demo` printed, step by step, with the values the
/// server returned (and that they agree across steps).
fn check_story(out: &Output) {
    assert!(out.status.success(), "{}", out.describe());
    let s = out.stdout.as_str();
    let fail = || out.describe();

    // Eleven steps, in order.
    let mut at = 0;
    for n in 1..=11 {
        let header = format!("[{n}/11] ");
        let i = s[at..]
            .find(&header)
            .unwrap_or_else(|| panic!("no step {n} after byte {at}\n{}", fail()));
        at += i + header.len();
    }

    // Training runs with metrics and the dataset digest; the best run by accuracy.
    let digest = word(after(s, "dataset transactions: 1000 rows x 8 features, "));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 7 + 64,
        "{}",
        fail()
    );
    assert!(
        after(s, "run gbm-lr0.1 ").contains("accuracy 0.9499"),
        "{}",
        fail()
    );
    assert!(after(s, "run baseline ").contains("FINISHED"), "{}", fail());
    let best = after(s, "best run: ");
    assert!(
        best.starts_with("gbm-lr0.1 (accuracy 0.9499), experiments/"),
        "{}",
        fail()
    );
    let best_run = best.rsplit(' ').next().unwrap_or_default();
    assert!(best_run.contains("/runs/"), "{}", fail());

    // The best run's model registered as v2 with its digest; approved by bob, not by alice.
    let registered = after(s, "registered registeredModels/fraud/versions/2 by alice: ");
    assert!(
        registered.starts_with("onnx READY, digest sha256:") && registered.ends_with("PENDING"),
        "{}",
        fail()
    );
    assert!(
        after(s, "alice may not approve her own version: ").starts_with("PermissionDenied"),
        "{}",
        fail()
    );
    assert!(
        after(s, "registeredModels/fraud/versions/2 APPROVED ").starts_with("by bob at "),
        "{}",
        fail()
    );

    // Production's policy refuses it before staging; staging splits main and challenger.
    assert!(
        after(s, "production refuses it before staging: ")
            .contains("ran in environments/staging first"),
        "{}",
        fail()
    );
    assert!(
        after(s, "deployments/fraud-staging revision 2 ")
            .ends_with("main 50% (v1), challenger 50% (v2)"),
        "{}",
        fail()
    );

    // The canary rollout, advancing under ModelInfer traffic.
    let rollout = word(after(s, "started deployments/fraud-production/rollouts/"));
    assert!(!rollout.is_empty(), "{}", fail());
    assert!(
        after(s, "deployments/fraud-production revision 2 ")
            .ends_with("canary 10% (v2), main 90% (v1)"),
        "{}",
        fail()
    );
    let advanced = after(s, "the canary is at step 2 of 3 ");
    assert!(
        advanced.contains("step healthy for its bake time")
            && advanced.ends_with("canary 50% (v2), main 50% (v1)"),
        "{}",
        fail()
    );
    let first = after(s, "first canary answer: ");
    let canary_request = word(first);
    assert!(
        canary_request.starts_with("txn-")
            && first.contains("-> canary (registeredModels/fraud/versions/2), fraud score 0."),
        "{}",
        fail()
    );
    let served: u32 = word(after(s, "  served "))
        .parse()
        .unwrap_or_else(|_| panic!("{}", fail()));
    assert!(served > 0, "{}", fail());
    assert!(after(s, "drift windows 0..").contains("no dataset drift"));

    // The A/B test: both variants, a significant effect, the winner promoted.
    let cmp = after(s, "challenger vs main: effect +");
    assert!(
        cmp.contains("95% CI [+") && cmp.contains(", p ") && cmp.ends_with(": significant"),
        "{}",
        fail()
    );
    assert!(after(s, "sample ratio: ").starts_with("ok"), "{}", fail());
    assert!(
        after(
            s,
            "concluded: winner challenger, promoted: deployments/fraud-staging revision "
        )
        .ends_with("challenger 100% (v2)"),
        "{}",
        fail()
    );

    // Drift in the shifted features, the alert, and the canary rolled back by it.
    assert!(
        after(s, "DATASET DRIFT, ").starts_with("4 of 8 features drifted"),
        "{}",
        fail()
    );
    for f in ["amount", "merchant_risk", "distance", "foreign"] {
        assert!(
            after(s, &format!("    {f} ")).ends_with("DRIFTED"),
            "{f}\n{}",
            fail()
        );
    }
    assert!(after(s, "    tenure ").ends_with("ok"), "{}", fail());
    let alert = word(after(s, "alert alerts/"));
    assert!(
        after(s, &format!("alert alerts/{alert} "))
            .starts_with("FIRING (critical) on deployments/fraud-production: drift.dataset"),
        "{}",
        fail()
    );
    assert!(
        after(
            s,
            &format!("rollout deployments/fraud-production/rollouts/{rollout} ")
        )
        .starts_with(&format!(
            "ROLLED_BACK by controller: alert alerts/{alert} fired"
        )),
        "{}",
        fail()
    );
    assert!(
        after(
            s,
            "deployments/fraud-production is back on the base split: "
        )
        .ends_with("main 100% (v1)"),
        "{}",
        fail()
    );

    // The explanation of the canary's first answer: version, approval, run, data, training.
    assert_eq!(field(s, "request id"), canary_request, "{}", fail());
    assert_eq!(
        field(s, "model version"),
        "registeredModels/fraud/versions/2",
        "{}",
        fail()
    );
    assert!(
        field(s, "approval").starts_with("APPROVED by bob at "),
        "{}",
        fail()
    );
    assert_eq!(field(s, "trained by run"), best_run, "{}", fail());
    assert!(!field(s, "trained").is_empty(), "{}", fail());
    assert_eq!(
        field(s, "dataset"),
        format!("transactions {digest} (training)"),
        "{}",
        fail()
    );

    // The audit trail, exported and verified, offline and by the server.
    let exported: u32 = word(after(s, "exported "))
        .parse()
        .unwrap_or_else(|_| panic!("{}", fail()));
    assert!(exported > 0, "{}", fail());
    for chain in ["deployment", "monitoring", "registry", "tracking"] {
        assert!(
            after(s, &format!("    {chain}: ")).starts_with("ok, "),
            "{chain}\n{}",
            fail()
        );
    }
    assert!(
        after(s, "VerifyAuditChain: ").starts_with(&format!("ok, 4 chains, {exported} records")),
        "{}",
        fail()
    );
    assert!(after(s, "Done in ").contains("s: "), "{}", fail());
}

#[tokio::test]
async fn steward_demo_runs_the_whole_lifecycle_and_cleans_up() {
    // TMPDIR is the test's own, so the demo's data dir can be shown to be gone afterwards.
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.arg("demo").env("TMPDIR", tmp.path());
    let out = Proc::run("steward demo", cmd, TIMEOUT).await;
    check_story(&out);
    let s = out.stdout.as_str();
    let fail = || out.describe();

    // The temporary data dir is gone.
    let dir = Path::new(after(s, "  data dir: ").trim());
    assert!(dir.starts_with(tmp.path()), "{}", fail());
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "the demo left files in TMPDIR"
    );
}

#[tokio::test]
async fn the_lifecycle_runs_on_four_services_over_postgres_redis_and_s3() {
    // The demo's pace: fast controller and monitoring ticks, every decision's inputs kept.
    let Some(suite) = Suite::start(&[
        ("STEWARD_ROLLOUT_TICK_MS", "100".into()),
        ("STEWARD_MONITOR_TICK_MS", "100".into()),
        ("STEWARD_DECISION_SAMPLE_RATE", "1".into()),
    ])
    .await
    else {
        return;
    };
    let keep = tempfile::tempdir().unwrap();
    let mut cmd = command(binaries::path(binaries::STEWARD));
    cmd.args(["demo", "--tracking", &suite.tracking.url()])
        .args(["--registry", &suite.registry.url()])
        .args(["--deployment", &suite.deployment.url()])
        .args(["--monitoring", &suite.monitoring.url()])
        .arg("--keep")
        .arg(keep.path().join("demo"));
    let out = Proc::run("steward demo (four services)", cmd, TIMEOUT).await;
    check_story(&out);
    suite.stop().await;
}
