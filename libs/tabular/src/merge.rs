//! Merging finished profiles and the schema as JSON.

use std::collections::HashMap;
use std::fmt::Write as _;

use steward_drift::sketch::QuantileSketch;

use crate::column::{Seen, fill_numeric};
use crate::{ColumnProfile, FileProfile, SKETCH_K, TOP_VALUES};

/// Merges the profiles of several files of one version (for example CSV part
/// files) into the profile of all their rows.
///
/// Columns are matched by name, in order of first appearance; a file without a
/// column counts its rows as missing there. Types widen: int64 + float64 is
/// float64, any other mix is string; a part without values (count 0) does not
/// constrain the type.
///
/// * Exact: `num_rows`, `count`, `missing`, `min`, `max`; `mean` / `stddev` up
///   to floating-point rounding (Chan's parallel update).
/// * Quantiles and histogram: from the merged quantile sketches
///   (`steward_drift` sketches are mergeable; the certified rank errors add up).
/// * Top values: each part only lists its top values, so a value may be missing
///   from a part's list. The merged counts are the sums of the listed counts
///   (lower bounds) and `top_values_error` bounds the undercount: it adds, per
///   part, the part's error plus, when the part's list is not complete, its
///   last listed count (a part with no list, such as a numeric part of a
///   column that widened to string, adds its whole count).
/// * Distinct: exact when every part listed all its values (then their union is
///   counted); otherwise the largest part's count, a lower bound
///   (`distinct_exact` false).
///
/// For exact top values and distinct counts over several files, profile them
/// through one [`Profiler`](crate::Profiler) with
/// [`next_file`](crate::Profiler::next_file) instead.
pub fn merge(profiles: Vec<FileProfile>) -> FileProfile {
    let num_rows: u64 = profiles.iter().map(|p| p.num_rows).sum();
    let mut order: Vec<&str> = Vec::new();
    let mut parts: HashMap<&str, Vec<&ColumnProfile>> = HashMap::new();
    let mut rows_with: HashMap<&str, u64> = HashMap::new();
    for p in &profiles {
        let mut names_here: Vec<&str> = Vec::with_capacity(p.columns.len());
        for c in &p.columns {
            let entry = parts.entry(c.name.as_str()).or_insert_with(|| {
                order.push(c.name.as_str());
                Vec::new()
            });
            entry.push(c);
            names_here.push(c.name.as_str());
        }
        names_here.sort_unstable();
        names_here.dedup();
        for n in names_here {
            *rows_with.entry(n).or_default() += p.num_rows;
        }
    }
    let columns = order
        .iter()
        .map(|name| {
            let rows_without = num_rows.saturating_sub(rows_with.get(name).copied().unwrap_or(0));
            merge_column(name, &parts[name], rows_without)
        })
        .collect();
    FileProfile { num_rows, columns }
}

fn merge_column(name: &str, parts: &[&ColumnProfile], rows_without: u64) -> ColumnProfile {
    let with_values: Vec<&ColumnProfile> = parts.iter().copied().filter(|p| p.count > 0).collect();
    let typed = if with_values.is_empty() {
        parts
    } else {
        &with_values[..]
    };
    let dtype = typed
        .iter()
        .map(|p| Seen::of_dtype(&p.dtype))
        .fold(Seen::default(), Seen::join)
        .dtype();
    let mut out = ColumnProfile {
        name: name.to_string(),
        dtype: dtype.to_string(),
        nullable: rows_without > 0 || parts.iter().any(|p| p.nullable),
        count: parts.iter().map(|p| p.count).sum(),
        missing: parts.iter().map(|p| p.missing).sum::<u64>() + rows_without,
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
    if let [only] = with_values[..] {
        // One part holds every value: its statistics are the column's.
        out.top_values = only.top_values.clone();
        out.top_values_error = only.top_values_error;
        out.distinct = only.distinct;
        out.distinct_exact = only.distinct_exact;
    }
    match dtype {
        "int64" | "float64" => merge_numeric(&mut out, parts, with_values.len()),
        "string" | "bool" if with_values.len() > 1 => merge_top(&mut out, &with_values),
        _ => {}
    }
    out
}

fn merge_numeric(out: &mut ColumnProfile, parts: &[&ColumnProfile], parts_with_values: usize) {
    let Ok(mut sketch) = QuantileSketch::new(SKETCH_K) else {
        return;
    };
    for p in parts {
        let Some(bytes) = &p.quantile_sketch else {
            if p.count > 0 {
                // Values without a sketch cannot be merged: no numeric statistics.
                return;
            }
            continue;
        };
        let merged = QuantileSketch::from_bytes(bytes).and_then(|s| sketch.merge(&s));
        if merged.is_err() {
            return;
        }
    }
    let missing = out.missing.saturating_sub(sketch.missing());
    sketch.insert_missing(missing);
    fill_numeric(out, &sketch);
    if parts_with_values > 1 {
        (out.distinct, out.distinct_exact) = match sketch.distinct_values() {
            Some(t) => (t.len() as u64, true),
            None => (parts.iter().map(|p| p.distinct).max().unwrap_or(0), false),
        };
    }
}

fn merge_top(out: &mut ColumnProfile, parts: &[&ColumnProfile]) {
    let mut sums: HashMap<&str, u64> = HashMap::new();
    let mut error = 0u64;
    let mut all_complete = true;
    for p in parts {
        let categorical = p.dtype == "string" || p.dtype == "bool";
        for (v, c) in &p.top_values {
            *sums.entry(v.as_str()).or_default() += c;
        }
        let complete = categorical && p.distinct_exact && p.distinct as usize <= p.top_values.len();
        all_complete &= complete;
        error += if !categorical {
            p.count
        } else if complete {
            p.top_values_error
        } else {
            match p.top_values.last() {
                Some((_, last)) => last + p.top_values_error,
                None => p.count,
            }
        };
    }
    if all_complete {
        out.distinct = sums.len() as u64;
        out.distinct_exact = true;
    } else {
        out.distinct = parts.iter().map(|p| p.distinct).max().unwrap_or(0);
        out.distinct_exact = false;
    }
    let mut top: Vec<(&str, u64)> = sums.into_iter().collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(TOP_VALUES);
    out.top_values = top.into_iter().map(|(v, c)| (v.to_string(), c)).collect();
    out.top_values_error = error;
}

/// The schema as JSON text:
/// `{"fields":[{"name":"age","type":"int64","nullable":true}, ...]}`.
pub fn schema_json(p: &FileProfile) -> String {
    let mut s = String::from("{\"fields\":[");
    for (i, c) in p.columns.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"name\":");
        json_string(&mut s, &c.name);
        s.push_str(",\"type\":");
        json_string(&mut s, &c.dtype);
        let _ = write!(s, ",\"nullable\":{}}}", c.nullable);
    }
    s.push_str("]}");
    s
}

fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for ch in v.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
