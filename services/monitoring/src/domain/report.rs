//! Drift reports: per feature, the method, score, threshold and verdict, plus data quality;
//! dataset drift from the share of drifted features.
//!
//! The statistics are `steward-drift`'s (scipy / Evidently 0.7.23 conventions). Features are
//! computed in parallel on the available cores; each numeric column is sorted once (radix sort)
//! and every statistic reads the sorted slice. Reference values are prepared once per baseline
//! ([`Prepared`]): sorted numbers, or category counts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use steward_drift::binning;
use steward_drift::categorical::{self, Counts};
use steward_drift::numeric::sort_f64;
use steward_drift::select::{self, Method, Overrides, Verdict};

use super::{Baseline, BaselineFeature, Chunk, Column, DriftMethod, FeatureKind, MonitorSpec};

/// One feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: FeatureKind,
    /// Method used.
    pub method: DriftMethod,
    /// p-value or distance (NaN when it could not be computed).
    #[serde(with = "crate::domain::nan")]
    pub score: f64,
    /// Threshold.
    #[serde(with = "crate::domain::nan")]
    pub threshold: f64,
    /// Verdict.
    pub drifted: bool,
    /// Benjamini-Hochberg adjusted p-value (when on).
    pub adjusted_score: Option<f64>,
    /// Reference values (present).
    pub reference_rows: i64,
    /// Window values (present).
    pub current_rows: i64,
    /// "exact", "profile histogram (...)" or why it could not be computed.
    pub computation: String,
    /// Share of missing values in the window.
    #[serde(with = "crate::domain::nan")]
    pub missing_rate: f64,
    /// Window categories absent from the reference.
    pub new_categories: Vec<String>,
    /// Values of the wrong type in the window.
    pub type_mismatches: i64,
}

/// A window's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Features.
    pub features: Vec<FeatureDrift>,
    /// The prediction.
    pub prediction: Option<FeatureDrift>,
    /// Drifted features.
    pub drifted_features: i64,
    /// Their share (of the features with data in the window).
    #[serde(with = "crate::domain::nan")]
    pub drift_share: f64,
    /// Threshold of the share.
    #[serde(with = "crate::domain::nan")]
    pub drift_share_threshold: f64,
    /// Verdict.
    pub dataset_drift: bool,
    /// Monitored features no record of the window carried.
    pub missing_features: Vec<String>,
    /// Time to compute, ms.
    pub compute_ms: i64,
}

/// A baseline feature's reference, ready for the statistics.
#[derive(Debug, Clone)]
pub enum RefData {
    /// Exact numbers, sorted, finite.
    Sorted(Vec<f64>),
    /// Exact or profile category counts.
    Counts(Counts),
    /// A profile's numeric histogram.
    Histogram {
        /// Edges (one more than counts).
        edges: Vec<f64>,
        /// Counts.
        counts: Vec<u64>,
    },
    /// Nothing usable.
    Empty,
}

/// Every feature's reference (and the prediction's).
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// By feature name.
    pub features: HashMap<String, RefData>,
    /// The prediction.
    pub prediction: Option<RefData>,
}

fn from_summary(f: &BaselineFeature) -> RefData {
    match f.kind {
        FeatureKind::Numeric
            if f.bin_edges.len() >= 2 && f.bin_counts.len() + 1 == f.bin_edges.len() =>
        {
            RefData::Histogram {
                edges: f.bin_edges.clone(),
                counts: f.bin_counts.iter().map(|c| (*c).max(0) as u64).collect(),
            }
        }
        FeatureKind::Numeric => RefData::Empty,
        _ => RefData::Counts(
            f.categories
                .iter()
                .filter(|(_, c)| **c > 0)
                .map(|(k, c)| (k.clone(), *c as u64))
                .collect(),
        ),
    }
}

fn from_column(kind: FeatureKind, c: &Column) -> RefData {
    match (kind, c) {
        (FeatureKind::Numeric, Column::Num(v)) => {
            let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            sort_f64(&mut s);
            if s.is_empty() {
                RefData::Empty
            } else {
                RefData::Sorted(s)
            }
        }
        (_, Column::Cat(v)) => RefData::Counts(categorical::count_labels(v.iter().flatten())),
        (_, Column::Num(v)) => RefData::Counts(categorical::count_labels(
            v.iter()
                .filter(|x| !x.is_nan())
                .map(|x| super::columns::Value::number_label(*x)),
        )),
    }
}

