//! Dataset versions: streamed uploads into content-addressed chunks, commit with manifest
//! digest, schema and profile, byte-identical downloads, deduplication across versions, diff,
//! deletion with garbage collection, run inputs by version, external references, and bad input.

use futures::StreamExt;
use sha2::{Digest, Sha256};
use steward_artifacts::ObjectKey;
use steward_proto::tracking as pb;
use tonic::Code;

use crate::harness::{self, Harness, assert_bad, reason};

/// A deterministic CSV: `rows` rows of id, amount, score, country, flag. `edit` rewrites the
/// rows in that range (same shape, other values).
fn csv(rows: usize, edit: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = b"id,amount,score,country,flag\n".to_vec();
    let countries = ["DE", "FR", "US", "JP", "BR"];
    for i in 0..rows {
        let x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (a, s) = if edit.contains(&i) {
            ((x >> 20) % 777 + 20_000, (x >> 7) % 3)
        } else {
            ((x >> 20) % 10_000, (x >> 7) % 1000)
        };
        let line = format!(
            "{i},{}.{:02},{},{},{}\n",
            a,
            x % 100,
            s,
            countries[(x >> 40) as usize % 5],
            if x & 1 == 0 { "true" } else { "false" }
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn upload_msgs(
    version: &str,
    path: &str,
    data: Vec<u8>,
    expected_sha256: &str,
    expected_size: Option<i64>,
) -> impl futures::Stream<Item = pb::UploadDatasetFileRequest> + Send + 'static {
    let header = pb::UploadDatasetFileRequest {
        part: Some(pb::upload_dataset_file_request::Part::Header(
            pb::DatasetFileHeader {
                version: version.into(),
                path: path.into(),
                expected_sha256: expected_sha256.into(),
                expected_size,
            },
        )),
    };
    let chunks: Vec<pb::UploadDatasetFileRequest> = data
        .chunks(300 * 1024)
        .map(|c| pb::UploadDatasetFileRequest {
            part: Some(pb::upload_dataset_file_request::Part::Chunk(
                bytes::Bytes::copy_from_slice(c),
            )),
        })
        .collect();
    futures::stream::iter(std::iter::once(header).chain(chunks))
}

async fn upload_artifact(h: &mut Harness, run: &str, path: &str, data: &[u8]) {
    h.client
        .upload_artifact(futures::stream::iter(vec![
            pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Header(
                    pb::ArtifactHeader {
                        run: run.into(),
                        path: path.into(),
                        ..Default::default()
                    },
                )),
            },
            pb::UploadArtifactRequest {
                part: Some(pb::upload_artifact_request::Part::Chunk(
                    bytes::Bytes::copy_from_slice(data),
                )),
            },
        ]))
        .await
        .unwrap();
}

