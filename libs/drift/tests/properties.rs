//! Property tests: invariants of the exact statistics, and the sketches' certified
//! error bounds against exact values on random data.

use proptest::prelude::*;
use steward_drift::binning::{self, ValueKind};
use steward_drift::categorical::{Aligned, chi_square};
use steward_drift::ks::{ks_2samp, ks_statistic};
use steward_drift::multiple::benjamini_hochberg;
use steward_drift::numeric::{sort_f64, wasserstein_distance};
use steward_drift::sketch::{FrequencySketch, QuantileSketch, compare, worst_case_epsilon};

/// Samples with plenty of ties: integers or halves in a small range, or
/// continuous values.
fn sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((-20i32..20).prop_map(|v| f64::from(v) / 2.0), 1..max_len),
        prop::collection::vec(-1000.0f64..1000.0, 1..max_len),
    ]
    .prop_map(|mut v| {
        sort_f64(&mut v);
        v
    })
}

/// scipy's definition, literally: searchsorted(side="right") over the pooled data.
fn brute_ks(a: &[f64], b: &[f64]) -> f64 {
    let cdf = |s: &[f64], x: f64| s.iter().filter(|&&v| v <= x).count() as f64 / s.len() as f64;
    let diffs: Vec<f64> = a.iter().chain(b).map(|&x| cdf(a, x) - cdf(b, x)).collect();
    let max_s = diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min_s = (-diffs.iter().copied().fold(f64::INFINITY, f64::min)).clamp(0.0, 1.0);
    if min_s > max_s { min_s } else { max_s }
}

/// scipy's `_cdf_distance(1, u, v)`, literally.
fn brute_wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    sort_f64(&mut all);
    let cdf = |s: &[f64], x: f64| s.iter().filter(|&&v| v <= x).count() as f64 / s.len() as f64;
    all.windows(2)
        .map(|w| (cdf(a, w[0]) - cdf(b, w[0])).abs() * (w[1] - w[0]))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn ks_invariants(a in sample(60), b in sample(60)) {
        let r = ks_2samp(&a, &b).unwrap();
        prop_assert!((0.0..=1.0).contains(&r.statistic));
        prop_assert!((0.0..=1.0).contains(&r.p_value));
        let s = ks_2samp(&b, &a).unwrap();
        prop_assert_eq!(r, s);
        let same = ks_2samp(&a, &a).unwrap();
        prop_assert_eq!(same.statistic, 0.0);
        prop_assert_eq!(same.p_value, 1.0);
        let d = ks_statistic(&a, &b).unwrap();
        prop_assert!((d - brute_ks(&a, &b)).abs() < 1e-12, "{} vs {}", d, brute_ks(&a, &b));
    }

    #[test]
    fn wasserstein_invariants(a in sample(60), b in sample(60)) {
        let w = wasserstein_distance(&a, &b).unwrap();
        prop_assert!(w >= 0.0);
        let brute = brute_wasserstein(&a, &b);
        prop_assert!((w - brute).abs() <= 1e-9 * brute.max(1.0), "{} vs {}", w, brute);
        prop_assert!((w - wasserstein_distance(&b, &a).unwrap()).abs() <= 1e-12 * w.max(1.0));
        prop_assert_eq!(wasserstein_distance(&a, &a).unwrap(), 0.0);
    }

    #[test]
    fn radix_sort_is_total_order_sort(mut v in prop::collection::vec(any::<f64>(), 0..3000)) {
        let mut expected = v.clone();
        expected.sort_by(f64::total_cmp);
        sort_f64(&mut v);
        let same = v.iter().zip(&expected).all(|(x, y)| x.to_bits() == y.to_bits());
        prop_assert!(same);
    }

    #[test]
    fn bh_adjusted_is_monotone_and_bounded(p in prop::collection::vec(0.0f64..=1.0, 1..40)) {
        let r = benjamini_hochberg(&p, 0.05).unwrap();
        for (i, &adj) in r.adjusted.iter().enumerate() {
            prop_assert!(adj >= p[i] - 1e-15 && adj <= 1.0);
            for (j, &other) in r.adjusted.iter().enumerate() {
                if p[i] <= p[j] {
                    prop_assert!(adj <= other + 1e-15);
                }
            }
        }
    }

    #[test]
    fn chi_square_of_proportional_counts_is_zero(c in prop::collection::vec(1u64..50, 2..10), m in 1u64..5) {
        let aligned = Aligned {
            keys: (0..c.len()).collect(),
            reference: c.clone(),
            current: c.iter().map(|x| x * m).collect(),
        };
        let r = chi_square(&aligned).unwrap();
        prop_assert!(r.statistic.abs() < 1e-9);
        prop_assert!(r.p_value > 1.0 - 1e-9);
    }
}

