//! Every statistic and p-value against the scipy / Evidently / statsmodels
//! reference values in `tests/fixtures/*.json` (regenerate with
//! `scripts/drift_reference.py`).
//!
//! Tolerance: 1e-6 absolute is the contract; the checks below are tighter where
//! the port is exact (1e-9), and values below 1e-6 must also agree relatively.

mod common;

use common::{Failures, check, counts, f, fixture, sorted_sample};
use serde_json::Value;
use steward_drift::binning::{self, ValueKind};
use steward_drift::categorical::{align_counts, chi_square, l_infinity, z_test};
use steward_drift::kolmogorov::{kolmogorov, kstwo_cdf, kstwo_sf, smirnov};
use steward_drift::ks::{KsMethod, ks_2samp};
use steward_drift::multiple::benjamini_hochberg;
use steward_drift::numeric::{
    compare_sorted, population_std, wasserstein_distance, wasserstein_normed,
};
use steward_drift::select::{self, FeatureKind, Method, Overrides};
use steward_drift::special::{chi2_sf, erfc, normal_cdf, normal_two_sided_p};

/// Absolute tolerance used for ported code paths (the contract is 1e-6).
const ABS: f64 = 1e-9;
/// Relative tolerance for reference values below 1e-6.
const REL: f64 = 1e-6;

#[test]
fn ks_two_sample_matches_scipy() {
    let fx = fixture("ks.json");
    let mut fails = Failures::default();
    let cases = fx["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let a = sorted_sample(&case["reference"]);
        let b = sorted_sample(&case["current"]);
        let r = ks_2samp(&a, &b).unwrap();
        fails.push(check(
            &format!("{name} statistic"),
            r.statistic,
            f(&case["statistic"]),
            1e-12,
            REL,
        ));
        fails.push(check(
            &format!("{name} p"),
            r.p_value,
            f(&case["p_value"]),
            ABS,
            REL,
        ));
        let want_method = match case["method"].as_str().unwrap() {
            "exact" => KsMethod::Exact,
            _ => KsMethod::Asymptotic,
        };
        fails.expect(r.method == want_method, || {
            format!("{name}: method {:?}", r.method)
        });
        // Evidently: drift when p <= 0.05.
        let drift = Method::Ks.is_drift(r.p_value, 0.05);
        fails.expect(drift == case["evidently_drift"].as_bool().unwrap(), || {
            format!("{name}: evidently drift mismatch")
        });
        // Symmetry and the one-walk comparison agree.
        let s = ks_2samp(&b, &a).unwrap();
        fails.expect(s == r, || format!("{name}: not symmetric"));
        let c = compare_sorted(&a, &b).unwrap();
        fails.expect(c.ks == r, || format!("{name}: compare_sorted differs"));
    }
    fails.finish("ks_2samp", cases.len());
}

#[test]
fn kstwo_distribution_matches_scipy() {
    let fx = fixture("ks.json");
    let mut fails = Failures::default();
    let grid = fx["kstwo_sf"].as_array().unwrap();
    for p in grid {
        let n = p["n"].as_u64().unwrap();
        let x = f(&p["x"]);
        fails.push(check(
            &format!("kstwo.sf({x}, {n})"),
            kstwo_sf(n, x),
            f(&p["sf"]),
            ABS,
            REL,
        ));
        fails.push(check(
            &format!("kstwo.cdf({x}, {n})"),
            kstwo_cdf(n, x),
            f(&p["cdf"]),
            ABS,
            REL,
        ));
    }
    let sm = fx["smirnov"].as_array().unwrap();
    for p in sm {
        let n = p["n"].as_u64().unwrap();
        let x = f(&p["x"]);
        fails.push(check(
            &format!("smirnov({n}, {x})"),
            smirnov(n, x),
            f(&p["sf"]),
            ABS,
            REL,
        ));
    }
    let ko = fx["kolmogorov"].as_array().unwrap();
    for p in ko {
        let x = f(&p["x"]);
        fails.push(check(
            &format!("kolmogorov({x})"),
            kolmogorov(x),
            f(&p["sf"]),
            ABS,
            REL,
        ));
    }
    fails.finish("kolmogorov distributions", grid.len() + sm.len() + ko.len());
}

