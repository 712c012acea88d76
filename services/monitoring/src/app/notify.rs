//! Notification channels: webhooks signed with HMAC-SHA256, delivered from a durable queue with
//! retries and exponential backoff, never to loopback, private, link-local or metadata addresses
//! unless the channel allows it.
//!
//! A delivery is a `POST` of a JSON body with the headers `content-type: application/json`,
//! `x-steward-event: alert|retrain`, `x-steward-delivery: {id}` and
//! `x-steward-signature: t={unix seconds},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`.
//! Receivers recompute the HMAC over the timestamp and the raw body and reject old timestamps.
//! Redirects are not followed (a 3xx counts as a failed attempt).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use steward_common::Error;
use steward_storage::idempotency::IdemKey;
use steward_storage::with_write_tx;

use super::{Ctx, Monitoring, SERVICE, audit, canonical, remember, replay};
use crate::store::channels::{self as cstore, ChannelRow, Delivery};

/// Whether a webhook may not call `ip` (unless the channel allows private addresses):
/// loopback, private (RFC 1918, unique local), link-local (including the 169.254.169.254 cloud
/// metadata address), carrier-grade NAT, unspecified, broadcast, multicast, documentation and
/// IPv4-mapped or -compatible forms of those.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return forbidden_ip(IpAddr::V4(v4));
            }
            let s = a.segments();
            // ::a.b.c.d (deprecated IPv4-compatible), e.g. ::127.0.0.1
            if s[..6].iter().all(|x| *x == 0) && !(s[6] == 0 && s[7] <= 1) {
                return forbidden_ip(IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                )));
            }
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

/// An IPv4 address in the forms `inet_aton` (and so `getaddrinfo` and most HTTP clients) also
/// accept: one to four parts, each decimal, `0x` hex or `0`-prefixed octal, the last part filling
/// the remaining bytes (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` are all 127.0.0.1).
fn legacy_ipv4(host: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let n = if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            if hex.is_empty() {
                0
            } else {
                u64::from_str_radix(hex, 16).ok()?
            }
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()?
        } else {
            return None;
        };
        nums.push(n);
    }
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&n| n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    Some(std::net::Ipv4Addr::from((v | last) as u32))
}

/// Checks a webhook URL; with `allow_private` false, refuses literal forbidden addresses and
/// `localhost` at once (names are checked again on every delivery, after DNS).
pub fn check_url(url: &str, allow_private: bool) -> Result<http::Uri, Error> {
    let field = "channel.url";
    if url.len() > 2048 {
        return Err(Error::limit(field, "at most 2048 bytes"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Error::invalid_field(field, "not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(Error::invalid_field(
                field,
                "must be an http:// or https:// URL",
            ));
        }
    }
    let auth = uri
        .authority()
        .ok_or_else(|| Error::invalid_field(field, "has no host"))?;
    if auth.as_str().contains('@') {
        return Err(Error::invalid_field(field, "must not hold credentials"));
    }
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(Error::invalid_field(field, "has no host"));
    }
    if !allow_private {
        let lower = host.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        let literal = host
            .parse::<IpAddr>()
            .ok()
            .or_else(|| legacy_ipv4(lower).map(IpAddr::V4));
        if lower == "localhost"
            || lower.ends_with(".localhost")
            || lower == "metadata.google.internal"
            || literal.is_some_and(forbidden_ip)
        {
            return Err(Error::invalid_field(
                field,
                "points at a loopback, private, link-local or metadata address (set allow_private to allow it)",
            )
            .with_metadata("reason", "SSRF_BLOCKED"));
        }
    }
    Ok(uri)
}

/// A resolver that drops forbidden addresses (so a name that resolves to 127.0.0.1, in any
/// spelling, cannot reach it).
#[derive(Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || !forbidden_ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the host resolves only to loopback, private, link-local or metadata addresses",
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// The webhook HTTP client.
#[derive(Clone)]
pub struct Http {
    timeout: Duration,
}

