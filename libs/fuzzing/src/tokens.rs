//! The `page_token` entry point: signed page tokens and the cursors the services put in them.

use std::fmt::Debug;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_grpc::{MAX_TOKEN_LEN, PageTokenCodec};
use steward_registry::store::models::ModelCursor;
use steward_registry::store::versions::VersionCursor;
use steward_storage::audit::AuditCursor;
use steward_storage::rows::SortVal;
use steward_tracking::store::experiments::ListCursor;
use steward_tracking::store::metrics::HistoryCursor;
use steward_tracking::store::search::RunCursor;

use crate::check;
use crate::input::Input;

/// The signing key of the fuzzed codec. Seeds in `fuzz/corpus/page_token` hold tokens signed
/// with it, so the fuzzer starts from tokens that verify.
pub const FUZZ_KEY: &[u8] = b"steward-fuzzing page token key, not a secret";

fn codec() -> &'static PageTokenCodec {
    static CODEC: OnceLock<PageTokenCodec> = OnceLock::new();
    CODEC.get_or_init(|| PageTokenCodec::new(FUZZ_KEY))
}

fn other_codec() -> &'static PageTokenCodec {
    static CODEC: OnceLock<PageTokenCodec> = OnceLock::new();
    CODEC.get_or_init(|| PageTokenCodec::new(b"another server's key"))
}

/// Signed page tokens (`steward_grpc::PageTokenCodec`), with the cursor types the services
/// page with (runs, experiments, models, versions, metric history, audit records, and the
/// plain ids, numbers and `(time, id)` pairs of the other lists).
///
/// The first byte picks a mode, the next text field (up to `0xFF`) is the token's scope:
/// - decode: the rest is a token, decoded as every cursor type;
/// - round trip: the rest builds cursors, which are encoded and decoded again;
/// - tamper: the rest builds a cursor and an edit of its token.
///
/// Invariants checked besides "no panic":
/// - every refusal is `INVALID_ARGUMENT` naming `page_token`;
/// - a token that decodes is exactly the token `encode` gives for the decoded cursor with
///   this scope, and neither another scope nor another key accepts it;
/// - `encode` gives URL-safe text that `decode` turns back into the same cursor;
/// - any edit of a valid token is refused.
///
/// Cursors holding NaN or infinite floats (runs ordered by a metric) round-trip too; only a
/// cursor whose token would exceed [`MAX_TOKEN_LEN`] may be refused.
pub fn page_token(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let scope = input.text();
    match mode % 3 {
        0 => decode_any(&scope, &String::from_utf8_lossy(input.rest())),
        1 => round_trip_all(&scope, &mut input),
        _ => tamper(&scope, &mut input),
    }
}

/// Decodes `token` as every cursor type.
pub(crate) fn decode_any(scope: &str, token: &str) {
    decode_as::<RunCursor>(scope, token);
    decode_as::<ListCursor>(scope, token);
    decode_as::<HistoryCursor>(scope, token);
    decode_as::<ModelCursor>(scope, token);
    decode_as::<VersionCursor>(scope, token);
    decode_as::<AuditCursor>(scope, token);
    decode_as::<String>(scope, token);
    decode_as::<i64>(scope, token);
    decode_as::<(i64, String)>(scope, token);
    match codec().decode::<serde_json::Value>(scope, token) {
        Ok(v) => {
            let again = codec().encode(scope, &v);
            assert_eq!(
                codec().decode::<serde_json::Value>(scope, &again).ok(),
                Some(v)
            );
        }
        Err(e) => check::invalid(&e, "page_token"),
    }
}

fn decode_as<T: Serialize + DeserializeOwned + Debug>(scope: &str, token: &str) {
    match codec().decode::<T>(scope, token) {
        Ok(cursor) => {
            assert_eq!(
                codec().encode(scope, &cursor),
                token,
                "decoded {cursor:?} from a token encode did not give"
            );
            let other_scope = format!("{scope}.");
            assert!(codec().decode::<T>(&other_scope, token).is_err());
            assert!(other_codec().decode::<T>(scope, token).is_err());
        }
        Err(e) => check::invalid(&e, "page_token"),
    }
}

