//! The fuzzing entry points under proptest: arbitrary bytes, and structured inputs built from
//! the pieces of each input language so that the cases reach past the first check.
//!
//! The tests at the end are the defects the fuzzers found (fixed), kept as regression tests.

use proptest::prelude::*;
use steward_deployment::domain::{Variant, canary_split};
use steward_fuzzing::{
    FUZZ_KEY, REQUEST_KINDS, artifact_paths, filter, join_fields, page_token, proto_conversions,
    request_input, resource_names,
};
use steward_grpc::{MAX_TOKEN_LEN, PageTokenCodec};
use steward_proto::{deployment as dpb, monitoring as mpb, registry as rpb, tracking as tpb};
use steward_storage::rows::SortVal;
use steward_tracking::store::search::RunCursor;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Pieces joined with one of a few separators (or none).
fn joined(
    pieces: &'static [&'static str],
    max: usize,
    seps: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(pieces), 0..max),
        prop::sample::select(seps),
    )
        .prop_map(|(parts, sep)| parts.join(sep))
}

// ---------------------------------------------------------------------------------------
// filter

const FILTER_TOKENS: &[&str] = &[
    "metrics.acc",
    "metrics.`val loss`",
    "metrics.",
    "\"k\"",
    "`k`",
    "params.lr",
    "param.x",
    "tags.team",
    "tags.\"a b\"",
    "attributes.status",
    "status",
    "attributes.start_time",
    "end_time",
    "create_time",
    "update_time",
    "run_name",
    "creator",
    "parent_run_id",
    "experiment_id",
    "datasets.name",
    "datasets.digest",
    "dataset.context",
    "datasets.source_uri",
    "latest_version",
    "latest_version.version",
    "latest_version.approval",
    "version",
    "format",
    "approval",
    "source_run",
    "digest",
    "name",
    "display_name",
    "description",
    "foo.bar",
    "AND",
    "and",
    "OR",
    "NOT",
    "not",
    "(",
    ")",
    ",",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "!",
    "LIKE",
    "ILIKE",
    "IN",
    "IN (",
    "IS",
    "NULL",
    "IS NOT NULL",
    "'x'",
    "'FINISHED'",
    "'running'",
    "'DONE'",
    "'%a_'",
    "'2026-01-01T00:00:00Z'",
    "'yesterday'",
    "'a''b'",
    "'",
    "\"",
    "`",
    "0",
    "-1",
    "1.5e3",
    "1e999",
    "1e-400",
    "-.5",
    ".5",
    "+.",
    "+",
    "-",
    "0x10",
    "1.0.0",
    "9223372036854775808",
    "inf",
    "Infinity",
    "desc",
    "asc",
    "DESC",
    "é",
    "\u{202e}",
    "\t",
    "\0",
];

