//! Per-column accumulator: type lattice, numeric sketch, frequent values.

use steward_drift::sketch::{QuantileSketch, WeightedCdf};

use crate::frequent::Frequent;
use crate::{
    ColumnProfile, MAX_VALUE_BYTES, MISSING_MARKERS, NUM_BINS, QUANTILES, SKETCH_K, TOP_VALUES,
};

/// Key tags of Parquet numbers in the frequent-value table. These bytes never
/// occur in UTF-8, so tagged keys cannot collide with text keys.
const TAG_I64: u8 = 0xFF;
const TAG_F64: u8 = 0xFE;
const TAG_U64: u8 = 0xFD;

/// Frequent-value capacity of a column while it may be numeric (see
/// [`ColumnAcc::new`]): a small table stays in cache on the hot path.
pub(crate) const NUMERIC_CAPACITY: usize = 1024;

/// Kinds of value seen in a column (declared by a Parquet schema or parsed
/// from CSV text); the column's dtype is their join.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) int: bool,
    pub(crate) float: bool,
    pub(crate) boolean: bool,
    pub(crate) string: bool,
    /// A count-only kind (`timestamp`, `binary`, `nested`, ...).
    pub(crate) other: Option<&'static str>,
    /// Two different count-only kinds were seen.
    pub(crate) other_conflict: bool,
}

impl Seen {
    /// Seen set of a dtype name, as reported in a profile.
    pub(crate) fn of_dtype(dtype: &str) -> Seen {
        let mut s = Seen::default();
        match dtype {
            "int64" => s.int = true,
            "float64" => s.float = true,
            "bool" => s.boolean = true,
            "string" => s.string = true,
            other => s.other = Some(other_name(other)),
        }
        s
    }

    /// Adds a count-only kind.
    pub(crate) fn add_other(&mut self, kind: &'static str) {
        match self.other {
            Some(k) if k != kind => self.other_conflict = true,
            _ => self.other = Some(kind),
        }
    }

    /// Join of two seen sets.
    pub(crate) fn join(mut self, other: Seen) -> Seen {
        self.int |= other.int;
        self.float |= other.float;
        self.boolean |= other.boolean;
        self.string |= other.string;
        self.other_conflict |= other.other_conflict;
        if let Some(k) = other.other {
            self.add_other(k);
        }
        self
    }

    /// The widened dtype: int64 < float64; any other mix is string. A column
    /// without any value is float64 (as pandas reads an all-empty column).
    pub(crate) fn dtype(&self) -> &'static str {
        let numeric = self.int || self.float;
        let kinds =
            usize::from(numeric) + usize::from(self.boolean) + usize::from(self.other.is_some());
        if self.string || self.other_conflict || kinds > 1 {
            "string"
        } else if let Some(k) = self.other {
            k
        } else if self.boolean {
            "bool"
        } else if self.int && !self.float {
            "int64"
        } else {
            "float64"
        }
    }
}

/// Interns the count-only dtype names.
fn other_name(dtype: &str) -> &'static str {
    match dtype {
        "timestamp" => "timestamp",
        "date" => "date",
        "time" => "time",
        "decimal" => "decimal",
        "nested" => "nested",
        _ => "binary",
    }
}

/// Whether `s` is a CSV missing-value marker (see [`MISSING_MARKERS`]).
#[inline]
pub(crate) fn is_missing_marker(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return true;
    }
    if b.len() > 8 || !matches!(b[0], b'#' | b'-' | b'1' | b'<' | b'N' | b'n') {
        return false;
    }
    MISSING_MARKERS
        .iter()
        .any(|m| m.len() == b.len() && m.as_bytes().eq_ignore_ascii_case(b))
}

fn is_bool(s: &str) -> bool {
    s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
}

/// Accumulates one column over one or more files.
pub(crate) struct ColumnAcc {
    pub(crate) name: String,
    nullable: bool,
    seen: Seen,
    /// Missing markers / nulls.
    missing: u64,
    /// Non-missing cells (text) or non-null values.
    present: u64,
    /// Non-finite numbers among `present` (missing when the column is numeric).
    nonfinite: u64,
    /// Present values not entered in `freq` (count-only kinds, non-finite Parquet floats).
    untracked: u64,
    /// Kept while every value may be numeric.
    numeric: Option<Numeric>,
    freq: Frequent,
    /// Frequent-value capacity once the column is known not to be numeric.
    capacity: usize,
}

