//! Alert rules, their evaluation, and alerts firing and resolving (with events on the bus and
//! webhook deliveries, in the transaction that changes the alert).

use std::collections::HashMap;

use steward_common::Error;
use steward_proto::events as epb;
use steward_proto::events::event_envelope::Payload;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, Monitoring, SERVICE, audit, canonical, emit, monitor_name, remember, replay};
use crate::domain::Monitor;
use crate::domain::perf::Performance;
use crate::domain::rules::{Action, Metric, Rule};
use crate::store::alerts::{self as astore, AlertRow};
use crate::store::{WriteTx, channels as cstore};

/// `monitors/{m}/rules/{r}`.
pub(crate) fn rule_name(monitor: &str, id: &str) -> String {
    format!("monitors/{monitor}/rules/{id}")
}

impl Monitoring {
    /// Creates an alert rule on a monitor.
    pub async fn create_rule(
        &self,
        ctx: &Ctx,
        rule: Rule,
        request_id: &str,
    ) -> Result<Rule, Error> {
        let key = IdemKey::new(SERVICE, "CreateAlertRule", request_id, &canonical(&rule))?;
        let m = self.get_monitor(&rule.monitor).await?;
        let names: Vec<String> = m.spec.features.iter().map(|f| f.name.clone()).collect();
        let metric = Metric::parse(&rule.metric, &names)
            .map_err(|e| Error::invalid_field("rule.metric", e))?;
        if !rule.threshold.is_finite() {
            return Err(Error::invalid_field(
                "rule.threshold",
                "must be a finite number",
            ));
        }
        if !metric.per_window() && rule.window_ms <= 0 {
            return Err(Error::invalid_field(
                "rule.window",
                "a time range is needed for performance, latency, error and KPI series",
            ));
        }
        if rule.hold_ms < 0 || rule.window_ms < 0 {
            return Err(Error::invalid_field("rule.hold", "must not be negative"));
        }
        if !matches!(rule.severity.as_str(), "warning" | "critical") {
            return Err(Error::invalid_field(
                "rule.severity",
                "\"warning\" or \"critical\"",
            ));
        }
        for (i, c) in rule.channels.iter().enumerate() {
            if cstore::get_one(self.db.conn(), c).await?.is_none() {
                return Err(
                    Error::not_found("CHANNEL_NOT_FOUND", format!("channels/{c}"))
                        .with_violation(format!("rule.channels[{i}]"), "no such channel"),
                );
            }
        }
        with_write_tx!(self.db, "create_rule", |tx| {
            if let Some(v) = replay::<Rule>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            astore::insert_rule(&tx, &rule).await?;
            audit(
                &tx,
                ctx,
                "monitoring.rules.create",
                rule_name(&rule.monitor, &rule.id),
                request_id,
                None::<&()>,
                Some(&rule),
            )
            .await?;
            remember(&tx, key.as_ref(), &rule).await?;
            Ok(rule.clone())
        })
    }

    /// Rules of a monitor.
    pub async fn list_rules(&self, monitor: &str) -> Result<Vec<Rule>, Error> {
        self.get_monitor(monitor).await?;
        astore::rules(self.db.conn(), Some(monitor)).await
    }

    /// Deletes a rule (an open alert of it is resolved).
    pub async fn delete_rule(
        &self,
        ctx: &Ctx,
        monitor: &str,
        id: &str,
        request_id: &str,
    ) -> Result<(), Error> {
        let key = IdemKey::new(
            SERVICE,
            "DeleteAlertRule",
            request_id,
            &canonical(&(monitor, id)),
        )?;
        let m = self.get_monitor(monitor).await?;
        with_write_tx!(self.db, "delete_rule", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let before = astore::rule(&*tx, monitor, id)
                .await?
                .ok_or_else(|| Error::not_found("RULE_NOT_FOUND", rule_name(monitor, id)))?;
            if let Some(a) = astore::open_alert(&*tx, monitor, id).await? {
                resolve(&tx, ctx, &m, &before, &a, "rule deleted").await?;
            }
            astore::delete_rules(&tx, monitor, Some(id)).await?;
            audit(
                &tx,
                ctx,
                "monitoring.rules.delete",
                rule_name(monitor, id),
                request_id,
                Some(&before),
                None::<&()>,
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })
    }

    /// One alert.
    pub async fn get_alert(&self, id: &str) -> Result<AlertRow, Error> {
        astore::alert(self.db.conn(), id)
            .await?
            .ok_or_else(|| Error::not_found("ALERT_NOT_FOUND", format!("alerts/{id}")))
    }

    /// Alerts, newest first.
    pub async fn list_alerts(
        &self,
        state: Option<i16>,
        monitor: Option<&str>,
        after: Option<(i64, String)>,
        limit: u64,
    ) -> Result<Vec<AlertRow>, Error> {
        astore::alerts(self.db.conn(), state, monitor, after, limit).await
    }

