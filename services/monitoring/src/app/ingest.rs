//! Ingest: predictions into windows (and the predictions table, for feedback), ground truth,
//! and KPIs.

use std::collections::{BTreeMap, HashMap, HashSet};

use steward_common::Error;
use steward_storage::with_write_tx;

use super::Monitoring;
use crate::domain::columns::Value;
use crate::domain::{Chunk, Column, FeatureKind, Monitor, WindowSize};
use crate::store::records::KpiRow;
use crate::store::{self, WriteTx, windows as wstore};

/// Most records, labels or KPIs in one call.
pub const MAX_BATCH: usize = 100_000;

/// One prediction to ingest.
#[derive(Debug, Clone)]
pub struct Record {
    /// Unique per monitor.
    pub request_id: String,
    /// ms.
    pub time: i64,
    /// Feature values by name.
    pub features: HashMap<String, Value>,
    /// The prediction.
    pub prediction: Value,
    /// Variant.
    pub variant: String,
    /// Model version.
    pub model_version: String,
    /// µs.
    pub latency_us: i64,
    /// Failed.
    pub error: bool,
}

/// What an ingest stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// New records.
    pub accepted: i64,
    /// Request ids stored before (or twice in the batch).
    pub duplicates: i64,
    /// New records whose time window had already closed (kept for performance, not for drift).
    pub late: i64,
}

fn check_request_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    if id.len() > 200 {
        return Err(Error::limit(field, "at most 200 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_batch(field: &str, n: usize) -> Result<(), Error> {
    if n > MAX_BATCH {
        return Err(Error::limit(field, format!("at most {MAX_BATCH} per call")));
    }
    Ok(())
}

/// The column kinds of a monitor's chunks: its features, then the prediction.
pub(crate) fn chunk_kinds(m: &Monitor, prediction: Option<FeatureKind>) -> Vec<FeatureKind> {
    let mut k: Vec<FeatureKind> = m.spec.features.iter().map(|f| f.kind).collect();
    k.push(prediction.unwrap_or(FeatureKind::Numeric));
    k
}

/// Predictions given as columns (the fast form).
#[derive(Debug, Clone, Default)]
pub struct ColumnsIn {
    /// Request ids.
    pub request_ids: Vec<String>,
    /// ms per row (empty: now).
    pub times: Vec<i64>,
    /// Features by name.
    pub features: Vec<(String, Column)>,
    /// Outputs (None: none).
    pub prediction: Option<Column>,
    /// Every row's variant.
    pub variant: String,
    /// Every row's model version.
    pub model_version: String,
    /// µs per row (empty: 0).
    pub latency_us: Vec<i64>,
    /// Per row (empty: false).
    pub errors: Vec<bool>,
}

/// A monitor's predictions as columns: its features in spec order, then the prediction.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub ids: Vec<String>,
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
    /// Per column: rows whose value did not fit the column's type (empty: none).
    pub masks: Vec<Vec<bool>>,
    /// Distinct (variant, model version) pairs and each row's pair.
    pub labels: Vec<(String, String)>,
    pub label_of: Vec<u32>,
    pub latency_us: Vec<i64>,
    pub errors: Vec<bool>,
}

impl Batch {
    fn from_records(m: &Monitor, kinds: &[FeatureKind], records: Vec<Record>) -> Batch {
        let n = records.len();
        let mut columns: Vec<Column> = kinds.iter().map(|k| Column::for_kind(*k)).collect();
        let mut masks: Vec<Vec<bool>> = vec![Vec::new(); kinds.len()];
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut b = Batch {
            ids: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
            columns: Vec::new(),
            masks: Vec::new(),
            labels: Vec::new(),
            label_of: Vec::with_capacity(n),
            latency_us: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
        };
        for (row, r) in records.into_iter().enumerate() {
            let pred = if r.error {
                &Value::Missing
            } else {
                &r.prediction
            };
            let values = m
                .spec
                .features
                .iter()
                .map(|f| r.features.get(&f.name).unwrap_or(&Value::Missing))
                .chain(std::iter::once(pred));
            for (i, v) in values.enumerate() {
                if !columns[i].push(v) {
                    let mask = &mut masks[i];
                    mask.resize(n, false);
                    mask[row] = true;
                }
            }
            let key = (r.variant, r.model_version);
            let li = labels.iter().position(|l| *l == key).unwrap_or_else(|| {
                labels.push(key);
                labels.len() - 1
            });
            b.label_of.push(li as u32);
            b.ids.push(r.request_id);
            b.times.push(r.time);
            b.latency_us.push(r.latency_us);
            b.errors.push(r.error);
        }
        b.columns = columns;
        b.masks = masks;
        b.labels = labels;
        b
    }

    fn from_columns(m: &Monitor, kinds: &[FeatureKind], c: ColumnsIn, now: i64) -> Batch {
        let n = c.request_ids.len();
        let mut by_name: HashMap<String, Column> = c.features.into_iter().collect();
        let mut columns = Vec::with_capacity(kinds.len());
        let mut masks = Vec::with_capacity(kinds.len());
        let pred_kind = kinds[kinds.len() - 1];
        let wanted = m
            .spec
            .features
            .iter()
            .map(|f| (by_name.remove(&f.name), f.kind))
            .chain(std::iter::once((c.prediction, pred_kind)));
        for (col, kind) in wanted {
            let (col, mask) = match col {
                Some(col) => col.into_kind(kind),
                None => (
                    match kind {
                        FeatureKind::Numeric => Column::Num(vec![f64::NAN; n]),
                        _ => Column::Cat(vec![None; n]),
                    },
                    Vec::new(),
                ),
            };
            columns.push(col);
            masks.push(mask);
        }
        let errors = if c.errors.is_empty() {
            vec![false; n]
        } else {
            c.errors
        };
        // A failed prediction has no output.
        if let Some(p) = columns.last_mut() {
            for (i, e) in errors.iter().enumerate() {
                if *e {
                    match p {
                        Column::Num(v) => v[i] = f64::NAN,
                        Column::Cat(v) => v[i] = None,
                    }
                }
            }
        }
        Batch {
            times: if c.times.is_empty() {
                vec![now; n]
            } else {
                c.times
            },
            ids: c.request_ids,
            columns,
            masks,
            labels: vec![(c.variant, c.model_version)],
            label_of: vec![0; n],
            latency_us: if c.latency_us.is_empty() {
                vec![0; n]
            } else {
                c.latency_us
            },
            errors,
        }
    }

    /// The chunk of rows `idx`.
    fn chunk(&self, idx: &[usize]) -> Chunk {
        Chunk {
            rows: idx.len(),
            columns: self.columns.iter().map(|c| c.select(idx)).collect(),
            mismatches: self
                .masks
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        0
                    } else {
                        idx.iter().filter(|&&i| m[i]).count() as u64
                    }
                })
                .collect(),
        }
    }
}

