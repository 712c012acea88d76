//! The gRPC face of the tracking service: convert, call the app, convert back.

pub mod convert;
mod dsv;
mod dsv_diff;
mod service;

pub use service::TrackingApi;
