use std::time::Duration;

use steward_common::ErrorKind;
use steward_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use steward_proto::inference::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use super::*;

/// A fake Open Inference Protocol server whose behaviour depends on `model_name`.
struct Fake;

#[tonic::async_trait]
impl GrpcInferenceService for Fake {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }
    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }
    async fn model_ready(
        &self,
        _: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }
    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn model_metadata(
        &self,
        _: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn model_infer(
        &self,
        req: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let req = req.into_inner();
        match req.model_name.as_str() {
            "bad" => Err(Status::invalid_argument(
                "unexpected shape for input 'x', model expects [-1,4]",
            )),
            "missing" => Err(Status::not_found("Request for unknown model: 'missing'")),
            "boom" => Err(Status::internal("segfault in backend at 0xdeadbeef")),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Err(Status::internal("too late"))
            }
            _ => Ok(Response::new(ModelInferResponse {
                model_name: req.model_name,
                id: req.id,
                raw_output_contents: req.raw_input_contents,
                ..Default::default()
            })),
        }
    }
}

async fn fake_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GrpcInferenceServiceServer::new(Fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn req(model: &str) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.into(),
        id: "r1".into(),
        raw_input_contents: vec![bytes::Bytes::from_static(&[1, 2, 3, 4])],
        ..Default::default()
    }
}

#[tokio::test]
async fn forwards_requests_and_answers() {
    let up = Upstream::connect(&fake_server().await).await.unwrap();
    let resp = up.infer(req("echo")).await.unwrap();
    assert_eq!(resp.model_name, "echo");
    assert_eq!(&resp.raw_output_contents[0][..], &[1, 2, 3, 4]);
}

#[tokio::test]
async fn upstream_errors_are_mapped() {
    let up = Upstream::connect(&fake_server().await)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(200));

    let e = up.infer(req("bad")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        e.message,
        "unexpected shape for input 'x', model expects [-1,4]"
    );

    let e = up.infer(req("missing")).await.unwrap_err();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::FailedPrecondition, "UPSTREAM_MODEL_NOT_FOUND")
    );

    let e = up.infer(req("boom")).await.unwrap_err();
    assert_eq!((e.kind, e.reason), (ErrorKind::Internal, "UPSTREAM_ERROR"));
    assert!(!e.message.contains("deadbeef"));

    let e = up.infer(req("slow")).await.unwrap_err();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::DeadlineExceeded, "UPSTREAM_TIMEOUT")
    );
}

#[tokio::test]
async fn unreachable_upstream_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let up = Upstream::connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let e = up.infer(req("echo")).await.unwrap_err();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::Unavailable, "UPSTREAM_UNAVAILABLE"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["", "localhost:8001", "https://triton:8001", "not a url"] {
        let e = Upstream::connect(url).await.unwrap_err();
        assert_eq!(e.violations[0].field, "url", "{url}");
    }
}