/// Prepares a baseline's reference: from its exact values when stored (features in baseline
/// order, then the prediction), else from its summary (profile baselines).
pub fn prepare(b: &Baseline, data: Option<&Chunk>) -> Prepared {
    let mut p = Prepared::default();
    for (i, f) in b.features.iter().enumerate() {
        let r = match data.and_then(|d| d.columns.get(i)) {
            Some(c) => from_column(f.kind, c),
            None => from_summary(f),
        };
        p.features.insert(f.name.clone(), r);
    }
    if let Some(pf) = &b.prediction {
        p.prediction = Some(match data.and_then(|d| d.columns.get(b.features.len())) {
            Some(c) => from_column(pf.kind, c),
            None => from_summary(pf),
        });
    }
    p
}

fn method_of(m: Method) -> DriftMethod {
    match m {
        Method::Ks => DriftMethod::Ks,
        Method::Chi2 => DriftMethod::ChiSquared,
        Method::Z => DriftMethod::ZTest,
        Method::Wasserstein => DriftMethod::Wasserstein,
        Method::JensenShannon => DriftMethod::JensenShannon,
        Method::Psi => DriftMethod::Psi,
        Method::LInf => DriftMethod::LInfinity,
    }
}

fn method_to(m: DriftMethod) -> Method {
    match m {
        DriftMethod::Ks => Method::Ks,
        DriftMethod::ChiSquared => Method::Chi2,
        DriftMethod::ZTest => Method::Z,
        DriftMethod::Wasserstein => Method::Wasserstein,
        DriftMethod::JensenShannon => Method::JensenShannon,
        DriftMethod::Psi => Method::Psi,
        DriftMethod::LInfinity => Method::LInf,
    }
}

fn drift_kind(k: FeatureKind) -> select::FeatureKind {
    match k {
        FeatureKind::Numeric => select::FeatureKind::Numeric,
        FeatureKind::Categorical => select::FeatureKind::Categorical,
        FeatureKind::Binary => select::FeatureKind::Binary,
    }
}

/// One column of a window, ready for the statistics.
#[derive(Debug, Clone)]
pub enum WinCol {
    /// Numbers: the finite values (unsorted), and every row / the missing ones.
    Num {
        /// Finite values.
        values: Vec<f64>,
        /// Rows.
        rows: u64,
        /// Missing (NaN or infinite).
        missing: u64,
    },
    /// Labels: counts, and every row / the missing ones.
    Cat {
        /// Count per label.
        counts: HashMap<String, u64>,
        /// Rows.
        rows: u64,
        /// Missing.
        missing: u64,
    },
}

impl WinCol {
    fn rows(&self) -> u64 {
        match self {
            Self::Num { rows, .. } | Self::Cat { rows, .. } => *rows,
        }
    }

    fn missing(&self) -> u64 {
        match self {
            Self::Num { missing, .. } | Self::Cat { missing, .. } => *missing,
        }
    }

    fn merge(&mut self, other: WinCol) {
        match (self, other) {
            (
                Self::Num {
                    values,
                    rows,
                    missing,
                },
                Self::Num {
                    values: v,
                    rows: r,
                    missing: m,
                },
            ) => {
                values.extend(v);
                *rows += r;
                *missing += m;
            }
            (
                Self::Cat {
                    counts,
                    rows,
                    missing,
                },
                Self::Cat {
                    counts: c,
                    rows: r,
                    missing: m,
                },
            ) => {
                for (k, n) in c {
                    *counts.entry(k).or_insert(0) += n;
                }
                *rows += r;
                *missing += m;
            }
            // Columns keep their stored kind across a window's chunks.
            _ => {}
        }
    }

    /// Category counts (labels as they are, numbers as labels).
    fn counts(self) -> Counts {
        match self {
            Self::Cat { counts, .. } => counts.into_iter().filter(|(_, n)| *n > 0).collect(),
            Self::Num { values, .. } => categorical::count_labels(
                values
                    .iter()
                    .map(|x| super::columns::Value::number_label(*x)),
            ),
        }
    }
}

