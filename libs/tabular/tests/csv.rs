//! CSV / TSV profiling through the public API.

use proptest::prelude::*;
use steward_common::{Error, ErrorKind};
use steward_drift::sketch::{QuantileSketch, worst_case_epsilon};
use steward_tabular::{
    ColumnProfile, FileProfile, Format, NUM_BINS, Profiler, QUANTILES, SKETCH_K, merge, schema_json,
};

const PATH: &str = "data/train.csv";

fn profile_as(format: Format, data: &[u8], chunk: usize) -> Result<FileProfile, Error> {
    let mut p = Profiler::new(format, PATH);
    for c in data.chunks(chunk.max(1)) {
        p.push(c)?;
    }
    p.finish()
}

fn profile(data: &str) -> FileProfile {
    profile_as(Format::Csv, data.as_bytes(), usize::MAX).expect("profile")
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

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn infers_types() {
    let p = profile(
        "i,f,b,s,mixed,allmissing\n\
         1,1.5,true,x,1,\n\
         -3,2,False,y,2,NA\n\
         \" 7 \",1e3,TRUE,x,2,\n\
         12,.25,false,7,x,null\n",
    );
    assert_eq!(p.num_rows, 4);
    let dtypes: Vec<&str> = p.columns.iter().map(|c| c.dtype.as_str()).collect();
    assert_eq!(
        dtypes,
        ["int64", "float64", "bool", "string", "string", "float64"]
    );
    let i = col(&p, "i");
    assert_eq!((i.count, i.missing), (4, 0));
    assert_eq!((i.min, i.max), (Some(-3.0), Some(12.0)));
    assert!(i.top_values.is_empty());
    assert_eq!((i.distinct, i.distinct_exact), (4, true));

    let b = col(&p, "b");
    assert_eq!(top(b), [("false", 2), ("true", 2)]);
    assert_eq!((b.distinct, b.distinct_exact), (2, true));
    assert!(b.min.is_none() && b.quantile_sketch.is_none());

    // A column of numbers that turns out to hold a string: numeric statistics
    // are dropped, the categories of the numbers seen before are still exact.
    let m = col(&p, "mixed");
    assert_eq!(top(m), [("2", 2), ("1", 1), ("x", 1)]);
    assert_eq!(m.top_values_error, 0);
    assert!(m.mean.is_none() && m.quantiles.is_empty() && m.bin_counts.is_empty());
    assert_eq!((m.count, m.distinct), (4, 3));

    let s = col(&p, "s");
    assert_eq!(top(s), [("x", 2), ("7", 1), ("y", 1)]);

    let e = col(&p, "allmissing");
    assert_eq!((e.count, e.missing), (0, 4));
    assert!(e.mean.is_none() && e.quantiles.is_empty());
}

#[test]
fn long_numeric_prefix_then_string() {
    let mut csv = String::from("code\n");
    for i in 0..5000 {
        csv.push_str(&format!("{}\n", i % 50));
    }
    csv.push_str("A7\n");
    let p = profile(&csv);
    let c = col(&p, "code");
    assert_eq!(c.dtype, "string");
    assert_eq!(c.count, 5001);
    assert_eq!(c.top_values.len(), 20);
    assert!(c.top_values.iter().all(|(_, n)| *n == 100));
    assert_eq!(c.top_values[0].0, "0");
    assert_eq!(
        (c.distinct, c.distinct_exact, c.top_values_error),
        (51, true, 0)
    );
}

#[test]
fn missing_markers() {
    let p = profile(
        "x,s\n1,a\n,b\nNA,NULL\nnan,None\nN/A,none\n#N/A,<NA>\n-NaN,null\n2,\"\"\ninf,NA \n",
    );
    let x = col(&p, "x");
    assert_eq!(x.dtype, "float64");
    // 6 markers plus `inf`, a number that is not finite.
    assert_eq!((x.count, x.missing), (2, 7));
    let s = col(&p, "s");
    assert_eq!(s.dtype, "string");
    // "NA " (with a space) is a value: markers are not trimmed.
    assert_eq!((s.count, s.missing), (3, 6));
    assert_eq!(top(s), [("NA ", 1), ("a", 1), ("b", 1)]);
    let sketch = QuantileSketch::from_bytes(x.quantile_sketch.as_ref().unwrap()).unwrap();
    assert_eq!((sketch.count(), sketch.missing()), (2, 7));
}

#[test]
fn moments_match_hand_computation() {
    // 1, 2, 3, 4, 10: mean 4, squared deviations 9 + 4 + 1 + 0 + 36 = 50,
    // sample variance 50 / 4 = 12.5.
    let p = profile("v,w\n1,0.1\n2,0.2\n3,0.3\n4,\n10,0.4\n");
    let v = col(&p, "v");
    assert_eq!(v.dtype, "int64");
    assert_eq!((v.min, v.max), (Some(1.0), Some(10.0)));
    assert!(close(v.mean.unwrap(), 4.0));
    assert!(close(v.stddev.unwrap(), 12.5f64.sqrt()));
    // Few distinct values: quantiles are exact lower quantiles.
    let q: Vec<f64> = v.quantiles.iter().map(|p| p.1).collect();
    assert_eq!(q, [1.0, 1.0, 2.0, 3.0, 4.0, 10.0, 10.0]);
    assert_eq!(
        v.quantiles.iter().map(|p| p.0).collect::<Vec<_>>(),
        QUANTILES
    );
    assert_eq!(v.bin_edges.len(), NUM_BINS + 1);
    assert_eq!((v.bin_edges[0], v.bin_edges[NUM_BINS]), (1.0, 10.0));
    assert_eq!(v.bin_counts.iter().sum::<u64>(), 5);
    // Bins of width 0.45: 1 -> 0, 2 -> 2, 3 -> 4, 4 -> 6, 10 -> last.
    assert_eq!(v.bin_counts[0], 1);
    assert_eq!(v.bin_counts[2], 1);
    assert_eq!(v.bin_counts[4], 1);
    assert_eq!(v.bin_counts[6], 1);
    assert_eq!(v.bin_counts[NUM_BINS - 1], 1);

    let w = col(&p, "w");
    assert_eq!((w.count, w.missing), (4, 1));
    assert!(close(w.mean.unwrap(), 0.25));
    // Deviations -0.15, -0.05, 0.05, 0.15: sum of squares 0.05, / 3.
    assert!(close(w.stddev.unwrap(), (0.05f64 / 3.0).sqrt()));

    let one = profile("v\n5\n");
    let v = col(&one, "v");
    assert_eq!((v.mean, v.stddev), (Some(5.0), None));
    // min == max: numpy's [min - 0.5, max + 0.5] range.
    assert_eq!((v.bin_edges[0], v.bin_edges[NUM_BINS]), (4.5, 5.5));
    assert_eq!(v.bin_counts.iter().sum::<u64>(), 1);
}

/// Deterministic pseudo-random numbers (64-bit LCG, top bits).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn quantiles_within_certified_bound_on_100k_rows() {
    let n = 100_000usize;
    let mut seed = 42;
    let mut csv = String::with_capacity(n * 12);
    csv.push_str("x\n");
    let mut exact = Vec::with_capacity(n);
    for _ in 0..n {
        // A skewed distribution: squares of uniforms, 4 decimals.
        let u = lcg(&mut seed);
        let text = format!("{:.4}", 1000.0 * u * u);
        exact.push(text.parse::<f64>().unwrap());
        csv.push_str(&text);
        csv.push('\n');
    }
    exact.sort_by(f64::total_cmp);
    let p = profile_as(Format::Csv, csv.as_bytes(), 1 << 16).unwrap();
    let x = col(&p, "x");
    assert_eq!(x.count, n as u64);
    let sketch = QuantileSketch::from_bytes(x.quantile_sketch.as_ref().unwrap()).unwrap();
    let e = sketch.rank_error();
    assert!(e > 0, "100k distinct values cannot be exact");
    assert!(
        e as f64 / n as f64 <= worst_case_epsilon(SKETCH_K, n as u64),
        "certificate {e} above the worst case"
    );
    for &(q, v) in &x.quantiles {
        let target = (q * n as f64).ceil() as i64;
        let below = exact.partition_point(|&t| t < v) as i64;
        let at_most = exact.partition_point(|&t| t <= v) as i64;
        assert!(at_most > below, "quantile {q} = {v} is not a data value");
        let e = e as i64;
        assert!(
            below + 1 - e <= target && target <= at_most + e,
            "q = {q}: value {v} has ranks {}..={at_most}, target {target}, error {e}",
            below + 1
        );
    }
    assert_eq!(x.bin_counts.iter().sum::<u64>(), n as u64);
    for (i, &c) in x.bin_counts.iter().enumerate() {
        let lo = x.bin_edges[i];
        let hi = x.bin_edges[i + 1];
        let truth = exact
            .iter()
            .filter(|&&t| t >= lo && (t < hi || (i == NUM_BINS - 1 && t <= hi)))
            .count() as i64;
        assert!(
            (c as i64 - truth).abs() <= 2 * e as i64,
            "bin {i}: {c} vs exact {truth}"
        );
    }
    let mean = exact.iter().sum::<f64>() / n as f64;
    assert!((x.mean.unwrap() - mean).abs() < 1e-9 * mean);
    assert_eq!(x.min, exact.first().copied());
    assert_eq!(x.max, exact.last().copied());
    let mut distinct = exact.clone();
    distinct.dedup();
    let d = distinct.len() as f64;
    assert!(!x.distinct_exact);
    assert!(
        (x.distinct as f64 - d).abs() < 0.03 * d,
        "{} vs {d}",
        x.distinct
    );
}

