//! Run data use cases: LogRunData, StreamMetrics, GetMetricHistory and LogRunInputs.
//!
//! Metric points, params and tags are data-plane records: append-only, not audited one by one.

use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, SERVICE, Tracking, remember, replay, run_in, writable_run_in};
use crate::domain::downsample::{self, Method};
use crate::domain::{DatasetInput, RunData, Series};
use crate::store::datasets;
use crate::store::metrics::{self, HistoryCursor};

/// Max datasets in one LogRunInputs.
pub const MAX_INPUTS_PER_CALL: usize = 100;

impl Tracking {
    /// Logs a batch atomically. `canonical` is a stable encoding of the request, used to detect
    /// a `request_id` reused for different data.
    pub async fn log_run_data(
        &self,
        _ctx: &Ctx,
        exp: &str,
        run_id: &str,
        data: &RunData,
        request_id: &str,
        canonical: &[u8],
    ) -> Result<usize, Error> {
        let key = IdemKey::new(SERVICE, "LogRunData", request_id, canonical)?;
        with_write_tx!(self.db, "log_run_data", |tx| {
            if let Some(n) = replay::<usize>(&tx, key.as_ref()).await? {
                return Ok(n);
            }
            writable_run_in(&*tx, exp, run_id).await?;
            let n = metrics::write_run_data(&tx, run_id, data).await?;
            remember(&tx, key.as_ref(), &n).await?;
            Ok(n)
        })
    }

    /// Reads a page of a metric's history, in logged order.
    pub async fn metric_history(
        &self,
        exp: &str,
        run_id: &str,
        key: &str,
        cursor: Option<HistoryCursor>,
        page_size: usize,
    ) -> Result<(Series, Option<HistoryCursor>, i64), Error> {
        run_in(self.db.conn(), exp, run_id).await?;
        let total = metrics::count(self.db.conn(), run_id, key).await?;
        let (s, next) = metrics::history(self.db.conn(), run_id, key, cursor, page_size).await?;
        Ok((s, next, total))
    }

    /// The whole history reduced to at most `max_points` points, sorted by step.
    pub async fn metric_history_downsampled(
        &self,
        exp: &str,
        run_id: &str,
        key: &str,
        max_points: usize,
        method: Method,
    ) -> Result<(Series, i64), Error> {
        run_in(self.db.conn(), exp, run_id).await?;
        let all = metrics::full_series(self.db.conn(), run_id, key).await?;
        let total = all.len() as i64;
        let sorted = downsample::sort_by_step(all);
        Ok((downsample::downsample(&sorted, max_points, method), total))
    }

    /// Records the datasets a run used.
    pub async fn log_run_inputs(
        &self,
        _ctx: &Ctx,
        exp: &str,
        run_id: &str,
        inputs: &[DatasetInput],
        request_id: &str,
        canonical: &[u8],
    ) -> Result<(), Error> {
        if inputs.len() > MAX_INPUTS_PER_CALL {
            return Err(Error::limit(
                "inputs",
                format!("at most {MAX_INPUTS_PER_CALL} datasets per call"),
            ));
        }
        let key = IdemKey::new(SERVICE, "LogRunInputs", request_id, canonical)?;
        with_write_tx!(self.db, "log_run_inputs", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            writable_run_in(&*tx, exp, run_id).await?;
            for (idx, i) in inputs.iter().enumerate() {
                let i = resolve_stored(&*tx, idx, i).await?;
                datasets::add_input(&tx, run_id, &i).await?;
            }
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })
    }
}

/// A run input naming a stored dataset version gets the version's dataset id as name, its
/// digest, schema and profile, and its pinned name (`latest` resolved to a number).
async fn resolve_stored<C: sea_orm::ConnectionTrait>(
    c: &C,
    idx: usize,
    i: &DatasetInput,
) -> Result<DatasetInput, Error> {
    use crate::domain::datasets::{VersionState, parse_version_name};
    if i.dataset.source_type != crate::domain::STORED_DATASET || !i.dataset.digest.is_empty() {
        return Ok(i.clone());
    }
    let field = format!("inputs[{idx}].dataset.version");
    let (ds, v) = parse_version_name(&i.dataset.source_uri, &field)?;
    let version = crate::store::dsv::get_version(c, &ds, &v)
        .await?
        .ok_or_else(|| Error::not_found("DATASET_VERSION_NOT_FOUND", &i.dataset.source_uri))?;
    if version.state != VersionState::Committed {
        return Err(Error::failed_precondition(
            "DATASET_VERSION_PENDING",
            format!(
                "{} is not committed; commit it before a run uses it",
                version.name()
            ),
        )
        .with_violation(field, "not committed"));
    }
    let mut out = i.clone();
    out.dataset.name = ds;
    out.dataset.digest = version.digest.clone();
    out.dataset.source_uri = version.name();
    out.dataset.schema_json = version.schema_json.clone();
    out.dataset.profile = version.profile.clone();
    Ok(out)
}