/// A window's columns (features, then the prediction), decoded straight from the stored chunks
/// without materialising labels: each chunk's dictionary codes are counted.
#[derive(Debug, Clone, Default)]
pub struct WindowData {
    /// Columns.
    pub cols: Vec<WinCol>,
    /// Type mismatches per column.
    pub mismatches: Vec<u64>,
}

impl WindowData {
    /// Adds one stored chunk.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Result<(), steward_common::Error> {
        let mut i = 0;
        let mut cols = Vec::new();
        let mut mism = Vec::new();
        super::columns::visit(bytes, |rows, raw| {
            i += 1;
            match raw {
                super::columns::Raw::Num { values, mismatches } => {
                    let mut v = Vec::with_capacity(rows);
                    v.extend(values.filter(|x| x.is_finite()));
                    let missing = (rows - v.len()) as u64;
                    cols.push(WinCol::Num {
                        values: v,
                        rows: rows as u64,
                        missing,
                    });
                    mism.push(mismatches);
                }
                super::columns::Raw::Cat {
                    dict,
                    codes,
                    mismatches,
                } => {
                    let mut by_code = vec![0u64; dict.len()];
                    let mut missing = 0u64;
                    for c in codes {
                        match by_code.get_mut(c as usize) {
                            Some(n) => *n += 1,
                            None => missing += 1,
                        }
                    }
                    let counts = dict
                        .iter()
                        .zip(by_code)
                        .filter(|(_, n)| *n > 0)
                        .map(|(s, n)| (s.to_string(), n))
                        .collect();
                    cols.push(WinCol::Cat {
                        counts,
                        rows: rows as u64,
                        missing,
                    });
                    mism.push(mismatches);
                }
            }
        })?;
        self.merge(WindowData {
            cols,
            mismatches: mism,
        });
        Ok(())
    }

    /// Appends another part of the same window.
    pub fn merge(&mut self, other: WindowData) {
        if self.cols.is_empty() {
            *self = other;
            return;
        }
        for (i, (c, m)) in other.cols.into_iter().zip(other.mismatches).enumerate() {
            if let Some(mine) = self.cols.get_mut(i) {
                mine.merge(c);
                self.mismatches[i] += m;
            }
        }
    }

    /// Decodes the stored chunks of a window, on the available cores.
    pub fn decode(chunks: Vec<Vec<u8>>) -> Result<WindowData, steward_common::Error> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, chunks.len().max(1));
        let per = chunks.len().div_ceil(threads).max(1);
        let mut parts: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut it = chunks.into_iter().peekable();
        while it.peek().is_some() {
            parts.push(it.by_ref().take(per).collect());
        }
        let results: Vec<Result<WindowData, steward_common::Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    s.spawn(move || {
                        let mut w = WindowData::default();
                        for c in part {
                            w.add_bytes(&c)?;
                        }
                        Ok(w)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(steward_common::Error::internal("window decode failed"))
                    })
                })
                .collect()
        });
        let mut out = WindowData::default();
        for r in results {
            out.merge(r?);
        }
        Ok(out)
    }

    /// The same from a decoded chunk (tests, small windows).
    pub fn from_chunk(c: &Chunk) -> WindowData {
        WindowData {
            cols: c
                .columns
                .iter()
                .map(|col| match col {
                    Column::Num(v) => {
                        let values: Vec<f64> =
                            v.iter().copied().filter(|x| x.is_finite()).collect();
                        WinCol::Num {
                            missing: (v.len() - values.len()) as u64,
                            rows: v.len() as u64,
                            values,
                        }
                    }
                    Column::Cat(v) => {
                        let mut counts = HashMap::new();
                        for s in v.iter().flatten() {
                            *counts.entry(s.clone()).or_insert(0) += 1;
                        }
                        WinCol::Cat {
                            counts,
                            rows: v.len() as u64,
                            missing: v.iter().filter(|x| x.is_none()).count() as u64,
                        }
                    }
                })
                .collect(),
            mismatches: c.mismatches.clone(),
        }
    }
}

/// What one feature's test needs.
struct Job<'a> {
    name: &'a str,
    kind: FeatureKind,
    reference: &'a RefData,
    current: WinCol,
    mismatches: u64,
    overrides: Overrides,
}

