//! Monitor use cases.

use std::collections::HashSet;

use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, Monitoring, SERVICE, audit, canonical, check_etag, monitor_name, monitor_not_found,
    remember, replay,
};
use crate::domain::spec::{DEFAULT_DRIFT_SHARE, DEFAULT_MAX_EXACT_ROWS, MAX_MAX_EXACT_ROWS};
use crate::domain::{Baseline, DriftMethod, FeatureSpec, Monitor, MonitorSpec, Task, WindowSize};
use crate::store;

/// A feature as the caller asks for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeatureInput {
    /// Baseline feature.
    pub name: String,
    /// Input location ("" = by position).
    pub input: String,
    /// Method override.
    pub method: Option<DriftMethod>,
    /// Threshold override.
    pub threshold: Option<f64>,
}

/// A new monitor as the caller asks for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonitorInput {
    /// `{m}` (None: generated).
    pub id: Option<String>,
    /// Free text.
    pub description: String,
    /// `{d}` or "".
    pub deployment: String,
    /// `{b}`.
    pub baseline: String,
    /// Windows.
    pub window: WindowSize,
    /// Features (empty: all of the baseline's).
    pub features: Vec<FeatureInput>,
    /// None: 0.5.
    pub drift_share: Option<f64>,
    /// Benjamini-Hochberg.
    pub fdr_correction: bool,
    /// None: 1,000,000.
    pub max_exact_rows: Option<i64>,
    /// Task.
    pub task: Task,
    /// "" = "1".
    pub positive_label: String,
    /// Output location.
    pub prediction_output: String,
    /// Channel id or "".
    pub retrain_channel: String,
}

/// Fields an update touches.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MonitorPatch {
    /// Description.
    pub description: Option<String>,
    /// Features: the same ones in the same order, with new overrides.
    pub features: Option<Vec<FeatureInput>>,
    /// Drift share.
    pub drift_share: Option<f64>,
    /// FDR.
    pub fdr_correction: Option<bool>,
    /// Retrain channel.
    pub retrain_channel: Option<String>,
}

/// Resolves features against the baseline.
fn resolve_features(b: &Baseline, input: &[FeatureInput]) -> Result<Vec<FeatureSpec>, Error> {
    if input.is_empty() {
        return Ok(b
            .features
            .iter()
            .map(|f| FeatureSpec {
                name: f.name.clone(),
                kind: f.kind,
                input: String::new(),
                method: None,
                threshold: None,
            })
            .collect());
    }
    let mut seen = HashSet::new();
    input
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let field = format!("monitor.features[{i}]");
            let bf = b.feature(&f.name).ok_or_else(|| {
                Error::invalid_field(
                    format!("{field}.name"),
                    format!("{:?} is not a feature of baselines/{}", f.name, b.id),
                )
            })?;
            if !seen.insert(f.name.as_str()) {
                return Err(Error::invalid_field(
                    format!("{field}.name"),
                    format!("{:?} appears twice", f.name),
                ));
            }
            if let Some(m) = f.method
                && !m.applies_to(bf.kind)
            {
                return Err(Error::invalid_field(
                    format!("{field}.method"),
                    format!("{m:?} does not apply to a {:?} feature", bf.kind),
                ));
            }
            if let Some(t) = f.threshold {
                let p_value = f.method.map(DriftMethod::is_p_value);
                let ok = t.is_finite() && t > 0.0 && (p_value != Some(true) || t < 1.0);
                if !ok {
                    return Err(Error::invalid_field(
                        format!("{field}.threshold"),
                        "must be a positive number (below 1 for p-value methods)",
                    ));
                }
            }
            steward_common::validate::text(&format!("{field}.input"), &f.input, 256)?;
            Ok(FeatureSpec {
                name: f.name.clone(),
                kind: bf.kind,
                input: f.input.clone(),
                method: f.method,
                threshold: f.threshold,
            })
        })
        .collect()
}

fn check_share(s: f64) -> Result<f64, Error> {
    if s.is_finite() && s > 0.0 && s <= 1.0 {
        Ok(s)
    } else {
        Err(Error::invalid_field(
            "monitor.drift_share",
            "must be in (0, 1]",
        ))
    }
}

impl Monitoring {
    async fn check_channel(&self, id: &str, field: &str) -> Result<(), Error> {
        if !id.is_empty()
            && store::channels::get_one(self.db.conn(), id)
                .await?
                .is_none()
        {
            return Err(
                Error::not_found("CHANNEL_NOT_FOUND", format!("channels/{id}"))
                    .with_violation(field, "no such channel"),
            );
        }
        Ok(())
    }

