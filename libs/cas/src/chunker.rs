//! FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for
//! Data Deduplication", USENIX ATC 2016, with the normalized chunking of its 2020 version): a
//! gear rolling hash over the bytes; a chunk ends where the hash's top bits are all zero. Before
//! the average size a stricter mask is used and after it a looser one, which pulls chunk sizes
//! towards the average; sizes stay between the minimum and the maximum.

use bytes::{Bytes, BytesMut};

/// Chunk size limits. The average must be a power of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    /// No chunk is shorter (except the last of a stream).
    pub min: usize,
    /// The target size (a power of two).
    pub avg: usize,
    /// No chunk is longer.
    pub max: usize,
}

impl ChunkParams {
    /// Steward's dataset chunks: 256 KiB minimum, 1 MiB average, 4 MiB maximum.
    pub const DATASETS: ChunkParams = ChunkParams {
        min: 256 << 10,
        avg: 1 << 20,
        max: 4 << 20,
    };

    /// Checks the limits.
    ///
    /// # Errors
    /// A message naming the broken rule.
    pub fn validate(&self) -> Result<(), String> {
        if !self.avg.is_power_of_two() || self.avg < 64 {
            return Err(format!("avg {} must be a power of two >= 64", self.avg));
        }
        if !(self.min >= 1 && self.min <= self.avg && self.avg <= self.max) {
            return Err(format!(
                "need 1 <= min ({}) <= avg ({}) <= max ({})",
                self.min, self.avg, self.max
            ));
        }
        Ok(())
    }

    /// `(strict mask, loose mask)`: the top `log2(avg) + 2` and `log2(avg) - 2` bits.
    fn masks(&self) -> (u64, u64) {
        let bits = self.avg.trailing_zeros();
        let top = |n: u32| {
            if n == 0 {
                0
            } else {
                u64::MAX << (64 - n.min(63))
            }
        };
        (top(bits + 2), top(bits.saturating_sub(2)))
    }
}

/// The gear table: 256 pseudo-random words from SplitMix64 with a fixed seed. Part of the
/// storage format: another table moves every boundary.
const GEAR: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut state: u64 = 0x5374_6577_6172_6443; // "StewardC"
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
};

/// Length of the first chunk of `data`, which is all there is (`data` ends the stream) or at
/// least `p.max` bytes long.
fn cut(data: &[u8], p: &ChunkParams, (strict, loose): (u64, u64)) -> usize {
    let n = data.len().min(p.max);
    if n <= p.min {
        return n;
    }
    let normal = p.avg.min(n);
    let mut hash = 0u64;
    let mut i = p.min;
    while i < normal {
        hash = (hash << 1).wrapping_add(GEAR[data[i] as usize]);
        if hash & strict == 0 {
            return i + 1;
        }
        i += 1;
    }
    while i < n {
        hash = (hash << 1).wrapping_add(GEAR[data[i] as usize]);
        if hash & loose == 0 {
            return i + 1;
        }
        i += 1;
    }
    n
}

/// The chunks of a whole buffer, as byte ranges in order.
///
/// # Panics
/// If `p` is invalid ([`ChunkParams::validate`]).
pub fn chunk_ranges(data: &[u8], p: &ChunkParams) -> Vec<std::ops::Range<usize>> {
    p.validate().expect("valid chunk params");
    let masks = p.masks();
    let mut out = Vec::with_capacity(data.len() / p.avg + 1);
    let mut at = 0;
    while at < data.len() {
        let len = cut(&data[at..], p, masks);
        out.push(at..at + len);
        at += len;
    }
    out
}

/// Cuts a stream into chunks as its bytes arrive, holding at most `max` bytes plus the last
/// piece pushed: the chunks are the same as [`chunk_ranges`] of the whole stream, however the
/// stream is split into pieces.
#[derive(Debug)]
pub struct Chunker {
    params: ChunkParams,
    masks: (u64, u64),
    buf: BytesMut,
}

impl Chunker {
    /// A chunker with `params`.
    ///
    /// # Errors
    /// As [`ChunkParams::validate`].
    pub fn new(params: ChunkParams) -> Result<Chunker, String> {
        params.validate()?;
        Ok(Chunker {
            masks: params.masks(),
            buf: BytesMut::with_capacity(params.max * 2),
            params,
        })
    }

    /// Adds `piece`; returns the chunks it completed.
    pub fn push(&mut self, piece: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(piece);
        let mut out = Vec::new();
        while self.buf.len() >= self.params.max {
            let len = cut(&self.buf, &self.params, self.masks);
            out.push(self.buf.split_to(len).freeze());
        }
        out
    }

    /// Ends the stream; returns its last chunks.
    pub fn finish(mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        while !self.buf.is_empty() {
            let len = cut(&self.buf, &self.params, self.masks);
            out.push(self.buf.split_to(len).freeze());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        assert!(ChunkParams::DATASETS.validate().is_ok());
        for bad in [
            ChunkParams {
                min: 1,
                avg: 1000,
                max: 4000,
            },
            ChunkParams {
                min: 2048,
                avg: 1024,
                max: 4096,
            },
            ChunkParams {
                min: 1,
                avg: 1024,
                max: 512,
            },
            ChunkParams {
                min: 0,
                avg: 1024,
                max: 4096,
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_gear_table_is_fixed() {
        // Part of the storage format: pinned, never to change (SplitMix64 from the seed, as
        // computed independently in Python).
        assert_eq!(
            (GEAR[0], GEAR[1], GEAR[255]),
            (
                0xa36e_2916_7916_5bca,
                0xcd96_2d8e_698b_6241,
                0xc25d_2775_6410_b90b
            ),
            "{:#x} {:#x} {:#x}",
            GEAR[0],
            GEAR[1],
            GEAR[255]
        );
        let distinct: std::collections::HashSet<u64> = GEAR.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }
}