impl Monitoring {
    /// Validates and stores predictions for `monitor` (atomic: all of the batch or none).
    pub async fn ingest(&self, monitor: &str, records: Vec<Record>) -> Result<Ingested, Error> {
        check_batch("records", records.len())?;
        for (i, r) in records.iter().enumerate() {
            check_request_id(&format!("records[{i}].request_id"), &r.request_id)?;
            steward_common::validate::text(&format!("records[{i}].variant"), &r.variant, 128)?;
            steward_common::validate::text(
                &format!("records[{i}].model_version"),
                &r.model_version,
                300,
            )?;
            if r.latency_us < 0 {
                return Err(Error::invalid_field(
                    format!("records[{i}].latency_us"),
                    "must not be negative",
                ));
            }
            for (k, v) in &r.features {
                if k.len() > 256 {
                    return Err(Error::limit(
                        format!("records[{i}].features"),
                        "names of at most 256 bytes",
                    ));
                }
                if let Value::Cat(s) = v {
                    steward_common::validate::text(
                        &format!("records[{i}].features[{k:?}]"),
                        s,
                        4096,
                    )?;
                }
            }
            if let Value::Cat(s) = &r.prediction {
                steward_common::validate::text(&format!("records[{i}].prediction"), s, 4096)?;
            }
        }
        let m = self.monitor_cached(monitor).await?;
        let kinds = self.kinds(&m).await?;
        let batch = Batch::from_records(&m, &kinds, records);
        self.store_batch(&m, batch).await
    }

