//! The tracking service over real gRPC (a TCP listener on 127.0.0.1:0), one test body per
//! behaviour run against every backend asked for: SQLite + local files + in-process events
//! always, and Postgres / S3 / Redis when `STEWARD_TEST_DATABASE_URL`, `STEWARD_TEST_S3_ENDPOINT`
//! and `STEWARD_TEST_REDIS_URL` are set.

mod harness;

mod artifacts;
mod audit_events;
mod data;
mod datasets;
mod experiments;
mod runs;
mod search;
