//! System tests: the real `steward` and `steward-tracking` binaries, started as separate
//! processes, driven over gRPC and from the command line.
//!
//! - [`embedded`]: `steward up` (SQLite, local artifacts): health, reflection v1 and v1alpha,
//!   the tracking API, data surviving a crash, a clean exit on SIGTERM.
//! - [`distributed`]: `steward-tracking` replicas on Postgres, Redis and S3 (the real-backend
//!   tier: `STEWARD_TEST_DATABASE_URL`, `STEWARD_TEST_REDIS_URL`, `STEWARD_TEST_S3_ENDPOINT`).
//! - [`otel`]: server spans exported over OTLP to an in-process collector, in the caller's trace.
//! - [`backup`]: `steward backup` while serving, `steward restore` verified, into a new data dir.
//! - [`demo`]: `steward demo`, the whole lifecycle against its own embedded server, cleaning up.
//! - [`cli`]: `steward experiments|runs|artifacts ...` against a running server.
//! - [`registry_cli`]: `steward models|versions|alias|approve ...` against a running server.
//! - [`deployment_cli`]: `steward deploy|rollout|ab|explain|deployments|environments ...`
//!   against a running server, on the demo ONNX model.
//! - [`monitoring_cli`]: `steward baselines|monitors|drift|alerts ...` against a running server.
//! - [`monitoring_distributed`]: tracking, registry, deployment and monitoring as four processes
//!   on Postgres and Redis; a drift alert from live traffic rolls a canary back.
//! - [`faults`]: SIGKILL mid-traffic, a Redis outage and a PostgreSQL restart, on private
//!   servers the tests start.
//! - [`hostile`]: a corpus of hostile requests against every service: clear errors, nothing
//!   written outside the artifact root, the server still serving.
//! - [`metrics`]: `steward up` serving Prometheus metrics on `STEWARD_METRICS_LISTEN`.
//! - [`python_client`]: `clients/python/example.py` end to end (`STEWARD_TEST_PYTHON`).
//!
//! - [`upgrade`]: databases written by each earlier release migrate (SQLite and Postgres) and
//!   serve their data.
//!
//! [`support::binaries`] explains how the binaries are found and built. Every child process is
//! killed when its test ends, and its output is printed when the test fails.

mod support;

mod auth;
mod backup;
mod cli;
mod datasets_cli;
mod demo;
mod deployment_cli;
mod distributed;
mod embedded;
mod faults;
mod hostile;
mod limits;
mod metrics;
mod monitoring_cli;
mod monitoring_distributed;
mod otel;
mod python_client;
mod registry_cli;
mod registry_distributed;
mod upgrade;