fn failed(job: &Job<'_>, why: String, present: u64, missing_rate: f64) -> FeatureDrift {
    let m = job
        .overrides
        .method
        .map(method_of)
        .unwrap_or(DriftMethod::Ks);
    FeatureDrift {
        name: job.name.to_string(),
        kind: job.kind,
        method: m,
        score: f64::NAN,
        threshold: job.overrides.threshold.unwrap_or(f64::NAN),
        drifted: false,
        adjusted_score: None,
        reference_rows: 0,
        current_rows: present as i64,
        computation: why,
        missing_rate,
        new_categories: vec![],
        type_mismatches: job.mismatches as i64,
    }
}

fn run(mut job: Job<'_>) -> FeatureDrift {
    let rows = job.current.rows();
    let missing = job.current.missing();
    let missing_rate = if rows == 0 {
        0.0
    } else {
        missing as f64 / rows as f64
    };
    let present = rows - missing;
    if present == 0 {
        return failed(&job, "no values in the window".into(), 0, missing_rate);
    }
    let verdict =
        |job: &Job<'_>, v: Verdict, ref_rows: u64, computation: String, new: Vec<String>| {
            FeatureDrift {
                name: job.name.to_string(),
                kind: job.kind,
                method: method_of(v.method),
                score: v.score,
                threshold: v.threshold,
                drifted: v.drifted,
                adjusted_score: None,
                reference_rows: ref_rows as i64,
                current_rows: present as i64,
                computation,
                missing_rate,
                new_categories: new,
                type_mismatches: job.mismatches as i64,
            }
        };
    let current = std::mem::replace(
        &mut job.current,
        WinCol::Num {
            values: Vec::new(),
            rows: 0,
            missing: 0,
        },
    );
    match (job.reference, current) {
        (RefData::Sorted(r), WinCol::Num { mut values, .. }) => {
            sort_f64(&mut values);
            match select::evaluate_numeric(drift_kind(job.kind), r, &values, &job.overrides) {
                Ok(v) => verdict(&job, v, r.len() as u64, "exact".into(), vec![]),
                Err(e) => failed(&job, e.to_string(), present, missing_rate),
            }
        }
        (RefData::Counts(r), cur) => {
            let cur = cur.counts();
            let aligned = categorical::align_counts(r, &cur);
            let new: Vec<String> = aligned.new_categories().into_iter().cloned().collect();
            let ref_rows = aligned.reference_total();
            match select::evaluate_counts(r, &cur, &job.overrides) {
                Ok(v) => verdict(&job, v, ref_rows, "exact".into(), new),
                Err(e) => {
                    let mut f = failed(&job, e.to_string(), present, missing_rate);
                    f.new_categories = new;
                    f
                }
            }
        }
        (RefData::Histogram { edges, counts }, WinCol::Num { values, .. }) => {
            // Values outside the profile's range fall in its first / last bin.
            let mut cur_counts = vec![0u64; counts.len()];
            for x in &values {
                let i = edges
                    .partition_point(|e| e <= x)
                    .saturating_sub(1)
                    .min(counts.len() - 1);
                cur_counts[i] += 1;
            }
            let method = job.overrides.method.unwrap_or(Method::JensenShannon);
            let threshold = job
                .overrides
                .threshold
                .unwrap_or(method.default_threshold());
            let score = binning::shares_from_counts(counts, &cur_counts).and_then(|s| match method {
                Method::Psi => binning::psi_from_shares(&s.reference, &s.current),
                Method::JensenShannon => binning::jensen_shannon_from_shares(&s.reference, &s.current),
                other => Err(steward_drift::DriftError::Unsupported(format!(
                    "{} needs the reference values; this baseline is a profile (use jensenshannon or psi)",
                    other.name()
                ))),
            });
            match score {
                Ok(sc) => FeatureDrift {
                    name: job.name.to_string(),
                    kind: job.kind,
                    method: method_of(method),
                    score: sc,
                    threshold,
                    drifted: method.is_drift(sc, threshold),
                    adjusted_score: None,
                    reference_rows: counts.iter().sum::<u64>() as i64,
                    current_rows: present as i64,
                    computation: format!("profile histogram ({} bins)", counts.len()),
                    missing_rate,
                    new_categories: vec![],
                    type_mismatches: job.mismatches as i64,
                },
                Err(e) => failed(&job, e.to_string(), present, missing_rate),
            }
        }
        (RefData::Empty, _) => failed(
            &job,
            "the baseline has no values of this feature".into(),
            present,
            missing_rate,
        ),
        (RefData::Sorted(_) | RefData::Histogram { .. }, WinCol::Cat { .. }) => failed(
            &job,
            "window values are labels; the baseline's are numbers".into(),
            present,
            missing_rate,
        ),
    }
}