#[test]
fn wasserstein_matches_scipy_and_evidently() {
    let fx = fixture("wasserstein.json");
    let mut fails = Failures::default();
    let cases = fx["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let a = sorted_sample(&case["reference"]);
        let b = sorted_sample(&case["current"]);
        let w = wasserstein_distance(&a, &b).unwrap();
        let want = f(&case["distance"]);
        fails.push(check(
            &format!("{name} distance"),
            w,
            want,
            ABS * want.abs().max(1.0),
            REL,
        ));
        let std = population_std(&a).unwrap();
        fails.push(check(
            &format!("{name} std"),
            std,
            f(&case["reference_std"]),
            ABS,
            REL,
        ));
        let normed = wasserstein_normed(&a, &b).unwrap();
        let want_n = f(&case["normed"]);
        fails.push(check(
            &format!("{name} normed"),
            normed,
            want_n,
            ABS * want_n.abs().max(1.0),
            REL,
        ));
        let drift = Method::Wasserstein.is_drift(normed, 0.1);
        fails.expect(drift == case["evidently_drift"].as_bool().unwrap(), || {
            format!("{name}: drift mismatch")
        });
        let c = compare_sorted(&a, &b).unwrap();
        fails.expect(c.wasserstein == w && c.wasserstein_normed == normed, || {
            format!("{name}: compare_sorted differs")
        });
    }
    fails.finish("wasserstein", cases.len());
}

#[test]
fn psi_and_jensen_shannon_match_evidently() {
    let fx = fixture("binning.json");
    let mut fails = Failures::default();
    let numeric = fx["numeric"].as_array().unwrap();
    for case in numeric {
        let name = case["name"].as_str().unwrap();
        let a = sorted_sample(&case["reference"]);
        let b = sorted_sample(&case["current"]);
        let shares = binning::binned_shares_numeric(&a, &b, ValueKind::Numeric).unwrap();
        fails.expect(
            shares.edges.is_some() == case["histogram"].as_bool().unwrap(),
            || format!("{name}: histogram rule mismatch"),
        );
        if let (Some(edges), Some(want)) = (&shares.edges, case.get("edges")) {
            // serde_json's default float parser may be 1 ulp off on 17-digit
            // literals, so "identical" means within 2 ulp here.
            let ulp_close = |g: &[f64], w: &Value| {
                let w: Vec<f64> = w.as_array().unwrap().iter().map(f).collect();
                g.len() == w.len()
                    && g.iter()
                        .zip(&w)
                        .all(|(a, b)| (a - b).abs() <= 4.5e-16 * b.abs())
            };
            fails.expect(ulp_close(edges, want), || {
                format!("{name}: edges {edges:?} != {want}")
            });
            fails.expect(
                ulp_close(&shares.reference, &case["reference_shares"])
                    && ulp_close(&shares.current, &case["current_shares"]),
                || format!("{name}: shares differ"),
            );
        }
        let psi = binning::psi_numeric(&a, &b, ValueKind::Numeric).unwrap();
        fails.push(check(
            &format!("{name} psi"),
            psi,
            f(&case["psi"]),
            ABS,
            REL,
        ));
        fails.expect(
            Method::Psi.is_drift(psi, 0.1) == case["psi_drift"].as_bool().unwrap(),
            || format!("{name}: psi drift"),
        );
        let js = binning::jensen_shannon_numeric(&a, &b, ValueKind::Numeric).unwrap();
        fails.push(check(&format!("{name} js"), js, f(&case["js"]), ABS, REL));
        fails.expect(
            Method::JensenShannon.is_drift(js, 0.1) == case["js_drift"].as_bool().unwrap(),
            || format!("{name}: js drift"),
        );
    }
    let categorical = fx["categorical"].as_array().unwrap();
    for case in categorical {
        let name = case["name"].as_str().unwrap();
        let aligned = align_counts(&counts(&case["reference"]), &counts(&case["current"]));
        let psi = binning::psi_categorical(&aligned).unwrap();
        fails.push(check(
            &format!("{name} psi"),
            psi,
            f(&case["psi"]),
            ABS,
            REL,
        ));
        let js = binning::jensen_shannon_categorical(&aligned).unwrap();
        fails.push(check(&format!("{name} js"), js, f(&case["js"]), ABS, REL));
    }
    fails.finish("psi / jensen-shannon", numeric.len() + categorical.len());
}

