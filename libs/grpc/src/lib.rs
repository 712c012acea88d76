//! Steward's shared gRPC plumbing.
//!
//! - [`GrpcServer`]: health and reflection (v1 and v1alpha) always on, one tower stack for
//!   every request (request id, trace span, unary timeout, concurrency limit), graceful
//!   shutdown.
//! - [`connect`] / [`connect_traced`]: client channels for service-to-service calls.
//! - [`to_status`] / [`from_status`]: [`steward_common::Error`] as a `tonic::Status` with
//!   `google.rpc.ErrorInfo` and `BadRequest` details, and back.
//! - [`PageTokenCodec`]: opaque signed page tokens bound to their query.
//! - [`actor`] / [`request_id`]: who is calling, and which request this is.
//! - [`metrics`]: per-method request counts, latencies and errors in the Prometheus format.

mod client;
mod context;
pub mod metrics;
mod page_token;
mod server;
mod signal;
mod status;
mod timestamp;

pub use client::{
    INTERNAL_HEADER, PeerInterceptor, PeerSettings, TracedChannel, configure_peers, connect,
    connect_external, connect_traced, internal_token,
};
pub use context::{
    ACTOR_HEADER, ANONYMOUS, MAX_ACTOR_LEN, MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, RequestId,
    actor, request_id,
};
pub use page_token::{MAX_TOKEN_LEN, PageTokenCodec};
pub use server::{
    Admission, Gate, GateCall, GrpcServer, MethodLimit, RateLimit, ResponseFilter, ServerConfig,
    TlsFiles, bind, read_certificate,
};
pub use signal::shutdown_signal;
pub use status::{
    ERROR_DOMAIN, INTERNAL_MESSAGE, IntoStatus, REMOTE_REASON_KEY, ResultExt, code_of,
    from_peer_status, from_status, kind_of, to_status,
};
pub use timestamp::{MAX_MS, from_ts, ts};