impl Http {
    /// A client whose attempts time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// POSTs `body` to the channel, signed; Ok on a 2xx answer.
    pub async fn post(
        &self,
        ch: &ChannelRow,
        kind: &str,
        id: i64,
        body: &str,
    ) -> Result<u16, String> {
        let uri = check_url(&ch.url, ch.allow_private).map_err(|e| e.message)?;
        // Literal addresses skip the resolver: check them here too.
        if let Some(host) = uri.host()
            && let Ok(ip) = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            && !ch.allow_private
            && forbidden_ip(ip)
        {
            return Err("address not allowed".into());
        }
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            allow_private: ch.allow_private,
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let req = http::Request::post(uri)
            .header("content-type", "application/json")
            .header("user-agent", "steward-monitoring")
            .header("x-steward-event", kind)
            .header("x-steward-delivery", id.to_string())
            .header(
                "x-steward-signature",
                format!("t={t},v1={}", sign(&ch.secret, t, body)),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(self.timeout, client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s = format!("{s}: {c}");
                    src = c.source();
                }
                s
            })?;
        let status = resp.status().as_u16();
        // Drain a little of the body so the connection closes cleanly; the content is unused.
        let _ = tokio::time::timeout(Duration::from_secs(1), resp.into_body().collect()).await;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

/// Hex HMAC-SHA256 of `"{t}.{body}"` under `secret`.
pub fn sign(secret: &str, t: u64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable_hmac());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

// HMAC accepts keys of any length; this is never reached.
fn unreachable_hmac() -> Hmac<sha2::Sha256> {
    Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap_or_else(|_| unreachable_hmac())
}

impl Monitoring {
    /// Creates a webhook channel.
    pub async fn create_channel(
        &self,
        ctx: &Ctx,
        id: Option<String>,
        url: String,
        secret: String,
        allow_private: bool,
        request_id: &str,
    ) -> Result<ChannelRow, Error> {
        check_url(&url, allow_private)?;
        if secret.len() < 16 || secret.len() > 512 {
            return Err(Error::invalid_field(
                "channel.secret",
                "between 16 and 512 bytes",
            ));
        }
        let given_id = id.clone();
        let c = ChannelRow {
            id: id.unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
            url,
            secret,
            allow_private,
            create_time: steward_common::time::now_ms(),
        };
        let key = IdemKey::new(
            SERVICE,
            "CreateChannel",
            request_id,
            &canonical(&(&given_id, &c.url, &c.allow_private, sign(&c.secret, 0, ""))),
        )?;
        with_write_tx!(self.db, "create_channel", |tx| {
            if let Some(v) = replay::<ChannelRow>(&tx, key.as_ref()).await? {
                return Ok(v);
            }
            cstore::insert(&tx, &c).await?;
            // The secret is never audited (ChannelRow skips it when serialised).
            audit(
                &tx,
                ctx,
                "monitoring.channels.create",
                format!("channels/{}", c.id),
                request_id,
                None::<&()>,
                Some(&c),
            )
            .await?;
            remember(&tx, key.as_ref(), &c).await?;
            Ok(c.clone())
        })
    }

    /// Every channel.
    pub async fn list_channels(&self) -> Result<Vec<ChannelRow>, Error> {
        cstore::list(self.db.conn()).await
    }

    /// Deletes a channel.
    pub async fn delete_channel(&self, ctx: &Ctx, id: &str, request_id: &str) -> Result<(), Error> {
        let key = IdemKey::new(SERVICE, "DeleteChannel", request_id, &canonical(&id))?;
        with_write_tx!(self.db, "delete_channel", |tx| {
            if replay::<()>(&tx, key.as_ref()).await?.is_some() {
                return Ok(());
            }
            let before = cstore::get_one(&*tx, id)
                .await?
                .ok_or_else(|| Error::not_found("CHANNEL_NOT_FOUND", format!("channels/{id}")))?;
            cstore::delete(&tx, id).await?;
            audit(
                &tx,
                ctx,
                "monitoring.channels.delete",
                format!("channels/{id}"),
                request_id,
                Some(&before),
                None::<&()>,
            )
            .await?;
            remember(&tx, key.as_ref(), &()).await?;
            Ok(())
        })
    }