    /// Validates and stores predictions given as columns (atomic).
    pub async fn ingest_columns(&self, monitor: &str, c: ColumnsIn) -> Result<Ingested, Error> {
        let n = c.request_ids.len();
        check_batch("columns.request_ids", n)?;
        for (i, id) in c.request_ids.iter().enumerate() {
            check_request_id(&format!("columns.request_ids[{i}]"), id)?;
        }
        let same = |len: usize, field: &str| -> Result<(), Error> {
            if len != 0 && len != n {
                return Err(Error::invalid_field(
                    field,
                    format!("has {len} values for {n} request ids"),
                ));
            }
            Ok(())
        };
        same(c.times.len(), "columns.times_ms")?;
        same(c.latency_us.len(), "columns.latency_us")?;
        same(c.errors.len(), "columns.errors")?;
        let mut names = HashSet::new();
        for (i, (name, col)) in c.features.iter().enumerate() {
            if !names.insert(name.as_str()) {
                return Err(Error::invalid_field(
                    format!("columns.features[{i}].name"),
                    format!("{name:?} appears twice"),
                ));
            }
            if col.len() != n {
                return Err(Error::invalid_field(
                    format!("columns.features[{i}]"),
                    format!("has {} values for {n} request ids", col.len()),
                ));
            }
        }
        if let Some(p) = &c.prediction
            && p.len() != n
        {
            return Err(Error::invalid_field(
                "columns.prediction",
                format!("has {} values for {n} request ids", p.len()),
            ));
        }
        if c.latency_us.iter().any(|l| *l < 0) {
            return Err(Error::invalid_field(
                "columns.latency_us",
                "must not be negative",
            ));
        }
        steward_common::validate::text("columns.variant", &c.variant, 128)?;
        steward_common::validate::text("columns.model_version", &c.model_version, 300)?;
        let m = self.monitor_cached(monitor).await?;
        let kinds = self.kinds(&m).await?;
        let batch = Batch::from_columns(&m, &kinds, c, steward_common::time::now_ms());
        self.store_batch(&m, batch).await
    }

    async fn kinds(&self, m: &Monitor) -> Result<Vec<FeatureKind>, Error> {
        let reference = self.reference(&m.baseline).await?;
        Ok(chunk_kinds(
            m,
            reference.baseline.prediction.as_ref().map(|p| p.kind),
        ))
    }

    async fn store_batch(&self, m: &Monitor, batch: Batch) -> Result<Ingested, Error> {
        let total = batch.ids.len() as i64;
        let out = with_write_tx!(self.db, "ingest_predictions", |tx| {
            store_records(&tx, m, &batch).await
        })?;
        Ok(Ingested {
            duplicates: total - out.accepted,
            ..out
        })
    }

    /// Stores ground truth; returns (accepted, unmatched).
    pub async fn ingest_feedback(
        &self,
        monitor: &str,
        feedback: Vec<(String, Value)>,
    ) -> Result<(i64, i64), Error> {
        check_batch("feedback", feedback.len())?;
        for (i, (id, label)) in feedback.iter().enumerate() {
            check_request_id(&format!("feedback[{i}].request_id"), id)?;
            match label {
                Value::Missing => {
                    return Err(Error::invalid_field(
                        format!("feedback[{i}].label"),
                        "must be set",
                    ));
                }
                Value::Cat(s) => {
                    steward_common::validate::text(&format!("feedback[{i}].label"), s, 4096)?
                }
                Value::Num(x) if !x.is_finite() => {
                    return Err(Error::invalid_field(
                        format!("feedback[{i}].label"),
                        "must be a finite number",
                    ));
                }
                Value::Num(_) => {}
            }
        }
        self.monitor_cached(monitor).await?;
        // The last label of a request id in the batch wins.
        let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
        for (id, l) in &feedback {
            last.insert(id.as_str(), l);
        }
        let rows: Vec<(String, Value)> = last
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let now = steward_common::time::now_ms();
        let unmatched = with_write_tx!(self.db, "ingest_feedback", |tx| {
            store::records::upsert_feedback(&tx, monitor, &rows, now).await
        })?;
        Ok((feedback.len() as i64, unmatched))
    }

