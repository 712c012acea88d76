//! The monitoring commands of the `steward` CLI (`baselines create|list`, `monitors
//! create|list|show`, `alerts rule|list`, `drift report`) as a person runs them against a
//! running `steward up`; predictions arrive through the gRPC API.

use std::time::Duration;

use steward_proto::monitoring as pb;
use steward_proto::monitoring::monitoring_service_client::MonitoringServiceClient;

use crate::support::cli::{json, ok, steward};
use crate::support::server::Server;

#[tokio::test]
async fn monitoring_cli_creates_baselines_monitors_rules_and_reads_reports_and_alerts() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(data.path(), &[("STEWARD_MONITOR_TICK_MS", "100")]).await;
    let addr = server.url();
    let addr = addr.as_str();

    // A reference sample as CSV: a numeric and a categorical column, one missing cell.
    let csv = data.path().join("reference.csv");
    let mut text = String::from("amount,country\n");
    for i in 0..1500 {
        let country = ["de", "fr", "it"][i % 3];
        if i == 7 {
            text.push_str(&format!(",{country}\n"));
        } else {
            text.push_str(&format!("{},{country}\n", i % 100));
        }
    }
    std::fs::write(&csv, text).unwrap();
    let out = ok(
        addr,
        &[
            "baselines",
            "create",
            "train",
            "--csv",
            csv.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        out.stdout
            .contains("baselines/train (1500 rows, 2 features"),
        "{}",
        out.describe()
    );
    let out = ok(addr, &["baselines", "list"]).await;
    assert!(out.stdout.contains("baselines/train"), "{}", out.describe());

    ok(
        addr,
        &[
            "monitors",
            "create",
            "live",
            "--baseline",
            "train",
            "--window-rows",
            "200",
        ],
    )
    .await;
    let bad = steward(
        addr,
        &[
            "monitors",
            "create",
            "x",
            "--baseline",
            "nope",
            "--window-rows",
            "200",
        ],
    )
    .await;
    assert!(
        !bad.status.success() && bad.stderr.contains("baselines/nope not found"),
        "{}",
        bad.describe()
    );
    ok(
        addr,
        &[
            "alerts",
            "rule",
            "live",
            "--id",
            "drift",
            "--metric",
            "drift.dataset",
            "--cmp",
            "ge",
            "--threshold",
            "1",
            "--severity",
            "critical",
        ],
    )
    .await;
    let list = json(&ok(addr, &["monitors", "list", "--json"]).await);
    assert_eq!(list[0]["name"], "monitors/live");
    assert_eq!(list[0]["features"], 2);

    // 200 predictions far from the training data: the window closes with dataset drift.
    let mut c = MonitoringServiceClient::new(server.channel.clone());
    c.ingest_predictions(pb::IngestPredictionsRequest {
        monitor: "monitors/live".into(),
        records: (0..200)
            .map(|i| pb::PredictionRecord {
                request_id: format!("r{i}"),
                features: [
                    (
                        "amount".to_string(),
                        pb::Value {
                            kind: Some(pb::value::Kind::Number(500.0 + i as f64)),
                        },
                    ),
                    (
                        "country".to_string(),
                        pb::Value {
                            kind: Some(pb::value::Kind::Category("us".into())),
                        },
                    ),
                ]
                .into(),
                ..Default::default()
            })
            .collect(),
        columns: None,
    })
    .await
    .unwrap();
    let mut report = None;
    for _ in 0..200 {
        let out = steward(addr, &["drift", "report", "live", "--json"]).await;
        if out.status.success() {
            report = Some(json(&out));
            break;
        }
        assert!(
            out.stderr.contains("REPORT_NOT_FOUND") || out.stderr.contains("NotFound"),
            "{}",
            out.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = report.expect("the window never closed");
    assert_eq!(r["dataset_drift"], true, "{r}");
    assert_eq!(r["features"][0]["name"], "amount");
    assert_eq!(
        r["features"][0]["method"], "WASSERSTEIN",
        "more than 1000 reference rows"
    );
    assert_eq!(r["features"][1]["new_categories"][0], "us");
    let table = ok(addr, &["drift", "report", "live"]).await;
    assert!(
        table.stdout.contains("dataset drift: YES"),
        "{}",
        table.describe()
    );
    let shown = ok(addr, &["monitors", "show", "live"]).await;
    assert!(shown.stdout.contains("CLOSED"), "{}", shown.describe());

    let mut alerts = serde_json::Value::Null;
    for _ in 0..100 {
        alerts = json(&ok(addr, &["alerts", "list", "--state", "firing", "--json"]).await);
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts[0]["metric"], "drift.dataset", "{alerts}");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["state"], "FIRING");
}
