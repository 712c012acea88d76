//! The `api_keys` and `grants` tables.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use steward_common::Error;
use steward_storage::rows::{fetch_all, fetch_one, get};
use steward_storage::schema::{ApiKeys as K, Grants as G};
use steward_storage::{WriteTx, db_err};

use crate::role::Role;

/// A stored key (the secret's hash is never serialized or shown by `Debug`, so audit records
/// and logs do not hold it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    /// Public id.
    pub id: String,
    /// Who it authenticates.
    pub principal: String,
    /// 1 user, 2 service (`steward.auth.v1.KeyKind`).
    pub kind: i16,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub secret_hash: String,
    /// Free text.
    pub description: String,
    /// Who made it.
    pub creator: String,
    /// Milliseconds since the epoch.
    pub create_time: i64,
    /// When it stops working, if ever.
    pub expire_time: Option<i64>,
    /// When it was revoked, if it was.
    pub revoke_time: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("creator", &self.creator)
            .field("create_time", &self.create_time)
            .field("expire_time", &self.expire_time)
            .field("revoke_time", &self.revoke_time)
            .finish_non_exhaustive()
    }
}

impl KeyRow {
    /// Whether the key works at `now` (not revoked, not expired).
    pub fn usable(&self, now: i64) -> bool {
        self.revoke_time.is_none() && self.expire_time.is_none_or(|t| now < t)
    }
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    /// Who.
    pub principal: String,
    /// `*` or a resource name.
    pub resource: String,
    /// Role name.
    pub role: String,
    /// Who granted it.
    pub creator: String,
    /// Milliseconds since the epoch.
    pub create_time: i64,
}

impl GrantRow {
    /// The role (a grant holding an unknown role name grants nothing).
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }
}

fn key_row(r: &QueryResult) -> Result<KeyRow, Error> {
    Ok(KeyRow {
        id: get(r, "id")?,
        principal: get(r, "principal")?,
        kind: get(r, "kind")?,
        secret_hash: get(r, "secret_hash")?,
        description: get(r, "description")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
        expire_time: get(r, "expire_time")?,
        revoke_time: get(r, "revoke_time")?,
    })
}

fn grant_row(r: &QueryResult) -> Result<GrantRow, Error> {
    Ok(GrantRow {
        principal: get(r, "principal")?,
        resource: get(r, "resource")?,
        role: get(r, "role")?,
        creator: get(r, "creator")?,
        create_time: get(r, "create_time")?,
    })
}

const KEY_COLS: [K; 9] = [
    K::Id,
    K::Principal,
    K::Kind,
    K::SecretHash,
    K::Description,
    K::Creator,
    K::CreateTime,
    K::ExpireTime,
    K::RevokeTime,
];

/// Stores a new key.
pub async fn insert_key(tx: &WriteTx, k: &KeyRow) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(K::Table)
        .columns(KEY_COLS)
        .values_panic([
            k.id.clone().into(),
            k.principal.clone().into(),
            k.kind.into(),
            k.secret_hash.clone().into(),
            k.description.clone().into(),
            k.creator.clone().into(),
            k.create_time.into(),
            k.expire_time.into(),
            k.revoke_time.into(),
        ])
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// The key with public id `id`.
pub async fn key<C: ConnectionTrait>(c: &C, id: &str) -> Result<Option<KeyRow>, Error> {
    let q = Query::select()
        .columns(KEY_COLS)
        .from(K::Table)
        .and_where(Expr::col(K::Id).eq(id))
        .to_owned();
    fetch_one(c, &q, key_row).await
}

/// Keys, newest first, of one principal or of all.
pub async fn keys<C: ConnectionTrait>(
    c: &C,
    principal: Option<&str>,
    show_revoked: bool,
) -> Result<Vec<KeyRow>, Error> {
    let mut q = Query::select()
        .columns(KEY_COLS)
        .from(K::Table)
        .order_by(K::CreateTime, Order::Desc)
        .order_by(K::Id, Order::Asc)
        .to_owned();
    if let Some(p) = principal {
        q.and_where(Expr::col(K::Principal).eq(p));
    }
    if !show_revoked {
        q.and_where(Expr::col(K::RevokeTime).is_null());
    }
    fetch_all(c, &q, key_row).await
}

/// Marks key `id` revoked at `now` (a key already revoked keeps its first time).
pub async fn revoke_key(tx: &WriteTx, id: &str, now: i64) -> Result<(), Error> {
    let q = Query::update()
        .table(K::Table)
        .value(K::RevokeTime, now)
        .and_where(Expr::col(K::Id).eq(id))
        .and_where(Expr::col(K::RevokeTime).is_null())
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

const GRANT_COLS: [G; 5] = [
    G::Principal,
    G::Resource,
    G::Role,
    G::Creator,
    G::CreateTime,
];

/// Stores a grant, replacing the principal's earlier role on the same resource.
pub async fn upsert_grant(tx: &WriteTx, g: &GrantRow) -> Result<(), Error> {
    let q = Query::insert()
        .into_table(G::Table)
        .columns(GRANT_COLS)
        .values_panic([
            g.principal.clone().into(),
            g.resource.clone().into(),
            g.role.clone().into(),
            g.creator.clone().into(),
            g.create_time.into(),
        ])
        .on_conflict(
            OnConflict::columns([G::Principal, G::Resource])
                .update_columns([G::Role, G::Creator, G::CreateTime])
                .to_owned(),
        )
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}

/// The grant of `principal` on `resource`.
pub async fn grant<C: ConnectionTrait>(
    c: &C,
    principal: &str,
    resource: &str,
) -> Result<Option<GrantRow>, Error> {
    let q = Query::select()
        .columns(GRANT_COLS)
        .from(G::Table)
        .and_where(Expr::col(G::Principal).eq(principal))
        .and_where(Expr::col(G::Resource).eq(resource))
        .to_owned();
    fetch_one(c, &q, grant_row).await
}

/// Grants of one principal or of all, by principal then resource.
pub async fn grants<C: ConnectionTrait>(
    c: &C,
    principal: Option<&str>,
) -> Result<Vec<GrantRow>, Error> {
    let mut q = Query::select()
        .columns(GRANT_COLS)
        .from(G::Table)
        .order_by(G::Principal, Order::Asc)
        .order_by(G::Resource, Order::Asc)
        .to_owned();
    if let Some(p) = principal {
        q.and_where(Expr::col(G::Principal).eq(p));
    }
    fetch_all(c, &q, grant_row).await
}

/// Deletes the grant of `principal` on `resource`.
pub async fn delete_grant(tx: &WriteTx, principal: &str, resource: &str) -> Result<(), Error> {
    let q = Query::delete()
        .from_table(G::Table)
        .and_where(Expr::col(G::Principal).eq(principal))
        .and_where(Expr::col(G::Resource).eq(resource))
        .to_owned();
    tx.execute(&q).await.map_err(db_err)?;
    Ok(())
}
