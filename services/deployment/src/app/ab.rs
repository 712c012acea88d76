//! A/B tests: sticky assignment by the deployment's routing, outcomes per request id, results
//! with classical or always-valid statistics, a sample-ratio check, and promotion of the
//! winner.

use std::collections::BTreeMap;

use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{
    Ctx, Deployments, SERVICE, audit, canonical, dep_name, dep_not_found, remember, replay,
};
use crate::domain::stats::{self, Summary, TestResult};
use crate::domain::{AbTest, FULL, MetricKind, Variant};
use crate::store::{ab as store, decisions, deployments as dstore};

/// Input of CreateAbTest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewAbTest {
    /// Variant names; the first is the control.
    pub variants: Vec<String>,
    /// Metric name.
    pub metric: String,
    /// Kind.
    pub kind: MetricKind,
    /// Alpha.
    pub alpha: f64,
    /// Always-valid.
    pub sequential: bool,
}

/// Per-variant numbers of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    /// Variant.
    pub variant: String,
    /// Requests routed to it during the test.
    pub assigned: i64,
    /// Outcome summary.
    pub summary: Summary,
}

/// Results of a test.
#[derive(Debug, Clone)]
pub struct AbResults {
    /// The test.
    pub test: AbTest,
    /// Per variant.
    pub variants: Vec<VariantResult>,
    /// Each non-control variant against the control.
    pub comparisons: Vec<(String, Option<TestResult>)>,
    /// SRM p-value.
    pub srm_p_value: Option<f64>,
}

/// SRM threshold.
pub const SRM_ALPHA: f64 = 0.001;

fn test_name(t: &AbTest) -> String {
    format!("{}/abTests/{}", dep_name(&t.deployment), t.id)
}

fn not_found(dep: &str, id: &str) -> Error {
    Error::not_found(
        "AB_TEST_NOT_FOUND",
        format!("{}/abTests/{id}", dep_name(dep)),
    )
}

/// Compares `treatment` with `control` for the test's metric kind and mode.
pub fn compare(t: &AbTest, control: &Summary, treatment: &Summary) -> Option<TestResult> {
    match (t.kind, t.sequential) {
        (MetricKind::Binary, false) => stats::two_proportion_z(control, treatment, t.alpha),
        (MetricKind::Binary, true) => stats::msprt_proportions(control, treatment, t.alpha),
        (MetricKind::Continuous, false) => stats::welch_t(control, treatment, t.alpha),
        (MetricKind::Continuous, true) => stats::msprt_means(control, treatment, t.alpha),
    }
}

impl Deployments {
    /// Starts an A/B test over variants of the deployment's current revision.
    pub async fn create_ab_test(
        &self,
        ctx: &Ctx,
        dep: &str,
        req: NewAbTest,
        request_id: &str,
    ) -> Result<AbTest, Error> {
        if req.variants.len() < 2 {
            return Err(Error::invalid_field(
                "ab_test.variants",
                "an A/B test compares at least two variants",
            ));
        }
        if !(req.alpha > 0.0 && req.alpha <= 0.5) {
            return Err(Error::invalid_field("ab_test.alpha", "must be in (0, 0.5]"));
        }
        if req.metric.is_empty() || req.metric.len() > 250 {
            return Err(Error::invalid_field(
                "ab_test.metric",
                "must be 1-250 bytes",
            ));
        }
        let key = IdemKey::new(
            SERVICE,
            "CreateAbTest",
            request_id,
            &canonical(&(dep, &req)),
        )?;
        with_write_tx!(self.db, "create_ab_test", |tx| {
            if let Some(v) = replay::<AbTest>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let mut d = dstore::get_one(&*tx, dep)
                .await?
                .ok_or_else(|| dep_not_found(dep))?;
            if !d.active_rollout.is_empty() || !d.active_ab_test.is_empty() {
                return Err(Error::failed_precondition(
                    "DEPLOYMENT_BUSY",
                    format!(
                        "{} already has a running rollout or A/B test",
                        dep_name(dep)
                    ),
                ));
            }
            let rev = dstore::revision(&*tx, dep, d.current_revision)
                .await?
                .ok_or_else(|| Error::internal("current revision missing"))?;
            let mut seen = std::collections::HashSet::new();
            for (i, v) in req.variants.iter().enumerate() {
                if !rev.variants.iter().any(|x| &x.name == v && x.weight_bp > 0) || !seen.insert(v)
                {
                    return Err(Error::invalid_field(
                        format!("ab_test.variants[{i}]"),
                        format!(
                            "{v:?} is not a (distinct) variant with traffic in revision {}",
                            rev.number
                        ),
                    ));
                }
            }
            let now = steward_common::time::now_ms();
            let t = AbTest {
                id: uuid::Uuid::now_v7().simple().to_string()[20..].to_string(),
                deployment: dep.to_string(),
                variants: req.variants.clone(),
                metric: req.metric.clone(),
                kind: req.kind,
                alpha: req.alpha,
                sequential: req.sequential,
                running: true,
                winner: String::new(),
                revision: rev.number,
                creator: ctx.actor.clone(),
                create_time: now,
                conclude_time: None,
            };
            store::insert(&tx, &t).await?;
            d.active_ab_test = t.id.clone();
            d.update_time = now;
            d.revision += 1;
            dstore::update(&tx, &d).await?;
            audit(
                &tx,
                ctx,
                "deployment.ab_tests.create",
                test_name(&t),
                request_id,
                None::<&()>,
                Some(&t),
            )
            .await?;
            remember(&tx, key.as_ref(), &t).await?;
            Ok(t)
        })
    }

