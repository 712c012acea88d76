//! What content-defined chunking must give dataset storage: chunks that cover the input exactly,
//! within the size limits, the same however the stream is split, and that stay put around an edit
//! or an append so that a new version stores only about the bytes that changed.

use std::collections::HashSet;

use proptest::prelude::*;
use steward_cas::{ChunkParams, Chunker, chunk_ranges, digest};

/// Small limits so the properties are tested on small inputs.
const SMALL: ChunkParams = ChunkParams {
    min: 64,
    avg: 256,
    max: 1024,
};

/// Chunks of 64 KiB on average.
const MEDIUM: ChunkParams = ChunkParams {
    min: 16 << 10,
    avg: 64 << 10,
    max: 256 << 10,
};

/// Deterministic pseudo-random bytes (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// CSV-like text: `rows` lines of numbers, the kind of file datasets hold.
fn csv(rows: usize, seed: u64) -> Vec<u8> {
    let mut out = b"id,amount,merchant,country,label\n".to_vec();
    let r = noise(rows * 4, seed);
    for i in 0..rows {
        out.extend_from_slice(
            format!(
                "{i},{}.{:02},m{},c{},{}\n",
                r[i * 4] as u32 * 7,
                r[i * 4 + 1] % 100,
                r[i * 4 + 2],
                r[i * 4 + 3] % 30,
                r[i * 4] % 2
            )
            .as_bytes(),
        );
    }
    out
}

fn chunks(data: &[u8], p: &ChunkParams) -> Vec<Vec<u8>> {
    chunk_ranges(data, p)
        .into_iter()
        .map(|r| data[r].to_vec())
        .collect()
}

/// Bytes of `new`'s chunks that `old`'s chunks do not already hold, as a share of `new`.
fn new_bytes_ratio(old: &[u8], new: &[u8], p: &ChunkParams) -> f64 {
    let stored: HashSet<String> = chunks(old, p).iter().map(|c| digest(c)).collect();
    let added: usize = chunks(new, p)
        .iter()
        .filter(|c| !stored.contains(&digest(c)))
        .map(Vec::len)
        .sum();
    added as f64 / new.len() as f64
}

#[test]
fn chunks_cover_the_input_within_the_limits() {
    for data in [
        noise(100_000, 7),
        csv(5_000, 3),
        vec![0u8; 10_000],
        Vec::new(),
    ] {
        let ranges = chunk_ranges(&data, &SMALL);
        let mut at = 0;
        for (i, r) in ranges.iter().enumerate() {
            assert_eq!(r.start, at, "contiguous");
            assert!(r.len() <= SMALL.max, "{r:?}");
            if i + 1 < ranges.len() {
                assert!(
                    r.len() >= SMALL.min,
                    "only the last chunk may be short: {r:?}"
                );
            }
            at = r.end;
        }
        assert_eq!(at, data.len());
    }
    // Constant input has no content-defined cut: every chunk is the maximum.
    assert!(
        chunk_ranges(&[0u8; 10_000], &SMALL)
            .iter()
            .rev()
            .skip(1)
            .all(|r| r.len() == SMALL.max)
    );
}

#[test]
fn chunk_sizes_centre_on_the_average() {
    let data = noise(4 << 20, 11);
    let ranges = chunk_ranges(&data, &SMALL);
    let mean = data.len() as f64 / ranges.len() as f64;
    assert!(
        (SMALL.avg as f64 * 0.75..SMALL.avg as f64 * 1.5).contains(&mean),
        "mean chunk {mean:.0} bytes for an average of {}",
        SMALL.avg
    );
}

#[test]
fn an_insertion_near_the_start_leaves_later_chunks_alone() {
    let old = csv(50_000, 5);
    let mut new = old.clone();
    new.splice(100..100, b"999999,1.00,m1,c1,1\n".iter().copied());
    let ratio = new_bytes_ratio(&old, &new, &SMALL);
    assert!(ratio < 0.02, "{ratio}");
}

#[test]
fn one_percent_of_rows_changed_in_one_block_stores_about_one_percent() {
    // A 24 MB CSV with 64 KiB chunks (the dataset chunks are 1 MiB for 1 GB files: the same
    // proportion of chunk to file); rows 40%..41% rewritten. What is new: the block and the few
    // chunks around it until the boundaries fall back into step.
    let rows = 1_000_000;
    let old = csv(rows, 21);
    let replaced = csv(rows / 100, 99);
    let start = old.len() * 40 / 100;
    let start = start + old[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let end = start + replaced.len() - 33; // about as many bytes as the block it replaces
    let end = end + old[end..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut new = old[..start].to_vec();
    new.extend_from_slice(&replaced[33..]);
    new.extend_from_slice(&old[end..]);
    let ratio = new_bytes_ratio(&old, &new, &MEDIUM);
    assert!(ratio <= 0.05, "{ratio}");
    // An append: only the old last chunk and the new tail are new.
    let mut appended = old.clone();
    appended.extend_from_slice(&csv(rows / 100, 77)[33..]);
    let ratio = new_bytes_ratio(&old, &appended, &MEDIUM);
    assert!(ratio <= 0.05, "{ratio}");
}

#[test]
fn boundaries_are_pinned() {
    // Part of the storage format: the same bytes must always give the same chunks.
    let data = noise(20_000, 42);
    let lens: Vec<usize> = chunk_ranges(&data, &SMALL)
        .iter()
        .map(|r| r.len())
        .collect();
    assert_eq!(lens[..8], PINNED, "{lens:?}");
}

const PINNED: [usize; 8] = [332, 375, 275, 297, 70, 379, 652, 254];

proptest! {
    #[test]
    fn streaming_in_any_pieces_gives_the_same_chunks(
        seed in any::<u64>(),
        len in 0usize..20_000,
        cuts in proptest::collection::vec(1usize..3_000, 1..40),
    ) {
        let data = noise(len, seed);
        let whole = chunks(&data, &SMALL);
        let mut c = Chunker::new(SMALL).unwrap();
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < data.len() {
            let n = cuts[i % cuts.len()].min(data.len() - at);
            got.extend(c.push(&data[at..at + n]).into_iter().map(|b| b.to_vec()));
            at += n;
            i += 1;
        }
        got.extend(c.finish().into_iter().map(|b| b.to_vec()));
        prop_assert_eq!(got, whole);
    }
}
