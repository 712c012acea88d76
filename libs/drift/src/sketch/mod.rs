//! Mergeable sketches for baselines and for windows too large to keep exactly.
//!
//! * [`QuantileSketch`] (numeric): a deterministic compactor hierarchy in the style
//!   of Manku-Rajagopalan-Lindsay / KLL without randomness, plus exact count,
//!   missing count, min, max, mean and variance, and exact value counts while the
//!   feature has at most 64 distinct values (then every statistic is exact).
//! * [`FrequencySketch`] (categorical): exact counts per label plus missing count.
//!
//! Both merge (`merge`) and serialise to a small hand-written little-endian format
//! (`to_bytes` / `from_bytes`, validated on decode).
//!
//! # The quantile sketch and its certified error
//!
//! Level `h` holds items of weight `2^h` (each stands for `2^h` input values);
//! every level holds at most `k` items between operations. Inserted values go
//! to level 0. When a level exceeds `k` items it is *compacted*: sorted, paired
//! with its neighbour (`(x₀,x₁), (x₂,x₃), …`, an odd item stays), and one item of
//! each pair — alternately the first or the second, per level — moves to level
//! `h+1`. Merging concatenates levels and compacts what overflows.
//! [`QuantileSketch::from_sorted`] builds directly from sorted data: blocks of
//! `2^h` consecutive values, represented by their largest value, at the smallest
//! level `h` with `ceil(n / 2^h) <= k` (the remainder recursively lower).
//!
//! Let `R(t) = #{x <= t}` and `R̂(t)` the total weight of items `<= t` (same for
//! `< t`). The sketch carries a certificate `E` ([`QuantileSketch::rank_error`])
//! with `|R̂(t) - R(t)| <= E` for **every** `t`:
//! * a compaction at level `h` changes `R̂(t)` by at most `2^h`: pairs entirely
//!   below or above `t` keep their weight below `t`, and at most one pair (they
//!   are disjoint consecutive runs) straddles `t`, losing or gaining `2^h`; so
//!   `E += 2^h`;
//! * a block build is off by less than one block: `E = max block - 1`;
//! * a merge adds ranks, so certificates add: `E = E_a + E_b`.
//!
//! **Worst-case bound.** For a sketch of `n` values obtained by any sequence of
//! inserts, sorted builds and merges with capacity `k`:
//! `E / n <= (3 + log₂(n / (k+1))) / k` (and `E = 0` when `n <= k`). Proof: a block
//! build of `n_i` values uses blocks `< 2n_i/k`, summing to `< 2n/k` over all
//! builds. A compaction at level `h` removes at least `k` items of weight `2^h`,
//! and each input value's weight leaves level `h` at most once, so level `h` is
//! compacted at most `n / (k·2^h)` times, contributing at most `n/k`; compactions
//! need `(k+1)·2^h <= n` items' weight, so at most `1 + log₂(n/(k+1))` levels
//! contribute. Memory is at most `k` items per level, `O(k log(n/k))`.
//! The certificate is usually far below the bound (a sorted build has
//! `E < 2n/k`; merging two such sketches typically adds one top-level compaction).
//!
//! **Derived statistics** ([`compare`]): with `ε = E/n` per sketch,
//! * the KS statistic is within `ε_a + ε_b` of the exact one (the sup of the
//!   estimated CDF difference moves by at most the sup of the CDF errors), and the
//!   p-value is bracketed by evaluating scipy's p-value at `D ± (ε_a + ε_b)`;
//! * Wasserstein-1 is within `(ε_a + ε_b)·(max - min)` over the pooled exact range;
//!   the normed form divides that by `max(std_ref, 0.001)`;
//! * every estimated PSI / Jensen-Shannon bin share is within `2ε` of the exact
//!   share (each bin is a difference of two ranks); PSI / JS have no useful
//!   worst-case bound and are reported as estimates.

pub(crate) mod codec;
pub mod compare;
mod frequency;
mod quantile;

pub use frequency::FrequencySketch;
pub use quantile::{DEFAULT_K, DISTINCT_CAP, MAX_K, MIN_K, QuantileSketch, WeightedCdf};

/// The worst-case normalised rank error `E/n` of a [`QuantileSketch`] with
/// capacity `k` summarising `n` values, whatever the sequence of inserts, builds
/// and merges (see the module docs for the proof). The certificate
/// [`QuantileSketch::epsilon`] of a concrete sketch is never larger.
pub fn worst_case_epsilon(k: u32, n: u64) -> f64 {
    let k = f64::from(k);
    let n = n as f64;
    if n <= k {
        return 0.0;
    }
    let levels = (n / (k + 1.0)).log2().floor().max(0.0) + 1.0;
    (2.0 + levels) / k
}
