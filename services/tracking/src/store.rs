//! Persistence of tracking resources over the shared schema (SQLite and Postgres via sea-orm /
//! sea-query). Reads take any connection; writes take the caller's [`WriteTx`].

pub mod artifacts;
pub mod datasets;
pub mod experiments;
pub mod metrics;
pub mod runs;
pub mod search;

use sea_orm::{QueryResult, TryGetable};
use steward_common::Error;
use steward_storage::db_err;

pub use steward_storage::WriteTx;

/// Reads column `col` of a row.
pub(crate) fn get<T: TryGetable>(r: &QueryResult, col: &str) -> Result<T, Error> {
    r.try_get("", col).map_err(db_err)
}

/// Runs a single-row select and converts the row, if any.
pub(crate) async fn fetch_one<C: sea_orm::ConnectionTrait, T>(
    c: &C,
    q: &sea_orm::sea_query::SelectStatement,
    from_row: fn(&QueryResult) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    c.query_one(q)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Placeholder-safe chunking of IN lists.
pub(crate) const IN_CHUNK: usize = 500;