    /// Stores KPI values.
    pub async fn ingest_kpis(&self, monitor: &str, kpis: Vec<KpiRow>) -> Result<i64, Error> {
        check_batch("kpis", kpis.len())?;
        for (i, k) in kpis.iter().enumerate() {
            steward_common::validate::key(&format!("kpis[{i}].name"), &k.name, &self.limits)?;
            if !k.value.is_finite() {
                return Err(Error::invalid_field(
                    format!("kpis[{i}].value"),
                    "must be a finite number",
                ));
            }
            if !k.request_id.is_empty() {
                check_request_id(&format!("kpis[{i}].request_id"), &k.request_id)?;
            }
        }
        self.monitor_cached(monitor).await?;
        let n = kpis.len() as i64;
        with_write_tx!(self.db, "ingest_kpis", |tx| {
            store::records::insert_kpis(&tx, monitor, &kpis).await
        })?;
        Ok(n)
    }
}

async fn store_records(tx: &WriteTx, m: &Monitor, b: &Batch) -> Result<Ingested, Error> {
    // The first of each request id wins within the batch.
    let mut seen = HashSet::with_capacity(b.ids.len());
    let rows: Vec<usize> = (0..b.ids.len())
        .filter(|&i| seen.insert(b.ids[i].as_str()))
        .collect();
    if rows.is_empty() {
        return Ok(Ingested::default());
    }
    // Count windows number the new records in arrival order under the monitor's row lock: the
    // numbers are given assuming every row is new; request ids stored before (a client's retry,
    // rare) are skipped by the insert and the rows after them renumbered.
    let base = match m.spec.window {
        WindowSize::Count { .. } => store::monitors::take_seq(tx, &m.id, 0)
            .await?
            .ok_or_else(|| super::monitor_not_found(&m.id))?,
        WindowSize::Time { .. } => 0,
    };
    let mut windows: Vec<i64> = rows
        .iter()
        .enumerate()
        .map(|(k, &i)| m.window_of(b.times[i], base + k as i64))
        .collect();
    let preds = store::records::NewPredictions {
        ids: &b.ids,
        times: &b.times,
        prediction: &b.columns[b.columns.len() - 1],
        labels: &b.labels,
        label_of: &b.label_of,
        latency_us: &b.latency_us,
        errors: &b.errors,
    };
    let inserted = store::records::insert_predictions(tx, &m.id, &preds, &rows, &windows).await?;
    if let WindowSize::Count { .. } = m.spec.window {
        if inserted.len() < rows.len() {
            let mut k = 0i64;
            for (j, &i) in rows.iter().enumerate() {
                if !inserted.contains(b.ids[i].as_str()) {
                    continue;
                }
                let w = m.window_of(b.times[i], base + k);
                if w != windows[j] {
                    windows[j] = w;
                    store::records::set_window(tx, &m.id, &b.ids[i], w).await?;
                }
                k += 1;
            }
        }
        store::monitors::take_seq(tx, &m.id, inserted.len() as i64).await?;
    }
    // Group the new rows by window.
    let mut by_window: BTreeMap<i64, (Vec<usize>, i64, i64)> = BTreeMap::new();
    for (k, &i) in rows.iter().enumerate() {
        if !inserted.contains(b.ids[i].as_str()) {
            continue;
        }
        let e = by_window
            .entry(windows[k])
            .or_insert_with(|| (Vec::new(), i64::MAX, i64::MIN));
        e.0.push(i);
        e.1 = Ord::min(e.1, b.times[i]);
        e.2 = Ord::max(e.2, b.times[i]);
    }
    let mut late = 0;
    for (n, (idx, min_t, max_t)) in by_window {
        let (start, end, full_at) = match m.spec.window {
            WindowSize::Time { .. } => {
                let (s, e) = m.time_bounds(n).unwrap_or((min_t, max_t));
                (s, e, 0)
            }
            WindowSize::Count { rows } => (min_t, i64::MAX, rows),
        };
        wstore::ensure(tx, &m.id, n, start, end).await?;
        let w = wstore::get_one(&**tx, &m.id, n)
            .await?
            .ok_or_else(|| Error::internal("window row vanished"))?;
        if w.state == wstore::CLOSED {
            late += idx.len() as i64;
            continue;
        }
        let chunk = b.chunk(&idx);
        let count = chunk.rows as i64;
        wstore::insert_chunk(tx, &m.id, n, count, chunk.encode()).await?;
        wstore::add_rows(tx, &w, count, min_t, max_t, full_at).await?;
    }
    Ok(Ingested {
        accepted: inserted.len() as i64,
        duplicates: 0,
        late,
    })
}
