//! API keys: `stw_{id}_{secret}`, where `{id}` (16 hex digits) is public and names the key
//! (`apiKeys/{id}`) and `{secret}` is 32 random bytes in unpadded base64url. Only the SHA-256 of
//! the secret is stored: the secret is random and long, so a fast hash is enough, and the
//! comparison is constant-time.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use steward_common::Error;

/// Prefix of every key (lets secret scanners find leaked keys).
pub const PREFIX: &str = "stw_";
/// Longest accepted principal, in characters.
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// A freshly made key (its `Debug` shows the id only).
#[derive(Clone)]
pub struct NewKey {
    /// Public id.
    pub id: String,
    /// The whole key, to show once.
    pub secret: String,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Makes a new random key.
pub fn generate() -> NewKey {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret_part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewKey {
        secret: format!("{PREFIX}{id}_{secret_part}"),
        secret_hash: hash(&secret_part),
        id,
    }
}

/// SHA-256 of a secret part, hex.
pub fn hash(secret_part: &str) -> String {
    hex::encode(Sha256::digest(secret_part.as_bytes()))
}

/// Splits a presented key into (id, secret part); `None` when it is not shaped like a key.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Whether `secret_part` hashes to `stored_hash`, compared in constant time.
pub fn matches(secret_part: &str, stored_hash: &str) -> bool {
    let got = hash(secret_part);
    got.len() == stored_hash.len()
        && got
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Checks a principal name: 1 to [`MAX_PRINCIPAL_LEN`] characters, no whitespace or control
/// characters.
///
/// # Errors
/// `INVALID_ARGUMENT` on `field`.
pub fn check_principal(p: &str, field: &str) -> Result<(), Error> {
    if p.is_empty() || p.chars().count() > MAX_PRINCIPAL_LEN {
        return Err(Error::invalid_field(
            field,
            format!("must be 1 to {MAX_PRINCIPAL_LEN} characters"),
        ));
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_field(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    if [crate::principal::INTERNAL, "anonymous"].contains(&p) {
        return Err(Error::invalid_field(field, format!("{p:?} is reserved")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_only_their_hash() {
        let k = generate();
        let (id, secret) = parse(&k.secret).expect("well formed");
        assert_eq!(id, k.id);
        assert!(matches(secret, &k.secret_hash));
        let other = generate();
        assert_ne!(other.id, k.id);
        assert!(!matches(parse(&other.secret).unwrap().1, &k.secret_hash));
        assert!(!k.secret_hash.contains(secret));
    }

    #[test]
    fn malformed_keys_are_not_parsed() {
        let k = generate();
        for bad in [
            "",
            "stw_",
            "Bearer x",
            &k.secret[4..],
            &k.secret[..k.secret.len() - 1],
            &format!("{}x", k.secret),
            &k.secret.replace('_', "-"),
            "stw_zzzzzzzzzzzzzzzz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "stw_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u{0}",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn principals_are_checked() {
        check_principal("alice@example.com", "principal").unwrap();
        check_principal("svc:deployment", "principal").unwrap();
        for bad in [
            "",
            "a b",
            "a\u{0}",
            &"x".repeat(257),
            "anonymous",
            "steward-internal",
        ] {
            let err = check_principal(bad, "principal").unwrap_err();
            assert_eq!(err.violations[0].field, "principal");
        }
    }
}
