//! Diff of two dataset versions: files added, removed and changed (with the bytes they still
//! share), schema changes, and per-column profile shifts (KS between quantile sketches, PSI).

use std::collections::{BTreeMap, BTreeSet};

use pb::dataset_diff::{ChangeKind, ColumnShift, FileChange, SchemaChange};
use prost::Message;
use steward_drift::binning::{ValueKind, fill_zeroes, psi_from_shares};
use steward_drift::sketch::{QuantileSketch, compare};
use steward_proto::tracking as pb;

use crate::domain::datasets::{DatasetFile, DatasetVersion};

/// The diff from `base` to `target`.
pub fn diff(
    base: &DatasetVersion,
    base_files: &[DatasetFile],
    target: &DatasetVersion,
    target_files: &[DatasetFile],
) -> pb::DatasetDiff {
    let b: BTreeMap<&str, &DatasetFile> = base_files.iter().map(|f| (f.path.as_str(), f)).collect();
    let t: BTreeMap<&str, &DatasetFile> =
        target_files.iter().map(|f| (f.path.as_str(), f)).collect();
    let paths: BTreeSet<&str> = b.keys().chain(t.keys()).copied().collect();
    let mut out = pb::DatasetDiff {
        base: base.name(),
        target: target.name(),
        base_digest: base.digest.clone(),
        target_digest: target.digest.clone(),
        ..Default::default()
    };
    for p in paths {
        match (b.get(p), t.get(p)) {
            (Some(x), None) => out.files.push(FileChange {
                path: p.to_string(),
                kind: ChangeKind::Removed as i32,
                base_size_bytes: x.size_bytes,
                base_sha256: x.sha256.clone(),
                ..Default::default()
            }),
            (None, Some(y)) => out.files.push(FileChange {
                path: p.to_string(),
                kind: ChangeKind::Added as i32,
                target_size_bytes: y.size_bytes,
                target_sha256: y.sha256.clone(),
                ..Default::default()
            }),
            (Some(x), Some(y)) => {
                if x.sha256 == y.sha256 {
                    out.unchanged_files += 1;
                } else {
                    out.files.push(FileChange {
                        path: p.to_string(),
                        kind: ChangeKind::Changed as i32,
                        base_size_bytes: x.size_bytes,
                        target_size_bytes: y.size_bytes,
                        base_sha256: x.sha256.clone(),
                        target_sha256: y.sha256.clone(),
                        shared_bytes: shared_bytes(x, y),
                    });
                    compare_tables(
                        p,
                        &x.schema_json,
                        &y.schema_json,
                        &x.profile,
                        &y.profile,
                        &mut out,
                    );
                }
            }
            (None, None) => {}
        }
    }
    if base.digest != target.digest {
        compare_tables(
            "",
            &base.schema_json,
            &target.schema_json,
            &base.profile,
            &target.profile,
            &mut out,
        );
    }
    out
}

/// Bytes of `y` in chunks `x` also has.
fn shared_bytes(x: &DatasetFile, y: &DatasetFile) -> i64 {
    let (Some(xc), Some(yc)) = (
        steward_cas::decode_chunks(&x.chunks),
        steward_cas::decode_chunks(&y.chunks),
    ) else {
        return 0;
    };
    let have: BTreeSet<[u8; 32]> = xc.iter().map(|c| c.sha256).collect();
    yc.iter()
        .filter(|c| have.contains(&c.sha256))
        .map(|c| c.size as i64)
        .sum()
}

/// `name -> type` of a schema JSON (`{"fields":[{"name":..,"type":..}]}`).
fn fields(schema: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(schema) else {
        return out;
    };
    for f in v["fields"].as_array().into_iter().flatten() {
        if let (Some(n), Some(t)) = (f["name"].as_str(), f["type"].as_str()) {
            out.insert(n.to_string(), t.to_string());
        }
    }
    out
}

