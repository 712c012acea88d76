//! Ingest into windows, exact drift reports, duplicates, atomic batches, late records, series,
//! ground truth, performance, KPIs and alert rules.

use std::time::Duration;

use steward_drift::numeric::{sort_f64, wasserstein_normed};
use steward_proto::monitoring as pb;
use tonic::Code;

use crate::harness::{self, Lcg, assert_bad, record};

fn normal(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut g = Lcg(seed);
    (0..n).map(|_| g.normal() + shift).collect()
}

async fn ingest(
    h: &mut harness::Harness,
    monitor: &str,
    recs: Vec<pb::PredictionRecord>,
) -> pb::IngestPredictionsResponse {
    h.mon
        .ingest_predictions(pb::IngestPredictionsRequest {
            monitor: format!("monitors/{monitor}"),
            records: recs,
            columns: None,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn count_windows_give_exact_reports_drift_only_when_shifted_and_count_each_record_once() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let x_ref = normal(1, 2000, 0.0);
        let z_ref = normal(2, 2000, 5.0);
        h.numeric_baseline("train", &[("x", x_ref.clone()), ("z", z_ref.clone())], None)
            .await;
        h.count_monitor("m", "train", "", 500).await;
        h.mon
            .create_alert_rule(pb::CreateAlertRuleRequest {
                monitor: "monitors/m".into(),
                rule_id: "dataset".into(),
                rule: Some(pb::AlertRule {
                    metric: "drift.dataset".into(),
                    comparator: pb::Comparator::GreaterOrEqual as i32,
                    threshold: 1.0,
                    severity: "critical".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();

        // Window 0: the training distribution.
        let x0 = normal(11, 500, 0.0);
        let z0 = normal(12, 500, 5.0);
        let recs: Vec<_> = (0..500)
            .map(|i| record(&format!("a{i}"), &[("x", x0[i]), ("z", z0[i])], 0.5))
            .collect();
        let r = ingest(&mut h, "m", recs.clone()).await;
        assert_eq!((r.accepted, r.duplicates), (500, 0), "{l}");
        let rep = h.report("m", 0).await;
        assert!(!rep.dataset_drift, "{l}: {rep:?}");
        let x = &rep.features[0];
        assert_eq!(
            x.method,
            pb::DriftMethod::Wasserstein as i32,
            "reference > 1000 rows"
        );
        assert_eq!(x.computation, "exact");
        let (mut a, mut b) = (x_ref.clone(), x0.clone());
        sort_f64(&mut a);
        sort_f64(&mut b);
        assert_eq!(
            x.score,
            wasserstein_normed(&a, &b).unwrap(),
            "{l}: the report is the exact statistic"
        );
        assert_eq!((x.reference_rows, x.current_rows), (2000, 500));

        // The same records again: nothing new.
        let r = ingest(&mut h, "m", recs).await;
        assert_eq!((r.accepted, r.duplicates), (0, 500), "{l}");

        // A batch with one bad record is refused whole.
        let mut bad: Vec<_> = (0..10)
            .map(|i| record(&format!("bad{i}"), &[("x", 0.0)], 0.5))
            .collect();
        bad[7].request_id = String::new();
        let e = h
            .mon
            .ingest_predictions(pb::IngestPredictionsRequest {
                monitor: "monitors/m".into(),
                records: bad,
                columns: None,
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("records[7].request_id"));
        assert_eq!(
            h.mon
                .ingest_predictions(pb::IngestPredictionsRequest {
                    monitor: "monitors/none".into(),
                    records: vec![record("q", &[], 0.1)],
                    columns: None,
                })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );

        // Window 1: x shifted by one standard deviation, z unchanged -> x drifts; with two
        // features, one drifted is a share of 0.5 -> dataset drift.
        let x1 = normal(21, 500, 1.0);
        let z1 = normal(22, 500, 5.0);
        // 100 retried records of window 0 interleaved with the 500 new ones: only the new ones
        // are numbered, so window 1 holds exactly the 500.
        let mut recs: Vec<_> = (0..500)
            .map(|i| record(&format!("b{i}"), &[("x", x1[i]), ("z", z1[i])], 0.5))
            .collect();
        for i in 0..100 {
            recs.insert(
                i * 5,
                record(&format!("a{i}"), &[("x", 99.0), ("z", 99.0)], 0.5),
            );
        }
        let r = ingest(&mut h, "m", recs).await;
        assert_eq!((r.accepted, r.duplicates), (500, 100), "{l}");
        let rep = h.report("m", 1).await;
        assert!(rep.features[0].drifted, "{l}: {:?}", rep.features[0]);
        assert!(!rep.features[1].drifted, "{l}: {:?}", rep.features[1]);
        assert!(rep.dataset_drift && (rep.drift_share - 0.5).abs() < 1e-12);
        let w = h
            .mon
            .list_windows(pb::ListWindowsRequest {
                monitor: "monitors/m".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            w.windows
                .iter()
                .map(|w| (w.number, w.rows, w.state.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, 500, "CLOSED"), (0, 500, "CLOSED")],
            "{l}: the refused batch and the duplicates added no rows"
        );
        let a = h.wait_alert("m", "FIRING").await;
        assert_eq!(a.metric, "drift.dataset");
        assert_eq!(a.severity, "critical");
        let s = h
            .mon
            .get_metric_series(pb::GetMetricSeriesRequest {
                monitor: "monitors/m".into(),
                metric: "drift.feature.x".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            s.points.iter().map(|p| p.window).collect::<Vec<_>>(),
            vec![0, 1]
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn time_windows_close_after_their_end_and_late_records_do_not_change_them() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        h.numeric_baseline("b", &[("x", normal(3, 300, 0.0))], None)
            .await;
        h.mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: "t".into(),
                monitor: Some(pb::Monitor {
                    baseline: "baselines/b".into(),
                    window: Some(pb::Window {
                        size: Some(pb::window::Size::Duration(prost_types::Duration {
                            seconds: 1,
                            nanos: 0,
                        })),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        // Records of a second that ended 5 s ago.
        let now = steward_common::time::now_ms();
        let sec = (now - 5_000) / 1000;
        let xs = normal(4, 50, 0.0);
        let recs: Vec<_> = (0..50)
            .map(|i| {
                let mut r = record(&format!("r{i}"), &[("x", xs[i])], 0.5);
                r.time = Some(steward_grpc::ts(sec * 1000 + i as i64));
                r
            })
            .collect();
        ingest(&mut h, "t", recs).await;
        let rep = h.report("t", sec).await;
        let w = rep.window.clone().unwrap();
        assert_eq!(w.rows, 50, "{l}");
        assert_eq!(w.start_time.unwrap().seconds, sec);
        assert_eq!(w.end_time.unwrap().seconds, sec + 1);
        // A late record of that second is stored (for performance) but not in the window.
        let mut late = record("late", &[("x", 9.0)], 0.5);
        late.time = Some(steward_grpc::ts(sec * 1000 + 500));
        assert_eq!(ingest(&mut h, "t", vec![late]).await.accepted, 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = h.report("t", sec).await;
        assert_eq!(again.window.unwrap().rows, 50, "{l}");
        assert_eq!(again.features, rep.features);
        h.stop().await;
    }
}

#[tokio::test]
async fn feedback_joins_predictions_and_performance_rules_fire_and_resolve() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        h.numeric_baseline("b", &[("x", normal(5, 100, 0.0))], None)
            .await;
        h.count_monitor("p", "b", "", 100_000).await;
        // 100 predictions: score 0.9 for even ids (truth 1), 0.1 for odd (truth 0).
        let recs: Vec<_> = (0..100)
            .map(|i| {
                let mut r = record(
                    &format!("q{i}"),
                    &[("x", 0.0)],
                    if i % 2 == 0 { 0.9 } else { 0.1 },
                );
                r.variant = if i < 50 { "a" } else { "b" }.into();
                r.latency_us = 1000 * (i as i64 + 1);
                r
            })
            .collect();
        ingest(&mut h, "p", recs).await;
        h.mon
            .create_alert_rule(pb::CreateAlertRuleRequest {
                monitor: "monitors/p".into(),
                rule_id: "acc".into(),
                rule: Some(pb::AlertRule {
                    metric: "performance.accuracy".into(),
                    comparator: pb::Comparator::Less as i32,
                    threshold: 0.8,
                    window: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let label = |i: usize, flip: bool| {
            let truth = i.is_multiple_of(2) != flip;
            pb::Feedback {
                request_id: format!("q{i}"),
                label: Some(pb::Value {
                    kind: Some(pb::value::Kind::Number(if truth { 1.0 } else { 0.0 })),
                }),
            }
        };
        // All labels right, plus one for an unknown request.
        let mut fb: Vec<_> = (0..100).map(|i| label(i, false)).collect();
        fb.push(pb::Feedback {
            request_id: "unknown".into(),
            label: Some(pb::Value {
                kind: Some(pb::value::Kind::Number(1.0)),
            }),
        });
        let r = h
            .mon
            .ingest_feedback(pb::IngestFeedbackRequest {
                monitor: "monitors/p".into(),
                feedback: fb,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.accepted, r.unmatched), (101, 1), "{l}");
        h.mon
            .ingest_kpis(pb::IngestKpisRequest {
                monitor: "monitors/p".into(),
                kpis: (0..10)
                    .map(|i| pb::Kpi {
                        name: "revenue".into(),
                        value: i as f64,
                        request_id: format!("q{i}"),
                        time: None,
                    })
                    .collect(),
            })
            .await
            .unwrap();
        let perf = h
            .mon
            .get_performance(pb::GetPerformanceRequest {
                monitor: "monitors/p".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let all = &perf.variants[0];
        assert_eq!(all.variant, "");
        assert_eq!((all.predictions, all.labelled), (100, 100), "{l}");
        assert_eq!(
            (all.accuracy, all.precision, all.recall, all.roc_auc),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert!(
            (all.latency_p50_ms - 50.5).abs() < 1e-9,
            "{}",
            all.latency_p50_ms
        );
        assert_eq!(all.kpis.get("revenue"), Some(&4.5));
        assert_eq!(
            perf.variants
                .iter()
                .map(|v| v.variant.as_str())
                .collect::<Vec<_>>(),
            ["", "a", "b"]
        );
        assert_eq!(
            perf.variants[1].kpis.get("revenue"),
            Some(&4.5),
            "KPIs of requests of variant a"
        );

        // 30 wrong labels: accuracy 0.7 < 0.8 -> the rule fires.
        h.mon
            .ingest_feedback(pb::IngestFeedbackRequest {
                monitor: "monitors/p".into(),
                feedback: (0..30).map(|i| label(i, true)).collect(),
            })
            .await
            .unwrap();
        let a = h.wait_alert("p", "FIRING").await;
        assert!((a.value - 0.7).abs() < 1e-9, "{l}: {a:?}");
        // Fixed labels: it resolves, once.
        h.mon
            .ingest_feedback(pb::IngestFeedbackRequest {
                monitor: "monitors/p".into(),
                feedback: (0..30).map(|i| label(i, false)).collect(),
            })
            .await
            .unwrap();
        let resolved = h.wait_alert("p", "RESOLVED").await;
        assert_eq!(resolved.name, a.name);
        let all = h
            .mon
            .list_alerts(pb::ListAlertsRequest {
                filter: "monitor = \"monitors/p\"".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.alerts.len(), 1, "{l}: deduplicated while firing");

        // Bad feedback and KPIs name their field.
        let e = h
            .mon
            .ingest_feedback(pb::IngestFeedbackRequest {
                monitor: "monitors/p".into(),
                feedback: vec![pb::Feedback {
                    request_id: "q1".into(),
                    label: None,
                }],
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("feedback[0].label"));
        let e = h
            .mon
            .ingest_kpis(pb::IngestKpisRequest {
                monitor: "monitors/p".into(),
                kpis: vec![pb::Kpi {
                    name: "x".into(),
                    value: f64::NAN,
                    ..Default::default()
                }],
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("kpis[0].value"));
        h.stop().await;
    }
}

#[tokio::test]
async fn columns_and_records_give_the_same_window_and_bad_columns_are_refused() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        h.numeric_baseline(
            "b",
            &[("x", normal(8, 2000, 0.0)), ("y", normal(9, 2000, 0.0))],
            None,
        )
        .await;
        h.count_monitor("rec", "b", "", 300).await;
        h.count_monitor("col", "b", "", 300).await;
        let x = normal(10, 300, 0.3);
        let y = normal(11, 300, 0.0);
        let recs: Vec<_> = (0..300)
            .map(|i| record(&format!("r{i}"), &[("x", x[i]), ("y", y[i])], 0.5))
            .collect();
        ingest(&mut h, "rec", recs).await;
        let col = |name: &str, v: &[f64]| pb::Column {
            name: name.into(),
            kind: pb::FeatureKind::Numeric as i32,
            numbers: v.to_vec(),
            categories: vec![],
        };
        let columns = pb::PredictionColumns {
            request_ids: (0..300).map(|i| format!("r{i}")).collect(),
            features: vec![col("y", &y), col("x", &x), col("unused", &x)],
            prediction: Some(col("score", &[0.5; 300])),
            variant: "main".into(),
            ..Default::default()
        };
        let r = h
            .mon
            .ingest_predictions(pb::IngestPredictionsRequest {
                monitor: "monitors/col".into(),
                records: vec![],
                columns: Some(columns.clone()),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.accepted, r.duplicates), (300, 0), "{l}");
        let a = h.report("rec", 0).await;
        let b = h.report("col", 0).await;
        assert_eq!(a.features, b.features, "{l}: same values, same report");

        // Columns of the wrong length, twice the same name: refused, nothing stored.
        let mut short = columns.clone();
        short.request_ids = (0..300).map(|i| format!("s{i}")).collect();
        short.features[0].numbers.pop();
        let mut twice = columns.clone();
        twice.request_ids = (0..300).map(|i| format!("t{i}")).collect();
        twice.features[1].name = "y".into();
        for (c, field) in [
            (short, "columns.features[0]"),
            (twice, "columns.features[1].name"),
        ] {
            let e = h
                .mon
                .ingest_predictions(pb::IngestPredictionsRequest {
                    monitor: "monitors/col".into(),
                    records: vec![],
                    columns: Some(c),
                })
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some(field));
        }
        let w = h
            .mon
            .list_windows(pb::ListWindowsRequest {
                monitor: "monitors/col".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(w.windows.len(), 1, "{l}");
        h.stop().await;
    }
}

#[tokio::test]
async fn windows_beyond_the_exact_size_use_sketches_with_a_certified_error() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let x_ref = normal(30, 5000, 0.0);
        let s_ref: Vec<f64> = normal(31, 5000, 0.0)
            .iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect();
        h.numeric_baseline("b", &[("x", x_ref.clone())], Some(s_ref.clone()))
            .await;
        // Windows of 3,000 predictions, at most 1,000 kept exactly: sketches; with the
        // Benjamini-Hochberg correction on and KS forced for x (Benjamini-Hochberg is unit-tested in the report module).
        h.mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: "big".into(),
                monitor: Some(pb::Monitor {
                    baseline: "baselines/b".into(),
                    window: Some(pb::Window {
                        size: Some(pb::window::Size::Count(3000)),
                    }),
                    max_exact_rows: 1000,
                    fdr_correction: true,
                    features: vec![pb::FeatureSpec {
                        name: "x".into(),
                        method: pb::DriftMethod::Ks as i32,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let x = normal(32, 3000, 0.2);
        let scores: Vec<f64> = normal(33, 3000, 1.0)
            .iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect();
        let recs: Vec<_> = (0..3000)
            .map(|i| record(&format!("s{i}"), &[("x", x[i])], scores[i]))
            .collect();
        for part in recs.chunks(1000) {
            ingest(&mut h, "big", part.to_vec()).await;
        }
        let rep = h.report("big", 0).await;
        let f = &rep.features[0];
        assert_eq!(f.method, pb::DriftMethod::Ks as i32, "{l}");
        assert!(
            f.computation.starts_with("sketch (rank error <="),
            "{l}: {}",
            f.computation
        );
        // The exact p-value lies in the certified interval the report gives.
        let (mut a, mut b) = (x_ref.clone(), x.clone());
        sort_f64(&mut a);
        sort_f64(&mut b);
        let exact = steward_drift::ks::ks_2samp(&a, &b).unwrap().p_value;
        let range = f
            .computation
            .split("score in [")
            .nth(1)
            .unwrap()
            .trim_end_matches("])");
        let (lo, hi) = range.split_once(", ").unwrap();
        let (lo, hi): (f64, f64) = (
            lo.parse().unwrap(),
            hi.trim_end_matches(']')
                .trim_end_matches(')')
                .parse()
                .unwrap(),
        );
        assert!(
            lo - 1e-6 <= exact && exact <= hi + 1e-6,
            "{l}: {exact} not in [{lo}, {hi}]"
        );
        assert!(
            f.drifted,
            "{l}: a 0.2 sd shift over 3,000 rows is detected: {f:?}"
        );
        // The prediction drifts too (its scores moved).
        let p = rep.prediction.as_ref().expect("prediction drift");
        assert_eq!(p.name, "prediction");
        assert!(p.drifted, "{l}: {p:?}");
        h.stop().await;
    }
}

#[tokio::test]
async fn streamed_batches_are_each_atomic_and_counted() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        h.numeric_baseline("b", &[("x", normal(40, 500, 0.0))], None)
            .await;
        h.count_monitor("s", "b", "", 1000).await;
        let batch = |from: usize, to: usize| pb::IngestPredictionsRequest {
            monitor: "monitors/s".into(),
            records: (from..to)
                .map(|i| record(&format!("s{i}"), &[("x", i as f64)], 0.5))
                .collect(),
            columns: None,
        };
        // Three batches, the last repeating ten ids of the first.
        let r = h
            .mon
            .stream_predictions(tokio_stream::iter(vec![
                batch(0, 100),
                batch(100, 250),
                batch(90, 110),
            ]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.accepted, r.duplicates), (250, 20), "{l}");
        // A bad second message fails the call; the first batch was stored, the bad one not.
        let mut bad = batch(300, 310);
        bad.records[3].request_id = String::new();
        let e = h
            .mon
            .stream_predictions(tokio_stream::iter(vec![batch(250, 300), bad]))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("records[3].request_id"));
        let w = h
            .mon
            .list_windows(pb::ListWindowsRequest {
                monitor: "monitors/s".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(w.windows[0].rows, 300, "{l}");
        h.stop().await;
    }
}
