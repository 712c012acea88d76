//! Dataset version RPCs: validation, conversion and calls into the app.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use prost::Message;
use steward_artifacts::ArtifactPath;
use steward_common::Error;
use steward_grpc::to_status;
use steward_proto::tracking as pb;
use steward_runtime::request::{ctx, scope};
use tonic::{Request, Response, Status, Streaming};

use super::convert::ts;
use super::service::TrackingApi;
use crate::app::dsv::{CommitCheck, FileHeader, NewVersion};
use crate::domain::datasets::{
    self as d, DatasetFile, DatasetVersion, ExternalKind, ExternalRef, VersionRef, VersionState,
};
use crate::domain::validate;

type Result<T> = std::result::Result<Response<T>, Status>;

/// The download stream.
pub type DownloadStream = Pin<
    Box<dyn Stream<Item = std::result::Result<pb::DownloadDatasetFileResponse, Status>> + Send>,
>;

fn st(e: Error) -> Status {
    to_status(&e)
}

fn profile_of(bytes: &[u8]) -> Option<pb::DatasetProfile> {
    if bytes.is_empty() {
        None
    } else {
        pb::DatasetProfile::decode(bytes).ok()
    }
}

/// Domain version to wire.
pub fn version(v: &DatasetVersion) -> pb::DatasetVersion {
    pb::DatasetVersion {
        name: v.name(),
        version: v.version,
        state: match v.state {
            VersionState::Pending => pb::DatasetVersionState::Pending as i32,
            VersionState::Committed => pb::DatasetVersionState::Committed as i32,
        },
        digest: v.digest.clone(),
        description: v.description.clone(),
        tags: v.tags.clone().into_iter().collect(),
        creator: v.creator.clone(),
        create_time: Some(ts(v.create_time)),
        commit_time: v.commit_time.map(ts),
        file_count: v.file_count,
        size_bytes: v.size_bytes,
        new_bytes: v.new_bytes,
        schema_json: v.schema_json.clone(),
        profile: profile_of(&v.profile),
        external: v.external.as_ref().map(|e| pb::ExternalDatasetRef {
            kind: match e.kind {
                ExternalKind::S3ObjectVersion => pb::external_dataset_ref::Kind::S3ObjectVersion,
                ExternalKind::Dvc => pb::external_dataset_ref::Kind::Dvc,
                ExternalKind::LakeFs => pb::external_dataset_ref::Kind::Lakefs,
                ExternalKind::IcebergSnapshot => pb::external_dataset_ref::Kind::IcebergSnapshot,
            } as i32,
            uri: e.uri.clone(),
            version_id: e.version_id.clone(),
            sha256: e.sha256.clone(),
            md5: e.md5.clone(),
            snapshot_id: e.snapshot_id,
            size_bytes: e.size_bytes,
        }),
    }
}

/// Domain file to wire.
pub fn file(f: &DatasetFile) -> pb::DatasetFile {
    pb::DatasetFile {
        path: f.path.clone(),
        size_bytes: f.size_bytes,
        sha256: f.sha256.clone(),
        chunk_count: f.chunk_count(),
        new_bytes: f.new_bytes,
        schema_json: f.schema_json.clone(),
        profile: profile_of(&f.profile),
    }
}

fn external_from(e: &pb::ExternalDatasetRef) -> std::result::Result<ExternalRef, Error> {
    use pb::external_dataset_ref::Kind;
    let kind = match Kind::try_from(e.kind) {
        Ok(Kind::S3ObjectVersion) => ExternalKind::S3ObjectVersion,
        Ok(Kind::Dvc) => ExternalKind::Dvc,
        Ok(Kind::Lakefs) => ExternalKind::LakeFs,
        Ok(Kind::IcebergSnapshot) => ExternalKind::IcebergSnapshot,
        _ => {
            return Err(Error::invalid_field(
                "version.external.kind",
                "one of S3_OBJECT_VERSION, DVC, LAKEFS, ICEBERG_SNAPSHOT",
            ));
        }
    };
    Ok(ExternalRef {
        kind,
        uri: e.uri.clone(),
        version_id: e.version_id.clone(),
        sha256: e.sha256.to_ascii_lowercase(),
        md5: e.md5.to_ascii_lowercase(),
        snapshot_id: e.snapshot_id,
        size_bytes: 0,
    })
}

/// `v` lowercased if it is `len` hex characters, `None` if empty; otherwise an error naming `field`.
pub(super) fn hex_or_none(
    field: &str,
    v: &str,
    len: usize,
) -> std::result::Result<Option<String>, Error> {
    if v.is_empty() {
        return Ok(None);
    }
    let v = v.to_ascii_lowercase();
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid_field(
            field,
            format!("must be {len} hex characters"),
        ));
    }
    Ok(Some(v))
}

