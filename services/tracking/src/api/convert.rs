//! Wire types <-> domain types. Every request is validated once here; errors name the field.

use prost::Message;
use prost_types::Timestamp;
use steward_common::Error;
use steward_config::Limits;
use steward_proto::tracking as pb;

use crate::domain::{
    ArtifactMeta, Dataset, DatasetInput, Experiment, Lifecycle, Run, RunData, RunStatus, Series,
    validate,
};

pub use steward_grpc::{MAX_MS, from_ts, ts};

fn opt_ts(t: Option<i64>) -> Option<Timestamp> {
    t.map(ts)
}

fn lifecycle(l: Lifecycle) -> i32 {
    match l {
        Lifecycle::Active => pb::LifecycleState::Active as i32,
        Lifecycle::Deleted => pb::LifecycleState::Deleted as i32,
    }
}

/// Domain experiment to wire.
pub fn experiment(e: &Experiment) -> pb::Experiment {
    pb::Experiment {
        name: format!("experiments/{}", e.id),
        display_name: e.display_name.clone(),
        description: e.description.clone(),
        tags: e.tags.clone().into_iter().collect(),
        state: lifecycle(e.lifecycle),
        create_time: Some(ts(e.create_time)),
        update_time: Some(ts(e.update_time)),
        delete_time: opt_ts(e.delete_time),
        etag: e.version.to_string(),
        artifact_location: e.artifact_location.clone(),
    }
}

/// Run status to wire.
pub fn status(s: RunStatus) -> i32 {
    s.code() as i32
}

/// Wire status to domain; UNSPECIFIED is `None`.
pub fn status_from(v: i32, field: &str) -> Result<Option<RunStatus>, Error> {
    if v == 0 {
        return Ok(None);
    }
    i16::try_from(v)
        .ok()
        .and_then(RunStatus::from_code)
        .map(Some)
        .ok_or_else(|| Error::invalid_field(field, format!("{v} is not a run status")))
}

/// Domain run to wire.
pub fn run(r: &Run) -> pb::Run {
    pb::Run {
        name: format!("experiments/{}/runs/{}", r.experiment_id, r.id),
        run_name: r.run_name.clone(),
        status: status(r.status),
        start_time: opt_ts(r.start_time),
        end_time: opt_ts(r.end_time),
        tags: r.tags.clone().into_iter().collect(),
        params: r.params.clone().into_iter().collect(),
        latest_metrics: r
            .latest_metrics
            .iter()
            .map(|m| pb::MetricPoint {
                key: m.key.clone(),
                value: m.value,
                timestamp: Some(ts(m.timestamp)),
                step: m.step,
            })
            .collect(),
        parent_run: r
            .parent_run_id
            .as_ref()
            .map(|p| format!("experiments/{}/runs/{p}", r.experiment_id))
            .unwrap_or_default(),
        inputs: r.inputs.iter().map(dataset_input).collect(),
        state: lifecycle(r.lifecycle),
        artifact_uri: r.artifact_uri.clone(),
        etag: r.version.to_string(),
        create_time: Some(ts(r.create_time)),
        update_time: Some(ts(r.update_time)),
        creator: r.creator.clone(),
    }
}

fn dataset_input(i: &DatasetInput) -> pb::DatasetInput {
    pb::DatasetInput {
        context: i.context.clone(),
        dataset: Some(pb::Dataset {
            name: i.dataset.name.clone(),
            digest: i.dataset.digest.clone(),
            source_uri: i.dataset.source_uri.clone(),
            source_type: i.dataset.source_type.clone(),
            schema_json: i.dataset.schema_json.clone(),
            profile: pb::DatasetProfile::decode(i.dataset.profile.as_slice()).ok(),
            version: if i.dataset.source_type == crate::domain::STORED_DATASET {
                i.dataset.source_uri.clone()
            } else {
                String::new()
            },
        }),
    }
}

pub use steward_common::validate::tag_map;

