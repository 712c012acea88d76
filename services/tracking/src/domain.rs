//! Pure types and rules of experiment tracking: no IO, no protobuf.

pub mod chunk;
pub mod datasets;
pub mod downsample;
pub use steward_common::filter;
pub mod model;
pub use steward_common::validate;

pub use model::*;
