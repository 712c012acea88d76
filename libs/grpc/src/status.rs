//! [`steward_common::Error`] <-> [`tonic::Status`], with `google.rpc.ErrorInfo` and
//! `google.rpc.BadRequest` details (AIP-193).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use steward_common::{Error, ErrorKind, FieldViolation};
use tonic::{Code, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// `ErrorInfo.domain` of every error Steward returns.
pub const ERROR_DOMAIN: &str = "steward.dev";

/// The message callers see for server faults; the cause is in the server log.
pub const INTERNAL_MESSAGE: &str = "internal error; see the server log";

/// Metadata key under which [`from_status`] keeps a remote reason it could not adopt.
pub const REMOTE_REASON_KEY: &str = "remote_reason";

/// The canonical gRPC code of an error kind.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::DataLoss => Code::DataLoss,
    }
}

/// The error kind a gRPC code from another service maps to (best effort: codes Steward never
/// returns fold into the nearest kind).
pub fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Aborted => ErrorKind::Aborted,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::Unimplemented => ErrorKind::Unimplemented,
        Code::DataLoss => ErrorKind::DataLoss,
        Code::Ok | Code::Unknown | Code::Internal => ErrorKind::Internal,
    }
}

/// The generic UPPER_SNAKE reason of a kind, used when a remote status carries none.
fn default_reason(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::AlreadyExists => "ALREADY_EXISTS",
        ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
        ErrorKind::Aborted => "ABORTED",
        ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::DeadlineExceeded => "DEADLINE_EXCEEDED",
        ErrorKind::Unimplemented => "UNIMPLEMENTED",
        ErrorKind::Internal => "INTERNAL",
        ErrorKind::DataLoss => "DATA_LOSS",
    }
}

/// The status sent to callers: canonical code, the error's message (a generic one for
/// `Internal`), `ErrorInfo { reason, domain: "steward.dev", metadata }` always and
/// `BadRequest` field violations when there are any. Internal errors carry neither metadata
/// nor violations, so nothing internal leaks.
pub fn to_status(e: &Error) -> Status {
    let code = code_of(e.kind);
    let mut details = ErrorDetails::new();
    if e.kind == ErrorKind::Internal {
        details.set_error_info(e.reason, ERROR_DOMAIN, HashMap::new());
        return Status::with_error_details(code, INTERNAL_MESSAGE, details);
    }
    let metadata: HashMap<String, String> = e
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    details.set_error_info(e.reason, ERROR_DOMAIN, metadata);
    for v in &e.violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(code, e.message.clone(), details)
}

/// The error of a failed call to another service: the peer's error as [`from_status`] reads
/// it, except that an unreachable or timed-out peer becomes `UNAVAILABLE` with `reason` and
/// `message` (the caller may retry), so callers see which dependency is down.
pub fn from_peer_status(s: &Status, reason: &'static str, message: impl Into<String>) -> Error {
    let err = from_status(s);
    match err.kind {
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded => Error::unavailable(reason, message),
        _ => err,
    }
}

/// The error a status from another Steward service (or any gRPC server) denotes, best effort:
/// kind from the code, message, reason and metadata from `ErrorInfo`, violations from
/// `BadRequest`. A reason that is not UPPER_SNAKE (or one too many distinct reasons) is kept in
/// metadata under [`REMOTE_REASON_KEY`] and the kind's generic reason is used.
pub fn from_status(s: &Status) -> Error {
    let kind = kind_of(s.code());
    let details = s.get_error_details();
    let mut metadata = BTreeMap::new();
    let mut reason = default_reason(kind);
    if let Some(info) = details.error_info() {
        metadata.extend(info.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        match intern_reason(&info.reason) {
            Some(r) => reason = r,
            None if !info.reason.is_empty() => {
                metadata.insert(REMOTE_REASON_KEY.to_owned(), info.reason.clone());
            }
            None => {}
        }
    }
    let violations = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| FieldViolation {
                    field: v.field.clone(),
                    description: v.description.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut e = Error::new(kind, reason, s.message());
    e.violations = violations;
    e.metadata = metadata;
    e
}

/// Most distinct remote reasons kept as `&'static str` (each is leaked once, so the set must
/// stay bounded even if a peer sends arbitrary reasons).
const MAX_INTERNED_REASONS: usize = 1024;
const MAX_REASON_LEN: usize = 63;

static REASONS: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

fn intern_reason(reason: &str) -> Option<&'static str> {
    let valid = !reason.is_empty()
        && reason.len() <= MAX_REASON_LEN
        && reason.starts_with(|c: char| c.is_ascii_uppercase())
        && reason
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return None;
    }
    let mut set = REASONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = set.get(reason) {
        return Some(r);
    }
    if set.len() >= MAX_INTERNED_REASONS {
        return None;
    }
    let leaked: &'static str = Box::leak(reason.to_owned().into_boxed_str());
    set.insert(leaked);
    Some(leaked)
}

