//! `registered_models` and `registered_model_tags`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_common::filter::Filter;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::rows::{SortVal, after};
use steward_storage::schema::{
    ModelAliasHistory as AH, ModelAliases as A, ModelPolicies as P, ModelVersionReviews as RV,
    ModelVersionTags as VT, ModelVersions as V, RegisteredModelTags as T, RegisteredModels as M,
};

use super::{WriteTx, fetch_one, get, iden, read_tags, write_tags};
use crate::domain::RegisteredModel;

const COLS: [M; 7] = [
    M::Name,
    M::Description,
    M::Creator,
    M::CreateTime,
    M::UpdateTime,
    M::LastVersion,
    M::Revision,
];

fn from_row(r: &sea_orm::QueryResult) -> Result<RegisteredModel, Error> {
    Ok(RegisteredModel {
        name: get(r, "name")?,
        description: get(r, "description")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        last_version: get(r, "last_version")?,
        revision: get(r, "revision")?,
        tags: Default::default(),
        aliases: Default::default(),
    })
}

/// Inserts a model and its tags; a taken name is `ALREADY_EXISTS`.
pub async fn insert(tx: &WriteTx, m: &RegisteredModel) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(M::Table)
        .columns(COLS)
        .values_panic([
            m.name.as_str().into(),
            m.description.as_str().into(),
            m.creator.as_str().into(),
            m.create_time.into(),
            m.update_time.into(),
            m.last_version.into(),
            m.revision.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::already_exists(
                "MODEL_ALREADY_EXISTS",
                format!("registeredModels/{} already exists", m.name),
            )
            .with_violation("registered_model.name", "already used by another model"));
        }
        Err(e) => return Err(db_err(e)),
    }
    write_model_tags(tx, m).await
}

async fn write_model_tags(tx: &WriteTx, m: &RegisteredModel) -> Result<(), Error> {
    write_tags(
        tx,
        iden(T::Table),
        &[(iden(T::Model), m.name.as_str().into())],
        iden(T::Key),
        iden(T::Value),
        &m.tags,
    )
    .await
}

/// The model row only (no tags or aliases).
pub async fn get_row<C: ConnectionTrait>(
    c: &C,
    name: &str,
) -> Result<Option<RegisteredModel>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(M::Table)
        .and_where(Expr::col(M::Name).eq(name))
        .to_owned();
    fetch_one(c, &q, from_row).await
}

/// The model with tags and aliases.
pub async fn get_full<C: ConnectionTrait>(
    c: &C,
    name: &str,
) -> Result<Option<RegisteredModel>, Error> {
    let Some(mut m) = get_row(c, name).await? else {
        return Ok(None);
    };
    load_details(c, std::slice::from_mut(&mut m)).await?;
    Ok(Some(m))
}

async fn load_details<C: ConnectionTrait>(
    c: &C,
    models: &mut [RegisteredModel],
) -> Result<(), Error> {
    for m in models.iter_mut() {
        let q = Query::select()
            .columns([T::Key, T::Value])
            .from(T::Table)
            .and_where(Expr::col(T::Model).eq(m.name.as_str()))
            .to_owned();
        m.tags = read_tags(c, &q).await?;
        m.aliases = super::aliases::for_model(c, &m.name).await?;
    }
    Ok(())
}

/// Writes description, update time, revision and tags.
pub async fn update(tx: &WriteTx, m: &RegisteredModel) -> Result<(), Error> {
    let q = Query::update()
        .table(M::Table)
        .value(M::Description, m.description.as_str())
        .value(M::UpdateTime, m.update_time)
        .value(M::Revision, m.revision)
        .and_where(Expr::col(M::Name).eq(m.name.as_str()))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    write_model_tags(tx, m).await
}