/// Builds one cursor of each type from the input and round-trips it.
fn round_trip_all(scope: &str, input: &mut Input<'_>) {
    let n = input.u64();
    let id = input.text();
    let keys = sort_vals(input);
    round_trip(
        scope,
        &RunCursor {
            keys,
            id: id.clone(),
        },
    );
    let sort = sort_val(input).unwrap_or(SortVal::Int(n as i64));
    let list = ListCursor {
        sort: sort.clone(),
        id: id.clone(),
    };
    // ListCursor has no PartialEq: compare its JSON.
    round_trip_by_json(scope, &list);
    let model = ModelCursor {
        sort: sort.clone(),
        name: id.clone(),
    };
    round_trip(scope, &model);
    let version = VersionCursor {
        sort,
        version: n as i64,
    };
    round_trip(scope, &version);
    let history = HistoryCursor {
        chunk: n as i64,
        offset: (n >> 7) as usize,
    };
    round_trip(scope, &history);
    let audit = AuditCursor {
        time: n as i64,
        service: id.clone(),
        seq: n.rotate_left(17) as i64,
    };
    round_trip(scope, &audit);
    round_trip(scope, &(n as i64, id.clone()));
    round_trip(scope, &(n as i64));
    round_trip(scope, &id);
}

/// A list of up to 8 sort values (what a run search with that many order keys remembers).
fn sort_vals(input: &mut Input<'_>) -> Vec<Option<SortVal>> {
    let n = input.byte() % 9;
    (0..n).map(|_| sort_val(input)).collect()
}

fn sort_val(input: &mut Input<'_>) -> Option<SortVal> {
    match input.byte() % 4 {
        0 => None,
        1 => Some(SortVal::Int(input.u64() as i64)),
        2 => Some(SortVal::Num(f64::from_bits(input.u64()))),
        _ => Some(SortVal::Str(input.text())),
    }
}

/// The token of `cursor`: URL-safe text that decodes back to `cursor`.
fn round_trip<T>(scope: &str, cursor: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    if let Some(back) = encode_decode(scope, cursor)
        && back != *cursor
    {
        // A NaN sort key (a run ordered by a metric that is NaN) is not equal to itself, so
        // the cursors cannot be compared: the decoded one must then give the same token.
        assert_eq!(
            codec().encode(scope, &back),
            codec().encode(scope, cursor),
            "the cursor {cursor:?} changed in its token to {back:?}"
        );
    }
}

/// [`round_trip`] for cursors without `PartialEq`.
fn round_trip_by_json<T>(scope: &str, cursor: &T)
where
    T: Serialize + DeserializeOwned + Debug,
{
    if let Some(back) = encode_decode(scope, cursor) {
        let json = |c: &T| serde_json::to_string(c).expect("cursor JSON");
        assert_eq!(json(&back), json(cursor), "the cursor changed in its token");
    }
}

fn encode_decode<T>(scope: &str, cursor: &T) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let token = codec().encode(scope, cursor);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "token {token:?} is not URL-safe"
    );
    match codec().decode::<T>(scope, &token) {
        Ok(back) => Some(back),
        // Tokens longer than MAX_TOKEN_LEN are refused by design; the API's cursors (at most
        // three sort values of at most 8,000 bytes) stay well below it.
        Err(_) if token.len() > MAX_TOKEN_LEN => None,
        Err(e) => panic!("the token of {cursor:?} does not decode: {e:?}"),
    }
}

/// Edits a valid token; the edit must be refused.
fn tamper(scope: &str, input: &mut Input<'_>) {
    let cursor = RunCursor {
        keys: vec![Some(SortVal::Int(input.u64() as i64))],
        id: format!("{:032x}", input.u64()),
    };
    let token = codec().encode(scope, &cursor);
    let at = input.u64() as usize % token.len();
    let edit = input.byte();
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let mut edited = token.clone();
    match edit % 4 {
        0 => edited.truncate(at),
        1 => edited.insert_str(at, &text),
        2 => edited.replace_range(at..=at, &text),
        _ => {
            // Flip a bit of the signed bytes and re-encode: well-formed, but forged.
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("our own token");
            let at = at % bytes.len();
            bytes[at] ^= 1 << (edit % 8);
            edited = URL_SAFE_NO_PAD.encode(bytes);
        }
    }
    if edited == token {
        return;
    }
    match codec().decode::<RunCursor>(scope, &edited) {
        Ok(c) => panic!("edited token {edited:?} (of {token:?}) decoded as {c:?}"),
        Err(e) => check::invalid(&e, "page_token"),
    }
}
