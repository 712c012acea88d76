//! Statistics of A/B tests.
