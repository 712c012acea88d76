//! The model registry's tables, and a time index on the audit log for cross-chain queries.

use sea_orm_migration::prelude::*;

use super::m0001_init::{autoinc, big, big_null, key_col, text};
use super::*;

/// Creates the registry tables.
pub struct M0002Registry;

impl MigrationName for M0002Registry {
    fn name(&self) -> &str {
        "m0002_registry"
    }
}

fn model_col<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).string_len(128).not_null().to_owned()
}

fn word<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).string_len(32).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Registry {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(RegisteredModels::Table)
                .col(model_col(RegisteredModels::Name).primary_key())
                .col(text(RegisteredModels::Description))
                .col(text(RegisteredModels::Creator))
                .col(big(RegisteredModels::CreateTime))
                .col(big(RegisteredModels::UpdateTime))
                .col(big(RegisteredModels::LastVersion))
                .col(big(RegisteredModels::Revision))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_registered_models_create_time")
                .table(RegisteredModels::Table)
                .col(RegisteredModels::CreateTime)
                .col(RegisteredModels::Name)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RegisteredModelTags::Table)
                .col(model_col(RegisteredModelTags::Model))
                .col(key_col(RegisteredModelTags::Key))
                .col(text(RegisteredModelTags::Value))
                .primary_key(
                    Index::create()
                        .col(RegisteredModelTags::Model)
                        .col(RegisteredModelTags::Key),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ModelVersions::Table)
                .col(model_col(ModelVersions::Model))
                .col(big(ModelVersions::Version))
                .col(text(ModelVersions::SourceRun))
                .col(text(ModelVersions::ArtifactPath))
                .col(text(ModelVersions::SourceUri))
                .col(text(ModelVersions::ArtifactUri))
                .col(text(ModelVersions::ContentDigest))
                .col(text(ModelVersions::SignatureJson))
                .col(word(ModelVersions::Format))
                .col(word(ModelVersions::Status))
                .col(text(ModelVersions::StatusMessage))
                .col(text(ModelVersions::Description))
                .col(word(ModelVersions::ApprovalState))
                .col(text(ModelVersions::ReviewReviewer))
                .col(text(ModelVersions::ReviewComment))
                .col(big_null(ModelVersions::ReviewTime))
                .col(text(ModelVersions::Creator))
                .col(big(ModelVersions::CreateTime))
                .col(big(ModelVersions::UpdateTime))
                .col(big(ModelVersions::Revision))
                .col(text(ModelVersions::LineageJson))
                .primary_key(
                    Index::create()
                        .col(ModelVersions::Model)
                        .col(ModelVersions::Version),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_model_versions_source_run")
                .table(ModelVersions::Table)
                .col(ModelVersions::SourceRun)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ModelVersionTags::Table)
                .col(model_col(ModelVersionTags::Model))
                .col(big(ModelVersionTags::Version))
                .col(key_col(ModelVersionTags::Key))
                .col(text(ModelVersionTags::Value))
                .primary_key(
                    Index::create()
                        .col(ModelVersionTags::Model)
                        .col(ModelVersionTags::Version)
                        .col(ModelVersionTags::Key),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ModelAliases::Table)
                .col(model_col(ModelAliases::Model))
                .col(
                    ColumnDef::new(ModelAliases::Alias)
                        .string_len(64)
                        .not_null(),
                )
                .col(big(ModelAliases::Version))
                .col(big(ModelAliases::UpdateTime))
                .col(text(ModelAliases::Updater))
                .primary_key(
                    Index::create()
                        .col(ModelAliases::Model)
                        .col(ModelAliases::Alias),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ModelAliasHistory::Table)
                .col(autoinc(ModelAliasHistory::Id))
                .col(model_col(ModelAliasHistory::Model))
                .col(
                    ColumnDef::new(ModelAliasHistory::Alias)
                        .string_len(64)
                        .not_null(),
                )
                .col(big(ModelAliasHistory::Version))
                .col(big(ModelAliasHistory::PreviousVersion))
                .col(text(ModelAliasHistory::Actor))
                .col(big(ModelAliasHistory::Time))
                .col(text(ModelAliasHistory::RequestId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_alias_history_model_alias_time")
                .table(ModelAliasHistory::Table)
                .col(ModelAliasHistory::Model)
                .col(ModelAliasHistory::Alias)
                .col(ModelAliasHistory::Time)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_alias_history_model_id")
                .table(ModelAliasHistory::Table)
                .col(ModelAliasHistory::Model)
                .col(ModelAliasHistory::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ModelVersionReviews::Table)
                .col(autoinc(ModelVersionReviews::Id))
                .col(model_col(ModelVersionReviews::Model))
                .col(big(ModelVersionReviews::Version))
                .col(word(ModelVersionReviews::State))
                .col(text(ModelVersionReviews::Reviewer))
                .col(text(ModelVersionReviews::Comment))
                .col(big(ModelVersionReviews::Time))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_reviews_model_version_id")
                .table(ModelVersionReviews::Table)
                .col(ModelVersionReviews::Model)
                .col(ModelVersionReviews::Version)
                .col(ModelVersionReviews::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ModelPolicies::Table)
                .col(model_col(ModelPolicies::Model).primary_key())
                .col(text(ModelPolicies::RulesJson))
                .col(big(ModelPolicies::UpdateTime))
                .col(big(ModelPolicies::Revision))
                .to_owned(),
        )
        .await?;

        m.create_index(
            Index::create()
                .name("ix_audit_time")
                .table(AuditRecords::Table)
                .col(AuditRecords::Time)
                .col(AuditRecords::Service)
                .col(AuditRecords::Seq)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_audit_time")
                .table(AuditRecords::Table)
                .to_owned(),
        )
        .await?;
        for t in [
            ModelPolicies::Table.into_iden(),
            ModelVersionReviews::Table.into_iden(),
            ModelAliasHistory::Table.into_iden(),
            ModelAliases::Table.into_iden(),
            ModelVersionTags::Table.into_iden(),
            ModelVersions::Table.into_iden(),
            RegisteredModelTags::Table.into_iden(),
            RegisteredModels::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
