use std::collections::HashMap;
use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_the_embedded_mode() {
    let c = Config::load(None, &HashMap::new(), &Overrides::default()).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert!(c.is_sqlite());
    assert!(c.database_url.contains("steward-data/steward.db"));
    assert!(c.redis_url.is_none() && c.s3.is_none());
}

#[test]
fn layers_override_in_order() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        f,
        "listen = \"127.0.0.1:1000\"\ndata_dir = \"/from-file\"\nredis_url = \"redis://file\""
    )
    .unwrap();
    let e = env(&[
        ("STEWARD_LISTEN", "127.0.0.1:2000"),
        ("STEWARD_S3_BUCKET", "my-bucket"),
    ]);
    let o = Overrides {
        listen: Some("127.0.0.1:3000".into()),
        ..Default::default()
    };
    let c = Config::load(Some(f.path()), &e, &o).unwrap();
    assert_eq!(c.listen.port(), 3000, "flag wins");
    assert_eq!(
        c.data_dir,
        std::path::PathBuf::from("/from-file"),
        "file value kept"
    );
    assert_eq!(c.redis_url.as_deref(), Some("redis://file"));
    assert_eq!(c.s3.unwrap().region, "us-east-1");
}

#[test]
fn bad_values_say_what_to_fix() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("STEWARD_DATABASE_URL", "mysql://x")], "database_url"),
        (&[("STEWARD_LISTEN", "nope")], "listen"),
        (&[("STEWARD_S3_BUCKET", "Bad_Bucket")], "s3_bucket"),
        (
            &[("STEWARD_S3_PATH_STYLE", "maybe")],
            "STEWARD_S3_PATH_STYLE",
        ),
        (&[("STEWARD_PAGE_TOKEN_KEY", "short")], "page_token_key"),
        (
            &[("STEWARD_DATABSE_URL", "sqlite://x")],
            "STEWARD_DATABSE_URL",
        ),
        (
            &[
                ("STEWARD_S3_BUCKET", "ok-bucket"),
                ("STEWARD_S3_ACCESS_KEY_ID", "a"),
            ],
            "s3_access_key_id",
        ),
    ];
    for (pairs, key) in cases {
        let err = Config::load(None, &env(pairs), &Overrides::default()).unwrap_err();
        assert_eq!(&err.key, key, "{pairs:?}: {err}");
        assert!(!err.message.is_empty());
    }
}

#[test]
fn unknown_file_keys_are_rejected() {
    let err = FileConfig::parse("databse_url = \"x\"").unwrap_err();
    assert!(err.message.contains("databse_url"), "{err}");
}

#[test]
fn secrets_are_not_debug_printed() {
    let e = env(&[
        ("STEWARD_S3_BUCKET", "b-b-b"),
        ("STEWARD_S3_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("STEWARD_S3_SECRET_ACCESS_KEY", "supersecret"),
    ]);
    let c = Config::load(None, &e, &Overrides::default()).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("supersecret") && !dbg.contains("AKIAEXAMPLE"),
        "{dbg}"
    );
}

