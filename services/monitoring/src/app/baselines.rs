//! Baselines: from a reference sample (exact values kept) or from a dataset profile logged in
//! tracking (its histogram and top values).

use std::collections::{BTreeMap, HashSet};

use steward_common::Error;
use steward_proto::tracking as tpb;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, Monitoring, SERVICE, audit, canonical, remember, replay};
use crate::domain::baseline::{kind_of_dtype, summarize};
use crate::domain::{Baseline, BaselineFeature, Chunk, Column, FeatureKind};
use crate::store::baselines as store;

/// Most rows of a reference sample.
pub const MAX_SAMPLE_ROWS: usize = 10_000_000;

/// Where a new baseline comes from.
#[derive(Debug, Clone)]
pub enum BaselineSource {
    /// Exact reference values: (name, kind, values) per column, and the prediction column's name.
    Sample {
        /// Columns.
        columns: Vec<(String, FeatureKind, Column)>,
        /// The model output's column ("" for none).
        prediction_column: String,
    },
    /// A dataset profile: `experiments/{e}/runs/{r}` and the dataset's name.
    Profile {
        /// Run.
        run: String,
        /// Dataset name.
        dataset: String,
    },
}

/// `baselines/{b}`.
pub(crate) fn baseline_name(id: &str) -> String {
    format!("baselines/{id}")
}

impl Monitoring {
    /// Creates a baseline.
    pub async fn create_baseline(
        &self,
        ctx: &Ctx,
        id: Option<String>,
        model_version: String,
        source: BaselineSource,
        request_id: &str,
    ) -> Result<Baseline, Error> {
        let given_id = id.clone();
        let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        let now = steward_common::time::now_ms();
        let (baseline, data) = match source {
            BaselineSource::Sample {
                columns,
                prediction_column,
            } => from_sample(&id, columns, &prediction_column)?,
            BaselineSource::Profile { run, dataset } => {
                let d = self.peers.dataset_profile(&run, &dataset).await?;
                (from_profile(&id, &run, &d)?, Vec::new())
            }
        };
        // The retry check compares the request by the digest of what it would store.
        let content = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(&data);
            h.update(baseline.source.as_bytes());
            hex::encode(h.finalize())
        };
        let key = IdemKey::new(
            SERVICE,
            "CreateBaseline",
            request_id,
            &canonical(&(&given_id, &model_version, &content)),
        )?;
        let baseline = Baseline {
            model_version,
            creator: ctx.actor.clone(),
            create_time: now,
            ..baseline
        };
        with_write_tx!(self.db, "create_baseline", |tx| {
            if let Some(v) = replay::<Baseline>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            store::insert(&tx, &baseline, &data).await?;
            audit(
                &tx,
                ctx,
                "monitoring.baselines.create",
                baseline_name(&baseline.id),
                request_id,
                None::<&()>,
                Some(&baseline),
            )
            .await?;
            remember(&tx, key.as_ref(), &baseline).await?;
            Ok(baseline.clone())
        })
    }

    /// One baseline.
    pub async fn get_baseline(&self, id: &str) -> Result<Baseline, Error> {
        store::get_one(self.db.conn(), id)
            .await?
            .ok_or_else(|| Error::not_found("BASELINE_NOT_FOUND", baseline_name(id)))
    }

    /// A page of baselines.
    pub async fn list_baselines(
        &self,
        model_version: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Baseline>, Error> {
        store::list(self.db.conn(), model_version, after, limit).await
    }
}

fn from_sample(
    id: &str,
    columns: Vec<(String, FeatureKind, Column)>,
    prediction_column: &str,
) -> Result<(Baseline, Vec<u8>), Error> {
    if columns.is_empty() {
        return Err(Error::invalid_field("sample.columns", "must not be empty"));
    }
    let rows = columns[0].2.len();
    let mut seen = HashSet::new();
    for (i, (name, _, col)) in columns.iter().enumerate() {
        let field = format!("sample.columns[{i}]");
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid_field(
                format!("{field}.name"),
                format!("{name:?} appears twice"),
            ));
        }
        if col.len() != rows {
            return Err(Error::invalid_field(
                field,
                format!("has {} values; the first column has {rows}", col.len()),
            ));
        }
    }
    if rows == 0 {
        return Err(Error::invalid_field("sample.columns", "hold no values"));
    }
    if rows > MAX_SAMPLE_ROWS {
        return Err(Error::limit(
            "sample.columns",
            format!("at most {MAX_SAMPLE_ROWS} rows"),
        ));
    }
    if !prediction_column.is_empty() && !seen.contains(prediction_column) {
        return Err(Error::invalid_field(
            "sample.prediction_column",
            format!("{prediction_column:?} is not a column of the sample"),
        ));
    }
    let mut features = Vec::new();
    let mut prediction = None;
    let mut chunk = Chunk {
        rows,
        ..Default::default()
    };
    let mut pred_col = None;
    for (name, kind, col) in columns {
        let summary = summarize(&name, kind, &col);
        if name == prediction_column {
            prediction = Some(summary);
            pred_col = Some(col);
        } else {
            features.push(summary);
            chunk.columns.push(col);
            chunk.mismatches.push(0);
        }
    }
    if features.is_empty() {
        return Err(Error::invalid_field(
            "sample.columns",
            "need at least one feature besides the prediction column",
        ));
    }
    if let Some(c) = pred_col {
        chunk.columns.push(c);
        chunk.mismatches.push(0);
    }
    let b = Baseline {
        id: id.to_string(),
        model_version: String::new(),
        source: "sample".into(),
        num_rows: rows as i64,
        features,
        prediction,
        creator: String::new(),
        create_time: 0,
    };
    Ok((b, chunk.encode()))
}

fn from_profile(id: &str, run: &str, d: &tpb::Dataset) -> Result<Baseline, Error> {
    let p = d
        .profile
        .as_ref()
        .filter(|p| !p.features.is_empty())
        .ok_or_else(|| {
            Error::failed_precondition(
                "DATASET_HAS_NO_PROFILE",
                format!("dataset {:?} of {run} was logged without a profile", d.name),
            )
            .with_violation("profile.dataset", "has no per-feature profile")
        })?;
    let features = p
        .features
        .iter()
        .map(|f| {
            let mut kind = kind_of_dtype(&f.dtype, f.distinct);
            if kind == FeatureKind::Numeric && f.bin_edges.len() < 2 {
                kind = FeatureKind::Categorical;
            }
            BaselineFeature {
                name: f.name.clone(),
                kind,
                count: f.count,
                missing: f.missing,
                exact: false,
                mean: f.mean,
                stddev: f.stddev,
                min: f.min,
                max: f.max,
                bin_edges: f.bin_edges.clone(),
                bin_counts: f.bin_counts.clone(),
                categories: f
                    .top_values
                    .iter()
                    .map(|v| (v.value.clone(), v.count))
                    .collect::<BTreeMap<_, _>>(),
            }
        })
        .collect();
    Ok(Baseline {
        id: id.to_string(),
        model_version: String::new(),
        source: format!("profile:{run}#{}", d.name),
        num_rows: p.num_rows,
        features,
        prediction: None,
        creator: String::new(),
        create_time: 0,
    })
}
