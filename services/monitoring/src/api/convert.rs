//! Proto <-> domain conversions (validation of shapes happens here, once).

use std::collections::HashMap;

use steward_common::Error;
use steward_grpc::ts;
use steward_proto::monitoring as pb;

use crate::app::ingest::{ColumnsIn, Record};
use crate::app::monitors::FeatureInput;
use crate::domain::columns::Value;
use crate::domain::perf::Performance;
use crate::domain::report::{DriftReport, FeatureDrift};
use crate::domain::rules::Comparator;
use crate::domain::{
    Baseline, BaselineFeature, Column, DriftMethod, FeatureKind, Monitor, Task, WindowSize,
};
use crate::store::alerts::{AlertRow, FIRING};
use crate::store::channels::ChannelRow;
use crate::store::windows::{CLOSED, WindowRow};

/// An id of `{prefix}/{id}` (or a bare id): 1-128 letters, digits, '.', '_' or '-'.
pub fn id_of(s: &str, prefix: &str, field: &str) -> Result<String, Error> {
    let id = s
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(s);
    check_id(id, field).map_err(|_| {
        Error::invalid_field(
            field,
            format!(
                "{:?} is not of the form {prefix}/{{id}} (1-128 letters, digits, '.', '_' or '-')",
                s.chars().take(80).collect::<String>()
            ),
        )
    })?;
    Ok(id.to_string())
}

/// An optional new id.
pub fn new_id(s: &str, field: &str) -> Result<Option<String>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    check_id(s, field)?;
    Ok(Some(s.to_string()))
}

fn check_id(id: &str, field: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

/// A value.
pub fn value(v: &Option<pb::Value>) -> Value {
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(pb::value::Kind::Number(x)) => Value::Num(*x),
        Some(pb::value::Kind::Category(s)) => Value::Cat(s.clone()),
        Some(pb::value::Kind::Flag(b)) => Value::Cat(b.to_string()),
        None => Value::Missing,
    }
}

/// A feature kind (required).
pub fn kind(k: i32, field: &str) -> Result<FeatureKind, Error> {
    match pb::FeatureKind::try_from(k) {
        Ok(pb::FeatureKind::Numeric) => Ok(FeatureKind::Numeric),
        Ok(pb::FeatureKind::Categorical) => Ok(FeatureKind::Categorical),
        Ok(pb::FeatureKind::Binary) => Ok(FeatureKind::Binary),
        _ => Err(Error::invalid_field(
            field,
            "NUMERIC, CATEGORICAL or BINARY",
        )),
    }
}

fn kind_pb(k: FeatureKind) -> i32 {
    match k {
        FeatureKind::Numeric => pb::FeatureKind::Numeric as i32,
        FeatureKind::Categorical => pb::FeatureKind::Categorical as i32,
        FeatureKind::Binary => pb::FeatureKind::Binary as i32,
    }
}

/// A drift method (None for UNSPECIFIED).
pub fn method(m: i32, field: &str) -> Result<Option<DriftMethod>, Error> {
    Ok(match pb::DriftMethod::try_from(m) {
        Ok(pb::DriftMethod::Unspecified) => None,
        Ok(pb::DriftMethod::Ks) => Some(DriftMethod::Ks),
        Ok(pb::DriftMethod::ChiSquared) => Some(DriftMethod::ChiSquared),
        Ok(pb::DriftMethod::ZTest) => Some(DriftMethod::ZTest),
        Ok(pb::DriftMethod::Wasserstein) => Some(DriftMethod::Wasserstein),
        Ok(pb::DriftMethod::JensenShannon) => Some(DriftMethod::JensenShannon),
        Ok(pb::DriftMethod::Psi) => Some(DriftMethod::Psi),
        Ok(pb::DriftMethod::LInfinity) => Some(DriftMethod::LInfinity),
        Err(_) => return Err(Error::invalid_field(field, "unknown drift method")),
    })
}

fn method_pb(m: DriftMethod) -> i32 {
    (match m {
        DriftMethod::Ks => pb::DriftMethod::Ks,
        DriftMethod::ChiSquared => pb::DriftMethod::ChiSquared,
        DriftMethod::ZTest => pb::DriftMethod::ZTest,
        DriftMethod::Wasserstein => pb::DriftMethod::Wasserstein,
        DriftMethod::JensenShannon => pb::DriftMethod::JensenShannon,
        DriftMethod::Psi => pb::DriftMethod::Psi,
        DriftMethod::LInfinity => pb::DriftMethod::LInfinity,
    }) as i32
}

