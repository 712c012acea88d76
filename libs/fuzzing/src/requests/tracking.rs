//! Tracking requests: run data, run inputs, runs, experiments and run search.

use std::collections::{HashMap, HashSet};

use prost::Message;
use prost_types::Timestamp;
use steward_common::limits::Limits;
use steward_common::names::{ExperimentName, RunName};
use steward_common::validate;
use steward_proto::tracking as pb;
use steward_tracking::api::convert::{
    self, MAX_MS, dataset_input_from, from_ts, run_data, status_from, tag_map, ts,
};
use steward_tracking::domain::STORED_DATASET;
use steward_tracking::domain::datasets::parse_version_name;

use crate::check;

/// The "now" conversions fill in for missing timestamps.
pub(super) const NOW: i64 = 1_767_225_600_000;

/// `LogRunData`: the run name and [`run_data`]. An accepted batch has, per metric key, one
/// series whose steps, timestamps and values have the same length; every point of the request
/// in it; timestamps in 1970..9999; unique metric, param and tag keys; params as given
/// (repeats with the same value allowed); for tags, the last value of a key.
pub(super) fn log_run_data(r: &pb::LogRunDataRequest) {
    run_name(&r.run, "run");
    let limits = Limits::default();
    let d = match run_data(
        &r.metrics,
        &r.metric_series,
        &r.params,
        &r.tags,
        &limits,
        NOW,
    ) {
        Ok(d) => d,
        Err(e) => {
            let field = &e.violations.first().expect("a field").field;
            let prefix = ["metrics", "metric_series", "params", "tags"]
                .into_iter()
                .find(|p| field.starts_with(p))
                .unwrap_or_else(|| panic!("unexpected field in {e:?}"));
            check::invalid_under(&e, prefix);
            return;
        }
    };
    let points: usize = d.metrics.iter().map(|(_, s)| s.len()).sum();
    let given = r.metrics.len()
        + r.metric_series
            .iter()
            .map(|s| s.values.len())
            .sum::<usize>();
    assert_eq!(points, given, "points were lost or added");
    let mut keys = HashSet::new();
    for (k, s) in &d.metrics {
        assert!(keys.insert(k), "metric {k:?} has two series");
        assert!(validate::key("k", k, &limits).is_ok(), "{k:?}");
        assert_eq!(s.steps.len(), s.values.len(), "{k:?}");
        assert_eq!(s.timestamps.len(), s.values.len(), "{k:?}");
        assert!(
            s.timestamps.iter().all(|t| (0..=MAX_MS).contains(t)),
            "{s:?}"
        );
    }
    let mut keys = HashSet::new();
    for (k, v) in &d.params {
        assert!(keys.insert(k), "param {k:?} twice");
        assert!(r.params.iter().all(|p| p.key != *k || p.value == *v));
    }
    let last: HashMap<&str, &str> = r
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(d.tags.len(), last.len());
    for (k, v) in &d.tags {
        assert_eq!(last.get(k.as_str()), Some(&v.as_str()), "tag {k:?}");
    }
}

/// `LogRunInputs`: the run name and [`dataset_input_from`] per input. An accepted input has
/// a lowercase one-word context; a stored version is a valid version name kept as the source
/// URI with the stored source type; otherwise the name, digest and profile are as given.
pub(super) fn log_run_inputs(r: &pb::LogRunInputsRequest) {
    run_name(&r.run, "run");
    for (i, input) in r.inputs.iter().enumerate() {
        match dataset_input_from(input, i) {
            Ok(di) => {
                let c = &di.context;
                assert!(!c.is_empty() && c.len() <= 100, "{c:?}");
                assert!(
                    c.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b == b'_'
                        || b == b'-'),
                    "context {c:?}"
                );
                let d = input.dataset.as_ref().expect("accepted without a dataset");
                if d.version.is_empty() {
                    assert!(validate::name("n", &di.dataset.name).is_ok());
                    assert_eq!(di.dataset.digest, d.digest);
                    assert!(!di.dataset.digest.is_empty() && di.dataset.digest.len() <= 200);
                    // Compared as bytes: profiles hold floats, and NaN != NaN.
                    let given = d.profile.clone().unwrap_or_default().encode_to_vec();
                    assert_eq!(di.dataset.profile, given, "the profile changed");
                    pb::DatasetProfile::decode(di.dataset.profile.as_slice())
                        .expect("the stored profile decodes");
                } else {
                    assert_eq!(di.dataset.source_type, STORED_DATASET);
                    assert_eq!(di.dataset.source_uri, d.version);
                    assert!(parse_version_name(&d.version, "v").is_ok());
                }
            }
            Err(e) => check::invalid_under(&e, &format!("inputs[{i}]")),
        }
    }
}