#[test]
fn top_values_exact_for_small_cardinality() {
    let mut csv = String::from("color,n\n");
    let counts = [
        ("red", 50),
        ("green", 30),
        ("blue", 30),
        ("black", 7),
        ("white", 1),
    ];
    for (i, (name, c)) in counts.iter().enumerate() {
        for _ in 0..*c {
            csv.push_str(&format!("{name},{i}\n"));
        }
    }
    let p = profile(&csv);
    let c = col(&p, "color");
    assert_eq!(
        top(c),
        [
            ("red", 50),
            ("blue", 30),
            ("green", 30),
            ("black", 7),
            ("white", 1)
        ]
    );
    assert_eq!(
        (c.top_values_error, c.distinct, c.distinct_exact),
        (0, 5, true)
    );
}

#[test]
fn high_cardinality_is_bounded_and_estimated() {
    let mut csv = String::from("id\n");
    for i in 0..30_000 {
        csv.push_str(&format!("user-{i}\n"));
        if i % 3 == 0 {
            csv.push_str("common\n");
        }
    }
    let p = profile(&csv);
    let c = col(&p, "id");
    assert_eq!(c.count, 40_000);
    assert!(!c.distinct_exact);
    assert!(
        (c.distinct as f64 - 30_001.0).abs() < 0.03 * 30_001.0,
        "{}",
        c.distinct
    );
    let (v, n) = &c.top_values[0];
    assert_eq!(v, "common");
    assert!(*n <= 10_000 && 10_000 <= n + c.top_values_error);
    assert!(c.top_values_error <= 40_000 / 10_001);
}

