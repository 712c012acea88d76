//! Schema and per-column profile of a version's CSV and Parquet files, computed at commit from
//! the stored chunks (one streaming pass per file, on a blocking thread).

use futures::StreamExt;
use prost::Message;
use steward_common::Error;
use steward_proto::tracking as pb;
use steward_tabular::{ColumnProfile, FileProfile, Profiler};
use tokio::sync::mpsc;

use super::Tracking;
use super::dsv::{ProfileResult, chunk_stream};
use crate::domain::datasets::DatasetFile;

/// The profile in the API's shape (what monitoring reads as a drift baseline).
pub fn to_proto(p: &FileProfile) -> pb::DatasetProfile {
    pb::DatasetProfile {
        num_rows: p.num_rows as i64,
        features: p.columns.iter().map(feature).collect(),
    }
}

fn feature(c: &ColumnProfile) -> pb::FeatureProfile {
    pb::FeatureProfile {
        name: c.name.clone(),
        dtype: c.dtype.clone(),
        count: c.count as i64,
        missing: c.missing as i64,
        mean: c.mean.unwrap_or(f64::NAN),
        stddev: c.stddev.unwrap_or(f64::NAN),
        min: c.min.unwrap_or(f64::NAN),
        max: c.max.unwrap_or(f64::NAN),
        bin_edges: c.bin_edges.clone(),
        bin_counts: c.bin_counts.iter().map(|&n| n as i64).collect(),
        top_values: c
            .top_values
            .iter()
            .map(|(v, n)| pb::ValueCount {
                value: v.clone(),
                count: *n as i64,
            })
            .collect(),
        distinct: c.distinct as i64,
        quantiles: c
            .quantiles
            .iter()
            .map(|&(q, value)| pb::Quantile { q, value })
            .collect(),
        quantile_sketch: c.quantile_sketch.clone().unwrap_or_default(),
    }
}

/// Profiles every tabular file of a version. A file that does not parse fails the commit with
/// an error naming it (commit with `skip_profile` to store it unprofiled).
pub(crate) async fn profile_version(
    app: &Tracking,
    files: &[DatasetFile],
) -> Result<ProfileResult, Error> {
    let mut per_file = Vec::new();
    let mut profiles = Vec::new();
    for f in files {
        let Some(format) = steward_tabular::format_of(&f.path) else {
            continue;
        };
        let chunks = steward_cas::decode_chunks(&f.chunks)
            .ok_or_else(|| Error::internal("corrupt chunk list"))?;
        let mut body = chunk_stream(app.objects.clone(), chunks);
        let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(4);
        let path = f.path.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut p = Profiler::new(format, &path);
            while let Some(b) = rx.blocking_recv() {
                p.push(&b)?;
            }
            p.finish()
        });
        let mut read_err = None;
        while let Some(b) = body.next().await {
            match b {
                Ok(b) => {
                    if tx.send(b).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    read_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let result = worker.await.map_err(Error::internal)?;
        if let Some(e) = read_err {
            return Err(e);
        }
        let profile = result.map_err(|e| {
            let mut e = e;
            e.message = format!(
                "{} (commit with skip_profile to store the file without a profile)",
                e.message
            );
            e
        })?;
        let schema = steward_tabular::schema_json(&profile);
        per_file.push((
            f.path.clone(),
            schema.clone(),
            to_proto(&profile).encode_to_vec(),
        ));
        profiles.push((schema, profile));
    }
    let shared = !profiles.is_empty() && profiles.iter().all(|(s, _)| *s == profiles[0].0);
    if shared {
        let schema = profiles[0].0.clone();
        let merged = steward_tabular::merge(profiles.into_iter().map(|(_, p)| p).collect());
        let encoded = to_proto(&merged).encode_to_vec();
        Ok((per_file, schema, encoded))
    } else {
        Ok((per_file, String::new(), Vec::new()))
    }
}
