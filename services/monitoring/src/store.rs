//! Persistence of monitoring resources over the shared schema. Reads take any connection;
//! writes take the caller's [`WriteTx`].

pub mod alerts;
pub mod baselines;
pub mod channels;
pub mod monitors;
pub mod records;
pub mod windows;

pub use steward_storage::WriteTx;
pub(crate) use steward_storage::rows::{fetch_all, fetch_one, get};

/// JSON text of a value.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String, steward_common::Error> {
    serde_json::to_string(v).map_err(steward_common::Error::internal)
}

/// A value from stored JSON text.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &str,
) -> Result<T, steward_common::Error> {
    serde_json::from_str(s).map_err(|_| steward_common::Error::internal(format!("corrupt {what}")))
}
