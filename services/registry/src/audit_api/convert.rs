//! Wire types <-> `steward_storage::audit` types. Every request is validated here, once;
//! errors name the field.

use prost_types::Timestamp;
use sha2::{Digest, Sha256};
use steward_common::Error;
use steward_grpc::ts;
use steward_proto::audit as pb;
use steward_storage::audit::{AuditQuery, AuditRecord, ChainHead, ChainReport};

/// Page size when the request leaves it 0.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;
/// Longest filter value (bytes).
const MAX_FILTER_LEN: usize = 1024;
/// Most anchors in one VerifyAuditChain request.
const MAX_ANCHORS: usize = 10_000;
/// Range of a valid `google.protobuf.Timestamp` (0001-01-01 to 9999-12-31, UTC).
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A validated ListAuditEvents request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListRequest {
    pub query: AuditQuery,
    pub page_size: usize,
}

/// The first whole millisecond at or after `t`: a record at time `ms` is at or after `t` iff
/// `ms >= ceil_ms(t)`, and before `t` iff `ms < ceil_ms(t)`.
fn ceil_ms(t: &Timestamp, field: &str) -> Result<i64, Error> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid_field(field, "nanos must be in 0..999999999"));
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) {
        return Err(Error::invalid_field(
            field,
            "must be between 0001-01-01 and 9999-12-31",
        ));
    }
    Ok(t.seconds * 1000 + (i64::from(t.nanos) + 999_999) / 1_000_000)
}

fn page_size(v: i32) -> Result<usize, Error> {
    match v {
        0 => Ok(DEFAULT_PAGE_SIZE),
        v if v < 0 => Err(Error::invalid_field("page_size", "must not be negative")),
        v if v as usize > MAX_PAGE_SIZE => Err(Error::limit(
            "page_size",
            format!("at most {MAX_PAGE_SIZE}"),
        )),
        v => Ok(v as usize),
    }
}

