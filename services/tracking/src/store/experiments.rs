//! `experiments` and `experiment_tags`.

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::idempotency::is_unique_violation;
use steward_storage::schema::{ExperimentTags as T, Experiments as E};

use super::{WriteTx, get};
use crate::domain::{Experiment, Lifecycle};

const COLS: [E; 9] = [
    E::Id,
    E::DisplayName,
    E::Description,
    E::ArtifactLocation,
    E::Lifecycle,
    E::CreateTime,
    E::UpdateTime,
    E::DeleteTime,
    E::Version,
];

fn name_taken(name: &str) -> Error {
    Error::already_exists(
        "EXPERIMENT_ALREADY_EXISTS",
        format!("an experiment named {name:?} already exists"),
    )
    .with_violation(
        "experiment.display_name",
        "already used by another experiment",
    )
}

/// Inserts a new experiment and its tags.
pub async fn insert(tx: &WriteTx, e: &Experiment) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(E::Table)
        .columns(COLS)
        .values_panic([
            e.id.as_str().into(),
            e.display_name.as_str().into(),
            e.description.as_str().into(),
            e.artifact_location.as_str().into(),
            e.lifecycle.code().into(),
            e.create_time.into(),
            e.update_time.into(),
            e.delete_time.into(),
            e.version.into(),
        ])
        .to_owned();
    match tx.execute(&q).await {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => return Err(name_taken(&e.display_name)),
        Err(err) => return Err(db_err(err)),
    }
    write_tags(tx, &e.id, &e.tags).await
}

async fn write_tags(tx: &WriteTx, id: &str, tags: &BTreeMap<String, String>) -> Result<(), Error> {
    let del = Query::delete()
        .from_table(T::Table)
        .and_where(Expr::col(T::ExperimentId).eq(id))
        .to_owned();
    tx.execute(&del).await.map_err(db_err)?;
    if tags.is_empty() {
        return Ok(());
    }
    let mut ins = Query::insert()
        .into_table(T::Table)
        .columns([T::ExperimentId, T::Key, T::Value])
        .to_owned();
    for (k, v) in tags {
        ins.values_panic([id.into(), k.as_str().into(), v.as_str().into()]);
    }
    tx.execute(&ins).await.map_err(db_err)?;
    Ok(())
}

/// Replaces an experiment's mutable fields if its version is still `expected_version`; bumps
/// the version. `Aborted` when someone else changed it first.
pub async fn update(tx: &WriteTx, e: &Experiment, expected_version: i64) -> Result<(), Error> {
    let q = Query::update()
        .table(E::Table)
        .value(E::DisplayName, e.display_name.as_str())
        .value(E::Description, e.description.as_str())
        .value(E::Lifecycle, e.lifecycle.code())
        .value(E::UpdateTime, e.update_time)
        .value(E::DeleteTime, e.delete_time)
        .value(E::Version, e.version)
        .and_where(Expr::col(E::Id).eq(e.id.as_str()))
        .and_where(Expr::col(E::Version).eq(expected_version))
        .to_owned();
    let res = match tx.execute(&q).await {
        Ok(r) => r,
        Err(err) if is_unique_violation(&err) => return Err(name_taken(&e.display_name)),
        Err(err) => return Err(db_err(err)),
    };
    if res.rows_affected() == 0 {
        return Err(Error::stale_etag(format!("experiments/{}", e.id)));
    }
    write_tags(tx, &e.id, &e.tags).await
}

fn from_row(r: &sea_orm::QueryResult) -> Result<Experiment, Error> {
    Ok(Experiment {
        id: get(r, "id")?,
        display_name: get(r, "display_name")?,
        description: get(r, "description")?,
        artifact_location: get(r, "artifact_location")?,
        lifecycle: Lifecycle::from_code(get(r, "lifecycle")?),
        create_time: get(r, "create_time")?,
        update_time: get(r, "update_time")?,
        delete_time: get(r, "delete_time")?,
        version: get(r, "version")?,
        tags: BTreeMap::new(),
    })
}

