//! Operator metrics of the gRPC layer, in the Prometheus text format.
//!
//! Every request that goes through a [`crate::GrpcServer`] is counted here, per method and
//! status code, with its latency in a histogram and the number in flight. The registry is
//! process-wide ([`global`]), like the default registry of Prometheus client libraries: a
//! process that serves several services in one server (`steward up`) reports them together,
//! each under its own `service` label. [`Exposition`] writes the text format, for the other
//! metrics a process adds (outbox depth, event lag, pool usage).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use tonic::Code;

/// Upper bounds (seconds) of the latency histogram buckets; `+Inf` is added.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most distinct `(service, method)` pairs tracked; later ones are counted under
/// `service="other", method="other"`, so requests for made-up paths cannot grow memory.
pub const MAX_METHODS: usize = 512;

/// The 17 gRPC status codes, by number.
const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The `SCREAMING_SNAKE` name of a code, as gRPC documents it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counters of one method.
#[derive(Debug)]
pub(crate) struct MethodStats {
    service: String,
    method: String,
    by_code: [AtomicU64; 17],
    /// Cumulative counts are computed at render time; these are per bucket.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl MethodStats {
    fn new(service: &str, method: &str) -> Self {
        Self {
            service: service.to_owned(),
            method: method.to_owned(),
            by_code: Default::default(),
            buckets: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one finished call.
    pub(crate) fn observe(&self, code: Code, elapsed: Duration) {
        let i = (code as usize).min(16);
        self.by_code[i].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The process-wide gRPC request metrics. See the module docs.
#[derive(Debug, Default)]
pub struct RpcMetrics {
    /// By full path, `/pkg.Service/Method`.
    methods: RwLock<HashMap<String, Arc<MethodStats>>>,
    in_flight: AtomicI64,
    concurrency: RwLock<Option<(Arc<tokio::sync::Semaphore>, usize)>>,
}

/// The registry every [`crate::GrpcServer`] of this process records into.
pub fn global() -> &'static RpcMetrics {
    static GLOBAL: OnceLock<RpcMetrics> = OnceLock::new();
    GLOBAL.get_or_init(RpcMetrics::default)
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(&'static RpcMetrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RpcMetrics {
    /// The counters of the method at `path` (`/pkg.Service/Method`, split into `service` and
    /// `method`), created on first use (bounded by [`MAX_METHODS`]).
    pub(crate) fn method(&self, path: &str, service: &str, method: &str) -> Arc<MethodStats> {
        if let Some(s) = self
            .methods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return s.clone();
        }
        let mut map = self.methods.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(path) {
            return s.clone();
        }
        let (key, service, method) = if map.len() < MAX_METHODS {
            (path, service, method)
        } else {
            ("other", "other", "other")
        };
        map.entry(key.to_owned())
            .or_insert_with(|| Arc::new(MethodStats::new(service, method)))
            .clone()
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn enter(&'static self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Reports the server's concurrency limit and its slots (the last server built wins).
    pub(crate) fn set_concurrency(&self, permits: Arc<tokio::sync::Semaphore>, limit: usize) {
        *self.concurrency.write().unwrap_or_else(|e| e.into_inner()) = Some((permits, limit));
    }

    /// Writes every gRPC metric.
    pub fn render(&self, out: &mut Exposition) {
        let mut methods: Vec<Arc<MethodStats>> = self
            .methods
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        methods.sort_by(|a, b| (&a.service, &a.method).cmp(&(&b.service, &b.method)));

        out.family(
            "steward_grpc_requests_total",
            "counter",
            "gRPC requests finished, by method and status code.",
        );
        for m in &methods {
            for (i, n) in m.by_code.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    out.sample(
                        "steward_grpc_requests_total",
                        &[
                            ("service", &m.service),
                            ("method", &m.method),
                            ("code", code_name(CODES[i])),
                        ],
                        n as f64,
                    );
                }
            }
        }
        out.family(
            "steward_grpc_request_duration_seconds",
            "histogram",
            "Time from receiving a gRPC request to the end of its response, by method.",
        );
        for m in &methods {
            let labels = [
                ("service", m.service.as_str()),
                ("method", m.method.as_str()),
            ];
            let mut cumulative = 0_u64;
            for (i, b) in m.buckets.iter().enumerate() {
                cumulative += b.load(Ordering::Relaxed);
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |le| le.to_string());
                out.sample(
                    "steward_grpc_request_duration_seconds_bucket",
                    &[labels[0], labels[1], ("le", &le)],
                    cumulative as f64,
                );
            }
            out.sample(
                "steward_grpc_request_duration_seconds_sum",
                &labels,
                m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            );
            out.sample(
                "steward_grpc_request_duration_seconds_count",
                &labels,
                cumulative as f64,
            );
        }
        out.gauge(
            "steward_grpc_requests_in_flight",
            "gRPC requests being handled now (streams until their response ends).",
            self.in_flight.load(Ordering::Relaxed) as f64,
        );
        if let Some((permits, limit)) = &*self.concurrency.read().unwrap_or_else(|e| e.into_inner())
        {
            out.gauge(
                "steward_grpc_concurrency_limit",
                "Most requests handled at once; more wait for a slot.",
                *limit as f64,
            );
            out.gauge(
                "steward_grpc_concurrency_in_use",
                "Concurrency slots held by requests now.",
                limit.saturating_sub(permits.available_permits()) as f64,
            );
        }
    }
}

/// A Prometheus text-format (version 0.0.4) document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// The `Content-Type` of [`Exposition::finish`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Exposition {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a metric family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        if value.is_nan() {
            self.text.push_str("NaN");
        } else if value.is_infinite() {
            self.text
                .push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.text, "{value}");
        }
        self.text.push('\n');
    }

    /// A family with one unlabelled gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// The document.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_values_formatted() {
        let mut e = Exposition::new();
        e.family("m", "gauge", "a \\ help\nline");
        e.sample("m", &[("a", "x\"y\\z\nw")], 1.5);
        e.sample("m", &[], f64::INFINITY);
        e.sample("m", &[("b", "")], 3.0);
        assert_eq!(
            e.finish(),
            "# HELP m a \\\\ help\\nline\n# TYPE m gauge\nm{a=\"x\\\"y\\\\z\\nw\"} 1.5\nm +Inf\nm{b=\"\"} 3\n"
        );
    }

    #[test]
    fn calls_are_counted_by_code_and_bucketed_by_latency() {
        let m = RpcMetrics::default();
        let s = m.method("/pkg.Svc/Get", "pkg.Svc", "Get");
        s.observe(Code::Ok, Duration::from_micros(300));
        s.observe(Code::Ok, Duration::from_millis(20));
        s.observe(Code::NotFound, Duration::from_secs(30));
        let mut e = Exposition::new();
        m.render(&mut e);
        let text = e.finish();
        for line in [
            r#"steward_grpc_requests_total{service="pkg.Svc",method="Get",code="OK"} 2"#,
            r#"steward_grpc_requests_total{service="pkg.Svc",method="Get",code="NOT_FOUND"} 1"#,
            r#"steward_grpc_request_duration_seconds_bucket{service="pkg.Svc",method="Get",le="0.0005"} 1"#,
            r#"steward_grpc_request_duration_seconds_bucket{service="pkg.Svc",method="Get",le="0.01"} 1"#,
            r#"steward_grpc_request_duration_seconds_bucket{service="pkg.Svc",method="Get",le="0.025"} 2"#,
            r#"steward_grpc_request_duration_seconds_bucket{service="pkg.Svc",method="Get",le="10"} 2"#,
            r#"steward_grpc_request_duration_seconds_bucket{service="pkg.Svc",method="Get",le="+Inf"} 3"#,
            r#"steward_grpc_request_duration_seconds_sum{service="pkg.Svc",method="Get"} 30.0203"#,
            r#"steward_grpc_request_duration_seconds_count{service="pkg.Svc",method="Get"} 3"#,
            "steward_grpc_requests_in_flight 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("code=\"UNAVAILABLE\""),
            "zero counts are left out"
        );
    }

    #[test]
    fn made_up_paths_cannot_grow_the_registry() {
        let m = RpcMetrics::default();
        for i in 0..MAX_METHODS + 50 {
            m.method(&format!("/pkg.Svc/M{i}"), "pkg.Svc", &format!("M{i}"))
                .observe(Code::Unimplemented, Duration::ZERO);
        }
        assert_eq!(m.methods.read().unwrap().len(), MAX_METHODS + 1);
        let other = m.method("/x/y", "x", "y");
        assert_eq!(other.service, "other");
        assert_eq!(
            other.by_code[Code::Unimplemented as usize].load(Ordering::Relaxed),
            50
        );
    }
}
