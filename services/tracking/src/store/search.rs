//! Search: compiles a parsed filter and `order_by` into one parameterized SQL query (sea-query,
//! never string concatenation of user input) with keyset pagination.
//!
//! Each metric/param/tag/dataset predicate is an `EXISTS` over its table's `(run_id, key)`
//! primary key; ordering keys are `LEFT JOIN`s whose missing values sort last. When the first
//! ordering key is a metric that the filter requires anyway, the query is driven from the
//! `latest_metrics (key, value, run_id)` index instead, so a page is read in index order and
//! the scan stops after one page.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Alias, Condition, DynIden, Expr, ExprTrait, IntoIden, JoinType, Order, Query, SelectStatement,
};
use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{
    Datasets as D, ExperimentTags as ET, Experiments as E, LatestMetrics as M, RunInputs as I,
    RunParams as P, RunTags as T, Runs as R,
};

use super::get;
use crate::domain::Lifecycle;
use crate::domain::filter::{Attr, DatasetField, Field, Filter, OrderKey, Test};
use steward_storage::filter_sql::apply_test;

pub use steward_storage::rows::SortVal;

/// Keyset position in a run search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCursor {
    /// Sort values of the last row (None = missing).
    pub keys: Vec<Option<SortVal>>,
    /// Id of the last row.
    pub id: String,
}

/// A run search.
#[derive(Debug, Clone)]
pub struct RunQuery<'a> {
    /// Experiments to search.
    pub experiment_ids: &'a [String],
    /// Filter.
    pub filter: Option<&'a Filter>,
    /// Order keys; empty means `attributes.start_time DESC`.
    pub order: &'a [OrderKey],
    /// Include deleted runs.
    pub show_deleted: bool,
    /// Resume after.
    pub cursor: Option<&'a RunCursor>,
    /// Page size.
    pub limit: usize,
}

fn not_for_runs(field: &str) -> Error {
    Error::invalid_field(field, "field not supported for runs")
}

fn attr_col(a: Attr, r: &Alias, field: &str) -> Result<Expr, Error> {
    let c = match a {
        Attr::Status => R::Status,
        Attr::RunName => R::RunName,
        Attr::RunId => R::Id,
        Attr::StartTime => R::StartTime,
        Attr::EndTime => R::EndTime,
        Attr::CreateTime => R::CreateTime,
        Attr::UpdateTime => R::UpdateTime,
        Attr::Creator => R::Creator,
        Attr::ParentRunId => R::ParentRunId,
        Attr::ExperimentId => R::ExperimentId,
        Attr::DisplayName => R::RunName,
        Attr::Name | Attr::Description => return Err(not_for_runs(field)),
    };
    Ok(Expr::col((r.clone(), c)))
}

/// The three (run_id, key, value) tables.
#[derive(Clone, Copy)]
enum Kv {
    Metrics,
    Params,
    Tags,
}

impl Kv {
    fn idens(self) -> (DynIden, DynIden, DynIden, DynIden) {
        match self {
            Kv::Metrics => (
                M::Table.into_iden(),
                M::RunId.into_iden(),
                M::Key.into_iden(),
                M::Value.into_iden(),
            ),
            Kv::Params => (
                P::Table.into_iden(),
                P::RunId.into_iden(),
                P::Key.into_iden(),
                P::Value.into_iden(),
            ),
            Kv::Tags => (
                T::Table.into_iden(),
                T::RunId.into_iden(),
                T::Key.into_iden(),
                T::Value.into_iden(),
            ),
        }
    }
}

/// EXISTS over a (run_id, key, value) table; `test` None means "has the key".
fn kv_exists(kv: Kv, key: &str, r: &Alias, n: &mut usize, test: Option<&Test>) -> Expr {
    *n += 1;
    let (table, run_id, key_col, value_col) = kv.idens();
    let t = Alias::new(format!("f{n}"));
    let mut sub = Query::select();
    sub.expr(Expr::val(1))
        .from_as(table, t.clone())
        .and_where(Expr::col((t.clone(), run_id)).equals((r.clone(), R::Id)))
        .and_where(Expr::col((t.clone(), key_col)).eq(key));
    if let Some(test) = test {
        sub.and_where(apply_test(Expr::col((t, value_col)), test));
    }
    Expr::exists(sub)
}

