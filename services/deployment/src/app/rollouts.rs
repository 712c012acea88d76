//! Canary rollouts: start, the controller that advances or rolls back, promote and rollback on
//! request, and rollback on a monitoring alert.

use steward_common::Error;
use steward_proto::events::{RolloutChanged, event_envelope::Payload};
use steward_storage::idempotency::IdemKey;
use steward_storage::{WriteTx, with_write_tx};

use super::deployments::VariantSpec;
use super::environments::env_not_found;
use super::{
    Ctx, Deployments, SERVICE, audit, canonical, dep_name, dep_not_found, emit, remember, replay,
};
use crate::domain::{
    Deployment, FULL, Guardrails, Rollout, RolloutEvent, RolloutState, Step, canary_split,
    check_steps,
};
use crate::store::{decisions, deployments as dstore, environments, rollouts as store};

/// Name of the canary variant in rollout revisions.
pub const CANARY: &str = "canary";

fn rollout_name(r: &Rollout) -> String {
    format!("{}/rollouts/{}", dep_name(&r.deployment), r.id)
}

fn not_found(dep: &str, id: &str) -> Error {
    Error::not_found(
        "ROLLOUT_NOT_FOUND",
        format!("{}/rollouts/{id}", dep_name(dep)),
    )
}

/// What the controller decided for one rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Keep baking.
    Wait,
    /// Next step (or success).
    Advance(String),
    /// Roll back, with the reason.
    RollBack(String),
}

/// The controller's rule: roll back on a guardrail breach once enough canary decisions exist;
/// advance when the step has baked and has enough decisions.
pub fn judge(g: &Guardrails, n: i64, errors: i64, p99_us: i64, baked: bool) -> Verdict {
    let enough = n >= g.min_requests.max(1) || (g.min_requests == 0 && baked);
    if n > 0 && n >= g.min_requests {
        let rate = errors as f64 / n as f64;
        if g.max_error_rate > 0.0 && rate > g.max_error_rate {
            return Verdict::RollBack(format!(
                "canary error rate {:.4} over {n} decisions exceeds the guardrail {}",
                rate, g.max_error_rate
            ));
        }
        let p99_ms = p99_us as f64 / 1000.0;
        if g.max_p99_latency_ms > 0.0 && p99_ms > g.max_p99_latency_ms {
            return Verdict::RollBack(format!(
                "canary p99 latency {p99_ms:.2} ms over {n} decisions exceeds the guardrail {} ms",
                g.max_p99_latency_ms
            ));
        }
    }
    if baked && enough {
        Verdict::Advance(format!(
            "step healthy for its bake time ({n} canary decisions, {errors} errors)"
        ))
    } else {
        Verdict::Wait
    }
}

