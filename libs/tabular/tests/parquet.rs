//! Parquet profiling through the public API, on files written here with the
//! `parquet` crate's own writer (no arrow).

use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use steward_common::{Error, ErrorKind};
use steward_drift::sketch::QuantileSketch;
use steward_tabular::{ColumnProfile, FileProfile, Format, Profiler, format_of, schema_json};

const SCHEMA: &str = "message m {
    OPTIONAL INT64 id;
    OPTIONAL DOUBLE x;
    OPTIONAL BOOLEAN flag;
    OPTIONAL BYTE_ARRAY name (UTF8);
    REQUIRED INT32 small;
    OPTIONAL BYTE_ARRAY blob;
    OPTIONAL INT64 ts (TIMESTAMP(MILLIS,true));
    OPTIONAL group tags (LIST) {
        REPEATED group list {
            OPTIONAL BYTE_ARRAY element (UTF8);
        }
    }
}";

const ROWS: usize = 10;

fn id(i: usize) -> Option<i64> {
    (i % 4 != 3).then_some(i as i64 * 10 - 20)
}
fn x(i: usize) -> Option<f64> {
    match i {
        0 => None,
        5 => Some(f64::NAN),
        _ => Some(i as f64 * 0.5),
    }
}
fn flag(i: usize) -> Option<bool> {
    (i != 9).then_some(i.is_multiple_of(3))
}
fn name(i: usize) -> Option<&'static str> {
    (i != 2).then_some(["a", "b", "c"][i % 3])
}

/// Splits optional values into (non-null values, definition levels).
fn levels<T: Clone>(values: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let mut vals = Vec::new();
    let mut defs = Vec::new();
    for v in values {
        match v {
            Some(v) => {
                vals.push(v);
                defs.push(1);
            }
            None => defs.push(0),
        }
    }
    (vals, defs)
}

/// Writes rows `0..ROWS` in two row groups.
fn write_file(compression: Compression) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression)
            .build(),
    );
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
    for rows in [0..6, 6..ROWS] {
        let mut rg = w.next_row_group().unwrap();
        let mut idx = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            let r = rows.clone();
            match idx {
                0 => {
                    let (v, d) = levels(r.map(id));
                    col.typed::<Int64Type>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                1 => {
                    let (v, d) = levels(r.map(x));
                    col.typed::<DoubleType>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                2 => {
                    let (v, d) = levels(r.map(flag));
                    col.typed::<BoolType>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                3 => {
                    let (v, d) = levels(r.map(|i| name(i).map(ByteArray::from)));
                    col.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                4 => {
                    let v: Vec<i32> = r.map(|i| i as i32).collect();
                    col.typed::<Int32Type>()
                        .write_batch(&v, None, None)
                        .unwrap();
                }
                5 => {
                    let (v, d) =
                        levels(r.map(|i| (i % 2 == 0).then(|| ByteArray::from(vec![0u8, 1, 2]))));
                    col.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                6 => {
                    let (v, d) = levels(r.map(|i| Some(1_700_000_000_000 + i as i64)));
                    col.typed::<Int64Type>()
                        .write_batch(&v, Some(&d), None)
                        .unwrap();
                }
                7 => {
                    // Per row i % 4: ["x", "y"], null list, [], [null].
                    let mut vals = Vec::new();
                    let mut defs = Vec::new();
                    let mut reps = Vec::new();
                    for i in r {
                        match i % 4 {
                            0 => {
                                vals.push(ByteArray::from("x"));
                                vals.push(ByteArray::from("y"));
                                defs.extend([3, 3]);
                                reps.extend([0, 1]);
                            }
                            1 => {
                                defs.push(0);
                                reps.push(0);
                            }
                            2 => {
                                defs.push(1);
                                reps.push(0);
                            }
                            _ => {
                                defs.push(2);
                                reps.push(0);
                            }
                        }
                    }
                    col.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&defs), Some(&reps))
                        .unwrap();
                }
                _ => unreachable!(),
            }
            col.close().unwrap();
            idx += 1;
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
    buf
}

fn profile(data: &[u8], chunk: usize) -> Result<FileProfile, Error> {
    let path = "data/part-0.parquet";
    let mut p = Profiler::new(format_of(path).unwrap(), path);
    for c in data.chunks(chunk.max(1)) {
        p.push(c)?;
    }
    p.finish()
}

fn col<'a>(p: &'a FileProfile, name: &str) -> &'a ColumnProfile {
    p.columns
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn top(c: &ColumnProfile) -> Vec<(&str, u64)> {
    c.top_values.iter().map(|(v, n)| (v.as_str(), *n)).collect()
}

fn check(p: &FileProfile) {
    assert_eq!(p.num_rows, ROWS as u64);
    let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "x",
            "flag",
            "name",
            "small",
            "blob",
            "ts",
            "tags.list.element"
        ]
    );

    let ids: Vec<f64> = (0..ROWS).filter_map(id).map(|v| v as f64).collect();
    let c = col(p, "id");
    assert_eq!(
        (c.dtype.as_str(), c.count, c.missing, c.nullable),
        ("int64", 8, 2, true)
    );
    let mean = ids.iter().sum::<f64>() / ids.len() as f64;
    let var = ids.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (ids.len() - 1) as f64;
    assert_eq!((c.min, c.max), (Some(-20.0), Some(70.0)));
    assert!((c.mean.unwrap() - mean).abs() < 1e-9);
    assert!((c.stddev.unwrap() - var.sqrt()).abs() < 1e-9);
    assert_eq!((c.distinct, c.distinct_exact), (8, true));
    assert_eq!(c.bin_counts.iter().sum::<u64>(), 8);
    let sketch = QuantileSketch::from_bytes(c.quantile_sketch.as_ref().unwrap()).unwrap();
    assert_eq!((sketch.count(), sketch.missing()), (8, 2));
    assert_eq!(c.quantiles[3], (0.5, 20.0));

    // x: null at 0, NaN at 5 (missing), else 0.5 * i.
    let c = col(p, "x");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("float64", 8, 2));
    assert_eq!((c.min, c.max), (Some(0.5), Some(4.5)));
    let xs: Vec<f64> = [1, 2, 3, 4, 6, 7, 8, 9]
        .iter()
        .map(|&i| i as f64 * 0.5)
        .collect();
    let mean = xs.iter().sum::<f64>() / 8.0;
    assert!((c.mean.unwrap() - mean).abs() < 1e-12);

    let c = col(p, "flag");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("bool", 9, 1));
    assert_eq!(top(c), [("false", 6), ("true", 3)]);
    assert!(c.mean.is_none());

    let c = col(p, "name");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("string", 9, 1));
    assert_eq!(top(c), [("a", 4), ("b", 3), ("c", 2)]);
    assert_eq!(
        (c.distinct, c.distinct_exact, c.top_values_error),
        (3, true, 0)
    );

    let c = col(p, "small");
    assert_eq!(
        (c.dtype.as_str(), c.count, c.missing, c.nullable),
        ("int64", 10, 0, false)
    );
    assert_eq!((c.min, c.max), (Some(0.0), Some(9.0)));

    let c = col(p, "blob");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("binary", 5, 5));
    assert!(c.top_values.is_empty() && c.quantile_sketch.is_none());
    assert!(!c.distinct_exact);

    let c = col(p, "ts");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("timestamp", 10, 0));

    // Three rows of ["x", "y"]; null list, empty list and [null] leave a missing slot.
    let c = col(p, "tags.list.element");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("nested", 6, 7));
}

