//! Steward's shared vocabulary: error kinds, resource names, ids and the clock.
//!
//! This crate knows nothing about gRPC or databases; every other crate builds on it.

pub mod error;
pub mod filter;
pub mod limits;
pub mod names;
pub mod time;
pub mod validate;

pub use error::{Error, ErrorKind, FieldViolation, Result};
