//! `datasets` (deduplicated by name + digest) and `run_inputs`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use steward_common::Error;
use steward_storage::db_err;
use steward_storage::schema::{Datasets as D, RunInputs as I};

use super::{WriteTx, get};
use crate::domain::{Dataset, DatasetInput};

/// Stores `input` for `run_id`: the dataset row is shared by every run that logs the same
/// (name, digest); its first-logged source, schema and profile are kept.
pub async fn add_input(tx: &WriteTx, run_id: &str, input: &DatasetInput) -> Result<(), Error> {
    let d = &input.dataset;
    let ins = Query::insert()
        .into_table(D::Table)
        .columns([
            D::Id,
            D::Name,
            D::Digest,
            D::SourceUri,
            D::SourceType,
            D::SchemaJson,
            D::Profile,
            D::CreateTime,
        ])
        .values_panic([
            uuid::Uuid::now_v7().simple().to_string().into(),
            d.name.as_str().into(),
            d.digest.as_str().into(),
            d.source_uri.as_str().into(),
            d.source_type.as_str().into(),
            d.schema_json.as_str().into(),
            Expr::val(d.profile.clone()),
            steward_common::time::now_ms().into(),
        ])
        .on_conflict(
            OnConflict::columns([D::Name, D::Digest])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    tx.execute(&ins).await.map_err(db_err)?;
    let sel = Query::select()
        .column(D::Id)
        .from(D::Table)
        .and_where(Expr::col(D::Name).eq(d.name.as_str()))
        .and_where(Expr::col(D::Digest).eq(d.digest.as_str()))
        .to_owned();
    let row = tx
        .query_one(&sel)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::internal("dataset row vanished"))?;
    let dataset_id: String = get(&row, "id")?;
    let link = Query::insert()
        .into_table(I::Table)
        .columns([I::RunId, I::DatasetId, I::Context])
        .values_panic([
            run_id.into(),
            dataset_id.into(),
            input.context.as_str().into(),
        ])
        .on_conflict(
            OnConflict::columns([I::RunId, I::DatasetId, I::Context])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    tx.execute(&link).await.map_err(db_err)?;
    Ok(())
}

/// The inputs of the runs in `ids`, as (run id, input) pairs.
pub async fn fetch_inputs<C: ConnectionTrait>(
    c: &C,
    ids: &[String],
) -> Result<Vec<(String, DatasetInput)>, Error> {
    let q = Query::select()
        .column((I::Table, I::RunId))
        .column((I::Table, I::Context))
        .columns([
            (D::Table, D::Name),
            (D::Table, D::Digest),
            (D::Table, D::SourceUri),
            (D::Table, D::SourceType),
            (D::Table, D::SchemaJson),
            (D::Table, D::Profile),
        ])
        .from(I::Table)
        .inner_join(
            D::Table,
            Expr::col((D::Table, D::Id)).equals((I::Table, I::DatasetId)),
        )
        .and_where(Expr::col((I::Table, I::RunId)).is_in(ids.iter().cloned()))
        .to_owned();
    let mut out = Vec::new();
    for row in c.query_all(&q).await.map_err(db_err)? {
        out.push((
            get(&row, "run_id")?,
            DatasetInput {
                context: get(&row, "context")?,
                dataset: Dataset {
                    name: get(&row, "name")?,
                    digest: get(&row, "digest")?,
                    source_uri: get(&row, "source_uri")?,
                    source_type: get(&row, "source_type")?,
                    schema_json: get(&row, "schema_json")?,
                    profile: get(&row, "profile")?,
                },
            },
        ));
    }
    Ok(out)
}
