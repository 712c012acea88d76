//! `steward.tracking.v1.TrackingService` over the app layer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prost::Message;
use steward_artifacts::ArtifactPath;
use steward_common::Error;
use steward_common::names::{ExperimentName, RunName};
use steward_grpc::{PageTokenCodec, to_status};
use steward_proto::tracking as pb;
use steward_proto::tracking::tracking_service_server::TrackingService;
use steward_runtime::request::{ctx, mask_paths, scope};
use tonic::{Request, Response, Status, Streaming};

use super::convert;

use crate::app::Tracking;
use crate::app::artifacts::UploadHeader;
use crate::app::experiments::{ExperimentPatch, ListExperiments, NewExperiment};
use crate::app::runs::{NewRun, RunPatch, SearchRuns};
use crate::domain::downsample::Method;
use crate::domain::validate;
use crate::store::metrics::HistoryCursor;

type Result<T> = std::result::Result<Response<T>, Status>;

/// Default and max page size of metric history reads.
const HISTORY_PAGE_DEFAULT: usize = 100_000;
const HISTORY_PAGE_MAX: usize = 1_000_000;

/// The gRPC service.
#[derive(Clone)]
pub struct TrackingApi {
    pub(super) app: Tracking,
    pub(super) tokens: Arc<PageTokenCodec>,
}

impl TrackingApi {
    /// Wraps the app; `tokens` signs page tokens (shared key across replicas).
    pub fn new(app: Tracking, tokens: Arc<PageTokenCodec>) -> Self {
        Self { app, tokens }
    }
}

fn st(e: Error) -> Status {
    to_status(&e)
}

/// The bytes of an upload stream after its header: `chunk` takes them out of a message (`None`
/// for a message that is not a chunk, refused naming the field `chunk`); a broken stream is
/// `ABORTED` `UPLOAD_INTERRUPTED`.
pub(super) fn byte_stream<T: Send + 'static>(
    stream: Streaming<T>,
    chunk: fn(T) -> Option<bytes::Bytes>,
) -> steward_artifacts::ByteStream {
    Box::pin(stream.map(move |m| match m {
        Ok(m) => chunk(m).ok_or_else(|| {
            Error::invalid_field(
                "chunk",
                "only the first message may be a header; later ones carry bytes",
            )
        }),
        Err(s) => Err(Error::new(
            steward_common::ErrorKind::Aborted,
            "UPLOAD_INTERRUPTED",
            format!("the upload stream failed: {}", s.message()),
        )),
    }))
}

fn run_name_of(s: &str, field: &str) -> std::result::Result<RunName, Status> {
    RunName::parse(s, field).map_err(st)
}