impl ColumnAcc {
    /// A new column with a frequent-value capacity. While the column may be
    /// numeric its table keeps at most [`NUMERIC_CAPACITY`] counters (numbers
    /// have no reported top values; the table is there in case a string comes
    /// later, and the error of its counts is tracked either way).
    ///
    /// `batched`: buffer numbers and add them to the sketch in sorted batches
    /// (faster; see [`Numeric`]), for files that are not too wide.
    pub(crate) fn new(name: String, capacity: usize, batched: bool) -> ColumnAcc {
        ColumnAcc {
            name,
            nullable: false,
            seen: Seen::default(),
            missing: 0,
            present: 0,
            nonfinite: 0,
            untracked: 0,
            numeric: Some(Numeric::new(batched)),
            freq: Frequent::new(capacity.min(NUMERIC_CAPACITY)),
            capacity,
        }
    }

    /// The column is not numeric: drop the sketch, count categories in full.
    fn not_numeric(&mut self) {
        self.numeric = None;
        self.freq.grow(self.capacity);
    }

    /// Marks the column nullable.
    pub(crate) fn set_nullable(&mut self) {
        self.nullable = true;
    }

    /// Declares a kind from a Parquet schema (it counts even without values).
    pub(crate) fn declare(&mut self, seen: Seen) {
        self.seen = self.seen.join(seen);
        if seen.boolean || seen.string || seen.other.is_some() {
            self.not_numeric();
        }
    }

    /// Adds `n` missing values.
    #[inline]
    pub(crate) fn push_missing(&mut self, n: u64) {
        self.missing += n;
    }

    /// Adds one CSV cell: a missing marker, or a value whose kind is inferred.
    #[inline]
    pub(crate) fn push_text(&mut self, s: &str) {
        if is_missing_marker(s) {
            self.missing += 1;
            return;
        }
        self.present += 1;
        self.track_text(s);
        let t = s.trim_ascii();
        if let Some(numeric) = &mut self.numeric {
            if !self.seen.float
                && let Ok(v) = t.parse::<i64>()
            {
                self.seen.int = true;
                numeric.insert(v as f64);
                return;
            }
            if let Ok(v) = t.parse::<f64>() {
                self.seen.float = true;
                if v.is_finite() {
                    numeric.insert(v);
                } else {
                    self.nonfinite += 1;
                }
                return;
            }
            // Not a number: numeric statistics no longer apply.
            self.not_numeric();
        } else if self.seen.string {
            return;
        }
        if !self.seen.int && !self.seen.float && is_bool(t) {
            self.seen.boolean = true;
        } else {
            self.seen.string = true;
        }
    }

    fn track_text(&mut self, s: &str) {
        if s.len() <= MAX_VALUE_BYTES {
            self.freq.insert(s.as_bytes());
        } else {
            let cut = s.floor_char_boundary(MAX_VALUE_BYTES);
            let key = format!("{}…", &s[..cut]);
            self.freq.insert(key.as_bytes());
        }
    }

    /// Adds a Parquet signed integer.
    #[inline]
    pub(crate) fn push_i64(&mut self, v: i64) {
        self.present += 1;
        self.freq.insert(&tagged(TAG_I64, v.to_le_bytes()));
        if let Some(s) = &mut self.numeric {
            s.insert(v as f64);
        }
    }

    /// Adds a Parquet unsigned 64-bit integer.
    #[inline]
    pub(crate) fn push_u64(&mut self, v: u64) {
        self.present += 1;
        self.freq.insert(&tagged(TAG_U64, v.to_le_bytes()));
        if let Some(s) = &mut self.numeric {
            s.insert(v as f64);
        }
    }