#[test]
fn quoted_fields_with_commas_newlines_and_quotes() {
    let data = "name,notes,n\n\
                \"Smith, J\",\"line1\nline2\",1\n\
                \"O\"\"Brien\",plain,2\n\
                \"Smith, J\",\"\",3\n";
    let p = profile(data);
    assert_eq!(p.num_rows, 3);
    assert_eq!(top(col(&p, "name")), [("Smith, J", 2), ("O\"Brien", 1)]);
    let notes = col(&p, "notes");
    assert_eq!((notes.count, notes.missing), (2, 1));
    assert_eq!(top(notes), [("line1\nline2", 1), ("plain", 1)]);
    assert_eq!(col(&p, "n").dtype, "int64");
}

#[test]
fn ragged_row_names_file_and_line() {
    let data = "a,b\n1,\"two\nlines\"\n3\n4,5\n";
    for chunk in [1, 5, usize::MAX] {
        let e = profile_as(Format::Csv, data.as_bytes(), chunk).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains(PATH), "{}", e.message);
        assert!(e.message.contains("line 4"), "{}", e.message);
        assert!(e.message.contains("expected 2 fields"), "{}", e.message);
        assert_eq!(e.violations[0].field, PATH);
    }
    let long = profile_as(Format::Csv, b"a,b\n1,2,3", usize::MAX).unwrap_err();
    assert!(long.message.contains("line 2"), "{}", long.message);
}