/// Builds and validates a batch of run data. `now` fills missing timestamps.
pub fn run_data(
    points: &[pb::MetricPoint],
    series: &[pb::MetricSeries],
    params: &[pb::Param],
    tags: &[pb::Tag],
    limits: &Limits,
    now: i64,
) -> Result<RunData, Error> {
    let mut data = RunData::default();
    let total: usize = points.len() + series.iter().map(|s| s.values.len()).sum::<usize>();
    if total > limits.max_points_per_batch {
        return Err(Error::limit(
            "metrics",
            format!(
                "at most {} metric points per batch (got {total})",
                limits.max_points_per_batch
            ),
        ));
    }
    if params.len() > limits.max_params_per_batch {
        return Err(Error::limit(
            "params",
            format!("at most {} params per batch", limits.max_params_per_batch),
        ));
    }
    if tags.len() > limits.max_tags_per_batch {
        return Err(Error::limit(
            "tags",
            format!("at most {} tags per batch", limits.max_tags_per_batch),
        ));
    }
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut slot = |key: &str, data: &mut RunData| -> usize {
        *index.entry(key.to_string()).or_insert_with(|| {
            data.metrics.push((key.to_string(), Series::default()));
            data.metrics.len() - 1
        })
    };
    for (i, p) in points.iter().enumerate() {
        validate::key(&format!("metrics[{i}].key"), &p.key, limits)?;
        let t = match &p.timestamp {
            Some(t) => from_ts(t, &format!("metrics[{i}].timestamp"))?,
            None => now,
        };
        let s = slot(&p.key, &mut data);
        data.metrics[s].1.push(p.step, t, p.value);
    }
    for (i, s) in series.iter().enumerate() {
        let f = format!("metric_series[{i}]");
        validate::key(&format!("{f}.key"), &s.key, limits)?;
        let n = s.values.len();
        if !s.steps.is_empty() && s.steps.len() != n {
            return Err(Error::invalid_field(
                format!("{f}.steps"),
                format!("has {} entries but values has {n}", s.steps.len()),
            ));
        }
        if !s.timestamps_unix_ms.is_empty() && s.timestamps_unix_ms.len() != n {
            return Err(Error::invalid_field(
                format!("{f}.timestamps_unix_ms"),
                format!(
                    "has {} entries but values has {n}",
                    s.timestamps_unix_ms.len()
                ),
            ));
        }
        if let Some(bad) = s
            .timestamps_unix_ms
            .iter()
            .position(|t| !(0..=MAX_MS).contains(t))
        {
            return Err(Error::invalid_field(
                format!("{f}.timestamps_unix_ms[{bad}]"),
                "must be between 1970 and 9999",
            ));
        }
        let k = slot(&s.key, &mut data);
        let out = &mut data.metrics[k].1;
        let base = out.len() as i64;
        out.values.extend_from_slice(&s.values);
        if s.steps.is_empty() {
            out.steps.extend((0..n as i64).map(|j| base + j));
        } else {
            out.steps.extend_from_slice(&s.steps);
        }
        if s.timestamps_unix_ms.is_empty() {
            out.timestamps.extend(std::iter::repeat_n(now, n));
        } else {
            out.timestamps.extend_from_slice(&s.timestamps_unix_ms);
        }
    }
    let mut seen: std::collections::HashMap<&str, (&str, usize)> = std::collections::HashMap::new();
    for (i, p) in params.iter().enumerate() {
        validate::key(&format!("params[{i}].key"), &p.key, limits)?;
        validate::text(
            &format!("params[{i}].value"),
            &p.value,
            limits.max_param_value_bytes,
        )?;
        match seen.get(p.key.as_str()) {
            Some((v, _)) if *v == p.value => continue,
            Some((_, j)) => {
                return Err(Error::invalid_field(
                    format!("params[{i}].value"),
                    format!("conflicts with params[{j}] for the same key"),
                ));
            }
            None => {
                seen.insert(&p.key, (&p.value, i));
                data.params.push((p.key.clone(), p.value.clone()));
            }
        }
    }
    let mut tag_pos: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, t) in tags.iter().enumerate() {
        validate::key(&format!("tags[{i}].key"), &t.key, limits)?;
        validate::text(
            &format!("tags[{i}].value"),
            &t.value,
            limits.max_tag_value_bytes,
        )?;
        // The last value of a key in one batch wins.
        match tag_pos.get(&t.key) {
            Some(&j) => data.tags[j].1 = t.value.clone(),
            None => {
                tag_pos.insert(t.key.clone(), data.tags.len());
                data.tags.push((t.key.clone(), t.value.clone()));
            }
        }
    }
    Ok(data)
}

