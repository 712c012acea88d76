//! The deployment service's tables, and the default environments (staging -> production).

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

use super::m0001_init::{big, big_null, small, text};
use super::*;

/// Creates the deployment tables.
pub struct M0003Deployment;

impl MigrationName for M0003Deployment {
    fn name(&self) -> &str {
        "m0003_deployment"
    }
}

fn s<T: IntoIden>(c: T, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

fn dbl<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).double().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Deployment {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Environments::Table)
                .col(s(Environments::Name, 64).primary_key())
                .col(big(Environments::Ord))
                .col(text(Environments::Description))
                .col(small(Environments::RequireApproved))
                .col(s(Environments::RequirePreviousEnv, 64))
                .col(text(Environments::UpstreamUrl))
                .col(big(Environments::CreateTime))
                .col(big(Environments::UpdateTime))
                .col(big(Environments::Revision))
                .to_owned(),
        )
        .await?;
        // The default promotion path: staging, then production (approved versions that ran in
        // staging first).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let seed = Query::insert()
            .into_table(Environments::Table)
            .columns([
                Environments::Name,
                Environments::Ord,
                Environments::Description,
                Environments::RequireApproved,
                Environments::RequirePreviousEnv,
                Environments::UpstreamUrl,
                Environments::CreateTime,
                Environments::UpdateTime,
                Environments::Revision,
            ])
            .values_panic([
                "staging".into(),
                10i64.into(),
                "Pre-production: any READY version.".into(),
                0i16.into(),
                "".into(),
                "".into(),
                now.into(),
                now.into(),
                1i64.into(),
            ])
            .values_panic([
                "production".into(),
                20i64.into(),
                "Serves users: APPROVED versions that ran in staging first.".into(),
                1i16.into(),
                "staging".into(),
                "".into(),
                now.into(),
                now.into(),
                1i64.into(),
            ])
            .to_owned();
        m.get_connection().execute(&seed).await?;

        m.create_table(
            Table::create()
                .table(Deployments::Table)
                .col(s(Deployments::Id, 128).primary_key())
                .col(s(Deployments::Model, 128))
                .col(s(Deployments::Environment, 64))
                .col(big(Deployments::CurrentRevision))
                .col(text(Deployments::ActiveRollout))
                .col(text(Deployments::ActiveAbTest))
                .col(text(Deployments::Creator))
                .col(big(Deployments::CreateTime))
                .col(big(Deployments::UpdateTime))
                .col(big(Deployments::Revision))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_deployments_model_env")
                .table(Deployments::Table)
                .col(Deployments::Model)
                .col(Deployments::Environment)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DeploymentRevisions::Table)
                .col(s(DeploymentRevisions::Deployment, 128))
                .col(big(DeploymentRevisions::Number))
                .col(text(DeploymentRevisions::VariantsJson))
                .col(
                    ColumnDef::new(DeploymentRevisions::ShadowJson)
                        .text()
                        .null(),
                )
                .col(text(DeploymentRevisions::Reason))
                .col(text(DeploymentRevisions::Creator))
                .col(big(DeploymentRevisions::CreateTime))
                .primary_key(
                    Index::create()
                        .col(DeploymentRevisions::Deployment)
                        .col(DeploymentRevisions::Number),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DeploymentVersions::Table)
                .col(s(DeploymentVersions::Deployment, 128))
                .col(s(DeploymentVersions::Model, 128))
                .col(big(DeploymentVersions::Version))
                .col(s(DeploymentVersions::Environment, 64))
                .col(big(DeploymentVersions::FirstTime))
                .primary_key(
                    Index::create()
                        .col(DeploymentVersions::Deployment)
                        .col(DeploymentVersions::Model)
                        .col(DeploymentVersions::Version),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_deployment_versions_model")
                .table(DeploymentVersions::Table)
                .col(DeploymentVersions::Model)
                .col(DeploymentVersions::Version)
                .col(DeploymentVersions::Environment)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Rollouts::Table)
                .col(s(Rollouts::Id, 64).primary_key())
                .col(s(Rollouts::Deployment, 128))
                .col(text(Rollouts::ModelVersionRef))
                .col(big(Rollouts::Version))
                .col(text(Rollouts::StepsJson))
                .col(text(Rollouts::GuardrailsJson))
                .col(s(Rollouts::State, 16))
                .col(big(Rollouts::CurrentStep))
                .col(big(Rollouts::StepStartTime))
                .col(big(Rollouts::BaseRevision))
                .col(text(Rollouts::Reason))
                .col(text(Rollouts::HistoryJson))
                .col(text(Rollouts::Creator))
                .col(big(Rollouts::CreateTime))
                .col(big(Rollouts::UpdateTime))
                .col(big(Rollouts::Revision))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_rollouts_state")
                .table(Rollouts::Table)
                .col(Rollouts::State)
                .col(Rollouts::Deployment)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AbTests::Table)
                .col(s(AbTests::Id, 64).primary_key())
                .col(s(AbTests::Deployment, 128))
                .col(text(AbTests::VariantsJson))
                .col(text(AbTests::Metric))
                .col(s(AbTests::MetricKind, 16))
                .col(dbl(AbTests::Alpha))
                .col(small(AbTests::Sequential))
                .col(s(AbTests::State, 16))
                .col(text(AbTests::Winner))
                .col(big(AbTests::RevisionNumber))
                .col(text(AbTests::Creator))
                .col(big(AbTests::CreateTime))
                .col(big_null(AbTests::ConcludeTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AbOutcomes::Table)
                .col(s(AbOutcomes::AbTest, 64))
                .col(s(AbOutcomes::RequestId, 128))
                .col(s(AbOutcomes::Variant, 64))
                .col(dbl(AbOutcomes::Value))
                .col(big(AbOutcomes::Time))
                .primary_key(
                    Index::create()
                        .col(AbOutcomes::AbTest)
                        .col(AbOutcomes::RequestId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DecisionRecords::Table)
                .col(s(DecisionRecords::RequestId, 200).primary_key())
                .col(big(DecisionRecords::Time))
                .col(s(DecisionRecords::Deployment, 128))
                .col(big(DecisionRecords::Revision))
                .col(s(DecisionRecords::Variant, 64))
                .col(s(DecisionRecords::Model, 128))
                .col(big(DecisionRecords::Version))
                .col(s(DecisionRecords::Kind, 16))
                .col(text(DecisionRecords::InputDigest))
                .col(ColumnDef::new(DecisionRecords::InputsJson).text().null())
                .col(small(DecisionRecords::InputsErased))
                .col(text(DecisionRecords::OutputsJson))
                .col(big(DecisionRecords::LatencyUs))
                .col(text(DecisionRecords::Error))
                .col(text(DecisionRecords::RoutingKey))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_decisions_deployment_variant_time")
                .table(DecisionRecords::Table)
                .col(DecisionRecords::Deployment)
                .col(DecisionRecords::Variant)
                .col(DecisionRecords::Time)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_decisions_time")
                .table(DecisionRecords::Table)
                .col(DecisionRecords::Time)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            DecisionRecords::Table.into_iden(),
            AbOutcomes::Table.into_iden(),
            AbTests::Table.into_iden(),
            Rollouts::Table.into_iden(),
            DeploymentVersions::Table.into_iden(),
            DeploymentRevisions::Table.into_iden(),
            Deployments::Table.into_iden(),
            Environments::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
