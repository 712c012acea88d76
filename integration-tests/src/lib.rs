//! steward-integration-tests