    /// Adds a Parquet float (NaN and ±infinity count as missing).
    #[inline]
    pub(crate) fn push_f64(&mut self, v: f64) {
        self.present += 1;
        if !v.is_finite() {
            self.nonfinite += 1;
            self.untracked += 1;
            return;
        }
        // -0.0 and 0.0 are one value.
        let v = if v == 0.0 { 0.0 } else { v };
        self.freq
            .insert(&tagged(TAG_F64, v.to_bits().to_le_bytes()));
        if let Some(s) = &mut self.numeric {
            s.insert(v);
        }
    }

    /// Adds a Parquet boolean.
    #[inline]
    pub(crate) fn push_bool(&mut self, v: bool) {
        self.present += 1;
        self.freq.insert(if v { b"true" } else { b"false" });
    }

    /// Adds a Parquet string (invalid UTF-8 is replaced by U+FFFD).
    #[inline]
    pub(crate) fn push_str_bytes(&mut self, b: &[u8]) {
        self.present += 1;
        match std::str::from_utf8(b) {
            Ok(s) => self.track_text(s),
            Err(_) => self.track_text(&String::from_utf8_lossy(b)),
        }
    }

    /// Adds `n` values of a count-only kind.
    #[inline]
    pub(crate) fn push_other(&mut self, n: u64) {
        self.present += n;
        self.untracked += n;
    }

    /// The finished profile.
    pub(crate) fn finish(self) -> ColumnProfile {
        let dtype = self.seen.dtype();
        let mut p = ColumnProfile {
            name: self.name,
            dtype: dtype.to_string(),
            nullable: self.nullable,
            count: self.present,
            missing: self.missing,
            min: None,
            max: None,
            mean: None,
            stddev: None,
            quantile_sketch: None,
            quantiles: Vec::new(),
            bin_edges: Vec::new(),
            bin_counts: Vec::new(),
            top_values: Vec::new(),
            top_values_error: 0,
            distinct: 0,
            distinct_exact: false,
        };
        match dtype {
            "int64" | "float64" => {
                // A numeric dtype means no non-numeric value was seen, so the sketch is there.
                if let Some(numeric) = self.numeric {
                    let mut sketch = numeric.finish();
                    p.count = self.present - self.nonfinite;
                    p.missing = self.missing + self.nonfinite;
                    sketch.insert_missing(p.missing);
                    (p.distinct, p.distinct_exact) = match sketch.distinct_values() {
                        Some(t) => (t.len() as u64, true),
                        None => self.freq.distinct(),
                    };
                    fill_numeric(&mut p, &sketch);
                }
            }
            "bool" => {
                let mut t = 0;
                let mut f = 0;
                for (k, c) in self.freq.entries() {
                    if k.trim_ascii().eq_ignore_ascii_case(b"true") {
                        t += c;
                    } else {
                        f += c;
                    }
                }
                let mut top: Vec<(String, u64)> = [("true", t), ("false", f)]
                    .into_iter()
                    .filter(|(_, c)| *c > 0)
                    .map(|(k, c)| (k.to_string(), c))
                    .collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                p.distinct = top.len() as u64;
                p.distinct_exact = self.freq.reduced() == 0;
                p.top_values = top;
                p.top_values_error = self.freq.reduced();
            }
            "string" => {
                let (d, exact) = self.freq.distinct();
                p.distinct = d;
                p.distinct_exact = exact && self.untracked == 0;
                p.top_values_error = self.freq.reduced() + self.untracked;
                p.top_values = self
                    .freq
                    .top(TOP_VALUES)
                    .into_iter()
                    .map(|(k, c)| (render_key(k), c))
                    .collect();
            }
            _ => {}
        }
        p
    }
}

fn tagged(tag: u8, bytes: [u8; 8]) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&bytes);
    k
}

/// Numbers of a column on their way into its quantile sketch.
///
/// Batched, numbers are buffered ([`BATCH`] at a time), sorted with a radix
/// sort and added with [`QuantileSketch::insert_sorted`]: a sorted build of a
/// batch costs O(n) and certifies a rank error below its block size (1 for
/// a batch of `2k` values), so this is both faster than inserting one by one
/// (which sorts every level-0 overflow) and at least as accurate. Batching is
/// independent of how the input bytes are chunked.
pub(crate) struct Numeric {
    sketch: QuantileSketch,
    batch: Option<Vec<f64>>,
}

