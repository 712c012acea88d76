//! `deployments`, `deployment_revisions` and `deployment_versions`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::{
    DeploymentRevisions as R, DeploymentVersions as DV, Deployments as D,
};

use super::{WriteTx, fetch_all, fetch_one, from_json, get, json};
use crate::domain::{Deployment, Revision};

const COLS: [D; 10] = [
    D::Id,
    D::Model,
    D::Environment,
    D::CurrentRevision,
    D::ActiveRollout,
    D::ActiveAbTest,
    D::Creator,
    D::CreateTime,
    D::UpdateTime,
    D::Revision,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<Deployment, Error> {
    Ok(Deployment {
        id: get(r, "id")?,
        model: get(r, "model")?,
        environment: get(r, "environment")?,
        current_revision: get(r, "current_revision")?,
        active_rollout: get(r, "active_rollout")?,
        active_ab_test: get(r, "active_ab_test")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        revision: get(r, "revision")?,
    })
}

/// Inserts a deployment; a taken id or (model, environment) is `ALREADY_EXISTS`.
pub async fn insert(tx: &WriteTx, d: &Deployment) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(D::Table)
        .columns(COLS)
        .values_panic([
            d.id.as_str().into(),
            d.model.as_str().into(),
            d.environment.as_str().into(),
            d.current_revision.into(),
            d.active_rollout.as_str().into(),
            d.active_ab_test.as_str().into(),
            d.creator.as_str().into(),
            d.create_time.into(),
            d.update_time.into(),
            d.revision.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::already_exists(
            "DEPLOYMENT_ALREADY_EXISTS",
            format!(
                "a deployment of registeredModels/{} in environments/{} (or named deployments/{}) already exists",
                d.model, d.environment, d.id
            ),
        )),
        Err(e) => Err(db_err(e)),
    }
}

