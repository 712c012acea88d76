//! Pure types and rules of the registry: no IO, no protobuf.

pub mod compare;
pub mod model;
pub mod policy;
pub mod repro;
pub mod validate;

pub use model::*;