/// A task.
pub fn task(t: i32) -> Result<Task, Error> {
    Ok(match pb::Task::try_from(t) {
        Ok(pb::Task::Unspecified) => Task::Unspecified,
        Ok(pb::Task::Classification) => Task::Classification,
        Ok(pb::Task::Regression) => Task::Regression,
        Err(_) => return Err(Error::invalid_field("monitor.task", "unknown task")),
    })
}

fn task_pb(t: Task) -> i32 {
    (match t {
        Task::Unspecified => pb::Task::Unspecified,
        Task::Classification => pb::Task::Classification,
        Task::Regression => pb::Task::Regression,
    }) as i32
}

/// A duration in ms (`field` names it).
pub fn duration_ms(d: &Option<prost_types::Duration>, field: &str) -> Result<i64, Error> {
    match d {
        None => Ok(0),
        Some(d) if d.seconds < 0 || d.nanos < 0 || d.seconds > 10 * 365 * 86_400 => Err(
            Error::invalid_field(field, "must be between 0 and 10 years"),
        ),
        Some(d) => Ok(d.seconds * 1000 + i64::from(d.nanos) / 1_000_000),
    }
}

fn duration_pb(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// The window of a monitor.
pub fn window(w: &Option<pb::Window>) -> Result<WindowSize, Error> {
    match w.as_ref().and_then(|w| w.size.as_ref()) {
        Some(pb::window::Size::Duration(d)) => Ok(WindowSize::Time {
            ms: duration_ms(&Some(*d), "monitor.window.duration")?,
        }),
        Some(pb::window::Size::Count(n)) => Ok(WindowSize::Count { rows: *n }),
        None => Err(Error::invalid_field(
            "monitor.window",
            "set a duration or a count",
        )),
    }
}

/// Features as the caller gives them.
pub fn features(fs: &[pb::FeatureSpec]) -> Result<Vec<FeatureInput>, Error> {
    fs.iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(FeatureInput {
                name: f.name.clone(),
                input: f.input.clone(),
                method: method(f.method, &format!("monitor.features[{i}].method"))?,
                threshold: (f.threshold != 0.0).then_some(f.threshold),
            })
        })
        .collect()
}