#[test]
fn chi_square_z_and_linf_match_references() {
    let fx = fixture("categorical.json");
    let mut fails = Failures::default();
    let chi = fx["chi_square"].as_array().unwrap();
    for case in chi {
        let name = case["name"].as_str().unwrap();
        let aligned = align_counts(&counts(&case["reference"]), &counts(&case["current"]));
        let r = chi_square(&aligned).unwrap();
        let want_stat = f(&case["statistic"]);
        fails.push(check(
            &format!("{name} statistic"),
            r.statistic,
            want_stat,
            ABS * want_stat.max(1.0),
            REL,
        ));
        fails.push(check(
            &format!("{name} p"),
            r.p_value,
            f(&case["p_value"]),
            ABS,
            REL,
        ));
        fails.expect(r.dof == case["dof"].as_u64().unwrap(), || {
            format!("{name}: dof")
        });
        fails.expect(
            r.compared_rows == case["compared_rows"].as_u64().unwrap(),
            || format!("{name}: compared rows"),
        );
        fails.expect(
            r.new_category_rows == case["new_category_rows"].as_u64().unwrap(),
            || format!("{name}: new category rows"),
        );
        if let Some(ev) = case.get("evidently_p_value") {
            fails.push(check(
                &format!("{name} evidently p"),
                r.p_value,
                f(ev),
                ABS,
                REL,
            ));
            let drift = Method::Chi2.is_drift(r.p_value, 0.05);
            fails.expect(drift == case["evidently_drift"].as_bool().unwrap(), || {
                format!("{name}: evidently drift")
            });
        }
    }
    let z = fx["z_test"].as_array().unwrap();
    for case in z {
        let name = case["name"].as_str().unwrap();
        let aligned = align_counts(&counts(&case["reference"]), &counts(&case["current"]));
        let r = z_test(&aligned).unwrap();
        fails.push(check(
            &format!("{name} z"),
            r.statistic,
            f(&case["statistic"]),
            ABS,
            REL,
        ));
        // Evidently's own p (2*(1-cdf)) to 1e-6 absolute...
        fails.push(check(
            &format!("{name} evidently p"),
            r.p_value,
            f(&case["p_value"]),
            ABS,
            1.0,
        ));
        // ...and the accurate tail (2*norm.sf) relatively.
        fails.push(check(
            &format!("{name} accurate p"),
            r.p_value,
            f(&case["accurate_p_value"]),
            ABS,
            REL,
        ));
        let drift = Method::Z.is_drift(r.p_value, 0.05);
        fails.expect(drift == case["evidently_drift"].as_bool().unwrap(), || {
            format!("{name}: evidently drift")
        });
    }
    let linf = fx["l_infinity"].as_array().unwrap();
    for case in linf {
        let name = case["name"].as_str().unwrap();
        let aligned = align_counts(&counts(&case["reference"]), &counts(&case["current"]));
        fails.push(check(
            name,
            l_infinity(&aligned).unwrap(),
            f(&case["distance"]),
            1e-15,
            REL,
        ));
    }
    fails.finish("categorical", chi.len() + z.len() + linf.len());
}

