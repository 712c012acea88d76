//! Lets [`crate::GrpcServer::add_service`] take any tonic service, whatever its response body
//! (generated servers, and the same wrapped in a server-side `InterceptedService`).

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::TryFutureExt as _;
use futures::future::MapOk;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

/// Errors a response body may fail with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ToBody<B> = fn(http::Response<B>) -> http::Response<Body>;

/// `S` with its response body boxed into [`tonic::body::Body`], keeping its service name.
#[derive(Clone)]
pub(crate) struct Named<S>(pub(crate) S);

impl<S: NamedService> NamedService for Named<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<Body>> for Named<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = MapOk<S::Future, ToBody<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let to_body: ToBody<B> = |response| response.map(Body::new);
        self.0.call(req).map_ok(to_body)
    }
}
