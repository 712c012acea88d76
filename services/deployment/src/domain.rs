//! Pure types and rules of deployment: no IO, no protobuf.

pub mod model;
pub mod routing;
pub mod stats;

pub use model::*;
