//! One error type shared by the libs and services, carrying a canonical kind, a stable
//! UPPER_SNAKE reason and, for bad input, the fields that were wrong.
//!
//! The gRPC layer (`steward-grpc`) maps it to `tonic::Status` with `google.rpc.ErrorInfo` and
//! `google.rpc.BadRequest` details. Messages are short, actionable and never leak internals:
//! internal causes are logged where they are handled, not sent to the caller.

use std::collections::BTreeMap;
use std::fmt;

/// Canonical error kinds (a subset of the gRPC codes that Steward returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed; the violations name the fields.
    InvalidArgument,
    /// The resource does not exist.
    NotFound,
    /// The resource already exists (for example a unique name).
    AlreadyExists,
    /// The system is not in a state the operation needs.
    FailedPrecondition,
    /// Concurrency conflict, such as a stale etag; the caller may re-read and retry.
    Aborted,
    /// A documented limit was exceeded.
    ResourceExhausted,
    /// The caller lacks permission.
    PermissionDenied,
    /// The caller is not authenticated.
    Unauthenticated,
    /// A dependency is temporarily unavailable; retrying may succeed.
    Unavailable,
    /// The deadline passed before the operation completed.
    DeadlineExceeded,
    /// The operation is not implemented for this configuration.
    Unimplemented,
    /// A server fault. The message sent to the caller is generic.
    Internal,
    /// Stored data is lost or corrupt (for example a stored chunk whose bytes no longer match
    /// its digest).
    DataLoss,
}

/// A field that was wrong in a request (`google.rpc.BadRequest.FieldViolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `run.tags[3].key`.
    pub field: String,
    /// What is wrong with it and how to fix it.
    pub description: String,
}

/// The error type of every Steward library and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Canonical kind.
    pub kind: ErrorKind,
    /// Stable machine-readable reason (UPPER_SNAKE), e.g. `RUN_NOT_FOUND`.
    pub reason: &'static str,
    /// Short human message.
    pub message: String,
    /// Field violations for `InvalidArgument`.
    pub violations: Vec<FieldViolation>,
    /// Extra machine-readable context (`ErrorInfo.metadata`).
    pub metadata: BTreeMap<String, String>,
}

/// Result alias using [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `reason` and `message`.
    pub fn new(kind: ErrorKind, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason,
            message: message.into(),
            violations: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// Bad input in one field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        let description = description.into();
        Self::new(
            ErrorKind::InvalidArgument,
            "INVALID_ARGUMENT",
            format!("{field}: {description}"),
        )
        .with_violation(field, description)
    }

    /// Bad input in several fields at once. `violations` must not be empty.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let message = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = Self::new(ErrorKind::InvalidArgument, "INVALID_ARGUMENT", message);
        e.violations = violations;
        e
    }

    /// The resource `name` was not found. `reason` is e.g. `RUN_NOT_FOUND`.
    pub fn not_found(reason: &'static str, name: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, reason, format!("{name} not found"))
            .with_metadata("resource", name.to_string())
    }

    /// The resource already exists.
    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, reason, message)
    }

    /// The operation cannot run in the current state.
    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, reason, message)
    }

    /// The caller's etag is stale.
    pub fn stale_etag(resource: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Aborted,
            "ETAG_MISMATCH",
            format!("{resource} was changed by someone else; read it again and retry"),
        )
    }

    /// A documented limit was exceeded in `field`.
    pub fn limit(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut e = Self::invalid_field(field, description);
        e.kind = ErrorKind::InvalidArgument;
        e.reason = "LIMIT_EXCEEDED";
        e
    }

    /// A server fault. `detail` is for the log only; the caller sees a generic message.
    pub fn internal(detail: impl fmt::Display) -> Self {
        // Logged once, here, where the fault is turned into an error; never sent to the caller.
        tracing::error!(detail = %detail, "internal error");
        Self::new(
            ErrorKind::Internal,
            "INTERNAL",
            "internal error; see the server log",
        )
    }

    /// A backend is unavailable.
    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, reason, message)
    }

    /// Adds a field violation.
    pub fn with_violation(
        mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Prefixes every violation's field path with `prefix.` (for nested messages).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for v in &mut self.violations {
            v.field = format!("{prefix}.{}", v.field);
        }
        if self.kind == ErrorKind::InvalidArgument && !prefix.is_empty() {
            self.message = format!("{prefix}.{}", self.message);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {}", self.kind, self.reason, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_field_names_the_field() {
        let e = Error::invalid_field("run.name", "must not be empty");
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.violations[0].field, "run.name");
        assert!(e.message.contains("run.name"));
        let e = e.prefixed("request");
        assert_eq!(e.violations[0].field, "request.run.name");
    }

    #[test]
    fn internal_hides_detail() {
        let e = Error::internal("password=hunter2 connection refused");
        assert!(!e.message.contains("hunter2"));
        assert!(e.metadata.is_empty());
    }
}
