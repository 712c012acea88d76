//! Deterministic, sticky traffic splitting.
//!
//! A routing key is hashed (SHA-256 of the deployment id and the key) to a bucket in
//! `0..10000`; the variants of a revision cover the buckets in order by their weights. The
//! bucket does not depend on the revision, so when a canary grows from 5% to 25% the keys that
//! were on the canary stay on it; and for a fixed revision the same key always gets the same
//! variant.

use sha2::{Digest, Sha256};

use super::model::{FULL, Variant};

/// The bucket of `key` in `deployment`, in `0..10000`.
pub fn bucket(deployment: &str, key: &str) -> i32 {
    let mut h = Sha256::new();
    h.update(deployment.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let d = h.finalize();
    let x = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
    (x % FULL as u64) as i32
}

/// The variant covering bucket `b` (the last one with weight if rounding leaves a gap).
pub fn pick(variants: &[Variant], b: i32) -> &Variant {
    let mut acc = 0;
    for v in variants {
        acc += v.weight_bp;
        if b < acc {
            return v;
        }
    }
    variants
        .iter()
        .rev()
        .find(|v| v.weight_bp > 0)
        .unwrap_or(&variants[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, w: i32) -> Variant {
        Variant {
            name: name.into(),
            weight_bp: w,
            ..Default::default()
        }
    }

    #[test]
    fn a_90_10_split_holds_within_half_a_point_over_100k_keys() {
        let vs = [v("stable", 9000), v("canary", 1000)];
        let n = 100_000;
        let canary = (0..n)
            .filter(|i| {
                pick(&vs, bucket("fraud-production", &format!("user-{i}"))).name == "canary"
            })
            .count();
        let share = canary as f64 / n as f64;
        assert!((share - 0.10).abs() <= 0.005, "{share}");
    }

    #[test]
    fn routing_is_deterministic_and_canary_keys_stay_as_it_grows() {
        let small = [v("canary", 500), v("stable", 9500)];
        let big = [v("canary", 2500), v("stable", 7500)];
        for i in 0..10_000 {
            let k = format!("k{i}");
            let b = bucket("d", &k);
            assert_eq!(b, bucket("d", &k));
            if pick(&small, b).name == "canary" {
                assert_eq!(pick(&big, b).name, "canary", "{k}");
            }
        }
    }

    #[test]
    fn zero_weight_variants_get_nothing() {
        let vs = [v("a", 0), v("b", 10000)];
        assert!((0..10_000).all(|b| pick(&vs, b).name == "b"));
    }
}
