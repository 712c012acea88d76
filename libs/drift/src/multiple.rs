//! Multiple-testing correction across features: Benjamini-Hochberg, as
//! `statsmodels.stats.multitest.multipletests(p, alpha, method="fdr_bh")`.

use crate::{DriftError, Result};

/// Result of [`benjamini_hochberg`], in the input order.
#[derive(Debug, Clone, PartialEq)]
pub struct BhResult {
    /// BH-adjusted p-values (`min_{j >= i} p_(j)·m/j`, capped at 1).
    pub adjusted: Vec<f64>,
    /// Rejections of the step-up procedure at level `alpha`.
    pub reject: Vec<bool>,
}

/// Benjamini-Hochberg FDR adjustment (statsmodels `fdr_bh`). Every p-value must
/// lie in `[0, 1]`, `alpha` in `(0, 1)`. An empty input gives an empty result.
pub fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> Result<BhResult> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(DriftError::InvalidArgument(format!(
            "alpha must be in (0, 1), got {alpha}"
        )));
    }
    if let Some(bad) = p_values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(DriftError::InvalidArgument(format!(
            "p-values must be in [0, 1], got {bad}"
        )));
    }
    let m = p_values.len();
    if m == 0 {
        return Ok(BhResult {
            adjusted: Vec::new(),
            reject: Vec::new(),
        });
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let sorted: Vec<f64> = order.iter().map(|&i| p_values[i]).collect();
    let ecdf: Vec<f64> = (1..=m).map(|i| i as f64 / m as f64).collect();

    let mut reject_sorted: Vec<bool> = sorted
        .iter()
        .zip(&ecdf)
        .map(|(&p, &e)| p <= e * alpha)
        .collect();
    if let Some(last) = reject_sorted.iter().rposition(|&r| r) {
        reject_sorted[..last].iter_mut().for_each(|r| *r = true);
    }

    let mut adjusted_sorted: Vec<f64> = sorted.iter().zip(&ecdf).map(|(&p, &e)| p / e).collect();
    for i in (0..m.saturating_sub(1)).rev() {
        adjusted_sorted[i] = adjusted_sorted[i].min(adjusted_sorted[i + 1]);
    }
    adjusted_sorted.iter_mut().for_each(|p| *p = p.min(1.0));

    let mut adjusted = vec![0.0; m];
    let mut reject = vec![false; m];
    for (rank, &i) in order.iter().enumerate() {
        adjusted[i] = adjusted_sorted[rank];
        reject[i] = reject_sorted[rank];
    }
    Ok(BhResult { adjusted, reject })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        let r = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2], 0.05).unwrap();
        // sorted: 0.01, 0.03, 0.04, 0.2 -> raw 0.04, 0.06, 0.0533, 0.2
        assert!((r.adjusted[0] - 0.04).abs() < 1e-15);
        assert!((r.adjusted[1] - 0.04 * 4.0 / 3.0).abs() < 1e-15);
        assert_eq!(r.reject, vec![true, false, false, false]);
    }

    #[test]
    fn rejects_invalid() {
        assert!(benjamini_hochberg(&[1.5], 0.05).is_err());
        assert!(benjamini_hochberg(&[f64::NAN], 0.05).is_err());
        assert!(benjamini_hochberg(&[0.5], 0.0).is_err());
        assert!(benjamini_hochberg(&[], 0.05).unwrap().adjusted.is_empty());
    }
}
