//! Opaque, signed page tokens carrying a keyset cursor (AIP-158).
//!
//! A token is URL-safe base64 (no padding) of
//! `version (1) | key id (4) | scope fingerprint (8) | JSON cursor | HMAC-SHA256 (32)`,
//! the MAC covering everything before it plus the full scope. The key id and scope fingerprint
//! are there only to tell the caller *why* a token is refused (another server's key, another
//! query); the MAC is what makes a token unforgeable. The cursor is signed, not encrypted:
//! never put anything in it the caller may not see.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use steward_common::Error;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const SCOPE_LEN: usize = 8;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + SCOPE_LEN;
const MAC_LEN: usize = 32;
/// Longest token accepted (characters), so garbage is rejected before any work. Large enough
/// for a cursor holding three 8,000-byte sort values (a run search ordered by long params or
/// tags), all escaped.
pub const MAX_TOKEN_LEN: usize = 96 * 1024;
const FIELD: &str = "page_token";
const RESTART: &str = "list again without page_token";

/// Signs and verifies page tokens. Replicas of a service share the key
/// (`STEWARD_PAGE_TOKEN_KEY`); embedded mode uses [`PageTokenCodec::random`].
#[derive(Clone)]
pub struct PageTokenCodec {
    mac: HmacSha256,
    key_id: [u8; KEY_ID_LEN],
}

