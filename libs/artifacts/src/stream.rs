//! Stream helpers shared by the backends: hashing while reading, and re-chunking.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use steward_common::Result;

use crate::store::ByteStream;

/// Reads an upload stream while computing its size and SHA-256.
pub(crate) struct HashingReader {
    inner: ByteStream,
    hasher: Sha256,
    size: u64,
}

impl HashingReader {
    pub(crate) fn new(inner: ByteStream) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The next non-empty chunk, or `None` at the end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        while let Some(chunk) = self.inner.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                continue;
            }
            self.hasher.update(&chunk);
            self.size += chunk.len() as u64;
            return Ok(Some(chunk));
        }
        Ok(None)
    }

    /// Appends chunks to `buf` until it holds at least `target` bytes or the stream ends.
    /// Returns whether the stream ended.
    pub(crate) async fn fill(&mut self, buf: &mut BytesMut, target: usize) -> Result<bool> {
        while buf.len() < target {
            match self.next_chunk().await? {
                Some(chunk) => buf.extend_from_slice(&chunk),
                None => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Size and lowercase-hex SHA-256 of everything read.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

/// Regroups a stream's bytes into chunks of exactly `chunk_size` (the last may be shorter).
/// Large incoming chunks are split without copying. Ends after the first error.
pub(crate) fn rechunk<S>(inner: S, chunk_size: usize) -> ByteStream
where
    S: Stream<Item = Result<Bytes>> + Send + 'static,
{
    let state = Rechunk {
        inner: Box::pin(inner),
        buf: BytesMut::new(),
        rest: Bytes::new(),
        done: false,
    };
    Box::pin(futures::stream::try_unfold(
        state,
        move |mut s| async move {
            loop {
                if !s.rest.is_empty() {
                    if s.buf.is_empty() && s.rest.len() >= chunk_size {
                        let chunk = s.rest.split_to(chunk_size);
                        return Ok(Some((chunk, s)));
                    }
                    let take = (chunk_size - s.buf.len()).min(s.rest.len());
                    if s.buf.is_empty() {
                        s.buf.reserve(chunk_size);
                    }
                    s.buf.extend_from_slice(&s.rest.split_to(take));
                    if s.buf.len() == chunk_size {
                        let chunk = s.buf.split().freeze();
                        return Ok(Some((chunk, s)));
                    }
                } else if s.done {
                    if s.buf.is_empty() {
                        return Ok(None);
                    }
                    let chunk = s.buf.split().freeze();
                    return Ok(Some((chunk, s)));
                } else {
                    match s.inner.next().await.transpose()? {
                        Some(chunk) => s.rest = chunk,
                        None => s.done = true,
                    }
                }
            }
        },
    ))
}

/// State of [`rechunk`]: bytes gathered for the next chunk, and the unread part of the last
/// incoming chunk.
struct Rechunk<S> {
    inner: std::pin::Pin<Box<S>>,
    buf: BytesMut,
    rest: Bytes,
    done: bool,
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use steward_common::Error;

    use super::*;

    /// Chunks of the given sizes holding the bytes 0, 1, 2, ... in order.
    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        let mut next = 0u8;
        let items: Vec<Result<Bytes>> = sizes
            .iter()
            .map(|&n| {
                Ok((0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect())
            })
            .collect();
        futures::stream::iter(items)
    }

    fn sequence(len: usize) -> Vec<u8> {
        (1..=len).map(|i| i as u8).collect()
    }

    #[tokio::test]
    async fn rechunk_regroups_without_losing_bytes() {
        let out: Vec<Bytes> = rechunk(chunks(&[3, 4, 0, 5, 20, 1]), 8)
            .try_collect()
            .await
            .unwrap();
        let sizes: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [8, 8, 8, 8, 1]);
        assert_eq!(out.concat(), sequence(33));
        let out: Vec<Bytes> = rechunk(chunks(&[16]), 8).try_collect().await.unwrap();
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [8, 8]);
        let out: Vec<Bytes> = rechunk(chunks(&[]), 8).try_collect().await.unwrap();
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn rechunk_stops_at_the_first_error() {
        let items: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Err(Error::unavailable("X", "boom")),
            Ok(Bytes::from_static(b"cd")),
        ];
        let mut s = rechunk(futures::stream::iter(items), 8);
        assert_eq!(s.next().await.unwrap().unwrap_err().reason, "X");
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn hashing_reader_counts_and_hashes() {
        let mut r = HashingReader::new(Box::pin(chunks(&[3, 0, 5])));
        let mut buf = BytesMut::new();
        assert!(!r.fill(&mut buf, 4).await.unwrap());
        assert_eq!(buf.len(), 8);
        assert!(r.fill(&mut buf, 100).await.unwrap());
        let (size, sha) = r.finish();
        assert_eq!(size, 8);
        assert_eq!(sha, hex::encode(Sha256::digest(sequence(8))));
    }
}