fn run_condition(f: &Filter, r: &Alias, n: &mut usize) -> Result<Condition, Error> {
    Ok(match f {
        Filter::And(parts) => parts.iter().try_fold(Condition::all(), |c, p| {
            Ok::<_, Error>(c.add(run_condition(p, r, n)?))
        })?,
        Filter::Or(parts) => parts.iter().try_fold(Condition::any(), |c, p| {
            Ok::<_, Error>(c.add(run_condition(p, r, n)?))
        })?,
        Filter::Not(inner) => run_condition(inner, r, n)?.not(),
        Filter::Pred(field, test) => {
            let presence_only = matches!(test, Test::IsNull { .. });
            let missing = matches!(test, Test::IsNull { negated: false });
            let value_test = (!presence_only).then_some(test);
            let e = match field {
                Field::Version(_) => return Err(not_for_runs("filter")),
                Field::Metric(k) => kv_exists(Kv::Metrics, k, r, n, value_test),
                Field::Param(k) => kv_exists(Kv::Params, k, r, n, value_test),
                Field::Tag(k) => kv_exists(Kv::Tags, k, r, n, value_test),
                Field::Attr(a) => {
                    return Ok(Condition::all().add(apply_test(attr_col(*a, r, "filter")?, test)));
                }
                Field::Dataset(df) => {
                    *n += 1;
                    let i = Alias::new(format!("i{n}"));
                    let d = Alias::new(format!("d{n}"));
                    let mut sub = Query::select();
                    sub.expr(Expr::val(1))
                        .from_as(I::Table, i.clone())
                        .and_where(Expr::col((i.clone(), I::RunId)).equals((r.clone(), R::Id)));
                    if let Some(test) = value_test {
                        let col = match df {
                            DatasetField::Context => Expr::col((i.clone(), I::Context)),
                            DatasetField::Name => Expr::col((d.clone(), D::Name)),
                            DatasetField::Digest => Expr::col((d.clone(), D::Digest)),
                            DatasetField::SourceUri => Expr::col((d.clone(), D::SourceUri)),
                        };
                        sub.join_as(
                            JoinType::InnerJoin,
                            D::Table,
                            d.clone(),
                            Expr::col((d.clone(), D::Id)).equals((i.clone(), I::DatasetId)),
                        )
                        .and_where(apply_test(col, test));
                    }
                    Expr::exists(sub)
                }
            };
            if missing {
                Condition::all().add(e.not())
            } else {
                Condition::all().add(e)
            }
        }
    })
}

/// True when every run matching `f` must have metric `key` with a non-NaN value.
fn requires_metric(f: &Filter, key: &str) -> bool {
    match f {
        Filter::Pred(Field::Metric(k), test) => {
            k == key
                && match test {
                    Test::IsNull { negated } => *negated,
                    Test::Like { .. } => false,
                    Test::Cmp(..) | Test::In { .. } => true,
                }
        }
        Filter::And(parts) => parts.iter().any(|p| requires_metric(p, key)),
        Filter::Or(parts) => !parts.is_empty() && parts.iter().all(|p| requires_metric(p, key)),
        Filter::Pred(..) | Filter::Not(_) => false,
    }
}