impl fmt::Debug for PageTokenCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTokenCodec")
            .field("key_id", &hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PageTokenCodec {
    /// Recommended minimum key length in bytes (config validation should enforce it).
    pub const MIN_KEY_LEN: usize = 32;

    /// A codec signing with `key` (any length works; use at least [`Self::MIN_KEY_LEN`] random
    /// bytes).
    pub fn new(key: &[u8]) -> Self {
        let mac =
            <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        let mut id = mac.clone();
        id.update(b"steward page token key id");
        let mut key_id = [0; KEY_ID_LEN];
        key_id.copy_from_slice(&id.finalize().into_bytes()[..KEY_ID_LEN]);
        Self { mac, key_id }
    }

    /// A codec with a fresh random key (embedded mode: tokens die with the process).
    pub fn random() -> Self {
        Self::new(&rand::random::<[u8; 32]>())
    }

    fn scope_fingerprint(scope: &str) -> [u8; SCOPE_LEN] {
        let digest = Sha256::digest(scope.as_bytes());
        let mut fp = [0; SCOPE_LEN];
        fp.copy_from_slice(&digest[..SCOPE_LEN]);
        fp
    }

    fn mac_of(&self, scope: &str, signed: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope.as_bytes());
        mac
    }

    /// The token for `cursor`, bound to `scope` (e.g. a hash of the request's filter and
    /// order_by, plus the parent resource) so it cannot be replayed against another query.
    ///
    /// A cursor that cannot be serialized to JSON is a programming error: it is logged at ERROR
    /// and the token returned is one that [`Self::decode`] rejects.
    pub fn encode<T: Serialize>(&self, scope: &str, cursor: &T) -> String {
        let payload = serde_json::to_vec(cursor).unwrap_or_else(|e| {
            tracing::error!(error = %e, "page cursor cannot be serialized");
            Vec::new()
        });
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len() + MAC_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.key_id);
        bytes.extend_from_slice(&Self::scope_fingerprint(scope));
        bytes.extend_from_slice(&payload);
        let tag = self.mac_of(scope, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor in `token`, if this codec issued it for `scope`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` on field `page_token`, with a description telling apart a malformed
    /// token, one from another server (or a rotated key), one from a different query, one
    /// that was modified, and one from an incompatible server version.
    pub fn decode<T: DeserializeOwned>(&self, scope: &str, token: &str) -> Result<T, Error> {
        let invalid = |why: &str| Error::invalid_field(FIELD, why.to_owned());
        if token.is_empty() {
            return Err(invalid("is empty; omit it to start from the first page"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid(&format!(
                "is longer than {MAX_TOKEN_LEN} characters, so it is not a page token from this API"
            )));
        }
        let malformed = || {
            invalid(
                "is not a valid page token; pass the next_page_token of the previous response \
                 unchanged",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| malformed())?;
        if bytes.len() < HEADER_LEN + MAC_LEN {
            return Err(malformed());
        }
        if bytes[0] != VERSION {
            return Err(invalid(&format!(
                "was issued by an incompatible server version; {RESTART}"
            )));
        }
        if bytes[1..1 + KEY_ID_LEN] != self.key_id {
            return Err(invalid(&format!(
                "was issued by another server or before its signing key changed; {RESTART}"
            )));
        }
        if bytes[1 + KEY_ID_LEN..HEADER_LEN] != Self::scope_fingerprint(scope) {
            return Err(invalid(
                "belongs to a different query; keep filter, order_by and the parent unchanged \
                 while paging, or list again without page_token",
            ));
        }
        let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        self.mac_of(scope, signed)
            .verify_slice(tag)
            .map_err(|_| invalid("has been modified (signature mismatch); pass it unchanged"))?;
        serde_json::from_slice(&signed[HEADER_LEN..]).map_err(|_| {
            invalid(&format!(
                "is no longer valid (issued by another server version); {RESTART}"
            ))
        })
    }

    /// Like [`Self::decode`], but an empty token (the first page) is `Ok(None)`.
    ///
    /// # Errors
    /// As [`Self::decode`].
    pub fn decode_opt<T: DeserializeOwned>(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<Option<T>, Error> {
        if token.is_empty() {
            Ok(None)
        } else {
            self.decode(scope, token).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Cursor {
        created_at: i64,
        id: String,
    }

    fn codec() -> PageTokenCodec {
        PageTokenCodec::new(b"0123456789abcdef0123456789abcdef")
    }

    fn cursor() -> Cursor {
        Cursor {
            created_at: 1_700_000_000,
            id: "run-42".into(),
        }
    }

    fn description(e: &Error) -> &str {
        assert_eq!(e.violations[0].field, "page_token");
        &e.violations[0].description
    }

    #[test]
    fn round_trip_and_url_safe() {
        let token = codec().encode("scope", &cursor());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(codec().decode::<Cursor>("scope", &token).unwrap(), cursor());
        assert_eq!(codec().decode_opt::<Cursor>("scope", "").unwrap(), None);
    }

    #[test]
    fn each_failure_says_why() {
        let c = codec();
        let token = c.encode("filter=a", &cursor());
        let wrong_scope = c.decode::<Cursor>("filter=b", &token).unwrap_err();
        assert!(description(&wrong_scope).contains("different query"));

        let foreign = PageTokenCodec::random()
            .decode::<Cursor>("filter=a", &token)
            .unwrap_err();
        assert!(description(&foreign).contains("another server"));

        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[HEADER_LEN + 3] ^= 1;
        let tampered = c
            .decode::<Cursor>("filter=a", &URL_SAFE_NO_PAD.encode(&bytes))
            .unwrap_err();
        assert!(description(&tampered).contains("modified"));

        let garbage = c.decode::<Cursor>("filter=a", "not a token!").unwrap_err();
        assert!(description(&garbage).contains("not a valid page token"));

        let mut old = URL_SAFE_NO_PAD.decode(&token).unwrap();
        old[0] = 0;
        let old = c
            .decode::<Cursor>("filter=a", &URL_SAFE_NO_PAD.encode(&old))
            .unwrap_err();
        assert!(description(&old).contains("incompatible server version"));

        let other_type = c.decode::<u64>("filter=a", &token).unwrap_err();
        assert!(description(&other_type).contains("no longer valid"));

        assert!(description(&c.decode::<Cursor>("s", "").unwrap_err()).contains("empty"));
        let long = "A".repeat(MAX_TOKEN_LEN + 1);
        assert!(description(&c.decode::<Cursor>("s", &long).unwrap_err()).contains("longer"));

        let descriptions = [
            &wrong_scope,
            &foreign,
            &tampered,
            &garbage,
            &old,
            &other_type,
        ]
        .map(|e| description(e).to_owned());
        for (i, a) in descriptions.iter().enumerate() {
            for b in &descriptions[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        assert!(!format!("{:?}", codec()).contains("0123456789"));
    }

    proptest! {
        #[test]
        fn round_trips(created_at: i64, id in ".{0,40}", scope in ".{0,40}") {
            let c = Cursor { created_at, id };
            let token = codec().encode(&scope, &c);
            prop_assert_eq!(codec().decode::<Cursor>(&scope, &token).unwrap(), c);
        }

        #[test]
        fn any_single_byte_mutation_is_rejected(id in "[a-z0-9]{0,20}", pos: usize, delta in 1u8..) {
            let token = codec().encode("scope", &Cursor { created_at: 7, id });
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let pos = pos % bytes.len();
            bytes[pos] = bytes[pos].wrapping_add(delta);
            let mutated = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(codec().decode::<Cursor>("scope", &mutated).is_err());
        }

        #[test]
        fn any_single_character_mutation_is_rejected(pos: usize, replacement in "[A-Za-z0-9_=+/ -]") {
            let token = codec().encode("scope", &cursor());
            let pos = pos % token.len();
            prop_assume!(token[pos..=pos] != replacement);
            let mutated = format!("{}{}{}", &token[..pos], replacement, &token[pos + 1..]);
            prop_assert!(codec().decode::<Cursor>("scope", &mutated).is_err());
        }

        #[test]
        fn decode_never_panics(s in ".{0,200}") {
            let _ = codec().decode::<Cursor>("scope", &s);
            let _ = codec().decode::<serde_json::Value>("scope", &s);
        }

        #[test]
        fn decode_never_panics_on_well_formed_base64(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = codec().decode::<serde_json::Value>("scope", &URL_SAFE_NO_PAD.encode(bytes));
        }
    }
}
