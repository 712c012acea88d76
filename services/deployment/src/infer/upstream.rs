//! Forwarding to another Open Inference Protocol server (Triton, MLServer, KServe, or another
//! Steward), for model formats Steward does not run in process.

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use steward_common::{Error, ErrorKind};
use steward_grpc::TracedChannel;
use steward_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use steward_proto::inference::{ModelInferRequest, ModelInferResponse};
use tonic::Code;

/// Default deadline of one forwarded call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message sent to or accepted from the upstream server (tonic's default is 4 MiB, too
/// small for batched tensors).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A client of one upstream inference server. Cloning is cheap and clones share the channel,
/// which connects lazily (on the first call) and reconnects by itself.
#[derive(Debug, Clone)]
pub struct Upstream {
    url: String,
    client: GrpcInferenceServiceClient<TracedChannel>,
    timeout: Duration,
}

impl Upstream {
    /// A client of the server at `url` (`http://host:port`). Does not connect yet, so a server
    /// that starts later is fine. Every call carries the caller's trace (`traceparent`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` on field `url` when it is not a valid `http://host:port` URL.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        // An outside server: no Steward credentials go there.
        let channel = steward_grpc::connect_external(url).await?;
        let client = GrpcInferenceServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            url: url.trim().to_owned(),
            client,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with a different per-call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Forwards `req` unchanged (set `model_name` / `model_version` to the upstream's names
    /// first) and returns the upstream's answer.
    ///
    /// # Errors
    /// The upstream's `INVALID_ARGUMENT` (and `OUT_OF_RANGE`) with its message and field
    /// violations; `UNAVAILABLE` with reason `UPSTREAM_UNAVAILABLE` when it cannot be reached,
    /// is overloaded or the call was cut off; `DEADLINE_EXCEEDED` (`UPSTREAM_TIMEOUT`);
    /// `FAILED_PRECONDITION` when the upstream does not know the model, refuses Steward or
    /// does not speak the protocol (a deployment configuration problem); `INTERNAL`
    /// (`UPSTREAM_ERROR`, message hidden) when the upstream itself failed.
    pub async fn infer(&self, req: ModelInferRequest) -> Result<ModelInferResponse, Error> {
        let mut request = tonic::Request::new(req);
        // Tells the upstream when to give up; the local timer below enforces it either way.
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let started = Instant::now();
        let status = match tokio::time::timeout(self.timeout, client.model_infer(request)).await {
            Ok(Ok(resp)) => return Ok(resp.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => tonic::Status::deadline_exceeded("timed out waiting for the upstream"),
        };
        tracing::warn!(
            upstream = %self.url,
            code = ?status.code(),
            message = status.message(),
            "upstream inference call failed"
        );
        let expired = started.elapsed() >= self.timeout;
        if expired && matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded) {
            return Err(timeout_error());
        }
        Err(map_status(&status))
    }
}

fn timeout_error() -> Error {
    Error::new(
        ErrorKind::DeadlineExceeded,
        "UPSTREAM_TIMEOUT",
        "the upstream model server did not answer in time",
    )
}

/// The error a failed upstream call becomes for Steward's caller.
fn map_status(status: &tonic::Status) -> Error {
    let msg = status.message();
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange => {
            let mut e = steward_grpc::from_status(status);
            e.kind = ErrorKind::InvalidArgument;
            e
        }
        Code::Unavailable | Code::Cancelled | Code::Aborted | Code::ResourceExhausted => {
            Error::unavailable(
                "UPSTREAM_UNAVAILABLE",
                format!("the upstream model server is unavailable ({msg}); retry later"),
            )
        }
        Code::DeadlineExceeded => timeout_error(),
        Code::NotFound => Error::failed_precondition(
            "UPSTREAM_MODEL_NOT_FOUND",
            format!("the upstream model server does not serve this model: {msg}"),
        ),
        Code::FailedPrecondition => Error::failed_precondition(
            "UPSTREAM_FAILED_PRECONDITION",
            format!("the upstream model server cannot serve the request now: {msg}"),
        ),
        Code::PermissionDenied | Code::Unauthenticated => Error::failed_precondition(
            "UPSTREAM_REJECTED",
            format!(
                "the upstream model server refused the call ({:?})",
                status.code()
            ),
        ),
        Code::Unimplemented => Error::failed_precondition(
            "UPSTREAM_UNSUPPORTED",
            "the upstream server does not implement the Open Inference Protocol ModelInfer",
        ),
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss | Code::AlreadyExists => {
            Error::new(
                ErrorKind::Internal,
                "UPSTREAM_ERROR",
                "the upstream model server failed; see the server log",
            )
        }
    }
}