async fn load_tags<C: ConnectionTrait>(c: &C, exps: &mut [Experiment]) -> Result<(), Error> {
    if exps.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = exps.iter().map(|e| e.id.clone()).collect();
    let q = Query::select()
        .columns([T::ExperimentId, T::Key, T::Value])
        .from(T::Table)
        .and_where(Expr::col(T::ExperimentId).is_in(ids))
        .to_owned();
    for r in c.query_all(&q).await.map_err(db_err)? {
        let id: String = get(&r, "experiment_id")?;
        if let Some(e) = exps.iter_mut().find(|e| e.id == id) {
            e.tags.insert(get(&r, "key")?, get(&r, "value")?);
        }
    }
    Ok(())
}

/// The experiment row without its tags (for checks inside write transactions).
pub async fn get_row<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<Experiment>, Error> {
    let q = Query::select()
        .columns(COLS)
        .from(E::Table)
        .and_where(Expr::col(E::Id).eq(id))
        .to_owned();
    super::fetch_one(c, &q, from_row).await
}

/// Gets an experiment by id or by display name.
pub async fn get_one<C: ConnectionTrait>(
    c: &C,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Option<Experiment>, Error> {
    let mut q = Query::select().columns(COLS).from(E::Table).to_owned();
    if let Some(id) = id {
        q.and_where(Expr::col(E::Id).eq(id));
    }
    if let Some(n) = name {
        q.and_where(Expr::col(E::DisplayName).eq(n));
    }
    let Some(row) = c.query_one(&q).await.map_err(db_err)? else {
        return Ok(None);
    };
    let mut v = vec![from_row(&row)?];
    load_tags(c, &mut v).await?;
    Ok(v.pop())
}

/// Keyset position in a listing: the sort value and id of the last row returned.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ListCursor {
    /// Sort value (time in ms, or a name).
    pub sort: crate::store::search::SortVal,
    /// Id.
    pub id: String,
}

/// Sortable experiment columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// create_time
    CreateTime,
    /// update_time
    UpdateTime,
    /// display_name
    DisplayName,
}

/// Lists experiments matching `filter`, ordered by `sort` (then id), after `cursor`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    filter: Option<&crate::domain::filter::Filter>,
    sort: SortBy,
    desc: bool,
    show_deleted: bool,
    cursor: Option<&ListCursor>,
    limit: usize,
) -> Result<(Vec<Experiment>, Option<ListCursor>), Error> {
    use crate::store::search::{SortVal, experiment_condition};
    let x = sea_orm::sea_query::Alias::new("x");
    let col = match sort {
        SortBy::CreateTime => E::CreateTime,
        SortBy::UpdateTime => E::UpdateTime,
        SortBy::DisplayName => E::DisplayName,
    };
    let mut q = Query::select();
    for cname in COLS {
        q.column((x.clone(), cname));
    }
    q.from_as(E::Table, x.clone());
    if !show_deleted {
        q.and_where(Expr::col((x.clone(), E::Lifecycle)).eq(Lifecycle::Active.code()));
    }
    if let Some(f) = filter {
        q.cond_where(experiment_condition(f, &x)?);
    }
    let order = if desc { Order::Desc } else { Order::Asc };
    if let Some(cur) = cursor {
        let after = steward_storage::rows::after(
            Expr::col((x.clone(), col)),
            Expr::col((x.clone(), E::Id)),
            &cur.sort,
            Expr::val(cur.id.as_str()),
            desc,
        );
        q.and_where(after);
    }
    q.order_by((x.clone(), col), order.clone())
        .order_by((x.clone(), E::Id), order)
        .limit(limit as u64 + 1);
    let rows = c.query_all(&q).await.map_err(db_err)?;
    let mut exps = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let next = if exps.len() > limit {
        exps.truncate(limit);
        let last = exps.last().expect("limit > 0");
        Some(ListCursor {
            sort: match sort {
                SortBy::CreateTime => SortVal::Int(last.create_time),
                SortBy::UpdateTime => SortVal::Int(last.update_time),
                SortBy::DisplayName => SortVal::Str(last.display_name.clone()),
            },
            id: last.id.clone(),
        })
    } else {
        None
    };
    load_tags(c, &mut exps).await?;
    Ok((exps, next))
}
