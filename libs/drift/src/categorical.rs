//! Categorical comparisons: chi-square goodness of fit, Evidently's two-proportion
//! z-test, L-infinity distance, and new-category detection.
//!
//! Data are category counts. The same functions serve numeric features with few
//! distinct values (Evidently compares those value by value); see
//! [`align_sorted_values`].

use std::collections::BTreeMap;

use crate::special::{chi2_sf, normal_two_sided_p};
use crate::{DriftError, Result, Side, check_sorted};

/// Category counts keyed by label (categories with a zero count are ignored).
pub type Counts = BTreeMap<String, u64>;

/// Counts each label of an iterator, e.g. `count_labels(["a", "b", "a"])`.
pub fn count_labels<I, S>(labels: I) -> Counts
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut counts = Counts::new();
    for label in labels {
        *counts.entry(label.into()).or_insert(0) += 1;
    }
    counts
}

/// Reference and current counts aligned over the union of the categories present
/// in either sample, keys in ascending order.
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned<K> {
    /// Category keys, ascending and unique.
    pub keys: Vec<K>,
    /// Reference count per key (0 when only the current sample has it).
    pub reference: Vec<u64>,
    /// Current count per key (0 when only the reference sample has it).
    pub current: Vec<u64>,
}

impl<K> Aligned<K> {
    /// Total reference rows.
    pub fn reference_total(&self) -> u64 {
        self.reference.iter().sum()
    }

    /// Total current rows.
    pub fn current_total(&self) -> u64 {
        self.current.iter().sum()
    }

    /// Keys present in the current sample but never seen in the reference: a
    /// data-quality finding, reported separately from the drift tests.
    pub fn new_categories(&self) -> Vec<&K> {
        self.keys
            .iter()
            .zip(self.reference.iter().zip(&self.current))
            .filter(|(_, (r, c))| **r == 0 && **c > 0)
            .map(|(k, _)| k)
            .collect()
    }

    /// Number of distinct categories in the union.
    pub fn n_unique(&self) -> usize {
        self.keys.len()
    }

    fn check_non_empty(&self) -> Result<()> {
        if self.reference_total() == 0 {
            return Err(DriftError::EmptySample(Side::Reference));
        }
        if self.current_total() == 0 {
            return Err(DriftError::EmptySample(Side::Current));
        }
        Ok(())
    }
}

/// Aligns two count maps over the union of their present (non-zero) categories.
pub fn align_counts<K: Ord + Clone>(
    reference: &BTreeMap<K, u64>,
    current: &BTreeMap<K, u64>,
) -> Aligned<K> {
    let mut merged: BTreeMap<&K, (u64, u64)> = BTreeMap::new();
    for (k, &c) in reference.iter().filter(|(_, c)| **c > 0) {
        merged.entry(k).or_default().0 = c;
    }
    for (k, &c) in current.iter().filter(|(_, c)| **c > 0) {
        merged.entry(k).or_default().1 = c;
    }
    let mut out = Aligned {
        keys: Vec::with_capacity(merged.len()),
        reference: Vec::with_capacity(merged.len()),
        current: Vec::with_capacity(merged.len()),
    };
    for (k, (r, c)) in merged {
        out.keys.push(k.clone());
        out.reference.push(r);
        out.current.push(c);
    }
    out
}

/// Aligns two sorted numeric samples value by value (pandas `value_counts` over
/// the union), for numeric features treated as categories.
pub fn align_sorted_values(reference: &[f64], current: &[f64]) -> Result<Aligned<f64>> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    let mut out = Aligned {
        keys: Vec::new(),
        reference: Vec::new(),
        current: Vec::new(),
    };
    let (mut i, mut j) = (0usize, 0usize);
    while i < reference.len() || j < current.len() {
        let v = match (reference.get(i), current.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let (i0, j0) = (i, j);
        while i < reference.len() && reference[i] == v {
            i += 1;
        }
        while j < current.len() && current[j] == v {
            j += 1;
        }
        out.keys.push(v);
        out.reference.push((i - i0) as u64);
        out.current.push((j - j0) as u64);
    }
    Ok(out)
}

/// Result of [`chi_square`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    /// Pearson's statistic `Σ (observed - expected)² / expected`.
    pub statistic: f64,
    /// Degrees of freedom: number of reference categories minus one.
    pub dof: u64,
    /// `chi2.sf(statistic, dof)`; 1 when `dof = 0` (a single reference category
    /// leaves nothing to test; scipy would return NaN).
    pub p_value: f64,
    /// Current rows that fall into reference categories (the test's sample size).
    pub compared_rows: u64,
    /// Current rows in categories the reference never saw (excluded from the test).
    pub new_category_rows: u64,
    /// Number of such new categories.
    pub new_categories: usize,
}

