//! Persistence of monitoring resources over the shared schema. Reads take any connection;
//! writes take the caller's [`WriteTx`].

pub mod alerts;
pub mod baselines;
pub mod channels;
pub mod monitors;
pub mod records;
pub mod windows;

pub use steward_storage::WriteTx;
pub(crate) use steward_storage::rows::{fetch_all, fetch_one, from_json, get, to_json as json};
