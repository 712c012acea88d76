//! Shared helpers for the fixture tests: fixture loading, the deterministic data
//! generator mirrored from `scripts/drift_reference.py`, and tolerance checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use steward_drift::numeric::sort_f64;

/// Loads `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// SplitMix64, as in the Python script.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 53 random bits scaled by 2^-53 (exact).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

fn num(spec: &Value, key: &str, default: f64) -> f64 {
    spec.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// Regenerates a generator spec bit-for-bit like `generate` in the Python script.
pub fn generate(spec: &Value) -> Vec<f64> {
    let mut rng = SplitMix64::new(spec["seed"].as_u64().expect("seed"));
    let n = spec["n"].as_u64().expect("n") as usize;
    let loc = num(spec, "loc", 0.0);
    let scale = num(spec, "scale", 1.0);
    let dist = spec["dist"].as_str().expect("dist");
    (0..n)
        .map(|_| match dist {
            "uniform" => {
                let u = rng.uniform();
                loc + scale * u
            }
            "normalish" => {
                let u1 = rng.uniform();
                let u2 = rng.uniform();
                let u3 = rng.uniform();
                let u4 = rng.uniform();
                loc + scale * (u1 + u2 + u3 + u4 - 2.0)
            }
            "square" => {
                let u = rng.uniform();
                loc + scale * u * u
            }
            "int" => {
                let u = rng.uniform();
                let k = spec["k"].as_f64().expect("k");
                loc + (u * k).floor() * scale
            }
            other => panic!("unknown dist {other}"),
        })
        .collect()
}

/// A fixture sample (`{"values": [...]}` or `{"gen": spec}`), sorted.
pub fn sorted_sample(v: &Value) -> Vec<f64> {
    let mut data = if let Some(values) = v.get("values") {
        values
            .as_array()
            .expect("values")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    } else {
        generate(&v["gen"])
    };
    sort_f64(&mut data);
    data
}

/// A `{label: count}` object.
pub fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("counts object")
        .iter()
        .map(|(k, c)| (k.clone(), c.as_u64().expect("count")))
        .collect()
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `|got - want| <= abs`, and for `|want| < 1e-6` also a relative error `<= rel`
/// (so tiny p-values must be right in their leading digits, not just near 0).
pub fn check(what: &str, got: f64, want: f64, abs: f64, rel: f64) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let diff = (got - want).abs();
    if diff.is_nan() || diff > abs {
        return Err(format!(
            "{what}: got {got:e}, want {want:e} (|diff| {diff:e} > {abs:e})"
        ));
    }
    if want.abs() < 1e-6 && want != 0.0 && want.abs() > 1e-300 {
        let r = diff / want.abs();
        if r.is_nan() || r > rel {
            return Err(format!(
                "{what}: got {got:e}, want {want:e} (relative {r:e} > {rel:e})"
            ));
        }
    }
    Ok(())
}

/// Collects failures and panics with all of them at the end.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    pub fn push(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    pub fn expect(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }

    pub fn finish(self, what: &str, checked: usize) {
        assert!(checked > 0, "{what}: nothing checked");
        assert!(
            self.0.is_empty(),
            "{what}: {} of {checked} checks failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}