/// A well-formed run filter: predicates combined with AND, OR, NOT and parentheses.
fn run_filter() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "metrics.acc",
        "params.lr",
        "tags.t",
        "attributes.status",
        "attributes.start_time",
        "datasets.name",
    ]);
    let leaf = (
        field,
        prop::sample::select(vec![
            "=",
            "!=",
            "<",
            ">=",
            "LIKE",
            "IN",
            "IS NULL",
            "IS NOT NULL",
        ]),
        any::<i32>(),
    )
        .prop_map(|(f, op, n)| {
            let value = match f {
                "metrics.acc" => n.to_string(),
                "attributes.status" => "'FINISHED'".to_string(),
                "attributes.start_time" => n.unsigned_abs().to_string(),
                _ => format!("'{n}'"),
            };
            match op {
                "IS NULL" | "IS NOT NULL" => format!("{f} {op}"),
                "IN" => format!("{f} IN ({value}, {value})"),
                "LIKE" if !matches!(f, "params.lr" | "tags.t" | "datasets.name") => {
                    format!("{f} = {value}")
                }
                "LIKE" => format!("{f} LIKE '%{n}%'"),
                _ => format!("{f} {op} {value}"),
            }
        });
    leaf.prop_recursive(6, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn filter_on_bytes(data in bytes(300)) {
        filter(&data);
    }

    #[test]
    fn filter_on_tokens(s in joined(FILTER_TOKENS, 30, &[" ", "", "  "])) {
        filter(s.as_bytes());
    }

    #[test]
    fn filter_on_spliced_filters(s in run_filter(), t in prop::sample::select(FILTER_TOKENS), at: prop::sample::Index) {
        let mut cut = at.index(s.len() + 1);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        filter(format!("{}{t}{}", &s[..cut], &s[cut..]).as_bytes());
    }

    #[test]
    fn filter_on_well_formed_filters(s in run_filter()) {
        assert!(steward_common::filter::parse(&s, steward_common::filter::Scope::Runs, "filter").is_ok(), "{s}");
        filter(s.as_bytes());
    }

    #[test]
    fn filter_on_order_by(s in joined(&["metrics.acc", "params.p", "tags.t", "attributes.start_time", "name", "version", "datasets.name", "desc", "asc", ","], 8, &[" ", ", "])) {
        filter(s.as_bytes());
    }

    #[test]
    fn filter_on_simple_filters(s in joined(&["model_version", "deployment", "state", "monitor", "=", " = ", "\"a\"", "\"", "\"\"", " AND ", "x"], 10, &["", " "])) {
        filter(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// page_token

fn codec() -> PageTokenCodec {
    PageTokenCodec::new(FUZZ_KEY)
}

fn sort_val() -> impl Strategy<Value = Option<SortVal>> {
    prop_oneof![
        Just(None),
        any::<i64>().prop_map(|v| Some(SortVal::Int(v))),
        (-1e300f64..1e300).prop_map(|v| Some(SortVal::Num(v))),
        ".{0,40}".prop_map(|v| Some(SortVal::Str(v))),
    ]
}

fn run_cursor() -> impl Strategy<Value = RunCursor> {
    (prop::collection::vec(sort_val(), 0..4), "[0-9a-f]{32}")
        .prop_map(|(keys, id)| RunCursor { keys, id })
}

/// The input that makes `page_token` decode `token` in `scope`.
fn decode_input(scope: &str, token: &str) -> Vec<u8> {
    let mut data = vec![0u8];
    data.extend(join_fields(&[scope, token]));
    data
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn page_token_on_bytes(data in bytes(300)) {
        page_token(&data);
    }

    #[test]
    fn page_token_decodes_valid_tokens(c in run_cursor(), scope in "[a-z0-9]{0,16}") {
        let token = codec().encode(&scope, &c);
        page_token(&decode_input(&scope, &token));
    }

    #[test]
    fn page_token_refuses_edited_tokens(c in run_cursor(), at: usize, with in "[A-Za-z0-9_=-]{0,3}") {
        let token = codec().encode("s", &c);
        let at = at % token.len();
        let edited = format!("{}{with}{}", &token[..at], &token[at + 1..]);
        page_token(&decode_input("s", &edited));
    }

    #[test]
    fn page_token_modes(mode in 0u8..3, scope in ".{0,8}", rest in bytes(200)) {
        let mut data = vec![mode];
        data.extend(join_fields(&[scope.as_bytes(), &rest]));
        page_token(&data);
    }
}

// ---------------------------------------------------------------------------------------
// resource_names

const NAME_PIECES: &[&str] = &[
    "experiments",
    "runs",
    "registeredModels",
    "versions",
    "datasets",
    "deployments",
    "monitors",
    "baselines",
    "channels",
    "latest",
    "0190a1b2c3d4e5f60718293a4b5c6d7e",
    "0190A1B2C3D4E5F60718293A4B5C6D7E",
    "0190a1b2c3d4e5f60718293a4b5c6d7",
    "0",
    "1",
    "01",
    "-1",
    "+1",
    "123456789012345678",
    "1234567890123456789",
    "99999999999999999999",
    "..",
    ".",
    "",
    "a",
    "A",
    "fraud-v2.1",
    "_x",
    "v1",
    "v",
    "prod",
    "latest",
    "@",
    "%2e",
    "\\",
    "\0",
    "é",
    "a b",
    "\u{202e}",
];

/// A name piece: mostly valid ids, sometimes anything from [`NAME_PIECES`].
fn name_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[0-9a-f]{32}",
        3 => "[a-z][a-z0-9_-]{0,8}",
        1 => "[1-9][0-9]{0,3}",
        2 => prop::sample::select(NAME_PIECES).prop_map(String::from),
    ]
}

/// Names of every form, with pieces that are mostly valid.
fn templated_name() -> impl Strategy<Value = String> {
    let collections = vec![
        "experiments",
        "registeredModels",
        "datasets",
        "deployments",
        "monitors",
        "baselines",
        "channels",
        "x",
    ];
    (
        prop::sample::select(collections),
        name_piece(),
        name_piece(),
        name_piece(),
        0u8..6,
    )
        .prop_map(|(c, a, b, v, form)| match form {
            0 => format!("{c}/{a}"),
            1 => format!("experiments/{a}/runs/{b}"),
            2 => format!("registeredModels/{a}/versions/{v}"),
            3 => format!("registeredModels/{a}@{b}"),
            4 => format!("datasets/{a}/versions/{v}"),
            _ => a,
        })
}

fn long_names() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["registeredModels/", "datasets/", "", "deployments/"][..]),
        120usize..140,
    )
        .prop_map(|(p, n)| format!("{p}{}", "m".repeat(n)))
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn resource_names_on_bytes(data in bytes(200)) {
        resource_names(&data);
    }

    #[test]
    fn resource_names_on_pieces(s in joined(NAME_PIECES, 6, &["/", "@", "/versions/", ""])) {
        resource_names(s.as_bytes());
    }

    #[test]
    fn resource_names_on_templates(s in templated_name()) {
        resource_names(s.as_bytes());
    }

    #[test]
    fn resource_names_on_long_names(s in long_names()) {
        resource_names(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// artifact_paths

const SEGMENTS: &[&str] = &[
    "model",
    "model.onnx",
    "environment",
    "requirements.txt",
    "..",
    ".",
    "...",
    "",
    " a",
    "a ",
    "a b",
    "%2e%2e",
    "%2E",
    "%252e",
    "\\",
    "..\\..",
    "\0",
    "\n",
    "C:",
    "c:",
    "é",
    "日本",
    "a\u{202e}b",
    "-",
    "(1)",
    "a+b=c,d@e",
    ";",
    "?",
    "#",
    "~",
    "*",
];

/// A path segment: mostly valid, sometimes one of [`SEGMENTS`].
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_-][a-zA-Z0-9._ ()+=,@-]{0,8}[a-zA-Z0-9_]",
        1 => prop::sample::select(SEGMENTS).prop_map(String::from),
    ]
}

