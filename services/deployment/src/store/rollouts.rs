//! `rollouts`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::Rollouts as T;

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::{Rollout, RolloutState};

const COLS: [T; 16] = [
    T::Id,
    T::Deployment,
    T::ModelVersionRef,
    T::Version,
    T::StepsJson,
    T::GuardrailsJson,
    T::State,
    T::CurrentStep,
    T::StepStartTime,
    T::BaseRevision,
    T::Reason,
    T::HistoryJson,
    T::Creator,
    T::CreateTime,
    T::UpdateTime,
    T::Revision,
];

#[derive(serde::Serialize, serde::Deserialize)]
struct Extra {
    canary: crate::domain::Variant,
    guardrails: crate::domain::Guardrails,
}

fn from_row(r: &sea_orm::QueryResult) -> Result<Rollout, Error> {
    let extra: Extra = from_json(&get::<String>(r, "guardrails_json")?, "rollout guardrails")?;
    let state: String = get(r, "state")?;
    Ok(Rollout {
        id: get(r, "id")?,
        deployment: get(r, "deployment")?,
        model_version: get(r, "model_version_ref")?,
        canary: extra.canary,
        steps: from_json(&get::<String>(r, "steps_json")?, "rollout steps")?,
        guardrails: extra.guardrails,
        state: RolloutState::from_name(&state)
            .ok_or_else(|| Error::internal("corrupt rollout state"))?,
        current_step: get::<i64>(r, "current_step")? as i32,
        step_start_time: get(r, "step_start_time")?,
        base_revision: get(r, "base_revision")?,
        reason: get(r, "reason")?,
        history: from_json(&get::<String>(r, "history_json")?, "rollout history")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        revision: get(r, "revision")?,
    })
}

/// Inserts a rollout.
pub async fn insert(tx: &WriteTx, r: &Rollout) -> Result<(), Error> {
    let extra = json(&Extra {
        canary: r.canary.clone(),
        guardrails: r.guardrails,
    })?;
    let q = Query::insert()
        .into_table(T::Table)
        .columns(COLS)
        .values_panic([
            r.id.as_str().into(),
            r.deployment.as_str().into(),
            r.model_version.as_str().into(),
            r.canary.version.into(),
            json(&r.steps)?.into(),
            extra.into(),
            r.state.name().into(),
            i64::from(r.current_step).into(),
            r.step_start_time.into(),
            r.base_revision.into(),
            r.reason.as_str().into(),
            json(&r.history)?.into(),
            r.creator.as_str().into(),
            r.create_time.into(),
            r.update_time.into(),
            r.revision.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Writes state, step, history and times if the stored etag is still `expected`; false when
/// another writer (another replica's controller) got there first.
pub async fn update_if(tx: &WriteTx, r: &Rollout, expected: i64) -> Result<bool, Error> {
    let q = Query::update()
        .table(T::Table)
        .value(T::State, r.state.name())
        .value(T::CurrentStep, i64::from(r.current_step))
        .value(T::StepStartTime, r.step_start_time)
        .value(T::Reason, r.reason.as_str())
        .value(T::HistoryJson, json(&r.history)?)
        .value(T::UpdateTime, r.update_time)
        .value(T::Revision, r.revision)
        .and_where(Expr::col(T::Id).eq(r.id.as_str()))
        .and_where(Expr::col(T::Revision).eq(expected))
        .to_owned();
    Ok(tx.execute(&q).await.map_err(db_err)?.rows_affected() == 1)
}

/// One rollout.
pub async fn get_one<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<Rollout>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(T::Table)
        .and_where(Expr::col(T::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Rollouts of a deployment, newest first.
pub async fn of_deployment<C: ConnectionTrait>(
    c: &C,
    deployment: &str,
) -> Result<Vec<Rollout>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(T::Table)
        .and_where(Expr::col(T::Deployment).eq(deployment))
        .order_by(T::CreateTime, Order::Desc)
        .to_owned();
    fetch_all(c, &q, from_row).await
}

/// Every running rollout.
pub async fn running<C: ConnectionTrait>(c: &C) -> Result<Vec<Rollout>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(T::Table)
        .and_where(Expr::col(T::State).eq(RolloutState::Running.name()))
        .to_owned();
    fetch_all(c, &q, from_row).await
}
