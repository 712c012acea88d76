//! Pure types and rules of deployment: no IO, no protobuf.

pub mod stats;