/// Runs one page of a search; returns run ids in order and the cursor of the next page.
pub async fn search_runs<C: ConnectionTrait>(
    c: &C,
    q: &RunQuery<'_>,
) -> Result<(Vec<String>, Option<RunCursor>), Error> {
    let default_order = [OrderKey {
        field: Field::Attr(Attr::StartTime),
        desc: true,
    }];
    let order = if q.order.is_empty() {
        &default_order[..]
    } else {
        q.order
    };
    let r = Alias::new("r");
    let mut sel = Query::select();
    let mut n = 0usize;

    // Ordering expressions, each with whether it can be missing (NULL).
    let mut keys: Vec<(Expr, bool, bool)> = Vec::new(); // (expr, nullable, desc)
    let mut id_col = Expr::col((r.clone(), R::Id));
    let driven = matches!(&order[0].field, Field::Metric(k) if q.filter.is_some_and(|f| requires_metric(f, k)));
    for (i, k) in order.iter().enumerate() {
        let o = Alias::new(format!("o{i}"));
        match &k.field {
            Field::Metric(key) if i == 0 && driven => {
                sel.from_as(M::Table, o.clone());
                sel.and_where(Expr::col((o.clone(), M::Key)).eq(key.as_str()));
                sel.and_where(Expr::col((o.clone(), M::Value)).is_not_null());
                sel.join_as(
                    JoinType::InnerJoin,
                    R::Table,
                    r.clone(),
                    Expr::col((r.clone(), R::Id)).equals((o.clone(), M::RunId)),
                );
                // Tie-break on the index's own column so the index order is the result order.
                id_col = Expr::col((o.clone(), M::RunId));
                keys.push((Expr::col((o, M::Value)), false, k.desc));
            }
            Field::Metric(key) => {
                keys.push((Expr::col((o.clone(), M::Value)), true, k.desc));
                left_join(&mut sel, M::Table, o, M::RunId, M::Key, key, &r);
            }
            Field::Param(key) => {
                keys.push((Expr::col((o.clone(), P::Value)), true, k.desc));
                left_join(&mut sel, P::Table, o, P::RunId, P::Key, key, &r);
            }
            Field::Tag(key) => {
                keys.push((Expr::col((o.clone(), T::Value)), true, k.desc));
                left_join(&mut sel, T::Table, o, T::RunId, T::Key, key, &r);
            }
            Field::Attr(a) => {
                let nullable = matches!(a, Attr::StartTime | Attr::EndTime | Attr::ParentRunId);
                keys.push((attr_col(*a, &r, "order_by")?, nullable, k.desc));
            }
            Field::Dataset(_) => {
                return Err(Error::invalid_field(
                    "order_by",
                    "cannot order by dataset fields",
                ));
            }
            Field::Version(_) => return Err(not_for_runs("order_by")),
        }
    }
    if !driven {
        sel.from_as(R::Table, r.clone());
        // LEFT JOINs were added before FROM was set; sea-query renders FROM first regardless.
    }
    sel.expr_as(Expr::col((r.clone(), R::Id)), Alias::new("rid"));
    for (i, (e, _, _)) in keys.iter().enumerate() {
        sel.expr_as(e.clone(), Alias::new(format!("k{i}")));
    }
    sel.and_where(Expr::col((r.clone(), R::ExperimentId)).is_in(q.experiment_ids.iter().cloned()));
    if !q.show_deleted {
        sel.and_where(Expr::col((r.clone(), R::Lifecycle)).eq(Lifecycle::Active.code()));
    }
    if let Some(f) = q.filter {
        sel.cond_where(run_condition(f, &r, &mut n)?);
    }
    let id_desc = keys[0].2;
    if let Some(cur) = q.cursor {
        if cur.keys.len() != keys.len() {
            return Err(Error::invalid_field(
                "page_token",
                "does not match this query's order_by",
            ));
        }
        sel.cond_where(after_cursor(&keys, &id_col, id_desc, cur));
    }
    for (e, nullable, desc) in &keys {
        if *nullable {
            sel.order_by_expr(e.clone().is_null(), Order::Asc);
        }
        sel.order_by_expr(e.clone(), if *desc { Order::Desc } else { Order::Asc });
    }
    sel.order_by_expr(id_col, if id_desc { Order::Desc } else { Order::Asc });
    sel.limit(q.limit as u64 + 1);

    let rows = c.query_all(&sel).await.map_err(db_err)?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut last_keys = Vec::new();
    for (ri, row) in rows.iter().enumerate() {
        if ri == q.limit {
            break;
        }
        ids.push(get::<String>(row, "rid")?);
        if ri + 1 == q.limit {
            last_keys = (0..keys.len())
                .map(|i| read_sort_val(row, &format!("k{i}"), &order[i].field))
                .collect::<Result<_, _>>()?;
        }
    }
    let next = (rows.len() > q.limit).then(|| RunCursor {
        keys: last_keys,
        id: ids.last().cloned().unwrap_or_default(),
    });
    Ok((ids, next))
}

fn left_join<Tb, Cl>(
    sel: &mut SelectStatement,
    table: Tb,
    o: Alias,
    run_id: Cl,
    key_col: Cl,
    key: &str,
    r: &Alias,
) where
    Tb: sea_orm::sea_query::Iden + 'static,
    Cl: sea_orm::sea_query::Iden + Clone + 'static,
{
    sel.join_as(
        JoinType::LeftJoin,
        table,
        o.clone(),
        Condition::all()
            .add(Expr::col((o.clone(), run_id)).equals((r.clone(), R::Id)))
            .add(Expr::col((o, key_col)).eq(key)),
    );
}

