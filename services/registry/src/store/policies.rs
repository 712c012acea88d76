//! `model_policies`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::ModelPolicies as P;

use super::{WriteTx, get};
use crate::domain::policy::Policy;

/// A model's policy (empty when never set).
pub async fn get_policy<C: ConnectionTrait>(c: &C, model: &str) -> Result<Policy, Error> {
    let q = Query::select()
        .columns([P::RulesJson, P::UpdateTime, P::Revision])
        .from(P::Table)
        .and_where(Expr::col(P::Model).eq(model))
        .to_owned();
    let Some(r) = c.query_one(&q).await.map_err(db_err)? else {
        return Ok(Policy {
            model: model.to_string(),
            ..Default::default()
        });
    };
    let rules: String = get(&r, "rules_json")?;
    Ok(Policy {
        model: model.to_string(),
        rules: serde_json::from_str(&rules).map_err(|_| Error::internal("corrupt policy"))?,
        update_time: get(&r, "update_time")?,
        revision: get(&r, "revision")?,
    })
}

/// Stores a policy.
pub async fn put(tx: &WriteTx, p: &Policy) -> Result<(), Error> {
    let rules = serde_json::to_string(&p.rules).map_err(Error::internal)?;
    let q = Query::insert()
        .into_table(P::Table)
        .columns([P::Model, P::RulesJson, P::UpdateTime, P::Revision])
        .values_panic([
            p.model.as_str().into(),
            rules.into(),
            p.update_time.into(),
            p.revision.into(),
        ])
        .on_conflict(
            OnConflict::column(P::Model)
                .update_columns([P::RulesJson, P::UpdateTime, P::Revision])
                .to_owned(),
        )
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}
