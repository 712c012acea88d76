//! Content-defined chunking for Steward's content-addressed storage.
//!
//! Dataset versions are stored as chunks named by their SHA-256, so identical content is stored
//! once across versions and datasets. Cutting files at fixed offsets would make an insertion
//! near the start of a 1 GB CSV shift every later chunk; cutting where the content says so
//! (FastCDC, [`Chunker`]) keeps the boundaries of unchanged regions where they were, so a new
//! version that edits or appends 1% of a file stores about 1% of new bytes.
//!
//! The boundaries depend only on the bytes and on [`ChunkParams`]; both are part of the storage
//! format (changing either re-chunks everything, which is correct but stores new bytes).

mod chunker;

pub use chunker::{ChunkParams, Chunker, chunk_ranges};

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// One file of a dataset version's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry<'a> {
    /// Path inside the version, '/'-separated.
    pub path: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: &'a str,
}

/// The digest of a dataset version: `sha256:<hex>` over its files sorted by path (byte order),
/// each as `path NUL size NUL sha256 LF` (size in decimal). It depends only on the files, so two
/// versions holding the same files have the same digest, and a client can compute it before
/// uploading to check the commit.
pub fn manifest_digest(entries: &[ManifestEntry<'_>]) -> String {
    use sha2::Digest as _;
    let mut sorted: Vec<&ManifestEntry<'_>> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut h = sha2::Sha256::new();
    for e in sorted {
        h.update(e.path.as_bytes());
        h.update([0]);
        h.update(e.size.to_string().as_bytes());
        h.update([0]);
        h.update(e.sha256.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A chunk of a stored file: its SHA-256 and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    /// SHA-256 of the chunk.
    pub sha256: [u8; 32],
    /// Size in bytes.
    pub size: u64,
}

impl ChunkRef {
    /// Lowercase hex of the digest.
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Encodes a file's chunk list: 40 bytes per chunk, the digest then the size (big-endian u64).
pub fn encode_chunks(chunks: &[ChunkRef]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.len() * 40);
    for c in chunks {
        out.extend_from_slice(&c.sha256);
        out.extend_from_slice(&c.size.to_be_bytes());
    }
    out
}

/// Decodes [`encode_chunks`]; `None` if the length is not a multiple of 40.
pub fn decode_chunks(data: &[u8]) -> Option<Vec<ChunkRef>> {
    if !data.len().is_multiple_of(40) {
        return None;
    }
    Some(
        data.chunks_exact(40)
            .map(|c| ChunkRef {
                sha256: c[..32].try_into().expect("32 bytes"),
                size: u64::from_be_bytes(c[32..].try_into().expect("8 bytes")),
            })
            .collect(),
    )
}

#[cfg(test)]
mod manifest_tests {
    use super::*;

    #[test]
    fn manifest_digest_is_order_free_and_sensitive_to_every_field() {
        let sha = "ab".repeat(32);
        let a = ManifestEntry {
            path: "a.csv",
            size: 3,
            sha256: &sha,
        };
        let b = ManifestEntry {
            path: "b/c.csv",
            size: 10,
            sha256: &sha,
        };
        let d1 = manifest_digest(&[a.clone(), b.clone()]);
        assert_eq!(d1, manifest_digest(&[b.clone(), a.clone()]));
        assert!(d1.starts_with("sha256:") && d1.len() == 71);
        let mut a2 = a.clone();
        a2.size = 4;
        assert_ne!(d1, manifest_digest(&[a2, b.clone()]));
        let mut a3 = a.clone();
        a3.path = "a2.csv";
        assert_ne!(d1, manifest_digest(&[a3, b.clone()]));
        let other = "cd".repeat(32);
        let mut a4 = a.clone();
        a4.sha256 = &other;
        assert_ne!(d1, manifest_digest(&[a4, b]));
        // The separators keep (path, size) pairs from running into each other.
        let x = ManifestEntry {
            path: "a1",
            size: 2,
            sha256: &sha,
        };
        let y = ManifestEntry {
            path: "a",
            size: 12,
            sha256: &sha,
        };
        assert_ne!(manifest_digest(&[x]), manifest_digest(&[y]));
    }

    #[test]
    fn chunk_lists_round_trip() {
        let c = vec![
            ChunkRef {
                sha256: [1; 32],
                size: 5,
            },
            ChunkRef {
                sha256: [2; 32],
                size: u64::MAX,
            },
        ];
        assert_eq!(decode_chunks(&encode_chunks(&c)).unwrap(), c);
        assert!(decode_chunks(&[0; 39]).is_none());
        assert_eq!(decode_chunks(&[]).unwrap(), vec![]);
    }
}
