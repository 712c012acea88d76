//! Client channels for service-to-service calls.
//!
//! Every outgoing call carries the caller's trace and the process's service credentials. Use
//! [`connect_traced`], whose channel any generated client accepts (`FooServiceClient::new`).
//! The credentials and TLS settings are set once per process with [`configure_peers`].

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use steward_common::Error;
use steward_telemetry::TraceInterceptor;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Metadata key of the per-process credential a `steward up` process accepts from itself.
pub const INTERNAL_HEADER: &str = "x-steward-internal";

/// A channel that adds `traceparent` and the service credentials to every request.
pub type TracedChannel = InterceptedService<Channel, PeerInterceptor>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// How this process calls its peers.
#[derive(Clone, Default)]
pub struct PeerSettings {
    /// API key sent as `authorization: Bearer ...` (`STEWARD_SERVICE_TOKEN`).
    pub token: Option<String>,
    /// Send [`internal_token`] to this URL (and no other): for `steward up`, whose services
    /// call each other at the process's own address and accept the token of their process.
    pub internal_url: Option<String>,
    /// CA to verify `https://` peers with.
    pub ca: Option<Certificate>,
    /// Client certificate and key for mutual TLS.
    pub identity: Option<Identity>,
}

impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("internal_url", &self.internal_url)
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

fn settings() -> &'static RwLock<Arc<PeerSettings>> {
    static SETTINGS: OnceLock<RwLock<Arc<PeerSettings>>> = OnceLock::new();
    SETTINGS.get_or_init(Default::default)
}

/// Sets how channels made afterwards call their peers (once, at start-up).
pub fn configure_peers(s: PeerSettings) {
    *settings().write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
}

fn current() -> Arc<PeerSettings> {
    settings().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A random secret made once per process: a `steward up` process accepts it (in
/// [`INTERNAL_HEADER`]) as its own services calling each other. Never leaves the process unless
/// [`PeerSettings::internal`] is set.
pub fn internal_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Adds the trace and the credentials of [`PeerSettings`] to every call.
#[derive(Clone)]
pub struct PeerInterceptor {
    bearer: Option<MetadataValue<tonic::metadata::Ascii>>,
    internal: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Interceptor for PeerInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = TraceInterceptor.call(request)?;
        if let Some(b) = &self.bearer {
            request.metadata_mut().insert("authorization", b.clone());
        }
        if let Some(t) = &self.internal {
            request.metadata_mut().insert(INTERNAL_HEADER, t.clone());
        }
        Ok(request)
    }
}

impl PeerInterceptor {
    fn new(s: &PeerSettings, url: &str) -> Result<Self, Error> {
        let bearer = s
            .token
            .as_ref()
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {}", t.trim())).map_err(|_| {
                    Error::invalid_field("service_token", "is not a valid header value")
                })
            })
            .transpose()?;
        let internal = (s.internal_url.as_deref().map(str::trim) == Some(url.trim()))
            .then(|| MetadataValue::try_from(internal_token()))
            .transpose()
            .map_err(|_| Error::internal("internal token is not a header value"))?;
        Ok(Self { bearer, internal })
    }
}

/// A channel to `url` (`http://host:port`, or `https://host:port` with the CA of
/// [`PeerSettings::ca`]). It connects lazily, on the first call, and reconnects by itself, so
/// a peer that starts later is fine.
///
/// # Errors
/// `INVALID_ARGUMENT` on field `url` when `url` is not a valid `http(s)://host:port` URI, or
/// is `https://` without a CA configured.
pub async fn connect(url: &str) -> Result<Channel, Error> {
    connect_with(url, &current())
}

fn connect_with(url: &str, s: &PeerSettings) -> Result<Channel, Error> {
    let mut endpoint = Endpoint::from_shared(url.trim().to_owned()).map_err(|e| {
        Error::invalid_field(
            "url",
            format!("{url:?} is not a valid gRPC endpoint URL: {e}"),
        )
    })?;
    let scheme = endpoint.uri().scheme_str().map(str::to_owned);
    if endpoint.uri().host().is_none() || !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(Error::invalid_field(
            "url",
            format!("{url:?} must look like http://host:port or https://host:port"),
        ));
    }
    if scheme.as_deref() == Some("https") {
        let Some(ca) = &s.ca else {
            return Err(Error::invalid_field(
                "url",
                format!("{url:?} is https but no CA is configured (STEWARD_TLS_CA)"),
            ));
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(ca.clone());
        if let Some(id) = &s.identity {
            tls = tls.identity(id.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Error::invalid_field("url", format!("TLS settings unusable: {e}")))?;
    }
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// [`connect`], wrapped with [`PeerInterceptor`].
///
/// # Errors
/// As [`connect`].
pub async fn connect_traced(url: &str) -> Result<TracedChannel, Error> {
    let s = current();
    Ok(InterceptedService::new(
        connect_with(url, &s)?,
        PeerInterceptor::new(&s, url)?,
    ))
}

/// A traced channel to a server outside Steward (an upstream inference server): the trace is
/// propagated, but neither the service key nor the process token is ever sent there.
///
/// # Errors
/// As [`connect`].
pub async fn connect_external(url: &str) -> Result<TracedChannel, Error> {
    let s = current();
    let outside = PeerSettings {
        ca: s.ca.clone(),
        ..PeerSettings::default()
    };
    Ok(InterceptedService::new(
        connect_with(url, &outside)?,
        PeerInterceptor::new(&outside, url)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_name_the_field() {
        for url in ["", "not a url", "registry:50051", "ftp://registry:50051"] {
            let err = connect(url).await.unwrap_err();
            assert_eq!(err.violations[0].field, "url", "{url}");
        }
        let err = connect_with("https://registry:50051", &PeerSettings::default()).unwrap_err();
        assert!(err.message.contains("STEWARD_TLS_CA"), "{}", err.message);
        connect("http://127.0.0.1:1")
            .await
            .expect("lazy: no connection attempted yet");
        connect_traced("http://localhost:50051").await.unwrap();
    }

    #[test]
    fn credentials_are_added_as_configured() {
        let own = "http://127.0.0.1:50051";
        let s = PeerSettings {
            token: Some("stw_abc_def".into()),
            internal_url: Some(own.into()),
            ..PeerSettings::default()
        };
        let mut i = PeerInterceptor::new(&s, own).unwrap();
        let r = i.call(Request::new(())).unwrap();
        assert_eq!(
            r.metadata().get("authorization").unwrap(),
            "Bearer stw_abc_def"
        );
        assert_eq!(r.metadata().get(INTERNAL_HEADER).unwrap(), internal_token());
        let mut elsewhere = PeerInterceptor::new(&s, "http://tracking:50051").unwrap();
        let r = elsewhere.call(Request::new(())).unwrap();
        assert!(
            r.metadata().get(INTERNAL_HEADER).is_none(),
            "the process token goes only to the process's own address"
        );
        assert!(r.metadata().get("authorization").is_some());
        let mut none = PeerInterceptor::new(&PeerSettings::default(), own).unwrap();
        let r = none.call(Request::new(())).unwrap();
        assert!(r.metadata().get("authorization").is_none());
        assert!(r.metadata().get(INTERNAL_HEADER).is_none());
        assert_eq!(internal_token().len(), 64);
    }
}