fn number(ds: &str, v: VersionRef, field: &str) -> std::result::Result<i64, Error> {
    match v {
        VersionRef::Number(n) => Ok(n),
        VersionRef::Latest => Err(Error::invalid_field(
            field,
            format!("name a version number (datasets/{ds}/versions/N), not latest"),
        )),
    }
}

impl TrackingApi {
    pub(super) async fn dsv_create(
        &self,
        req: Request<pb::CreateDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        let c = ctx(&req);
        let r = req.into_inner();
        let dataset = d::parse_dataset_name(&r.parent, "parent").map_err(st)?;
        let v = r.version.unwrap_or_default();
        validate::text("version.description", &v.description, 10_000).map_err(st)?;
        let tags =
            super::convert::tag_map(&v.tags, "version.tags", self.app.limits()).map_err(st)?;
        let external = v
            .external
            .as_ref()
            .map(external_from)
            .transpose()
            .map_err(st)?;
        let new = NewVersion {
            dataset,
            description: v.description,
            tags,
            external,
        };
        let out = self
            .app
            .create_dataset_version(&c, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(version(&out)))
    }

    pub(super) async fn dsv_upload(
        &self,
        req: Request<Streaming<pb::UploadDatasetFileRequest>>,
    ) -> Result<pb::DatasetFile> {
        let c = ctx(&req);
        let mut stream = req.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            st(Error::invalid_field(
                "header",
                "the stream was empty; send a header first",
            ))
        })?;
        let Some(pb::upload_dataset_file_request::Part::Header(h)) = first.part else {
            return Err(st(Error::invalid_field(
                "header",
                "the first message must be the header",
            )));
        };
        let (dataset, v) = d::parse_version_name(&h.version, "header.version").map_err(st)?;
        let version = number(&dataset, v, "header.version").map_err(st)?;
        let path = ArtifactPath::parse(&h.path, "header.path").map_err(st)?;
        let expected_sha256 =
            hex_or_none("header.expected_sha256", &h.expected_sha256, 64).map_err(st)?;
        if let Some(s) = h.expected_size
            && s < 0
        {
            return Err(st(Error::invalid_field(
                "header.expected_size",
                "must be >= 0",
            )));
        }
        let header = FileHeader {
            dataset,
            version,
            path,
            expected_sha256,
            expected_size: h.expected_size,
        };
        let body = super::service::byte_stream(stream, |m| match m.part {
            Some(pb::upload_dataset_file_request::Part::Chunk(b)) => Some(b),
            _ => None,
        });
        let out = self
            .app
            .upload_dataset_file(&c, header, body)
            .await
            .map_err(st)?;
        Ok(Response::new(file(&out)))
    }

    pub(super) async fn dsv_commit(
        &self,
        req: Request<pb::CommitDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        let c = ctx(&req);
        let r = req.into_inner();
        let (dataset, v) = d::parse_version_name(&r.name, "name").map_err(st)?;
        let ver = number(&dataset, v, "name").map_err(st)?;
        if r.expected_file_count < 0 {
            return Err(st(Error::invalid_field(
                "expected_file_count",
                "must be >= 0",
            )));
        }
        if !r.expected_digest.is_empty()
            && hex_or_none(
                "expected_digest",
                r.expected_digest.strip_prefix("sha256:").unwrap_or("-"),
                64,
            )
            .is_err()
        {
            return Err(st(Error::invalid_field(
                "expected_digest",
                "must be sha256:<64 hex characters>",
            )));
        }
        let check = CommitCheck {
            file_count: r.expected_file_count,
            digest: r.expected_digest.to_ascii_lowercase(),
            skip_profile: r.skip_profile,
        };
        let out = self
            .app
            .commit_dataset_version(&c, &dataset, ver, check, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(version(&out)))
    }

    pub(super) async fn dsv_get(
        &self,
        req: Request<pb::GetDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        let r = req.into_inner();
        let (dataset, v) = d::parse_version_name(&r.name, "name").map_err(st)?;
        let out = self.app.dataset_version(&dataset, &v).await.map_err(st)?;
        Ok(Response::new(version(&out)))
    }

    pub(super) async fn dsv_list_versions(
        &self,
        req: Request<pb::ListDatasetVersionsRequest>,
    ) -> Result<pb::ListDatasetVersionsResponse> {
        let r = req.into_inner();
        let dataset = d::parse_dataset_name(&r.parent, "parent").map_err(st)?;
        let page_size =
            validate::page_size(r.page_size, 50, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&["dataset_versions", &r.parent, &r.show_pending.to_string()]);
        let before: Option<i64> = self.tokens.decode_opt(&sc, &r.page_token).map_err(st)?;
        let (items, next) = self
            .app
            .list_dataset_versions(&dataset, r.show_pending, before, page_size)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListDatasetVersionsResponse {
            versions: items.iter().map(version).collect(),
            next_page_token: next
                .map(|n| self.tokens.encode(&sc, &n))
                .unwrap_or_default(),
        }))
    }

    pub(super) async fn dsv_list_datasets(
        &self,
        req: Request<pb::ListDatasetsRequest>,
    ) -> Result<pb::ListDatasetsResponse> {
        let r = req.into_inner();
        let page_size =
            validate::page_size(r.page_size, 50, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&["datasets"]);
        let after: Option<String> = self.tokens.decode_opt(&sc, &r.page_token).map_err(st)?;
        let (items, next) = self
            .app
            .list_datasets(after.as_deref(), page_size)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListDatasetsResponse {
            datasets: items
                .iter()
                .map(|(id, created, count, latest)| pb::VersionedDataset {
                    name: format!("datasets/{id}"),
                    version_count: *count,
                    latest_version: latest.as_ref().map(version),
                    create_time: Some(ts(*created)),
                })
                .collect(),
            next_page_token: next
                .map(|n| self.tokens.encode(&sc, &n))
                .unwrap_or_default(),
        }))
    }

    pub(super) async fn dsv_list_files(
        &self,
        req: Request<pb::ListDatasetFilesRequest>,
    ) -> Result<pb::ListDatasetFilesResponse> {
        let r = req.into_inner();
        let (dataset, v) = d::parse_version_name(&r.version, "version").map_err(st)?;
        let page_size =
            validate::page_size(r.page_size, 1000, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&["dataset_files", &r.version]);
        let after: Option<String> = self.tokens.decode_opt(&sc, &r.page_token).map_err(st)?;
        let (_, files, next) = self
            .app
            .list_dataset_files(&dataset, &v, after.as_deref(), page_size)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListDatasetFilesResponse {
            files: files.iter().map(file).collect(),
            next_page_token: next
                .map(|n| self.tokens.encode(&sc, &n))
                .unwrap_or_default(),
        }))
    }

    pub(super) async fn dsv_download(
        &self,
        req: Request<pb::DownloadDatasetFileRequest>,
    ) -> Result<DownloadStream> {
        let r = req.into_inner();
        let (dataset, v) = d::parse_version_name(&r.version, "version").map_err(st)?;
        let path = ArtifactPath::parse(&r.path, "path").map_err(st)?;
        let (_, f, body) = self
            .app
            .open_dataset_file(&dataset, &v, path.as_str())
            .await
            .map_err(st)?;
        let head = futures::stream::once(async move {
            Ok(pb::DownloadDatasetFileResponse {
                file: Some(file(&f)),
                chunk: Default::default(),
            })
        });
        let chunks = body.map(|b| match b {
            Ok(bytes) => Ok(pb::DownloadDatasetFileResponse {
                file: None,
                chunk: bytes,
            }),
            Err(e) => Err(st(e)),
        });
        Ok(Response::new(Box::pin(head.chain(chunks))))
    }

    pub(super) async fn dsv_diff(
        &self,
        req: Request<pb::DiffDatasetVersionsRequest>,
    ) -> Result<pb::DatasetDiff> {
        let r = req.into_inner();
        let (bd, bv) = d::parse_version_name(&r.base, "base").map_err(st)?;
        let (td, tv) = d::parse_version_name(&r.target, "target").map_err(st)?;
        let (base, base_files) = self.app.dataset_files(&bd, &bv).await.map_err(st)?;
        let (target, target_files) = self.app.dataset_files(&td, &tv).await.map_err(st)?;
        Ok(Response::new(super::dsv_diff::diff(
            &base,
            &base_files,
            &target,
            &target_files,
        )))
    }

    pub(super) async fn dsv_delete(
        &self,
        req: Request<pb::DeleteDatasetVersionRequest>,
    ) -> Result<pb::DeleteDatasetVersionResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let (dataset, v) = d::parse_version_name(&r.name, "name").map_err(st)?;
        let ver = number(&dataset, v, "name").map_err(st)?;
        let (chunks, bytes) = self
            .app
            .delete_dataset_version(&c, &dataset, ver, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteDatasetVersionResponse {
            reclaimed_chunks: chunks,
            reclaimed_bytes: bytes,
        }))
    }
}
