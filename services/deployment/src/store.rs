//! Persistence of deployment resources over the shared schema. Reads take any connection;
//! writes take the caller's [`WriteTx`].

pub mod ab;
pub mod decisions;
pub mod deployments;
pub mod environments;
pub mod rollouts;

pub use steward_storage::WriteTx;
pub(crate) use steward_storage::rows::{fetch_all, fetch_one, from_json, get, to_json as json};
