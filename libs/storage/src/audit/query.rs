//! Reads across chains: the filtered, keyset-paginated record query, the chain heads and the
//! list of chains.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, Order, Query};
use serde::{Deserialize, Serialize};
use steward_common::Error;

use super::{AuditRecord, COLUMNS, ChainHead, from_row};
use crate::db::db_err;
use crate::schema::{AuditChainHeads as H, AuditRecords as A};

/// Character that escapes `%`, `_` and itself in the LIKE patterns built here.
const LIKE_ESCAPE: char = '\\';

/// Which records [`query`] returns. `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this chain (exact).
    pub service: Option<String>,
    /// Only this resource (exact), or, when it ends in `/*`, every resource under that prefix
    /// (`experiments/e1/*` matches `experiments/e1/runs/r1`, not `experiments/e1` itself).
    pub resource: Option<String>,
    /// Only this actor (exact).
    pub actor: Option<String>,
    /// Only this action (exact), or, when it ends in `*`, every action with that prefix
    /// (`registry.alias.*`).
    pub action: Option<String>,
    /// Only records at or after this time (ms, inclusive).
    pub start_ms: Option<i64>,
    /// Only records before this time (ms, exclusive).
    pub end_ms: Option<i64>,
}

/// Keyset position in the order of [`query`]: the last returned record's (time, service, seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCursor {
    /// Record time, ms.
    pub time: i64,
    /// Record service.
    pub service: String,
    /// Record seq.
    pub seq: i64,
}

impl AuditCursor {
    /// The cursor just after `r`.
    pub fn after(r: &AuditRecord) -> Self {
        Self {
            time: r.time,
            service: r.service.clone(),
            seq: r.seq,
        }
    }
}

/// `prefix` as a LIKE pattern matching every string that starts with it: `\`, `%` and `_` are
/// escaped with [`LIKE_ESCAPE`].
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            p.push(LIKE_ESCAPE);
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The condition for `value` on `col`: a prefix match when `value` ends in `wildcard` (nothing
/// when the prefix is empty), an exact match otherwise.
fn exact_or_prefix(col: A, value: &str, wildcard: &str) -> Option<Condition> {
    match value.strip_suffix(wildcard) {
        Some(stem) => {
            let prefix = format!("{stem}{}", wildcard.trim_end_matches('*'));
            (!prefix.is_empty()).then(|| {
                Condition::all().add(
                    Expr::col(col).like(LikeExpr::new(like_prefix(&prefix)).escape(LIKE_ESCAPE)),
                )
            })
        }
        None => Some(Condition::all().add(Expr::col(col).eq(value))),
    }
}

/// Records of every chain matching `q`, ordered by (time, service, seq) ascending, starting
/// after `after`, at most `limit`. Every value is bound, never spliced into the SQL.
pub async fn query<C: ConnectionTrait>(
    c: &C,
    q: &AuditQuery,
    after: Option<&AuditCursor>,
    limit: u64,
) -> Result<Vec<AuditRecord>, Error> {
    let mut cond = Condition::all();
    if let Some(s) = &q.service {
        cond = cond.add(Expr::col(A::Service).eq(s.as_str()));
    }
    if let Some(r) = &q.resource
        && let Some(c) = exact_or_prefix(A::Resource, r, "/*")
    {
        cond = cond.add(c);
    }
    if let Some(a) = &q.actor {
        cond = cond.add(Expr::col(A::Actor).eq(a.as_str()));
    }
    if let Some(a) = &q.action
        && let Some(c) = exact_or_prefix(A::Action, a, "*")
    {
        cond = cond.add(c);
    }
    if let Some(t) = q.start_ms {
        cond = cond.add(Expr::col(A::Time).gte(t));
    }
    if let Some(t) = q.end_ms {
        cond = cond.add(Expr::col(A::Time).lt(t));
    }
    if let Some(k) = after {
        // (time, service, seq) > (k.time, k.service, k.seq), spelled out for both engines.
        cond = cond.add(
            Condition::any()
                .add(Expr::col(A::Time).gt(k.time))
                .add(
                    Expr::col(A::Time)
                        .eq(k.time)
                        .and(Expr::col(A::Service).gt(k.service.as_str())),
                )
                .add(
                    Expr::col(A::Time)
                        .eq(k.time)
                        .and(Expr::col(A::Service).eq(k.service.as_str()))
                        .and(Expr::col(A::Seq).gt(k.seq)),
                ),
        );
    }
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(A::Table)
        .cond_where(cond)
        .order_by(A::Time, Order::Asc)
        .order_by(A::Service, Order::Asc)
        .order_by(A::Seq, Order::Asc)
        .limit(limit)
        .to_owned();
    c.query_all(&stmt)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect()
}

/// The stored head of every chain, by service.
pub async fn heads<C: ConnectionTrait>(c: &C) -> Result<Vec<ChainHead>, Error> {
    let stmt = Query::select()
        .columns([H::Service, H::Seq, H::Hash])
        .from(H::Table)
        .order_by(H::Service, Order::Asc)
        .to_owned();
    c.query_all(&stmt)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok(ChainHead {
                service: r.try_get("", "service").map_err(db_err)?,
                seq: r.try_get("", "seq").map_err(db_err)?,
                hash: r.try_get("", "hash").map_err(db_err)?,
            })
        })
        .collect()
}