    /// Evaluates the time-range rules (performance, latency, errors, KPIs) of every monitor at
    /// `now`; returns how many alerts fired or resolved.
    pub async fn evaluate_rules(&self, now: i64) -> Result<usize, Error> {
        let rules = astore::rules(self.db.conn(), None).await?;
        // Time-range rules read up to MAX_JOINED predictions each: evaluate each rule at most
        // every ten ticks (5 s at most).
        let every = (self.settings.tick * 10).min(std::time::Duration::from_secs(5));
        let mut changed = 0;
        let mut perf: HashMap<(String, i64), Performance> = HashMap::new();
        for rule in rules {
            let Ok(m) = self.monitor_cached(&rule.monitor).await else {
                continue;
            };
            let names: Vec<String> = m.spec.features.iter().map(|f| f.name.clone()).collect();
            let Ok(metric) = Metric::parse(&rule.metric, &names) else {
                continue;
            };
            if metric.per_window() {
                continue;
            }
            {
                let mut last = super::lock(&self.cache.rule_runs);
                let k = (rule.monitor.clone(), rule.id.clone());
                if last.get(&k).is_some_and(|t| t.elapsed() < every) {
                    continue;
                }
                last.insert(k, std::time::Instant::now());
            }
            let key = (rule.monitor.clone(), rule.window_ms);
            if !perf.contains_key(&key) {
                let p = self
                    .performance(&m, now - rule.window_ms, now)
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                perf.insert(key.clone(), p);
            }
            let p = &perf[&key];
            let value = match &metric {
                Metric::Performance(n) | Metric::Latency(n) => p.get(n),
                Metric::ErrorRate => p.error_rate,
                Metric::Kpi(k) => p.kpis.get(k).copied().unwrap_or(f64::NAN),
                _ => f64::NAN,
            };
            let ctx = Ctx {
                actor: format!("system:{SERVICE}"),
                ..Default::default()
            };
            changed += with_write_tx!(self.db, "evaluate_rule", |tx| {
                let mut r = rule.clone();
                apply(&tx, &ctx, &m, &mut r, value, now).await
            })?;
        }
        Ok(changed)
    }
}

/// Evaluates `rule` with `value` at `now` inside `tx`: remembers when the condition started
/// holding, fires or resolves. Returns 1 when an alert changed.
pub(crate) async fn apply(
    tx: &WriteTx,
    ctx: &Ctx,
    m: &Monitor,
    rule: &mut Rule,
    value: f64,
    now: i64,
) -> Result<usize, Error> {
    let open = astore::open_alert(&**tx, &m.id, &rule.id).await?;
    let before = rule.pending_since;
    let action = rule.step(value, now, open.is_some());
    if rule.pending_since != before {
        astore::set_pending(tx, rule).await?;
    }
    match (action, open) {
        (Action::Fire, None) => {
            let a = AlertRow {
                id: uuid::Uuid::now_v7().simple().to_string(),
                monitor: m.id.clone(),
                rule: rule.id.clone(),
                deployment: m.deployment.clone(),
                state: astore::FIRING,
                severity: rule.severity.clone(),
                metric: rule.metric.clone(),
                value,
                threshold: rule.threshold,
                reason: rule.describe(value),
                fire_time: now,
                resolve_time: None,
            };
            if !astore::open(tx, &a).await? {
                return Ok(0);
            }
            tracing::info!(alert = %a.id, monitor = %m.id, rule = %rule.id, reason = %a.reason, "alert fired");
            emit(
                tx,
                ctx,
                "monitoring.alert.fired",
                format!("alerts/{}", a.id),
                Payload::AlertFired(epb::AlertFired {
                    alert: format!("alerts/{}", a.id),
                    monitor: monitor_name(&m.id),
                    deployment: dep_name(&m.deployment),
                    severity: a.severity.clone(),
                    reason: a.reason.clone(),
                }),
            )
            .await?;
            notify(tx, rule, &a, "FIRING", now).await?;
            Ok(1)
        }
        (Action::Resolve, Some(a)) => {
            resolve(tx, ctx, m, rule, &a, &rule.describe(value)).await?;
            Ok(1)
        }
        _ => Ok(0),
    }
}

fn dep_name(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!("deployments/{d}")
    }
}

async fn resolve(
    tx: &WriteTx,
    ctx: &Ctx,
    m: &Monitor,
    rule: &Rule,
    a: &AlertRow,
    why: &str,
) -> Result<(), Error> {
    let now = steward_common::time::now_ms();
    if !astore::resolve(tx, &a.id, now).await? {
        return Ok(());
    }
    tracing::info!(alert = %a.id, monitor = %m.id, why, "alert resolved");
    emit(
        tx,
        ctx,
        "monitoring.alert.resolved",
        format!("alerts/{}", a.id),
        Payload::AlertResolved(epb::AlertResolved {
            alert: format!("alerts/{}", a.id),
            monitor: monitor_name(&m.id),
            deployment: dep_name(&m.deployment),
        }),
    )
    .await?;
    let resolved = AlertRow {
        state: astore::RESOLVED,
        resolve_time: Some(now),
        ..a.clone()
    };
    notify(tx, rule, &resolved, "RESOLVED", now).await
}

/// Queues the rule's webhooks for an alert change.
async fn notify(
    tx: &WriteTx,
    rule: &Rule,
    a: &AlertRow,
    state: &str,
    now: i64,
) -> Result<(), Error> {
    if rule.channels.is_empty() {
        return Ok(());
    }
    let body = serde_json::json!({
        "type": "alert",
        "state": state,
        "alert": format!("alerts/{}", a.id),
        "monitor": monitor_name(&a.monitor),
        "rule": rule_name(&a.monitor, &a.rule),
        "deployment": dep_name(&a.deployment),
        "severity": a.severity,
        "metric": a.metric,
        "value": a.value,
        "threshold": a.threshold,
        "reason": a.reason,
        "fire_time_ms": a.fire_time,
        "resolve_time_ms": a.resolve_time,
    })
    .to_string();
    for c in &rule.channels {
        cstore::enqueue(tx, c, "alert", &body, now).await?;
    }
    Ok(())
}
