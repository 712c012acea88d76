//! Fuzzing entry points of Steward's input parsers.
//!
//! Each entry point takes arbitrary bytes and feeds them to the parsers and validators that
//! sit at Steward's API boundary. The property under test is that none of them ever panics
//! (a panic in a service is a crashed request, or a crashed process in embedded mode); each
//! entry point also checks invariants of what the parsers accept and panics when one is broken.
//!
//! The same functions run in two places:
//! - the `cargo fuzz` targets under `fuzz/` (one target per entry point, see TESTING.md), and
//! - the proptest suite in `tests/`, so that `cargo test` exercises them on every change.
//!
//! | entry point | what it exercises |
//! |---|---|
//! | [`filter`] | the filter language and `order_by`, in every search scope |
//! | [`page_token`] | signed page tokens: decoding garbage, round trips of real cursors, tampering |
//! | [`resource_names`] | resource names and ids of every service |
//! | [`artifact_paths`] | artifact paths, listing prefixes and object keys |
//! | [`proto_conversions`] | protobuf requests decoded with prost and converted to domain types |

mod check;
mod filters;
mod input;
mod names;
mod paths;
mod requests;
mod tokens;

pub use filters::filter;
pub use input::{SEP, join_fields};
pub use names::resource_names;
pub use paths::artifact_paths;
pub use requests::{REQUEST_KINDS, proto_conversions, request_input};
pub use tokens::{FUZZ_KEY, page_token};
