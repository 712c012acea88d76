//! The suite's output: a readable table, then one JSON object per figure on its own line from
//! column 0 (`{"figure": "<name>", "value": <number>, "unit": "<unit>"}`), the contract of
//! TESTING.md that scripts read.

use std::fmt::Write as _;
use std::time::Duration;

use crate::procfs::Usage;

/// Bytes in a MiB (what `MB` means in this report, as `VmRSS` counts KiB).
pub const MIB: f64 = 1024.0 * 1024.0;

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    value: f64,
    unit: String,
    detail: String,
    /// Also emitted as a JSON figure.
    figure: bool,
}

/// Figures and notes of one suite run.
#[derive(Debug, Clone)]
pub struct Report {
    title: String,
    machine: String,
    suffix: String,
    rows: Vec<Row>,
    usage: Vec<(String, Usage)>,
    notes: Vec<String>,
}

impl Report {
    /// An empty report. `suffix` (e.g. `_pg`) is appended to every name.
    pub fn new(title: impl Into<String>, machine: impl Into<String>, suffix: &str) -> Report {
        Report {
            title: title.into(),
            machine: machine.into(),
            suffix: suffix.into(),
            rows: Vec::new(),
            usage: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A figure: in the table and as a JSON line.
    pub fn figure(&mut self, name: &str, value: f64, unit: &str, detail: impl Into<String>) {
        self.push(name, value, unit, detail.into(), true);
    }

    /// A table-only value (context for a figure).
    pub fn info(&mut self, name: &str, value: f64, unit: &str, detail: impl Into<String>) {
        self.push(name, value, unit, detail.into(), false);
    }

    fn push(&mut self, name: &str, value: f64, unit: &str, detail: String, figure: bool) {
        let row = Row {
            name: format!("{name}{}", self.suffix),
            value,
            unit: unit.into(),
            detail,
            figure,
        };
        eprintln!("  {}", row_text(&row, 34));
        self.rows.push(row);
    }

    /// Where the time of a section went.
    pub fn usage(&mut self, section: &str, u: Usage) {
        self.usage.push((section.into(), u));
    }

    /// A free-text line under the table.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The table, then the JSON lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(10)
            .max(10);
        let _ = writeln!(out, "== {} ==", self.title);
        let _ = writeln!(out, "machine: {}", self.machine);
        let _ = writeln!(out, "{}", "-".repeat(w + 40));
        for r in &self.rows {
            let _ = writeln!(out, "{}", row_text(r, w));
        }
        if !self.usage.is_empty() {
            let sw = self
                .usage
                .iter()
                .map(|(n, _)| n.len())
                .max()
                .unwrap_or(7)
                .max(7);
            let _ = writeln!(out, "{}", "-".repeat(w + 40));
            let _ = writeln!(
                out,
                "where the time went (CPU seconds during each section, 100% = one core busy; server RSS at its end):"
            );
            let _ = writeln!(
                out,
                "  {:<sw$} {:>9} {:>17} {:>17} {:>17} {:>10}",
                "section", "wall s", "server cpu", "client cpu", "postgres cpu", "rss MB"
            );
            for (name, u) in &self.usage {
                let _ = writeln!(
                    out,
                    "  {:<sw$} {:>9.2} {:>17} {:>17} {:>17} {:>10}",
                    name,
                    u.wall.as_secs_f64(),
                    cpu_cell(u.server_cpu, u.wall),
                    cpu_cell(u.client_cpu, u.wall),
                    cpu_cell(u.db_cpu, u.wall),
                    u.server_rss_end
                        .map(|b| format!("{:.0}", b as f64 / MIB))
                        .unwrap_or_else(|| "-".into()),
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(out, "{}", "-".repeat(w + 40));
        for r in self.rows.iter().filter(|r| r.figure) {
            let _ = writeln!(out, "{}", json_line(&r.name, r.value, &r.unit));
        }
        out
    }

    /// Prints [`Report::render`] on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// One table row.
fn row_text(r: &Row, name_width: usize) -> String {
    format!(
        "{:<name_width$}  {:>14} {:<9} {}",
        r.name,
        human(r.value),
        r.unit,
        r.detail
    )
}

/// `12.34 s (45%)`, or `-` when unknown.
fn cpu_cell(cpu: Option<Duration>, wall: Duration) -> String {
    match cpu {
        Some(c) if !wall.is_zero() => format!(
            "{:.2} ({:.0}%)",
            c.as_secs_f64(),
            100.0 * c.as_secs_f64() / wall.as_secs_f64()
        ),
        _ => "-".into(),
    }
}

/// A number for people: thousands separators for big values, 3 significant decimals else.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 10_000.0 {
        let s = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        };
    }
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `{"figure": "<name>", "value": <number>, "unit": "<unit>"}` (a non-finite value becomes
/// `null`, the only JSON for it).
pub fn json_line(name: &str, value: f64, unit: &str) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "{{\"figure\": {}, \"value\": {}, \"unit\": {}}}",
        q(name),
        json_number(value),
        q(unit)
    )
}

/// A JSON number rounded to 4 decimals (never exponent notation).
fn json_number(v: f64) -> String {
    if !v.is_finite() {
        return "null".into();
    }
    let r = (v * 10_000.0).round() / 10_000.0;
    // Rust's `Display` of f64 never uses exponents: `1e7` prints as `10000000`.
    let s = format!("{r}");
    if s == "-0" { "0".into() } else { s }
}

/// Checks `--only` against the suite's `sections` and starts its report (title with the
/// backend, the machine line, the figure suffix); prints the machine.
pub fn begin(suite: &str, sections: &[&str], opts: &crate::Opts) -> anyhow::Result<Report> {
    for name in &opts.only {
        anyhow::ensure!(
            sections.contains(&name.as_str()),
            "--only {name:?}: the {suite} sections are {}",
            sections.join(", ")
        );
    }
    let machine = crate::procfs::Machine::detect();
    eprintln!("machine: {}", machine.line());
    Ok(Report::new(
        format!(
            "steward-bench {suite} (backend {}{})",
            opts.backend.name(),
            if opts.quick { ", --quick" } else { "" }
        ),
        machine.line(),
        opts.backend.suffix(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_and_keep_the_format() {
        let l = json_line(
            "ingest_stream_points_per_s_pg",
            1_234_567.891_23,
            "points/s",
        );
        assert_eq!(
            l,
            r#"{"figure": "ingest_stream_points_per_s_pg", "value": 1234567.8912, "unit": "points/s"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["unit"], "points/s");
        assert_eq!(
            json_line("x", 1e7, "s"),
            r#"{"figure": "x", "value": 10000000, "unit": "s"}"#
        );
        assert_eq!(
            json_line("x", f64::NAN, "s"),
            r#"{"figure": "x", "value": null, "unit": "s"}"#
        );
        assert_eq!(
            json_line("x", 0.000_01, "ms"),
            r#"{"figure": "x", "value": 0, "unit": "ms"}"#
        );
    }

    #[test]
    fn suffix_applies_to_figures_and_only_figures_are_json() {
        let mut r = Report::new("t", "m", "_pg");
        r.figure("a", 1.0, "ms", "");
        r.info("b", 2.0, "ms", "");
        let out = r.render();
        let json: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
        assert_eq!(
            json,
            vec![r#"{"figure": "a_pg", "value": 1, "unit": "ms"}"#]
        );
        assert!(out.contains("b_pg"));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(1_234_567.0), "1,234,567");
        assert_eq!(human(123.456), "123.5");
        assert_eq!(human(1.23456), "1.235");
    }
}
