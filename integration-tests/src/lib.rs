//! System tests for Steward: the real binaries started as separate processes on real
//! backends. The tests live in `tests/system/`; this library holds what the schema-upgrade
//! fixtures and their generator share.

pub mod schema_fixture;
