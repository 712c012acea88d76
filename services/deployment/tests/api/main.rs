//! Deployment API tests over real gRPC, on the embedded backends and (when asked for) the
//! real ones.

mod decisions;
mod flows;
mod harness;
mod reproducible;
mod serving;
