//! Assertions shared by the entry points.

use steward_common::{Error, ErrorKind};

/// Bad input must be refused with `INVALID_ARGUMENT` naming `field` (ARCHITECTURE.md: "Bad
/// input gets a clear INVALID_ARGUMENT naming the field").
#[track_caller]
pub(crate) fn invalid(e: &Error, field: &str) {
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    assert!(
        e.violations.first().is_some_and(|v| v.field == field),
        "the error should name the field {field:?}: {e:?}"
    );
}

/// Like [`invalid`], for errors naming a field nested under `prefix` (e.g. `metrics[3].key`
/// under `metrics`).
#[track_caller]
pub(crate) fn invalid_under(e: &Error, prefix: &str) {
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    assert!(
        e.violations.first().is_some_and(|v| v.field == prefix
            || v.field.starts_with(&format!("{prefix}."))
            || v.field.starts_with(&format!("{prefix}["))),
        "the error should name a field under {prefix:?}: {e:?}"
    );
}

/// Whether `a` and `b` are the same floats, bit for bit (NaN equals itself).
pub(crate) fn same_f64s(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
