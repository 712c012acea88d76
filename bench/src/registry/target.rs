//! Targets of the figures (from the issue) and their PASS/FAIL verdicts in the table.

use crate::report::Report;

/// A figure's goal, from the issue.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
}

impl Target {
    /// Whether `v` meets the target (NaN never does).
    pub fn met(self, v: f64) -> bool {
        match self {
            Target::AtLeast(t) => v >= t,
            Target::AtMost(t) => v <= t,
        }
    }

    /// `target >= 2000: PASS`.
    pub fn verdict(self, v: f64) -> String {
        let (op, t) = match self {
            Target::AtLeast(t) => (">=", t),
            Target::AtMost(t) => ("<=", t),
        };
        let pf = if self.met(v) { "PASS" } else { "FAIL" };
        format!("target {op} {t}: {pf}")
    }
}

/// Records a figure with a target: the verdict leads the table's detail and is kept for the
/// summary note.
pub fn target_figure(
    report: &mut Report,
    verdicts: &mut Vec<String>,
    name: &str,
    value: f64,
    unit: &str,
    target: Target,
    detail: String,
) {
    let v = target.verdict(value);
    verdicts.push(format!("{name}: {v}"));
    report.figure(name, value, unit, format!("[{v}] {detail}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(Target::AtLeast(2000.0).met(2000.0));
        assert!(!Target::AtLeast(2000.0).met(f64::NAN));
        assert!(Target::AtMost(0.5).met(0.31));
        assert_eq!(
            Target::AtLeast(2000.0).verdict(2500.0),
            "target >= 2000: PASS"
        );
        assert_eq!(Target::AtMost(2.0).verdict(2.5), "target <= 2: FAIL");
    }
}