/// Numbers per sorted batch: `2k`, the largest batch that a sorted build keeps
/// with blocks of 2.
pub(crate) const BATCH: usize = 2 * SKETCH_K as usize;

impl Numeric {
    fn new(batched: bool) -> Numeric {
        Numeric {
            // SKETCH_K is a valid capacity (the drift crate's default).
            sketch: QuantileSketch::new(SKETCH_K).unwrap_or_default(),
            batch: batched.then(Vec::new),
        }
    }

    /// Adds a finite number.
    #[inline]
    pub(crate) fn insert(&mut self, v: f64) {
        match &mut self.batch {
            None => self.sketch.insert(v),
            Some(b) => {
                b.push(v);
                if b.len() >= BATCH {
                    self.flush();
                }
            }
        }
    }

    fn flush(&mut self) {
        let Some(batch) = &mut self.batch else {
            return;
        };
        radix_sort(batch);
        if self.sketch.insert_sorted(batch).is_err() {
            // Unreachable (the batch is sorted and finite); stay correct anyway.
            batch.iter().for_each(|&v| self.sketch.insert(v));
        }
        batch.clear();
    }

    /// The sketch of every number added.
    pub(crate) fn finish(mut self) -> QuantileSketch {
        self.flush();
        self.sketch
    }
}

/// Sorts finite floats ascending: LSD radix sort on their order-preserving bit
/// patterns, 8 bits per pass, skipping passes where every value has the same digit.
fn radix_sort(values: &mut [f64]) {
    let key = |x: f64| {
        let b = x.to_bits();
        if b >> 63 == 1 { !b } else { b | (1 << 63) }
    };
    let mut a: Vec<u64> = values.iter().map(|&x| key(x)).collect();
    let mut b = vec![0u64; a.len()];
    for shift in (0..64).step_by(8) {
        let mut counts = [0usize; 256];
        for &k in &a {
            counts[((k >> shift) & 0xff) as usize] += 1;
        }
        if counts.contains(&a.len()) {
            continue;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &k in &a {
            let d = ((k >> shift) & 0xff) as usize;
            b[counts[d]] = k;
            counts[d] += 1;
        }
        std::mem::swap(&mut a, &mut b);
    }
    for (x, k) in values.iter_mut().zip(a) {
        *x = f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k });
    }
}

/// Text of a frequent-value key (tagged Parquet numbers are formatted).
fn render_key(k: &[u8]) -> String {
    if k.len() == 9 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&k[1..]);
        match k[0] {
            TAG_I64 => return i64::from_le_bytes(b).to_string(),
            TAG_U64 => return u64::from_le_bytes(b).to_string(),
            TAG_F64 => return f64::from_bits(u64::from_le_bytes(b)).to_string(),
            _ => {}
        }
    }
    String::from_utf8_lossy(k).into_owned()
}

/// Fills min/max/mean/std, the encoded sketch, quantiles and the histogram.
pub(crate) fn fill_numeric(p: &mut ColumnProfile, sketch: &QuantileSketch) {
    // Encoding fails only beyond 2^32 retained items, which a sketch never holds.
    p.quantile_sketch = sketch.to_bytes().ok();
    let n = sketch.count();
    if n == 0 {
        return;
    }
    p.min = Some(sketch.min());
    p.max = Some(sketch.max());
    p.mean = Some(sketch.mean());
    p.stddev = (n > 1).then(|| sketch.std() * (n as f64 / (n - 1) as f64).sqrt());
    let cdf = sketch.cdf();
    p.quantiles = QUANTILES.iter().map(|&q| (q, quantile(&cdf, q))).collect();
    let (edges, counts) = histogram(&cdf, sketch.min(), sketch.max());
    p.bin_edges = edges;
    p.bin_counts = counts;
}

/// The value of rank `ceil(q·n)` (the sketch's own quantile rule), computed on
/// one CDF for all quantiles.
fn quantile(cdf: &WeightedCdf, q: f64) -> f64 {
    let total = cdf.total();
    let target = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut acc = 0u64;
    let values = cdf.values();
    for (i, &v) in values.iter().enumerate() {
        acc += cdf.weight(i);
        if acc >= target {
            return v;
        }
    }
    values.last().copied().unwrap_or(f64::NAN)
}

