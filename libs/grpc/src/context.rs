//! Who is calling and which request this is, read from gRPC metadata.

use tonic::metadata::MetadataMap;

/// Metadata key naming the caller in open local mode (until authentication exists).
pub const ACTOR_HEADER: &str = "x-steward-actor";
/// Metadata key of the request id; the server sets it on every request and echoes it back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The actor of calls that name none (or a malformed one).
pub const ANONYMOUS: &str = "anonymous";
/// Longest accepted actor, in characters.
pub const MAX_ACTOR_LEN: usize = 256;
/// Longest accepted incoming request id, in characters; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of a call, also put in request extensions by the server stack
/// (`request.extensions().get::<RequestId>()`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

/// The caller: the trimmed `x-steward-actor` value when it is valid UTF-8 without control
/// characters and at most [`MAX_ACTOR_LEN`] characters, else [`ANONYMOUS`].
pub fn actor(md: &MetadataMap) -> String {
    let Some(value) = md.get(ACTOR_HEADER) else {
        return ANONYMOUS.to_owned();
    };
    let valid = std::str::from_utf8(value.as_bytes())
        .ok()
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.chars().count() <= MAX_ACTOR_LEN)
        .filter(|a| !a.chars().any(char::is_control));
    match valid {
        Some(a) => a.to_owned(),
        None => {
            tracing::debug!("ignoring malformed {ACTOR_HEADER}; the caller is anonymous");
            ANONYMOUS.to_owned()
        }
    }
}

/// The `x-request-id` of a call (always present on requests that went through
/// [`crate::GrpcServer`], which generates one when the client sent none).
pub fn request_id(md: &MetadataMap) -> Option<String> {
    md.get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| is_valid_request_id(id))
        .map(str::to_owned)
}

/// Request ids we accept from clients: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters.
pub(crate) fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn md(key: &'static str, value: &[u8]) -> MetadataMap {
        let mut md = MetadataMap::new();
        md.insert(key, MetadataValue::try_from(value).unwrap());
        md
    }

    #[test]
    fn actor_is_trimmed_and_validated() {
        assert_eq!(actor(&MetadataMap::new()), "anonymous");
        assert_eq!(
            actor(&md(ACTOR_HEADER, b"  alice@example.com ")),
            "alice@example.com"
        );
        assert_eq!(actor(&md(ACTOR_HEADER, "zoë".as_bytes())), "zoë");
        assert_eq!(actor(&md(ACTOR_HEADER, b"   ")), "anonymous");
        assert_eq!(actor(&md(ACTOR_HEADER, b"a\tb")), "anonymous");
        assert_eq!(actor(&md(ACTOR_HEADER, b"\xff\xfe")), "anonymous");
        assert_eq!(
            actor(&md(ACTOR_HEADER, "a".repeat(256).as_bytes())).len(),
            256
        );
        assert_eq!(
            actor(&md(ACTOR_HEADER, "a".repeat(257).as_bytes())),
            "anonymous"
        );
    }

    #[test]
    fn request_id_reads_valid_ids_only() {
        assert_eq!(request_id(&MetadataMap::new()), None);
        assert_eq!(
            request_id(&md(REQUEST_ID_HEADER, b" abc-123 ")).as_deref(),
            Some("abc-123")
        );
        assert_eq!(request_id(&md(REQUEST_ID_HEADER, b"has space")), None);
        assert_eq!(
            request_id(&md(REQUEST_ID_HEADER, "x".repeat(129).as_bytes())),
            None
        );
    }
}
