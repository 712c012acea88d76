//! Authentication and authorization: API keys and role grants. Read by every service (each
//! verifies the keys presented to it); written only by the registry's `AuthService` and by
//! `steward keys create` working offline against the database.

use sea_orm_migration::prelude::*;

use super::m0001_init::{big, big_null, small, text};
use super::*;

/// Creates `api_keys` and `grants`.
pub struct M0006Auth;

impl MigrationName for M0006Auth {
    fn name(&self) -> &str {
        "m0006_auth"
    }
}

fn s<T: IntoIden>(c: T, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0006Auth {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(s(ApiKeys::Id, 32).primary_key())
                .col(s(ApiKeys::Principal, 256))
                .col(small(ApiKeys::Kind))
                .col(s(ApiKeys::SecretHash, 64))
                .col(text(ApiKeys::Description))
                .col(text(ApiKeys::Creator))
                .col(big(ApiKeys::CreateTime))
                .col(big_null(ApiKeys::ExpireTime))
                .col(big_null(ApiKeys::RevokeTime))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_api_keys_principal")
                .table(ApiKeys::Table)
                .col(ApiKeys::Principal)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Grants::Table)
                .col(s(Grants::Principal, 256))
                .col(s(Grants::Resource, 512))
                .col(s(Grants::Role, 16))
                .col(text(Grants::Creator))
                .col(big(Grants::CreateTime))
                .primary_key(Index::create().col(Grants::Principal).col(Grants::Resource))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [Grants::Table.into_iden(), ApiKeys::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
