//! Registry and audit API tests over real gRPC, on the embedded backends and (when asked for) the real ones.

mod aliases;
mod audit;
mod harness;
mod models;
mod reviews;
mod versions;