/// scipy's formulas with binary searches: O(n log n), fine for large samples.
fn searchsorted_ks_and_wasserstein(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    sort_f64(&mut all);
    let cdf = |s: &[f64], x: f64| s.partition_point(|&v| v <= x) as f64 / s.len() as f64;
    let diffs: Vec<f64> = all.iter().map(|&x| cdf(a, x) - cdf(b, x)).collect();
    let max_s = diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min_s = (-diffs.iter().copied().fold(f64::INFINITY, f64::min)).clamp(0.0, 1.0);
    let d = if min_s > max_s { min_s } else { max_s };
    let w = all
        .windows(2)
        .zip(&diffs)
        .map(|(win, diff)| diff.abs() * (win[1] - win[0]))
        .sum();
    (d, w)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Large samples take the multi-lane walk (pooled size >= 16384).
    #[test]
    fn large_samples_match_scipy_formulas(
        a in prop::collection::vec((0i32..5000).prop_map(|v| f64::from(v) / 7.0), 8000..12000),
        b in prop::collection::vec((0i32..5200).prop_map(|v| f64::from(v) / 7.0), 9000..13000),
        continuous in any::<bool>(),
    ) {
        let jitter = |v: Vec<f64>, salt: f64| -> Vec<f64> {
            let mut v: Vec<f64> = if continuous {
                v.iter().enumerate().map(|(i, x)| x + ((i as f64 * salt).sin() * 1e-3)).collect()
            } else {
                v
            };
            sort_f64(&mut v);
            v
        };
        let (a, b) = (jitter(a, 0.7), jitter(b, 1.3));
        let (d, w) = searchsorted_ks_and_wasserstein(&a, &b);
        let got_d = ks_statistic(&a, &b).unwrap();
        prop_assert!((got_d - d).abs() < 1e-12, "{} vs {}", got_d, d);
        let got_w = wasserstein_distance(&a, &b).unwrap();
        prop_assert!((got_w - w).abs() <= 1e-9 * w.max(1.0), "{} vs {}", got_w, w);
    }
}

/// How a sketch is assembled from chunks of the data.
#[derive(Debug, Clone)]
enum Plan {
    Insert,
    SortedBuild,
}

fn build_sketch(
    data: &[f64],
    k: u32,
    chunks: &[(usize, bool)],
    tree_merge: bool,
) -> QuantileSketch {
    // Cut the data into chunks, sketch each with its plan, then merge.
    let mut parts = Vec::new();
    let mut start = 0;
    let mut ci = 0;
    while start < data.len() {
        let (len, sorted_build) = chunks[ci % chunks.len()];
        ci += 1;
        let end = (start + len.max(1)).min(data.len());
        let chunk = &data[start..end];
        let plan = if sorted_build {
            Plan::SortedBuild
        } else {
            Plan::Insert
        };
        let s = match plan {
            Plan::Insert => {
                let mut s = QuantileSketch::new(k).unwrap();
                for &x in chunk {
                    s.insert(x);
                }
                s
            }
            Plan::SortedBuild => {
                let mut c = chunk.to_vec();
                sort_f64(&mut c);
                QuantileSketch::from_sorted(&c, k).unwrap()
            }
        };
        parts.push(s);
        start = end;
    }
    if tree_merge {
        while parts.len() > 1 {
            let mut next = Vec::new();
            for pair in parts.chunks(2) {
                let mut a = pair[0].clone();
                if let Some(b) = pair.get(1) {
                    a.merge(b).unwrap();
                }
                next.push(a);
            }
            parts = next;
        }
        parts.pop().unwrap()
    } else {
        let mut acc = QuantileSketch::new(k).unwrap();
        for p in &parts {
            acc.merge(p).unwrap();
        }
        acc
    }
}

fn true_rank(sorted: &[f64], t: f64) -> u64 {
    sorted.partition_point(|&x| x <= t) as u64
}

fn true_rank_below(sorted: &[f64], t: f64) -> u64 {
    sorted.partition_point(|&x| x < t) as u64
}

fn raw_data(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec(-1.0e3f64..1.0e3, 1..max_len),
        prop::collection::vec((0i32..300).prop_map(f64::from), 1..max_len),
        prop::collection::vec((0i32..40).prop_map(|v| f64::from(v) * 0.25), 1..max_len),
    ]
}

