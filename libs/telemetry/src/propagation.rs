//! W3C trace-context propagation between `tracing` spans and the outside world: gRPC metadata,
//! HTTP headers and the `traceparent` string carried by event envelopes.
//!
//! Everything here speaks W3C `traceparent` (and `tracestate`) directly, whether or not
//! [`crate::init`] ran, so the helpers behave the same in tests. Reading the current span's
//! context needs the `tracing-opentelemetry` layer that [`crate::init`] installs; without it the
//! current context is empty and the helpers return empty strings or inject nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";

static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The OpenTelemetry context of the current `tracing` span (empty when there is none).
pub fn current_context() -> Context {
    tracing::Span::current().context()
}

/// The remote parent context carried by incoming HTTP/gRPC headers (`traceparent`,
/// `tracestate`). Empty when absent or malformed.
pub fn extract_from_headers(headers: &http::HeaderMap) -> Context {
    PROPAGATOR.extract(&HeaderExtractor(headers))
}

/// Like [`extract_from_headers`], for the metadata of a `tonic::Request`.
pub fn extract_from_metadata(md: &MetadataMap) -> Context {
    extract_from_headers(md.as_ref())
}

/// Writes the current span's `traceparent` (and `tracestate`) into outgoing gRPC metadata.
/// Does nothing when there is no valid current span context.
pub fn inject_into_metadata(md: &mut MetadataMap) {
    PROPAGATOR.inject_context(&current_context(), &mut MetadataInjector(md));
}

/// Writes the current span's `traceparent` (and `tracestate`) into outgoing HTTP headers.
pub fn inject_into_headers(headers: &mut http::HeaderMap) {
    PROPAGATOR.inject_context(&current_context(), &mut HeaderInjector(headers));
}

/// The current span as a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), for event
/// envelopes and audit records; empty when there is no valid span context.
pub fn current_traceparent() -> String {
    let mut carrier = HashMap::new();
    PROPAGATOR.inject_context(&current_context(), &mut carrier);
    carrier.remove(TRACEPARENT).unwrap_or_default()
}

/// The current trace id as 32 lowercase hex digits; empty when there is no valid span context.
pub fn current_trace_id() -> String {
    let cx = current_context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}

/// The remote context a `traceparent` string denotes (empty when it is malformed).
pub fn context_from_traceparent(tp: &str) -> Context {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), tp.trim().to_owned())]);
    PROPAGATOR.extract(&carrier)
}

/// Makes `span` a child of the remote span in incoming `headers` (`traceparent`), if any.
/// Call it right after creating the span, before entering it.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    set_parent(span, extract_from_headers(headers));
}

fn set_parent(span: &tracing::Span, cx: Context) {
    if !cx.span().span_context().is_valid() {
        return;
    }
    if let Err(e) = span.set_parent(cx) {
        tracing::trace!(error = %e, "cannot set the parent of the span");
    }
}

/// Makes `span` a child of the trace in `tp` (for event consumers: call it right after creating
/// the span, before entering it). A malformed or empty `tp` leaves `span` as it is.
pub fn set_parent_from_traceparent(span: &tracing::Span, tp: &str) {
    let cx = context_from_traceparent(tp);
    if !cx.span().span_context().is_valid() && !tp.trim().is_empty() {
        tracing::debug!(traceparent = tp, "ignoring malformed traceparent");
    }
    set_parent(span, cx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use proptest::prelude::*;
    use tracing_subscriber::layer::SubscriberExt;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn with_otel<R>(f: impl FnOnce() -> R) -> R {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    fn parts(tp: &str) -> Vec<String> {
        tp.split('-').map(str::to_owned).collect()
    }

    #[test]
    fn traceparent_round_trips_through_a_span_and_metadata() {
        with_otel(|| {
            let span = tracing::info_span!("consume");
            set_parent_from_traceparent(&span, TP);
            let _entered = span.enter();

            let mut md = MetadataMap::new();
            inject_into_metadata(&mut md);
            let injected = md.get(TRACEPARENT).unwrap().to_str().unwrap().to_owned();
            let p = parts(&injected);
            assert_eq!(p[0], "00");
            assert_eq!(p[1], TRACE_ID, "same trace");
            assert_ne!(
                p[2], "00f067aa0ba902b7",
                "a child span, not the remote parent"
            );
            assert_eq!(p[3], "01", "sampled flag kept");

            assert_eq!(current_traceparent(), injected);
            assert_eq!(current_trace_id(), TRACE_ID);

            let back = extract_from_metadata(&md);
            assert_eq!(back.span().span_context().trace_id().to_string(), TRACE_ID);
        });
    }

    #[test]
    fn headers_carry_the_remote_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, http::HeaderValue::from_static(TP));
        let cx = extract_from_headers(&headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), TRACE_ID);
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn nothing_without_a_span_or_the_layer() {
        assert_eq!(current_traceparent(), "");
        assert_eq!(current_trace_id(), "");
        let mut md = MetadataMap::new();
        inject_into_metadata(&mut md);
        assert!(md.is_empty());
        with_otel(|| {
            assert_eq!(current_traceparent(), "", "no current span");
        });
    }

    #[test]
    fn a_new_root_span_gets_a_fresh_trace() {
        with_otel(|| {
            let span = tracing::info_span!("root");
            set_parent_from_traceparent(&span, "not a traceparent");
            let _e = span.enter();
            let tp = current_traceparent();
            assert_eq!(parts(&tp).len(), 4);
            assert_ne!(parts(&tp)[1], TRACE_ID);
            assert_eq!(current_trace_id().len(), 32);
            let mut headers = http::HeaderMap::new();
            inject_into_headers(&mut headers);
            assert_eq!(headers.get(TRACEPARENT).unwrap(), tp.as_str());
        });
    }

    #[test]
    fn malformed_traceparents_give_an_empty_context() {
        for tp in [
            "",
            "00-0-0-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            TRACE_ID,
        ] {
            assert!(
                !context_from_traceparent(tp)
                    .span()
                    .span_context()
                    .is_valid(),
                "{tp}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_valid_traceparent_keeps_its_ids(trace in 1u128.., span in 1u64.., sampled: bool) {
            let tp = format!("00-{trace:032x}-{span:016x}-{:02x}", u8::from(sampled));
            let cx = context_from_traceparent(&tp);
            let s = cx.span();
            let sc = s.span_context();
            prop_assert!(sc.is_valid());
            prop_assert_eq!(sc.trace_id().to_string(), format!("{trace:032x}"));
            prop_assert_eq!(sc.span_id().to_string(), format!("{span:016x}"));
            prop_assert_eq!(sc.is_sampled(), sampled);
        }

        #[test]
        fn arbitrary_strings_never_panic(tp in ".{0,80}") {
            let _ = context_from_traceparent(&tp);
        }
    }
}
