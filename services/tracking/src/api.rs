//! The gRPC face of the tracking service: convert, call the app, convert back.

pub mod convert;
mod service;

pub use service::TrackingApi;
