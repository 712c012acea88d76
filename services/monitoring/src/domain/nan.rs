//! Serde for `f64` fields that may be NaN: JSON has no NaN, so it is written as `null` and
//! read back as NaN.

use serde::{Deserialize, Deserializer, Serializer};

/// Serializes NaN as `null`.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// Reads `null` as NaN.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
