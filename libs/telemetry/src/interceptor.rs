//! A tonic client interceptor that propagates the caller's trace.

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds the current span's W3C `traceparent` to every outgoing request, so the callee's spans
/// join the caller's trace.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use tonic::service::interceptor::InterceptedService;
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let traced = InterceptedService::new(channel, steward_telemetry::TraceInterceptor);
/// // Generated clients: `FooServiceClient::with_interceptor(channel, TraceInterceptor)`.
/// # let _ = traced; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl Interceptor for TraceInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        crate::propagation::inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::propagation::TRACEPARENT;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn injects_the_current_trace() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("client call");
            crate::set_parent_from_traceparent(&span, tp);
            let _e = span.enter();
            let req = TraceInterceptor.call(Request::new(())).unwrap();
            let sent = req.metadata().get(TRACEPARENT).unwrap().to_str().unwrap();
            assert!(
                sent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
                "{sent}"
            );
        });
    }

    #[test]
    fn leaves_requests_alone_without_a_trace() {
        let req = TraceInterceptor.call(Request::new(())).unwrap();
        assert!(req.metadata().get(TRACEPARENT).is_none());
    }
}
