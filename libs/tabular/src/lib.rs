//! Schema and per-column profile of CSV and Parquet files, computed in one
//! streaming pass with bounded memory.
//!
//! At commit the tracking service feeds each CSV / Parquet file of a dataset
//! version through a [`Profiler`] (bytes in order, any chunking) and stores the
//! resulting [`FileProfile`]: the schema ([`schema_json`]) and, per column, type,
//! count, missing, min/max, mean/std, a mergeable quantile sketch
//! (`steward-drift`'s [`QuantileSketch`](steward_drift::sketch::QuantileSketch),
//! encoded), quantiles, a histogram, the most frequent values and the number of
//! distinct values. The monitoring service uses it as the drift baseline.
//!
//! # Types
//! | dtype | CSV (inferred over *all* non-missing values of the column) | Parquet |
//! | --- | --- | --- |
//! | `int64` | every value parses as `i64` (surrounding ASCII whitespace ignored) | INT32 / INT64 (signed or unsigned integer annotations) |
//! | `float64` | every value parses as `f64` (`1e5`, `.5`, `inf`), some not as `i64`; also a column with no value at all (as pandas) | FLOAT / DOUBLE |
//! | `bool` | every value is `true` / `false` (any case) | BOOLEAN |
//! | `string` | anything else, or a mix of the above other than int/float | BYTE_ARRAY annotated String, Enum or Json |
//! | `timestamp`, `date`, `time`, `decimal`, `binary` | - | the other annotations / physical types: count and missing only |
//! | `nested` | - | leaves of nested (group / repeated) columns, named by their dotted path: count and missing only (a null or empty list, or a null element, is one missing slot) |
//!
//! Numeric statistics are kept in `f64` (integers beyond ±2^53 are rounded).
//! NaN and ±infinity in numeric columns are counted as missing (as Evidently and
//! the drift sketch do). Types widen across files (see [`merge`]): int64 + float64
//! is float64, any other mix is string.
//!
//! # Missing values (CSV)
//! A cell is missing when it is empty or equals, ignoring ASCII case, one of
//! pandas' default `na_values`: [`MISSING_MARKERS`] (`NA`, `N/A`, `NaN`, `null`,
//! `None`, `#N/A`, `<NA>`, ...). Whitespace is not trimmed for this test.
//! In Parquet, nulls (definition level below the maximum) are missing.
//!
//! # Bounded memory
//! Memory does not grow with the number of rows (the quantile sketch grows
//! with its logarithm). Per column:
//! * numeric columns: the quantile sketch, `k = 2048` items per level, at most
//!   `log2(n/k) + 1` levels (≈ 16 KiB per level), and for files of up to 256
//!   columns a 32 KiB buffer of numbers added to it in sorted batches;
//! * a Misra-Gries frequent-value table (every CSV column, since a column may
//!   turn out to be a string after a million numbers, and every Parquet string,
//!   bool or numeric column) of at most `2c + 1` keys in fewer than `8c + 4`
//!   slots of 40 bytes (plus the bytes of keys longer than 22): `c` is
//!   [`frequent_capacity`] (10 000 for files up to 26 columns, scaled down for
//!   wider files so that all columns together keep about 2^18 counters, at least
//!   64 per column), and only 1 024 while every value of the column may be a
//!   number (numbers report no top values; the small table keeps the hot path
//!   in cache; it grows to `c` when the column turns out not to be numeric);
//! * past `2c` distinct values, a 16 KiB HyperLogLog.
//!
//! Values longer than [`MAX_VALUE_BYTES`] are counted (top values, distinct) by
//! their first bytes, cut at a character boundary, followed by `…`.
//!
//! CSV files may have at most [`MAX_COLUMNS`] columns and records of at most
//! [`MAX_RECORD_BYTES`]. Parquet needs random access: its bytes are kept in
//! memory up to [`PARQUET_MEMORY_BYTES`], then spooled to an anonymous temporary
//! file (in `TMPDIR`), read when the file ends ([`Profiler::next_file`] or
//! [`Profiler::finish`]).
//!
//! # Accuracy
//! * `count`, `missing`, `min`, `max` are exact; `mean` and `stddev` (sample,
//!   `ddof = 1`, like pandas) are Welford / Chan running values in `f64`.
//! * `quantiles` and the histogram come from the quantile sketch: exact while
//!   the column has at most 64 distinct values, otherwise every rank is within
//!   the sketch's certified rank error (decode `quantile_sketch` and call
//!   `rank_error()`; worst case
//!   [`worst_case_epsilon`](steward_drift::sketch::worst_case_epsilon)`(2048, n)·n`).
//!   Quantiles are the *lower* (inverted-CDF) quantiles: the value of rank
//!   `ceil(q·n)`, not pandas' linear interpolation.
//! * `top_values` counts are lower bounds, at most `top_values_error` below the
//!   true counts (0: exact); any value not listed occurs at most
//!   (last listed count + `top_values_error`) times. Misra-Gries guarantees
//!   `top_values_error <= n / (c' + 1)` for `n` values and the smallest capacity
//!   `c'` the column had (so `n / 1025` at worst for a column that looked numeric
//!   for a long time), plus, for mixed Parquet / CSV columns, the values of kinds
//!   that are not counted (see [`merge`] too).
//! * `distinct` is exact when `distinct_exact` (up to twice the column's table
//!   capacity: `2c` values, 2 048 for numeric columns), else
//!   a HyperLogLog estimate (standard error ≈ 0.8 %). For numeric columns it
//!   counts numeric values while there are at most 64 of them, otherwise distinct
//!   texts (CSV) or values (Parquet). Hashes are seeded randomly once per process
//!   (so crafted values cannot slow the tables down): an *estimate* may differ
//!   slightly between processes; everything else is reproducible, and no
//!   statistic depends on how the bytes are chunked.
//!
//! # Several files
//! A version made of several part files can be profiled exactly through one
//! [`Profiler`] with [`Profiler::next_file`], or file by file and then combined
//! with [`merge`] (exact for counts and numeric statistics, bounded error for
//! top values; see there).

