//! Connections and the retry policy of the registry suite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::transport::{Channel, Endpoint};

use super::Registry;

/// Longest any single RPC may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A channel of its own (one HTTP/2 connection).
pub async fn channel(url: &str) -> Result<Channel> {
    Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// A registry client on its own connection.
pub async fn registry(url: &str) -> Result<Registry> {
    Ok(Registry::new(channel(url).await?))
}

/// `n` registry clients, each on its own connection.
pub async fn registries(url: &str, n: usize) -> Result<Vec<Registry>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(registry(url).await?);
    }
    Ok(v)
}

/// ABORTED answers retried so far (the server asks for a retry on a transaction conflict).
pub static ABORTED_RETRIES: AtomicU64 = AtomicU64::new(0);
/// Attempts of one call before an ABORTED answer is an error.
pub const MAX_ATTEMPTS: u32 = 5;

/// Calls `f` until it does not answer ABORTED, at most [`MAX_ATTEMPTS`] times with a short
/// backoff, as a well-behaved client does. Safe for the writes used here: an ABORTED
/// transaction was rolled back.
pub async fn retry_aborted<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(r) => return Ok(r.into_inner()),
            Err(st) if st.code() == tonic::Code::Aborted && attempt < MAX_ATTEMPTS => {
                ABORTED_RETRIES.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                attempt += 1;
            }
            Err(st) => {
                return Err(anyhow::Error::new(st).context(format!("{what} (attempt {attempt})")));
            }
        }
    }
}