/// Writes the mutable fields (current revision, active rollout / test, times, etag).
pub async fn update(tx: &WriteTx, d: &Deployment) -> Result<(), Error> {
    let q = Query::update()
        .table(D::Table)
        .value(D::CurrentRevision, d.current_revision)
        .value(D::ActiveRollout, d.active_rollout.as_str())
        .value(D::ActiveAbTest, d.active_ab_test.as_str())
        .value(D::UpdateTime, d.update_time)
        .value(D::Revision, d.revision)
        .and_where(Expr::col(D::Id).eq(d.id.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// Deletes a deployment and its revisions (the served-versions index and decisions stay).
pub async fn delete(tx: &WriteTx, id: &str) -> Result<(), Error> {
    for q in [
        Query::delete()
            .from_table(R::Table)
            .and_where(Expr::col(R::Deployment).eq(id))
            .to_owned(),
        Query::delete()
            .from_table(D::Table)
            .and_where(Expr::col(D::Id).eq(id))
            .to_owned(),
    ] {
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// One deployment.
pub async fn get_one<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<Deployment>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(D::Table)
        .and_where(Expr::col(D::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// Deployments filtered by model, environment and a served version; ordered by id, after
/// `after`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    model: Option<&str>,
    environment: Option<&str>,
    served: Option<(&str, i64)>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Deployment>, Error> {
    let d = Alias::new("d");
    let mut q = Query::select();
    for col in COLS {
        q.column((d.clone(), col));
    }
    q.from_as(D::Table, d.clone());
    if let Some(m) = model {
        q.and_where(Expr::col((d.clone(), D::Model)).eq(m));
    }
    if let Some(e) = environment {
        q.and_where(Expr::col((d.clone(), D::Environment)).eq(e));
    }
    if let Some((m, v)) = served {
        let mut sub = Query::select();
        sub.expr(Expr::val(1))
            .from(DV::Table)
            .and_where(Expr::col((DV::Table, DV::Deployment)).equals((d.clone(), D::Id)))
            .and_where(Expr::col((DV::Table, DV::Model)).eq(m))
            .and_where(Expr::col((DV::Table, DV::Version)).eq(v));
        q.and_where(Expr::exists(sub));
    }
    if let Some(a) = after {
        q.and_where(Expr::col((d.clone(), D::Id)).gt(a));
    }
    q.order_by((d, D::Id), Order::Asc).limit(limit as u64);
    fetch_all(c, &q, from_row).await
}

fn rev_from_row(r: &sea_orm::QueryResult) -> Result<Revision, Error> {
    let shadow: Option<String> = get(r, "shadow_json")?;
    Ok(Revision {
        deployment: get(r, "deployment")?,
        number: get(r, "number")?,
        variants: from_json(&get::<String>(r, "variants_json")?, "variants")?,
        shadow: shadow.map(|s| from_json(&s, "shadow")).transpose()?,
        reason: get(r, "reason")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
    })
}

const REV_COLS: [R; 7] = [
    R::Deployment,
    R::Number,
    R::VariantsJson,
    R::ShadowJson,
    R::Reason,
    R::Creator,
    R::CreateTime,
];

/// Inserts a revision and records the versions it serves.
pub async fn insert_revision(
    tx: &WriteTx,
    r: &Revision,
    model: &str,
    env: &str,
) -> Result<(), Error> {
    let shadow = r.shadow.as_ref().map(json).transpose()?;
    let q = Query::insert()
        .into_table(R::Table)
        .columns(REV_COLS)
        .values_panic([
            r.deployment.as_str().into(),
            r.number.into(),
            json(&r.variants)?.into(),
            shadow.into(),
            r.reason.as_str().into(),
            r.creator.as_str().into(),
            r.create_time.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    let mut ins = Query::insert()
        .into_table(DV::Table)
        .columns([
            DV::Deployment,
            DV::Model,
            DV::Version,
            DV::Environment,
            DV::FirstTime,
        ])
        .on_conflict(
            OnConflict::columns([DV::Deployment, DV::Model, DV::Version])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    for v in r.variants.iter().chain(r.shadow.iter()) {
        ins.values_panic([
            r.deployment.as_str().into(),
            model.into(),
            v.version.into(),
            env.into(),
            r.create_time.into(),
        ]);
    }
    tx.execute(&ins).await.map_err(db_err)?;
    Ok(())
}

/// One revision.
pub async fn revision<C: ConnectionTrait>(
    c: &C,
    deployment: &str,
    number: i64,
) -> Result<Option<Revision>, Error> {
    let q = Query::select()
        .columns(REV_COLS)
        .from(R::Table)
        .and_where(Expr::col(R::Deployment).eq(deployment))
        .and_where(Expr::col(R::Number).eq(number))
        .to_owned();
    fetch_one(c, &q, rev_from_row).await
}

/// Revisions newest first, below `before`.
pub async fn revisions<C: ConnectionTrait>(
    c: &C,
    deployment: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Revision>, Error> {
    let mut q = Query::select()
        .columns(REV_COLS)
        .from(R::Table)
        .and_where(Expr::col(R::Deployment).eq(deployment))
        .to_owned();
    if let Some(b) = before {
        q.and_where(Expr::col(R::Number).lt(b));
    }
    q.order_by(R::Number, Order::Desc).limit(limit as u64);
    fetch_all(c, &q, rev_from_row).await
}

/// Whether `model` version `version` was ever deployed in `environment`.
pub async fn served_in<C: ConnectionTrait>(
    c: &C,
    model: &str,
    version: i64,
    environment: &str,
) -> Result<bool, Error> {
    let q = Query::select()
        .expr(Expr::val(1))
        .from(DV::Table)
        .and_where(Expr::col(DV::Model).eq(model))
        .and_where(Expr::col(DV::Version).eq(version))
        .and_where(Expr::col(DV::Environment).eq(environment))
        .limit(1)
        .to_owned();
    Ok(c.query_one(&q).await.map_err(db_err)?.is_some())
}