async fn new_version(h: &mut Harness, dataset: &str) -> pb::DatasetVersion {
    h.client
        .create_dataset_version(pb::CreateDatasetVersionRequest {
            parent: format!("datasets/{dataset}"),
            version: Some(pb::DatasetVersion {
                description: "test data".into(),
                tags: [("team".to_string(), "risk".to_string())].into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn put(h: &mut Harness, version: &str, path: &str, data: &[u8]) -> pb::DatasetFile {
    h.client
        .upload_dataset_file(upload_msgs(
            version,
            path,
            data.to_vec(),
            &sha(data),
            Some(data.len() as i64),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn commit(h: &mut Harness, version: &str) -> Result<pb::DatasetVersion, tonic::Status> {
    h.client
        .commit_dataset_version(pb::CommitDatasetVersionRequest {
            name: version.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn download(
    h: &mut Harness,
    version: &str,
    path: &str,
) -> Result<(pb::DatasetFile, Vec<u8>), tonic::Status> {
    let mut s = h
        .client
        .download_dataset_file(pb::DownloadDatasetFileRequest {
            version: version.into(),
            path: path.into(),
        })
        .await?
        .into_inner();
    let mut meta = None;
    let mut data = Vec::new();
    while let Some(m) = s.next().await {
        let m = m?;
        if let Some(f) = m.file {
            meta = Some(f);
        }
        data.extend_from_slice(&m.chunk);
    }
    Ok((meta.expect("first message has the file"), data))
}

async fn files(h: &mut Harness, version: &str) -> Vec<pb::DatasetFile> {
    h.client
        .list_dataset_files(pb::ListDatasetFilesRequest {
            version: version.into(),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .files
}

fn dataset_id() -> String {
    format!("ds-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn push_commit_pull_round_trip_with_schema_and_profile() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let ds = dataset_id();
        let table = csv(20_000, 0..0);
        let blob = noise(5 << 20, 7);
        let v = new_version(&mut h, &ds).await;
        assert_eq!(v.name, format!("datasets/{ds}/versions/1"), "{label}");
        assert_eq!(v.state, pb::DatasetVersionState::Pending as i32);
        let f = put(&mut h, &v.name, "train/part-0.csv", &table).await;
        assert_eq!(
            (f.size_bytes, f.sha256.clone()),
            (table.len() as i64, sha(&table))
        );
        assert_eq!(
            f.new_bytes,
            table.len() as i64,
            "{label}: new content is stored"
        );
        put(&mut h, &v.name, "images.bin", &blob).await;
        // Not readable before the commit.
        let e = download(&mut h, &v.name, "images.bin").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");

        let want = steward_cas::manifest_digest(&[
            steward_cas::ManifestEntry {
                path: "train/part-0.csv",
                size: table.len() as u64,
                sha256: &sha(&table),
            },
            steward_cas::ManifestEntry {
                path: "images.bin",
                size: blob.len() as u64,
                sha256: &sha(&blob),
            },
        ]);
        let c = h
            .client
            .commit_dataset_version(pb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                expected_file_count: 2,
                expected_digest: want.clone(),
                skip_profile: false,
                request_id: "commit-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            c.state,
            pb::DatasetVersionState::Committed as i32,
            "{label}"
        );
        assert_eq!(c.digest, want);
        assert_eq!(c.file_count, 2);
        assert_eq!(c.size_bytes, (table.len() + blob.len()) as i64);
        assert_eq!(c.new_bytes, c.size_bytes);
        assert_eq!(c.creator, "anonymous");
        // The retried commit answers the same.
        let again = h
            .client
            .commit_dataset_version(pb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                expected_file_count: 2,
                expected_digest: want.clone(),
                skip_profile: false,
                request_id: "commit-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.digest, c.digest);

        // Schema and profile of the one CSV, at version level too.
        let schema: serde_json::Value = serde_json::from_str(&c.schema_json).unwrap();
        let types: Vec<(String, String)> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().into(),
                    f["type"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            types,
            vec![
                ("id".into(), "int64".into()),
                ("amount".into(), "float64".into()),
                ("score".into(), "int64".into()),
                ("country".into(), "string".into()),
                ("flag".into(), "bool".into()),
            ],
            "{label}"
        );
        let p = c.profile.clone().expect("profile");
        assert_eq!(p.num_rows, 20_000);
        let id = &p.features[0];
        assert_eq!((id.count, id.missing), (20_000, 0));
        assert_eq!((id.min, id.max), (0.0, 19_999.0));
        assert!((id.mean - 9_999.5).abs() < 1e-6, "{}", id.mean);
        assert!(!id.quantile_sketch.is_empty() && !id.bin_counts.is_empty());
        assert_eq!(id.bin_counts.iter().sum::<i64>(), 20_000);
        let country = &p.features[3];
        assert_eq!(country.top_values.len(), 5);
        assert_eq!(
            country.top_values.iter().map(|v| v.count).sum::<i64>(),
            20_000
        );

        // Files and bytes come back identical.
        let listed = files(&mut h, &c.name).await;
        assert_eq!(
            listed.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            vec!["images.bin", "train/part-0.csv"]
        );
        assert!(listed[1].profile.is_some() && listed[0].profile.is_none());
        assert!(listed[0].chunk_count >= 2, "5 MiB is more than one chunk");
        let (meta, back) = download(&mut h, &c.name, "train/part-0.csv").await.unwrap();
        assert_eq!(meta.sha256, sha(&table));
        assert!(back == table, "{label}: csv round-trips");
        let (_, back) = download(
            &mut h,
            &format!("datasets/{ds}/versions/latest"),
            "images.bin",
        )
        .await
        .unwrap();
        assert!(back == blob, "{label}: blob round-trips through latest");

        // Listings.
        let vs = h
            .client
            .list_dataset_versions(pb::ListDatasetVersionsRequest {
                parent: format!("datasets/{ds}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vs.versions.len(), 1);
        let all = h
            .client
            .list_datasets(pb::ListDatasetsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mine = all
            .datasets
            .iter()
            .find(|d| d.name == format!("datasets/{ds}"))
            .expect("listed");
        assert_eq!(mine.version_count, 1);
        assert_eq!(mine.latest_version.as_ref().unwrap().digest, want);
        h.stop().await;
    }
}

#[tokio::test]
async fn identical_content_is_stored_once_and_an_edit_stores_little() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        // About 10 MB: ten chunks on average.
        let rows = 400_000;
        let base = csv(rows, 0..0);
        // 1% of the rows, in one block in the middle.
        let edited = csv(rows, rows / 2..rows / 2 + rows / 100);
        let ds = dataset_id();
        let v1 = new_version(&mut h, &ds).await;
        put(&mut h, &v1.name, "data.csv", &base).await;
        let v1 = commit(&mut h, &v1.name).await.unwrap();

        // The same bytes under another dataset and path: nothing new.
        let other = dataset_id();
        let w = new_version(&mut h, &other).await;
        let f = put(&mut h, &w.name, "copy/data.csv", &base).await;
        assert_eq!(
            f.new_bytes, 0,
            "{label}: identical content is not stored again"
        );
        let w = commit(&mut h, &w.name).await.unwrap();
        assert_ne!(w.digest, v1.digest, "the path is part of the manifest");

        let v2 = new_version(&mut h, &ds).await;
        let f = put(&mut h, &v2.name, "data.csv", &edited).await;
        let size = edited.len() as i64;
        assert!(f.new_bytes > 0, "{label}");
        assert!(
            f.new_bytes * 3 < size,
            "{label}: an edit of 1% of the rows stored {} of {size} bytes",
            f.new_bytes
        );
        let v2 = commit(&mut h, &v2.name).await.unwrap();
        assert_eq!(v2.new_bytes, f.new_bytes);
        let (_, back) = download(&mut h, &v2.name, "data.csv").await.unwrap();
        assert!(back == edited, "{label}");

        // The diff shows the changed file, the shared bytes and the shifted columns.
        let d = h
            .client
            .diff_dataset_versions(pb::DiffDatasetVersionsRequest {
                base: v1.name.clone(),
                target: v2.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d.files.len(), 1, "{label}");
        let fc = &d.files[0];
        assert_eq!(fc.kind, pb::dataset_diff::ChangeKind::Changed as i32);
        assert_eq!(
            fc.shared_bytes + f.new_bytes,
            size,
            "{label}: shared + new = whole"
        );
        assert!(d.schema_changes.is_empty());
        let amount = d
            .column_shifts
            .iter()
            .find(|s| s.path == "data.csv" && s.column == "amount")
            .expect("amount shift");
        assert!(amount.target_mean > amount.base_mean, "{amount:?}");
        assert!(
            amount.target_max >= 20_000.0 && amount.base_max < 10_000.0,
            "{amount:?}"
        );
        assert!(
            amount.ks_statistic > 0.0 && amount.ks_statistic < 0.05,
            "{amount:?}"
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn deleting_a_version_reclaims_only_what_no_other_version_uses() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let ds = dataset_id();
        let shared = noise(3 << 20, 11);
        let only_v1 = noise(2 << 20, 12);
        let only_v2 = noise(1 << 20, 13);
        let v1 = new_version(&mut h, &ds).await;
        put(&mut h, &v1.name, "a.bin", &shared).await;
        let b = put(&mut h, &v1.name, "b.bin", &only_v1).await;
        commit(&mut h, &v1.name).await.unwrap();
        let v2 = new_version(&mut h, &ds).await;
        put(&mut h, &v2.name, "a.bin", &shared).await;
        put(&mut h, &v2.name, "c.bin", &only_v2).await;
        commit(&mut h, &v2.name).await.unwrap();

        let b_chunks = files(&mut h, &v1.name)
            .await
            .into_iter()
            .find(|f| f.path == "b.bin")
            .unwrap()
            .chunk_count;
        let r = h
            .client
            .delete_dataset_version(pb::DeleteDatasetVersionRequest {
                name: v1.name.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.reclaimed_bytes, b.size_bytes,
            "{label}: only b.bin's bytes"
        );
        assert_eq!(r.reclaimed_chunks, b_chunks);
        let e = h
            .client
            .get_dataset_version(pb::GetDatasetVersionRequest {
                name: v1.name.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let (_, back) = download(&mut h, &v2.name, "a.bin").await.unwrap();
        assert!(back == shared, "{label}: the shared file survives");

        // Deleting the last user of every chunk empties the store of them.
        let listed = files(&mut h, &v2.name).await;
        let r = h
            .client
            .delete_dataset_version(pb::DeleteDatasetVersionRequest {
                name: v2.name.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.reclaimed_bytes, (shared.len() + only_v2.len()) as i64);
        assert_eq!(
            r.reclaimed_chunks,
            listed.iter().map(|f| f.chunk_count).sum::<i64>()
        );
        // And the objects are gone from the store, not only from the database.
        let first =
            steward_cas::chunk_ranges(&shared, &steward_cas::ChunkParams::DATASETS)[0].clone();
        let key = ObjectKey::for_chunk(&sha(&shared[first])).unwrap();
        let e = h
            .backends
            .objects
            .get(&key)
            .await
            .err()
            .expect("chunk deleted");
        assert_eq!(e.kind, steward_common::ErrorKind::NotFound, "{label}");
        h.stop().await;
    }
}

#[tokio::test]
async fn a_run_input_by_version_is_pinned_and_searchable() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let ds = dataset_id();
        let v = new_version(&mut h, &ds).await;
        put(&mut h, &v.name, "train.csv", &csv(500, 0..0)).await;
        let v = commit(&mut h, &v.name).await.unwrap();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        h.client
            .log_run_inputs(pb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![pb::DatasetInput {
                    dataset: Some(pb::Dataset {
                        version: format!("datasets/{ds}/versions/latest"),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .unwrap();
        let got = h
            .client
            .get_run(pb::GetRunRequest {
                name: run.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let d = got.inputs[0].dataset.clone().unwrap();
        assert_eq!(d.name, ds, "{label}");
        assert_eq!(d.digest, v.digest);
        assert_eq!(d.version, v.name, "latest is pinned to the number");
        assert_eq!(d.profile.unwrap().num_rows, 500);
        let found = h
            .client
            .search_runs(pb::SearchRunsRequest {
                experiments: vec![e.name.clone()],
                filter: format!("datasets.digest = '{}'", v.digest),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.runs.len(), 1, "{label}");

        // A pending version cannot be an input; nor can one that does not exist.
        let p = new_version(&mut h, &ds).await;
        for (name, code) in [
            (p.name.clone(), Code::FailedPrecondition),
            (format!("datasets/{ds}/versions/99"), Code::NotFound),
        ] {
            let e = h
                .client
                .log_run_inputs(pb::LogRunInputsRequest {
                    run: run.name.clone(),
                    inputs: vec![pb::DatasetInput {
                        dataset: Some(pb::Dataset {
                            version: name,
                            ..Default::default()
                        }),
                        context: "training".into(),
                    }],
                    request_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), code, "{label}: {e:?}");
        }
        // Filling other fields beside the version is refused.
        let e = h
            .client
            .log_run_inputs(pb::LogRunInputsRequest {
                run: run.name.clone(),
                inputs: vec![pb::DatasetInput {
                    dataset: Some(pb::Dataset {
                        version: v.name.clone(),
                        digest: "sha256:forged".into(),
                        ..Default::default()
                    }),
                    context: "training".into(),
                }],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("inputs[0].dataset.digest"));
        h.stop().await;
    }
}

#[tokio::test]
async fn bad_uploads_and_commits_are_refused_and_leave_nothing() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let ds = dataset_id();
        let v = new_version(&mut h, &ds).await;
        let data = noise(600 << 10, 3);

        // A digest or size that does not match the bytes: refused, nothing kept.
        let e = h
            .client
            .upload_dataset_file(upload_msgs(
                &v.name,
                "x.bin",
                data.clone(),
                &"0".repeat(64),
                None,
            ))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("header.expected_sha256"));
        let e = h
            .client
            .upload_dataset_file(upload_msgs(
                &v.name,
                "x.bin",
                data.clone(),
                "",
                Some(1 << 20),
            ))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("header.expected_size"));
        assert!(files(&mut h, &v.name).await.is_empty(), "{label}");
        let first =
            steward_cas::chunk_ranges(&data, &steward_cas::ChunkParams::DATASETS)[0].clone();
        let key = ObjectKey::for_chunk(&sha(&data[first])).unwrap();
        assert!(
            h.backends.objects.get(&key).await.is_err(),
            "{label}: a refused upload leaves no chunk behind"
        );

        // Paths that escape the version, in several spellings.
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a\\b",
            "",
            "a//b",
            "%2e%2e/x",
            "a/./b",
            "x\0y",
        ] {
            let e = h
                .client
                .upload_dataset_file(upload_msgs(&v.name, bad, b"x".to_vec(), "", None))
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("header.path"));
        }

        // An empty version cannot be committed; a wrong count or digest neither.
        let e = commit(&mut h, &v.name).await.unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "DATASET_VERSION_EMPTY"),
            "{label}"
        );
        put(&mut h, &v.name, "x.bin", &data).await;
        let e = h
            .client
            .upload_dataset_file(upload_msgs(&v.name, "x.bin", data.clone(), "", None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists);
        let e = h
            .client
            .commit_dataset_version(pb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                expected_file_count: 2,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::FailedPrecondition, Some("expected_file_count"));
        let e = h
            .client
            .commit_dataset_version(pb::CommitDatasetVersionRequest {
                name: v.name.clone(),
                expected_digest: format!("sha256:{}", "a".repeat(64)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_bad(e, Code::FailedPrecondition, Some("expected_digest"));
        let c = commit(&mut h, &v.name).await.unwrap();
        // Committed versions are immutable.
        let e = h
            .client
            .upload_dataset_file(upload_msgs(&c.name, "y.bin", b"y".to_vec(), "", None))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "DATASET_VERSION_COMMITTED")
        );

        // A CSV that does not parse fails the commit with its name; skip_profile stores it.
        let p = new_version(&mut h, &ds).await;
        put(&mut h, &p.name, "broken.csv", b"a,b\n1,2\n3\n").await;
        let e = commit(&mut h, &p.name).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}: {e:?}");
        assert!(e.message().contains("broken.csv"), "{e:?}");
        let ok = h
            .client
            .commit_dataset_version(pb::CommitDatasetVersionRequest {
                name: p.name.clone(),
                skip_profile: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(ok.profile.is_none() && ok.schema_json.is_empty());

        // Malformed names and headers.
        for parent in [
            "datasets/",
            "datasets/../x",
            "datasets/a b",
            "experiments/x",
            "datasets/-x",
        ] {
            let e = h
                .client
                .create_dataset_version(pb::CreateDatasetVersionRequest {
                    parent: parent.into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("parent"));
        }
        for name in [
            "datasets/x/versions/0",
            "datasets/x/versions/-1",
            "datasets/x/versions/a",
            "datasets/x",
        ] {
            let e = h
                .client
                .get_dataset_version(pb::GetDatasetVersionRequest { name: name.into() })
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some("name"));
        }
        let e = h
            .client
            .upload_dataset_file(futures::stream::iter(vec![pb::UploadDatasetFileRequest {
                part: Some(pb::upload_dataset_file_request::Part::Chunk(
                    bytes::Bytes::from_static(b"x"),
                )),
            }]))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("header"));
        // Uploading into `latest` or a missing version.
        let e = h
            .client
            .upload_dataset_file(upload_msgs(
                &format!("datasets/{ds}/versions/latest"),
                "z",
                b"z".to_vec(),
                "",
                None,
            ))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("header.version"));
        let e = h
            .client
            .upload_dataset_file(upload_msgs(
                &format!("datasets/{ds}/versions/77"),
                "z",
                b"z".to_vec(),
                "",
                None,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);

        // External references: disallowed schemes and missing digests name the field; on a
        // server without S3 they are refused as such.
        for (ext, field) in [
            (
                pb::ExternalDatasetRef {
                    kind: pb::external_dataset_ref::Kind::S3ObjectVersion as i32,
                    uri: "file:///etc/passwd".into(),
                    version_id: "v".into(),
                    sha256: "a".repeat(64),
                    ..Default::default()
                },
                "version.external.uri",
            ),
            (
                pb::ExternalDatasetRef {
                    kind: pb::external_dataset_ref::Kind::S3ObjectVersion as i32,
                    uri: "s3://bucket/key".into(),
                    version_id: "v".into(),
                    ..Default::default()
                },
                "version.external.sha256",
            ),
            (
                pb::ExternalDatasetRef {
                    kind: pb::external_dataset_ref::Kind::S3ObjectVersion as i32,
                    uri: "s3://bucket/key".into(),
                    sha256: "a".repeat(64),
                    ..Default::default()
                },
                "version.external.version_id",
            ),
            (
                pb::ExternalDatasetRef {
                    kind: pb::external_dataset_ref::Kind::Lakefs as i32,
                    uri: "s3://repo/main/data.csv".into(),
                    sha256: "a".repeat(64),
                    ..Default::default()
                },
                "version.external.uri",
            ),
            (
                pb::ExternalDatasetRef {
                    kind: 0,
                    uri: "s3://bucket/key".into(),
                    sha256: "a".repeat(64),
                    ..Default::default()
                },
                "version.external.kind",
            ),
        ] {
            let e = h
                .client
                .create_dataset_version(pb::CreateDatasetVersionRequest {
                    parent: format!("datasets/{ds}"),
                    version: Some(pb::DatasetVersion {
                        external: Some(ext),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_bad(e, Code::InvalidArgument, Some(field));
        }
        // Nothing above created a version.
        let vs = h
            .client
            .list_dataset_versions(pb::ListDatasetVersionsRequest {
                parent: format!("datasets/{ds}"),
                show_pending: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vs.versions.len(), 2, "{label}");
        h.stop().await;
    }
}

#[tokio::test]
async fn external_references_are_verified_by_reading_them() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let e = h.experiment().await;
        let run = h.run(&e.name).await;
        let data = b"a,b\n1,2\n".to_vec();
        let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&data));
        let dvc_path = format!("files/md5/{}/{}", &md5[..2], &md5[2..]);
        let ds = dataset_id();
        let ext = |kind, uri: String, sha256: String| pb::CreateDatasetVersionRequest {
            parent: format!("datasets/{ds}"),
            version: Some(pb::DatasetVersion {
                external: Some(pb::ExternalDatasetRef {
                    kind,
                    uri,
                    sha256,
                    md5: md5.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        if !h.s3 {
            let r = h
                .client
                .create_dataset_version(ext(
                    pb::external_dataset_ref::Kind::Dvc as i32,
                    format!("s3://bucket/{dvc_path}"),
                    sha(&data),
                ))
                .await
                .unwrap_err();
            assert_eq!(
                (r.code(), reason(&r).as_str()),
                (Code::FailedPrecondition, "EXTERNAL_REFERENCES_NEED_S3"),
                "{label}"
            );
            h.stop().await;
            continue;
        }
        // A DVC remote file: put it where a DVC remote would, inside the test bucket.
        upload_artifact(&mut h, &run.name, &dvc_path, &data).await;
        let (exp_id, run_id) = {
            let parts: Vec<&str> = run.name.split('/').collect();
            (parts[1].to_string(), parts[3].to_string())
        };
        let uri = format!(
            "{}/experiments/{exp_id}/runs/{run_id}/artifacts/{dvc_path}",
            h.backends.objects.describe()
        );
        let v = h
            .client
            .create_dataset_version(ext(
                pb::external_dataset_ref::Kind::Dvc as i32,
                uri.clone(),
                sha(&data),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            v.state,
            pb::DatasetVersionState::Committed as i32,
            "{label}"
        );
        assert_eq!(v.file_count, 1);
        assert_eq!(v.size_bytes, data.len() as i64);
        assert_eq!(v.external.as_ref().unwrap().size_bytes, data.len() as i64);
        // Its bytes live elsewhere: downloads point there.
        let e = download(&mut h, &v.name, &md5[2..]).await.unwrap_err();
        assert_eq!(reason(&e), "DATASET_VERSION_EXTERNAL");
        // A wrong digest, or a missing object, is refused and records nothing.
        let e = h
            .client
            .create_dataset_version(ext(
                pb::external_dataset_ref::Kind::Dvc as i32,
                uri.clone(),
                "b".repeat(64),
            ))
            .await
            .unwrap_err();
        assert_bad(e, Code::InvalidArgument, Some("version.external.sha256"));
        let missing = uri.replace(&run_id, &"0".repeat(32));
        let e = h
            .client
            .create_dataset_version(ext(
                pb::external_dataset_ref::Kind::Dvc as i32,
                missing,
                sha(&data),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{label}: {e:?}");
        // An Iceberg metadata file naming the snapshot.
        let meta =
            br#"{"format-version":2,"snapshots":[{"snapshot-id":42},{"snapshot-id":43}]}"#.to_vec();
        upload_artifact(&mut h, &run.name, "table/metadata/v3.metadata.json", &meta).await;
        let muri = format!(
            "{}/experiments/{exp_id}/runs/{run_id}/artifacts/table/metadata/v3.metadata.json",
            h.backends.objects.describe()
        );
        for (snapshot, ok) in [(43, true), (44, false)] {
            let r = h
                .client
                .create_dataset_version(pb::CreateDatasetVersionRequest {
                    parent: format!("datasets/{ds}"),
                    version: Some(pb::DatasetVersion {
                        external: Some(pb::ExternalDatasetRef {
                            kind: pb::external_dataset_ref::Kind::IcebergSnapshot as i32,
                            uri: muri.clone(),
                            sha256: sha(&meta),
                            snapshot_id: snapshot,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await;
            match (r, ok) {
                (Ok(_), true) => {}
                (Err(e), false) => assert_bad(
                    e,
                    Code::InvalidArgument,
                    Some("version.external.snapshot_id"),
                ),
                (r, _) => panic!("{label}: snapshot {snapshot}: {r:?}"),
            }
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn collection_racing_an_upload_of_the_same_content_loses_nothing() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let data = noise(3 << 20, 99);
        for round in 0..6 {
            let ds = dataset_id();
            let old = new_version(&mut h, &ds).await;
            put(&mut h, &old.name, "x.bin", &data).await;
            commit(&mut h, &old.name).await.unwrap();
            let new = new_version(&mut h, &ds).await;
            // Delete the only version holding the chunks while the same bytes are uploaded.
            let mut c1 = h.client.clone();
            let mut c2 = h.client.clone();
            let (del, up) = tokio::join!(
                c1.delete_dataset_version(pb::DeleteDatasetVersionRequest {
                    name: old.name.clone(),
                    request_id: String::new(),
                }),
                c2.upload_dataset_file(upload_msgs(
                    &new.name,
                    "x.bin",
                    data.clone(),
                    &sha(&data),
                    None
                )),
            );
            del.unwrap();
            up.unwrap();
            let c = commit(&mut h, &new.name).await.unwrap();
            let (_, back) = download(&mut h, &c.name, "x.bin")
                .await
                .unwrap_or_else(|e| panic!("{label}: round {round}: {e:?}"));
            assert!(back == data, "{label}: round {round}: bytes survive");
            h.client
                .delete_dataset_version(pb::DeleteDatasetVersionRequest {
                    name: c.name.clone(),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn a_client_that_goes_away_mid_upload_leaves_nothing_and_frees_the_path() {
    for mut h in harness::all().await {
        let label = h.label.clone();
        let ds = dataset_id();
        let v = new_version(&mut h, &ds).await;
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadDatasetFileRequest>(4);
        tx.send(pb::UploadDatasetFileRequest {
            part: Some(pb::upload_dataset_file_request::Part::Header(
                pb::DatasetFileHeader {
                    version: v.name.clone(),
                    path: "big.bin".into(),
                    ..Default::default()
                },
            )),
        })
        .await
        .unwrap();
        let part = noise(2 << 20, 5);
        tx.send(pb::UploadDatasetFileRequest {
            part: Some(pb::upload_dataset_file_request::Part::Chunk(
                part.clone().into(),
            )),
        })
        .await
        .unwrap();
        let mut c = h.client.clone();
        // The call never completes: the stream stays open, then the client gives up.
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            c.upload_dataset_file(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await;
        assert!(cut.is_err(), "{label}: the upload was still running");
        drop(tx);
        // The reservation goes away: the same path can be uploaded again at once.
        let data = noise(1 << 20, 6);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = h
                .client
                .upload_dataset_file(upload_msgs(
                    &v.name,
                    "big.bin",
                    data.clone(),
                    &sha(&data),
                    None,
                ))
                .await;
            match r {
                Ok(f) => {
                    assert_eq!(f.into_inner().size_bytes, data.len() as i64);
                    break;
                }
                Err(e) if e.code() == Code::Aborted && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{label}: {e:?}"),
            }
        }
        let c = commit(&mut h, &v.name).await.unwrap();
        assert_eq!(c.file_count, 1);
        assert_eq!(
            c.size_bytes,
            data.len() as i64,
            "{label}: only the finished upload counts"
        );
        // Nothing of the cut-off bytes is referenced any more: deleting the version reclaims
        // exactly the finished file.
        let r = h
            .client
            .delete_dataset_version(pb::DeleteDatasetVersionRequest {
                name: c.name.clone(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.reclaimed_bytes, data.len() as i64, "{label}");
        let first =
            steward_cas::chunk_ranges(&part, &steward_cas::ChunkParams::DATASETS)[0].clone();
        let key = ObjectKey::for_chunk(&sha(&part[first])).unwrap();
        assert!(
            h.backends.objects.get(&key).await.is_err(),
            "{label}: cut-off chunks are gone"
        );
        h.stop().await;
    }
}