fn baseline_feature(f: &BaselineFeature) -> pb::BaselineFeature {
    pb::BaselineFeature {
        name: f.name.clone(),
        kind: kind_pb(f.kind),
        count: f.count,
        missing: f.missing,
        exact: f.exact,
        mean: f.mean,
        stddev: f.stddev,
        min: f.min,
        max: f.max,
        bin_edges: f.bin_edges.clone(),
        bin_counts: f.bin_counts.clone(),
        categories: f.categories.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

/// A baseline.
pub fn baseline(b: &Baseline) -> pb::Baseline {
    pb::Baseline {
        name: format!("baselines/{}", b.id),
        model_version: b.model_version.clone(),
        source: b.source.clone(),
        num_rows: b.num_rows,
        features: b.features.iter().map(baseline_feature).collect(),
        prediction: b.prediction.as_ref().map(baseline_feature),
        creator: b.creator.clone(),
        create_time: Some(ts(b.create_time)),
    }
}

/// A monitor.
pub fn monitor(m: &Monitor) -> pb::Monitor {
    pb::Monitor {
        name: format!("monitors/{}", m.id),
        description: m.description.clone(),
        deployment: if m.deployment.is_empty() {
            String::new()
        } else {
            format!("deployments/{}", m.deployment)
        },
        baseline: format!("baselines/{}", m.baseline),
        window: Some(pb::Window {
            size: Some(match m.spec.window {
                WindowSize::Time { ms } => pb::window::Size::Duration(duration_pb(ms)),
                WindowSize::Count { rows } => pb::window::Size::Count(rows),
            }),
        }),
        features: m
            .spec
            .features
            .iter()
            .map(|f| pb::FeatureSpec {
                name: f.name.clone(),
                input: f.input.clone(),
                method: f.method.map(method_pb).unwrap_or(0),
                threshold: f.threshold.unwrap_or(0.0),
            })
            .collect(),
        drift_share: m.spec.drift_share,
        fdr_correction: m.spec.fdr_correction,
        max_exact_rows: m.spec.max_exact_rows,
        task: task_pb(m.spec.task),
        positive_label: m.spec.positive_label.clone(),
        prediction_output: m.spec.prediction_output.clone(),
        retrain_channel: if m.spec.retrain_channel.is_empty() {
            String::new()
        } else {
            format!("channels/{}", m.spec.retrain_channel)
        },
        create_time: Some(ts(m.create_time)),
        update_time: Some(ts(m.update_time)),
        etag: m.revision.to_string(),
    }
}

/// A column of values (`field` names it): its kind and values. Names are keys; numbers must
/// be finite or NaN (missing); labels at most 4096 bytes without NUL.
pub fn column(c: &pb::Column, field: &str) -> Result<(FeatureKind, Column), Error> {
    steward_common::validate::key(
        &format!("{field}.name"),
        &c.name,
        &steward_common::limits::Limits::default(),
    )?;
    let kind = kind(c.kind, &format!("{field}.kind"))?;
    let col = match kind {
        FeatureKind::Numeric => {
            if !c.categories.is_empty() {
                return Err(Error::invalid_field(
                    format!("{field}.categories"),
                    "a NUMERIC column holds numbers",
                ));
            }
            if c.numbers.iter().any(|x| x.is_infinite()) {
                return Err(Error::invalid_field(
                    format!("{field}.numbers"),
                    "must be finite (NaN marks a missing value)",
                ));
            }
            Column::Num(c.numbers.clone())
        }
        _ => {
            if !c.numbers.is_empty() {
                return Err(Error::invalid_field(
                    format!("{field}.numbers"),
                    "a CATEGORICAL or BINARY column holds categories",
                ));
            }
            for (j, v) in c.categories.iter().enumerate() {
                steward_common::validate::text(&format!("{field}.categories[{j}]"), v, 4096)?;
            }
            Column::Cat(
                c.categories
                    .iter()
                    .map(|v| (!v.is_empty()).then(|| v.clone()))
                    .collect(),
            )
        }
    };
    Ok((kind, col))
}

/// Predictions given as columns.
pub fn prediction_columns(c: &pb::PredictionColumns) -> Result<ColumnsIn, Error> {
    let mut features = Vec::with_capacity(c.features.len());
    for (i, f) in c.features.iter().enumerate() {
        let (_, col) = column(f, &format!("columns.features[{i}]"))?;
        features.push((f.name.clone(), col));
    }
    let prediction = match &c.prediction {
        Some(p) => Some(column(p, "columns.prediction")?.1),
        None => None,
    };
    Ok(ColumnsIn {
        request_ids: c.request_ids.clone(),
        times: c.times_ms.clone(),
        features,
        prediction,
        variant: c.variant.clone(),
        model_version: c.model_version.clone(),
        latency_us: c.latency_us.clone(),
        errors: c.errors.clone(),
    })
}

/// Predictions from the wire.
pub fn records(rs: &[pb::PredictionRecord]) -> Result<Vec<Record>, Error> {
    let now = steward_common::time::now_ms();
    rs.iter()
        .enumerate()
        .map(|(i, r)| {
            let time = match &r.time {
                Some(t) => steward_grpc::from_ts(t, &format!("records[{i}].time"))?,
                None => now,
            };
            let features: HashMap<String, Value> = r
                .features
                .iter()
                .map(|(k, v)| (k.clone(), value(&Some(v.clone()))))
                .collect();
            Ok(Record {
                request_id: r.request_id.clone(),
                time,
                features,
                prediction: value(&r.prediction),
                variant: r.variant.clone(),
                model_version: r.model_version.clone(),
                latency_us: r.latency_us,
                error: r.error,
            })
        })
        .collect()
}

/// A window.
pub fn window_info(w: &WindowRow) -> pb::WindowInfo {
    pb::WindowInfo {
        name: format!("monitors/{}/windows/{}", w.monitor, w.number),
        number: w.number,
        start_time: Some(ts(w.start_time)),
        end_time: (w.end_time != i64::MAX).then(|| ts(w.end_time)),
        rows: w.rows,
        state: if w.state == CLOSED { "CLOSED" } else { "OPEN" }.into(),
        dataset_drift: w.dataset_drift,
        drift_share: w.drift_share,
    }
}

fn feature_drift(f: &FeatureDrift) -> pb::FeatureDrift {
    pb::FeatureDrift {
        name: f.name.clone(),
        kind: kind_pb(f.kind),
        method: method_pb(f.method),
        score: f.score,
        threshold: f.threshold,
        drifted: f.drifted,
        adjusted_score: f.adjusted_score.unwrap_or(f.score),
        reference_rows: f.reference_rows,
        current_rows: f.current_rows,
        computation: f.computation.clone(),
        missing_rate: f.missing_rate,
        new_categories: f.new_categories.clone(),
        type_mismatches: f.type_mismatches,
    }
}

/// A drift report.
pub fn report(monitor: &str, w: &WindowRow, r: &DriftReport) -> pb::DriftReport {
    pb::DriftReport {
        monitor: format!("monitors/{monitor}"),
        window: Some(window_info(w)),
        features: r.features.iter().map(feature_drift).collect(),
        prediction: r.prediction.as_ref().map(feature_drift),
        drifted_features: r.drifted_features as i32,
        drift_share: r.drift_share,
        drift_share_threshold: r.drift_share_threshold,
        dataset_drift: r.dataset_drift,
        missing_features: r.missing_features.clone(),
        compute_time: Some(ts(w.close_time)),
        compute_ms: r.compute_ms,
    }
}

/// A variant's performance.
pub fn performance(p: &Performance) -> pb::VariantPerformance {
    pb::VariantPerformance {
        variant: p.variant.clone(),
        predictions: p.predictions,
        labelled: p.labelled,
        accuracy: p.accuracy,
        precision: p.precision,
        recall: p.recall,
        f1: p.f1,
        roc_auc: p.roc_auc,
        log_loss: p.log_loss,
        mae: p.mae,
        rmse: p.rmse,
        mape: p.mape,
        latency_p50_ms: p.latency_p50_ms,
        latency_p95_ms: p.latency_p95_ms,
        latency_p99_ms: p.latency_p99_ms,
        error_rate: p.error_rate,
        kpis: p.kpis.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

/// A comparator (required).
pub fn comparator(c: i32) -> Result<Comparator, Error> {
    match pb::Comparator::try_from(c) {
        Ok(pb::Comparator::Greater) => Ok(Comparator::Greater),
        Ok(pb::Comparator::GreaterOrEqual) => Ok(Comparator::GreaterOrEqual),
        Ok(pb::Comparator::Less) => Ok(Comparator::Less),
        Ok(pb::Comparator::LessOrEqual) => Ok(Comparator::LessOrEqual),
        _ => Err(Error::invalid_field(
            "rule.comparator",
            "GREATER, GREATER_OR_EQUAL, LESS or LESS_OR_EQUAL",
        )),
    }
}

/// A rule.
pub fn rule(r: &crate::domain::rules::Rule) -> pb::AlertRule {
    pb::AlertRule {
        name: format!("monitors/{}/rules/{}", r.monitor, r.id),
        metric: r.metric.clone(),
        comparator: (match r.comparator {
            Comparator::Greater => pb::Comparator::Greater,
            Comparator::GreaterOrEqual => pb::Comparator::GreaterOrEqual,
            Comparator::Less => pb::Comparator::Less,
            Comparator::LessOrEqual => pb::Comparator::LessOrEqual,
        }) as i32,
        threshold: r.threshold,
        window: (r.window_ms > 0).then(|| duration_pb(r.window_ms)),
        hold: (r.hold_ms > 0).then(|| duration_pb(r.hold_ms)),
        severity: r.severity.clone(),
        channels: r.channels.iter().map(|c| format!("channels/{c}")).collect(),
        create_time: Some(ts(r.create_time)),
    }
}

/// An alert.
pub fn alert(a: &AlertRow) -> pb::Alert {
    pb::Alert {
        name: format!("alerts/{}", a.id),
        rule: format!("monitors/{}/rules/{}", a.monitor, a.rule),
        monitor: format!("monitors/{}", a.monitor),
        deployment: if a.deployment.is_empty() {
            String::new()
        } else {
            format!("deployments/{}", a.deployment)
        },
        state: if a.state == FIRING {
            "FIRING"
        } else {
            "RESOLVED"
        }
        .into(),
        severity: a.severity.clone(),
        metric: a.metric.clone(),
        value: a.value,
        threshold: a.threshold,
        reason: a.reason.clone(),
        fire_time: Some(ts(a.fire_time)),
        resolve_time: a.resolve_time.map(ts),
    }
}

/// A channel (never its secret).
pub fn channel(c: &ChannelRow) -> pb::Channel {
    pb::Channel {
        name: format!("channels/{}", c.id),
        url: c.url.clone(),
        secret: String::new(),
        allow_private: c.allow_private,
        create_time: Some(ts(c.create_time)),
    }
}

/// Parses `field = "value" [AND field = "value" ...]` over `allowed` fields.
pub fn simple_filter(f: &str, allowed: &[&str]) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    if f.trim().is_empty() {
        return Ok(out);
    }
    if f.len() > 1024 {
        return Err(Error::limit("filter", "at most 1024 bytes"));
    }
    for part in f.split(" AND ") {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            Error::invalid_field("filter", format!("expected field = \"value\" in {part:?}"))
        })?;
        let k = k.trim();
        let v = v.trim();
        if !allowed.contains(&k) {
            return Err(Error::invalid_field(
                "filter",
                format!("unknown field {k:?} (one of {})", allowed.join(", ")),
            ));
        }
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
            .ok_or_else(|| Error::invalid_field("filter", format!("{k}: quote the value")))?;
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Error::invalid_field("filter", format!("{k} appears twice")));
        }
    }
    Ok(out)
}