/// The stored head of `service`'s chain, if it has one.
pub(crate) async fn head_of<C: ConnectionTrait>(
    c: &C,
    service: &str,
) -> Result<Option<ChainHead>, Error> {
    let stmt = Query::select()
        .columns([H::Seq, H::Hash])
        .from(H::Table)
        .and_where(Expr::col(H::Service).eq(service))
        .to_owned();
    let Some(row) = c.query_one(&stmt).await.map_err(db_err)? else {
        return Ok(None);
    };
    Ok(Some(ChainHead {
        service: service.to_string(),
        seq: row.try_get("", "seq").map_err(db_err)?,
        hash: row.try_get("", "hash").map_err(db_err)?,
    }))
}

/// Every chain: services with records or a head row (a chain whose records were all deleted
/// still has its head), sorted.
pub async fn list_services<C: ConnectionTrait>(c: &C) -> Result<Vec<String>, Error> {
    let mut out = BTreeSet::new();
    let with_records = Query::select()
        .distinct()
        .column(A::Service)
        .from(A::Table)
        .to_owned();
    let with_heads = Query::select().column(H::Service).from(H::Table).to_owned();
    for stmt in [with_records, with_heads] {
        for row in c.query_all(&stmt).await.map_err(db_err)? {
            out.insert(row.try_get::<String>("", "service").map_err(db_err)?);
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("runs/"), "runs/%");
        assert_eq!(like_prefix("a%b_c\\d"), "a\\%b\\_c\\\\d%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn wildcard_suffixes_pick_prefix_or_exact() {
        let sql = |c: Option<Condition>| {
            c.map(|c| {
                use sea_orm::sea_query::SqliteQueryBuilder;
                Query::select()
                    .column(A::Seq)
                    .from(A::Table)
                    .cond_where(c)
                    .to_string(SqliteQueryBuilder)
            })
        };
        let prefix = sql(exact_or_prefix(A::Resource, "experiments/e_1/*", "/*")).unwrap();
        assert!(
            prefix.contains(r"LIKE 'experiments/e\_1/%' ESCAPE '\'"),
            "{prefix}"
        );
        let exact = sql(exact_or_prefix(A::Action, "registry.alias.set", "*")).unwrap();
        assert!(exact.contains("= 'registry.alias.set'"), "{exact}");
        let prefix = sql(exact_or_prefix(A::Action, "registry.%.*", "*")).unwrap();
        assert!(prefix.contains(r"LIKE 'registry.\%.%'"), "{prefix}");
        assert!(sql(exact_or_prefix(A::Action, "*", "*")).is_none());
    }
}
