//! Performance, latency, errors and KPIs over a time range, per variant.

use std::collections::BTreeMap;

use steward_common::Error;

use super::Monitoring;
use crate::domain::Monitor;
use crate::domain::perf::{self, Joined, Performance};
use crate::store;

impl Monitoring {
    /// Every variant together (variant ""), then each variant, over `[from, to)`.
    pub(crate) async fn performance(
        &self,
        m: &Monitor,
        from: i64,
        to: i64,
    ) -> Result<Vec<Performance>, Error> {
        let rows = store::records::joined(self.db.conn(), &m.id, from, to).await?;
        let kpis = store::records::kpi_means(self.db.conn(), &m.id, from, to).await?;
        let task = m.spec.task;
        let positive = m.spec.positive_label.clone();
        tokio::task::spawn_blocking(move || {
            let mut by_variant: BTreeMap<&str, Vec<&Joined>> = BTreeMap::new();
            for r in &rows {
                by_variant.entry(r.variant.as_str()).or_default().push(r);
            }
            let all: Vec<&Joined> = rows.iter().collect();
            let mut out = vec![perf::compute("", &all, task, &positive)];
            for (v, rs) in &by_variant {
                out.push(perf::compute(v, rs, task, &positive));
            }
            for p in &mut out {
                if let Some(k) = kpis.get(&p.variant) {
                    p.kpis = k.clone();
                }
            }
            out
        })
        .await
        .map_err(Error::internal)
    }

    /// `GetPerformance`.
    pub async fn get_performance(
        &self,
        monitor: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Performance>, Error> {
        if to <= from {
            return Err(Error::invalid_field("end_time", "must be after start_time"));
        }
        let m = self.get_monitor(monitor).await?;
        self.performance(&m, from, to).await
    }

    /// `GetMetricSeries`.
    pub async fn metric_series(
        &self,
        monitor: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64, i64)>, Error> {
        self.get_monitor(monitor).await?;
        steward_common::validate::text("metric", metric, 300)?;
        if metric.is_empty() {
            return Err(Error::invalid_field("metric", "must not be empty"));
        }
        store::alerts::series(self.db.conn(), monitor, metric, from, to, 100_000).await
    }
}