/// [`NUM_BINS`] equal-width bins over `[min, max]`; counts are differences of
/// the CDF at the edges, so they add up to the total exactly.
fn histogram(cdf: &WeightedCdf, min: f64, max: f64) -> (Vec<f64>, Vec<u64>) {
    let (lo, hi) = if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    };
    let mut edges = Vec::with_capacity(NUM_BINS + 1);
    for i in 0..=NUM_BINS {
        let t = i as f64 / NUM_BINS as f64;
        // Convex combination: no overflow for ranges near f64::MAX.
        let e = if i == NUM_BINS {
            hi
        } else {
            lo * (1.0 - t) + hi * t
        };
        let prev = edges.last().copied().unwrap_or(lo);
        edges.push(e.max(prev));
    }
    let total = cdf.total();
    let mut counts = Vec::with_capacity(NUM_BINS);
    for i in 0..NUM_BINS {
        let below_lo = cdf.rank_below(edges[i]);
        let below_hi = if i + 1 == NUM_BINS {
            total
        } else {
            cdf.rank_below(edges[i + 1])
        };
        counts.push(below_hi - below_lo);
    }
    (edges, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        for m in [
            "", "NA", "na", "N/A", "NaN", "nan", "NULL", "null", "None", "NONE", "#N/A", "<NA>",
            "-1.#IND", "#N/A N/A",
        ] {
            assert!(is_missing_marker(m), "{m}");
        }
        for v in ["0", "1", "Nope", " ", "n", "1.#INDX", "none ", "nan5"] {
            assert!(!is_missing_marker(v), "{v}");
        }
    }

    #[test]
    fn dtype_lattice() {
        let s = |d: &str| Seen::of_dtype(d);
        assert_eq!(s("int64").join(s("float64")).dtype(), "float64");
        assert_eq!(s("int64").join(s("string")).dtype(), "string");
        assert_eq!(s("bool").join(s("int64")).dtype(), "string");
        assert_eq!(s("timestamp").join(s("timestamp")).dtype(), "timestamp");
        assert_eq!(s("timestamp").join(s("date")).dtype(), "string");
        assert_eq!(Seen::default().dtype(), "float64");
        assert_eq!(s("nested").dtype(), "nested");
    }

    #[test]
    fn radix_sort_sorts() {
        let mut v = vec![
            3.5,
            -0.0,
            0.0,
            -1e300,
            1e-300,
            -2.5,
            7.0,
            -2.5,
            f64::MAX,
            f64::MIN,
        ];
        let mut expected = v.clone();
        expected.sort_by(f64::total_cmp);
        radix_sort(&mut v);
        assert_eq!(v, expected);
    }

    #[test]
    fn batching_keeps_statistics() {
        let values: Vec<f64> = (0..3 * BATCH + 17)
            .map(|i| ((i * 7919) % 10_007) as f64)
            .collect();
        let mut batched = Numeric::new(true);
        let mut direct = Numeric::new(false);
        for &v in &values {
            batched.insert(v);
            direct.insert(v);
        }
        let (b, d) = (batched.finish(), direct.finish());
        assert_eq!((b.count(), b.min(), b.max()), (d.count(), d.min(), d.max()));
        assert!((b.mean() - d.mean()).abs() < 1e-9 * d.mean());
        assert!((b.std() - d.std()).abs() < 1e-9 * d.std());
        assert!(
            b.rank_error() <= d.rank_error().max(4),
            "{} vs {}",
            b.rank_error(),
            d.rank_error()
        );
    }

    #[test]
    fn tagged_keys_render() {
        assert_eq!(render_key(&tagged(TAG_I64, (-5i64).to_le_bytes())), "-5");
        assert_eq!(
            render_key(&tagged(TAG_U64, u64::MAX.to_le_bytes())),
            "18446744073709551615"
        );
        assert_eq!(
            render_key(&tagged(TAG_F64, 2.5f64.to_bits().to_le_bytes())),
            "2.5"
        );
        assert_eq!(render_key(b"abc"), "abc");
    }
}
