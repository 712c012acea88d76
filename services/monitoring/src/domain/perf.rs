//! Performance from joined ground truth (classification and regression metrics, as
//! scikit-learn defines them), and latency / error statistics of the records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Task;
use super::columns::Value;

/// One prediction with its label (if it has arrived).
#[derive(Debug, Clone)]
pub struct Joined {
    /// The variant that answered.
    pub variant: String,
    /// The prediction.
    pub prediction: Value,
    /// The label (Missing: no feedback yet).
    pub label: Value,
    /// Latency, µs.
    pub latency_us: i64,
    /// Failed.
    pub error: bool,
}

/// Metrics of one variant (or of all, variant "").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// "" for every variant together.
    pub variant: String,
    /// Predictions in range.
    pub predictions: i64,
    /// Of those with a label.
    pub labelled: i64,
    /// Classification (NaN where undefined).
    #[serde(with = "crate::domain::nan")]
    pub accuracy: f64,
    /// Of the positive label.
    #[serde(with = "crate::domain::nan")]
    pub precision: f64,
    /// Of the positive label.
    #[serde(with = "crate::domain::nan")]
    pub recall: f64,
    /// Of the positive label.
    #[serde(with = "crate::domain::nan")]
    pub f1: f64,
    /// From scores (numeric predictions in [0, 1]).
    #[serde(with = "crate::domain::nan")]
    pub roc_auc: f64,
    /// From scores, clipped to [1e-15, 1 - 1e-15].
    #[serde(with = "crate::domain::nan")]
    pub log_loss: f64,
    /// Regression.
    #[serde(with = "crate::domain::nan")]
    pub mae: f64,
    /// Regression.
    #[serde(with = "crate::domain::nan")]
    pub rmse: f64,
    /// Regression, as scikit-learn (|y - p| / max(|y|, eps)).
    #[serde(with = "crate::domain::nan")]
    pub mape: f64,
    /// Latency percentiles, ms (linear interpolation).
    #[serde(with = "crate::domain::nan")]
    pub latency_p50_ms: f64,
    /// ms.
    #[serde(with = "crate::domain::nan")]
    pub latency_p95_ms: f64,
    /// ms.
    #[serde(with = "crate::domain::nan")]
    pub latency_p99_ms: f64,
    /// Failed share.
    #[serde(with = "crate::domain::nan")]
    pub error_rate: f64,
    /// Mean of each KPI.
    pub kpis: BTreeMap<String, f64>,
}

impl Performance {
    /// The named metric (`performance.{m}` / `latency.{p}` / `error_rate` suffixes).
    pub fn get(&self, name: &str) -> f64 {
        match name {
            "accuracy" => self.accuracy,
            "precision" => self.precision,
            "recall" => self.recall,
            "f1" => self.f1,
            "roc_auc" => self.roc_auc,
            "log_loss" => self.log_loss,
            "mae" => self.mae,
            "rmse" => self.rmse,
            "mape" => self.mape,
            "p50_ms" => self.latency_p50_ms,
            "p95_ms" => self.latency_p95_ms,
            "p99_ms" => self.latency_p99_ms,
            "error_rate" => self.error_rate,
            _ => f64::NAN,
        }
    }
}

/// The label a value stands for.
fn label_of(v: &Value) -> Option<String> {
    match v {
        Value::Num(x) if !x.is_nan() => Some(Value::number_label(*x)),
        Value::Cat(s) => Some(s.clone()),
        _ => None,
    }
}

fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Num(x) if x.is_finite() => Some(*x),
        Value::Cat(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// ROC AUC from scores and 0/1 truth: the Mann-Whitney U with average ranks for ties.
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> f64 {
    let pos = truth.iter().filter(|t| **t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            if truth[*k] {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    (rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n)
}

/// Computes the metrics of `rows` (all given to one variant or to all).
pub fn compute(variant: &str, rows: &[&Joined], task: Task, positive: &str) -> Performance {
    let mut p = Performance {
        variant: variant.to_string(),
        predictions: rows.len() as i64,
        ..Default::default()
    };
    let nan = f64::NAN;
    let mut lat: Vec<f64> = rows.iter().map(|r| r.latency_us as f64 / 1000.0).collect();
    lat.sort_by(f64::total_cmp);
    p.latency_p50_ms = percentile(&lat, 0.50);
    p.latency_p95_ms = percentile(&lat, 0.95);
    p.latency_p99_ms = percentile(&lat, 0.99);
    p.error_rate = if rows.is_empty() {
        nan
    } else {
        rows.iter().filter(|r| r.error).count() as f64 / rows.len() as f64
    };
    let labelled: Vec<&&Joined> = rows
        .iter()
        .filter(|r| !matches!(r.label, Value::Missing) && !r.error)
        .collect();
    p.labelled = labelled.len() as i64;
    for m in [
        &mut p.accuracy,
        &mut p.precision,
        &mut p.recall,
        &mut p.f1,
        &mut p.roc_auc,
        &mut p.log_loss,
        &mut p.mae,
        &mut p.rmse,
        &mut p.mape,
    ] {
        *m = nan;
    }
    if labelled.is_empty() {
        return p;
    }
    if task != Task::Regression {
        classification(&mut p, &labelled, positive);
    }
    if task != Task::Classification {
        regression(&mut p, &labelled);
    }
    p
}

fn classification(p: &mut Performance, rows: &[&&Joined], positive: &str) {
    // A numeric prediction in [0, 1] is the positive class's score (threshold 0.5); anything
    // else is the predicted label itself.
    let mut correct = 0usize;
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    let mut scores = Vec::new();
    let mut truth = Vec::new();
    let mut counted = 0usize;
    for r in rows {
        let Some(label) = label_of(&r.label) else {
            continue;
        };
        let is_pos = label == positive;
        let predicted = match &r.prediction {
            Value::Num(s) if (0.0..=1.0).contains(s) => {
                scores.push(*s);
                truth.push(is_pos);
                if *s >= 0.5 {
                    positive.to_string()
                } else {
                    String::from("\u{0}negative")
                }
            }
            other => match label_of(other) {
                Some(l) => l,
                None => continue,
            },
        };
        counted += 1;
        let pred_pos = predicted == positive;
        if predicted == label || (!pred_pos && !is_pos && predicted.starts_with('\u{0}')) {
            correct += 1;
        }
        match (pred_pos, is_pos) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    if counted == 0 {
        return;
    }
    p.accuracy = correct as f64 / counted as f64;
    // scikit-learn's zero_division=0 convention.
    p.precision = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    p.recall = if tp + fneg == 0 {
        0.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    p.f1 = if p.precision + p.recall == 0.0 {
        0.0
    } else {
        2.0 * p.precision * p.recall / (p.precision + p.recall)
    };
    if !scores.is_empty() && scores.len() == counted {
        p.roc_auc = roc_auc(&scores, &truth);
        let eps = 1e-15;
        let ll: f64 = scores
            .iter()
            .zip(&truth)
            .map(|(s, t)| {
                let s = s.clamp(eps, 1.0 - eps);
                if *t { -s.ln() } else { -(1.0 - s).ln() }
            })
            .sum();
        p.log_loss = ll / scores.len() as f64;
    }
}

fn regression(p: &mut Performance, rows: &[&&Joined]) {
    let pairs: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((num_of(&r.prediction)?, num_of(&r.label)?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let n = pairs.len() as f64;
    p.mae = pairs.iter().map(|(y, t)| (t - y).abs()).sum::<f64>() / n;
    p.rmse = (pairs.iter().map(|(y, t)| (t - y).powi(2)).sum::<f64>() / n).sqrt();
    p.mape = pairs
        .iter()
        .map(|(y, t)| (t - y).abs() / t.abs().max(f64::EPSILON))
        .sum::<f64>()
        / n;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(pred: Value, label: Value) -> Joined {
        Joined {
            variant: "a".into(),
            prediction: pred,
            label,
            latency_us: 1000,
            error: false,
        }
    }

    #[test]
    fn classification_from_scores_matches_scikit_learn() {
        // sklearn: y=[1,0,1,1,0,0], p=[0.9,0.4,0.35,0.8,0.1,0.6]
        // accuracy 0.6667, precision 0.6667, recall 0.6667, roc_auc 0.7778, log_loss 0.4845
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let s = [0.9, 0.4, 0.35, 0.8, 0.1, 0.6];
        let rows: Vec<Joined> = y
            .iter()
            .zip(s)
            .map(|(y, s)| j(Value::Num(s), Value::Num(*y)))
            .collect();
        let refs: Vec<&Joined> = rows.iter().collect();
        let p = compute("", &refs, Task::Classification, "1");
        assert!((p.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((p.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((p.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((p.roc_auc - 7.0 / 9.0).abs() < 1e-12);
        let ll = -((0.9f64).ln()
            + (0.6f64).ln()
            + (0.35f64).ln()
            + (0.8f64).ln()
            + (0.9f64).ln()
            + (0.4f64).ln())
            / 6.0;
        assert!((p.log_loss - ll).abs() < 1e-12);
        assert!(p.mae.is_nan());
    }

    #[test]
    fn labels_and_regression() {
        let rows = [
            j(Value::Cat("cat".into()), Value::Cat("cat".into())),
            j(Value::Cat("dog".into()), Value::Cat("cat".into())),
            j(Value::Cat("dog".into()), Value::Missing),
        ];
        let refs: Vec<&Joined> = rows.iter().collect();
        let p = compute("", &refs, Task::Classification, "cat");
        assert_eq!(p.labelled, 2);
        assert_eq!(p.accuracy, 0.5);
        assert_eq!(p.precision, 1.0);
        assert_eq!(p.recall, 0.5);
        assert!(p.roc_auc.is_nan());

        let rows = [
            j(Value::Num(2.0), Value::Num(3.0)),
            j(Value::Num(5.0), Value::Num(4.0)),
        ];
        let refs: Vec<&Joined> = rows.iter().collect();
        let p = compute("", &refs, Task::Regression, "1");
        assert_eq!(p.mae, 1.0);
        assert_eq!(p.rmse, 1.0);
        assert!((p.mape - (1.0 / 3.0 + 1.0 / 4.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