/// Validates a dataset input.
pub fn dataset_input_from(i: &pb::DatasetInput, idx: usize) -> Result<DatasetInput, Error> {
    let f = format!("inputs[{idx}]");
    let d = i
        .dataset
        .as_ref()
        .ok_or_else(|| Error::invalid_field(format!("{f}.dataset"), "required"))?;
    let context = if i.context.is_empty() {
        "training".to_string()
    } else {
        i.context.to_ascii_lowercase()
    };
    if !d.version.is_empty() {
        // A stored version: the service fills the rest from it.
        crate::domain::datasets::parse_version_name(&d.version, &format!("{f}.dataset.version"))?;
        for (field, v) in [
            ("digest", &d.digest),
            ("source_uri", &d.source_uri),
            ("source_type", &d.source_type),
            ("schema_json", &d.schema_json),
        ] {
            if !v.is_empty() {
                return Err(Error::invalid_field(
                    format!("{f}.dataset.{field}"),
                    "leave empty when dataset.version is set; the service fills it from the version",
                ));
            }
        }
        if d.profile.is_some() {
            return Err(Error::invalid_field(
                format!("{f}.dataset.profile"),
                "leave empty when dataset.version is set; the service fills it from the version",
            ));
        }
        check_context(&context, &f)?;
        return Ok(DatasetInput {
            context,
            dataset: Dataset {
                name: String::new(),
                digest: String::new(),
                source_uri: d.version.clone(),
                source_type: crate::domain::STORED_DATASET.to_string(),
                schema_json: String::new(),
                profile: Vec::new(),
            },
        });
    }
    validate::name(&format!("{f}.dataset.name"), &d.name)?;
    if d.digest.is_empty()
        || d.digest.len() > 200
        || !d.digest.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::invalid_field(
            format!("{f}.dataset.digest"),
            "required: 1-200 printable characters, e.g. sha256:<hex>",
        ));
    }
    validate::text(&format!("{f}.dataset.source_uri"), &d.source_uri, 2048)?;
    validate::text(&format!("{f}.dataset.source_type"), &d.source_type, 100)?;
    validate::text(
        &format!("{f}.dataset.schema_json"),
        &d.schema_json,
        1_000_000,
    )?;
    if !d.schema_json.is_empty()
        && serde_json::from_str::<serde_json::Value>(&d.schema_json).is_err()
    {
        return Err(Error::invalid_field(
            format!("{f}.dataset.schema_json"),
            "must be valid JSON",
        ));
    }
    check_context(&context, &f)?;
    let profile = d.profile.clone().unwrap_or_default();
    if profile.features.len() > 10_000 {
        return Err(Error::limit(
            format!("{f}.dataset.profile.features"),
            "at most 10000 features",
        ));
    }
    for (j, feat) in profile.features.iter().enumerate() {
        if !feat.bin_counts.is_empty() && feat.bin_edges.len() != feat.bin_counts.len() + 1 {
            return Err(Error::invalid_field(
                format!("{f}.dataset.profile.features[{j}].bin_edges"),
                "must have one more entry than bin_counts",
            ));
        }
    }
    Ok(DatasetInput {
        context,
        dataset: Dataset {
            name: d.name.clone(),
            digest: d.digest.clone(),
            source_uri: d.source_uri.clone(),
            source_type: d.source_type.clone(),
            schema_json: d.schema_json.clone(),
            profile: profile.encode_to_vec(),
        },
    })
}

fn check_context(context: &str, f: &str) -> Result<(), Error> {
    if context.len() > 100
        || !context
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid_field(
            format!("{f}.context"),
            "a word such as training, validation or test",
        ));
    }
    Ok(())
}

/// Artifact metadata to wire.
pub fn artifact(a: &ArtifactMeta) -> pb::Artifact {
    pb::Artifact {
        path: a.path.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
        create_time: Some(ts(a.create_time)),
        content_type: a.content_type.clone(),
    }
}

/// A series to wire.
pub fn series(key: &str, s: Series) -> pb::MetricSeries {
    pb::MetricSeries {
        key: key.to_string(),
        values: s.values,
        steps: s.steps,
        timestamps_unix_ms: s.timestamps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_reject_garbage() {
        for ms in [0, 1, 999, 1_700_000_000_123] {
            assert_eq!(from_ts(&ts(ms), "t").unwrap(), ms);
        }
        assert!(
            from_ts(
                &Timestamp {
                    seconds: -1,
                    nanos: 0
                },
                "t"
            )
            .is_err()
        );
        assert!(
            from_ts(
                &Timestamp {
                    seconds: i64::MAX,
                    nanos: 0
                },
                "t"
            )
            .is_err()
        );
        assert!(
            from_ts(
                &Timestamp {
                    seconds: 0,
                    nanos: -1
                },
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn run_data_validates_and_names_fields() {
        let l = Limits::default();
        let s = pb::MetricSeries {
            key: "loss".into(),
            values: vec![1.0, 2.0],
            steps: vec![1],
            timestamps_unix_ms: vec![],
        };
        let e = run_data(&[], &[s], &[], &[], &l, 0).unwrap_err();
        assert_eq!(e.violations[0].field, "metric_series[0].steps");
        let p = [
            pb::Param {
                key: "lr".into(),
                value: "1".into(),
            },
            pb::Param {
                key: "lr".into(),
                value: "2".into(),
            },
        ];
        assert_eq!(
            run_data(&[], &[], &p, &[], &l, 0).unwrap_err().violations[0].field,
            "params[1].value"
        );
        let m = [pb::MetricPoint {
            key: "".into(),
            value: 1.0,
            timestamp: None,
            step: 0,
        }];
        assert_eq!(
            run_data(&m, &[], &[], &[], &l, 0).unwrap_err().violations[0].field,
            "metrics[0].key"
        );
    }

    #[test]
    fn run_data_groups_points_by_key() {
        let l = Limits::default();
        let m = [
            pb::MetricPoint {
                key: "a".into(),
                value: f64::NAN,
                timestamp: None,
                step: 3,
            },
            pb::MetricPoint {
                key: "b".into(),
                value: 1.0,
                timestamp: None,
                step: 0,
            },
            pb::MetricPoint {
                key: "a".into(),
                value: f64::INFINITY,
                timestamp: None,
                step: 4,
            },
        ];
        let d = run_data(&m, &[], &[], &[], &l, 42).unwrap();
        assert_eq!(d.metrics.len(), 2);
        assert_eq!(d.metrics[0].1.steps, vec![3, 4]);
        assert_eq!(d.metrics[0].1.timestamps, vec![42, 42]);
        assert!(d.metrics[0].1.values[0].is_nan());
    }
}