mod column;
mod csv;
mod frequent;
mod merge;
mod parquet;
mod profiler;

pub use merge::{merge, schema_json};
pub use profiler::Profiler;

/// Quantiles reported in [`ColumnProfile::quantiles`].
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
/// Number of equal-width histogram bins of a numeric column.
pub const NUM_BINS: usize = 20;
/// At most this many most frequent values are reported per column.
pub const TOP_VALUES: usize = 20;
/// CSV cells that count as missing, compared ignoring ASCII case (pandas'
/// default `na_values`, plus the empty cell).
pub const MISSING_MARKERS: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];
/// Largest number of columns of a file (CSV and Parquet).
pub const MAX_COLUMNS: usize = 10_000;
/// Largest CSV record (all fields of one row, after unquoting).
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Values longer than this are counted (top values, distinct) by a prefix.
pub const MAX_VALUE_BYTES: usize = 256;
/// Parquet bytes kept in memory before spooling to a temporary file.
pub const PARQUET_MEMORY_BYTES: usize = 32 << 20;
/// Capacity `k` of the quantile sketches (`steward_drift::sketch::DEFAULT_K`).
pub const SKETCH_K: u32 = steward_drift::sketch::DEFAULT_K;

/// Frequent-value capacity `c` per column for a file with `columns` columns:
/// 10 000 up to 26 columns, then `2^18 / columns`, at least 64 (see the
/// [crate docs](crate) for what it bounds).
pub fn frequent_capacity(columns: usize) -> usize {
    ((1usize << 18) / columns.max(1)).clamp(64, 10_000)
}

/// File format of a profiled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values with a header row (UTF-8, RFC 4180 quoting).
    Csv,
    /// Tab-separated values: CSV with a tab delimiter.
    Tsv,
    /// Apache Parquet.
    Parquet,
}

/// Format from a file path's extension (ASCII case ignored): `.csv`, `.tsv`,
/// `.parquet` / `.pq`; `None` otherwise (compressed files such as `.csv.gz` too).
pub fn format_of(path: &str) -> Option<Format> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "csv" => Some(Format::Csv),
        "tsv" => Some(Format::Tsv),
        "parquet" | "pq" => Some(Format::Parquet),
        _ => None,
    }
}

