//! The gRPC layer: thin handlers that validate, call the app and convert back.

pub mod convert;
pub mod service;

pub use service::RegistryApi;