    /// One test.
    pub async fn get_ab_test(&self, dep: &str, id: &str) -> Result<AbTest, Error> {
        store::get_one(self.db.conn(), id)
            .await?
            .filter(|t| t.deployment == dep)
            .ok_or_else(|| not_found(dep, id))
    }

    /// Records the metric of one routed request; returns its variant. A second report for the
    /// same request is ignored (the first counts).
    pub async fn report_outcome(
        &self,
        dep: &str,
        id: &str,
        request_id: &str,
        value: f64,
    ) -> Result<String, Error> {
        let t = self.get_ab_test(dep, id).await?;
        if !t.running {
            return Err(Error::failed_precondition(
                "AB_TEST_CONCLUDED",
                format!("{} is concluded", test_name(&t)),
            ));
        }
        match t.kind {
            MetricKind::Binary if value != 0.0 && value != 1.0 => {
                return Err(Error::invalid_field("value", "a BINARY metric is 0 or 1"));
            }
            _ if !value.is_finite() => {
                return Err(Error::invalid_field("value", "must be a finite number"));
            }
            _ => {}
        }
        let d = decisions::get_one(self.db.conn(), request_id)
            .await?
            .ok_or_else(|| {
                Error::not_found("DECISION_NOT_FOUND", format!("decisions/{request_id}"))
                    .with_violation("request_id", "no routed request with this id")
            })?;
        if d.deployment != dep
            || d.revision != t.revision
            || d.time < t.create_time
            || !t.variants.contains(&d.variant)
        {
            return Err(Error::failed_precondition(
                "REQUEST_NOT_IN_TEST",
                format!(
                    "request {request_id} was not routed within {}",
                    test_name(&t)
                ),
            ));
        }
        let now = steward_common::time::now_ms();
        with_write_tx!(self.db, "report_outcome", |tx| {
            store::record_outcome(&tx, &t.id, request_id, &d.variant, value, now).await?;
            Ok(())
        })?;
        Ok(d.variant)
    }