fn filter(field: &str, v: &str) -> Result<Option<String>, Error> {
    if v.len() > MAX_FILTER_LEN {
        return Err(Error::limit(
            field,
            format!("at most {MAX_FILTER_LEN} bytes"),
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// Validates a ListAuditEvents request (everything but the page token, which is checked
/// against the query's scope).
pub(crate) fn list_request(r: &pb::ListAuditEventsRequest) -> Result<ListRequest, Error> {
    let page_size = page_size(r.page_size)?;
    if let (Some(s), Some(e)) = (&r.start_time, &r.end_time)
        && (s.seconds, s.nanos) > (e.seconds, e.nanos)
    {
        return Err(Error::invalid_field(
            "start_time",
            "must not be after end_time",
        ));
    }
    let query = AuditQuery {
        service: filter("service", &r.service)?,
        resource: filter("resource", &r.resource)?,
        actor: filter("actor", &r.actor)?,
        action: filter("action", &r.action)?,
        start_ms: r
            .start_time
            .as_ref()
            .map(|t| ceil_ms(t, "start_time"))
            .transpose()?,
        end_ms: r
            .end_time
            .as_ref()
            .map(|t| ceil_ms(t, "end_time"))
            .transpose()?,
    };
    Ok(ListRequest { query, page_size })
}

/// The page-token scope of a query: a hash of every filter field, so a token only continues
/// the query that issued it.
pub(crate) fn scope(q: &AuditQuery) -> String {
    let mut h = Sha256::new();
    h.update(b"steward.audit.v1.ListAuditEvents");
    let opt = |v: &Option<String>| match v {
        Some(s) => format!("+{s}"),
        None => "-".to_string(),
    };
    let num = |v: Option<i64>| v.map_or("-".to_string(), |n| format!("+{n}"));
    for part in [
        opt(&q.service),
        opt(&q.resource),
        opt(&q.actor),
        opt(&q.action),
        num(q.start_ms),
        num(q.end_ms),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// Validates the anchors of a VerifyAuditChain request (hashes are lowercased).
pub(crate) fn anchors(v: &[pb::ChainHead]) -> Result<Vec<ChainHead>, Error> {
    if v.len() > MAX_ANCHORS {
        return Err(Error::limit("anchors", format!("at most {MAX_ANCHORS}")));
    }
    v.iter()
        .enumerate()
        .map(|(i, a)| {
            if a.service.is_empty() {
                return Err(Error::invalid_field(
                    format!("anchors[{i}].service"),
                    "required",
                ));
            }
            if a.seq < 0 {
                return Err(Error::invalid_field(
                    format!("anchors[{i}].seq"),
                    "must not be negative",
                ));
            }
            if a.hash.len() != 64 || !a.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid_field(
                    format!("anchors[{i}].hash"),
                    "must be 64 hexadecimal characters (a SHA-256 as returned by \
                     GetAuditChainHeads)",
                ));
            }
            Ok(ChainHead {
                service: a.service.clone(),
                seq: a.seq,
                hash: a.hash.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// A stored record on the wire, exactly as hashed.
pub(crate) fn event(r: &AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        service: r.service.clone(),
        seq: r.seq,
        // Exact: the record time is whole milliseconds, as hashed.
        time: Some(ts(r.time)),
        actor: r.actor.clone(),
        action: r.action.clone(),
        resource: r.resource.clone(),
        before_json: r.before_json.clone().unwrap_or_default(),
        after_json: r.after_json.clone().unwrap_or_default(),
        has_before: r.before_json.is_some(),
        has_after: r.after_json.is_some(),
        request_id: r.request_id.clone(),
        trace_id: r.trace_id.clone(),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// A chain head on the wire.
pub(crate) fn head(h: &ChainHead) -> pb::ChainHead {
    pb::ChainHead {
        service: h.service.clone(),
        seq: h.seq,
        hash: h.hash.clone(),
    }
}

/// A verification report on the wire.
pub(crate) fn verification(r: &ChainReport) -> pb::ChainVerification {
    pb::ChainVerification {
        service: r.service.clone(),
        records: r.records,
        ok: r.ok(),
        first_broken_seq: r.first_broken_seq.unwrap_or(0),
        problem: r
            .problem
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        head: r.head.as_ref().map(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_round_up_to_whole_milliseconds() {
        assert_eq!(ceil_ms(&t(1, 0), "f").unwrap(), 1000);
        assert_eq!(ceil_ms(&t(1, 1), "f").unwrap(), 1001);
        assert_eq!(ceil_ms(&t(1, 999_000_000), "f").unwrap(), 1999);
        assert_eq!(ceil_ms(&t(1, 999_000_001), "f").unwrap(), 2000);
        assert_eq!(ceil_ms(&t(-1, 500_000_000), "f").unwrap(), -500);
        assert_eq!(
            ceil_ms(&t(0, -1), "f").unwrap_err().violations[0].field,
            "f"
        );
        assert!(ceil_ms(&t(MAX_SECONDS + 1, 0), "f").is_err());
        for ms in [-1_001, -1, 0, 1, 999, 1_700_000_000_123] {
            assert_eq!(ceil_ms(&ts(ms), "f").unwrap(), ms);
        }
    }

    #[test]
    fn scopes_differ_per_query() {
        let a = AuditQuery::default();
        let b = AuditQuery {
            service: Some(String::new()),
            ..Default::default()
        };
        let c = AuditQuery {
            actor: Some(String::new()),
            ..Default::default()
        };
        assert_ne!(scope(&a), scope(&b));
        assert_ne!(scope(&b), scope(&c));
        assert_eq!(scope(&c), scope(&c.clone()));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(1000).unwrap(), 1000);
        assert_eq!(page_size(1001).unwrap_err().reason, "LIMIT_EXCEEDED");
        assert_eq!(page_size(-1).unwrap_err().violations[0].field, "page_size");
    }
}