/// Computes the report of a window (the spec's features, then the prediction) against the
/// prepared reference.
pub fn compute(prepared: &Prepared, spec: &MonitorSpec, current: WindowData) -> DriftReport {
    let empty = RefData::Empty;
    let pred_index = spec.features.len();
    let has_prediction = prepared.prediction.is_some() && current.cols.len() > pred_index;
    let mut cols = current.cols.into_iter();
    let mut jobs: Vec<Job<'_>> = spec
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| Job {
            name: &f.name,
            kind: f.kind,
            reference: prepared.features.get(&f.name).unwrap_or(&empty),
            current: cols.next().unwrap_or(WinCol::Num {
                values: Vec::new(),
                rows: 0,
                missing: 0,
            }),
            mismatches: current.mismatches.get(i).copied().unwrap_or(0),
            overrides: Overrides {
                method: f.method.map(method_to),
                threshold: f.threshold,
            },
        })
        .collect();
    if let (Some(r), true, Some(col)) = (&prepared.prediction, has_prediction, cols.next()) {
        jobs.push(Job {
            name: "prediction",
            kind: match r {
                RefData::Sorted(_) | RefData::Histogram { .. } => FeatureKind::Numeric,
                _ => FeatureKind::Categorical,
            },
            reference: r,
            current: col,
            mismatches: current.mismatches.get(pred_index).copied().unwrap_or(0),
            overrides: Overrides::default(),
        });
    }
    let mut features = run_parallel(jobs);
    let prediction = if has_prediction { features.pop() } else { None };
    finish_report(features, prediction, spec)
}

/// Corrections, missing features, the share of drifted features and the verdict.
fn finish_report(
    mut features: Vec<FeatureDrift>,
    prediction: Option<FeatureDrift>,
    spec: &MonitorSpec,
) -> DriftReport {
    if spec.fdr_correction {
        adjust(&mut features);
    }
    let missing_features: Vec<String> = features
        .iter()
        .filter(|f| f.current_rows == 0)
        .map(|f| f.name.clone())
        .collect();
    let tested: Vec<&FeatureDrift> = features.iter().filter(|f| f.score.is_finite()).collect();
    let drifted = tested.iter().filter(|f| f.drifted).count();
    let share = if tested.is_empty() {
        0.0
    } else {
        drifted as f64 / tested.len() as f64
    };
    DriftReport {
        drifted_features: drifted as i64,
        drift_share: share,
        drift_share_threshold: spec.drift_share,
        dataset_drift: !tested.is_empty() && share >= spec.drift_share,
        missing_features,
        features,
        prediction,
        compute_ms: 0,
    }
}

/// Capacity of the quantile sketches of windows above `max_exact_rows`.
pub const SKETCH_K: u32 = 4096;

/// A window too large to keep exactly, summarised chunk by chunk: a mergeable quantile sketch
/// per numeric column (certified rank error, see `steward_drift::sketch`), exact category
/// counts per categorical column, and missing / mismatch counts.
pub struct Accumulator {
    numeric: Vec<Option<steward_drift::sketch::QuantileSketch>>,
    counts: Vec<Counts>,
    rows: Vec<u64>,
    missing: Vec<u64>,
    mismatches: Vec<u64>,
}

impl Accumulator {
    /// An empty summary for chunks with columns of `kinds`.
    pub fn new(kinds: &[FeatureKind]) -> Accumulator {
        Accumulator {
            numeric: kinds
                .iter()
                .map(|k| {
                    (*k == FeatureKind::Numeric)
                        .then(|| steward_drift::sketch::QuantileSketch::new(SKETCH_K).ok())
                        .flatten()
                })
                .collect(),
            counts: vec![Counts::new(); kinds.len()],
            rows: vec![0; kinds.len()],
            missing: vec![0; kinds.len()],
            mismatches: vec![0; kinds.len()],
        }
    }