#[tonic::async_trait]
impl TrackingService for TrackingApi {
    async fn create_experiment(
        &self,
        req: Request<pb::CreateExperimentRequest>,
    ) -> Result<pb::Experiment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let e = r
            .experiment
            .ok_or_else(|| st(Error::invalid_field("experiment", "required")))?;
        validate::name("experiment.display_name", &e.display_name).map_err(st)?;
        validate::text("experiment.description", &e.description, 10_000).map_err(st)?;
        let tags = convert::tag_map(&e.tags, "experiment.tags", self.app.limits()).map_err(st)?;
        let new = NewExperiment {
            display_name: e.display_name,
            description: e.description,
            tags,
        };
        let out = self
            .app
            .create_experiment(&c, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::experiment(&out)))
    }

    async fn get_experiment(
        &self,
        req: Request<pb::GetExperimentRequest>,
    ) -> Result<pb::Experiment> {
        let r = req.into_inner();
        let out = match (r.name.is_empty(), r.display_name.is_empty()) {
            (false, true) => {
                let n = ExperimentName::parse(&r.name, "name").map_err(st)?;
                self.app
                    .get_experiment(Some(n.experiment.as_str()), None)
                    .await
            }
            (true, false) => self.app.get_experiment(None, Some(&r.display_name)).await,
            _ => Err(Error::invalid_field(
                "name",
                "set exactly one of name or display_name",
            )),
        }
        .map_err(st)?;
        Ok(Response::new(convert::experiment(&out)))
    }

    async fn list_experiments(
        &self,
        req: Request<pb::ListExperimentsRequest>,
    ) -> Result<pb::ListExperimentsResponse> {
        let r = req.into_inner();
        let page_size =
            validate::page_size(r.page_size, 100, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&[
            "experiments",
            &r.filter,
            &r.order_by,
            &r.show_deleted.to_string(),
        ]);
        let cursor = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let q = ListExperiments {
            filter: r.filter,
            order_by: r.order_by,
            show_deleted: r.show_deleted,
            page_size,
            cursor,
        };
        let (items, next) = self.app.list_experiments(&q).await.map_err(st)?;
        Ok(Response::new(pb::ListExperimentsResponse {
            experiments: items.iter().map(convert::experiment).collect(),
            next_page_token: next
                .map(|c| self.tokens.encode(&sc, &c))
                .unwrap_or_default(),
        }))
    }

    async fn update_experiment(
        &self,
        req: Request<pb::UpdateExperimentRequest>,
    ) -> Result<pb::Experiment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let e = r
            .experiment
            .ok_or_else(|| st(Error::invalid_field("experiment", "required")))?;
        let n = ExperimentName::parse(&e.name, "experiment.name").map_err(st)?;
        let paths = mask_paths(&r.update_mask);
        if paths.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields to update: display_name, description, tags",
            )));
        }
        let mut patch = ExperimentPatch::default();
        for p in &paths {
            match p.as_str() {
                "display_name" => {
                    validate::name("experiment.display_name", &e.display_name).map_err(st)?;
                    patch.display_name = Some(e.display_name.clone());
                }
                "description" => {
                    validate::text("experiment.description", &e.description, 10_000).map_err(st)?;
                    patch.description = Some(e.description.clone());
                }
                "tags" => {
                    patch.tags = Some(
                        convert::tag_map(&e.tags, "experiment.tags", self.app.limits())
                            .map_err(st)?,
                    )
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!("{other:?} cannot be updated (display_name, description, tags)"),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_experiment(&c, n.experiment.as_str(), &e.etag, patch, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::experiment(&out)))
    }

    async fn delete_experiment(
        &self,
        req: Request<pb::DeleteExperimentRequest>,
    ) -> Result<pb::Experiment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = ExperimentName::parse(&r.name, "name").map_err(st)?;
        let out = self
            .app
            .set_experiment_deleted(&c, n.experiment.as_str(), &r.etag, true, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::experiment(&out)))
    }

    async fn undelete_experiment(
        &self,
        req: Request<pb::UndeleteExperimentRequest>,
    ) -> Result<pb::Experiment> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = ExperimentName::parse(&r.name, "name").map_err(st)?;
        let out = self
            .app
            .set_experiment_deleted(&c, n.experiment.as_str(), &r.etag, false, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::experiment(&out)))
    }

    async fn create_run(&self, req: Request<pb::CreateRunRequest>) -> Result<pb::Run> {
        let c = ctx(&req);
        let r = req.into_inner();
        let parent = ExperimentName::parse(&r.parent, "parent").map_err(st)?;
        let run = r.run.unwrap_or_default();
        if !run.run_name.is_empty() {
            validate::name("run.run_name", &run.run_name).map_err(st)?;
        }
        let tags = convert::tag_map(&run.tags, "run.tags", self.app.limits()).map_err(st)?;
        let parent_run_id = if run.parent_run.is_empty() {
            None
        } else {
            let p = run_name_of(&run.parent_run, "run.parent_run")?;
            if p.experiment != parent.experiment {
                return Err(st(Error::invalid_field(
                    "run.parent_run",
                    "the parent run must be in the same experiment",
                )));
            }
            Some(p.run.as_str().to_string())
        };
        let start_time = run
            .start_time
            .as_ref()
            .map(|t| convert::from_ts(t, "run.start_time"))
            .transpose()
            .map_err(st)?;
        let status = convert::status_from(run.status, "run.status")
            .map_err(st)?
            .unwrap_or(crate::domain::RunStatus::Running);
        let new = NewRun {
            experiment_id: parent.experiment.as_str().to_string(),
            run_name: run.run_name,
            start_time,
            tags,
            parent_run_id,
            status,
        };
        let out = self
            .app
            .create_run(&c, new, &r.request_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::run(&out)))
    }

    async fn get_run(&self, req: Request<pb::GetRunRequest>) -> Result<pb::Run> {
        let n = run_name_of(&req.get_ref().name, "name")?;
        let out = self
            .app
            .get_run(n.experiment.as_str(), n.run.as_str())
            .await
            .map_err(st)?;
        Ok(Response::new(convert::run(&out)))
    }

    async fn update_run(&self, req: Request<pb::UpdateRunRequest>) -> Result<pb::Run> {
        let c = ctx(&req);
        let r = req.into_inner();
        let run = r
            .run
            .ok_or_else(|| st(Error::invalid_field("run", "required")))?;
        let n = run_name_of(&run.name, "run.name")?;
        let paths = mask_paths(&r.update_mask);
        if paths.is_empty() {
            return Err(st(Error::invalid_field(
                "update_mask",
                "name the fields to update: status, end_time, run_name",
            )));
        }
        let mut patch = RunPatch::default();
        for p in &paths {
            match p.as_str() {
                "status" => {
                    patch.status = Some(
                        convert::status_from(run.status, "run.status")
                            .map_err(st)?
                            .ok_or_else(|| {
                                st(Error::invalid_field(
                                    "run.status",
                                    "must be set when in update_mask",
                                ))
                            })?,
                    )
                }
                "end_time" => {
                    patch.end_time = Some(
                        run.end_time
                            .as_ref()
                            .map(|t| convert::from_ts(t, "run.end_time"))
                            .transpose()
                            .map_err(st)?,
                    )
                }
                "run_name" => {
                    validate::name("run.run_name", &run.run_name).map_err(st)?;
                    patch.run_name = Some(run.run_name.clone());
                }
                other => {
                    return Err(st(Error::invalid_field(
                        "update_mask",
                        format!("{other:?} cannot be updated (status, end_time, run_name)"),
                    )));
                }
            }
        }
        let out = self
            .app
            .update_run(
                &c,
                n.experiment.as_str(),
                n.run.as_str(),
                &run.etag,
                patch,
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::run(&out)))
    }

    async fn delete_run(&self, req: Request<pb::DeleteRunRequest>) -> Result<pb::Run> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = run_name_of(&r.name, "name")?;
        let out = self
            .app
            .set_run_deleted(
                &c,
                n.experiment.as_str(),
                n.run.as_str(),
                &r.etag,
                true,
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::run(&out)))
    }

    async fn undelete_run(&self, req: Request<pb::UndeleteRunRequest>) -> Result<pb::Run> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = run_name_of(&r.name, "name")?;
        let out = self
            .app
            .set_run_deleted(
                &c,
                n.experiment.as_str(),
                n.run.as_str(),
                &r.etag,
                false,
                &r.request_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::run(&out)))
    }

    async fn search_runs(
        &self,
        req: Request<pb::SearchRunsRequest>,
    ) -> Result<pb::SearchRunsResponse> {
        let r = req.into_inner();
        let mut ids = Vec::with_capacity(r.experiments.len());
        for (i, e) in r.experiments.iter().enumerate() {
            ids.push(
                ExperimentName::parse(e, &format!("experiments[{i}]"))
                    .map_err(st)?
                    .experiment
                    .as_str()
                    .to_string(),
            );
        }
        let page_size =
            validate::page_size(r.page_size, 100, self.app.limits().max_page_size).map_err(st)?;
        let joined = ids.join(",");
        let sc = scope(&[
            "runs",
            &joined,
            &r.filter,
            &r.order_by,
            &r.show_deleted.to_string(),
        ]);
        let cursor = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let q = SearchRuns {
            experiment_ids: ids,
            filter: r.filter,
            order_by: r.order_by,
            show_deleted: r.show_deleted,
            page_size,
            cursor,
        };
        let (runs, next) = self.app.search_runs(&q).await.map_err(st)?;
        Ok(Response::new(pb::SearchRunsResponse {
            runs: runs.iter().map(convert::run).collect(),
            next_page_token: next
                .map(|c| self.tokens.encode(&sc, &c))
                .unwrap_or_default(),
        }))
    }

    async fn log_run_data(
        &self,
        req: Request<pb::LogRunDataRequest>,
    ) -> Result<pb::LogRunDataResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        let now = steward_common::time::now_ms();
        let data = convert::run_data(
            &r.metrics,
            &r.metric_series,
            &r.params,
            &r.tags,
            self.app.limits(),
            now,
        )
        .map_err(st)?;
        let canonical = if r.request_id.is_empty() {
            Vec::new()
        } else {
            pb::LogRunDataRequest {
                request_id: String::new(),
                ..r.clone()
            }
            .encode_to_vec()
        };
        let written = self
            .app
            .log_run_data(
                &c,
                n.experiment.as_str(),
                n.run.as_str(),
                &data,
                &r.request_id,
                &canonical,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::LogRunDataResponse {
            metric_points_written: written as i64,
        }))
    }

    async fn stream_metrics(
        &self,
        req: Request<Streaming<pb::StreamMetricsRequest>>,
    ) -> Result<pb::StreamMetricsResponse> {
        let c = ctx(&req);
        let mut stream = req.into_inner();
        let mut run: Option<RunName> = None;
        let (mut points, mut messages) = (0i64, 0i64);
        while let Some(msg) = stream.message().await? {
            messages += 1;
            let field = format!("messages[{}].run", messages - 1);
            match (&run, msg.run.is_empty()) {
                (None, true) => {
                    return Err(st(Error::invalid_field(
                        field,
                        "the first message must name the run",
                    )));
                }
                (None, false) => run = Some(run_name_of(&msg.run, &field)?),
                (Some(r), false) if r.to_string() != msg.run => {
                    return Err(st(Error::invalid_field(
                        field,
                        "one stream logs to one run",
                    )));
                }
                _ => {}
            }
            let n = run.as_ref().expect("set above");
            let now = steward_common::time::now_ms();
            let data = convert::run_data(
                &msg.metrics,
                &msg.metric_series,
                &[],
                &[],
                self.app.limits(),
                now,
            )
            .map_err(|e| st(e.prefixed(&format!("messages[{}]", messages - 1))))?;
            // Each message is committed before the next is read: flow control is backpressure.
            points += self
                .app
                .log_run_data(&c, n.experiment.as_str(), n.run.as_str(), &data, "", &[])
                .await
                .map_err(st)? as i64;
        }
        Ok(Response::new(pb::StreamMetricsResponse {
            metric_points_written: points,
            messages,
        }))
    }

    async fn get_metric_history(
        &self,
        req: Request<pb::GetMetricHistoryRequest>,
    ) -> Result<pb::GetMetricHistoryResponse> {
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        validate::key("metric_key", &r.metric_key, self.app.limits()).map_err(st)?;
        if r.max_points < 0 {
            return Err(st(Error::invalid_field(
                "max_points",
                "must not be negative",
            )));
        }
        if r.max_points > 0 {
            if r.max_points > 100_000 {
                return Err(st(Error::limit("max_points", "at most 100000")));
            }
            let method = match pb::DownsampleMethod::try_from(r.downsample_method) {
                Ok(pb::DownsampleMethod::Lttb) => Method::Lttb,
                Ok(pb::DownsampleMethod::MinMax | pb::DownsampleMethod::Unspecified) => {
                    Method::MinMax
                }
                Err(_) => {
                    return Err(st(Error::invalid_field(
                        "downsample_method",
                        "unknown method",
                    )));
                }
            };
            let (s, total) = self
                .app
                .metric_history_downsampled(
                    n.experiment.as_str(),
                    n.run.as_str(),
                    &r.metric_key,
                    r.max_points as usize,
                    method,
                )
                .await
                .map_err(st)?;
            return Ok(Response::new(pb::GetMetricHistoryResponse {
                series: Some(convert::series(&r.metric_key, s)),
                next_page_token: String::new(),
                total_points: total,
            }));
        }
        let page_size =
            validate::page_size(r.page_size, HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX).map_err(st)?;
        let sc = scope(&["history", &r.run, &r.metric_key]);
        let cursor: Option<HistoryCursor> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let (s, next, total) = self
            .app
            .metric_history(
                n.experiment.as_str(),
                n.run.as_str(),
                &r.metric_key,
                cursor,
                page_size,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::GetMetricHistoryResponse {
            series: Some(convert::series(&r.metric_key, s)),
            next_page_token: next
                .map(|c| self.tokens.encode(&sc, &c))
                .unwrap_or_default(),
            total_points: total,
        }))
    }

    async fn log_run_inputs(
        &self,
        req: Request<pb::LogRunInputsRequest>,
    ) -> Result<pb::LogRunInputsResponse> {
        let c = ctx(&req);
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        if r.inputs.is_empty() {
            return Err(st(Error::invalid_field(
                "inputs",
                "give at least one dataset input",
            )));
        }
        if r.inputs.len() > crate::app::data::MAX_INPUTS_PER_CALL {
            return Err(st(Error::limit("inputs", "at most 100 datasets per call")));
        }
        let inputs = r
            .inputs
            .iter()
            .enumerate()
            .map(|(i, d)| convert::dataset_input_from(d, i))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(st)?;
        let canonical = pb::LogRunInputsRequest {
            request_id: String::new(),
            ..r.clone()
        }
        .encode_to_vec();
        self.app
            .log_run_inputs(
                &c,
                n.experiment.as_str(),
                n.run.as_str(),
                &inputs,
                &r.request_id,
                &canonical,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::LogRunInputsResponse {}))
    }

    async fn upload_artifact(
        &self,
        req: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Result<pb::Artifact> {
        let c = ctx(&req);
        let mut stream = req.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            st(Error::invalid_field(
                "header",
                "the stream was empty; send a header first",
            ))
        })?;
        let Some(pb::upload_artifact_request::Part::Header(h)) = first.part else {
            return Err(st(Error::invalid_field(
                "header",
                "the first message must be the header",
            )));
        };
        let n = run_name_of(&h.run, "header.run")?;
        let path = ArtifactPath::parse(&h.path, "header.path").map_err(st)?;
        validate::text("header.content_type", &h.content_type, 255).map_err(st)?;
        let expected = super::dsv::hex_or_none("header.expected_sha256", &h.expected_sha256, 64)
            .map_err(st)?;
        let header = UploadHeader {
            experiment_id: n.experiment.as_str().to_string(),
            run_id: n.run.as_str().to_string(),
            path_text: path.as_str().to_string(),
            path: Some(path),
            content_type: h.content_type,
            expected_sha256: expected,
        };
        let body = byte_stream(stream, |m| match m.part {
            Some(pb::upload_artifact_request::Part::Chunk(b)) => Some(b),
            _ => None,
        });
        let out = self
            .app
            .upload_artifact(&c, header, &h.request_id, body)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::artifact(&out)))
    }

    type DownloadArtifactStream = Pin<
        Box<dyn Stream<Item = std::result::Result<pb::DownloadArtifactResponse, Status>> + Send>,
    >;

    async fn download_artifact(
        &self,
        req: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Self::DownloadArtifactStream> {
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        let path = ArtifactPath::parse(&r.path, "path").map_err(st)?;
        let (meta, body) = self
            .app
            .open_artifact(n.experiment.as_str(), n.run.as_str(), &path)
            .await
            .map_err(st)?;
        let head = futures::stream::once(async move {
            Ok(pb::DownloadArtifactResponse {
                artifact: Some(convert::artifact(&meta)),
                chunk: Default::default(),
            })
        });
        let chunks = body.map(|b| match b {
            Ok(bytes) => Ok(pb::DownloadArtifactResponse {
                artifact: None,
                chunk: bytes,
            }),
            Err(e) => Err(st(e)),
        });
        Ok(Response::new(Box::pin(head.chain(chunks))))
    }

    async fn list_artifacts(
        &self,
        req: Request<pb::ListArtifactsRequest>,
    ) -> Result<pb::ListArtifactsResponse> {
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        let prefix = if r.prefix.is_empty() {
            String::new()
        } else {
            ArtifactPath::parse_prefix(&r.prefix, "prefix")
                .map_err(st)?
                .as_str()
                .to_string()
        };
        let page_size =
            validate::page_size(r.page_size, 100, self.app.limits().max_page_size).map_err(st)?;
        let sc = scope(&["artifacts", &r.run, &prefix]);
        let after: Option<String> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.tokens.decode(&sc, &r.page_token).map_err(st)?)
        };
        let (items, next) = self
            .app
            .list_artifacts(
                n.experiment.as_str(),
                n.run.as_str(),
                &prefix,
                after.as_deref(),
                page_size,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListArtifactsResponse {
            artifacts: items.iter().map(convert::artifact).collect(),
            next_page_token: next
                .map(|c| self.tokens.encode(&sc, &c))
                .unwrap_or_default(),
        }))
    }

    async fn get_artifact_download_url(
        &self,
        req: Request<pb::GetArtifactDownloadUrlRequest>,
    ) -> Result<pb::ArtifactUrl> {
        let r = req.into_inner();
        let n = run_name_of(&r.run, "run")?;
        let path = ArtifactPath::parse(&r.path, "path").map_err(st)?;
        let expires = match &r.expires_in {
            None => Duration::from_secs(15 * 60),
            Some(d) if d.seconds < 0 || d.nanos < 0 => {
                return Err(st(Error::invalid_field("expires_in", "must be positive")));
            }
            Some(d) => Duration::new(d.seconds as u64, d.nanos as u32),
        };
        let (url, exp_ms) = self
            .app
            .artifact_download_url(n.experiment.as_str(), n.run.as_str(), &path, expires)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ArtifactUrl {
            url,
            expire_time: Some(convert::ts(exp_ms)),
        }))
    }

    async fn create_dataset_version(
        &self,
        req: Request<pb::CreateDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        self.dsv_create(req).await
    }

    async fn upload_dataset_file(
        &self,
        req: Request<Streaming<pb::UploadDatasetFileRequest>>,
    ) -> Result<pb::DatasetFile> {
        self.dsv_upload(req).await
    }

    async fn commit_dataset_version(
        &self,
        req: Request<pb::CommitDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        self.dsv_commit(req).await
    }

    async fn get_dataset_version(
        &self,
        req: Request<pb::GetDatasetVersionRequest>,
    ) -> Result<pb::DatasetVersion> {
        self.dsv_get(req).await
    }

    async fn list_dataset_versions(
        &self,
        req: Request<pb::ListDatasetVersionsRequest>,
    ) -> Result<pb::ListDatasetVersionsResponse> {
        self.dsv_list_versions(req).await
    }

    async fn list_datasets(
        &self,
        req: Request<pb::ListDatasetsRequest>,
    ) -> Result<pb::ListDatasetsResponse> {
        self.dsv_list_datasets(req).await
    }

    async fn list_dataset_files(
        &self,
        req: Request<pb::ListDatasetFilesRequest>,
    ) -> Result<pb::ListDatasetFilesResponse> {
        self.dsv_list_files(req).await
    }

    type DownloadDatasetFileStream = super::dsv::DownloadStream;

    async fn download_dataset_file(
        &self,
        req: Request<pb::DownloadDatasetFileRequest>,
    ) -> Result<Self::DownloadDatasetFileStream> {
        self.dsv_download(req).await
    }

    async fn diff_dataset_versions(
        &self,
        req: Request<pb::DiffDatasetVersionsRequest>,
    ) -> Result<pb::DatasetDiff> {
        self.dsv_diff(req).await
    }

    async fn delete_dataset_version(
        &self,
        req: Request<pb::DeleteDatasetVersionRequest>,
    ) -> Result<pb::DeleteDatasetVersionResponse> {
        self.dsv_delete(req).await
    }
}
