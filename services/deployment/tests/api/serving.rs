//! Serving paths beyond in-process ONNX: forwarding non-ONNX versions to an upstream Open
//! Inference Protocol server, and shadow variants whose answers are recorded but not returned.

use std::time::Duration;

use steward_proto::deployment as pb;
use steward_proto::inference as oip;
use steward_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use steward_proto::registry as rpb;
use tonic::{Request, Response, Status};

use crate::harness::{self, variant};

/// A stand-in for Triton/MLServer: answers every ModelInfer with `[42.0]` and says which model
/// it was asked for.
struct Fake;

#[tonic::async_trait]
impl GrpcInferenceService for Fake {
    async fn server_live(
        &self,
        _: Request<oip::ServerLiveRequest>,
    ) -> Result<Response<oip::ServerLiveResponse>, Status> {
        Ok(Response::new(oip::ServerLiveResponse { live: true }))
    }
    async fn server_ready(
        &self,
        _: Request<oip::ServerReadyRequest>,
    ) -> Result<Response<oip::ServerReadyResponse>, Status> {
        Ok(Response::new(oip::ServerReadyResponse { ready: true }))
    }
    async fn model_ready(
        &self,
        _: Request<oip::ModelReadyRequest>,
    ) -> Result<Response<oip::ModelReadyResponse>, Status> {
        Ok(Response::new(oip::ModelReadyResponse { ready: true }))
    }
    async fn server_metadata(
        &self,
        _: Request<oip::ServerMetadataRequest>,
    ) -> Result<Response<oip::ServerMetadataResponse>, Status> {
        Ok(Response::new(oip::ServerMetadataResponse::default()))
    }
    async fn model_metadata(
        &self,
        _: Request<oip::ModelMetadataRequest>,
    ) -> Result<Response<oip::ModelMetadataResponse>, Status> {
        Ok(Response::new(oip::ModelMetadataResponse::default()))
    }
    async fn model_infer(
        &self,
        r: Request<oip::ModelInferRequest>,
    ) -> Result<Response<oip::ModelInferResponse>, Status> {
        let md = r.metadata();
        if md.contains_key("authorization") || md.contains_key(steward_grpc::INTERNAL_HEADER) {
            return Err(Status::permission_denied(
                "Steward's credentials were sent to an outside server",
            ));
        }
        let r = r.into_inner();
        Ok(Response::new(oip::ModelInferResponse {
            model_name: r.model_name,
            model_version: r.model_version,
            id: r.id,
            outputs: vec![oip::model_infer_response::InferOutputTensor {
                name: "y".into(),
                datatype: "FP32".into(),
                shape: vec![1],
                contents: Some(oip::InferTensorContents {
                    fp32_contents: vec![42.0],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}

async fn fake_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(GrpcInferenceServiceServer::new(Fake))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn request(dep: &str, id: &str) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: dep.into(),
        id: id.into(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: steward_deployment::infer::DEMO_INPUT.into(),
            datatype: "FP32".into(),
            shape: vec![1, 8],
            contents: Some(oip::InferTensorContents {
                fp32_contents: vec![0.5; 8],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn non_onnx_versions_are_forwarded_upstream_and_shadows_are_recorded_not_returned() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let upstream = fake_upstream().await;
        // This process's peers carry a service key, and the process token even to the
        // upstream's very address; the upstream, an outside server, must get neither (the
        // servers of the other tests here have no gate, so the setting changes nothing there).
        steward_grpc::configure_peers(steward_grpc::PeerSettings {
            token: Some(format!("stw_0123456789abcdef_{}", "k".repeat(43))),
            internal_url: Some(upstream.clone()),
            ..Default::default()
        });
        let model = h.model_with_versions(1).await;
        let ext = h
            .reg
            .create_model_version(rpb::CreateModelVersionRequest {
                parent: format!("registeredModels/{model}"),
                model_version: Some(rpb::ModelVersion {
                    source_uri: "s3://models/xgb/7".into(),
                    content_digest: format!("sha256:{}", "a".repeat(64)),
                    format: "xgboost".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        // The xgboost version serves all traffic through the upstream; the ONNX one shadows it.
        let mut main = variant(&model, "main", ext.version, 10_000);
        main.upstream_url = upstream.clone();
        let shadow = variant(&model, "shadow", 1, 0);
        let dep = h
            .dep
            .create_deployment(pb::CreateDeploymentRequest {
                deployment: Some(pb::Deployment {
                    registered_model: format!("registeredModels/{model}"),
                    environment: "environments/staging".into(),
                    ..Default::default()
                }),
                variants: vec![main],
                shadow: Some(shadow),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .name;
        // The longest request id a client may send (128) leaves room for the shadow's record.
        let long = "x".repeat(128);
        h.oip.model_infer(request(&dep, &long)).await.unwrap();
        let resp = h
            .oip
            .model_infer(request(&dep, "fwd-1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            resp.outputs[0].contents.as_ref().unwrap().fp32_contents,
            vec![42.0],
            "{l}: the upstream's answer"
        );
        assert_eq!(resp.model_version, ext.version.to_string());
        let d = h
            .dep
            .get_decision(pb::GetDecisionRequest {
                request_id: "fwd-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(d.outputs_json.contains("42"), "{}", d.outputs_json);
        // The shadow ran the ONNX model on the same inputs, recorded on the side.
        let mut shadow = None;
        for _ in 0..100 {
            if let Ok(s) = h
                .dep
                .get_decision(pb::GetDecisionRequest {
                    request_id: "fwd-1:shadow".into(),
                })
                .await
            {
                shadow = Some(s.into_inner());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = shadow.unwrap_or_else(|| panic!("{l}: shadow decision never recorded"));
        assert_eq!((s.kind.as_str(), s.variant.as_str()), ("shadow", "shadow"));
        assert_eq!(s.input_digest, d.input_digest, "same inputs");
        assert!(
            s.error.is_empty() && s.outputs_json.contains("score"),
            "{s:?}"
        );
        let mut long_shadow = false;
        for _ in 0..100 {
            let req = pb::GetDecisionRequest {
                request_id: format!("{long}:shadow"),
            };
            if h.dep.get_decision(req).await.is_ok() {
                long_shadow = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            long_shadow,
            "{l}: the shadow of a 128-character id is recorded"
        );
        h.stop().await;
    }
}
