//! Simulated experiments (fixed seeds, well under a second): the always-valid tests keep their
//! false-positive rate under continuous peeking, the fixed-horizon z-test does not, and the
//! always-valid tests still detect real effects and cover the true difference.

use super::*;

/// SplitMix64: small, fast and good enough for Monte Carlo; fixed seeds make the tests
/// deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1)`.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn bernoulli(&mut self, p: f64) -> f64 {
        if self.uniform() < p { 1.0 } else { 0.0 }
    }

    /// Standard normal by Box–Muller (one of the pair).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const ALPHA: f64 = 0.05;
const RUNS: usize = 200;
/// Observations per run, alternating between control and treatment (1,000 per arm).
const OBSERVATIONS: usize = 2_000;
/// A look after every 100 observations: 20 looks per run.
const PEEK_EVERY: usize = 100;

type Test = fn(&Summary, &Summary, f64) -> Option<TestResult>;

/// Outcome of one simulated experiment under continuous peeking.
struct Run {
    /// Some look had `p < ALPHA`.
    ever_significant: bool,
    /// Every look's interval (combined over looks with `after` for always-valid tests)
    /// contained the true effect.
    always_covered: bool,
}

/// Runs `RUNS` experiments drawing outcomes with `draw(rng, is_treatment)`, looking every
/// `PEEK_EVERY` observations with `test`.
fn simulate(
    seed: u64,
    test: Test,
    true_effect: f64,
    draw: impl Fn(&mut Rng, bool) -> f64,
) -> Vec<Run> {
    let mut rng = Rng(seed);
    (0..RUNS)
        .map(|_| {
            let (mut control, mut treatment) = (Summary::default(), Summary::default());
            let mut run = Run {
                ever_significant: false,
                always_covered: true,
            };
            let mut combined: Option<TestResult> = None;
            for i in 1..=OBSERVATIONS {
                let is_treatment = i % 2 == 0;
                let x = draw(&mut rng, is_treatment);
                if is_treatment {
                    treatment.push(x)
                } else {
                    control.push(x)
                }
                if i % PEEK_EVERY != 0 {
                    continue;
                }
                let Some(r) = test(&control, &treatment, ALPHA) else {
                    continue;
                };
                let r = combined.map_or(r, |earlier| r.after(&earlier));
                combined = Some(r);
                run.ever_significant |= r.p_value < ALPHA;
                run.always_covered &= r.ci_low <= true_effect && true_effect <= r.ci_high;
            }
            run
        })
        .collect()
}

fn fraction(runs: &[Run], pick: impl Fn(&Run) -> bool) -> f64 {
    runs.iter().filter(|r| pick(r)).count() as f64 / runs.len() as f64
}

/// With 200 runs the standard error of a rate near 5 % is about 1.5 %; the slack is two of them.
const SLACK: f64 = 0.03;

#[test]
fn msprt_proportions_controls_false_positives_under_peeking_where_the_z_test_does_not() {
    let draw = |rng: &mut Rng, _: bool| rng.bernoulli(0.1);
    let msprt = simulate(7, msprt_proportions, 0.0, draw);
    let z = simulate(7, two_proportion_z, 0.0, draw);
    let (msprt_rate, z_rate) = (
        fraction(&msprt, |r| r.ever_significant),
        fraction(&z, |r| r.ever_significant),
    );
    println!(
        "A/A proportions, 20 looks: mSPRT crossed alpha in {msprt_rate:.3}, z-test in {z_rate:.3}"
    );
    assert!(
        msprt_rate <= ALPHA + SLACK,
        "mSPRT false-positive rate {msprt_rate}"
    );
    assert!(
        z_rate >= 2.5 * ALPHA,
        "peeking at the z-test should inflate its error: {z_rate}"
    );
    assert!(z_rate > 2.0 * msprt_rate.max(ALPHA / 2.0));
    let covered = fraction(&msprt, |r| r.always_covered);
    assert!(
        covered >= 1.0 - ALPHA - SLACK,
        "confidence sequence coverage {covered}"
    );
}

#[test]
fn msprt_means_controls_false_positives_under_peeking_where_welch_does_not() {
    // Same mean, unequal variances (the case Welch's test exists for).
    let draw = |rng: &mut Rng, is_treatment: bool| {
        let z = rng.normal();
        if is_treatment {
            10.0 + 2.0 * z
        } else {
            10.0 + z
        }
    };
    let msprt = simulate(11, msprt_means, 0.0, draw);
    let welch = simulate(11, welch_t, 0.0, draw);
    let (msprt_rate, welch_rate) = (
        fraction(&msprt, |r| r.ever_significant),
        fraction(&welch, |r| r.ever_significant),
    );
    println!(
        "A/A means, 20 looks: mSPRT crossed alpha in {msprt_rate:.3}, Welch in {welch_rate:.3}"
    );
    assert!(
        msprt_rate <= ALPHA + SLACK,
        "mSPRT false-positive rate {msprt_rate}"
    );
    assert!(
        welch_rate >= 2.5 * ALPHA,
        "peeking at Welch should inflate its error: {welch_rate}"
    );
    let covered = fraction(&msprt, |r| r.always_covered);
    assert!(
        covered >= 1.0 - ALPHA - SLACK,
        "confidence sequence coverage {covered}"
    );
}

#[test]
fn msprt_detects_real_effects_and_covers_them() {
    // 10 % -> 16 % conversion: z = 4 at 1,000 per arm; the always-valid test pays for its
    // guarantee with a higher bar (|z| above about 3.05 here), so it detects a little less often.
    let effect = 0.06;
    let runs = simulate(13, msprt_proportions, effect, |rng, t| {
        rng.bernoulli(if t { 0.16 } else { 0.10 })
    });
    let power = fraction(&runs, |r| r.ever_significant);
    let covered = fraction(&runs, |r| r.always_covered);
    println!("effect 0.10 -> 0.16: mSPRT detected in {power:.3}, covered in {covered:.3}");
    assert!(power >= 0.8, "mSPRT power {power}");
    assert!(covered >= 1.0 - ALPHA - SLACK, "coverage {covered}");

    // Means: a quarter of a standard deviation.
    let runs = simulate(17, msprt_means, 0.25, |rng, t| {
        rng.normal() + if t { 0.25 } else { 0.0 }
    });
    let power = fraction(&runs, |r| r.ever_significant);
    println!("effect 0.25 sd: mSPRT detected in {power:.3}");
    assert!(power >= 0.9, "mSPRT power {power}");
}