    /// Creates a monitor over an existing baseline.
    pub async fn create_monitor(
        &self,
        ctx: &Ctx,
        input: MonitorInput,
        request_id: &str,
    ) -> Result<Monitor, Error> {
        let key = IdemKey::new(SERVICE, "CreateMonitor", request_id, &canonical(&input))?;
        let b = self
            .get_baseline(&input.baseline)
            .await
            .map_err(|e| e.with_violation("monitor.baseline", "no such baseline"))?;
        match input.window {
            WindowSize::Time { ms } if !(1_000..=31 * 86_400_000).contains(&ms) => {
                return Err(Error::invalid_field(
                    "monitor.window.duration",
                    "between 1 second and 31 days",
                ));
            }
            WindowSize::Count { rows } if !(10..=MAX_MAX_EXACT_ROWS).contains(&rows) => {
                return Err(Error::invalid_field(
                    "monitor.window.count",
                    format!("between 10 and {MAX_MAX_EXACT_ROWS} predictions"),
                ));
            }
            _ => {}
        }
        let max_exact_rows = input.max_exact_rows.unwrap_or(DEFAULT_MAX_EXACT_ROWS);
        if !(1_000..=MAX_MAX_EXACT_ROWS).contains(&max_exact_rows) {
            return Err(Error::invalid_field(
                "monitor.max_exact_rows",
                format!("between 1000 and {MAX_MAX_EXACT_ROWS}"),
            ));
        }
        self.check_channel(&input.retrain_channel, "monitor.retrain_channel")
            .await?;
        let spec = MonitorSpec {
            window: input.window,
            features: resolve_features(&b, &input.features)?,
            drift_share: check_share(input.drift_share.unwrap_or(DEFAULT_DRIFT_SHARE))?,
            fdr_correction: input.fdr_correction,
            max_exact_rows,
            task: input.task,
            positive_label: if input.positive_label.is_empty() {
                "1".into()
            } else {
                input.positive_label.clone()
            },
            prediction_output: input.prediction_output.clone(),
            retrain_channel: input.retrain_channel.clone(),
        };
        let now = steward_common::time::now_ms();
        let m = Monitor {
            id: input
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
            description: input.description.clone(),
            deployment: input.deployment.clone(),
            baseline: b.id.clone(),
            spec,
            creator: ctx.actor.clone(),
            create_time: now,
            update_time: now,
            revision: 1,
        };
        let out = with_write_tx!(self.db, "create_monitor", |tx| {
            if let Some(v) = replay::<Monitor>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            store::monitors::insert(&tx, &m).await?;
            audit(
                &tx,
                ctx,
                "monitoring.monitors.create",
                monitor_name(&m.id),
                request_id,
                None::<&()>,
                Some(&m),
            )
            .await?;
            remember(&tx, key.as_ref(), &m).await?;
            Ok(m.clone())
        })?;
        self.forget(&out.id);
        Ok(out)
    }

    /// One monitor.
    pub async fn get_monitor(&self, id: &str) -> Result<Monitor, Error> {
        store::monitors::get_one(self.db.conn(), id)
            .await?
            .ok_or_else(|| monitor_not_found(id))
    }

    /// A page of monitors.
    pub async fn list_monitors(
        &self,
        deployment: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Monitor>, Error> {
        store::monitors::list(self.db.conn(), deployment, after, limit).await
    }

    /// Updates a monitor.
    pub async fn update_monitor(
        &self,
        ctx: &Ctx,
        id: &str,
        patch: MonitorPatch,
        etag: &str,
        request_id: &str,
    ) -> Result<Monitor, Error> {
        let key = IdemKey::new(
            SERVICE,
            "UpdateMonitor",
            request_id,
            &canonical(&(id, &patch, etag)),
        )?;
        if let Some(c) = &patch.retrain_channel {
            self.check_channel(c, "monitor.retrain_channel").await?;
        }
        let out = with_write_tx!(self.db, "update_monitor", |tx| {
            if let Some(v) = replay::<Monitor>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let before = store::monitors::get_one(&*tx, id)
                .await?
                .ok_or_else(|| monitor_not_found(id))?;
            check_etag(etag, before.revision, &monitor_name(id))?;
            let mut m = before.clone();
            if let Some(d) = &patch.description {
                m.description = d.clone();
            }
            if let Some(f) = &patch.features {
                let b = store::baselines::get_one(&*tx, &m.baseline)
                    .await?
                    .ok_or_else(|| Error::internal("monitor's baseline vanished"))?;
                let features = resolve_features(&b, f)?;
                // Stored window values are laid out by feature; only the methods, thresholds
                // and input locations of the same features may change.
                let names =
                    |v: &[FeatureSpec]| v.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
                if names(&features) != names(&m.spec.features) {
                    return Err(Error::invalid_field(
                        "monitor.features",
                        "list the monitor's features in the same order (methods, thresholds and \
                         inputs may change); to watch other features, create another monitor",
                    ));
                }
                m.spec.features = features;
            }
            if let Some(s) = patch.drift_share {
                m.spec.drift_share = check_share(s)?;
            }
            if let Some(f) = patch.fdr_correction {
                m.spec.fdr_correction = f;
            }
            if let Some(c) = &patch.retrain_channel {
                m.spec.retrain_channel = c.clone();
            }
            m.update_time = steward_common::time::now_ms();
            m.revision += 1;
            store::monitors::update(&tx, &m).await?;
            audit(
                &tx,
                ctx,
                "monitoring.monitors.update",
                monitor_name(id),
                request_id,
                Some(&before),
                Some(&m),
            )
            .await?;
            remember(&tx, key.as_ref(), &m).await?;
            Ok(m)
        })?;
        self.forget(id);
        Ok(out)
    }

    /// Deletes a monitor with its windows, records, series and rules (alerts stay as history).
    pub async fn delete_monitor(
        &self,
        ctx: &Ctx,
        id: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteMonitor",
            request_id,
            &canonical(&(id, etag)),
        )?;
        with_write_tx!(self.db, "delete_monitor", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let before = store::monitors::get_one(&*tx, id)
                .await?
                .ok_or_else(|| monitor_not_found(id))?;
            check_etag(etag, before.revision, &monitor_name(id))?;
            store::windows::delete_all(&tx, id).await?;
            store::records::delete_all(&tx, id).await?;
            store::alerts::delete_series(&tx, id).await?;
            store::alerts::delete_rules(&tx, id, None).await?;
            store::monitors::delete(&tx, id).await?;
            audit(
                &tx,
                ctx,
                "monitoring.monitors.delete",
                monitor_name(id),
                request_id,
                Some(&before),
                None::<&()>,
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })?;
        self.forget(id);
        Ok(())
    }
}