    /// Adds one chunk's values.
    pub fn add(&mut self, w: WindowData) {
        let n = self.rows.len();
        for (i, (col, m)) in w.cols.into_iter().zip(w.mismatches).enumerate().take(n) {
            self.rows[i] += col.rows();
            self.missing[i] += col.missing();
            self.mismatches[i] += m;
            match (col, &mut self.numeric[i]) {
                (WinCol::Num { mut values, .. }, Some(sk)) => {
                    sort_f64(&mut values);
                    // Cannot fail: sorted and finite, same k.
                    let _ = sk.insert_sorted(&values);
                }
                (col, _) => {
                    for (k, c) in col.counts() {
                        *self.counts[i].entry(k).or_insert(0) += c;
                    }
                }
            }
        }
    }

    /// The report: numeric features from the sketches (the reference sketched from its exact
    /// values), categorical ones exactly from the counts.
    pub fn finish(self, prepared: &Prepared, spec: &MonitorSpec) -> DriftReport {
        let mut out = Vec::with_capacity(spec.features.len());
        let n = spec.features.len();
        let names: Vec<(&str, FeatureKind, Overrides, Option<&RefData>)> = spec
            .features
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.kind,
                    Overrides {
                        method: f.method.map(method_to),
                        threshold: f.threshold,
                    },
                    prepared.features.get(&f.name),
                )
            })
            .chain(prepared.prediction.as_ref().map(|r| {
                (
                    "prediction",
                    match r {
                        RefData::Sorted(_) | RefData::Histogram { .. } => FeatureKind::Numeric,
                        _ => FeatureKind::Categorical,
                    },
                    Overrides::default(),
                    Some(r),
                )
            }))
            .collect();
        for (i, (name, kind, overrides, reference)) in names.into_iter().enumerate() {
            if i >= self.rows.len() {
                break;
            }
            let rows = self.rows[i];
            let missing_rate = if rows == 0 {
                0.0
            } else {
                self.missing[i] as f64 / rows as f64
            };
            let present = rows - self.missing[i];
            let mut f = FeatureDrift {
                name: name.to_string(),
                kind,
                method: overrides.method.map(method_of).unwrap_or(DriftMethod::Ks),
                score: f64::NAN,
                threshold: overrides.threshold.unwrap_or(f64::NAN),
                drifted: false,
                adjusted_score: None,
                reference_rows: 0,
                current_rows: present as i64,
                computation: String::new(),
                missing_rate,
                new_categories: vec![],
                type_mismatches: self.mismatches[i] as i64,
            };
            let mut set = |v: Verdict, ref_rows: u64, computation: String| {
                f.method = method_of(v.method);
                f.score = v.score;
                f.threshold = v.threshold;
                f.drifted = v.drifted;
                f.reference_rows = ref_rows as i64;
                f.computation = computation;
            };
            match (reference, &self.numeric[i]) {
                (_, _) if present == 0 => f.computation = "no values in the window".into(),
                (Some(RefData::Sorted(r)), Some(cur)) => {
                    let result = steward_drift::sketch::QuantileSketch::from_sorted(r, SKETCH_K)
                        .and_then(|rs| {
                            steward_drift::sketch::compare::evaluate_numeric_sketches(
                                drift_kind(kind),
                                &rs,
                                cur,
                                &overrides,
                            )
                            .map(|v| (v, rs.epsilon() + cur.epsilon()))
                        });
                    match result {
                        Ok((v, eps)) => set(
                            v.verdict,
                            r.len() as u64,
                            format!(
                                "sketch (rank error <= {eps:.2e}{})",
                                match v.score_range {
                                    Some((lo, hi)) => format!(", score in [{lo:.6}, {hi:.6}]"),
                                    None => ", estimate".into(),
                                }
                            ),
                        ),
                        Err(e) => f.computation = e.to_string(),
                    }
                }
                (Some(RefData::Counts(r)), _) => {
                    let aligned = categorical::align_counts(r, &self.counts[i]);
                    f.new_categories = aligned.new_categories().into_iter().cloned().collect();
                    match select::evaluate_counts(r, &self.counts[i], &overrides) {
                        Ok(v) => set(
                            v,
                            aligned.reference_total(),
                            "exact (category counts)".into(),
                        ),
                        Err(e) => f.computation = e.to_string(),
                    }
                }
                _ => {
                    f.computation =
                        "not available for this baseline beyond the exact window size".into()
                }
            }
            out.push(f);
        }
        let prediction = if out.len() > n { out.pop() } else { None };
        finish_report(out, prediction, spec)
    }
}