#[test]
fn urls_are_redacted() {
    assert_eq!(
        redact_url("postgres://u:pw@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
}

#[test]
fn deployment_settings_have_defaults_and_are_checked() {
    let c = Config::load(None, &HashMap::new(), &Overrides::default()).unwrap();
    assert_eq!(
        (
            c.decision_sample_rate,
            c.decision_input_retention_days,
            c.rollout_tick_ms
        ),
        (0.01, 30, 500)
    );
    let c = Config::load(
        None,
        &env(&[
            ("STEWARD_DECISION_SAMPLE_RATE", "1"),
            ("STEWARD_ROLLOUT_TICK_MS", "50"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!((c.decision_sample_rate, c.rollout_tick_ms), (1.0, 50));
    for (k, v) in [
        ("STEWARD_DECISION_SAMPLE_RATE", "1.5"),
        ("STEWARD_DECISION_INPUT_RETENTION_DAYS", "0"),
        ("STEWARD_ROLLOUT_TICK_MS", "1"),
    ] {
        let e = Config::load(None, &env(&[(k, v)]), &Overrides::default()).unwrap_err();
        assert!(k.to_ascii_lowercase().ends_with(&e.key), "{k}: {e}");
    }
}

#[test]
fn the_metrics_endpoint_is_off_unless_given_an_address() {
    let c = Config::load(None, &HashMap::new(), &Overrides::default()).unwrap();
    assert_eq!(c.metrics_listen, None);
    let c = Config::load(
        None,
        &env(&[("STEWARD_METRICS_LISTEN", "0.0.0.0:9464")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.metrics_listen, Some("0.0.0.0:9464".parse().unwrap()));
    let c = Config::load(
        None,
        &env(&[("STEWARD_METRICS_LISTEN", "")]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.metrics_listen, None, "empty turns it off");
    let e = Config::load(
        None,
        &env(&[("STEWARD_METRICS_LISTEN", "9464")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(e.key, "metrics_listen", "{e}");
}

#[test]
fn auth_is_open_only_on_loopback_unless_set() {
    let load =
        |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &Overrides::default()).unwrap();
    assert!(
        load(&[]).auth_open(),
        "steward up's default address is loopback"
    );
    assert!(load(&[("STEWARD_LISTEN", "[::1]:50051")]).auth_open());
    assert!(!load(&[("STEWARD_LISTEN", "0.0.0.0:50051")]).auth_open());
    assert!(!load(&[("STEWARD_LISTEN", "10.0.0.5:50051")]).auth_open());
    assert!(!load(&[("STEWARD_AUTH", "required")]).auth_open());
    assert!(
        load(&[
            ("STEWARD_LISTEN", "0.0.0.0:1"),
            ("STEWARD_AUTH", "Disabled")
        ])
        .auth_open()
    );
    let err = Config::load(
        None,
        &env(&[("STEWARD_AUTH", "maybe")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(err.key, "auth");
}

#[test]
fn tls_and_limit_settings_are_checked() {
    let bad = |pairs: &[(&str, &str)]| {
        Config::load(None, &env(pairs), &Overrides::default())
            .unwrap_err()
            .key
    };
    assert_eq!(bad(&[("STEWARD_TLS_CERT", "c.pem")]), "tls_cert");
    assert_eq!(bad(&[("STEWARD_TLS_KEY", "k.pem")]), "tls_cert");
    assert_eq!(bad(&[("STEWARD_TLS_CLIENT_CA", "ca.pem")]), "tls_client_ca");
    assert_eq!(
        bad(&[("STEWARD_RATE_LIMIT_PER_S", "-1")]),
        "rate_limit_per_s"
    );
    assert_eq!(
        bad(&[("STEWARD_RATE_LIMIT_PER_S", "NaN")]),
        "rate_limit_per_s"
    );
    assert_eq!(
        bad(&[
            ("STEWARD_RATE_LIMIT_PER_S", "5"),
            ("STEWARD_RATE_LIMIT_BURST", "0")
        ]),
        "rate_limit_burst"
    );
    assert_eq!(
        bad(&[("STEWARD_STREAM_IDLE_TIMEOUT_MS", "5")]),
        "stream_idle_timeout_ms"
    );
    assert_eq!(
        bad(&[("STEWARD_CONCURRENCY_LIMIT_PER_CONNECTION", "0")]),
        "concurrency_limit_per_connection"
    );
    let c = Config::load(
        None,
        &env(&[
            ("STEWARD_RATE_LIMIT_PER_S", "2.5"),
            ("STEWARD_SERVICE_TOKEN", "  stw_x  "),
            ("STEWARD_TLS_CERT", "c.pem"),
            ("STEWARD_TLS_KEY", "k.pem"),
            ("STEWARD_TLS_CLIENT_CA", "ca.pem"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        c.rate_limit_burst, 5,
        "the burst defaults to twice the rate"
    );
    assert_eq!(
        c.service_token.as_ref().map(|s| s.0.as_str()),
        Some("stw_x")
    );
    assert_eq!(format!("{:?}", c.service_token), "Some(<redacted>)");
    let empty = Config::load(
        None,
        &env(&[("STEWARD_SERVICE_TOKEN", "")]),
        &Overrides::default(),
    )
    .unwrap();
    assert!(empty.service_token.is_none(), "an empty token is no token");
}
