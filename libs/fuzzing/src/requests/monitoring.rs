//! Monitoring requests: prediction ingest, monitors, baselines and alert rules.

use steward_common::validate;
use steward_grpc::MAX_MS;
use steward_monitoring::api::convert::{
    column, comparator, duration_ms, features, id_of, kind, new_id, prediction_columns, records,
    task, value, window,
};
use steward_monitoring::domain::columns::Value;
use steward_monitoring::domain::{Chunk, Column, FeatureKind, WindowSize};
use steward_proto::monitoring as pb;

use crate::check;

/// Longest duration accepted (10 years) in ms, plus what the nanos can add.
const MAX_DURATION_MS: i64 = 10 * 365 * 86_400_000 + 2_147;

/// `IngestPredictions`: monitor name, records and columns. Accepted records keep every row
/// and feature, with times in 1970..9999; accepted columns keep every feature, numeric ones
/// without infinities. Rows stored as a chunk (records pushed row by row, or columns of one
/// length) come back from the chunk encoding bit for bit.
pub(super) fn ingest_predictions(r: &pb::IngestPredictionsRequest) {
    id(&r.monitor, "monitors", "monitor");
    match records(&r.records) {
        Ok(rs) => {
            assert_eq!(rs.len(), r.records.len());
            for (rec, wire) in rs.iter().zip(&r.records) {
                assert_eq!(rec.features.len(), wire.features.len());
                if wire.time.is_some() {
                    assert!((0..=MAX_MS).contains(&rec.time), "{}", rec.time);
                }
                // Debug text, so that NaN equals NaN.
                let (got, want) = (&rec.prediction, value(&wire.prediction));
                assert_eq!(format!("{got:?}"), format!("{want:?}"));
            }
            // Rows as the ingest stores them: features in a fixed order, then the prediction.
            let mut names: Vec<&String> =
                r.records.iter().flat_map(|x| x.features.keys()).collect();
            names.sort();
            names.dedup();
            names.truncate(16);
            for k in [FeatureKind::Numeric, FeatureKind::Categorical] {
                let mut chunk = Chunk::with_kinds(&vec![k; names.len() + 1]);
                for rec in &rs {
                    let mut row: Vec<&Value> = names
                        .iter()
                        .map(|n| rec.features.get(*n).unwrap_or(&Value::Missing))
                        .collect();
                    row.push(&rec.prediction);
                    chunk.push_row(row);
                }
                assert_eq!(chunk.rows, rs.len());
                assert!(chunk.columns.iter().all(|c| c.len() == rs.len()));
                chunk_round_trip(&chunk);
            }
        }
        Err(e) => check::invalid_under(&e, "records"),
    }
    if let Some(c) = &r.columns {
        match prediction_columns(c) {
            Ok(cols) => {
                assert_eq!(cols.features.len(), c.features.len());
                for ((name, col), wire) in cols.features.iter().zip(&c.features) {
                    assert_eq!(name, &wire.name);
                    column_matches(col, wire);
                }
                let mut all: Vec<Column> = cols.features.iter().map(|(_, c)| c.clone()).collect();
                all.extend(cols.prediction.clone());
                let rows = all.first().map_or(0, Column::len);
                if all.iter().all(|c| c.len() == rows) && !all.is_empty() {
                    chunk_round_trip(&Chunk {
                        rows,
                        mismatches: vec![0; all.len()],
                        columns: all,
                    });
                }
            }
            Err(e) => check::invalid_under(&e, "columns"),
        }
    }
}

/// An accepted column holds the wire values: numbers (finite or NaN) or labels (`""` missing).
fn column_matches(col: &Column, wire: &pb::Column) {
    match col {
        Column::Num(v) => {
            assert!(crate::check::same_f64s(v, &wire.numbers));
            assert!(v.iter().all(|x| !x.is_infinite()));
            assert!(wire.categories.is_empty());
        }
        Column::Cat(v) => {
            assert_eq!(v.len(), wire.categories.len());
            for (got, given) in v.iter().zip(&wire.categories) {
                assert_eq!(
                    got.as_deref(),
                    (!given.is_empty()).then_some(given.as_str())
                );
            }
            assert!(wire.numbers.is_empty());
        }
    }
}

/// A chunk survives its storage encoding.
fn chunk_round_trip(chunk: &Chunk) {
    let back = Chunk::decode(&chunk.encode()).expect("a chunk we encoded decodes");
    assert_eq!(back.rows, chunk.rows);
    assert_eq!(back.mismatches, chunk.mismatches);
    assert_eq!(back.columns.len(), chunk.columns.len());
    for (a, b) in back.columns.iter().zip(&chunk.columns) {
        match (a, b) {
            (Column::Num(x), Column::Num(y)) => assert!(crate::check::same_f64s(x, y)),
            (Column::Cat(x), Column::Cat(y)) => assert_eq!(x, y),
            _ => panic!("a column changed kind in its chunk"),
        }
    }
}

