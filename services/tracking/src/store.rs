//! Persistence of tracking resources over the shared schema (SQLite and Postgres via sea-orm /
//! sea-query). Reads take any connection; writes take the caller's [`WriteTx`].

pub mod artifacts;
pub mod datasets;
pub mod dsv;
pub mod experiments;
pub mod metrics;
pub mod runs;
pub mod search;

pub use steward_storage::WriteTx;
pub(crate) use steward_storage::rows::{fetch_one, get};

/// Placeholder-safe chunking of IN lists.
pub(crate) const IN_CHUNK: usize = 500;
