//! Dataset versions (tracking service): datasets, versions, their files, and the
//! content-addressed chunks the files are made of.

use sea_orm_migration::prelude::*;

use super::m0001_init::{big, big_null, blob, small, text};
use super::*;

/// Creates the dataset version tables.
pub struct M0005Datasets;

impl MigrationName for M0005Datasets {
    fn name(&self) -> &str {
        "m0005_datasets"
    }
}

fn s<T: IntoIden>(c: T, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Datasets {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DatasetHeads::Table)
                .col(s(DatasetHeads::Id, 128).primary_key())
                .col(big(DatasetHeads::NextVersion))
                .col(big(DatasetHeads::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DatasetVersions::Table)
                .col(s(DatasetVersions::Dataset, 128))
                .col(big(DatasetVersions::Version))
                .col(small(DatasetVersions::State))
                .col(s(DatasetVersions::Digest, 80))
                .col(text(DatasetVersions::Description))
                .col(text(DatasetVersions::TagsJson))
                .col(text(DatasetVersions::Creator))
                .col(big(DatasetVersions::CreateTime))
                .col(big_null(DatasetVersions::CommitTime))
                .col(big(DatasetVersions::FileCount))
                .col(big(DatasetVersions::SizeBytes))
                .col(big(DatasetVersions::NewBytes))
                .col(text(DatasetVersions::SchemaJson))
                .col(blob(DatasetVersions::Profile))
                .col(text(DatasetVersions::ExternalJson))
                .primary_key(
                    Index::create()
                        .col(DatasetVersions::Dataset)
                        .col(DatasetVersions::Version),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_dataset_versions_digest")
                .table(DatasetVersions::Table)
                .col(DatasetVersions::Digest)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DatasetFiles::Table)
                .col(s(DatasetFiles::Dataset, 128))
                .col(big(DatasetFiles::Version))
                .col(s(DatasetFiles::Path, 1024))
                .col(big(DatasetFiles::CreateTime))
                .col(big(DatasetFiles::SizeBytes))
                .col(s(DatasetFiles::Sha256, 64))
                .col(blob(DatasetFiles::Chunks))
                .col(big(DatasetFiles::NewBytes))
                .col(text(DatasetFiles::SchemaJson))
                .col(blob(DatasetFiles::Profile))
                .primary_key(
                    Index::create()
                        .col(DatasetFiles::Dataset)
                        .col(DatasetFiles::Version)
                        .col(DatasetFiles::Path),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DatasetVersionChunks::Table)
                .col(s(DatasetVersionChunks::Dataset, 128))
                .col(big(DatasetVersionChunks::Version))
                .col(s(DatasetVersionChunks::Path, 1024))
                .col(s(DatasetVersionChunks::Digest, 64))
                .primary_key(
                    Index::create()
                        .col(DatasetVersionChunks::Dataset)
                        .col(DatasetVersionChunks::Version)
                        .col(DatasetVersionChunks::Path)
                        .col(DatasetVersionChunks::Digest),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_dataset_version_chunks_digest")
                .table(DatasetVersionChunks::Table)
                .col(DatasetVersionChunks::Digest)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(CasChunks::Table)
                .col(s(CasChunks::Digest, 64).primary_key())
                .col(big(CasChunks::SizeBytes))
                .col(small(CasChunks::Stored))
                .col(big(CasChunks::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ModelVersionDatasets::Table)
                .col(s(ModelVersionDatasets::Model, 128))
                .col(big(ModelVersionDatasets::Version))
                .col(s(ModelVersionDatasets::Name, 512))
                .col(s(ModelVersionDatasets::Digest, 200))
                .col(s(ModelVersionDatasets::Context, 100))
                .col(text(ModelVersionDatasets::SourceUri))
                .primary_key(
                    Index::create()
                        .col(ModelVersionDatasets::Model)
                        .col(ModelVersionDatasets::Version)
                        .col(ModelVersionDatasets::Name)
                        .col(ModelVersionDatasets::Digest)
                        .col(ModelVersionDatasets::Context),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_model_version_datasets_digest")
                .table(ModelVersionDatasets::Table)
                .col(ModelVersionDatasets::Digest)
                .to_owned(),
        )
        .await?;
        backfill_model_version_datasets(m).await?;
        // The deployment policy that requires a complete reproducibility manifest.
        m.alter_table(
            Table::alter()
                .table(Environments::Table)
                .add_column(
                    ColumnDef::new(Environments::RequireReproducible)
                        .small_integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Environments::Table)
                .drop_column(Environments::RequireReproducible)
                .to_owned(),
        )
        .await?;
        for t in [
            ModelVersionDatasets::Table.into_iden(),
            CasChunks::Table.into_iden(),
            DatasetVersionChunks::Table.into_iden(),
            DatasetFiles::Table.into_iden(),
            DatasetVersions::Table.into_iden(),
            DatasetHeads::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

/// Fills `model_version_datasets` from the lineage frozen in every existing model version.
async fn backfill_model_version_datasets(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    let c = m.get_connection();
    let q = Query::select()
        .columns([
            ModelVersions::Model,
            ModelVersions::Version,
            ModelVersions::LineageJson,
        ])
        .from(ModelVersions::Table)
        .to_owned();
    let rows = c.query_all(&q).await?;
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        let model: String = r.try_get("", "model")?;
        let version: i64 = r.try_get("", "version")?;
        let lineage: String = r.try_get("", "lineage_json")?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&lineage) else {
            continue;
        };
        for d in v["datasets"].as_array().into_iter().flatten() {
            let field = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            let (name, digest, context) = (field("name"), field("digest"), field("context"));
            if !seen.insert((
                model.clone(),
                version,
                name.clone(),
                digest.clone(),
                context.clone(),
            )) {
                continue;
            }
            let ins = Query::insert()
                .into_table(ModelVersionDatasets::Table)
                .columns([
                    ModelVersionDatasets::Model,
                    ModelVersionDatasets::Version,
                    ModelVersionDatasets::Name,
                    ModelVersionDatasets::Digest,
                    ModelVersionDatasets::Context,
                    ModelVersionDatasets::SourceUri,
                ])
                .values_panic([
                    model.clone().into(),
                    version.into(),
                    name.into(),
                    digest.into(),
                    context.into(),
                    field("source_uri").into(),
                ])
                .to_owned();
            c.execute(&ins).await?;
        }
    }
    Ok(())
}