/// Artifact paths: mostly valid segments joined with `/`, sometimes with a leading or
/// trailing separator or a bad segment.
fn artifact_path() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["", "", "", "", "/", "\\"][..]),
        prop::collection::vec(segment(), 1..5),
        prop::sample::select(&["/", "/", "/", "/", "//", "\\"][..]),
        prop::sample::select(&["", "", "/"][..]),
    )
        .prop_map(|(lead, segs, sep, trail)| format!("{lead}{}{trail}", segs.join(sep)))
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn artifact_paths_on_bytes(data in bytes(300)) {
        artifact_paths(&data);
    }

    #[test]
    fn artifact_paths_on_segments(p in artifact_path(), e in "[0-9a-fA-F]{31,33}", r in "[0-9a-f]{32}", d in "[0-9a-f.]{63,65}") {
        artifact_paths(&join_fields(&[p.as_str(), &e, &r, &d]));
    }

    #[test]
    fn artifact_paths_on_long_segments(n in 250usize..260, m in 1u8..6) {
        let p = vec!["s".repeat(n); usize::from(m)].join("/");
        artifact_paths(p.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// proto_conversions

const KEYS: &[&str] = &["acc", "", "..", "a/../b", " a", "a\0", "x", "é", "\u{7}"];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[a-z]{1,4}",
        1 => prop::sample::select(KEYS).prop_map(String::from),
        1 => (249usize..252).prop_map(|n| "k".repeat(n)),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let t = prop_oneof![
        8 => (0i64..253_402_300_800, 0i32..1_000_000_000),
        1 => (-5i64..253_402_300_801, -1i32..1_000_000_001),
        1 => (any::<i64>(), any::<i32>()),
    ];
    prop_oneof![
        3 => Just(None),
        2 => t.prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ]
}

/// A metric series whose vectors mostly have matching lengths.
fn series() -> impl Strategy<Value = tpb::MetricSeries> {
    (
        key(),
        prop::collection::vec(any::<f64>(), 0..4),
        0u8..6,
        any::<i64>(),
    )
        .prop_map(|(key, values, shape, x)| {
            let n = values.len();
            let (steps, timestamps_unix_ms) = match shape {
                0 => (vec![], vec![]),
                1 => ((0..n as i64).collect(), vec![]),
                2 => (vec![], vec![1_700_000_000_000; n]),
                3 => (
                    (0..n as i64).map(|i| i * 10).collect(),
                    vec![x.rem_euclid(253_402_300_800_000); n],
                ),
                4 => (vec![x; n + 1], vec![]),
                _ => (vec![], vec![x; n]),
            };
            tpb::MetricSeries {
                key,
                values,
                steps,
                timestamps_unix_ms,
            }
        })
}

fn log_run_data() -> impl Strategy<Value = tpb::LogRunDataRequest> {
    let point = (key(), any::<f64>(), timestamp(), any::<i64>()).prop_map(
        |(key, value, timestamp, step)| tpb::MetricPoint {
            key,
            value,
            timestamp,
            step,
        },
    );
    let value = prop_oneof![9 => "[a-z]{0,3}", 1 => "[a-z\0]{0,3}"];
    (
        prop::collection::vec(point, 0..5),
        prop::collection::vec(series(), 0..3),
        prop::collection::vec((key(), value.clone()), 0..4),
        prop::collection::vec((key(), value), 0..4),
    )
        .prop_map(|(metrics, metric_series, params, tags)| tpb::LogRunDataRequest {
            run: "experiments/0190a1b2c3d4e5f60718293a4b5c6d7e/runs/0190a1b2c3d4e5f60718293a4b5c6d7f".into(),
            metrics,
            metric_series,
            params: params.into_iter().map(|(key, value)| tpb::Param { key, value }).collect(),
            tags: tags.into_iter().map(|(key, value)| tpb::Tag { key, value }).collect(),
            request_id: String::new(),
        })
}

fn log_run_inputs() -> impl Strategy<Value = tpb::LogRunInputsRequest> {
    let feature = (
        prop::collection::vec(any::<i64>(), 0..3),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(bin_counts, mismatched)| {
            let edges = bin_counts.len() + usize::from(!mismatched);
            tpb::FeatureProfile {
                name: "f".into(),
                bin_edges: vec![0.5; edges],
                bin_counts,
                ..Default::default()
            }
        });
    let inline = (
        prop::sample::select(&["train", "train", "train", "train", "", "\u{202e}x", " "][..]),
        prop::sample::select(
            &[
                "sha256:ab",
                "sha256:ab",
                "sha256:ab",
                "sha256:ab",
                "",
                "has space",
                "é",
            ][..],
        ),
        prop::sample::select(&["", "", "", "{}", "[1]", "{"][..]),
        prop::option::of(prop::collection::vec(feature, 0..3)),
    )
        .prop_map(|(name, digest, schema_json, features)| tpb::Dataset {
            name: name.into(),
            digest: digest.into(),
            schema_json: schema_json.into(),
            profile: features.map(|features| tpb::DatasetProfile {
                num_rows: 1,
                features,
            }),
            ..Default::default()
        });
    let stored = (
        prop::sample::select(
            &[
                "datasets/d/versions/1",
                "datasets/d/versions/latest",
                "datasets/d/versions/0",
                "datasets/../versions/1",
            ][..],
        ),
        prop::sample::select(&["", "", "", "sha256:ab"][..]),
    )
        .prop_map(|(version, digest)| tpb::Dataset {
            version: version.into(),
            digest: digest.into(),
            ..Default::default()
        });
    let dataset = prop_oneof![3 => inline, 1 => stored];
    let input = (
        prop_oneof![9 => dataset.prop_map(Some), 1 => Just(None)],
        prop::sample::select(&["", "Training", "test-1", "validation", "val idation"][..]),
    )
        .prop_map(|(dataset, context)| tpb::DatasetInput {
            dataset,
            context: context.into(),
        });
    prop::collection::vec(input, 1..3).prop_map(|inputs| tpb::LogRunInputsRequest {
        run: String::new(),
        inputs,
        request_id: String::new(),
    })
}

fn create_model_version() -> impl Strategy<Value = rpb::CreateModelVersionRequest> {
    let tensor = (
        prop::sample::select(&["x", "y", "z", ""][..]),
        prop::sample::select(&["float32", "int64", "string", "f32"][..]),
        prop::collection::vec(
            prop_oneof![4 => Just(-1i64), 4 => 1i64..100, 1 => -2i64..1],
            0..3,
        ),
    )
        .prop_map(|(name, dtype, shape)| rpb::TensorSpec {
            name: name.into(),
            dtype: dtype.into(),
            shape,
        });
    (
        prop::sample::select(&["", "experiments/0190a1b2c3d4e5f60718293a4b5c6d7e/runs/0190a1b2c3d4e5f60718293a4b5c6d7f"][..]),
        artifact_path(),
        prop::sample::select(&["", "s3://b/k", "S3://b/../k", "file:///etc/passwd", "https://u@h/x", "hf://", "gs://b/ k"][..]),
        prop::sample::select(&["", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "sha256:AB", "md5:x"][..]),
        prop::sample::select(&["", "ONNX", "sklearn", "pickle"][..]),
        prop::option::of((prop::collection::vec(tensor.clone(), 0..2), prop::collection::vec(tensor, 0..2))),
    )
        .prop_map(|(run, path, uri, digest, format, sig)| rpb::CreateModelVersionRequest {
            parent: "registeredModels/fraud".into(),
            model_version: Some(rpb::ModelVersion {
                source_run: run.into(),
                artifact_path: path,
                source_uri: uri.into(),
                content_digest: digest.into(),
                format: format.into(),
                signature: sig.map(|(inputs, outputs)| rpb::ModelSignature { inputs, outputs }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
}

fn set_model_policy() -> impl Strategy<Value = rpb::SetModelPolicyRequest> {
    let cond = (
        prop::sample::select(&["acc", "acc", "acc", "acc", "acc", ""][..]),
        prop::sample::select(&[">=", "!=", "<", ">=", "<=", "=="][..]),
        prop_oneof![9 => -1e9f64..1e9, 1 => any::<f64>()],
    )
        .prop_map(|(m, op, value)| rpb::MetricCondition {
            metric: m.into(),
            op: op.into(),
            value,
        });
    let rule = (
        prop::sample::select(
            &[
                "*", "prod", "prod", "*", "staging", "*", "prod", "latest", "v2", "Prod",
            ][..],
        ),
        prop::collection::vec(cond, 0..3),
    )
        .prop_map(|(alias, metrics)| rpb::PolicyRule {
            alias: alias.into(),
            metrics,
            ..Default::default()
        });
    (prop::collection::vec(rule, 0..4), any::<bool>())
        .prop_map(|(mut rules, clash)| {
            for (i, r) in rules.iter_mut().enumerate() {
                r.name = if clash && i > 0 {
                    "r0".into()
                } else {
                    format!("r{i}")
                };
            }
            rules
        })
        .prop_map(|rules| rpb::SetModelPolicyRequest {
            policy: Some(rpb::ModelPolicy {
                registered_model: "registeredModels/m".into(),
                rules,
                ..Default::default()
            }),
            request_id: String::new(),
        })
}

fn variant() -> impl Strategy<Value = dpb::Variant> {
    (
        prop::sample::select(&["stable", "canary", "canary-base", "a", "b", "Bad", ""][..]),
        prop_oneof![0i32..=10_000, Just(5_000), Just(10_000), any::<i32>()],
    )
        .prop_map(|(name, weight_bp)| dpb::Variant {
            name: name.into(),
            weight_bp,
            ..Default::default()
        })
}

/// Variants whose weights mostly sum to 100%, with names mostly unique.
fn variants() -> impl Strategy<Value = Vec<dpb::Variant>> {
    let split = (
        prop::collection::vec(0i32..=10_000, 0..4),
        prop::sample::subsequence(vec!["stable", "canary", "canary-base", "a", "b", "c"], 1..5),
    )
        .prop_map(|(mut cuts, names)| {
            cuts.truncate(names.len() - 1);
            cuts.sort_unstable();
            let mut prev = 0;
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let end = cuts.get(i).copied().unwrap_or(10_000);
                out.push(dpb::Variant {
                    name: (*name).into(),
                    weight_bp: end - prev,
                    ..Default::default()
                });
                prev = end;
            }
            out
        });
    prop_oneof![4 => split, 1 => prop::collection::vec(variant(), 0..4)]
}

fn create_deployment() -> impl Strategy<Value = dpb::CreateDeploymentRequest> {
    (variants(), ".{0,8}").prop_map(|(variants, request_id)| dpb::CreateDeploymentRequest {
        deployment: Some(dpb::Deployment {
            registered_model: "registeredModels/m".into(),
            name: "deployments/d".into(),
            ..Default::default()
        }),
        variants,
        shadow: None,
        request_id,
    })
}

fn start_rollout() -> impl Strategy<Value = dpb::StartRolloutRequest> {
    let step = (
        prop_oneof![9 => 1i32..=10_000, 1 => any::<i32>()],
        prop::option::of((
            prop_oneof![9 => 0i64..700_000, 1 => any::<i64>()],
            prop_oneof![9 => 0i32..1_000_000_000, 1 => any::<i32>()],
        )),
    )
        .prop_map(|(weight_bp, bake)| dpb::RolloutStep {
            weight_bp,
            bake: bake.map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
        });
    let guard = (
        prop_oneof![0.0f64..=1.0, any::<f64>()],
        prop_oneof![0.0f64..1e4, any::<f64>()],
        prop_oneof![0i64..1000, any::<i64>()],
    )
        .prop_map(
            |(max_error_rate, max_p99_latency_ms, min_requests)| dpb::Guardrails {
                max_error_rate,
                max_p99_latency_ms,
                min_requests,
            },
        );
    (prop::collection::vec(step, 0..5), prop::option::of(guard)).prop_map(
        |(mut steps, guardrails)| {
            steps.sort_by_key(|s| s.weight_bp);
            steps.dedup_by_key(|s| s.weight_bp);
            dpb::StartRolloutRequest {
                deployment: "deployments/d".into(),
                steps,
                guardrails,
                ..Default::default()
            }
        },
    )
}

fn mvalue() -> impl Strategy<Value = mpb::Value> {
    use mpb::value::Kind;
    prop::option::of(prop_oneof![
        any::<f64>().prop_map(Kind::Number),
        prop::sample::select(&["1", " 2.5 ", "x", "", "NaN", "inf"][..])
            .prop_map(|s| Kind::Category(s.into())),
        any::<bool>().prop_map(Kind::Flag),
    ])
    .prop_map(|kind| mpb::Value { kind })
}

fn ingest_predictions() -> impl Strategy<Value = mpb::IngestPredictionsRequest> {
    let record = (
        prop::collection::hash_map(
            prop::sample::select(&["a", "b", ""][..]).prop_map(String::from),
            mvalue(),
            0..3,
        ),
        prop::option::of(mvalue()),
        timestamp(),
    )
        .prop_map(|(features, prediction, time)| mpb::PredictionRecord {
            features,
            prediction,
            time,
            request_id: "r".into(),
            ..Default::default()
        });
    let number = prop_oneof![9 => -1e6f64..1e6, 1 => any::<f64>()];
    let label = prop_oneof![9 => "[a-z0-9]{0,3}", 1 => prop::sample::select(&["\0", " 1 ", "1e3"][..]).prop_map(String::from)];
    let column = (
        prop::sample::select(&["a", "b", "c", "a", "b", "", ".."][..]),
        prop_oneof![8 => 1i32..4, 1 => 0i32..5],
        prop::collection::vec(number, 3),
        prop::collection::vec(label, 3),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(name, kind, numbers, categories, both)| {
            let numeric = kind == 1;
            mpb::Column {
                name: name.into(),
                kind,
                numbers: if numeric || both { numbers } else { vec![] },
                categories: if numeric && !both { vec![] } else { categories },
            }
        });
    (
        prop::collection::vec(record, 0..4),
        prop::option::of((
            prop::collection::vec(column.clone(), 0..3),
            prop::option::of(column),
        )),
    )
        .prop_map(|(records, columns)| mpb::IngestPredictionsRequest {
            monitor: "monitors/m".into(),
            records,
            columns: columns.map(|(features, prediction)| mpb::PredictionColumns {
                features,
                prediction,
                ..Default::default()
            }),
        })
}

fn create_alert_rule() -> impl Strategy<Value = mpb::CreateAlertRuleRequest> {
    let duration = prop::option::of(
        (
            prop_oneof![9 => 0i64..400_000_000, 1 => any::<i64>()],
            prop_oneof![9 => 0i32..1_000_000_000, 1 => any::<i32>()],
        )
            .prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
    );
    (
        0i32..6,
        duration.clone(),
        duration,
        prop::collection::vec(
            prop::sample::select(&["channels/c", "c", "channels/", "x/y"][..])
                .prop_map(String::from),
            0..3,
        ),
    )
        .prop_map(
            |(comparator, window, hold, channels)| mpb::CreateAlertRuleRequest {
                monitor: "monitors/m".into(),
                rule: Some(mpb::AlertRule {
                    metric: "drift.share".into(),
                    comparator,
                    window,
                    hold,
                    channels,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

fn kind_of(name: &str) -> usize {
    REQUEST_KINDS
        .iter()
        .position(|k| k.ends_with(name))
        .expect("a request kind")
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn proto_conversions_on_bytes(kind in 0u8..16, data in bytes(300)) {
        let mut input = vec![kind];
        input.extend(data);
        proto_conversions(&input);
    }

    #[test]
    fn proto_log_run_data(m in log_run_data()) {
        proto_conversions(&request_input(kind_of(".LogRunDataRequest"), &m));
    }

    #[test]
    fn proto_log_run_inputs(m in log_run_inputs()) {
        proto_conversions(&request_input(kind_of(".LogRunInputsRequest"), &m));
    }

    #[test]
    fn proto_create_model_version(m in create_model_version()) {
        proto_conversions(&request_input(kind_of(".CreateModelVersionRequest"), &m));
    }

    #[test]
    fn proto_set_model_policy(m in set_model_policy()) {
        proto_conversions(&request_input(kind_of(".SetModelPolicyRequest"), &m));
    }

    #[test]
    fn proto_create_deployment(m in create_deployment()) {
        proto_conversions(&request_input(kind_of(".CreateDeploymentRequest"), &m));
    }

    #[test]
    fn proto_start_rollout(m in start_rollout()) {
        proto_conversions(&request_input(kind_of(".StartRolloutRequest"), &m));
    }

    #[test]
    fn proto_ingest_predictions(m in ingest_predictions()) {
        proto_conversions(&request_input(kind_of(".IngestPredictionsRequest"), &m));
    }

    #[test]
    fn proto_create_alert_rule(m in create_alert_rule()) {
        proto_conversions(&request_input(kind_of(".CreateAlertRuleRequest"), &m));
    }
}

#[test]
fn request_kinds_name_real_messages() {
    for (i, name) in REQUEST_KINDS.iter().enumerate() {
        assert!(
            name.starts_with("steward.") && name.ends_with("Request"),
            "{i}: {name}"
        );
    }
    // Every kind handles the empty message.
    for i in 0..REQUEST_KINDS.len() {
        proto_conversions(&[u8::try_from(i).unwrap()]);
    }
}

// ---------------------------------------------------------------------------------------
// Defects the fuzzers found, fixed: regression tests.

/// Runs ordered by a metric: the page token of a page ending on a run whose metric is
/// infinite (or NaN on PostgreSQL) is refused by the next call ("is no longer valid").
#[test]
fn page_token_of_a_run_page_ending_on_an_infinite_metric_decodes() {
    let c = RunCursor {
        keys: vec![Some(SortVal::Num(f64::INFINITY))],
        id: "0190a1b2c3d4e5f60718293a4b5c6d7f".into(),
    };
    let token = codec().encode("scope", &c);
    assert_eq!(codec().decode::<RunCursor>("scope", &token).unwrap(), c);
}

/// Runs ordered by params or tags: values may be 8000 bytes, and a cursor holds up to three;
/// the page token of such a page still decodes (even when every character is escaped).
#[test]
fn page_token_of_a_run_page_ending_on_long_tags_decodes() {
    let c = RunCursor {
        keys: vec![Some(SortVal::Str("\"".repeat(8_000))); 3],
        id: "0190a1b2c3d4e5f60718293a4b5c6d7f".into(),
    };
    let token = codec().encode("scope", &c);
    assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
    assert_eq!(codec().decode::<RunCursor>("scope", &token).unwrap(), c);
}

/// A rollout on a deployment whose variants are named `canary` and `canary-base` makes a
/// revision with two variants named `canary-base`.
#[test]
fn canary_split_keeps_variant_names_unique() {
    let v = |name: &str, weight_bp| Variant {
        name: name.into(),
        weight_bp,
        ..Variant::default()
    };
    let base = [v("canary", 5_000), v("canary-base", 5_000)];
    let out = canary_split(&base, &v("canary", 0), 1_000);
    let mut names: Vec<&str> = out.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), out.len(), "{out:?}");
}

/// `order_by` was parsed without a length limit (its lexer is quadratic in the input), so a
/// multi-megabyte `order_by` cost minutes of CPU; it is now refused by its length, like filters.
#[test]
fn a_long_order_by_is_refused_by_its_length() {
    let long = "(".repeat(400_000);
    let e = steward_common::filter::parse_order_by(
        &long,
        steward_common::filter::Scope::Runs,
        "order_by",
    )
    .unwrap_err();
    assert_eq!(e.reason, "LIMIT_EXCEEDED", "{e:?}");
    assert_eq!(e.violations[0].field, "order_by");
}