/// Benjamini-Hochberg over the p-value features that were computed.
fn adjust(features: &mut [FeatureDrift]) {
    let idx: Vec<usize> = (0..features.len())
        .filter(|&i| features[i].method.is_p_value() && features[i].score.is_finite())
        .collect();
    if idx.is_empty() {
        return;
    }
    let p: Vec<f64> = idx.iter().map(|&i| features[i].score).collect();
    if let Ok(bh) = steward_drift::multiple::benjamini_hochberg(&p, 0.05) {
        for (k, &i) in idx.iter().enumerate() {
            let f = &mut features[i];
            f.adjusted_score = Some(bh.adjusted[k]);
            f.drifted = method_to(f.method).is_drift(bh.adjusted[k], f.threshold);
        }
    }
}

/// Runs the jobs on the available cores, keeping their order.
fn run_parallel(jobs: Vec<Job<'_>>) -> Vec<FeatureDrift> {
    let n = jobs.len();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(n.max(1));
    if threads <= 1 {
        return jobs.into_iter().map(run).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Job<'_>>>> = jobs
        .into_iter()
        .map(|j| std::sync::Mutex::new(Some(j)))
        .collect();
    let out: Vec<std::sync::Mutex<Option<FeatureDrift>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let job = slots[i].lock().ok().and_then(|mut j| j.take());
                    if let Some(job) = job {
                        let r = run(job);
                        if let Ok(mut o) = out[i].lock() {
                            *o = Some(r);
                        }
                    }
                }
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| FeatureDrift {
                    name: String::new(),
                    kind: FeatureKind::Numeric,
                    method: DriftMethod::Ks,
                    score: f64::NAN,
                    threshold: f64::NAN,
                    drifted: false,
                    adjusted_score: None,
                    reference_rows: 0,
                    current_rows: 0,
                    computation: "internal: not computed".into(),
                    missing_rate: 0.0,
                    new_categories: vec![],
                    type_mismatches: 0,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::baseline::summarize;
    use crate::domain::spec::{FeatureSpec, MonitorSpec, Task, WindowSize};

    fn spec(features: Vec<FeatureSpec>) -> MonitorSpec {
        MonitorSpec {
            window: WindowSize::Count { rows: 100 },
            features,
            drift_share: 0.5,
            fdr_correction: false,
            max_exact_rows: 1_000_000,
            task: Task::Unspecified,
            positive_label: "1".into(),
            prediction_output: String::new(),
            retrain_channel: String::new(),
        }
    }

    fn fs(name: &str, kind: FeatureKind) -> FeatureSpec {
        FeatureSpec {
            name: name.into(),
            kind,
            input: String::new(),
            method: None,
            threshold: None,
        }
    }

    #[test]
    fn report_matches_the_statistics_and_flags_data_quality() {
        let x_ref: Vec<f64> = (0..500).map(|i| (i % 50) as f64).collect();
        let c_ref: Vec<Option<String>> = (0..500)
            .map(|i| Some(["a", "b", "c"][i % 3].to_string()))
            .collect();
        let b = Baseline {
            id: "b".into(),
            model_version: String::new(),
            source: "sample".into(),
            num_rows: 500,
            features: vec![
                summarize("x", FeatureKind::Numeric, &Column::Num(x_ref.clone())),
                summarize("c", FeatureKind::Categorical, &Column::Cat(c_ref.clone())),
            ],
            prediction: None,
            creator: String::new(),
            create_time: 0,
        };
        let data = Chunk {
            rows: 500,
            columns: vec![Column::Num(x_ref.clone()), Column::Cat(c_ref)],
            mismatches: vec![0, 0],
        };
        let p = prepare(&b, Some(&data));
        // Current: x shifted by 20, c with a new category and a missing value.
        let x_cur: Vec<f64> = (0..200).map(|i| (i % 50) as f64 + 20.0).collect();
        let mut c_cur: Vec<Option<String>> = (0..200)
            .map(|i| Some(["a", "b"][i % 2].to_string()))
            .collect();
        c_cur[0] = Some("zz".into());
        c_cur[1] = None;
        let cur = Chunk {
            rows: 200,
            columns: vec![
                Column::Num(x_cur.clone()),
                Column::Cat(c_cur),
                Column::Num(vec![]),
            ],
            mismatches: vec![3, 0, 0],
        };
        let r = compute(
            &p,
            &spec(vec![
                fs("x", FeatureKind::Numeric),
                fs("c", FeatureKind::Categorical),
            ]),
            WindowData::from_chunk(&cur),
        );
        let x = &r.features[0];
        assert_eq!(
            x.method,
            DriftMethod::Ks,
            "reference <= 1000 rows, many values: KS"
        );
        let mut a = x_ref.clone();
        let mut bb = x_cur.clone();
        sort_f64(&mut a);
        sort_f64(&mut bb);
        let expect = steward_drift::ks::ks_2samp(&a, &bb).unwrap().p_value;
        assert_eq!(x.score, expect);
        assert!(x.drifted);
        assert_eq!(x.type_mismatches, 3);
        let c = &r.features[1];
        assert_eq!(c.method, DriftMethod::ChiSquared);
        assert_eq!(c.new_categories, vec!["zz".to_string()]);
        assert!((c.missing_rate - 1.0 / 200.0).abs() < 1e-12);
        assert!(c.drifted, "c lost a third of its categories");
        assert_eq!(r.drifted_features, 2);
        assert!(r.dataset_drift);
        assert!(r.prediction.is_none());
    }

    #[test]
    fn benjamini_hochberg_adjusts_p_values_and_redecides() {
        let f = |name: &str, p: f64| FeatureDrift {
            name: name.into(),
            kind: FeatureKind::Numeric,
            method: DriftMethod::Ks,
            score: p,
            threshold: 0.05,
            drifted: p <= 0.05,
            adjusted_score: None,
            reference_rows: 1,
            current_rows: 1,
            computation: "exact".into(),
            missing_rate: 0.0,
            new_categories: vec![],
            type_mismatches: 0,
        };
        // statsmodels fdr_bh([0.01, 0.04, 0.03]) = [0.03, 0.04, 0.04]
        let mut v = vec![f("a", 0.01), f("b", 0.04), f("c", 0.03)];
        adjust(&mut v);
        let adj: Vec<f64> = v.iter().map(|x| x.adjusted_score.unwrap()).collect();
        for (a, e) in adj.iter().zip([0.03, 0.04, 0.04]) {
            assert!((a - e).abs() < 1e-12, "{adj:?}");
        }
        assert!(v.iter().all(|x| x.drifted));
        let mut v = vec![f("a", 0.02), f("b", 0.2)];
        adjust(&mut v);
        assert_eq!(v[0].adjusted_score, Some(0.04));
        assert!(v[0].drifted && !v[1].drifted);
    }

    #[test]
    fn features_without_data_are_reported_missing_not_drifted() {
        let b = Baseline {
            id: "b".into(),
            model_version: String::new(),
            source: "sample".into(),
            num_rows: 3,
            features: vec![summarize(
                "x",
                FeatureKind::Numeric,
                &Column::Num(vec![1.0, 2.0, 3.0]),
            )],
            prediction: None,
            creator: String::new(),
            create_time: 0,
        };
        let data = Chunk {
            rows: 3,
            columns: vec![Column::Num(vec![1.0, 2.0, 3.0])],
            mismatches: vec![0],
        };
        let r = compute(
            &prepare(&b, Some(&data)),
            &spec(vec![fs("x", FeatureKind::Numeric)]),
            WindowData::from_chunk(&Chunk {
                rows: 2,
                columns: vec![Column::Num(vec![f64::NAN, f64::NAN]), Column::Num(vec![])],
                mismatches: vec![0, 0],
            }),
        );
        assert_eq!(r.missing_features, vec!["x".to_string()]);
        assert!(!r.dataset_drift);
        assert_eq!(r.features[0].missing_rate, 1.0);
    }
}
