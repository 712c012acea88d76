//! The monitoring service's tables: baselines, monitors, window chunks and windows, predictions,
//! feedback, KPIs, metric series, alert rules, alerts, channels and webhook deliveries.

use sea_orm_migration::prelude::*;

use super::m0001_init::{autoinc, big, big_null, blob, small, text};
use super::*;

/// Creates the monitoring tables.
pub struct M0004Monitoring;

impl MigrationName for M0004Monitoring {
    fn name(&self) -> &str {
        "m0004_monitoring"
    }
}

fn s<T: IntoIden>(c: T, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

fn dbl<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).double().not_null().to_owned()
}

fn dbl_null<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).double().null().to_owned()
}

fn text_null<T: IntoIden>(c: T) -> ColumnDef {
    ColumnDef::new(c).text().null().to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[DynIden], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c.clone());
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Monitoring {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MonitorBaselines::Table)
                .col(s(MonitorBaselines::Id, 128).primary_key())
                .col(text(MonitorBaselines::ModelVersion))
                .col(text(MonitorBaselines::Source))
                .col(big(MonitorBaselines::NumRows))
                .col(text(MonitorBaselines::SummaryJson))
                .col(blob(MonitorBaselines::Data))
                .col(text(MonitorBaselines::Creator))
                .col(big(MonitorBaselines::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Monitors::Table)
                .col(s(Monitors::Id, 128).primary_key())
                .col(text(Monitors::Description))
                .col(s(Monitors::Deployment, 128))
                .col(s(Monitors::Baseline, 128))
                .col(text(Monitors::SpecJson))
                .col(big(Monitors::NextSeq))
                .col(text(Monitors::Creator))
                .col(big(Monitors::CreateTime))
                .col(big(Monitors::UpdateTime))
                .col(big(Monitors::Revision))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitors_deployment",
            Monitors::Table,
            &[Monitors::Deployment.into_iden()],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorChunks::Table)
                .col(autoinc(MonitorChunks::Id))
                .col(s(MonitorChunks::Monitor, 128))
                .col(big(MonitorChunks::Window))
                .col(big(MonitorChunks::Rows))
                .col(blob(MonitorChunks::Data))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_chunks_window",
            MonitorChunks::Table,
            &[
                MonitorChunks::Monitor.into_iden(),
                MonitorChunks::Window.into_iden(),
                MonitorChunks::Id.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorWindows::Table)
                .col(s(MonitorWindows::Monitor, 128))
                .col(big(MonitorWindows::Number))
                .col(big(MonitorWindows::StartTime))
                .col(big(MonitorWindows::EndTime))
                .col(big(MonitorWindows::Rows))
                .col(small(MonitorWindows::State))
                .col(small(MonitorWindows::DatasetDrift))
                .col(dbl(MonitorWindows::DriftShare))
                .col(text(MonitorWindows::ReportJson))
                .col(big(MonitorWindows::CloseTime))
                .primary_key(
                    Index::create()
                        .col(MonitorWindows::Monitor)
                        .col(MonitorWindows::Number),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_windows_state",
            MonitorWindows::Table,
            &[
                MonitorWindows::State.into_iden(),
                MonitorWindows::EndTime.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorPredictions::Table)
                .col(s(MonitorPredictions::Monitor, 128))
                .col(s(MonitorPredictions::RequestId, 200))
                .col(big(MonitorPredictions::Time))
                .col(big(MonitorPredictions::Window))
                .col(text(MonitorPredictions::Variant))
                .col(text(MonitorPredictions::ModelVersion))
                .col(dbl_null(MonitorPredictions::PredNum))
                .col(text_null(MonitorPredictions::PredCat))
                .col(big(MonitorPredictions::LatencyUs))
                .col(small(MonitorPredictions::Error))
                .primary_key(
                    Index::create()
                        .col(MonitorPredictions::Monitor)
                        .col(MonitorPredictions::RequestId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_predictions_time",
            MonitorPredictions::Table,
            &[
                MonitorPredictions::Monitor.into_iden(),
                MonitorPredictions::Time.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorFeedback::Table)
                .col(s(MonitorFeedback::Monitor, 128))
                .col(s(MonitorFeedback::RequestId, 200))
                .col(dbl_null(MonitorFeedback::LabelNum))
                .col(text_null(MonitorFeedback::LabelCat))
                .col(big(MonitorFeedback::Time))
                .primary_key(
                    Index::create()
                        .col(MonitorFeedback::Monitor)
                        .col(MonitorFeedback::RequestId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorKpis::Table)
                .col(autoinc(MonitorKpis::Id))
                .col(s(MonitorKpis::Monitor, 128))
                .col(s(MonitorKpis::Name, 250))
                .col(dbl(MonitorKpis::Value))
                .col(text(MonitorKpis::RequestId))
                .col(big(MonitorKpis::Time))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_kpis_time",
            MonitorKpis::Table,
            &[
                MonitorKpis::Monitor.into_iden(),
                MonitorKpis::Time.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorSeries::Table)
                .col(autoinc(MonitorSeries::Id))
                .col(s(MonitorSeries::Monitor, 128))
                .col(s(MonitorSeries::Metric, 300))
                .col(big(MonitorSeries::Time))
                .col(big(MonitorSeries::Window))
                .col(dbl(MonitorSeries::Value))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_series_metric",
            MonitorSeries::Table,
            &[
                MonitorSeries::Monitor.into_iden(),
                MonitorSeries::Metric.into_iden(),
                MonitorSeries::Time.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorRules::Table)
                .col(s(MonitorRules::Monitor, 128))
                .col(s(MonitorRules::Id, 128))
                .col(s(MonitorRules::Metric, 300))
                .col(small(MonitorRules::Comparator))
                .col(dbl(MonitorRules::Threshold))
                .col(big(MonitorRules::WindowMs))
                .col(big(MonitorRules::HoldMs))
                .col(s(MonitorRules::Severity, 16))
                .col(text(MonitorRules::ChannelsJson))
                .col(big_null(MonitorRules::PendingSince))
                .col(big(MonitorRules::CreateTime))
                .primary_key(
                    Index::create()
                        .col(MonitorRules::Monitor)
                        .col(MonitorRules::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorAlerts::Table)
                .col(s(MonitorAlerts::Id, 64).primary_key())
                .col(s(MonitorAlerts::Monitor, 128))
                .col(s(MonitorAlerts::Rule, 128))
                .col(text(MonitorAlerts::Deployment))
                .col(small(MonitorAlerts::State))
                .col(s(MonitorAlerts::Severity, 16))
                .col(text(MonitorAlerts::Metric))
                .col(dbl(MonitorAlerts::Value))
                .col(dbl(MonitorAlerts::Threshold))
                .col(text(MonitorAlerts::Reason))
                .col(big(MonitorAlerts::FireTime))
                .col(big_null(MonitorAlerts::ResolveTime))
                // `{monitor}/{rule}` while firing, NULL once resolved: at most one open alert
                // per rule, on both engines (NULLs are distinct in unique indexes).
                .col(
                    ColumnDef::new(MonitorAlerts::OpenKey)
                        .string_len(260)
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ux_monitor_alerts_open",
            MonitorAlerts::Table,
            &[MonitorAlerts::OpenKey.into_iden()],
            true,
        ))
        .await?;
        m.create_index(index(
            "ix_monitor_alerts_time",
            MonitorAlerts::Table,
            &[
                MonitorAlerts::FireTime.into_iden(),
                MonitorAlerts::Id.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorChannels::Table)
                .col(s(MonitorChannels::Id, 128).primary_key())
                .col(text(MonitorChannels::Url))
                .col(text(MonitorChannels::Secret))
                .col(small(MonitorChannels::AllowPrivate))
                .col(big(MonitorChannels::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MonitorDeliveries::Table)
                .col(autoinc(MonitorDeliveries::Id))
                .col(s(MonitorDeliveries::Channel, 128))
                .col(s(MonitorDeliveries::Kind, 32))
                .col(text(MonitorDeliveries::Payload))
                .col(big(MonitorDeliveries::Attempts))
                .col(big(MonitorDeliveries::NextAttempt))
                .col(small(MonitorDeliveries::State))
                .col(text(MonitorDeliveries::LastError))
                .col(big(MonitorDeliveries::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_monitor_deliveries_due",
            MonitorDeliveries::Table,
            &[
                MonitorDeliveries::State.into_iden(),
                MonitorDeliveries::NextAttempt.into_iden(),
            ],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            MonitorDeliveries::Table.into_iden(),
            MonitorChannels::Table.into_iden(),
            MonitorAlerts::Table.into_iden(),
            MonitorRules::Table.into_iden(),
            MonitorSeries::Table.into_iden(),
            MonitorKpis::Table.into_iden(),
            MonitorFeedback::Table.into_iden(),
            MonitorPredictions::Table.into_iden(),
            MonitorWindows::Table.into_iden(),
            MonitorChunks::Table.into_iden(),
            Monitors::Table.into_iden(),
            MonitorBaselines::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
