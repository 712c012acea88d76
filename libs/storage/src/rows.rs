//! Small helpers every store uses: typed column reads, single-row fetches and keyset
//! pagination conditions.

use sea_orm::sea_query::{Expr, ExprTrait, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult, TryGetable};
use serde::{Deserialize, Serialize};
use steward_common::Error;

use crate::db_err;

/// Reads column `col` of a row.
pub fn get<T: TryGetable>(r: &QueryResult, col: &str) -> Result<T, Error> {
    r.try_get("", col).map_err(db_err)
}

/// Runs a single-row select and converts the row, if any.
pub async fn fetch_one<C: ConnectionTrait, T>(
    c: &C,
    q: &SelectStatement,
    from_row: fn(&QueryResult) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    c.query_one(q)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Runs a select and converts every row.
pub async fn fetch_all<C: ConnectionTrait, T>(
    c: &C,
    q: &SelectStatement,
    from_row: fn(&QueryResult) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    c.query_all(q)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect()
}

/// A sort value remembered in a keyset cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortVal {
    /// Integer (times, numbers, status codes).
    Int(i64),
    /// Float (metrics).
    Num(f64),
    /// Text.
    Str(String),
}

impl SortVal {
    /// As a bound SQL value.
    pub fn expr(&self) -> Expr {
        match self {
            SortVal::Int(v) => Expr::val(*v),
            SortVal::Num(v) => Expr::val(*v),
            SortVal::Str(s) => Expr::val(s.as_str()),
        }
    }
}

/// Rows strictly after `(sort, tie)` in `(sort_col, tie_col)` order (descending when `desc`):
/// the keyset condition of the next page.
pub fn after(sort_col: Expr, tie_col: Expr, sort: &SortVal, tie: Expr, desc: bool) -> Expr {
    let v = sort.expr();
    if desc {
        sort_col
            .clone()
            .lt(v.clone())
            .or(sort_col.eq(v).and(tie_col.lt(tie)))
    } else {
        sort_col
            .clone()
            .gt(v.clone())
            .or(sort_col.eq(v).and(tie_col.gt(tie)))
    }
}
