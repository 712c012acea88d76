//! Differences between two versions.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Lineage, ModelVersion, Signature};

/// A differing key (`None` = absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueDiff {
    /// Key.
    pub key: String,
    /// Base value.
    pub base: Option<String>,
    /// Other value.
    pub other: Option<String>,
}

/// A metric on either side.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDiff {
    /// Key.
    pub key: String,
    /// Base value.
    pub base: Option<f64>,
    /// Other value.
    pub other: Option<f64>,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    /// Params that differ.
    pub params: Vec<ValueDiff>,
    /// Every metric of either side.
    pub metrics: Vec<MetricDiff>,
    /// Datasets `name (context)` whose digest differs or that one side lacks.
    pub datasets: Vec<ValueDiff>,
    /// Tensors whose spec differs or that one side lacks.
    pub signature: Vec<ValueDiff>,
    /// Code version, format and digest differences.
    pub code_version: Vec<ValueDiff>,
}

fn diff_maps(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<ValueDiff> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| ValueDiff {
            key: k.clone(),
            base: a.get(k).cloned(),
            other: b.get(k).cloned(),
        })
        .collect()
}

fn tensors(s: &Signature) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (side, list) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
        for t in list {
            let dims: Vec<String> = t.shape.iter().map(i64::to_string).collect();
            m.insert(
                format!("{side}.{}", t.name),
                format!("{}[{}]", t.dtype, dims.join(",")),
            );
        }
    }
    m
}

fn datasets(l: &Lineage) -> BTreeMap<String, String> {
    l.datasets
        .iter()
        .map(|d| {
            let key = if d.context.is_empty() {
                d.name.clone()
            } else {
                format!("{} ({})", d.name, d.context)
            };
            (key, d.digest.clone())
        })
        .collect()
}

fn code(v: &ModelVersion, l: &Lineage) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("git_commit".to_string(), l.code.git_commit.clone()),
        ("git_repo".to_string(), l.code.git_repo.clone()),
        ("git_dirty".to_string(), l.code.git_dirty.to_string()),
        ("format".to_string(), v.format.clone()),
        ("content_digest".to_string(), v.content_digest.clone()),
    ])
}

/// Compares `base` with `other`.
pub fn compare(base: (&ModelVersion, &Lineage), other: (&ModelVersion, &Lineage)) -> Comparison {
    let (bv, bl) = base;
    let (ov, ol) = other;
    let metric_keys: BTreeSet<&String> = bl.metrics.keys().chain(ol.metrics.keys()).collect();
    Comparison {
        params: diff_maps(&bl.params, &ol.params),
        metrics: metric_keys
            .into_iter()
            .map(|k| MetricDiff {
                key: k.clone(),
                base: bl.metrics.get(k).copied(),
                other: ol.metrics.get(k).copied(),
            })
            .collect(),
        datasets: diff_maps(&datasets(bl), &datasets(ol)),
        signature: diff_maps(&tensors(&bv.signature), &tensors(&ov.signature)),
        code_version: diff_maps(&code(bv, bl), &code(ov, ol)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{DatasetRef, TensorSpec};

    #[test]
    fn reports_only_what_differs_and_every_metric() {
        let mut a = Lineage::default();
        a.params.insert("lr".into(), "0.1".into());
        a.params.insert("depth".into(), "6".into());
        a.metrics.insert("auc".into(), 0.8);
        a.datasets.push(DatasetRef {
            name: "train".into(),
            digest: "d1".into(),
            context: "training".into(),
            ..Default::default()
        });
        a.code.git_commit = "abc".into();
        let mut b = a.clone();
        b.params.insert("lr".into(), "0.05".into());
        b.params.remove("depth");
        b.metrics.insert("auc".into(), 0.9);
        b.metrics.insert("f1".into(), 0.7);
        b.datasets[0].digest = "d2".into();
        b.code.git_commit = "def".into();
        let v = |sig: Vec<TensorSpec>| {
            let mut v: ModelVersion = serde_json::from_value(serde_json::json!({
                "model": "m", "version": 1, "source_run": "", "artifact_path": "", "source_uri": "",
                "artifact_uri": "", "content_digest": "sha256:x", "signature": {"inputs": [], "outputs": []},
                "format": "onnx", "status": "Ready", "status_message": "", "description": "",
                "tags": {}, "approval": "Pending", "last_review": null, "aliases": [], "creator": "",
                "create_time": 0, "update_time": 0, "revision": 1
            })).unwrap();
            v.signature.inputs = sig;
            v
        };
        let va = v(vec![TensorSpec {
            name: "x".into(),
            dtype: "float32".into(),
            shape: vec![-1, 4],
        }]);
        let vb = v(vec![TensorSpec {
            name: "x".into(),
            dtype: "float32".into(),
            shape: vec![-1, 5],
        }]);
        let c = compare((&va, &a), (&vb, &b));
        assert_eq!(c.params.len(), 2);
        assert_eq!(c.params[0].key, "depth");
        assert_eq!(c.params[0].other, None);
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[1].base, None);
        assert_eq!(c.datasets[0].key, "train (training)");
        assert_eq!(c.signature[0].base.as_deref(), Some("float32[-1,4]"));
        assert_eq!(c.code_version.len(), 1);
        assert_eq!(c.code_version[0].key, "git_commit");
        assert!(compare((&va, &a), (&va, &a)).params.is_empty());
    }
}
