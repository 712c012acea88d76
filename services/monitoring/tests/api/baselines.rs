//! Baselines, monitors, rules and channels: create, read, list, update, delete, and every kind
//! of bad input refused with the field named and nothing written.

use steward_proto::monitoring as pb;
use steward_proto::tracking as tpb;
use tonic::Code;

use crate::harness::{self, assert_bad};

fn num(name: &str, v: Vec<f64>) -> pb::Column {
    pb::Column {
        name: name.into(),
        kind: pb::FeatureKind::Numeric as i32,
        numbers: v,
        categories: vec![],
    }
}

fn cat(name: &str, v: &[&str]) -> pb::Column {
    pb::Column {
        name: name.into(),
        kind: pb::FeatureKind::Categorical as i32,
        numbers: vec![],
        categories: v.iter().map(|s| s.to_string()).collect(),
    }
}

/// What a baseline says, comparable (NaN summaries of categorical features compare as text,
/// category maps in key order).
fn summary(b: &pb::Baseline) -> Vec<String> {
    b.features
        .iter()
        .chain(b.prediction.iter())
        .map(|f| {
            let cats: std::collections::BTreeMap<_, _> = f.categories.iter().collect();
            format!(
                "{} {} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {cats:?}",
                f.name,
                f.kind,
                f.count,
                f.missing,
                f.exact,
                f.mean,
                f.stddev,
                f.min,
                f.max,
                f.bin_edges,
                f.bin_counts
            )
        })
        .chain([
            b.name.clone(),
            b.source.clone(),
            b.num_rows.to_string(),
            b.creator.clone(),
        ])
        .collect()
}