#[test]
fn special_functions_match_scipy() {
    let fx = fixture("categorical.json");
    let mut fails = Failures::default();
    let grid = fx["chi2_sf"].as_array().unwrap();
    for p in grid {
        let (df, x) = (f(&p["df"]), f(&p["x"]));
        let want = f(&p["sf"]);
        // Tighter than the contract: 1e-12 absolute, 1e-10 relative.
        let got = chi2_sf(df, x);
        fails.push(check(
            &format!("chi2.sf({x}, {df})"),
            got,
            want,
            1e-12,
            1e-10,
        ));
        if want > 1e-300 {
            let r = (got - want).abs() / want;
            fails.expect(r < 1e-9, || {
                format!("chi2.sf({x}, {df}) relative {r:e} (got {got:e}, want {want:e})")
            });
        }
    }
    let normal = fx["normal"].as_array().unwrap();
    for p in normal {
        let z = f(&p["z"]);
        fails.push(check(
            &format!("2*norm.sf({z})"),
            normal_two_sided_p(z),
            f(&p["two_sided"]),
            1e-15,
            1e-12,
        ));
        fails.push(check(
            &format!("erfc({z})"),
            erfc(z),
            f(&p["erfc"]),
            1e-15,
            1e-12,
        ));
        fails.push(check(
            &format!("ndtr({z})"),
            normal_cdf(z),
            f(&p["cdf"]),
            1e-15,
            1e-12,
        ));
        fails.push(check(
            &format!("ndtr(-{z})"),
            normal_cdf(-z),
            f(&p["cdf_neg"]),
            1e-15,
            1e-12,
        ));
    }
    fails.finish("special functions", grid.len() + normal.len());
}

#[test]
fn benjamini_hochberg_matches_statsmodels() {
    let fx = fixture("multiple.json");
    let mut fails = Failures::default();
    let cases = fx["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p: Vec<f64> = case["p_values"].as_array().unwrap().iter().map(f).collect();
        let r = benjamini_hochberg(&p, f(&case["alpha"])).unwrap();
        let want: Vec<f64> = case["adjusted"].as_array().unwrap().iter().map(f).collect();
        for (i, (g, w)) in r.adjusted.iter().zip(&want).enumerate() {
            fails.push(check(&format!("{name}[{i}]"), *g, *w, 1e-15, 1e-12));
        }
        let want_r: Vec<bool> = case["reject"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        fails.expect(r.reject == want_r, || {
            format!("{name}: reject {:?} != {want_r:?}", r.reject)
        });
    }
    fails.finish("benjamini-hochberg", cases.len());
}

#[test]
fn default_method_and_verdicts_match_evidently() {
    let fx = fixture("select.json");
    let mut fails = Failures::default();
    let cases = fx["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let overrides = Overrides {
            method: case["method_override"]
                .as_str()
                .map(|m| Method::from_name(m).unwrap()),
            threshold: case["threshold_override"].as_f64(),
        };
        let verdict = match case["kind"].as_str().unwrap() {
            "numeric" => {
                let a = sorted_sample(&case["reference"]);
                let b = sorted_sample(&case["current"]);
                select::evaluate_numeric(FeatureKind::Numeric, &a, &b, &overrides).unwrap()
            }
            _ => {
                let a = counts(&case["reference"]["counts"]);
                let b = counts(&case["current"]["counts"]);
                select::evaluate_categorical(&a, &b, &overrides).unwrap()
            }
        };
        let want_method = Method::from_name(case["method"].as_str().unwrap()).unwrap();
        fails.expect(verdict.method == want_method, || {
            format!("{name}: method {:?} != {want_method:?}", verdict.method)
        });
        fails.push(check(
            &format!("{name} score"),
            verdict.score,
            f(&case["score"]),
            ABS,
            REL,
        ));
        fails.push(check(
            &format!("{name} threshold"),
            verdict.threshold,
            f(&case["threshold"]),
            0.0,
            0.0,
        ));
        fails.expect(
            verdict.drifted == case["drifted"].as_bool().unwrap(),
            || {
                format!(
                    "{name}: drifted {} (score {})",
                    verdict.drifted, verdict.score
                )
            },
        );
    }
    fails.finish("method selection", cases.len());
}