#[test]
fn profiles_a_written_file() {
    let data = write_file(Compression::UNCOMPRESSED);
    let p = profile(&data, usize::MAX).unwrap();
    check(&p);
    // Chunking does not matter.
    assert_eq!(profile(&data, 1).unwrap(), p);
    assert_eq!(profile(&data, 333).unwrap(), p);
    let schema: serde_json::Value = serde_json::from_str(&schema_json(&p)).unwrap();
    assert_eq!(schema["fields"][4]["nullable"], false);
    assert_eq!(schema["fields"][6]["type"], "timestamp");
}

#[test]
fn reads_the_pure_rust_codecs() {
    for codec in [
        Compression::SNAPPY,
        Compression::GZIP(Default::default()),
        Compression::LZ4_RAW,
    ] {
        let data = write_file(codec);
        check(&profile(&data, 4096).unwrap());
    }
}

#[test]
fn not_parquet_is_a_clear_error() {
    for blob in [
        &b"id,name\n1,a\n"[..],
        b"",
        b"PAR1",
        b"PAR1 garbage in the middle PAR1",
    ] {
        let e = profile(blob, 3).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("data/part-0.parquet"), "{}", e.message);
        assert!(
            e.message.contains("not a Parquet file") || e.message.contains("invalid Parquet file"),
            "{}",
            e.message
        );
    }
    // A real file cut short keeps its magic at the start only.
    let data = write_file(Compression::SNAPPY);
    let e = profile(&data[..data.len() / 2], usize::MAX).unwrap_err();
    assert!(e.message.contains("not a Parquet file"), "{}", e.message);
    // Corrupt footer with the magic bytes intact: an error, not a panic.
    let mut bad = data.clone();
    let n = bad.len();
    for b in &mut bad[n - 40..n - 8] {
        *b ^= 0x5a;
    }
    let e = profile(&bad, usize::MAX).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn next_file_mixes_parquet_and_csv() {
    let data = write_file(Compression::SNAPPY);
    let mut pr = Profiler::new(Format::Parquet, "a.parquet");
    pr.push(&data).unwrap();
    pr.next_file(Format::Csv, "b.csv").unwrap();
    pr.push(b"id,name,extra\n100,d,1\n7,a,2\n").unwrap();
    let p = pr.finish().unwrap();
    assert_eq!(p.num_rows, ROWS as u64 + 2);
    let c = col(&p, "id");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("int64", 10, 2));
    assert_eq!(c.max, Some(100.0));
    assert_eq!(
        top(col(&p, "name")),
        [("a", 5), ("b", 3), ("c", 2), ("d", 1)]
    );
    let c = col(&p, "small");
    assert_eq!((c.count, c.missing, c.nullable), (10, 2, true));
    let c = col(&p, "extra");
    assert_eq!((c.count, c.missing), (2, ROWS as u64));
}
