//! The monitoring service (`steward.monitoring.v1.MonitoringService`): baselines from training
//! data, tumbling windows of live predictions, drift against the baseline, performance from
//! delayed ground truth, latency and KPIs, alert rules, notifications and retraining triggers.
//!
//! Layers: `api` (gRPC, thin) -> [`app`] (use cases, transactions, audit, events, the window
//! closer, the rule evaluator, the webhook sender, the decision consumer) -> [`domain`] (pure:
//! specs, column chunks, drift reports, performance metrics, rules) and [`store`] (SQL over the
//! shared schema).

pub mod api;
pub mod app;
pub mod domain;
pub mod server;
pub mod store;

pub use app::{Ctx, Monitoring};