impl Deployments {
    /// Starts a canary rollout of `model_version` on deployment `id`.
    pub async fn start_rollout(
        &self,
        ctx: &Ctx,
        id: &str,
        model_version: &str,
        steps: Vec<Step>,
        guardrails: Guardrails,
        request_id: &str,
    ) -> Result<Rollout, Error> {
        check_steps(&steps)?;
        let key = IdemKey::new(
            SERVICE,
            "StartRollout",
            request_id,
            &canonical(&(id, model_version, &steps, &guardrails)),
        )?;
        let d0 = dstore::get_one(self.db.conn(), id)
            .await?
            .ok_or_else(|| dep_not_found(id))?;
        let env = environments::get_one(self.db.conn(), &d0.environment)
            .await?
            .ok_or_else(|| env_not_found(&d0.environment))?;
        let spec = VariantSpec {
            name: CANARY.into(),
            model_version: model_version.into(),
            weight_bp: 0,
            upstream_url: String::new(),
        };
        let canary = self
            .resolve_variants(&d0.model, std::slice::from_ref(&spec), "model_version")
            .await?
            .remove(0);
        self.check_policy(&env, &d0.model, &[&canary]).await?;
        let r = with_write_tx!(self.db, "start_rollout", |tx| {
            if let Some(v) = replay::<Rollout>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let mut d = dstore::get_one(&*tx, id)
                .await?
                .ok_or_else(|| dep_not_found(id))?;
            if !d.active_rollout.is_empty() || !d.active_ab_test.is_empty() {
                return Err(Error::failed_precondition(
                    "DEPLOYMENT_BUSY",
                    format!("{} already has a running rollout or A/B test", dep_name(id)),
                ));
            }
            let base = dstore::revision(&*tx, id, d.current_revision)
                .await?
                .ok_or_else(|| Error::internal("current revision missing"))?;
            let now = steward_common::time::now_ms();
            let rid = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
            let variants = canary_split(&base.variants, &canary, steps[0].weight_bp);
            let why = format!(
                "rollout {rid} step 1 ({}%)",
                f64::from(steps[0].weight_bp) / 100.0
            );
            self.apply_in(
                &tx,
                ctx,
                &mut d,
                variants,
                base.shadow.clone(),
                why,
                request_id,
            )
            .await?;
            d.active_rollout = rid.clone();
            dstore::update(&tx, &d).await?;
            let r = Rollout {
                id: rid,
                deployment: id.to_string(),
                model_version: model_version.to_string(),
                canary: canary.clone(),
                steps: steps.clone(),
                guardrails,
                state: RolloutState::Running,
                current_step: 0,
                step_start_time: now,
                base_revision: base.number,
                reason: "started".into(),
                history: vec![RolloutEvent {
                    time: now,
                    kind: "started".into(),
                    step: 0,
                    reason: String::new(),
                    actor: ctx.actor.clone(),
                }],
                creator: ctx.actor.clone(),
                create_time: now,
                update_time: now,
                revision: 1,
            };
            store::insert(&tx, &r).await?;
            audit(
                &tx,
                ctx,
                "deployment.rollouts.start",
                rollout_name(&r),
                request_id,
                None::<&()>,
                Some(&r),
            )
            .await?;
            changed(&tx, ctx, &r).await?;
            remember(&tx, key.as_ref(), &r).await?;
            Ok(r)
        })?;
        self.revisions.invalidate(id);
        Ok(r)
    }

    /// One rollout.
    pub async fn get_rollout(&self, dep: &str, id: &str) -> Result<Rollout, Error> {
        store::get_one(self.db.conn(), id)
            .await?
            .filter(|r| r.deployment == dep)
            .ok_or_else(|| not_found(dep, id))
    }

    /// Rollouts of a deployment, newest first.
    pub async fn list_rollouts(&self, dep: &str) -> Result<Vec<Rollout>, Error> {
        if dstore::get_one(self.db.conn(), dep).await?.is_none() {
            return Err(dep_not_found(dep));
        }
        store::of_deployment(self.db.conn(), dep).await
    }

