//! `model_version_reviews`: every approval decision.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::ModelVersionReviews as R;

use super::{WriteTx, fetch_all, get};
use crate::domain::{ApprovalState, Review};

/// Appends a decision.
pub async fn insert(tx: &WriteTx, model: &str, version: i64, r: &Review) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(R::Table)
        .columns([
            R::Model,
            R::Version,
            R::State,
            R::Reviewer,
            R::Comment,
            R::Time,
        ])
        .values_panic([
            model.into(),
            version.into(),
            r.state.name().into(),
            r.reviewer.as_str().into(),
            r.comment.as_str().into(),
            r.time.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

fn from_row(r: &sea_orm::QueryResult) -> Result<(i64, Review), Error> {
    let state: String = get(r, "state")?;
    Ok((
        get(r, "id")?,
        Review {
            state: ApprovalState::from_name(&state)
                .ok_or_else(|| Error::internal("corrupt review state"))?,
            reviewer: get(r, "reviewer")?,
            comment: get(r, "comment")?,
            time: get(r, "time")?,
        },
    ))
}

/// Decisions on a version, newest first, before `before_id`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    model: &str,
    version: i64,
    before_id: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, Review)>, Error> {
    let mut q = Query::select()
        .columns([R::Id, R::State, R::Reviewer, R::Comment, R::Time])
        .from(R::Table)
        .and_where(Expr::col(R::Model).eq(model))
        .and_where(Expr::col(R::Version).eq(version))
        .to_owned();
    if let Some(id) = before_id {
        q.and_where(Expr::col(R::Id).lt(id));
    }
    q.order_by(R::Id, Order::Desc).limit(limit as u64);
    fetch_all(c, &q, from_row).await
}
