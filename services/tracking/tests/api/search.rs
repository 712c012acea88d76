//! SearchRuns: the filter language end to end, ordering with missing values last, and keyset
//! pagination that neither skips nor repeats.

use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, assert_bad};

struct Spec {
    acc: Option<f64>,
    lr: &'static str,
    team: Option<&'static str>,
}

async fn seed(h: &mut harness::Harness) -> (String, Vec<(String, Spec)>) {
    let e = h.experiment().await;
    let specs = vec![
        Spec {
            acc: Some(0.95),
            lr: "0.01",
            team: Some("risk"),
        },
        Spec {
            acc: Some(0.91),
            lr: "0.01",
            team: Some("growth"),
        },
        Spec {
            acc: Some(0.85),
            lr: "0.01",
            team: None,
        },
        Spec {
            acc: Some(0.97),
            lr: "0.1",
            team: Some("risk"),
        },
        Spec {
            acc: None,
            lr: "0.01",
            team: Some("risk"),
        },
        Spec {
            acc: Some(0.93),
            lr: "0.01",
            team: Some("Risk"),
        },
        Spec {
            acc: Some(f64::NAN),
            lr: "0.01",
            team: None,
        },
        Spec {
            acc: Some(0.99),
            lr: "0.01",
            team: None,
        },
    ];
    let mut runs = Vec::new();
    for (i, s) in specs.into_iter().enumerate() {
        let r = h
            .client
            .create_run(pb::CreateRunRequest {
                parent: e.name.clone(),
                run: Some(pb::Run {
                    run_name: format!("run-{i}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut req = pb::LogRunDataRequest {
            run: r.name.clone(),
            params: vec![pb::Param {
                key: "lr".into(),
                value: s.lr.into(),
            }],
            ..Default::default()
        };
        if let Some(a) = s.acc {
            req.metrics.push(pb::MetricPoint {
                key: "acc".into(),
                value: a,
                timestamp: None,
                step: 0,
            });
        }
        if let Some(t) = s.team {
            req.tags.push(pb::Tag {
                key: "team".into(),
                value: t.into(),
            });
        }
        h.client.log_run_data(req).await.unwrap();
        runs.push((r.name, s));
    }
    (e.name, runs)
}

async fn search(
    h: &mut harness::Harness,
    exp: &str,
    filter: &str,
    order_by: &str,
    page_size: i32,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![exp.into()],
                filter: filter.into(),
                order_by: order_by.into(),
                page_size,
                page_token: token.clone(),
                show_deleted: false,
            })
            .await
            .unwrap_or_else(|e| panic!("{filter} / {order_by}: {e:?}"))
            .into_inner();
        assert!(r.runs.len() <= page_size.max(1) as usize);
        out.extend(r.runs.into_iter().map(|r| r.run_name));
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

fn names(idx: &[usize]) -> Vec<String> {
    idx.iter().map(|i| format!("run-{i}")).collect()
}

#[tokio::test]
async fn filter_language_and_ordering() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let (exp, _) = seed(&mut h).await;
        // The benchmark's query: driven from the metric index.
        assert_eq!(
            search(
                &mut h,
                &exp,
                "metrics.acc > 0.9 AND params.lr = '0.01'",
                "metrics.acc desc",
                2
            )
            .await,
            names(&[7, 0, 5, 1]),
            "{label}"
        );
        assert_eq!(
            search(
                &mut h,
                &exp,
                "metrics.acc > 0.9 AND params.lr = '0.01'",
                "metrics.acc asc",
                3
            )
            .await,
            names(&[1, 5, 0, 7])
        );
        // Missing and NaN values sort last, in both directions.
        let all_desc = search(&mut h, &exp, "", "metrics.acc desc", 3).await;
        assert_eq!(&all_desc[..6], &names(&[7, 3, 0, 5, 1, 2])[..], "{label}");
        let mut tail = all_desc[6..].to_vec();
        tail.sort();
        assert_eq!(tail, names(&[4, 6]));
        let all_asc = search(&mut h, &exp, "", "metrics.acc", 1).await;
        assert_eq!(&all_asc[..6], &names(&[2, 1, 5, 0, 3, 7])[..]);
        // OR, NOT, parentheses, LIKE (case-sensitive) and ILIKE, IN, IS NULL.
        let mut got = search(
            &mut h,
            &exp,
            "tags.team LIKE 'r%' OR (params.lr = '0.1' AND NOT metrics.acc < 0.5)",
            "",
            100,
        )
        .await;
        got.sort();
        assert_eq!(got, names(&[0, 3, 4]), "{label}");
        let mut got = search(&mut h, &exp, "tags.team ILIKE 'R%'", "", 100).await;
        got.sort();
        assert_eq!(got, names(&[0, 3, 4, 5]));
        let mut got = search(&mut h, &exp, "tags.team IN ('growth', 'Risk')", "", 100).await;
        got.sort();
        assert_eq!(got, names(&[1, 5]));
        let mut got = search(
            &mut h,
            &exp,
            "tags.team IS NULL AND metrics.acc IS NOT NULL",
            "",
            100,
        )
        .await;
        got.sort();
        assert_eq!(got, names(&[2, 6, 7]));
        let mut got = search(&mut h, &exp, "metrics.acc IS NULL", "", 100).await;
        got.sort();
        assert_eq!(got, names(&[4]), "{label}: NaN is a value that is present");
        assert_eq!(
            search(&mut h, &exp, "attributes.run_name = 'run-3'", "", 10).await,
            names(&[3])
        );
        assert_eq!(
            search(&mut h, &exp, "attributes.status = 'FINISHED'", "", 10).await,
            Vec::<String>::new()
        );
        assert_eq!(
            search(&mut h, &exp, "attributes.status = 'RUNNING'", "", 10)
                .await
                .len(),
            8
        );
        assert_eq!(
            search(
                &mut h,
                &exp,
                "attributes.start_time > '2000-01-01T00:00:00Z'",
                "",
                10
            )
            .await
            .len(),
            8
        );
        // Order by a param, then by name, with paging.
        let by_param = search(&mut h, &exp, "", "params.lr desc, attributes.run_name", 3).await;
        assert_eq!(by_param[0], "run-3");
        assert_eq!(&by_param[1..], &names(&[0, 1, 2, 4, 5, 6, 7])[..]);

        // User text is data, never SQL.
        assert!(
            search(&mut h, &exp, "params.lr = '0.01'' OR ''1''=''1'", "", 10)
                .await
                .is_empty()
        );
        assert!(
            search(&mut h, &exp, "tags.`team; DROP TABLE runs` = 'x'", "", 10)
                .await
                .is_empty()
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_searches_say_where() {
    for mut h in harness::all().await {
        let e = h.experiment().await;
        let cases = [
            ("metrics.acc >", "", "filter"),
            ("bogus.x = 1", "", "filter"),
            ("metrics.acc > 'x'", "", "filter"),
            ("", "datasets.name", "order_by"),
            ("", "metrics.a sideways", "order_by"),
        ];
        for (filter, order_by, field) in cases {
            let err = h
                .client
                .search_runs(pb::SearchRunsRequest {
                    experiments: vec![e.name.clone()],
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(
                err.message().contains("position") || field == "order_by",
                "{filter}: {}",
                err.message()
            );
            assert_bad(err, Code::InvalidArgument, Some(field));
        }
        let err = h
            .client
            .search_runs(pb::SearchRunsRequest::default())
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("experiments"));
        let err = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![e.name.clone()],
                page_token: "garbage".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("page_token"));
        let err = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![e.name.clone()],
                page_size: 5000,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(err, Code::InvalidArgument, Some("page_size"));
        h.stop().await;
    }
}