fn compare_tables(
    path: &str,
    base_schema: &str,
    target_schema: &str,
    base_profile: &[u8],
    target_profile: &[u8],
    out: &mut pb::DatasetDiff,
) {
    let (bf, tf) = (fields(base_schema), fields(target_schema));
    let cols: BTreeSet<&String> = bf.keys().chain(tf.keys()).collect();
    for c in cols {
        let (kind, bt, tt) = match (bf.get(c), tf.get(c)) {
            (Some(x), None) => (ChangeKind::Removed, x.clone(), String::new()),
            (None, Some(y)) => (ChangeKind::Added, String::new(), y.clone()),
            (Some(x), Some(y)) if x != y => (ChangeKind::TypeChanged, x.clone(), y.clone()),
            _ => continue,
        };
        out.schema_changes.push(SchemaChange {
            path: path.to_string(),
            column: c.clone(),
            kind: kind as i32,
            base_type: bt,
            target_type: tt,
        });
    }
    let (Ok(bp), Ok(tp)) = (
        pb::DatasetProfile::decode(base_profile),
        pb::DatasetProfile::decode(target_profile),
    ) else {
        return;
    };
    let tmap: BTreeMap<&str, &pb::FeatureProfile> =
        tp.features.iter().map(|f| (f.name.as_str(), f)).collect();
    for x in &bp.features {
        let Some(y) = tmap.get(x.name.as_str()) else {
            continue;
        };
        out.column_shifts.push(shift(path, x, y));
    }
}

fn rate(f: &pb::FeatureProfile) -> f64 {
    let n = f.count + f.missing;
    if n == 0 {
        0.0
    } else {
        f.missing as f64 / n as f64
    }
}

fn shift(path: &str, x: &pb::FeatureProfile, y: &pb::FeatureProfile) -> ColumnShift {
    let mut s = ColumnShift {
        path: path.to_string(),
        column: x.name.clone(),
        base_count: x.count,
        target_count: y.count,
        base_missing_rate: rate(x),
        target_missing_rate: rate(y),
        base_mean: x.mean,
        target_mean: y.mean,
        base_stddev: x.stddev,
        target_stddev: y.stddev,
        base_min: x.min,
        target_min: y.min,
        base_max: x.max,
        target_max: y.max,
        ks_statistic: f64::NAN,
        ks_error_bound: f64::NAN,
        psi: f64::NAN,
    };
    if let (Ok(a), Ok(b)) = (
        QuantileSketch::from_bytes(&x.quantile_sketch),
        QuantileSketch::from_bytes(&y.quantile_sketch),
    ) {
        if let Ok(k) = compare::ks(&a, &b) {
            s.ks_statistic = k.estimate.statistic;
            s.ks_error_bound = k.statistic_error;
        }
        if let Ok(p) = compare::psi(&a, &b, ValueKind::Numeric) {
            s.psi = p.value;
        }
    } else if !x.top_values.is_empty() {
        s.psi = categorical_psi(x, y);
    }
    s
}

/// PSI over the base's top categories plus one bin for everything else.
fn categorical_psi(x: &pb::FeatureProfile, y: &pb::FeatureProfile) -> f64 {
    let shares = |f: &pb::FeatureProfile| -> Vec<f64> {
        let counts: BTreeMap<&str, i64> = f
            .top_values
            .iter()
            .map(|v| (v.value.as_str(), v.count))
            .collect();
        let total = f.count.max(1) as f64;
        let mut s: Vec<f64> = x
            .top_values
            .iter()
            .map(|v| *counts.get(v.value.as_str()).unwrap_or(&0) as f64 / total)
            .collect();
        let rest = (1.0 - s.iter().sum::<f64>()).max(0.0);
        s.push(rest);
        s
    };
    let (mut a, mut b) = (shares(x), shares(y));
    fill_zeroes(&mut a);
    fill_zeroes(&mut b);
    psi_from_shares(&a, &b).unwrap_or(f64::NAN)
}
