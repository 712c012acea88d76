#!/usr/bin/env python3
"""Reference values for `steward_deployment::domain::stats` (A/B test statistics).

Writes `services/deployment/tests/data/stats_reference.json`, which the unit tests in
`src/domain/stats/reference_tests.rs` compare against. The values come from scipy and
statsmodels, never from the Rust code under test, so a wrong formula or a sloppy special
function fails the tests.

Reproduce (deterministic: fixed seeds, fixed grids; the output is byte-for-byte stable for the
pinned versions):

    python3 -m venv /tmp/stats-venv
    /tmp/stats-venv/bin/pip install scipy==1.14.1 numpy==2.2.6 statsmodels==0.15.0
    /tmp/stats-venv/bin/python services/deployment/scripts/stats_reference.py

Sections (each a list of records, one per line):
- norm_cdf   [x, cdf(x), sf(x)]                         scipy.stats.norm
- norm_ppf   [p, ppf(p)]                                scipy.stats.norm
- t_cdf      [df, t, cdf, sf]                           scipy.stats.t
- t_ppf      [df, p, ppf]                               scipy.stats.t
- chi2_sf    [df, x, sf]                                scipy.stats.chi2
- welch      {control, treatment, alpha, statistic, df, p_value, ci_low, ci_high}
             scipy.stats.ttest_ind(treatment, control, equal_var=False) and its
             confidence_interval(1 - alpha); summaries are {n, mean, m2} of the raw samples
- proportions {control: [successes, trials], treatment: [...], alpha, statistic, p_value,
             ci_low, ci_high}: statsmodels proportions_ztest (pooled) and
             confint_proportions_2indep(method="wald", compare="diff")
- srm        {observed, weights, p_value}: scipy.stats.chisquare against total * w / sum(w),
             groups with zero weight and zero observations dropped
- msprt_means / msprt_proportions: the mixture SPRT in the notation of Johari et al. (2017),
             equal n per arm, p = min(1, 1/Lambda(0)) and the confidence sequence found by
             root-finding Lambda(theta) = 1/alpha with scipy.optimize.brentq (an independent
             check of the closed form in the Rust code); mixing variance tau^2 = (0.1 sigma)^2
             with sigma^2 the pooled variance, as documented in `stats/msprt.rs`
"""

import json
import math
import os
import sys
import warnings

import numpy as np
import scipy
import statsmodels
from scipy import optimize, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "stats_reference.json"
)
TAU_K = 0.1  # must match DEFAULT_TAU_SCALE in src/domain/stats/msprt.rs


def f(x):
    """A plain Python float (json writes the shortest repr that round-trips exactly)."""
    return float(x)


def summary(xs):
    xs = np.asarray(xs, dtype=np.float64)
    mean = xs.mean()
    return {"n": int(xs.size), "mean": f(mean), "m2": f(((xs - mean) ** 2).sum())}


def norm_cases():
    xs = [0.0, 1e-10, 0.25, 0.5, 0.6744897, 0.67449, 0.7, 1.0, 1.5, 1.959963984540054, 2.5,
          3.0, 4.0, 5.0, 5.656, 5.66, 6.0, 7.5, 8.3, 10.0, 15.0, 20.0, 30.0, 37.0]
    cdf = [[f(s * x), f(stats.norm.cdf(s * x)), f(stats.norm.sf(s * x))]
           for x in xs for s in ([1.0] if x == 0.0 else [1.0, -1.0])]
    ps = [1e-300, 1e-100, 1e-30, 1e-12, 1e-8, 1e-6, 1e-4, 0.001, 0.01, 0.02, 0.02425, 0.025,
          0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.75, 0.9, 0.95, 0.975, 0.98, 0.99,
          0.999, 0.999999, 1.0 - 1e-10]
    ppf = [[f(p), f(stats.norm.ppf(p))] for p in ps]
    return cdf, ppf


DFS = [1.0, 1.5, 2.0, 3.0, 4.3, 5.0, 7.0, 10.0, 29.7, 100.0, 1000.0, 1e5, 1e6, 9.9e6, 1e7, 1e9, 1e12]


def t_cases():
    ts = [0.0, 0.01, 0.3, 1.0, 2.5, 4.0, 7.0, 12.0, 30.0, 100.0, 1e5]
    cdf = []
    for df in DFS:
        for t in ts:
            for s in ([1.0] if t == 0.0 else [1.0, -1.0]):
                x = s * t
                cdf.append([df, f(x), f(stats.t.cdf(x, df)), f(stats.t.sf(x, df))])
    ps = [1e-12, 1e-6, 0.001, 0.025, 0.05, 0.2, 0.45, 0.5, 0.8, 0.975, 0.999999]
    ppf = [[df, f(p), f(stats.t.ppf(p, df))] for df in DFS for p in ps]
    return cdf, ppf


def chi2_cases():
    out = []
    for df in [1, 2, 3, 4, 5, 7, 10, 25, 50, 100]:
        for x in [1e-6, 0.01, 0.1, 0.5, 1.0, 2.0, 3.84, 5.0, 10.0, 20.0, 40.0, 60.0, 100.0,
                  200.0, 400.0]:
            out.append([df, x, f(stats.chi2.sf(x, df))])
    return out


