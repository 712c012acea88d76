//! Monitoring API tests over real gRPC, on the embedded backends and (when asked for) the real
//! ones.

mod baselines;
mod harness;
mod loop_closed;
mod webhooks;
mod windows;