    /// Results so far.
    pub async fn ab_results(&self, dep: &str, id: &str) -> Result<AbResults, Error> {
        let t = self.get_ab_test(dep, id).await?;
        let c = self.db.conn();
        let sums = store::summaries(c, &t.id).await?;
        let until_assigned = decisions::assigned(c, dep, t.revision, t.create_time).await?;
        let rev = dstore::revision(c, dep, t.revision)
            .await?
            .ok_or_else(|| Error::internal("test revision missing"))?;
        let weights: BTreeMap<&str, i32> = rev
            .variants
            .iter()
            .map(|v| (v.name.as_str(), v.weight_bp))
            .collect();
        let variants: Vec<VariantResult> = t
            .variants
            .iter()
            .map(|v| VariantResult {
                variant: v.clone(),
                assigned: until_assigned.get(v).copied().unwrap_or(0),
                summary: sums.get(v).copied().unwrap_or_default(),
            })
            .collect();
        let control = variants[0].summary;
        let comparisons = variants[1..]
            .iter()
            .map(|v| (v.variant.clone(), compare(&t, &control, &v.summary)))
            .collect();
        let observed: Vec<u64> = variants.iter().map(|v| v.assigned as u64).collect();
        let w: Vec<f64> = t
            .variants
            .iter()
            .map(|v| f64::from(*weights.get(v.as_str()).unwrap_or(&0)))
            .collect();
        let srm_p_value = stats::srm_p_value(&observed, &w);
        Ok(AbResults {
            test: t,
            variants,
            comparisons,
            srm_p_value,
        })
    }

    /// Ends a test; with a winner (named, or the best significant one with `promote_best`),
    /// applies a revision that sends it all traffic.
    pub async fn conclude_ab_test(
        &self,
        ctx: &Ctx,
        dep: &str,
        id: &str,
        winner: &str,
        promote_best: bool,
        request_id: &str,
    ) -> Result<AbTest, Error> {
        let key = IdemKey::new(
            SERVICE,
            "ConcludeAbTest",
            request_id,
            &canonical(&(dep, id, winner, promote_best)),
        )?;
        let chosen = if !winner.is_empty() {
            let t = self.get_ab_test(dep, id).await?;
            if !t.variants.iter().any(|v| v == winner) {
                return Err(Error::invalid_field(
                    "winner",
                    format!("{winner:?} is not a variant of the test"),
                ));
            }
            winner.to_string()
        } else if promote_best {
            // Only choosing the best needs the statistics.
            let res = self.ab_results(dep, id).await?;
            res.comparisons
                .iter()
                .filter_map(|(v, r)| {
                    r.as_ref()
                        .filter(|r| r.significant && r.effect > 0.0)
                        .map(|r| (v, r.effect))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(v, _)| v.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let t = with_write_tx!(self.db, "conclude_ab_test", |tx| {
            if let Some(v) = replay::<AbTest>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let mut t = store::get_one(&*tx, id)
                .await?
                .filter(|t| t.deployment == dep)
                .ok_or_else(|| not_found(dep, id))?;
            if !t.running {
                return Err(Error::failed_precondition(
                    "AB_TEST_CONCLUDED",
                    format!("{} is concluded", test_name(&t)),
                ));
            }
            let before = t.clone();
            let mut d = dstore::get_one(&*tx, dep)
                .await?
                .ok_or_else(|| dep_not_found(dep))?;
            if !chosen.is_empty() {
                let rev = dstore::revision(&*tx, dep, t.revision)
                    .await?
                    .ok_or_else(|| Error::internal("test revision missing"))?;
                let w: Variant = rev
                    .variants
                    .iter()
                    .find(|v| v.name == chosen)
                    .cloned()
                    .ok_or_else(|| Error::internal("winner missing"))?;
                let why = format!("A/B test {} winner {chosen}", t.id);
                self.apply_in(
                    &tx,
                    ctx,
                    &mut d,
                    vec![Variant {
                        weight_bp: FULL,
                        ..w
                    }],
                    rev.shadow.clone(),
                    why,
                    request_id,
                )
                .await?;
            }
            t.running = false;
            t.winner = chosen.clone();
            t.conclude_time = Some(steward_common::time::now_ms());
            store::conclude(&tx, &t).await?;
            d.active_ab_test.clear();
            d.revision += 1;
            dstore::update(&tx, &d).await?;
            audit(
                &tx,
                ctx,
                "deployment.ab_tests.conclude",
                test_name(&t),
                request_id,
                Some(&before),
                Some(&t),
            )
            .await?;
            remember(&tx, key.as_ref(), &t).await?;
            Ok(t)
        })?;
        self.revisions.invalidate(dep);
        Ok(t)
    }
}
