//! Client channels for service-to-service calls.
//!
//! Every outgoing call should carry the caller's trace. Wrap the channel with
//! [`steward_telemetry::TraceInterceptor`], either through the generated constructor
//! (`FooServiceClient::with_interceptor(channel, TraceInterceptor)`) or with
//! [`connect_traced`], whose channel any generated client accepts (`FooServiceClient::new`).

use std::time::Duration;

use steward_common::Error;
use steward_telemetry::TraceInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A channel that adds `traceparent` to every request.
pub type TracedChannel = InterceptedService<Channel, TraceInterceptor>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A channel to `url` (e.g. `http://registry:50051`). It connects lazily, on the first call,
/// and reconnects by itself, so a peer that starts later is fine. Plain HTTP/2 only (no TLS).
///
/// # Errors
/// `INVALID_ARGUMENT` on field `url` when `url` is not a valid `http://host:port` URI.
pub async fn connect(url: &str) -> Result<Channel, Error> {
    let endpoint = Endpoint::from_shared(url.trim().to_owned()).map_err(|e| {
        Error::invalid_field(
            "url",
            format!("{url:?} is not a valid gRPC endpoint URL: {e}"),
        )
    })?;
    if endpoint.uri().scheme_str() != Some("http") || endpoint.uri().host().is_none() {
        return Err(Error::invalid_field(
            "url",
            format!("{url:?} must look like http://host:port (TLS is not supported)"),
        ));
    }
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// [`connect`], wrapped with [`TraceInterceptor`].
///
/// # Errors
/// As [`connect`].
pub async fn connect_traced(url: &str) -> Result<TracedChannel, Error> {
    Ok(InterceptedService::new(
        connect(url).await?,
        TraceInterceptor,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_name_the_field() {
        for url in ["", "not a url", "registry:50051", "https://registry:50051"] {
            let err = connect(url).await.unwrap_err();
            assert_eq!(err.violations[0].field, "url", "{url}");
        }
        connect("http://127.0.0.1:1")
            .await
            .expect("lazy: no connection attempted yet");
        connect_traced("http://localhost:50051").await.unwrap();
    }
}
