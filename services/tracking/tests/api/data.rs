//! Run data: atomic batches, write-once params, special floats, streaming, history pages and
//! downsampling, datasets, limits.

use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, assert_bad, reason};

async fn history(
    h: &mut harness::Harness,
    run: &str,
    key: &str,
    page_size: i32,
) -> (pb::MetricSeries, usize) {
    let mut all = pb::MetricSeries::default();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let r = h
            .client
            .get_metric_history(pb::GetMetricHistoryRequest {
                run: run.into(),
                metric_key: key.into(),
                page_size,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        let s = r.series.unwrap();
        all.values.extend(s.values);
        all.steps.extend(s.steps);
        all.timestamps_unix_ms.extend(s.timestamps_unix_ms);
        if r.next_page_token.is_empty() {
            return (all, pages);
        }
        token = r.next_page_token;
    }
}

#[tokio::test]
async fn batches_are_atomic_and_params_write_once() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        let req = pb::LogRunDataRequest {
            run: run.name.clone(),
            metrics: vec![
                pb::MetricPoint {
                    key: "nan".into(),
                    value: f64::NAN,
                    timestamp: None,
                    step: 0,
                },
                pb::MetricPoint {
                    key: "inf".into(),
                    value: f64::INFINITY,
                    timestamp: None,
                    step: 0,
                },
                pb::MetricPoint {
                    key: "ninf".into(),
                    value: f64::NEG_INFINITY,
                    timestamp: None,
                    step: 0,
                },
            ],
            params: vec![pb::Param {
                key: "lr".into(),
                value: "0.01".into(),
            }],
            tags: vec![pb::Tag {
                key: "stage".into(),
                value: "a".into(),
            }],
            request_id: "batch-1".into(),
            metric_series: vec![pb::MetricSeries {
                key: "acc".into(),
                values: vec![0.1, 0.2, 0.3],
                steps: vec![],
                timestamps_unix_ms: vec![],
            }],
        };
        let n = h
            .client
            .log_run_data(req.clone())
            .await
            .unwrap()
            .into_inner()
            .metric_points_written;
        assert_eq!(n, 6, "{label}");
        // Retry: same answer, no duplicate points.
        assert_eq!(
            h.client
                .log_run_data(req.clone())
                .await
                .unwrap()
                .into_inner()
                .metric_points_written,
            6
        );
        let (acc, _) = history(&mut h, &run.name, "acc", 0).await;
        assert_eq!(
            acc.values,
            vec![0.1, 0.2, 0.3],
            "{label}: retry did not duplicate"
        );
        assert_eq!(acc.steps, vec![0, 1, 2], "empty steps mean 0,1,2,...");

        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: run.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let m = |k: &str| {
            got.latest_metrics
                .iter()
                .find(|m| m.key == k)
                .unwrap()
                .value
        };
        assert!(m("nan").is_nan(), "{label}: NaN survives");
        assert_eq!(m("inf"), f64::INFINITY);
        assert_eq!(m("ninf"), f64::NEG_INFINITY);
        let (nan_hist, _) = history(&mut h, &run.name, "nan", 0).await;
        assert!(nan_hist.values[0].is_nan(), "NaN survives in history");

        // Same param value again: accepted. Different value: refused, and nothing else in the
        // batch is written.
        h.client
            .log_run_data(pb::LogRunDataRequest {
                run: run.name.clone(),
                params: vec![pb::Param {
                    key: "lr".into(),
                    value: "0.01".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        let err = h
            .client
            .log_run_data(pb::LogRunDataRequest {
                run: run.name.clone(),
                params: vec![
                    pb::Param {
                        key: "new".into(),
                        value: "x".into(),
                    },
                    pb::Param {
                        key: "lr".into(),
                        value: "0.02".into(),
                    },
                ],
                metrics: vec![pb::MetricPoint {
                    key: "acc".into(),
                    value: 9.0,
                    timestamp: None,
                    step: 99,
                }],
                tags: vec![pb::Tag {
                    key: "stage".into(),
                    value: "b".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}");
        assert_eq!(reason(&err), "PARAM_ALREADY_LOGGED");
        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: run.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            !got.params.contains_key("new"),
            "{label}: batch is all or nothing"
        );
        assert_eq!(got.tags.get("stage").map(String::as_str), Some("a"));
        let (acc, _) = history(&mut h, &run.name, "acc", 0).await;
        assert_eq!(acc.values.len(), 3);
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_run_data_names_the_field_and_writes_nothing() {
    for mut h in harness::all().await {
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        let base = pb::LogRunDataRequest {
            run: run.name.clone(),
            ..Default::default()
        };
        let too_many = pb::MetricSeries {
            key: "x".into(),
            values: vec![0.0; 100_001],
            steps: vec![],
            timestamps_unix_ms: vec![],
        };
        let cases: Vec<(pb::LogRunDataRequest, &str)> = vec![
            (
                pb::LogRunDataRequest {
                    run: "runs/1".into(),
                    ..base.clone()
                },
                "run",
            ),
            (
                pb::LogRunDataRequest {
                    metrics: vec![pb::MetricPoint {
                        key: String::new(),
                        ..Default::default()
                    }],
                    ..base.clone()
                },
                "metrics[0].key",
            ),
            (
                pb::LogRunDataRequest {
                    metrics: vec![pb::MetricPoint {
                        key: "k".repeat(300),
                        ..Default::default()
                    }],
                    ..base.clone()
                },
                "metrics[0].key",
            ),
            (
                pb::LogRunDataRequest {
                    metrics: vec![pb::MetricPoint {
                        key: "k".into(),
                        timestamp: Some(prost_types::Timestamp {
                            seconds: -5,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }],
                    ..base.clone()
                },
                "metrics[0].timestamp",
            ),
            (
                pb::LogRunDataRequest {
                    params: vec![pb::Param {
                        key: "p".into(),
                        value: "v".repeat(9000),
                    }],
                    ..base.clone()
                },
                "params[0].value",
            ),
            (
                pb::LogRunDataRequest {
                    tags: vec![pb::Tag {
                        key: "../etc".into(),
                        value: "v".into(),
                    }],
                    ..base.clone()
                },
                "tags[0].key",
            ),
            (
                pb::LogRunDataRequest {
                    metric_series: vec![too_many],
                    ..base.clone()
                },
                "metrics",
            ),
            (
                pb::LogRunDataRequest {
                    metric_series: vec![pb::MetricSeries {
                        key: "s".into(),
                        values: vec![1.0],
                        steps: vec![],
                        timestamps_unix_ms: vec![1, 2],
                    }],
                    ..base.clone()
                },
                "metric_series[0].timestamps_unix_ms",
            ),
        ];
        for (req, field) in cases {
            let err = h.client.log_run_data(req).await.unwrap_err();
            assert_bad(err, Code::InvalidArgument, Some(field));
        }
        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: run.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            got.latest_metrics.is_empty() && got.params.is_empty() && got.tags.is_empty(),
            "{}: nothing written",
            h.label
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn streaming_history_pages_and_downsampling() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        let n_msgs = 5;
        let per = 2_000;
        let name = run.name.clone();
        let msgs = futures::stream::iter((0..n_msgs).map(move |m| pb::StreamMetricsRequest {
            run: if m == 0 { name.clone() } else { String::new() },
            metrics: vec![],
            metric_series: vec![pb::MetricSeries {
                key: "loss".into(),
                values: (0..per).map(|i| ((m * per + i) as f64 / 500.0).sin()).collect(),
                steps: (0..per).map(|i| (m * per + i) as i64).collect(),
                timestamps_unix_ms: vec![],
            }],
        }));
        let resp = h.client.stream_metrics(msgs).await.unwrap().into_inner();
        assert_eq!(resp.metric_points_written, (n_msgs * per) as i64, "{label}");
        assert_eq!(resp.messages, n_msgs as i64);

        let (all, pages) = history(&mut h, &run.name, "loss", 3_000).await;
        assert_eq!(all.values.len(), n_msgs * per, "{label}");
        assert_eq!(pages, 4, "10000 points in pages of 3000");
        assert!(
            all.steps.windows(2).all(|w| w[1] == w[0] + 1),
            "{label}: in order, no gaps or repeats"
        );

        for method in [pb::DownsampleMethod::MinMax, pb::DownsampleMethod::Lttb] {
            let r = h
                .client
                .get_metric_history(pb::GetMetricHistoryRequest {
                    run: run.name.clone(),
                    metric_key: "loss".into(),
                    max_points: 200,
                    downsample_method: method as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let s = r.series.unwrap();
            assert!(
                s.values.len() <= 200 && s.values.len() > 100,
                "{label} {method:?}: {}",
                s.values.len()
            );
            assert_eq!(r.total_points, (n_msgs * per) as i64);
            assert_eq!(s.steps.first(), Some(&0));
            assert_eq!(s.steps.last(), Some(&((n_msgs * per - 1) as i64)));
            let max = s.values.iter().cloned().fold(f64::MIN, f64::max);
            assert!(max > 0.99, "{label} {method:?}: the peaks survive ({max})");
        }

        // A stream whose first message names no run is refused.
        let bad = futures::stream::iter(vec![pb::StreamMetricsRequest::default()]);
        let err = h.client.stream_metrics(bad).await.unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("messages[0].run"));
        // A bad message midway: the earlier messages are kept (each is committed), the stream fails.
        let name = run.name.clone();
        let mixed = futures::stream::iter(vec![
            pb::StreamMetricsRequest {
                run: name.clone(),
                metrics: vec![pb::MetricPoint {
                    key: "m2".into(),
                    value: 1.0,
                    timestamp: None,
                    step: 0,
                }],
                metric_series: vec![],
            },
            pb::StreamMetricsRequest {
                run: String::new(),
                metrics: vec![pb::MetricPoint {
                    key: String::new(),
                    value: 1.0,
                    timestamp: None,
                    step: 1,
                }],
                metric_series: vec![],
            },
        ]);
        let err = h.client.stream_metrics(mixed).await.unwrap_err();
        assert_bad(
            err,
            Code::InvalidArgument,
            Some("messages[1].metrics[0].key"),
        );
        let (m2, _) = history(&mut h, &run.name, "m2", 0).await;
        assert_eq!(m2.values, vec![1.0]);
        h.stop().await;
    }
}

#[tokio::test]
async fn datasets_are_recorded_and_searchable() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        let other = h.run(&e.name).await;
        let digest = format!("sha256:{}", uuid::Uuid::new_v4().simple());
        let profile = pb::DatasetProfile {
            num_rows: 1000,
            features: vec![pb::FeatureProfile {
                name: "age".into(),
                dtype: "int64".into(),
                count: 1000,
                mean: 41.5,
                bin_edges: vec![0.0, 50.0, 100.0],
                bin_counts: vec![600, 400],
                ..Default::default()
            }],
        };
        let input = pb::DatasetInput {
            dataset: Some(pb::Dataset {
                name: "customers".into(),
                digest: digest.clone(),
                source_uri: "s3://data/customers.parquet".into(),
                source_type: "s3".into(),
                schema_json: r#"{"fields":[{"name":"age","type":"int64"}]}"#.into(),
                profile: Some(profile.clone()),
                version: String::new(),
            }),
            context: "training".into(),
        };
        h.client
            .log_run_inputs(pb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![input.clone()],
                request_id: String::new(),
            })
            .await
            .unwrap();
        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: run.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.inputs.len(), 1, "{label}");
        assert_eq!(
            got.inputs[0]
                .dataset
                .as_ref()
                .unwrap()
                .profile
                .as_ref()
                .unwrap(),
            &profile,
            "the profile round-trips"
        );
        let found = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![e.name.clone()],
                filter: format!("datasets.digest = '{digest}' AND datasets.context = 'training'"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            found
                .runs
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
            vec![run.name.clone()],
            "{label}"
        );
        let none = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![e.name.clone()],
                filter: "datasets.name IS NULL".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            none.runs.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            vec![other.name.clone()]
        );

        let mut bad = input.clone();
        bad.dataset
            .as_mut()
            .unwrap()
            .profile
            .as_mut()
            .unwrap()
            .features[0]
            .bin_edges
            .pop();
        let err = h
            .client
            .log_run_inputs(pb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![bad],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(
            err,
            Code::InvalidArgument,
            Some("inputs[0].dataset.profile.features[0].bin_edges"),
        );
        let mut bad = input.clone();
        bad.dataset.as_mut().unwrap().schema_json = "{not json".into();
        let err = h
            .client
            .log_run_inputs(pb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![bad],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(
            err,
            Code::InvalidArgument,
            Some("inputs[0].dataset.schema_json"),
        );
        h.stop().await;
    }
}