    /// Moves a running rollout to its next step (or success) now.
    pub async fn promote_rollout(
        &self,
        ctx: &Ctx,
        dep: &str,
        id: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<Rollout, Error> {
        let key = IdemKey::new(
            SERVICE,
            "PromoteRollout",
            request_id,
            &canonical(&(dep, id, reason)),
        )?;
        let why = if reason.is_empty() {
            "promoted on request".to_string()
        } else {
            format!("promoted: {reason}")
        };
        self.transition(
            ctx,
            dep,
            id,
            key,
            request_id,
            Transition::Advance(why, "promoted", None),
        )
        .await
    }

    /// Rolls a running rollout back now.
    pub async fn rollback_rollout(
        &self,
        ctx: &Ctx,
        dep: &str,
        id: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<Rollout, Error> {
        let key = IdemKey::new(
            SERVICE,
            "RollbackRollout",
            request_id,
            &canonical(&(dep, id, reason)),
        )?;
        let why = if reason.is_empty() {
            "rolled back on request".to_string()
        } else {
            format!("rolled back on request: {reason}")
        };
        self.transition(ctx, dep, id, key, request_id, Transition::RollBack(why))
            .await
    }

    async fn transition(
        &self,
        ctx: &Ctx,
        dep: &str,
        id: &str,
        key: Option<IdemKey>,
        request_id: &str,
        t: Transition,
    ) -> Result<Rollout, Error> {
        let r = with_write_tx!(self.db, "rollout_transition", |tx| {
            if let Some(v) = replay::<Rollout>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            let r = store::get_one(&*tx, id)
                .await?
                .filter(|r| r.deployment == dep)
                .ok_or_else(|| not_found(dep, id))?;
            if r.state != RolloutState::Running {
                return Err(Error::failed_precondition(
                    "ROLLOUT_NOT_RUNNING",
                    format!("{} is {}", rollout_name(&r), r.state.name()),
                ));
            }
            let out = self.apply_transition(&tx, ctx, r, &t, request_id).await?;
            remember(&tx, key.as_ref(), &out).await?;
            Ok(out)
        })?;
        self.revisions.invalidate(dep);
        Ok(r)
    }

    /// Applies `t` to running rollout `r` inside `tx` (the caller checked it is running).
    async fn apply_transition(
        &self,
        tx: &WriteTx,
        ctx: &Ctx,
        mut r: Rollout,
        t: &Transition,
        request_id: &str,
    ) -> Result<Rollout, Error> {
        let mut d: Deployment = dstore::get_one(&**tx, &r.deployment)
            .await?
            .ok_or_else(|| dep_not_found(&r.deployment))?;
        let base = dstore::revision(&**tx, &r.deployment, r.base_revision)
            .await?
            .ok_or_else(|| Error::internal("base revision missing"))?;
        let now = steward_common::time::now_ms();
        let expected = r.revision;
        let (action, kind, reason) = match t {
            Transition::Advance(reason, kind, from) => {
                if from.is_some_and(|f| f != r.current_step) {
                    return Err(Error::failed_precondition(
                        "ROLLOUT_MOVED",
                        "the rollout moved concurrently",
                    ));
                }
                let next = r.current_step + 1;
                if next as usize >= r.steps.len() {
                    let variants = canary_split(&base.variants, &r.canary, FULL);
                    self.apply_in(
                        tx,
                        ctx,
                        &mut d,
                        variants,
                        base.shadow.clone(),
                        format!("rollout {} succeeded", r.id),
                        request_id,
                    )
                    .await?;
                    r.state = RolloutState::Succeeded;
                    d.active_rollout.clear();
                    dstore::update(tx, &d).await?;
                    ("deployment.rollouts.succeed", "succeeded", reason.clone())
                } else {
                    let w = r.steps[next as usize].weight_bp;
                    let why = format!(
                        "rollout {} step {} ({}%)",
                        r.id,
                        next + 1,
                        f64::from(w) / 100.0
                    );
                    self.apply_in(
                        tx,
                        ctx,
                        &mut d,
                        canary_split(&base.variants, &r.canary, w),
                        base.shadow.clone(),
                        why,
                        request_id,
                    )
                    .await?;
                    r.current_step = next;
                    r.step_start_time = now;
                    ("deployment.rollouts.step", *kind, reason.clone())
                }
            }
            Transition::RollBack(reason) => {
                let why = format!("rollout {} rolled back: {reason}", r.id);
                self.apply_in(
                    tx,
                    ctx,
                    &mut d,
                    base.variants.clone(),
                    base.shadow.clone(),
                    why,
                    request_id,
                )
                .await?;
                r.state = RolloutState::RolledBack;
                d.active_rollout.clear();
                dstore::update(tx, &d).await?;
                (
                    "deployment.rollouts.rollback",
                    "rolled_back",
                    reason.clone(),
                )
            }
        };
        let before = r.clone();
        r.reason = reason.clone();
        r.history.push(RolloutEvent {
            time: now,
            kind: kind.to_string(),
            step: r.current_step,
            reason,
            actor: ctx.actor.clone(),
        });
        r.update_time = now;
        r.revision += 1;
        if !store::update_if(tx, &r, expected).await? {
            return Err(Error::new(
                steward_common::ErrorKind::Aborted,
                steward_storage::db::RETRYABLE,
                "rollout changed concurrently",
            ));
        }
        audit(
            tx,
            ctx,
            action,
            rollout_name(&r),
            request_id,
            Some(&before.state),
            Some(&r),
        )
        .await?;
        changed(tx, ctx, &r).await?;
        Ok(r)
    }

    /// One controller pass over every running rollout: rolls back on a guardrail breach,
    /// advances a step that baked healthy. Returns how many rollouts moved.
    pub async fn controller_tick(&self) -> Result<usize, Error> {
        let ctx = Ctx {
            actor: "controller".into(),
            ..Default::default()
        };
        let mut moved = 0;
        for r in store::running(self.db.conn()).await? {
            let (n, errors, p99) =
                decisions::health(self.db.conn(), &r.deployment, CANARY, r.step_start_time).await?;
            let now = steward_common::time::now_ms();
            let baked = now - r.step_start_time >= r.steps[r.current_step as usize].bake_ms;
            let t = match judge(&r.guardrails, n, errors, p99, baked) {
                Verdict::Wait => continue,
                Verdict::Advance(why) => Transition::Advance(why, "step", Some(r.current_step)),
                Verdict::RollBack(why) => Transition::RollBack(why),
            };
            match self
                .transition(&ctx, &r.deployment.clone(), &r.id, None, "", t)
                .await
            {
                Ok(_) => moved += 1,
                Err(e)
                    if e.kind == steward_common::ErrorKind::FailedPrecondition
                        || e.kind == steward_common::ErrorKind::Aborted =>
                {
                    // Another replica moved it first.
                }
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Rolls back the running rollout of `deployment` (if any) because `alert` fired.
    pub async fn on_alert(
        &self,
        deployment: &str,
        alert: &str,
        reason: &str,
        traceparent: &str,
    ) -> Result<bool, Error> {
        let Some(d) = dstore::get_one(self.db.conn(), deployment).await? else {
            return Ok(false);
        };
        if d.active_rollout.is_empty() {
            return Ok(false);
        }
        let ctx = Ctx {
            actor: "controller".into(),
            traceparent: traceparent.to_string(),
            ..Default::default()
        };
        let why = format!("alert {alert} fired: {reason}");
        match self
            .transition(
                &ctx,
                deployment,
                &d.active_rollout,
                None,
                "",
                Transition::RollBack(why),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind == steward_common::ErrorKind::FailedPrecondition => Ok(false),
            Err(e) => Err(e),
        }
    }
}

enum Transition {
    /// Next step, with the history kind; `Some(step)` only from that step (the controller's
    /// judgement was about it; another replica may have moved the rollout since).
    Advance(String, &'static str, Option<i32>),
    RollBack(String),
}

async fn changed(tx: &WriteTx, ctx: &Ctx, r: &Rollout) -> Result<(), Error> {
    emit(
        tx,
        ctx,
        "deployment.rollout.changed",
        rollout_name(r),
        Payload::RolloutChanged(RolloutChanged {
            rollout: rollout_name(r),
            deployment: dep_name(&r.deployment),
            state: r.state.name().to_string(),
            step: r.current_step,
            reason: r.reason.clone(),
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_rolls_back_on_breaches_and_advances_when_baked() {
        let g = Guardrails {
            max_error_rate: 0.05,
            max_p99_latency_ms: 50.0,
            min_requests: 100,
        };
        assert_eq!(
            judge(&g, 50, 40, 0, true),
            Verdict::Wait,
            "too few decisions to judge"
        );
        assert!(
            matches!(judge(&g, 200, 20, 1_000, false), Verdict::RollBack(r) if r.contains("error rate"))
        );
        assert!(
            matches!(judge(&g, 200, 0, 80_000, false), Verdict::RollBack(r) if r.contains("p99"))
        );
        assert_eq!(
            judge(&g, 200, 1, 1_000, false),
            Verdict::Wait,
            "healthy, not baked"
        );
        assert!(matches!(
            judge(&g, 200, 1, 1_000, true),
            Verdict::Advance(_)
        ));
        let open = Guardrails::default();
        assert!(
            matches!(judge(&open, 0, 0, 0, true), Verdict::Advance(_)),
            "no guardrails: bake time alone"
        );
    }
}