fn read_sort_val(
    row: &sea_orm::QueryResult,
    col: &str,
    f: &Field,
) -> Result<Option<SortVal>, Error> {
    Ok(match f {
        Field::Metric(_) => get::<Option<f64>>(row, col)?.map(SortVal::Num),
        Field::Attr(Attr::StartTime | Attr::EndTime | Attr::CreateTime | Attr::UpdateTime) => {
            get::<Option<i64>>(row, col)?.map(SortVal::Int)
        }
        Field::Attr(Attr::Status) => get::<Option<i16>>(row, col)?.map(|v| SortVal::Int(v as i64)),
        _ => get::<Option<String>>(row, col)?.map(SortVal::Str),
    })
}

/// Rows strictly after the cursor in the ORDER BY of `keys` + id (missing values last).
fn after_cursor(
    keys: &[(Expr, bool, bool)],
    id_col: &Expr,
    id_desc: bool,
    cur: &RunCursor,
) -> Condition {
    // Components: (expr, value, desc). A nullable key contributes its null flag (ascending)
    // and, when the cursor's value is present, the value itself.
    let mut comps: Vec<(Expr, Expr, bool)> = Vec::new();
    for ((e, nullable, desc), v) in keys.iter().zip(&cur.keys) {
        if *nullable {
            let flag = Expr::case(e.clone().is_null(), 1).finally(0);
            comps.push((
                flag.into(),
                Expr::val(if v.is_none() { 1 } else { 0 }),
                false,
            ));
        }
        if let Some(v) = v {
            comps.push((e.clone(), v.expr(), *desc));
        }
    }
    comps.push((id_col.clone(), Expr::val(cur.id.as_str()), id_desc));
    let mut any = Condition::any();
    for j in 0..comps.len() {
        let mut all = Condition::all();
        for (e, v, _) in &comps[..j] {
            all = all.add(e.clone().eq(v.clone()));
        }
        let (e, v, desc) = &comps[j];
        all = all.add(if *desc {
            e.clone().lt(v.clone())
        } else {
            e.clone().gt(v.clone())
        });
        any = any.add(all);
    }
    any
}

/// Condition over experiments (alias `x`) for a filter parsed in the experiments scope.
pub fn experiment_condition(f: &Filter, x: &Alias) -> Result<Condition, Error> {
    fn go(f: &Filter, x: &Alias, n: &mut usize) -> Result<Condition, Error> {
        Ok(match f {
            Filter::And(p) => p
                .iter()
                .try_fold(Condition::all(), |c, p| Ok::<_, Error>(c.add(go(p, x, n)?)))?,
            Filter::Or(p) => p
                .iter()
                .try_fold(Condition::any(), |c, p| Ok::<_, Error>(c.add(go(p, x, n)?)))?,
            Filter::Not(i) => go(i, x, n)?.not(),
            Filter::Pred(Field::Attr(a), test) => {
                let col = match a {
                    Attr::DisplayName => E::DisplayName,
                    Attr::CreateTime => E::CreateTime,
                    Attr::UpdateTime => E::UpdateTime,
                    _ => E::Id,
                };
                Condition::all().add(apply_test(Expr::col((x.clone(), col)), test))
            }
            Filter::Pred(Field::Tag(k), test) => {
                *n += 1;
                let t = Alias::new(format!("t{n}"));
                let mut sub = Query::select();
                sub.expr(Expr::val(1))
                    .from_as(ET::Table, t.clone())
                    .and_where(Expr::col((t.clone(), ET::ExperimentId)).equals((x.clone(), E::Id)))
                    .and_where(Expr::col((t.clone(), ET::Key)).eq(k.as_str()));
                match test {
                    Test::IsNull { negated: false } => {
                        return Ok(Condition::all().add(Expr::exists(sub).not()));
                    }
                    Test::IsNull { negated: true } => {}
                    t2 => {
                        sub.and_where(apply_test(Expr::col((t, ET::Value)), t2));
                    }
                }
                Condition::all().add(Expr::exists(sub))
            }
            Filter::Pred(..) => {
                return Err(Error::invalid_field(
                    "filter",
                    "field not supported for experiments",
                ));
            }
        })
    }
    go(f, x, &mut 0)
}
