//! Initial schema.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

use super::*;

/// Creates every table of the first release.
pub struct M0001Init;

impl MigrationName for M0001Init {
    fn name(&self) -> &str {
        "m0001_init"
    }
}

pub(super) fn pk_str<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

pub(super) fn id_col<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).string_len(64).not_null().to_owned()
}

pub(super) fn text<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}

pub(super) fn big<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}

pub(super) fn big_null<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).big_integer().null().to_owned()
}

pub(super) fn small<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).small_integer().not_null().to_owned()
}

pub(super) fn key_col<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).string_len(250).not_null().to_owned()
}

pub(super) fn blob<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).blob().not_null().to_owned()
}

pub(super) fn autoinc<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Init {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let pg = m.get_database_backend() == DbBackend::Postgres;

        m.create_table(
            Table::create()
                .table(Experiments::Table)
                .col(pk_str(Experiments::Id))
                .col(
                    ColumnDef::new(Experiments::DisplayName)
                        .string_len(500)
                        .not_null()
                        .unique_key(),
                )
                .col(text(Experiments::Description))
                .col(text(Experiments::ArtifactLocation))
                .col(small(Experiments::Lifecycle))
                .col(big(Experiments::CreateTime))
                .col(big(Experiments::UpdateTime))
                .col(big_null(Experiments::DeleteTime))
                .col(big(Experiments::Version))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_experiments_create_time")
                .table(Experiments::Table)
                .col(Experiments::CreateTime)
                .col(Experiments::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ExperimentTags::Table)
                .col(id_col(ExperimentTags::ExperimentId))
                .col(key_col(ExperimentTags::Key))
                .col(text(ExperimentTags::Value))
                .primary_key(
                    Index::create()
                        .col(ExperimentTags::ExperimentId)
                        .col(ExperimentTags::Key),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Runs::Table)
                .col(pk_str(Runs::Id))
                .col(id_col(Runs::ExperimentId))
                .col(text(Runs::RunName))
                .col(small(Runs::Status))
                .col(big_null(Runs::StartTime))
                .col(big_null(Runs::EndTime))
                .col(ColumnDef::new(Runs::ParentRunId).string_len(64).null())
                .col(small(Runs::Lifecycle))
                .col(text(Runs::Creator))
                .col(text(Runs::ArtifactUri))
                .col(big(Runs::CreateTime))
                .col(big(Runs::UpdateTime))
                .col(big_null(Runs::DeleteTime))
                .col(big(Runs::Version))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_runs_experiment_start")
                .table(Runs::Table)
                .col(Runs::ExperimentId)
                .col(Runs::StartTime)
                .col(Runs::Id)
                .to_owned(),
        )
        .await?;

        for (table, run_id, key, value, name) in [
            (
                RunParams::Table.into_iden(),
                RunParams::RunId.into_iden(),
                RunParams::Key.into_iden(),
                RunParams::Value.into_iden(),
                "run_params",
            ),
            (
                RunTags::Table.into_iden(),
                RunTags::RunId.into_iden(),
                RunTags::Key.into_iden(),
                RunTags::Value.into_iden(),
                "run_tags",
            ),
        ] {
            m.create_table(
                Table::create()
                    .table(table.clone())
                    .col(id_col(run_id.clone()))
                    .col(key_col(key.clone()))
                    .col(text(value.clone()))
                    .primary_key(Index::create().col(run_id.clone()).col(key.clone()))
                    .to_owned(),
            )
            .await?;
            // Values can be long; Postgres btree entries are limited to ~2.7 kB, so index a prefix.
            let db = m.get_connection();
            if pg {
                db.execute_unprepared(&format!(
                    "CREATE INDEX ix_{name}_key_value ON {name} (key, left(value, 200), run_id)"
                ))
                .await?;
            } else {
                db.execute_unprepared(&format!(
                    "CREATE INDEX ix_{name}_key_value ON {name} (key, value, run_id)"
                ))
                .await?;
            }
        }

        m.create_table(
            Table::create()
                .table(LatestMetrics::Table)
                .col(id_col(LatestMetrics::RunId))
                .col(key_col(LatestMetrics::Key))
                .col(ColumnDef::new(LatestMetrics::Value).double().null())
                .col(big(LatestMetrics::Step))
                .col(big(LatestMetrics::Timestamp))
                .primary_key(
                    Index::create()
                        .col(LatestMetrics::RunId)
                        .col(LatestMetrics::Key),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_latest_metrics_key_value")
                .table(LatestMetrics::Table)
                .col(LatestMetrics::Key)
                .col(LatestMetrics::Value)
                .col(LatestMetrics::RunId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetricChunks::Table)
                .col(autoinc(MetricChunks::Id))
                .col(id_col(MetricChunks::RunId))
                .col(key_col(MetricChunks::Key))
                .col(ColumnDef::new(MetricChunks::NPoints).integer().not_null())
                .col(big(MetricChunks::MinStep))
                .col(big(MetricChunks::MaxStep))
                .col(blob(MetricChunks::Data))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_metric_chunks_series")
                .table(MetricChunks::Table)
                .col(MetricChunks::RunId)
                .col(MetricChunks::Key)
                .col(MetricChunks::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Datasets::Table)
                .col(pk_str(Datasets::Id))
                .col(ColumnDef::new(Datasets::Name).string_len(500).not_null())
                .col(ColumnDef::new(Datasets::Digest).string_len(200).not_null())
                .col(text(Datasets::SourceUri))
                .col(text(Datasets::SourceType))
                .col(text(Datasets::SchemaJson))
                .col(blob(Datasets::Profile))
                .col(big(Datasets::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_datasets_name_digest")
                .table(Datasets::Table)
                .col(Datasets::Name)
                .col(Datasets::Digest)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_datasets_digest")
                .table(Datasets::Table)
                .col(Datasets::Digest)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RunInputs::Table)
                .col(id_col(RunInputs::RunId))
                .col(id_col(RunInputs::DatasetId))
                .col(
                    ColumnDef::new(RunInputs::Context)
                        .string_len(100)
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(RunInputs::RunId)
                        .col(RunInputs::DatasetId)
                        .col(RunInputs::Context),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_run_inputs_dataset")
                .table(RunInputs::Table)
                .col(RunInputs::DatasetId)
                .col(RunInputs::RunId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Artifacts::Table)
                .col(id_col(Artifacts::RunId))
                .col(ColumnDef::new(Artifacts::Path).string_len(1024).not_null())
                .col(big(Artifacts::SizeBytes))
                .col(ColumnDef::new(Artifacts::Sha256).string_len(64).not_null())
                .col(text(Artifacts::ContentType))
                .col(big(Artifacts::CreateTime))
                .primary_key(Index::create().col(Artifacts::RunId).col(Artifacts::Path))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyRecords::Table)
                .col(
                    ColumnDef::new(IdempotencyRecords::Service)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyRecords::RequestId)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyRecords::Method)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyRecords::RequestHash)
                        .string_len(64)
                        .not_null(),
                )
                .col(blob(IdempotencyRecords::Response))
                .col(big(IdempotencyRecords::CreateTime))
                .primary_key(
                    Index::create()
                        .col(IdempotencyRecords::Service)
                        .col(IdempotencyRecords::RequestId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .col(autoinc(Outbox::Id))
                .col(ColumnDef::new(Outbox::Service).string_len(32).not_null())
                .col(ColumnDef::new(Outbox::EventId).string_len(64).not_null())
                .col(ColumnDef::new(Outbox::EventType).string_len(128).not_null())
                .col(blob(Outbox::Envelope))
                .col(big(Outbox::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_outbox_service_id")
                .table(Outbox::Table)
                .col(Outbox::Service)
                .col(Outbox::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditRecords::Table)
                .col(
                    ColumnDef::new(AuditRecords::Service)
                        .string_len(32)
                        .not_null(),
                )
                .col(big(AuditRecords::Seq))
                .col(big(AuditRecords::Time))
                .col(text(AuditRecords::Actor))
                .col(
                    ColumnDef::new(AuditRecords::Action)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AuditRecords::Resource)
                        .string_len(500)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditRecords::BeforeJson).text().null())
                .col(ColumnDef::new(AuditRecords::AfterJson).text().null())
                .col(text(AuditRecords::RequestId))
                .col(text(AuditRecords::TraceId))
                .col(
                    ColumnDef::new(AuditRecords::PrevHash)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditRecords::Hash).string_len(64).not_null())
                .primary_key(
                    Index::create()
                        .col(AuditRecords::Service)
                        .col(AuditRecords::Seq),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_resource")
                .table(AuditRecords::Table)
                .col(AuditRecords::Resource)
                .col(AuditRecords::Time)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditChainHeads::Table)
                .col(
                    ColumnDef::new(AuditChainHeads::Service)
                        .string_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(big(AuditChainHeads::Seq))
                .col(
                    ColumnDef::new(AuditChainHeads::Hash)
                        .string_len(64)
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            AuditChainHeads::Table.into_iden(),
            AuditRecords::Table.into_iden(),
            Outbox::Table.into_iden(),
            IdempotencyRecords::Table.into_iden(),
            Artifacts::Table.into_iden(),
            RunInputs::Table.into_iden(),
            Datasets::Table.into_iden(),
            MetricChunks::Table.into_iden(),
            LatestMetrics::Table.into_iden(),
            RunTags::Table.into_iden(),
            RunParams::Table.into_iden(),
            Runs::Table.into_iden(),
            ExperimentTags::Table.into_iden(),
            Experiments::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