/// Hands out `n` version numbers of `name`: increments `last_version` by `n` under the row's
/// lock (Postgres row lock / SQLite write gate) and returns the new last number, so concurrent
/// creators get 1, 2, 3, ... with no duplicates, and a rolled-back transaction gives its numbers
/// back (no gaps). `None` when the model does not exist.
pub async fn take_versions(
    tx: &WriteTx,
    name: &str,
    n: i64,
    now: i64,
) -> Result<Option<i64>, Error> {
    let q = Query::update()
        .table(M::Table)
        .value(M::LastVersion, Expr::col(M::LastVersion).add(n))
        .value(M::UpdateTime, now)
        .and_where(Expr::col(M::Name).eq(name))
        .returning_col(M::LastVersion)
        .to_owned();
    match tx.query_one(&q).await.map_err(db_err)? {
        Some(row) => Ok(Some(get(&row, "last_version")?)),
        None => Ok(None),
    }
}

/// Deletes a model with everything that belongs to it (versions, tags, aliases and their
/// history, reviews, policy). The audit log keeps the record.
pub async fn delete(tx: &WriteTx, name: &str) -> Result<(), Error> {
    let by_model = |t: sea_orm::sea_query::DynIden, c: sea_orm::sea_query::DynIden| {
        Query::delete()
            .from_table(t)
            .and_where(Expr::col(c).eq(name))
            .to_owned()
    };
    for q in [
        by_model(
            iden(steward_storage::schema::ModelVersionDatasets::Table),
            iden(steward_storage::schema::ModelVersionDatasets::Model),
        ),
        by_model(iden(VT::Table), iden(VT::Model)),
        by_model(iden(V::Table), iden(V::Model)),
        by_model(iden(A::Table), iden(A::Model)),
        by_model(iden(AH::Table), iden(AH::Model)),
        by_model(iden(RV::Table), iden(RV::Model)),
        by_model(iden(P::Table), iden(P::Model)),
        by_model(iden(T::Table), iden(T::Model)),
        by_model(iden(M::Table), iden(M::Name)),
    ] {
        tx.execute(&q).await.map_err(db_err)?;
    }
    Ok(())
}

/// Sortable model columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// name
    Name,
    /// create_time
    CreateTime,
    /// update_time
    UpdateTime,
}

/// Keyset position in a model listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCursor {
    /// Sort value of the last row.
    pub sort: SortVal,
    /// Name of the last row.
    pub name: String,
}

/// Lists models matching `filter`, ordered by `sort` then name, after `cursor`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    filter: Option<&Filter>,
    sort: SortBy,
    desc: bool,
    cursor: Option<&ModelCursor>,
    limit: usize,
) -> Result<(Vec<RegisteredModel>, Option<ModelCursor>), Error> {
    let m = Alias::new("m");
    let col = match sort {
        SortBy::Name => M::Name,
        SortBy::CreateTime => M::CreateTime,
        SortBy::UpdateTime => M::UpdateTime,
    };
    let mut q = Query::select();
    for cname in COLS {
        q.column((m.clone(), cname));
    }
    q.from_as(M::Table, m.clone());
    if let Some(f) = filter {
        q.cond_where(super::filter::model_condition(f, &m, &mut 0)?);
    }
    if let Some(cur) = cursor {
        q.and_where(after(
            Expr::col((m.clone(), col)),
            Expr::col((m.clone(), M::Name)),
            &cur.sort,
            Expr::val(cur.name.as_str()),
            desc,
        ));
    }
    let order = if desc { Order::Desc } else { Order::Asc };
    q.order_by((m.clone(), col), order.clone())
        .order_by((m.clone(), M::Name), order)
        .limit(limit as u64 + 1);
    let rows = c.query_all(&q).await.map_err(db_err)?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let next = if out.len() > limit {
        out.truncate(limit);
        let last = out.last().expect("limit > 0");
        Some(ModelCursor {
            sort: match sort {
                SortBy::Name => SortVal::Str(last.name.clone()),
                SortBy::CreateTime => SortVal::Int(last.create_time),
                SortBy::UpdateTime => SortVal::Int(last.update_time),
            },
            name: last.name.clone(),
        })
    } else {
        None
    };
    load_details(c, &mut out).await?;
    Ok((out, next))
}
