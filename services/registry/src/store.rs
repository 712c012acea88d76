//! Persistence of registry resources over the shared schema (SQLite and Postgres via
//! sea-query). Reads take any connection; writes take the caller's [`WriteTx`].

pub mod aliases;
pub mod filter;
pub mod models;
pub mod policies;
pub mod reviews;
pub mod versions;

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{DynIden, Expr, ExprTrait, IntoIden, Query};
use steward_common::Error;
pub use steward_storage::WriteTx;
use steward_storage::db_err;
pub(crate) use steward_storage::rows::{fetch_all, fetch_one, get};

/// Replaces the tag rows of one owner: `owner` are (column, value) pairs identifying it.
pub(crate) async fn write_tags(
    tx: &WriteTx,
    table: DynIden,
    owner: &[(DynIden, sea_orm::Value)],
    key: DynIden,
    value: DynIden,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let mut del = Query::delete().from_table(table.clone()).to_owned();
    for (c, v) in owner {
        del.and_where(Expr::col(c.clone()).eq(v.clone()));
    }
    tx.execute(&del).await.map_err(db_err)?;
    if tags.is_empty() {
        return Ok(());
    }
    let mut cols: Vec<DynIden> = owner.iter().map(|(c, _)| c.clone()).collect();
    cols.push(key);
    cols.push(value);
    let mut ins = Query::insert().into_table(table).columns(cols).to_owned();
    for (k, v) in tags {
        let mut row: Vec<Expr> = owner.iter().map(|(_, v)| Expr::val(v.clone())).collect();
        row.push(Expr::val(k.as_str()));
        row.push(Expr::val(v.as_str()));
        ins.values_panic(row);
    }
    tx.execute(&ins).await.map_err(db_err)?;
    Ok(())
}

/// Identifier helper.
pub(crate) fn iden<T: IntoIden>(t: T) -> DynIden {
    t.into_iden()
}

/// Reads tag rows (`key`, `value` columns) selected by `q` into a map.
pub(crate) async fn read_tags<C: ConnectionTrait>(
    c: &C,
    q: &sea_orm::sea_query::SelectStatement,
) -> Result<BTreeMap<String, String>, Error> {
    let rows = c.query_all(q).await.map_err(db_err)?;
    rows.iter()
        .map(|r| Ok((get::<String>(r, "key")?, get::<String>(r, "value")?)))
        .collect()
}
