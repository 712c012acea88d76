//! `google.protobuf.Timestamp` <-> milliseconds since the epoch (how Steward stores times).

use prost_types::Timestamp;
use steward_common::Error;

/// Milliseconds to a protobuf timestamp.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Latest time accepted (year 9999).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// A protobuf timestamp to milliseconds, checking its range.
pub fn from_ts(t: &Timestamp, field: &str) -> Result<i64, Error> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid_field(field, "nanos must be in 0..1e9"));
    }
    let ms = t
        .seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add((t.nanos / 1_000_000) as i64))
        .filter(|ms| (0..=MAX_MS).contains(ms))
        .ok_or_else(|| Error::invalid_field(field, "must be between 1970 and 9999"))?;
    Ok(ms)
}