fn plan() -> impl Strategy<Value = (Vec<(usize, bool)>, bool, u32)> {
    (
        prop::collection::vec((1usize..700, any::<bool>()), 1..6),
        any::<bool>(),
        prop::sample::select(vec![8u32, 16, 32, 64]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sketch_rank_error_is_certified(data in raw_data(3000), (chunks, tree, k) in plan()) {
        let s = build_sketch(&data, k, &chunks, tree);
        let mut sorted = data.clone();
        sort_f64(&mut sorted);
        let n = sorted.len() as u64;
        prop_assert_eq!(s.count(), n);
        prop_assert_eq!(s.min(), sorted[0]);
        prop_assert_eq!(s.max(), sorted[sorted.len() - 1]);
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let std = (sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64).sqrt();
        prop_assert!((s.mean() - mean).abs() <= 1e-9 * (1.0 + mean.abs()));
        prop_assert!((s.std() - std).abs() <= 1e-9 * (1.0 + std));

        let e = s.rank_error();
        prop_assert!(s.epsilon() <= worst_case_epsilon(k, n) + 1e-15,
            "eps {} > bound {} (n={}, k={})", s.epsilon(), worst_case_epsilon(k, n), n, k);
        let cdf = s.cdf();
        let mut probes: Vec<f64> = sorted.clone();
        probes.extend(sorted.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        probes.push(sorted[0] - 1.0);
        probes.push(sorted[sorted.len() - 1] + 1.0);
        for &t in &probes {
            let (r, rt) = (cdf.rank(t), true_rank(&sorted, t));
            prop_assert!(r.abs_diff(rt) <= e, "rank({}) = {} vs {} (E = {})", t, r, rt, e);
            let (rb, rbt) = (cdf.rank_below(t), true_rank_below(&sorted, t));
            prop_assert!(rb.abs_diff(rbt) <= e, "rank_below({}) = {} vs {} (E = {})", t, rb, rbt, e);
        }
        for q in [0.01, 0.25, 0.5, 0.75, 0.99] {
            let v = s.quantile(q).unwrap();
            let target = ((q * n as f64).ceil() as u64).clamp(1, n);
            // The returned value's rank interval must come within E of the target.
            let (lo, hi) = (true_rank_below(&sorted, v) + 1, true_rank(&sorted, v));
            prop_assert!(lo <= target + e && hi + e >= target, "q={} v={} ranks [{}, {}] target {} E {}", q, v, lo, hi, target, e);
        }

        let bytes = s.to_bytes().unwrap();
        prop_assert_eq!(QuantileSketch::from_bytes(&bytes).unwrap(), s.clone());
        prop_assert!(QuantileSketch::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn sketch_statistics_within_bounds(
        a in raw_data(2500),
        b in raw_data(2500),
        (chunks, tree, k) in plan(),
    ) {
        let sa = build_sketch(&a, k, &chunks, tree);
        let sb = build_sketch(&b, k, &chunks, !tree);
        let (mut xa, mut xb) = (a.clone(), b.clone());
        sort_f64(&mut xa);
        sort_f64(&mut xb);

        let exact_d = ks_statistic(&xa, &xb).unwrap();
        let approx = compare::ks(&sa, &sb).unwrap();
        let bound = sa.epsilon() + sb.epsilon();
        // The exact p-value path snaps D to the lattice h/lcm(n1, n2): allow one step.
        let (n1, n2) = (xa.len() as u64, xb.len() as u64);
        let g = (1..=n1.min(n2)).rev().find(|g| n1 % g == 0 && n2 % g == 0).unwrap();
        let lattice = 1.0 / ((n1 / g) * n2) as f64;
        prop_assert!((approx.estimate.statistic - exact_d).abs() <= bound + lattice + 1e-12,
            "D {} vs {} bound {}", approx.estimate.statistic, exact_d, bound);
        let exact_p = ks_2samp(&xa, &xb).unwrap().p_value;
        prop_assert!(approx.p_value_low <= exact_p + 1e-12 && exact_p <= approx.p_value_high + 1e-12,
            "p {} not in [{}, {}]", exact_p, approx.p_value_low, approx.p_value_high);

        let exact_w = wasserstein_distance(&xa, &xb).unwrap();
        let w = compare::wasserstein(&sa, &sb).unwrap();
        prop_assert!((w.value - exact_w).abs() <= w.error + 1e-9 * exact_w.max(1.0),
            "W {} vs {} bound {}", w.value, exact_w, w.error);

        // Histogram shares within 2 eps of the exact ones when the histogram rule applies.
        if let Ok(approx) = compare::psi(&sa, &sb, ValueKind::Numeric) {
            let exact = binning::binned_shares_numeric(&xa, &xb, ValueKind::Numeric).unwrap();
            prop_assert_eq!(approx.shares.edges.is_some(), exact.edges.is_some());
            let tol = approx.share_error + 1e-12;
            for (g, w) in approx.shares.reference.iter().zip(&exact.reference) {
                prop_assert!((g - w).abs() <= 2.0 * sa.epsilon() + 1e-12 && (g - w).abs() <= tol);
            }
            for (g, w) in approx.shares.current.iter().zip(&exact.current) {
                prop_assert!((g - w).abs() <= 2.0 * sb.epsilon() + 1e-12);
            }
            if approx.share_error == 0.0 {
                let exact_psi = binning::psi_numeric(&xa, &xb, ValueKind::Numeric).unwrap();
                prop_assert!((approx.value - exact_psi).abs() <= 1e-9 * exact_psi.max(1.0));
            }
        }
    }

    #[test]
    fn merged_sketch_matches_union(a in raw_data(2000), b in raw_data(2000), k in prop::sample::select(vec![8u32, 32, 128])) {
        let mut xa = a.clone();
        sort_f64(&mut xa);
        let mut xb = b.clone();
        sort_f64(&mut xb);
        let mut merged = QuantileSketch::from_sorted(&xa, k).unwrap();
        merged.merge(&QuantileSketch::from_sorted(&xb, k).unwrap()).unwrap();
        let mut union: Vec<f64> = a.iter().chain(&b).copied().collect();
        sort_f64(&mut union);
        let direct = QuantileSketch::from_sorted(&union, k).unwrap();
        prop_assert_eq!(merged.count(), direct.count());
        let cdf_m = merged.cdf();
        let cdf_d = direct.cdf();
        let bound = merged.rank_error() + direct.rank_error();
        for &t in &union {
            let (m, d) = (cdf_m.rank(t), cdf_d.rank(t));
            prop_assert!(m.abs_diff(d) <= bound);
            prop_assert!(m.abs_diff(true_rank(&union, t)) <= merged.rank_error());
        }
    }

    #[test]
    fn frequency_sketch_merge_and_roundtrip(
        a in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "é", ""]), 0..200),
        b in prop::collection::vec(prop::sample::select(vec!["a", "z", "c"]), 0..200),
        missing in 0u64..10,
    ) {
        let mut sa = FrequencySketch::new();
        a.iter().for_each(|l| sa.insert(l));
        sa.insert_missing(missing);
        let mut sb = FrequencySketch::new();
        b.iter().for_each(|l| sb.insert(l));
        let mut merged = sa.clone();
        merged.merge(&sb);
        let mut direct = FrequencySketch::new();
        a.iter().chain(&b).for_each(|l| direct.insert(l));
        direct.insert_missing(missing);
        prop_assert_eq!(&merged, &direct);
        let bytes = merged.to_bytes().unwrap();
        prop_assert_eq!(FrequencySketch::from_bytes(&bytes).unwrap(), merged);
    }
}

#[test]
fn sketch_from_sorted_error_is_below_two_n_over_k() {
    let mut data: Vec<f64> = (0..100_000)
        .map(|i| ((i * 7919) % 100_003) as f64)
        .collect();
    sort_f64(&mut data);
    let s = QuantileSketch::from_sorted(&data, 2048).unwrap();
    assert!(s.epsilon() < 2.0 / 2048.0, "{}", s.epsilon());
    assert!(s.retained() <= 2 * 2048);
}

#[test]
fn sketch_rejects_bad_input() {
    assert!(QuantileSketch::new(7).is_err());
    assert!(QuantileSketch::new(9).is_err());
    assert!(QuantileSketch::from_sorted(&[2.0, 1.0], 16).is_err());
    let mut a = QuantileSketch::new(16).unwrap();
    assert!(a.merge(&QuantileSketch::new(32).unwrap()).is_err());
    a.insert(f64::NAN);
    a.insert(f64::INFINITY);
    assert_eq!((a.count(), a.missing()), (0, 2));
    assert!(compare::ks(&a, &a).is_err());
    assert!(QuantileSketch::from_bytes(b"nope").is_err());
    assert!(FrequencySketch::from_bytes(b"SDFS\x01").is_err());
}

#[test]
fn low_cardinality_sketches_are_exact() {
    let a: Vec<f64> = (0..5000).map(|i| f64::from(i % 4)).collect();
    let b: Vec<f64> = (0..3000).map(|i| f64::from(i % 5)).collect();
    let mut sa = QuantileSketch::new(8).unwrap();
    a.iter().for_each(|&x| sa.insert(x));
    let mut sb = QuantileSketch::new(8).unwrap();
    b.iter().for_each(|&x| sb.insert(x));
    assert_eq!(sa.rank_error(), 0);
    let (mut xa, mut xb) = (a.clone(), b.clone());
    sort_f64(&mut xa);
    sort_f64(&mut xb);
    let v = compare::evaluate_numeric_sketches(
        steward_drift::select::FeatureKind::Numeric,
        &sa,
        &sb,
        &steward_drift::select::Overrides::default(),
    )
    .unwrap();
    let exact = steward_drift::select::evaluate_numeric(
        steward_drift::select::FeatureKind::Numeric,
        &xa,
        &xb,
        &steward_drift::select::Overrides::default(),
    )
    .unwrap();
    assert_eq!(v.verdict.method, exact.method);
    assert!((v.verdict.score - exact.score).abs() < 1e-12);
    assert!(v.decision_certain);
}
