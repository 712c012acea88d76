//! Pure types and rules of monitoring: no IO, no proto.

pub mod baseline;
pub mod columns;
pub mod nan;
pub mod perf;
pub mod report;
pub mod rules;
pub mod spec;

pub use baseline::{Baseline, BaselineFeature};
pub use columns::{Chunk, Column};
pub use spec::{DriftMethod, FeatureKind, FeatureSpec, Monitor, MonitorSpec, Task, WindowSize};