def welch_cases(rng):
    # (n_control, mean_c, sd_c, n_treatment, mean_t, sd_t, alpha)
    specs = [
        (2, 0.0, 1.0, 3, 0.5, 2.0, 0.05),  # df < 5
        (3, 10.0, 1.0, 2, 11.0, 0.5, 0.05),
        (4, 0.0, 3.0, 4, 1.0, 0.2, 0.1),
        (5, 1.0, 1.0, 40, 1.5, 1.0, 0.05),
        (12, 3.0, 0.5, 7, 3.1, 4.0, 0.01),
        (30, 0.0, 1.0, 30, 0.0, 1.0, 0.05),
        (50, 100.0, 15.0, 80, 104.0, 20.0, 0.2),
        (200, 0.0, 1.0, 200, 1.0, 1.0, 0.05),  # tiny p
        (500, 0.0, 1.0, 600, 0.6, 1.2, 0.05),  # very tiny p
        (1000, 10.0, 2.0, 1500, 10.1, 3.0, 0.05),
        (20000, 5.0, 1.0, 20000, 5.01, 1.0, 0.05),
        (100000, 0.0, 1.0, 80000, 0.02, 1.5, 0.01),
        (40, 1e9, 1.0, 40, 1e9 + 0.5, 1.0, 0.05),  # large offset
        (25, -3.0, 0.001, 25, -3.0005, 0.002, 0.05),
        (8, 0.0, 1.0, 2000, 2.0, 1.0, 0.05),  # df near n_small - 1
    ]
    out = []
    for nc, mc, sc, nt, mt, st_, alpha in specs:
        c = rng.normal(mc, sc, nc)
        t = rng.normal(mt, st_, nt)
        r = stats.ttest_ind(t, c, equal_var=False)
        ci = r.confidence_interval(confidence_level=1.0 - alpha)
        out.append({"control": summary(c), "treatment": summary(t), "alpha": alpha,
                    "statistic": f(r.statistic), "df": f(r.df), "p_value": f(r.pvalue),
                    "ci_low": f(ci.low), "ci_high": f(ci.high)})
    # A case with one constant arm (zero variance on one side is allowed).
    c = np.array([2.0, 2.0, 2.0, 2.0])
    t = rng.normal(3.0, 1.0, 6)
    r = stats.ttest_ind(t, c, equal_var=False)
    ci = r.confidence_interval(confidence_level=0.95)
    out.append({"control": summary(c), "treatment": summary(t), "alpha": 0.05,
                "statistic": f(r.statistic), "df": f(r.df), "p_value": f(r.pvalue),
                "ci_low": f(ci.low), "ci_high": f(ci.high)})
    return out


def proportion_cases():
    # (successes_c, trials_c, successes_t, trials_t, alpha)
    specs = [
        (1, 10, 4, 12, 0.05),
        (5, 40, 30, 60, 0.05),  # unequal n, tiny p
        (0, 50, 5, 50, 0.05),  # a zero count
        (50, 50, 45, 50, 0.1),  # a full count
        (120, 1000, 150, 1000, 0.05),
        (100, 10000, 300, 10000, 0.05),  # tiny p
        (1000, 10000, 1000, 10000, 0.05),  # no difference
        (2000, 20000, 1500, 10000, 0.01),
        (50000, 500000, 50600, 500000, 0.05),
        (3, 1000000, 9, 1000000, 0.05),  # rare events
        (700, 1000, 300, 1000, 0.05),  # huge effect
        (7, 9, 2, 3, 0.2),
    ]
    out = []
    for xc, nc, xt, nt, alpha in specs:
        z, p = proportions_ztest([xt, xc], [nt, nc])
        lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff",
                                           alpha=alpha)
        # Cross-check statsmodels against the textbook formulas.
        pc, pt = xc / nc, xt / nt
        pool = (xc + xt) / (nc + nt)
        z2 = (pt - pc) / math.sqrt(pool * (1 - pool) * (1 / nc + 1 / nt))
        assert math.isclose(z, z2, rel_tol=1e-12), (z, z2)
        half = stats.norm.isf(alpha / 2) * math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
        assert math.isclose(hi - lo, 2 * half, rel_tol=1e-12, abs_tol=1e-15)
        out.append({"control": [xc, nc], "treatment": [xt, nt], "alpha": alpha,
                    "statistic": f(z), "p_value": f(p), "ci_low": f(lo), "ci_high": f(hi)})
    return out


