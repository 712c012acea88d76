//! Registry and audit API tests over real gRPC, on the embedded backends and (when asked for) the real ones.

mod aliases;
mod audit;
mod harness;
mod lifecycle;
mod models;
mod replicas;
mod reviews;
mod versions;