    /// Makes the due webhook calls; returns how many were attempted.
    pub async fn deliver_due(&self, now: i64) -> Result<usize, Error> {
        let due = cstore::due(self.db.conn(), now, 20).await?;
        let lease = self.settings.webhook_timeout.as_millis() as i64 + 5_000;
        let mut n = 0;
        for d in due {
            let claimed = with_write_tx!(self.db, "claim_delivery", |tx| {
                cstore::claim(&tx, &d, now, lease).await
            })?;
            if !claimed {
                continue;
            }
            n += 1;
            self.attempt(&d).await?;
        }
        Ok(n)
    }

    async fn attempt(&self, d: &Delivery) -> Result<(), Error> {
        let attempts = d.attempts + 1;
        let outcome = match cstore::get_one(self.db.conn(), &d.channel).await? {
            None => Err("channel deleted".to_string()),
            Some(ch) => self.http.post(&ch, &d.kind, d.id, &d.payload).await,
        };
        let now = steward_common::time::now_ms();
        let (state, next, err) = match outcome {
            Ok(status) => {
                tracing::debug!(delivery = d.id, channel = %d.channel, status, "webhook delivered");
                (cstore::DELIVERED, now, String::new())
            }
            Err(e) if attempts >= self.settings.webhook_attempts || e == "channel deleted" => {
                tracing::warn!(delivery = d.id, channel = %d.channel, attempts, error = %e, "webhook given up");
                (cstore::FAILED, now, e)
            }
            Err(e) => {
                let backoff = (self.settings.webhook_backoff.as_millis() as i64)
                    .saturating_mul(1 << (attempts - 1).min(16))
                    .min(300_000);
                tracing::info!(delivery = d.id, channel = %d.channel, attempts, error = %e, retry_in_ms = backoff, "webhook failed; will retry");
                (cstore::PENDING, now + backoff, e)
            }
        };
        let err = err.chars().take(500).collect::<String>();
        with_write_tx!(self.db, "finish_delivery", |tx| {
            cstore::finish(&tx, d.id, state, next, &err).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "::",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "http://localhost:8080/hook",
            "http://127.0.0.1/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://user:pw@example.com/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://localhost./",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/steward", false).is_ok());
        // Numeric names that are not addresses stay names (resolved and checked on delivery).
        assert!(check_url("https://1.example.com/", false).is_ok());
        assert_eq!(legacy_ipv4("8.8.8.8"), Some([8, 8, 8, 8].into()));
        assert_eq!(legacy_ipv4("134744072"), Some([8, 8, 8, 8].into()));
        assert_eq!(legacy_ipv4("256.1.1.1"), None);
        assert_eq!(legacy_ipv4("1.2.3.4.5"), None);
        assert_eq!(legacy_ipv4("example"), None);
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
    }

    #[tokio::test]
    async fn delivery_drops_names_that_resolve_to_forbidden_addresses() {
        use std::str::FromStr as _;
        use tower_service::Service as _;
        let e = GuardedResolver {
            allow_private: false,
        }
        .call(Name::from_str("localhost").unwrap())
        .await
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        let allowed: Vec<SocketAddr> = GuardedResolver {
            allow_private: true,
        }
        .call(Name::from_str("localhost").unwrap())
        .await
        .unwrap()
        .collect();
        assert!(allowed.iter().any(|a| a.ip().is_loopback()), "{allowed:?}");
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // python: hmac.new(b"0123456789abcdef", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("0123456789abcdef", 1_700_000_000, "{}"),
            "e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }
}
