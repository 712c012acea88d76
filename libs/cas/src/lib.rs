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