def srm_cases():
    specs = [
        ([5000, 5100], [1, 1]),
        ([50500, 49500], [0.5, 0.5]),
        ([1000, 1000, 1200], [1, 1, 1]),
        ([9000, 1000], [0.9, 0.1]),
        ([900, 100], [90, 10]),
        ([10000, 10500], [1, 1]),
        ([100000, 102000], [1, 1]),
        ([3, 7], [1, 1]),
        ([0, 10], [1, 1]),
        ([2000, 4100, 5900, 8000, 0], [1, 2, 3, 4, 0]),  # zero-weight group dropped
        ([100, 200, 300, 400, 500, 600, 700, 800], [1, 1, 1, 1, 1, 1, 1, 1]),
        ([10, 10, 10, 10, 10, 10, 10, 11], [1, 1, 1, 1, 1, 1, 1, 1.1]),
        ([333, 333, 334], [0.2, 0.3, 0.5]),
    ]
    out = []
    for obs, w in specs:
        keep = [i for i in range(len(obs)) if w[i] > 0]
        o = np.array([obs[i] for i in keep], dtype=np.float64)
        ww = np.array([w[i] for i in keep], dtype=np.float64)
        exp = o.sum() * ww / ww.sum()
        r = stats.chisquare(o, exp)
        out.append({"observed": obs, "weights": [float(x) for x in w], "p_value": f(r.pvalue)})
    return out


def mixture_lr(theta_hat, theta, n, v, tau2):
    """log Lambda_n(theta) of Johari et al. (2017), eq. for normal data, equal n per arm."""
    return (0.5 * math.log(v / (v + n * tau2))
            + n * n * tau2 * (theta_hat - theta) ** 2 / (2.0 * v * (v + n * tau2)))


def confidence_sequence(theta_hat, n, v, tau2, alpha):
    target = math.log(1.0 / alpha)
    g = lambda th: mixture_lr(theta_hat, th, n, v, tau2) - target  # noqa: E731
    width = 1.0
    while g(theta_hat + width) < 0:
        width *= 2.0
    lo = optimize.brentq(g, theta_hat - width, theta_hat, xtol=1e-300, rtol=1e-15, maxiter=500)
    hi = optimize.brentq(g, theta_hat, theta_hat + width, xtol=1e-300, rtol=1e-15, maxiter=500)
    return lo, hi


def msprt_means_cases(rng):
    specs = [(100, 0.0, 1.0, 0.0, 1.5, 0.05), (400, 10.0, 2.0, 10.4, 2.0, 0.05),
             (1000, 5.0, 1.0, 5.05, 1.0, 0.1), (5000, 0.0, 3.0, 0.3, 2.0, 0.01),
             (20, 1.0, 1.0, 3.0, 1.0, 0.05)]
    out = []
    for n, mc, sc, mt, st_, alpha in specs:
        c, t = rng.normal(mc, sc, n), rng.normal(mt, st_, n)
        sc_, st2 = summary(c), summary(t)
        vc, vt = sc_["m2"] / (n - 1), st2["m2"] / (n - 1)
        tau2 = TAU_K ** 2 * (sc_["m2"] + st2["m2"]) / (2 * n - 2)
        theta = st2["mean"] - sc_["mean"]
        v = vc + vt
        p = min(1.0, math.exp(-mixture_lr(theta, 0.0, n, v, tau2)))
        lo, hi = confidence_sequence(theta, n, v, tau2, alpha)
        out.append({"control": sc_, "treatment": st2, "alpha": alpha, "p_value": f(p),
                    "ci_low": f(lo), "ci_high": f(hi)})
    return out


def msprt_proportion_cases():
    specs = [(100, 10, 14, 0.05), (1000, 100, 130, 0.05), (10000, 1000, 1080, 0.05),
             (10000, 500, 505, 0.1), (50000, 2500, 2800, 0.01)]
    out = []
    for n, xc, xt, alpha in specs:
        pc, pt = xc / n, xt / n
        pool = (xc + xt) / (2 * n)
        tau2 = TAU_K ** 2 * pool * (1 - pool)
        theta = pt - pc
        p = min(1.0, math.exp(-mixture_lr(theta, 0.0, n, 2 * pool * (1 - pool), tau2)))
        lo, hi = confidence_sequence(theta, n, pc * (1 - pc) + pt * (1 - pt), tau2, alpha)
        out.append({"control": [xc, n], "treatment": [xt, n], "alpha": alpha,
                    "p_value": f(p), "ci_low": f(lo), "ci_high": f(hi)})
    return out


def write(doc, path):
    """One record per line: small, diffable, still plain JSON."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list):
            rows = ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in value)
            parts.append(f'  "{key}": [\n{rows}\n  ]')
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("{\n" + ",\n".join(parts) + "\n}\n")


def main():
    # scipy flags the 1e9-offset Welch case as "nearly identical" data; numpy's two-pass
    # variance is exact enough there (the offset case is the point of the test).
    warnings.filterwarnings("ignore", message="Precision loss occurred in moment calculation")
    rng = np.random.default_rng(20240611)
    norm_cdf, norm_ppf = norm_cases()
    t_cdf, t_ppf = t_cases()
    doc = {
        "generator": "services/deployment/scripts/stats_reference.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
        "norm_cdf": norm_cdf,
        "norm_ppf": norm_ppf,
        "t_cdf": t_cdf,
        "t_ppf": t_ppf,
        "chi2_sf": chi2_cases(),
        "welch": welch_cases(rng),
        "proportions": proportion_cases(),
        "srm": srm_cases(),
        "msprt_means": msprt_means_cases(rng),
        "msprt_proportions": msprt_proportion_cases(),
    }
    write(doc, OUT)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
