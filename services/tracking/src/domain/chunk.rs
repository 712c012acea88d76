//! The metric chunk codec: a series stored as one compressed blob of columns.
//!
//! Layout before compression: `u8 version(1) | u32 n | n × i64 step deltas | n × i64 timestamp
//! deltas | n × f64 values`, little-endian; deltas make steady steps and clocks compress to
//! almost nothing. The whole buffer is LZ4-compressed (size-prefixed).

use super::model::Series;

const VERSION: u8 = 1;

/// Encodes a series into a chunk blob.
pub fn encode(s: &Series) -> Vec<u8> {
    let n = s.len();
    let mut raw = Vec::with_capacity(5 + n * 24);
    raw.push(VERSION);
    raw.extend_from_slice(&(n as u32).to_le_bytes());
    let mut prev = 0i64;
    for &v in &s.steps {
        raw.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
        prev = v;
    }
    prev = 0;
    for &v in &s.timestamps {
        raw.extend_from_slice(&v.wrapping_sub(prev).to_le_bytes());
        prev = v;
    }
    for &v in &s.values {
        raw.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    lz4_flex::compress_prepend_size(&raw)
}

/// Decodes a chunk blob, appending its points to `out`.
pub fn decode_into(blob: &[u8], out: &mut Series) -> Result<usize, String> {
    let raw = lz4_flex::decompress_size_prepended(blob).map_err(|e| format!("lz4: {e}"))?;
    if raw.len() < 5 || raw[0] != VERSION {
        return Err("unknown chunk version".into());
    }
    let n = u32::from_le_bytes(raw[1..5].try_into().expect("4 bytes")) as usize;
    if raw.len() != 5 + n * 24 {
        return Err(format!(
            "chunk length {} does not match {n} points",
            raw.len()
        ));
    }
    let word =
        |i: usize| u64::from_le_bytes(raw[5 + i * 8..13 + i * 8].try_into().expect("8 bytes"));
    out.steps.reserve(n);
    out.timestamps.reserve(n);
    out.values.reserve(n);
    let mut acc = 0i64;
    for i in 0..n {
        acc = acc.wrapping_add(word(i) as i64);
        out.steps.push(acc);
    }
    acc = 0;
    for i in 0..n {
        acc = acc.wrapping_add(word(n + i) as i64);
        out.timestamps.push(acc);
    }
    for i in 0..n {
        out.values.push(f64::from_bits(word(2 * n + i)));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_bit_exact(points in proptest::collection::vec((any::<i64>(), any::<i64>(), any::<f64>()), 0..300)) {
            let mut s = Series::default();
            for (a, b, c) in &points { s.push(*a, *b, *c); }
            let mut back = Series::default();
            let n = decode_into(&encode(&s), &mut back).unwrap();
            prop_assert_eq!(n, points.len());
            prop_assert_eq!(&back.steps, &s.steps);
            prop_assert_eq!(&back.timestamps, &s.timestamps);
            let bits: Vec<u64> = back.values.iter().map(|v| v.to_bits()).collect();
            let want: Vec<u64> = s.values.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(bits, want);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_into(&bytes, &mut Series::default());
        }
    }

    #[test]
    fn steady_series_compresses_well() {
        let mut s = Series::default();
        for i in 0..10_000 {
            s.push(i, 1_700_000_000_000 + i, 0.5);
        }
        assert!(encode(&s).len() < 10_000 * 24 / 20);
    }
}
