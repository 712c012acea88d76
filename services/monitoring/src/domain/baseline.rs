//! Training baselines: a summary per feature, and the exact reference values when the baseline
//! came from a sample.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::FeatureKind;
use super::columns::Column;

/// Numeric histogram bins in a summary of exact values.
pub const SUMMARY_BINS: usize = 20;

/// One feature of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineFeature {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: FeatureKind,
    /// Present values.
    pub count: i64,
    /// Missing values.
    pub missing: i64,
    /// True when the exact values are stored.
    pub exact: bool,
    /// Numeric summary (std with ddof 0).
    #[serde(with = "crate::domain::nan")]
    pub mean: f64,
    /// ddof 0.
    #[serde(with = "crate::domain::nan")]
    pub stddev: f64,
    /// Smallest.
    #[serde(with = "crate::domain::nan")]
    pub min: f64,
    /// Largest.
    #[serde(with = "crate::domain::nan")]
    pub max: f64,
    /// Histogram edges (one more than counts).
    pub bin_edges: Vec<f64>,
    /// Histogram counts.
    pub bin_counts: Vec<i64>,
    /// Category counts.
    pub categories: BTreeMap<String, i64>,
}

/// A baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// `{b}`.
    pub id: String,
    /// `registeredModels/{m}/versions/{v}` (may be empty).
    pub model_version: String,
    /// "sample" or "profile:{run}#{dataset}".
    pub source: String,
    /// Rows.
    pub num_rows: i64,
    /// Features.
    pub features: Vec<BaselineFeature>,
    /// The model output's baseline, if the sample had one.
    pub prediction: Option<BaselineFeature>,
    /// Creator.
    pub creator: String,
    /// ms.
    pub create_time: i64,
}

impl Baseline {
    /// A feature by name.
    pub fn feature(&self, name: &str) -> Option<&BaselineFeature> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// Summarises exact values.
pub fn summarize(name: &str, kind: FeatureKind, col: &Column) -> BaselineFeature {
    let mut f = BaselineFeature {
        name: name.to_string(),
        kind,
        count: 0,
        missing: col.missing() as i64,
        exact: true,
        mean: f64::NAN,
        stddev: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
        bin_edges: vec![],
        bin_counts: vec![],
        categories: BTreeMap::new(),
    };
    match col {
        Column::Num(v) => {
            let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            f.count = present.len() as i64;
            if present.is_empty() {
                return f;
            }
            let n = present.len() as f64;
            let mean = present.iter().sum::<f64>() / n;
            f.mean = mean;
            f.stddev = (present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            f.min = present.iter().copied().fold(f64::INFINITY, f64::min);
            f.max = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if f.min == f.max {
                (f.min - 0.5, f.max + 0.5)
            } else {
                (f.min, f.max)
            };
            let w = (hi - lo) / SUMMARY_BINS as f64;
            f.bin_edges = (0..=SUMMARY_BINS).map(|i| lo + w * i as f64).collect();
            f.bin_counts = vec![0; SUMMARY_BINS];
            for x in present {
                let i = (((x - lo) / w) as usize).min(SUMMARY_BINS - 1);
                f.bin_counts[i] += 1;
            }
        }
        Column::Cat(v) => {
            for s in v.iter().flatten() {
                *f.categories.entry(s.clone()).or_insert(0) += 1;
                f.count += 1;
            }
        }
    }
    f
}

/// The kind a tracking dtype maps to (`distinct` values when known).
pub fn kind_of_dtype(dtype: &str, distinct: i64) -> FeatureKind {
    let d = dtype.to_ascii_lowercase();
    if d.starts_with("bool") {
        FeatureKind::Binary
    } else if d.starts_with("float")
        || d.starts_with("int")
        || d.starts_with("uint")
        || d.starts_with("double")
        || d == "number"
    {
        if distinct == 2 && d.starts_with("int") {
            FeatureKind::Binary
        } else {
            FeatureKind::Numeric
        }
    } else {
        FeatureKind::Categorical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_numbers_uses_ddof_zero() {
        let f = summarize(
            "x",
            FeatureKind::Numeric,
            &Column::Num(vec![1.0, 2.0, 3.0, 4.0, f64::NAN]),
        );
        assert_eq!((f.count, f.missing), (4, 1));
        assert_eq!(f.mean, 2.5);
        assert!((f.stddev - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(f.bin_counts.iter().sum::<i64>(), 4);
        assert_eq!(f.bin_edges.len(), SUMMARY_BINS + 1);
    }

    #[test]
    fn dtypes_map_to_kinds() {
        assert_eq!(kind_of_dtype("float64", 100), FeatureKind::Numeric);
        assert_eq!(kind_of_dtype("bool", 2), FeatureKind::Binary);
        assert_eq!(kind_of_dtype("string", 5), FeatureKind::Categorical);
    }
}