/// Profile of one file (or of several files merged).
#[derive(Debug, Clone, PartialEq)]
pub struct FileProfile {
    /// Number of data rows (the CSV header is not a row).
    pub num_rows: u64,
    /// One entry per column, in file order (new columns of later files last).
    pub columns: Vec<ColumnProfile>,
}

/// Profile of one column. Numeric fields are `None` / empty for non-numeric
/// columns and for numeric columns without values; see the [crate docs](crate)
/// for types and accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    /// Column name (CSV header; Parquet column, dotted path for nested leaves).
    /// Empty CSV names become `Unnamed: {index}` and repeated ones `name.1`,
    /// `name.2`, ... as pandas does.
    pub name: String,
    /// `int64`, `float64`, `bool`, `string`, or for Parquet also `timestamp`,
    /// `date`, `time`, `decimal`, `binary`, `nested`.
    pub dtype: String,
    /// Whether the column may hold nulls: always for CSV; for Parquet when the
    /// column (or an ancestor) is not `REQUIRED`.
    pub nullable: bool,
    /// Non-missing values.
    pub count: u64,
    /// Missing values (markers, nulls, NaN / ±infinity in numeric columns).
    pub missing: u64,
    /// Smallest value (numeric).
    pub min: Option<f64>,
    /// Largest value (numeric).
    pub max: Option<f64>,
    /// Mean (numeric).
    pub mean: Option<f64>,
    /// Sample standard deviation, `ddof = 1` (numeric, at least two values).
    pub stddev: Option<f64>,
    /// Encoded `steward_drift::sketch::QuantileSketch` (`SDQS` v1, capacity
    /// [`SKETCH_K`]) of a numeric column, including the missing count.
    pub quantile_sketch: Option<Vec<u8>>,
    /// `(q, value)` for each q of [`QUANTILES`] (numeric with values).
    pub quantiles: Vec<(f64, f64)>,
    /// [`NUM_BINS`] + 1 ascending edges over `[min, max]` (`[min - 0.5, max + 0.5]`
    /// when `min == max`, as numpy); bins are half-open `[e_i, e_{i+1})`, the last
    /// one closed.
    pub bin_edges: Vec<f64>,
    /// Values per bin, from the sketch's CDF; they add up to `count`.
    pub bin_counts: Vec<u64>,
    /// Up to [`TOP_VALUES`] most frequent values of a string / bool column, most
    /// frequent first (ties by value); counts are lower bounds.
    pub top_values: Vec<(String, u64)>,
    /// Largest possible undercount of a `top_values` count (0: exact).
    pub top_values_error: u64,
    /// Number of distinct non-missing values (0 when not tracked: `binary`,
    /// `timestamp`, `nested`, ... columns).
    pub distinct: u64,
    /// Whether `distinct` is exact (else an estimate or, after [`merge`], a lower bound).
    pub distinct_exact: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extensions() {
        assert_eq!(format_of("data/train.csv"), Some(Format::Csv));
        assert_eq!(format_of("TRAIN.CSV"), Some(Format::Csv));
        assert_eq!(format_of("a/b.tsv"), Some(Format::Tsv));
        assert_eq!(format_of("part-0.parquet"), Some(Format::Parquet));
        assert_eq!(format_of("x.pq"), Some(Format::Parquet));
        assert_eq!(format_of("x.csv.gz"), None);
        assert_eq!(format_of("dir.csv/readme"), None);
        assert_eq!(format_of("csv"), None);
    }

    #[test]
    fn profiler_is_send() {
        fn send<T: Send>() {}
        send::<Profiler>();
        send::<FileProfile>();
    }

    #[test]
    fn capacity_scales_with_width() {
        assert_eq!(frequent_capacity(1), 10_000);
        assert_eq!(frequent_capacity(26), 10_000);
        assert_eq!(frequent_capacity(100), 2_621);
        assert_eq!(frequent_capacity(10_000), 64);
    }
}
