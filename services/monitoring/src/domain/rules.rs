//! Alert rules: which series, which condition, how long it must hold; and the state machine
//! that turns evaluations into firing and resolved alerts.

use serde::{Deserialize, Serialize};

/// How a value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    /// value > threshold
    Greater,
    /// value >= threshold
    GreaterOrEqual,
    /// value < threshold
    Less,
    /// value <= threshold
    LessOrEqual,
}

impl Comparator {
    /// Its symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
        }
    }
}

/// Performance metrics a rule may name after `performance.`.
pub const PERFORMANCE_METRICS: [&str; 9] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "mae",
    "rmse",
    "mape",
];

/// Latency metrics a rule may name after `latency.`.
pub const LATENCY_METRICS: [&str; 3] = ["p50_ms", "p95_ms", "p99_ms"];

/// What a metric name denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Share of drifted features of a window.
    DriftShare,
    /// 1 when a window has dataset drift, else 0.
    DatasetDrift,
    /// A feature's drift score.
    Feature(String),
    /// The prediction's drift score.
    Prediction,
    /// A performance metric over the rule's time window.
    Performance(String),
    /// A latency percentile over the rule's time window.
    Latency(String),
    /// Share of failed predictions over the rule's time window.
    ErrorRate,
    /// Mean of a KPI over the rule's time window.
    Kpi(String),
}

impl Metric {
    /// Parses a series name; `features` are the monitor's feature names.
    pub fn parse(s: &str, features: &[String]) -> Result<Self, String> {
        let known = || {
            "expected drift.share, drift.dataset, drift.feature.{f}, drift.prediction, \
             performance.{m}, latency.{p50_ms|p95_ms|p99_ms}, error_rate or kpi.{name}"
                .to_string()
        };
        Ok(match s {
            "drift.share" => Self::DriftShare,
            "drift.dataset" => Self::DatasetDrift,
            "drift.prediction" => Self::Prediction,
            "error_rate" => Self::ErrorRate,
            _ => {
                if let Some(f) = s.strip_prefix("drift.feature.") {
                    if !features.iter().any(|n| n == f) {
                        return Err(format!("{f:?} is not a feature of the monitor"));
                    }
                    Self::Feature(f.to_string())
                } else if let Some(m) = s.strip_prefix("performance.") {
                    if !PERFORMANCE_METRICS.contains(&m) {
                        return Err(format!(
                            "unknown performance metric {m:?} (one of {})",
                            PERFORMANCE_METRICS.join(", ")
                        ));
                    }
                    Self::Performance(m.to_string())
                } else if let Some(m) = s.strip_prefix("latency.") {
                    if !LATENCY_METRICS.contains(&m) {
                        return Err(format!("unknown latency metric {m:?}"));
                    }
                    Self::Latency(m.to_string())
                } else if let Some(k) = s.strip_prefix("kpi.") {
                    if k.is_empty() {
                        return Err("kpi.{name} needs a name".into());
                    }
                    Self::Kpi(k.to_string())
                } else {
                    return Err(known());
                }
            }
        })
    }

    /// True for series evaluated when a window closes (the rest over time ranges).
    pub fn per_window(&self) -> bool {
        matches!(
            self,
            Self::DriftShare | Self::DatasetDrift | Self::Feature(_) | Self::Prediction
        )
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// `{m}` of the monitor.
    pub monitor: String,
    /// `{r}`.
    pub id: String,
    /// Series name.
    pub metric: String,
    /// Comparison.
    pub comparator: Comparator,
    /// Threshold.
    pub threshold: f64,
    /// Time range of each evaluation of time-range series, ms.
    pub window_ms: i64,
    /// How long the condition must hold before firing, ms.
    pub hold_ms: i64,
    /// "warning" or "critical".
    pub severity: String,
    /// Channel ids notified.
    pub channels: Vec<String>,
    /// When the condition started holding (None: it does not).
    pub pending_since: Option<i64>,
    /// ms.
    pub create_time: i64,
}

/// What an evaluation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing new.
    None,
    /// Open an alert.
    Fire,
    /// Resolve the open alert.
    Resolve,
}

impl Rule {
    /// Whether `value` meets the condition (NaN never does).
    pub fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self.comparator {
            Comparator::Greater => value > self.threshold,
            Comparator::GreaterOrEqual => value >= self.threshold,
            Comparator::Less => value < self.threshold,
            Comparator::LessOrEqual => value <= self.threshold,
        }
    }

    /// One evaluation at `now` with `value`, while an alert of this rule is open or not:
    /// updates `pending_since` and says what to do. An alert fires once the condition has held
    /// for `hold_ms` (at once when 0) and resolves at the first evaluation where it does not.
    pub fn step(&mut self, value: f64, now: i64, firing: bool) -> Action {
        if self.holds(value) {
            let since = *self.pending_since.get_or_insert(now);
            if !firing && now - since >= self.hold_ms {
                return Action::Fire;
            }
            Action::None
        } else {
            self.pending_since = None;
            if firing {
                Action::Resolve
            } else {
                Action::None
            }
        }
    }

    /// A sentence for the alert.
    pub fn describe(&self, value: f64) -> String {
        format!(
            "{} = {value:.6} {} {}",
            self.metric,
            self.comparator.symbol(),
            self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hold_ms: i64) -> Rule {
        Rule {
            monitor: "m".into(),
            id: "r".into(),
            metric: "performance.accuracy".into(),
            comparator: Comparator::Less,
            threshold: 0.8,
            window_ms: 60_000,
            hold_ms,
            severity: "critical".into(),
            channels: vec![],
            pending_since: None,
            create_time: 0,
        }
    }

    #[test]
    fn fires_after_holding_and_resolves_once() {
        let mut r = rule(1000);
        assert_eq!(r.step(0.7, 0, false), Action::None);
        assert_eq!(r.step(0.7, 500, false), Action::None);
        assert_eq!(r.step(0.7, 1000, false), Action::Fire);
        // Still holding while firing: deduplicated.
        assert_eq!(r.step(0.6, 2000, true), Action::None);
        assert_eq!(r.step(0.9, 3000, true), Action::Resolve);
        assert_eq!(r.pending_since, None);
        // A blip shorter than the hold never fires.
        assert_eq!(r.step(0.7, 4000, false), Action::None);
        assert_eq!(r.step(0.9, 4500, false), Action::None);
        assert_eq!(r.step(0.7, 5000, false), Action::None);
        assert_eq!(r.pending_since, Some(5000));
    }

    #[test]
    fn nan_never_holds_and_zero_hold_fires_at_once() {
        let mut r = rule(0);
        assert_eq!(r.step(f64::NAN, 0, false), Action::None);
        assert_eq!(r.step(0.1, 1, false), Action::Fire);
    }

    #[test]
    fn metric_names_are_checked() {
        let f = vec!["amount".to_string()];
        assert_eq!(
            Metric::parse("drift.feature.amount", &f),
            Ok(Metric::Feature("amount".into()))
        );
        assert!(Metric::parse("drift.feature.age", &f).is_err());
        assert!(Metric::parse("performance.speed", &f).is_err());
        assert!(!Metric::parse("latency.p99_ms", &f).unwrap().per_window());
        assert!(Metric::parse("kpi.", &f).is_err());
        assert!(Metric::parse("cpu", &f).is_err());
    }
}
