//! Timing of the hot path of a drift report:
//! `cargo run -p steward-drift --release --example timing`.
//!
//! Sorts two 1,000,000-value samples with `sort_f64`, then runs KS + Wasserstein
//! (`compare_sorted`: input validation, one merge walk, the reference standard
//! deviation and scipy's asymptotic p-value), and builds and compares quantile
//! sketches of both. Best of several runs; the machine may be shared.

use std::hint::black_box;
use std::time::{Duration, Instant};

use steward_drift::ks::ks_statistic;
use steward_drift::numeric::{compare_sorted, sort_f64};
use steward_drift::sketch::{QuantileSketch, compare};

/// SplitMix64 uniform in [0, 1).
fn uniforms(seed: u64, n: usize) -> impl Iterator<Item = f64> {
    let mut state = seed;
    std::iter::repeat_with(move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    })
    .take(n)
}

fn sample(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut u = uniforms(seed, 4 * n);
    (0..n)
        .map(|_| {
            let s: f64 = (0..4).map(|_| u.next().unwrap_or(0.5)).sum();
            s - 2.0 + shift
        })
        .collect()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    const N: usize = 1_000_000;
    let reference = sample(1, N, 0.0);
    let current = sample(2, N, 0.002);
    // A larger shift puts n·D² in [2.2, 370): scipy's p-value is then
    // 2·smirnov(n, D), a sum of O(n) terms (the slowest p-value regime).
    let mut shifted = sample(3, N, 0.005);
    sort_f64(&mut shifted);

    let (t_sort, (a, b)) = best_of(5, || {
        let mut a = reference.clone();
        let mut b = current.clone();
        sort_f64(&mut a);
        sort_f64(&mut b);
        (a, b)
    });
    let (t_std_sort, _) = best_of(3, || {
        let mut a = reference.clone();
        a.sort_unstable_by(f64::total_cmp);
        a
    });

    let (t_stat, _) = best_of(10, || {
        ks_statistic(black_box(&a), black_box(&b)).expect("valid input")
    });
    let (t_cmp, cmp) = best_of(10, || {
        compare_sorted(black_box(&a), black_box(&b)).expect("valid input")
    });
    let (t_band, band) = best_of(5, || {
        compare_sorted(black_box(&a), black_box(&shifted)).expect("valid input")
    });

    let (t_sketch, (sa, sb)) = best_of(5, || {
        (
            QuantileSketch::from_sorted(&a, 2048).expect("sorted"),
            QuantileSketch::from_sorted(&b, 2048).expect("sorted"),
        )
    });
    let (t_sketch_ks, approx) = best_of(10, || compare::ks(&sa, &sb).expect("non-empty"));

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("n = {N} x {N}");
    println!(
        "sort_f64, both samples (with copies):  {:>8.2} ms",
        ms(t_sort)
    );
    println!(
        "sort_unstable_by(total_cmp), one:      {:>8.2} ms",
        ms(t_std_sort)
    );
    println!(
        "KS statistic (ks_statistic):           {:>8.2} ms",
        ms(t_stat)
    );
    println!(
        "KS + Wasserstein (compare_sorted):     {:>8.2} ms",
        ms(t_cmp)
    );
    println!(
        "  D = {:.6}, p = {:.4e} ({:?}), W1 = {:.6}, W1 normed = {:.6}",
        cmp.ks.statistic, cmp.ks.p_value, cmp.ks.method, cmp.wasserstein, cmp.wasserstein_normed
    );
    println!(
        "same, n·D² in the smirnov band:        {:>8.2} ms",
        ms(t_band)
    );
    println!(
        "  D = {:.6}, p = {:.4e} ({:?}), W1 = {:.6}",
        band.ks.statistic, band.ks.p_value, band.ks.method, band.wasserstein
    );
    println!(
        "2 sketches from sorted (k=2048):       {:>8.2} ms",
        ms(t_sketch)
    );
    println!(
        "KS from sketches (3 p-values):         {:>8.2} ms",
        ms(t_sketch_ks)
    );
    println!(
        "  D ~ {:.6} +- {:.6}, p in [{:.4e}, {:.4e}], {} bytes per sketch",
        approx.estimate.statistic,
        approx.statistic_error,
        approx.p_value_low,
        approx.p_value_high,
        sa.to_bytes().map(|b| b.len()).unwrap_or(0)
    );
}