/// Chi-square goodness-of-fit test of the current counts against the reference
/// shares (`scipy.stats.chisquare(f_obs, f_exp)`).
///
/// Decision (documented deviation from Evidently's `chisquare`, which builds the
/// expected counts over the union of categories and therefore fails as soon as the
/// current window holds a category the reference never saw):
/// * the test runs over the **reference categories** only;
/// * `expected[c] = reference_share[c] · compared_rows`, where `compared_rows` is the
///   number of current rows that fall into reference categories, so observed and
///   expected totals agree;
/// * current rows in new categories are not part of the test: they are reported in
///   [`ChiSquare::new_category_rows`] / [`Aligned::new_categories`] as a data-quality
///   finding.
///
/// Without new categories this equals Evidently's `chisquare` stat test.
/// Returns [`DriftError::NoComparableRows`] when every current row is new.
pub fn chi_square<K>(aligned: &Aligned<K>) -> Result<ChiSquare> {
    aligned.check_non_empty()?;
    let ref_total = aligned.reference_total();
    let mut compared = 0u64;
    let mut new_rows = 0u64;
    let mut new_categories = 0usize;
    let mut k = 0u64;
    for (&r, &c) in aligned.reference.iter().zip(&aligned.current) {
        if r > 0 {
            compared += c;
            k += 1;
        } else if c > 0 {
            new_rows += c;
            new_categories += 1;
        }
    }
    if compared == 0 {
        return Err(DriftError::NoComparableRows);
    }
    let (ref_total_f, compared_f) = (ref_total as f64, compared as f64);
    let statistic: f64 = aligned
        .reference
        .iter()
        .zip(&aligned.current)
        .filter(|(r, _)| **r > 0)
        .map(|(&r, &c)| {
            let expected = r as f64 / ref_total_f * compared_f;
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum();
    let dof = k - 1;
    let p_value = if dof == 0 {
        1.0
    } else {
        chi2_sf(dof as f64, statistic)
    };
    Ok(ChiSquare {
        statistic,
        dof,
        p_value,
        compared_rows: compared,
        new_category_rows: new_rows,
        new_categories,
    })
}

/// Result of [`z_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    /// `(p₁ - p₂) / sqrt(P(1-P)(1/n₁ + 1/n₂))` with `p` the share of rows that are
    /// *not* the smallest category; 0 in the degenerate case.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Evidently's two-proportion z-test (`z_stat_test`): rows equal to the smallest
/// category of the union are coded 0, all others 1 (so more than two categories
/// are lumped), then `proportions_diff_z_stat_ind` and a two-sided p-value.
/// When both samples hold one and the same single value the p-value is 1, as in
/// Evidently.
///
/// The p-value is `erfc(|z|/√2)`, mathematically Evidently's `2·(1 - Φ(|z|))`;
/// the two differ by at most 2.2e-16 absolute, but this form keeps its relative
/// accuracy for tiny p-values where Evidently's rounds to 0.
pub fn z_test<K>(aligned: &Aligned<K>) -> Result<ZTest> {
    aligned.check_non_empty()?;
    let present = |v: &[u64]| v.iter().filter(|c| **c > 0).count();
    let single_same = present(&aligned.reference) == 1
        && present(&aligned.current) == 1
        && aligned
            .reference
            .iter()
            .zip(&aligned.current)
            .any(|(r, c)| *r > 0 && *c > 0);
    if single_same {
        return Ok(ZTest {
            statistic: 0.0,
            p_value: 1.0,
        });
    }
    let n1 = aligned.reference_total() as f64;
    let n2 = aligned.current_total() as f64;
    // keys are ascending: index 0 is the smallest category ("keys[0]" -> 0).
    let ones1 = aligned.reference_total() - aligned.reference[0];
    let ones2 = aligned.current_total() - aligned.current[0];
    let p1 = ones1 as f64 / n1;
    let p2 = ones2 as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    Ok(ZTest {
        statistic: z,
        p_value: normal_two_sided_p(z),
    })
}

/// L-infinity distance between the category share vectors (shares over all rows
/// of each sample, union of categories): `max_c |ref_share(c) - cur_share(c)|`.
/// Not an Evidently test; its default drift threshold here is 0.1.
pub fn l_infinity<K>(aligned: &Aligned<K>) -> Result<f64> {
    aligned.check_non_empty()?;
    let n1 = aligned.reference_total() as f64;
    let n2 = aligned.current_total() as f64;
    Ok(aligned
        .reference
        .iter()
        .zip(&aligned.current)
        .map(|(&r, &c)| (r as f64 / n1 - c as f64 / n2).abs())
        .fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn new_categories_are_excluded_and_reported() {
        let a = align_counts(
            &counts(&[("a", 40), ("b", 60)]),
            &counts(&[("a", 30), ("b", 50), ("x", 20)]),
        );
        let chi = chi_square(&a).unwrap();
        assert_eq!(chi.compared_rows, 80);
        assert_eq!(chi.new_category_rows, 20);
        assert_eq!(a.new_categories(), vec![&"x".to_string()]);
        assert_eq!(chi.dof, 1);
    }

    #[test]
    fn all_new_is_an_error() {
        let a = align_counts(&counts(&[("a", 4)]), &counts(&[("b", 3)]));
        assert_eq!(chi_square(&a), Err(DriftError::NoComparableRows));
    }

    #[test]
    fn z_single_same_value() {
        let a = align_counts(&counts(&[("a", 4)]), &counts(&[("a", 3)]));
        assert_eq!(z_test(&a).unwrap().p_value, 1.0);
    }

    #[test]
    fn zero_counts_are_not_present() {
        let a = align_counts(&counts(&[("a", 4), ("b", 0)]), &counts(&[("a", 3)]));
        assert_eq!(a.keys, vec!["a".to_string()]);
    }

    #[test]
    fn count_labels_counts() {
        let c = count_labels(["a", "b", "a"]);
        assert_eq!(c.get("a"), Some(&2));
    }
}