/// Conversion of an error into the status sent to the caller.
pub trait IntoStatus {
    /// The status for this error (see [`to_status`]).
    fn into_status(self) -> Status;
}

impl IntoStatus for Error {
    fn into_status(self) -> Status {
        to_status(&self)
    }
}

/// Turns the result of a use case into what a tonic handler returns.
///
/// ```
/// use steward_grpc::ResultExt as _;
/// fn get() -> Result<u32, steward_common::Error> { Ok(7) }
/// let r: Result<tonic::Response<u32>, tonic::Status> = get().into_response();
/// assert_eq!(r.unwrap().into_inner(), 7);
/// ```
pub trait ResultExt<T> {
    /// `Ok(v)` becomes `Ok(Response::new(v))`, `Err(e)` becomes `Err(to_status(&e))`.
    fn into_response(self) -> Result<Response<T>, Status>;
    /// `Err(e)` becomes `Err(to_status(&e))` (for streams and nested calls).
    fn map_status(self) -> Result<T, Status>;
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn into_response(self) -> Result<Response<T>, Status> {
        self.map(Response::new).map_err(|e| to_status(&e))
    }

    fn map_status(self) -> Result<T, Status> {
        self.map_err(|e| to_status(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [ErrorKind; 13] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::Aborted,
        ErrorKind::ResourceExhausted,
        ErrorKind::PermissionDenied,
        ErrorKind::Unauthenticated,
        ErrorKind::Unavailable,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Unimplemented,
        ErrorKind::Internal,
        ErrorKind::DataLoss,
    ];

    #[test]
    fn every_kind_round_trips_through_its_code() {
        for kind in ALL_KINDS {
            assert_eq!(kind_of(code_of(kind)), kind, "{kind:?}");
            assert_eq!(
                format!("{:?}", code_of(kind)).to_lowercase(),
                format!("{kind:?}").to_lowercase()
            );
        }
    }

    #[test]
    fn invalid_argument_carries_error_info_and_bad_request() {
        let e = Error::invalid_fields(vec![
            FieldViolation {
                field: "run.name".into(),
                description: "must not be empty".into(),
            },
            FieldViolation {
                field: "page_size".into(),
                description: "must be at most 1000".into(),
            },
        ])
        .with_metadata("resource", "experiments/e1");
        let s = to_status(&e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), e.message);
        let d = s.get_error_details();
        let info = d.error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("INVALID_ARGUMENT", ERROR_DOMAIN)
        );
        assert_eq!(info.metadata["resource"], "experiments/e1");
        let fields: Vec<_> = d
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["run.name", "page_size"]);
        assert_eq!(
            from_status(&s),
            e,
            "a Steward status converts back to the same error"
        );
    }

    #[test]
    fn not_found_has_no_bad_request() {
        let s = Error::not_found("RUN_NOT_FOUND", "experiments/e/runs/r").into_status();
        assert_eq!(s.code(), Code::NotFound);
        let d = s.get_error_details();
        assert_eq!(d.error_info().unwrap().reason, "RUN_NOT_FOUND");
        assert!(d.bad_request().is_none());
        let back = from_status(&s);
        assert_eq!(back.reason, "RUN_NOT_FOUND");
        assert_eq!(back.metadata["resource"], "experiments/e/runs/r");
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let mut e =
            Error::internal("db password=hunter2 refused").with_violation("secret", "hunter2");
        e.metadata
            .insert("dsn".into(), "postgres://hunter2@db".into());
        let s = to_status(&e);
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), INTERNAL_MESSAGE);
        let d = s.get_error_details();
        assert_eq!(d.error_info().unwrap().reason, "INTERNAL");
        assert!(d.error_info().unwrap().metadata.is_empty());
        assert!(d.bad_request().is_none());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn foreign_statuses_convert_best_effort() {
        let plain = Status::new(Code::OutOfRange, "too far");
        let e = from_status(&plain);
        assert_eq!(
            (e.kind, e.reason, e.message.as_str()),
            (ErrorKind::InvalidArgument, "INVALID_ARGUMENT", "too far")
        );

        let mut d = ErrorDetails::new();
        d.set_error_info("not upper snake!", "example.com", HashMap::new());
        let e = from_status(&Status::with_error_details(Code::Unavailable, "down", d));
        assert_eq!(e.reason, "UNAVAILABLE");
        assert_eq!(e.metadata[REMOTE_REASON_KEY], "not upper snake!");
    }

    #[test]
    fn result_helpers() {
        let ok: Result<u8, Error> = Ok(1);
        assert_eq!(ok.into_response().unwrap().into_inner(), 1);
        let err: Result<u8, Error> = Err(Error::stale_etag("runs/1"));
        assert_eq!(err.map_status().unwrap_err().code(), Code::Aborted);
    }
}
