//! Mapping AWS SDK errors to Steward errors without leaking details to callers.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use steward_common::Error;

use crate::store::OBJECT_STORE_UNAVAILABLE;

/// The HTTP status of a failed call, when the server answered.
pub(super) fn status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Maps a failed S3 call: network problems, throttling and server errors are `UNAVAILABLE`
/// (retrying may help); anything else (access denied, missing bucket, a bad request) is an
/// `INTERNAL` fault of the deployment, logged with its detail.
pub(super) fn sdk_error<E>(op: &str, object: &str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or("").to_owned();
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status(&err).is_some_and(|s| s >= 500 || s == 429)
                || matches!(
                    code.as_str(),
                    "SlowDown" | "RequestTimeout" | "ServiceUnavailable"
                )
        }
        _ => false,
    };
    // The SDK's error chain holds the operation, the status, the S3 error code and message, or
    // the connection error; never the credentials or the request signature.
    let detail = DisplayErrorContext(&err);
    if transient {
        tracing::warn!(op, object, error = %detail, "object store unavailable");
        Error::unavailable(
            OBJECT_STORE_UNAVAILABLE,
            format!("the object store did not answer {op}; retry later"),
        )
    } else {
        Error::internal(format!("object store {op} {object} failed: {detail}"))
    }
}