fn sample_req(id: &str, columns: Vec<pb::Column>, pred: &str) -> pb::CreateBaselineRequest {
    pb::CreateBaselineRequest {
        baseline_id: id.into(),
        model_version: String::new(),
        source: Some(pb::create_baseline_request::Source::Sample(
            pb::ReferenceSample {
                columns,
                prediction_column: pred.into(),
            },
        )),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn baselines_summarise_samples_and_profiles_and_refuse_bad_input() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let b = h
            .mon
            .create_baseline(sample_req(
                "b1",
                vec![
                    num("amount", vec![1.0, 2.0, 3.0, f64::NAN]),
                    cat("country", &["de", "fr", "de", ""]),
                    num("score", vec![0.1, 0.2, 0.9, 0.4]),
                ],
                "score",
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(b.name, "baselines/b1", "{l}");
        assert_eq!(b.num_rows, 4);
        assert_eq!(
            b.features.len(),
            2,
            "{l}: the prediction column is not a feature"
        );
        let amount = &b.features[0];
        assert_eq!((amount.count, amount.missing, amount.exact), (3, 1, true));
        assert_eq!(amount.mean, 2.0);
        assert!(
            (amount.stddev - (2.0f64 / 3.0).sqrt()).abs() < 1e-12,
            "ddof 0"
        );
        assert_eq!(b.features[1].categories.get("de"), Some(&2));
        assert_eq!(b.prediction.as_ref().unwrap().name, "score");
        let got = h
            .mon
            .get_baseline(pb::GetBaselineRequest {
                name: "baselines/b1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(summary(&got), summary(&b), "{l}: stored exactly");

        // Bad samples, each naming its field; nothing is stored.
        let cases: Vec<(pb::CreateBaselineRequest, &str)> = vec![
            (sample_req("b2", vec![], ""), "sample.columns"),
            (
                sample_req(
                    "b2",
                    vec![num("a", vec![1.0]), num("b", vec![1.0, 2.0])],
                    "",
                ),
                "sample.columns[1]",
            ),
            (
                sample_req("b2", vec![num("a", vec![1.0]), num("a", vec![2.0])], ""),
                "sample.columns[1].name",
            ),
            (
                sample_req("b2", vec![num("a", vec![f64::INFINITY])], ""),
                "sample.columns[0].numbers",
            ),
            (
                sample_req("b2", vec![num("a", vec![1.0])], "nope"),
                "sample.prediction_column",
            ),
            (
                sample_req(
                    "b2",
                    vec![pb::Column {
                        name: "a".into(),
                        kind: 0,
                        numbers: vec![1.0],
                        categories: vec![],
                    }],
                    "",
                ),
                "sample.columns[0].kind",
            ),
            (
                sample_req("b2", vec![cat("a\u{0}", &["x"])], ""),
                "sample.columns[0].name",
            ),
            (
                sample_req("../b2", vec![num("a", vec![1.0])], ""),
                "baseline_id",
            ),
            (
                pb::CreateBaselineRequest {
                    baseline_id: "b2".into(),
                    ..Default::default()
                },
                "source",
            ),
        ];
        for (req, field) in cases {
            let e = h.mon.create_baseline(req).await.unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some(field));
        }
        assert_eq!(
            h.mon
                .create_baseline(sample_req("b1", vec![num("a", vec![1.0])], ""))
                .await
                .unwrap_err()
                .code(),
            Code::AlreadyExists,
            "{l}"
        );
        let list = h
            .mon
            .list_baselines(pb::ListBaselinesRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            list.baselines.len(),
            1,
            "{l}: the refused requests wrote nothing"
        );

        // From a dataset profile logged with a run.
        let exp = h
            .tracking
            .create_experiment(tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: "profiles".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let run = h
            .tracking
            .create_run(tpb::CreateRunRequest {
                parent: exp.name,
                run: Some(tpb::Run::default()),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        h.tracking
            .log_run_inputs(tpb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![tpb::DatasetInput {
                    dataset: Some(tpb::Dataset {
                        name: "train".into(),
                        digest: format!("sha256:{}", "a".repeat(64)),
                        profile: Some(tpb::DatasetProfile {
                            num_rows: 100,
                            features: vec![
                                tpb::FeatureProfile {
                                    name: "amount".into(),
                                    dtype: "float64".into(),
                                    count: 100,
                                    mean: 5.0,
                                    stddev: 1.0,
                                    bin_edges: vec![0.0, 5.0, 10.0],
                                    bin_counts: vec![50, 50],
                                    ..Default::default()
                                },
                                tpb::FeatureProfile {
                                    name: "country".into(),
                                    dtype: "string".into(),
                                    count: 100,
                                    top_values: vec![tpb::ValueCount {
                                        value: "de".into(),
                                        count: 100,
                                    }],
                                    ..Default::default()
                                },
                            ],
                        }),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .unwrap();
        let p = h
            .mon
            .create_baseline(pb::CreateBaselineRequest {
                baseline_id: "from-profile".into(),
                source: Some(pb::create_baseline_request::Source::Profile(
                    pb::ProfileSource {
                        run: run.name.clone(),
                        dataset: "train".into(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.num_rows, 100, "{l}");
        assert!(!p.features[0].exact);
        assert_eq!(p.features[0].kind, pb::FeatureKind::Numeric as i32);
        assert_eq!(p.features[1].kind, pb::FeatureKind::Categorical as i32);
        let e = h
            .mon
            .create_baseline(pb::CreateBaselineRequest {
                baseline_id: "nope".into(),
                source: Some(pb::create_baseline_request::Source::Profile(
                    pb::ProfileSource {
                        run: run.name,
                        dataset: "missing".into(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::NotFound, Some("profile.dataset"));
        h.stop().await;
    }
}

#[tokio::test]
async fn monitors_rules_and_channels_are_validated_updated_and_deleted() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        h.numeric_baseline(
            "b",
            &[("x", vec![1.0, 2.0, 3.0]), ("y", vec![0.0, 1.0, 0.0])],
            None,
        )
        .await;
        let good = pb::Monitor {
            baseline: "baselines/b".into(),
            window: Some(pb::Window {
                size: Some(pb::window::Size::Duration(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                })),
            }),
            ..Default::default()
        };
        let bad = |f: fn(&mut pb::Monitor)| {
            let mut m = good.clone();
            f(&mut m);
            pb::CreateMonitorRequest {
                monitor_id: "m".into(),
                monitor: Some(m),
                request_id: String::new(),
            }
        };
        let cases: Vec<(pb::CreateMonitorRequest, Code, &str)> = vec![
            (
                bad(|m| m.window = None),
                Code::InvalidArgument,
                "monitor.window",
            ),
            (
                bad(|m| {
                    m.window = Some(pb::Window {
                        size: Some(pb::window::Size::Count(3)),
                    })
                }),
                Code::InvalidArgument,
                "monitor.window.count",
            ),
            (
                bad(|m| m.baseline = "baselines/none".into()),
                Code::NotFound,
                "monitor.baseline",
            ),
            (
                bad(|m| m.drift_share = 1.5),
                Code::InvalidArgument,
                "monitor.drift_share",
            ),
            (
                bad(|m| {
                    m.features = vec![pb::FeatureSpec {
                        name: "zzz".into(),
                        ..Default::default()
                    }]
                }),
                Code::InvalidArgument,
                "monitor.features[0].name",
            ),
            (
                bad(|m| {
                    m.features = vec![pb::FeatureSpec {
                        name: "x".into(),
                        method: pb::DriftMethod::ChiSquared as i32,
                        ..Default::default()
                    }]
                }),
                Code::InvalidArgument,
                "monitor.features[0].method",
            ),
            (
                bad(|m| {
                    m.features = vec![pb::FeatureSpec {
                        name: "x".into(),
                        method: pb::DriftMethod::Ks as i32,
                        threshold: 2.0,
                        ..Default::default()
                    }]
                }),
                Code::InvalidArgument,
                "monitor.features[0].threshold",
            ),
            (
                bad(|m| m.retrain_channel = "channels/none".into()),
                Code::NotFound,
                "monitor.retrain_channel",
            ),
            (
                bad(|m| m.deployment = "deployments/a/b".into()),
                Code::InvalidArgument,
                "monitor.deployment",
            ),
        ];
        for (req, code, field) in cases {
            let e = h.mon.create_monitor(req).await.unwrap_err();
            assert_bad(e, code, Some(field));
        }
        let m = h
            .mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: "m".into(),
                monitor: Some(good.clone()),
                request_id: "create-m".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            m.features.len(),
            2,
            "{l}: every baseline feature by default"
        );
        assert_eq!(m.drift_share, 0.5);
        assert_eq!(m.max_exact_rows, 1_000_000);
        // A retry returns the original.
        let again = h
            .mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: "m".into(),
                monitor: Some(good.clone()),
                request_id: "create-m".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, m);
        // Update with the etag; a stale etag is refused.
        let mut upd = m.clone();
        upd.drift_share = 0.3;
        let m2 = h
            .mon
            .update_monitor(pb::UpdateMonitorRequest {
                monitor: Some(upd.clone()),
                update_mask: vec!["drift_share".into()],
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m2.drift_share, 0.3);
        // Features: overrides may change, the set of features may not (window values are laid
        // out by feature).
        let mut f = m2.clone();
        f.features = vec![
            pb::FeatureSpec {
                name: "x".into(),
                method: pb::DriftMethod::Psi as i32,
                ..Default::default()
            },
            pb::FeatureSpec {
                name: "y".into(),
                ..Default::default()
            },
        ];
        let m2 = h
            .mon
            .update_monitor(pb::UpdateMonitorRequest {
                monitor: Some(f.clone()),
                update_mask: vec!["features".into()],
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m2.features[0].method, pb::DriftMethod::Psi as i32, "{l}");
        let mut fewer = m2.clone();
        fewer.features.truncate(1);
        let e = h
            .mon
            .update_monitor(pb::UpdateMonitorRequest {
                monitor: Some(fewer),
                update_mask: vec!["features".into()],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("monitor.features"));
        assert_eq!(
            h.mon
                .update_monitor(pb::UpdateMonitorRequest {
                    monitor: Some(upd),
                    update_mask: vec!["drift_share".into()],
                    request_id: String::new(),
                })
                .await
                .unwrap_err()
                .code(),
            Code::Aborted
        );

        // Rules.
        let rule = |metric: &str| pb::CreateAlertRuleRequest {
            monitor: "monitors/m".into(),
            rule_id: String::new(),
            rule: Some(pb::AlertRule {
                metric: metric.into(),
                comparator: pb::Comparator::Less as i32,
                threshold: 0.8,
                window: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        for (metric, field) in [("cpu", "rule.metric"), ("drift.feature.zzz", "rule.metric")] {
            let e = h.mon.create_alert_rule(rule(metric)).await.unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some(field));
        }
        let mut no_window = rule("performance.accuracy");
        no_window.rule.as_mut().unwrap().window = None;
        assert_bad(
            h.mon.create_alert_rule(no_window).await.unwrap_err(),
            Code::InvalidArgument,
            Some("rule.window"),
        );
        let r = h
            .mon
            .create_alert_rule(rule("performance.accuracy"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.severity, "warning");

        // Channels: SSRF targets are refused unless explicitly allowed; the secret never leaves.
        let ch = |url: &str, allow: bool| pb::CreateChannelRequest {
            channel_id: String::new(),
            channel: Some(pb::Channel {
                url: url.into(),
                secret: "0123456789abcdef".into(),
                allow_private: allow,
                ..Default::default()
            }),
            request_id: String::new(),
        };
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.8/x",
            "http://192.168.1.1/x",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            let e = h.mon.create_channel(ch(url, false)).await.unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("channel.url"));
        }
        let mut short = ch("https://hooks.example.com/x", false);
        short.channel.as_mut().unwrap().secret = "short".into();
        assert_bad(
            h.mon.create_channel(short).await.unwrap_err(),
            Code::InvalidArgument,
            Some("channel.secret"),
        );
        let c = h
            .mon
            .create_channel(ch("https://hooks.example.com/x", false))
            .await
            .unwrap()
            .into_inner();
        assert!(c.secret.is_empty(), "{l}: the secret is never returned");

        // Delete: the monitor, its rules and windows go; a missing one is NOT_FOUND.
        h.mon
            .delete_monitor(pb::DeleteMonitorRequest {
                name: "monitors/m".into(),
                etag: m2.etag.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            h.mon
                .get_monitor(pb::GetMonitorRequest {
                    name: "monitors/m".into()
                })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            h.mon
                .list_alert_rules(pb::ListAlertRulesRequest {
                    monitor: "monitors/m".into()
                })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn a_stored_dataset_versions_profile_is_a_baseline() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        // A CSV version; its profile is computed at commit.
        let ds = format!("train-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let v = h
            .tracking
            .create_dataset_version(tpb::CreateDatasetVersionRequest {
                parent: format!("datasets/{ds}"),
                version: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut csv = String::from("amount,country\n");
        for i in 0..1000 {
            csv.push_str(&format!(
                "{},{}\n",
                i % 100,
                ["de", "fr", "us", "jp"][i % 4]
            ));
        }
        h.tracking
            .upload_dataset_file(futures::stream::iter(vec![
                tpb::UploadDatasetFileRequest {
                    part: Some(tpb::upload_dataset_file_request::Part::Header(
                        tpb::DatasetFileHeader {
                            version: v.name.clone(),
                            path: "train.csv".into(),
                            ..Default::default()
                        },
                    )),
                },
                tpb::UploadDatasetFileRequest {
                    part: Some(tpb::upload_dataset_file_request::Part::Chunk(
                        csv.into_bytes().into(),
                    )),
                },
            ]))
            .await
            .unwrap();
        h.tracking
            .commit_dataset_version(tpb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let exp = h
            .tracking
            .create_experiment(tpb::CreateExperimentRequest {
                experiment: Some(tpb::Experiment {
                    display_name: format!("e-{ds}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let run = h
            .tracking
            .create_run(tpb::CreateRunRequest {
                parent: exp.name,
                run: Some(tpb::Run::default()),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        h.tracking
            .log_run_inputs(tpb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![tpb::DatasetInput {
                    dataset: Some(tpb::Dataset {
                        version: v.name.clone(),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .unwrap();
        let b = h
            .mon
            .create_baseline(pb::CreateBaselineRequest {
                baseline_id: format!("b-{ds}"),
                source: Some(pb::create_baseline_request::Source::Profile(
                    pb::ProfileSource {
                        run: run.name.clone(),
                        dataset: ds.clone(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(b.num_rows, 1000, "{l}");
        let amount = &b.features[0];
        assert_eq!(
            (amount.name.as_str(), amount.kind),
            ("amount", pb::FeatureKind::Numeric as i32)
        );
        assert_eq!((amount.count, amount.min, amount.max), (1000, 0.0, 99.0));
        assert!((amount.mean - 49.5).abs() < 1e-9, "{}", amount.mean);
        assert_eq!(amount.bin_counts.iter().sum::<i64>(), 1000);
        assert_eq!(amount.bin_edges.len(), amount.bin_counts.len() + 1);
        let country = &b.features[1];
        assert_eq!(country.kind, pb::FeatureKind::Categorical as i32, "{l}");
        assert_eq!(country.categories.get("jp"), Some(&250));
        h.stop().await;
    }
}