#[test]
fn invalid_utf8_names_file_line_and_column() {
    let e = profile_as(Format::Csv, b"a,b\n1,ok\n2,caf\xe9\n", 3).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains(PATH), "{}", e.message);
    assert!(e.message.contains("line 3"), "{}", e.message);
    assert!(e.message.contains("\"b\""), "{}", e.message);
    let header = profile_as(Format::Csv, b"a,\xff\n1,2\n", usize::MAX).unwrap_err();
    assert!(header.message.contains("line 1"), "{}", header.message);
    // The profiler stays failed.
    let mut p = Profiler::new(Format::Csv, PATH);
    assert!(p.push(b"a\n\xff\n").is_err());
    assert!(p.push(b"1\n").is_err());
    assert!(p.finish().is_err());
}

#[test]
fn header_required_and_header_only() {
    let e = profile_as(Format::Csv, b"", usize::MAX).unwrap_err();
    assert!(e.message.contains("header"), "{}", e.message);
    let p = profile("a,,a\n");
    assert_eq!(p.num_rows, 0);
    let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "Unnamed: 1", "a.1"]);
    assert!(p.columns.iter().all(|c| c.count == 0 && c.missing == 0));
}

#[test]
fn bom_crlf_and_chunking() {
    let data = "\u{feff}id,label\r\n1,x\r\n2,y\r\n\r\n3,x";
    let whole = profile(data);
    assert_eq!(whole.num_rows, 3);
    assert_eq!(whole.columns[0].name, "id");
    assert_eq!(top(col(&whole, "label")), [("x", 2), ("y", 1)]);
    for chunk in 1..=4 {
        assert_eq!(
            profile_as(Format::Csv, data.as_bytes(), chunk).unwrap(),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn tsv_uses_tabs() {
    let p = profile_as(Format::Tsv, b"a\tb c\n1\tx,y\n2\tz\n", usize::MAX).unwrap();
    assert_eq!(p.columns[1].name, "b c");
    assert_eq!(col(&p, "a").dtype, "int64");
    assert_eq!(top(col(&p, "b c")), [("x,y", 1), ("z", 1)]);
}

#[test]
fn next_file_matches_columns_by_name() {
    let mut pr = Profiler::new(Format::Csv, "part-0.csv");
    pr.push(b"a,b\n1,x\n2,y\n").unwrap();
    pr.next_file(Format::Csv, "part-1.csv").unwrap();
    pr.push(b"b,c\nx,1.5\n").unwrap();
    let p = pr.finish().unwrap();
    assert_eq!(p.num_rows, 3);
    let a = col(&p, "a");
    assert_eq!((a.dtype.as_str(), a.count, a.missing), ("int64", 2, 1));
    let b = col(&p, "b");
    assert_eq!(top(b), [("x", 2), ("y", 1)]);
    let c = col(&p, "c");
    assert_eq!((c.dtype.as_str(), c.count, c.missing), ("float64", 1, 2));
}

#[test]
fn merge_matches_one_profiler() {
    let parts = [
        "id,score,city\n1,0.5,Oslo\n2,1.5,Rome\n3,,Oslo\n",
        "id,score,city\n4,2.5,Rome\n5,3.5,Lima\n",
        "id,score\n6,10\n",
    ];
    let merged = merge(parts.iter().map(|d| profile(d)).collect());
    let mut pr = Profiler::new(Format::Csv, "p0.csv");
    for (i, d) in parts.iter().enumerate() {
        if i > 0 {
            pr.next_file(Format::Csv, &format!("p{i}.csv")).unwrap();
        }
        pr.push(d.as_bytes()).unwrap();
    }
    let single = pr.finish().unwrap();
    assert_eq!(merged.num_rows, 6);
    assert_eq!(merged.num_rows, single.num_rows);
    for (m, s) in merged.columns.iter().zip(&single.columns) {
        assert_eq!(m.name, s.name);
        assert_eq!(m.dtype, s.dtype);
        assert_eq!(
            (m.count, m.missing, m.nullable),
            (s.count, s.missing, s.nullable)
        );
        assert_eq!((m.min, m.max), (s.min, s.max));
        assert_eq!(m.mean.is_some(), s.mean.is_some());
        if let (Some(a), Some(b)) = (m.mean, s.mean) {
            assert!(close(a, b));
            assert!(close(m.stddev.unwrap(), s.stddev.unwrap()));
        }
        assert_eq!(m.quantiles, s.quantiles);
        assert_eq!(m.bin_counts, s.bin_counts);
        assert_eq!(m.top_values, s.top_values);
        assert_eq!(
            (m.distinct, m.distinct_exact),
            (s.distinct, s.distinct_exact)
        );
    }
    assert_eq!(col(&merged, "score").dtype, "float64");
    assert_eq!(
        top(col(&merged, "city")),
        [("Oslo", 2), ("Rome", 2), ("Lima", 1)]
    );
}

#[test]
fn merge_widens_types() {
    let ints = profile("v\n1\n2\n");
    let strings = profile("v\nx\nx\ny\n");
    let empty = profile("v\n\n");
    let m = merge(vec![ints.clone(), strings, empty.clone()]);
    let v = &m.columns[0];
    assert_eq!(v.dtype, "string");
    assert_eq!((v.count, v.missing), (5, 0));
    assert_eq!(top(v), [("x", 2), ("y", 1)]);
    // The numbers' categories are unknown: their count is in the error bound.
    assert!(v.top_values_error >= 2);
    assert!(v.mean.is_none());
    // An all-missing part does not turn int64 into float64.
    let m = merge(vec![ints, profile("v\nNA\n")]);
    assert_eq!(m.columns[0].dtype, "int64");
    assert_eq!((m.columns[0].count, m.columns[0].missing), (2, 1));
    assert_eq!(merge(vec![empty]).columns[0].dtype, "float64");
}

#[test]
fn schema_as_json() {
    let p = profile("age,\"na\"\"me\",ok\n1,a,true\n");
    let json: serde_json::Value = serde_json::from_str(&schema_json(&p)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"fields": [
            {"name": "age", "type": "int64", "nullable": true},
            {"name": "na\"me", "type": "string", "nullable": true},
            {"name": "ok", "type": "bool", "nullable": true},
        ]})
    );
}

/// A numeric-heavy CSV profiled in 64 KiB chunks; not timed (it prints the
/// throughput, meaningful only in a release build).
#[test]
fn numeric_heavy_csv_runs() {
    let rows = 20_000;
    let mut csv = String::from("a,b,c,d,e,f,g,h\n");
    let mut seed = 7;
    for i in 0..rows {
        csv.push_str(&format!(
            "{i},{:.6},{:.3},{},{:.2},{},{:.5},{}\n",
            lcg(&mut seed),
            lcg(&mut seed) * 1e4,
            i % 17,
            lcg(&mut seed) - 0.5,
            (lcg(&mut seed) * 1e6) as u64,
            lcg(&mut seed) * 3.0,
            i % 2,
        ));
    }
    let start = std::time::Instant::now();
    let p = profile_as(Format::Csv, csv.as_bytes(), 1 << 16).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "profiled {:.1} MB in {secs:.3} s: {:.0} MB/s",
        csv.len() as f64 / 1e6,
        csv.len() as f64 / 1e6 / secs
    );
    assert_eq!(p.num_rows, rows as u64);
    assert!(p.columns.iter().all(|c| c.count == rows as u64));
    assert!(
        p.columns
            .iter()
            .all(|c| c.dtype == "int64" || c.dtype == "float64")
    );
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1000i64..1000).prop_map(|v| v.to_string()),
        (-1e6f64..1e6).prop_map(|v| format!("{v:.3}")),
        Just(String::new()),
        Just("NA".to_string()),
        Just("true".to_string()),
        "[a-c]{1,3}",
        Just("a,b".to_string()),
        Just("two\nlines".to_string()),
        Just("say \"hi\"".to_string()),
        Just("é ü 漢".to_string()),
    ]
}

fn quote(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn chunking_does_not_change_the_profile(
        rows in prop::collection::vec(prop::collection::vec(cell(), 3), 0..25),
        crlf in any::<bool>(),
        trailing_newline in any::<bool>(),
        chunk in 2usize..64,
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut csv = format!("a,b,c{eol}");
        for (i, r) in rows.iter().enumerate() {
            let line: Vec<String> = r.iter().map(|v| quote(v)).collect();
            csv.push_str(&line.join(","));
            if trailing_newline || i + 1 < rows.len() {
                csv.push_str(eol);
            }
        }
        let whole = profile_as(Format::Csv, csv.as_bytes(), usize::MAX).unwrap();
        prop_assert_eq!(whole.num_rows, rows.len() as u64);
        for c in [1, 7, chunk] {
            let p = profile_as(Format::Csv, csv.as_bytes(), c).unwrap();
            prop_assert_eq!(&p, &whole);
        }
    }
}
