//! Time helpers: Steward stores instants as UTC milliseconds since the Unix epoch.

use chrono::{DateTime, Utc};

/// Now, in UTC milliseconds since the epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Converts milliseconds since the epoch into a `DateTime`, if representable.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// RFC 3339 text for milliseconds since the epoch (for logs and tables).
pub fn rfc3339_ms(ms: i64) -> String {
    from_ms(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
