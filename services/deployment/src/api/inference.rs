//! `inference.GRPCInferenceService` (the Open Inference Protocol) over the app: a model is a
//! Steward deployment id; ModelInfer routes by the deployment's split.

use steward_common::Error;
use steward_grpc::to_status;
use steward_proto::inference as pb;
use steward_proto::inference::grpc_inference_service_server::GrpcInferenceService;
use steward_runtime::request::ctx;
use tonic::{Request, Response, Status};

use super::service::dep_id;
use crate::app::Deployments;
use crate::infer::tensor;

type Result<T> = std::result::Result<Response<T>, Status>;

/// The Open Inference Protocol service.
#[derive(Clone)]
pub struct InferenceApi {
    app: Deployments,
}

impl InferenceApi {
    /// Wraps the app.
    pub fn new(app: Deployments) -> Self {
        Self { app }
    }
}

fn st(e: Error) -> Status {
    to_status(&e)
}

fn string_param(s: String) -> pb::InferParameter {
    pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(s)),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceApi {
    async fn server_live(
        &self,
        _r: Request<pb::ServerLiveRequest>,
    ) -> Result<pb::ServerLiveResponse> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _r: Request<pb::ServerReadyRequest>,
    ) -> Result<pb::ServerReadyResponse> {
        let ready = self.app.list_environments().await.is_ok();
        Ok(Response::new(pb::ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        r: Request<pb::ModelReadyRequest>,
    ) -> Result<pb::ModelReadyResponse> {
        let id = dep_id(&r.get_ref().name, "name").map_err(st)?;
        let ready = match self.app.model_metadata(&id).await {
            Ok(_) => true,
            Err(e) if e.kind == steward_common::ErrorKind::NotFound => return Err(st(e)),
            Err(_) => false,
        };
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _r: Request<pb::ServerMetadataRequest>,
    ) -> Result<pb::ServerMetadataResponse> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "steward".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec![],
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<pb::ModelMetadataRequest>,
    ) -> Result<pb::ModelMetadataResponse> {
        let id = dep_id(&r.get_ref().name, "name").map_err(st)?;
        let (routed, model) = self.app.model_metadata(&id).await.map_err(st)?;
        let cur = self.app.current(&id).await.map_err(st)?;
        let meta =
            |m: &crate::infer::onnx::TensorMeta| pb::model_metadata_response::TensorMetadata {
                name: m.name.clone(),
                datatype: m.datatype.as_str().to_string(),
                shape: m.shape.clone(),
            };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: id,
            versions: cur
                .1
                .variants
                .iter()
                .filter(|v| v.weight_bp > 0)
                .map(|v| v.version.to_string())
                .collect(),
            platform: if model.is_some() {
                "onnx".into()
            } else {
                routed.variant.format.clone()
            },
            inputs: model
                .as_ref()
                .map(|m| m.inputs().iter().map(meta).collect())
                .unwrap_or_default(),
            outputs: model
                .as_ref()
                .map(|m| m.outputs().iter().map(meta).collect())
                .unwrap_or_default(),
        }))
    }

    async fn model_infer(
        &self,
        r: Request<pb::ModelInferRequest>,
    ) -> Result<pb::ModelInferResponse> {
        let c = ctx(&r);
        let mut req = r.into_inner();
        req.model_name = dep_id(&req.model_name, "model_name").map_err(st)?;
        if req.id.len() > 128 || req.id.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(st(Error::invalid_field(
                "id",
                "1-128 printable ASCII characters",
            )));
        }
        let served = self.app.infer(&c, req).await.map_err(st)?;
        let mut parameters = std::collections::HashMap::new();
        parameters.insert(
            "variant".to_string(),
            string_param(served.routed.variant.name.clone()),
        );
        parameters.insert(
            "revision".to_string(),
            pb::InferParameter {
                parameter_choice: Some(pb::infer_parameter::ParameterChoice::Int64Param(
                    served.routed.revision,
                )),
            },
        );
        parameters.insert(
            "registered_model_version".to_string(),
            string_param(format!(
                "registeredModels/{}/versions/{}",
                served.routed.deployment.model, served.routed.variant.version
            )),
        );
        Ok(Response::new(pb::ModelInferResponse {
            model_name: served.routed.deployment.id.clone(),
            model_version: served.routed.variant.version.to_string(),
            id: served.request_id,
            parameters,
            outputs: tensor::to_output_tensors(served.outputs),
            raw_output_contents: vec![],
        }))
    }
}