/// `CreateRun`: parent, run name, tags, parent run, start time and status.
pub(super) fn create_run(r: &pb::CreateRunRequest) {
    if let Err(e) = ExperimentName::parse(&r.parent, "parent") {
        check::invalid(&e, "parent");
    }
    let run = r.run.clone().unwrap_or_default();
    if !run.run_name.is_empty()
        && let Err(e) = validate::name("run.run_name", &run.run_name)
    {
        check::invalid(&e, "run.run_name");
    }
    tags(&run.tags, "run.tags");
    if !run.parent_run.is_empty() {
        run_name(&run.parent_run, "run.parent_run");
    }
    if let Some(t) = &run.start_time {
        timestamp(t, "run.start_time");
    }
    status(run.status, "run.status");
}

/// `UpdateRun`: the run name and each field named in the mask.
pub(super) fn update_run(r: &pb::UpdateRunRequest) {
    let Some(run) = &r.run else {
        return;
    };
    run_name(&run.name, "run.name");
    for p in steward_runtime::request::mask_paths(&r.update_mask) {
        match p.as_str() {
            "status" => status(run.status, "run.status"),
            "end_time" => {
                if let Some(t) = &run.end_time {
                    timestamp(t, "run.end_time");
                }
            }
            "run_name" => {
                if let Err(e) = validate::name("run.run_name", &run.run_name) {
                    check::invalid(&e, "run.run_name");
                }
            }
            _ => {}
        }
    }
}

/// `CreateExperiment`: display name, description and tags.
pub(super) fn create_experiment(r: &pb::CreateExperimentRequest) {
    let Some(x) = &r.experiment else {
        return;
    };
    if let Err(e) = validate::name("experiment.display_name", &x.display_name) {
        check::invalid(&e, "experiment.display_name");
    }
    match validate::text("experiment.description", &x.description, 10_000) {
        Ok(()) => assert!(x.description.len() <= 10_000 && !x.description.contains('\0')),
        Err(e) => check::invalid(&e, "experiment.description"),
    }
    tags(&x.tags, "experiment.tags");
}

/// `SearchRuns`: experiment names, page size, filter, order_by and the page token, decoded
/// with the scope the handler derives from the query.
pub(super) fn search_runs(r: &pb::SearchRunsRequest) {
    let mut ids = Vec::new();
    for (i, x) in r.experiments.iter().enumerate() {
        let field = format!("experiments[{i}]");
        match ExperimentName::parse(x, &field) {
            Ok(n) => ids.push(n.experiment.as_str().to_string()),
            Err(e) => check::invalid(&e, &field),
        }
    }
    let max = Limits::default().max_page_size;
    match validate::page_size(r.page_size, 100, max) {
        Ok(n) => assert!((1..=max).contains(&n), "page size {n}"),
        Err(e) => check::invalid(&e, "page_size"),
    }
    crate::filters::check_query(&r.filter, &r.order_by, steward_common::filter::Scope::Runs);
    let joined = ids.join(",");
    let scope = steward_runtime::request::scope(&[
        "runs",
        &joined,
        &r.filter,
        &r.order_by,
        &r.show_deleted.to_string(),
    ]);
    if !r.page_token.is_empty() {
        crate::tokens::decode_any(&scope, &r.page_token);
    }
}

/// A run name; an accepted one formats back to the same text.
pub(super) fn run_name(s: &str, field: &str) -> Option<RunName> {
    match RunName::parse(s, field) {
        Ok(n) => {
            assert_eq!(n.to_string(), s);
            Some(n)
        }
        Err(e) => {
            check::invalid(&e, field);
            None
        }
    }
}

/// A tag map: accepted maps keep every entry, with valid keys and values.
pub(super) fn tags(t: &HashMap<String, String>, field: &str) {
    let limits = Limits::default();
    match tag_map(t, field, &limits) {
        Ok(m) => {
            assert_eq!(m.len(), t.len());
            for (k, v) in &m {
                assert!(validate::key("k", k, &limits).is_ok(), "{k:?}");
                assert!(v.len() <= limits.max_tag_value_bytes && !v.contains('\0'));
                assert_eq!(t.get(k), Some(v));
            }
        }
        Err(e) => check::invalid_under(&e, field),
    }
}

/// A timestamp: an accepted one lies in 1970..9999 and converts back to itself (to the ms).
pub(super) fn timestamp(t: &Timestamp, field: &str) {
    match from_ts(t, field) {
        Ok(ms) => {
            assert!((0..=MAX_MS).contains(&ms), "{t:?} -> {ms}");
            let back = ts(ms);
            assert_eq!(back.seconds, t.seconds, "{t:?}");
            assert_eq!(back.nanos, t.nanos / 1_000_000 * 1_000_000, "{t:?}");
            assert_eq!(from_ts(&back, field), Ok(ms));
        }
        Err(e) => check::invalid(&e, field),
    }
}

fn status(v: i32, field: &str) {
    match status_from(v, field) {
        Ok(None) => assert_eq!(v, 0),
        Ok(Some(s)) => assert_eq!(convert::status(s), v),
        Err(e) => check::invalid(&e, field),
    }
}