/// `CreateMonitor`: id, description, deployment, baseline, window, features, task and the
/// retrain channel. An accepted window is a duration of 0 to 10 years or a count; accepted
/// features keep their names, with no threshold for 0.
pub(super) fn create_monitor(r: &pb::CreateMonitorRequest) {
    new_ident(&r.monitor_id, "monitor_id");
    let Some(m) = &r.monitor else {
        return;
    };
    if let Err(e) = validate::text("monitor.description", &m.description, 10_000) {
        check::invalid(&e, "monitor.description");
    }
    if !m.deployment.is_empty() {
        id(&m.deployment, "deployments", "monitor.deployment");
    }
    id(&m.baseline, "baselines", "monitor.baseline");
    if !m.retrain_channel.is_empty() {
        id(&m.retrain_channel, "channels", "monitor.retrain_channel");
    }
    match window(&m.window) {
        Ok(WindowSize::Time { ms }) => assert!((0..=MAX_DURATION_MS).contains(&ms), "{ms}"),
        Ok(WindowSize::Count { rows }) => {
            assert_eq!(
                Some(pb::window::Size::Count(rows)),
                m.window.and_then(|w| w.size)
            );
        }
        Err(e) => check::invalid_under(&e, "monitor.window"),
    }
    match features(&m.features) {
        Ok(fs) => {
            assert_eq!(fs.len(), m.features.len());
            for (f, wire) in fs.iter().zip(&m.features) {
                assert_eq!(f.name, wire.name);
                assert_eq!(f.threshold.is_none(), wire.threshold == 0.0);
                assert_eq!(f.method.is_none(), wire.method == 0);
            }
        }
        Err(e) => check::invalid_under(&e, "monitor.features"),
    }
    if let Err(e) = task(m.task) {
        check::invalid(&e, "monitor.task");
    }
}

/// `CreateBaseline`: id, model version and the reference sample's columns (each a valid key
/// with values of its kind), or a dataset profile of a run.
pub(super) fn create_baseline(r: &pb::CreateBaselineRequest) {
    new_ident(&r.baseline_id, "baseline_id");
    if let Err(e) = validate::text("model_version", &r.model_version, 300) {
        check::invalid(&e, "model_version");
    }
    match &r.source {
        Some(pb::create_baseline_request::Source::Sample(s)) => {
            for (i, c) in s.columns.iter().enumerate() {
                let field = format!("sample.columns[{i}]");
                match column(c, &field) {
                    Ok((k, col)) => {
                        assert_eq!(kind(c.kind, "k").ok(), Some(k));
                        assert_eq!(matches!(col, Column::Num(_)), k == FeatureKind::Numeric);
                        column_matches(&col, c);
                        // A sample column converts to every kind without losing rows.
                        for to in [FeatureKind::Numeric, FeatureKind::Categorical] {
                            let (conv, mask) = col.clone().into_kind(to);
                            assert_eq!(conv.len(), col.len());
                            assert!(mask.is_empty() || mask.len() == col.len());
                        }
                    }
                    Err(e) => check::invalid_under(&e, &field),
                }
            }
        }
        Some(pb::create_baseline_request::Source::Profile(p)) => {
            let limits = steward_common::limits::Limits::default();
            if let Err(e) = validate::key("profile.dataset", &p.dataset, &limits) {
                check::invalid(&e, "profile.dataset");
            }
        }
        None => {}
    }
}

/// `CreateAlertRule`: monitor, rule id, metric, comparator, window, hold and channels.
pub(super) fn create_alert_rule(r: &pb::CreateAlertRuleRequest) {
    id(&r.monitor, "monitors", "monitor");
    new_ident(&r.rule_id, "rule_id");
    let Some(rule) = &r.rule else {
        return;
    };
    if let Err(e) = validate::text("rule.metric", &rule.metric, 300) {
        check::invalid(&e, "rule.metric");
    }
    if let Err(e) = comparator(rule.comparator) {
        check::invalid(&e, "rule.comparator");
    }
    for (d, field) in [(&rule.window, "rule.window"), (&rule.hold, "rule.hold")] {
        match duration_ms(d, field) {
            Ok(ms) => assert!((0..=MAX_DURATION_MS).contains(&ms), "{ms}"),
            Err(e) => check::invalid(&e, field),
        }
    }
    for (i, ch) in rule.channels.iter().enumerate() {
        id(ch, "channels", &format!("rule.channels[{i}]"));
    }
}

/// `{collection}/{id}` or a bare id.
fn id(s: &str, collection: &str, field: &str) {
    match id_of(s, collection, field) {
        Ok(id) => assert!(s == id || s == format!("{collection}/{id}"), "{s:?}"),
        Err(e) => check::invalid(&e, field),
    }
}

fn new_ident(s: &str, field: &str) {
    match new_id(s, field) {
        Ok(None) => assert!(s.is_empty()),
        Ok(Some(id)) => assert_eq!(id, s),
        Err(e) => check::invalid(&e, field),
    }
}
