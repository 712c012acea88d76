//! The demo's data: the same every time, from a fixed hash instead of a random generator, so
//! the drift fires, the canary rolls back and the A/B test finds its winner on every run.

use sha2::{Digest, Sha256};
use steward_deployment::infer::{DEMO_FEATURES, DEMO_INPUT};
use steward_proto::inference as oip;

/// The 8 inputs of the demo fraud model, in tensor order (see
/// `services/deployment/models/make_demo_model.py`).
pub const FEATURES: [&str; DEMO_FEATURES] = [
    "amount",
    "hour_risk",
    "merchant_risk",
    "distance",
    "card_age",
    "tx_last_hour",
    "foreign",
    "tenure",
];

/// The features whose distribution shifts in the drift step: half of them, so the monitor's
/// default rule (dataset drift when at least half the features drift) fires.
pub const SHIFTED: [usize; 4] = [0, 2, 3, 6];

/// How far the shifted features move (their training values lie in [0, 1)).
pub const SHIFT: f32 = 0.5;

/// Rows of the training dataset (also the monitor's baseline). At most 1000 rows, so drift is
/// judged with the Kolmogorov-Smirnov test and its p-values.
pub const TRAINING_ROWS: i64 = 1000;

/// The training rows start here, away from the serving rows (0, 1, 2, ...).
const TRAINING_OFFSET: i64 = 1_000_000;

/// The shifted rows start here, so the drifted window holds the same rows on every run
/// (however many normal requests the canary needed).
pub const SHIFTED_OFFSET: i64 = 100_000;

/// A deterministic value in [0, 1) for row `i`, feature `j`.
pub fn u(i: i64, j: usize) -> f32 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((x >> 40) as f32) / (1u64 << 24) as f32
}

/// Row `i` of live traffic; `shifted` moves the [`SHIFTED`] features by [`SHIFT`].
pub fn row(i: i64, shifted: bool) -> Vec<f32> {
    (0..DEMO_FEATURES)
        .map(|j| {
            let v = u(i, j);
            if shifted && SHIFTED.contains(&j) {
                v + SHIFT
            } else {
                v
            }
        })
        .collect()
}

/// Training column `j` (as the baseline takes it).
pub fn training_column(j: usize) -> Vec<f64> {
    (0..TRAINING_ROWS)
        .map(|i| f64::from(u(TRAINING_OFFSET + i, j)))
        .collect()
}

/// `sha256:<hex>` over the training rows (little-endian f32, row by row): the dataset digest
/// the runs log and the explanation traces back to.
pub fn training_digest() -> String {
    let mut h = Sha256::new();
    for i in 0..TRAINING_ROWS {
        for j in 0..DEMO_FEATURES {
            h.update(u(TRAINING_OFFSET + i, j).to_le_bytes());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A ModelInfer request for deployment `dep` (its id), request id `id`, carrying [`row`]`(i)`.
pub fn infer_request(dep: &str, id: &str, i: i64, shifted: bool) -> oip::ModelInferRequest {
    oip::ModelInferRequest {
        model_name: dep.to_string(),
        id: id.to_string(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: DEMO_INPUT.into(),
            datatype: "FP32".into(),
            shape: vec![1, DEMO_FEATURES as i64],
            contents: Some(oip::InferTensorContents {
                fp32_contents: row(i, shifted),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One training run of the demo experiment.
pub struct RunSpec {
    /// Run name.
    pub name: &'static str,
    /// Model family (a param).
    pub family: &'static str,
    /// Learning rate (a param).
    pub learning_rate: &'static str,
    /// Tree depth (a param; empty for the linear baseline).
    pub max_depth: &'static str,
    /// Accuracy the curve converges to.
    pub accuracy: f64,
}

/// The runs: the linear baseline production serves today, then three boosted-tree candidates.
pub const RUNS: [RunSpec; 4] = [
    RunSpec {
        name: "baseline",
        family: "logistic-regression",
        learning_rate: "0.1",
        max_depth: "",
        accuracy: 0.903,
    },
    RunSpec {
        name: "gbm-lr0.3",
        family: "gradient-boosting",
        learning_rate: "0.3",
        max_depth: "4",
        accuracy: 0.928,
    },
    RunSpec {
        name: "gbm-lr0.1",
        family: "gradient-boosting",
        learning_rate: "0.1",
        max_depth: "6",
        accuracy: 0.951,
    },
    RunSpec {
        name: "gbm-lr0.03",
        family: "gradient-boosting",
        learning_rate: "0.03",
        max_depth: "6",
        accuracy: 0.937,
    },
];

/// Epochs each run logs.
pub const EPOCHS: i64 = 10;

/// Accuracy after `epoch` (1-based) of a run converging to `target`.
pub fn accuracy(target: f64, epoch: i64) -> f64 {
    let left = (-0.6 * epoch as f64).exp();
    ((target - (target - 0.5) * left) * 10_000.0).round() / 10_000.0
}

/// Log loss after `epoch` of a run converging to accuracy `target`.
pub fn loss(target: f64, epoch: i64) -> f64 {
    ((0.69 * (-0.35 * epoch as f64).exp() + (1.0 - target) * 1.8) * 10_000.0).round() / 10_000.0
}

/// A/B test conversion: whether the `k`-th user (1-based) routed to the control (else to the
/// challenger) converts. Counted within each variant, so the rates are exactly 10% and 20%
/// whichever users the salted hash assigns where.
pub fn converts(control: bool, k: u32) -> bool {
    if control {
        k.is_multiple_of(10)
    } else {
        k % 10 < 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_fixed() {
        assert_eq!(training_digest(), training_digest());
        assert!(training_digest().starts_with("sha256:"));
        let r = row(7, true);
        let n = row(7, false);
        for j in 0..DEMO_FEATURES {
            let d = r[j] - n[j];
            if SHIFTED.contains(&j) {
                assert!((d - SHIFT).abs() < 1e-6);
            } else {
                assert_eq!(d, 0.0);
            }
        }
        assert!(u(3, 2) >= 0.0 && u(3, 2) < 1.0);
    }

    #[test]
    fn curves_converge_and_rank_the_runs() {
        for r in &RUNS {
            assert!(accuracy(r.accuracy, 1) < accuracy(r.accuracy, EPOCHS));
            assert!((accuracy(r.accuracy, EPOCHS) - r.accuracy).abs() < 0.002);
            assert!(loss(r.accuracy, 1) > loss(r.accuracy, EPOCHS));
        }
        let conversions = |control| (1..=100).filter(|k| converts(control, *k)).count();
        assert_eq!((conversions(true), conversions(false)), (10, 20));
    }
}
