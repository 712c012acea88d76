#!/usr/bin/env python3
"""Generate the reference fixtures for the `steward-drift` crate.

Every expected value in `libs/drift/tests/fixtures/*.json` is computed here by the
reference implementations the crate mirrors:

* scipy (ks_2samp, kstwo, smirnov, kolmogorov, wasserstein_distance, chisquare,
  chi2, norm, jensenshannon),
* Evidently 0.7.23's own stat-test functions (PSI, Jensen-Shannon, normed
  Wasserstein, z-test, chi-square, K-S, default stat-test selection),
* statsmodels (Benjamini-Hochberg via multipletests).

Setup (PyPI only)::

    python3 -m venv /tmp/drift-venv
    /tmp/drift-venv/bin/pip install scipy numpy "pandas<3" evidently==0.7.23 statsmodels
    /tmp/drift-venv/bin/python libs/drift/scripts/drift_reference.py

Numeric inputs are either stored literally (small cases; values rounded to 10
significant digits so that every JSON parser reads back the very same double) or
described by a generator spec `{"dist", "seed", "n", ...}` that the Rust tests
regenerate bit-for-bit: SplitMix64 integers turned into doubles using only
+, -, *, floor (IEEE-exact and identical in Python and Rust).
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings

# Evidently iterates over Python sets of category labels, whose order (and thus
# the last bits of PSI / JS sums) depends on string hash randomisation: pin it so
# the fixtures are reproducible byte for byte.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import numpy as np
import pandas as pd
import scipy
import scipy.special as sc
from scipy import stats
from statsmodels.stats.multitest import multipletests

warnings.filterwarnings("ignore")

import evidently  # noqa: E402
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test  # noqa: E402
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon  # noqa: E402
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test  # noqa: E402
from evidently.legacy.calculations.stattests.psi import _psi  # noqa: E402
from evidently.legacy.calculations.stattests.registry import _get_default_stattest, get_stattest  # noqa: E402
from evidently.legacy.calculations.stattests.utils import get_binned_data  # noqa: E402
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (  # noqa: E402
    _wasserstein_distance_norm,
)
from evidently.legacy.calculations.stattests.z_stattest import (  # noqa: E402
    _z_stat_test,
    proportions_diff_z_stat_ind,
)
from evidently.legacy.core import ColumnType  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
MASK = (1 << 64) - 1


# --------------------------------------------------------------------------------------
# Deterministic generator shared with tests/common/mod.rs
# --------------------------------------------------------------------------------------
class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        # 53 random bits scaled by 2^-53: exact in IEEE doubles.
        return float(self.next_u64() >> 11) * (1.0 / 9007199254740992.0)


def generate(spec: dict) -> list[float]:
    """Regenerable data; keep in sync with `generate` in tests/common/mod.rs."""
    rng = SplitMix64(spec["seed"])
    n = spec["n"]
    loc = float(spec.get("loc", 0.0))
    scale = float(spec.get("scale", 1.0))
    dist = spec["dist"]
    out = []
    for _ in range(n):
        if dist == "uniform":
            u = rng.uniform()
            out.append(loc + scale * u)
        elif dist == "normalish":  # Irwin-Hall(4), centred
            u1 = rng.uniform()
            u2 = rng.uniform()
            u3 = rng.uniform()
            u4 = rng.uniform()
            out.append(loc + scale * (u1 + u2 + u3 + u4 - 2.0))
        elif dist == "square":  # right-skewed
            u = rng.uniform()
            out.append(loc + scale * u * u)
        elif dist == "int":  # ties: loc + floor(u * k) * scale
            u = rng.uniform()
            out.append(loc + math.floor(u * spec["k"]) * scale)
        else:
            raise ValueError(dist)
    return out


def short(values: list[float]) -> list[float]:
    """Round to 10 significant digits so the JSON text is parsed exactly everywhere."""
    return [float(f"{v:.10g}") for v in values]


def sample(spec_or_values) -> tuple[object, list[float]]:
    """Return (fixture representation, values)."""
    if isinstance(spec_or_values, dict):
        return {"gen": spec_or_values}, generate(spec_or_values)
    values = [float(v) for v in spec_or_values]
    return {"values": values}, values


def stored(spec: dict) -> list[float]:
    return short(generate(spec))


def f(x) -> float:
    return float(x)


def write(name: str, payload: dict) -> None:
    payload = {
        "generated_by": "libs/drift/scripts/drift_reference.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
            "evidently": evidently.__version__,
        },
        **payload,
    }
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1, allow_nan=False)
        fh.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def g(dist, seed, n, **kw):
    return {"dist": dist, "seed": seed, "n": n, **kw}


# --------------------------------------------------------------------------------------
# Kolmogorov-Smirnov
# --------------------------------------------------------------------------------------
def ks_fixtures() -> None:
    cases = []

    def add(name, ref, cur):
        ref_repr, ref_vals = sample(ref)
        cur_repr, cur_vals = sample(cur)
        n1, n2 = len(ref_vals), len(cur_vals)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = stats.ks_2samp(ref_vals, cur_vals)
        method = "exact" if max(n1, n2) <= 10000 else "asymptotic"
        # scipy falls back from exact to asymptotic with a RuntimeWarning.
        if any("Switching to method=asymp" in str(w.message) for w in caught):
            method = "asymptotic"
        evid_p, evid_drift = _ks_stat_test(pd.Series(ref_vals), pd.Series(cur_vals), ColumnType.Numerical, 0.05)
        cases.append(
            {
                "name": name,
                "reference": ref_repr,
                "current": cur_repr,
                "statistic": f(res.statistic),
                "p_value": f(res.pvalue),
                "method": method,
                "evidently_p_value": f(evid_p),
                "evidently_drift": bool(evid_drift),
            }
        )

    # ---- exact path (max(n1, n2) <= 10000)
    add("tiny_1v1", [1.0], [2.0])
    add("tiny_1v1_equal", [1.0], [1.0])
    add("tiny_2v1", [1.0, 2.0], [3.0])
    add("tiny_3v1_between", [1.0, 2.0, 3.0], [1.5])
    add("tiny_3v2_ties", [1.0, 2.0, 2.0], [2.0, 3.0])
    add("identical_samples", stored(g("normalish", 11, 40)), stored(g("normalish", 11, 40)))
    add("separated_5v5", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    add("separated_30v40", stored(g("uniform", 12, 30)), stored(g("uniform", 13, 40, loc=1.5)))
    add("equal_50v50_shift", stored(g("normalish", 21, 50)), stored(g("normalish", 22, 50, loc=0.3)))
    add("equal_100v100_same", stored(g("normalish", 23, 100)), stored(g("normalish", 24, 100)))
    add("unequal_60v45", stored(g("normalish", 25, 60)), stored(g("normalish", 26, 45, loc=0.2)))
    add("unequal_97v13", stored(g("square", 27, 97)), stored(g("uniform", 28, 13)))
    add("ties_80v70_int5", stored(g("int", 29, 80, k=5)), stored(g("int", 30, 70, k=5)))
    add("ties_int_shifted", stored(g("int", 31, 90, k=4)), stored(g("int", 32, 60, k=4, loc=1.0)))
    add("gen_1000v800", g("normalish", 33, 1000), g("normalish", 34, 800, loc=0.1))
    add("gen_3000v2000_scale", g("normalish", 35, 3000), g("normalish", 36, 2000, scale=1.2))
    add("gen_3000v2999", g("uniform", 37, 3000), g("uniform", 38, 2999, loc=0.02))
    add("gen_2000v3000_ties", g("int", 39, 2000, k=20), g("int", 40, 3000, k=20))
    add("gen_10000v10000", g("normalish", 41, 10000), g("normalish", 42, 10000, loc=0.02))
    add("gen_10000v7000", g("normalish", 43, 10000), g("normalish", 44, 7000, loc=0.03))
    add("gen_10000v5_small", g("normalish", 45, 10000), g("normalish", 46, 5, loc=0.5))
    add("gen_5000v5000_large_d", g("normalish", 47, 5000), g("normalish", 48, 5000, loc=0.5))
    # ---- asymptotic path (max(n1, n2) > 10000): each _kolmogn branch
    add("asym_10001v3", g("normalish", 51, 10001), g("normalish", 52, 3, loc=0.4))  # n=3
    add("asym_20000v50", g("normalish", 53, 20000), g("normalish", 54, 50, loc=0.3))  # n=50
    add("asym_20000v140_far", g("normalish", 55, 20000), g("normalish", 56, 140, loc=0.6))
    add("asym_20000v200", g("normalish", 57, 20000), g("normalish", 58, 200, loc=0.1))
    add("asym_20000v20000_same", g("normalish", 59, 20000), g("normalish", 60, 20000))
    add("asym_20000v15000_shift", g("normalish", 61, 20000), g("normalish", 62, 15000, loc=0.03))
    add("asym_20000v15000_far", g("normalish", 63, 20000), g("normalish", 64, 15000, loc=0.3))
    add("asym_100000v120000", g("normalish", 65, 100000), g("normalish", 66, 120000, loc=0.005))
    add("asym_250000v300000_pelz", g("normalish", 67, 250000), g("normalish", 68, 300000, loc=0.002))
    add("asym_12000v12000_huge_d", g("uniform", 69, 12000), g("uniform", 70, 12000, loc=0.9))
    add("asym_30000v20000_ties", g("int", 71, 30000, k=50), g("int", 72, 20000, k=50))
    add("asym_200000v200000_mid", g("normalish", 73, 200000), g("normalish", 74, 200000, loc=0.006))

    # Direct kstwo.sf grid: every branch of scipy.stats._ksstats._kolmogn (sf).
    grid = []
    for n in [1, 2, 3, 5, 10, 50, 100, 139, 140, 141, 500, 1000, 10000, 99999, 100000, 100001, 500000, 1000000, 1000001, 2000000]:
        xs = set()
        for x in [0.3 / n, 0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.9, 1.0 - 1.0 / (2 * n), 0.5, 0.6]:
            xs.add(x)
        for nx2 in [0.1, 0.5, 0.754, 0.76, 1.0, 2.0, 2.19, 2.21, 3.0, 3.99, 4.01, 10.0, 17.9, 18.1, 50.0, 369.0, 371.0]:
            xs.add(math.sqrt(nx2 / n))
        for c in [1.0, 1.39, 1.41, 2.0]:
            xs.add((c / n) ** (2.0 / 3.0))
        for x in sorted(xs):
            if 0.0 < x < 1.0:
                grid.append({"n": n, "x": x, "sf": f(stats.kstwo.sf(x, n)), "cdf": f(stats.kstwo.cdf(x, n))})
    smirnov = []
    for n in [1, 2, 5, 10, 11, 50, 100, 1000, 10000, 100000, 1000000, 1000001]:
        for x in [1e-9, 0.5 / n, 1.0 / n, 2.0 / n, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0 - 1.0 / n]:
            if 0.0 <= x <= 1.0:
                smirnov.append({"n": n, "x": x, "sf": f(sc.smirnov(n, x))})
    kolmogorov = [{"x": x, "sf": f(sc.kolmogorov(x))} for x in [0.01, 0.04, 0.05, 0.1, 0.3, 0.5, 0.8, 0.82, 0.83, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]]

    write("ks.json", {"cases": cases, "kstwo_sf": grid, "smirnov": smirnov, "kolmogorov": kolmogorov})


# --------------------------------------------------------------------------------------
# Wasserstein
# --------------------------------------------------------------------------------------
def wasserstein_fixtures() -> None:
    cases = []

    def add(name, ref, cur):
        ref_repr, ref_vals = sample(ref)
        cur_repr, cur_vals = sample(cur)
        wd = stats.wasserstein_distance(ref_vals, cur_vals)
        normed, drift = _wasserstein_distance_norm(pd.Series(ref_vals), pd.Series(cur_vals), ColumnType.Numerical, 0.1)
        cases.append(
            {
                "name": name,
                "reference": ref_repr,
                "current": cur_repr,
                "distance": f(wd),
                "reference_std": f(np.std(ref_vals)),
                "normed": f(normed),
                "evidently_drift": bool(drift),
            }
        )

    add("tiny", [0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
    add("scipy_doc", [0.0, 1.0, 3.0], [5.0, 6.0, 8.0, 9.0])
    add("constant_reference", [2.0, 2.0, 2.0], [2.0, 2.5])
    add("identical", stored(g("normalish", 81, 50)), stored(g("normalish", 81, 50)))
    add("ties", stored(g("int", 82, 60, k=6)), stored(g("int", 83, 40, k=6, loc=1.0)))
    add("small_shift", stored(g("normalish", 84, 120)), stored(g("normalish", 85, 90, loc=0.05)))
    add("gen_5000v3000", g("normalish", 86, 5000, loc=10.0, scale=3.0), g("normalish", 87, 3000, loc=10.5, scale=3.0))
    add("gen_skew", g("square", 88, 4000, scale=100.0), g("square", 89, 4500, scale=110.0))
    add("gen_100000v80000", g("normalish", 90, 100000), g("normalish", 91, 80000, loc=0.01))
    add("gen_small_std", g("uniform", 92, 2000, scale=1e-4), g("uniform", 93, 2000, loc=1e-5, scale=1e-4))
    write("wasserstein.json", {"cases": cases})


# --------------------------------------------------------------------------------------
# Binning, PSI, Jensen-Shannon
# --------------------------------------------------------------------------------------
def expand_counts(counts: dict) -> list[str]:
    out = []
    for key in sorted(counts):
        out.extend([key] * counts[key])
    return out


def binning_fixtures() -> None:
    numeric = []

    def add_num(name, ref, cur):
        ref_repr, ref_vals = sample(ref)
        cur_repr, cur_vals = sample(cur)
        rs, cs = pd.Series(ref_vals), pd.Series(cur_vals)
        psi, psi_drift = _psi(rs, cs, ColumnType.Numerical, 0.1)
        js, js_drift = _jensenshannon(rs, cs, ColumnType.Numerical, 0.1)
        rp, cp = get_binned_data(rs, cs, ColumnType.Numerical, 30, True)
        rpj, cpj = get_binned_data(rs, cs, ColumnType.Numerical, 30, False)
        n_vals = rs.nunique()
        case = {
            "name": name,
            "reference": ref_repr,
            "current": cur_repr,
            "histogram": bool(n_vals > 20),
            "psi": f(psi),
            "psi_drift": bool(psi_drift),
            "js": f(js),
            "js_drift": bool(js_drift),
        }
        if n_vals > 20:
            edges = np.histogram_bin_edges(np.concatenate([ref_vals, cur_vals]), bins="sturges")
            case["edges"] = [f(e) for e in edges]
            case["reference_shares_filled"] = [f(v) for v in rp]
            case["current_shares_filled"] = [f(v) for v in cp]
            case["reference_shares"] = [f(v) for v in rpj]
            case["current_shares"] = [f(v) for v in cpj]
        numeric.append(case)

    add_num("hist_500v800", g("normalish", 101, 500), g("normalish", 102, 800, loc=0.2))
    add_num("hist_same", g("normalish", 103, 3000), g("normalish", 104, 2500))
    add_num("hist_disjoint_bins", g("uniform", 105, 400), g("uniform", 106, 300, loc=0.7))
    add_num("hist_tiny_shares", g("normalish", 107, 20000), g("normalish", 108, 15000, loc=0.8))
    add_num("hist_skew", g("square", 109, 5000, scale=50.0), g("square", 110, 4000, scale=60.0))
    add_num("hist_21_unique", g("int", 111, 600, k=21), g("int", 112, 500, k=21, loc=1.0))
    add_num("values_20_unique", g("int", 113, 600, k=20), g("int", 114, 500, k=20, loc=3.0))
    add_num("values_5_unique", g("int", 115, 1500, k=5), g("int", 116, 1200, k=6))
    add_num("values_stored", stored(g("int", 117, 50, k=4)), stored(g("int", 118, 40, k=3, loc=2.0)))
    add_num("hist_stored", stored(g("normalish", 119, 60)), stored(g("normalish", 120, 70, loc=0.5)))

    categorical = []

    def add_cat(name, ref_counts, cur_counts):
        rs = pd.Series(expand_counts(ref_counts))
        cs = pd.Series(expand_counts(cur_counts))
        psi, psi_drift = _psi(rs, cs, ColumnType.Categorical, 0.1)
        js, js_drift = _jensenshannon(rs, cs, ColumnType.Categorical, 0.1)
        categorical.append(
            {
                "name": name,
                "reference": ref_counts,
                "current": cur_counts,
                "psi": f(psi),
                "psi_drift": bool(psi_drift),
                "js": f(js),
                "js_drift": bool(js_drift),
            }
        )

    add_cat("same_shares", {"a": 50, "b": 30, "c": 20}, {"a": 100, "b": 60, "c": 40})
    add_cat("shifted", {"a": 50, "b": 30, "c": 20}, {"a": 20, "b": 30, "c": 50})
    add_cat("new_category", {"a": 50, "b": 50}, {"a": 40, "b": 40, "z": 20})
    add_cat("missing_category", {"a": 40, "b": 40, "c": 20}, {"a": 50, "b": 50})
    add_cat("tiny_share", {"a": 200000, "b": 3}, {"a": 100, "b": 100})
    add_cat("binary", {"no": 900, "yes": 100}, {"no": 700, "yes": 300})
    add_cat("many", {f"k{i:02d}": 10 + 3 * i for i in range(40)}, {f"k{i:02d}": 130 - 3 * i for i in range(40)})
    write("binning.json", {"numeric": numeric, "categorical": categorical})


# --------------------------------------------------------------------------------------
# Categorical tests: chi-square, z, L-infinity; special functions
# --------------------------------------------------------------------------------------
def categorical_fixtures() -> None:
    chi = []

    def add_chi(name, ref_counts, cur_counts):
        ref_keys = sorted(k for k, v in ref_counts.items() if v > 0)
        ref_total = sum(ref_counts[k] for k in ref_keys)
        compared = sum(cur_counts.get(k, 0) for k in ref_keys)
        new_rows = sum(v for k, v in cur_counts.items() if k not in ref_keys)
        f_obs = np.array([cur_counts.get(k, 0) for k in ref_keys], dtype=float)
        f_exp = np.array([ref_counts[k] / ref_total * compared for k in ref_keys])
        res = stats.chisquare(f_obs, f_exp)
        case = {
            "name": name,
            "reference": ref_counts,
            "current": cur_counts,
            "statistic": f(res.statistic),
            "dof": len(ref_keys) - 1,
            "p_value": f(res.pvalue),
            "compared_rows": compared,
            "new_category_rows": new_rows,
        }
        if new_rows == 0:
            p, drift = _chi_stat_test(pd.Series(expand_counts(ref_counts)), pd.Series(expand_counts(cur_counts)), ColumnType.Categorical, 0.05)
            case["evidently_p_value"] = f(p)
            case["evidently_drift"] = bool(drift)
        chi.append(case)

    add_chi("dof1", {"a": 30, "b": 70}, {"a": 40, "b": 60})
    add_chi("dof2_same", {"a": 50, "b": 30, "c": 20}, {"a": 100, "b": 60, "c": 40})
    add_chi("dof2_shift", {"a": 50, "b": 30, "c": 20}, {"a": 45, "b": 30, "c": 35})
    add_chi("dof4", {"a": 10, "b": 20, "c": 30, "d": 25, "e": 15}, {"a": 12, "b": 18, "c": 33, "d": 20, "e": 17})
    add_chi("missing_in_current", {"a": 40, "b": 40, "c": 20}, {"a": 50, "b": 50})
    add_chi("new_categories", {"a": 40, "b": 60}, {"a": 30, "b": 50, "x": 15, "y": 5})
    add_chi("tiny_p", {"a": 5000, "b": 5000, "c": 5000}, {"a": 7000, "b": 5000, "c": 3000})
    add_chi("tiny_p_extreme", {"a": 50000, "b": 50000}, {"a": 80000, "b": 20000})
    add_chi("dof39", {f"k{i:02d}": 10 + 3 * i for i in range(40)}, {f"k{i:02d}": 130 - 3 * i for i in range(40)})
    add_chi("dof99_near", {f"k{i:03d}": 100 + (i % 7) for i in range(100)}, {f"k{i:03d}": 100 + (i % 5) for i in range(100)})
    add_chi("dof499_near", {f"k{i:03d}": 50 + (i % 11) for i in range(500)}, {f"k{i:03d}": 50 + (i % 13) for i in range(500)})

    z = []

    def add_z(name, ref_counts, cur_counts):
        rs = pd.Series(expand_counts(ref_counts))
        cs = pd.Series(expand_counts(cur_counts))
        p, drift = _z_stat_test(rs, cs, ColumnType.Categorical, 0.05)
        keys = sorted(set(rs.unique()) | set(cs.unique()))
        if rs.nunique() == 1 and cs.nunique() == 1 and rs.unique()[0] == cs.unique()[0]:
            zstat = 0.0
        else:
            zstat = proportions_diff_z_stat_ind(rs.apply(lambda x: 0 if x == keys[0] else 1), cs.apply(lambda x: 0 if x == keys[0] else 1))
        z.append(
            {
                "name": name,
                "reference": ref_counts,
                "current": cur_counts,
                "statistic": f(zstat),
                "p_value": f(p),
                "accurate_p_value": 1.0 if p == 1 else f(2.0 * stats.norm.sf(abs(zstat))),
                "evidently_drift": bool(drift),
            }
        )

    add_z("binary_same", {"no": 90, "yes": 10}, {"no": 180, "yes": 20})
    add_z("binary_shift", {"no": 90, "yes": 10}, {"no": 80, "yes": 20})
    add_z("single_same_value", {"a": 50}, {"a": 70})
    add_z("single_vs_two", {"a": 50}, {"a": 40, "b": 10})
    add_z("disjoint_single", {"a": 30}, {"b": 30})
    add_z("three_values_lumped", {"a": 30, "b": 30, "c": 40}, {"a": 50, "b": 25, "c": 25})
    add_z("tiny_p", {"no": 5000, "yes": 5000}, {"no": 6000, "yes": 4000})
    add_z("extreme", {"no": 90000, "yes": 10000}, {"no": 50000, "yes": 50000})

    linf = []
    for name, r, c in [
        ("same", {"a": 5, "b": 5}, {"a": 10, "b": 10}),
        ("shift", {"a": 50, "b": 30, "c": 20}, {"a": 20, "b": 30, "c": 50}),
        ("new", {"a": 50, "b": 50}, {"a": 40, "b": 40, "z": 20}),
    ]:
        keys = sorted(set(r) | set(c))
        rt, ct = sum(r.values()), sum(c.values())
        rp = np.array([r.get(k, 0) / rt for k in keys])
        cp = np.array([c.get(k, 0) / ct for k in keys])
        linf.append({"name": name, "reference": r, "current": c, "distance": f(np.max(np.abs(rp - cp)))})

    chi2_sf = []
    for df in [1, 2, 3, 4, 5, 10, 39, 40, 41, 42, 99, 100, 399, 400, 401, 1000, 4999, 20000]:
        for mult in [0.01, 0.1, 0.5, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.3, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]:
            x = df * mult
            chi2_sf.append({"df": df, "x": x, "sf": f(stats.chi2.sf(x, df))})
        for x in [1e-300, 1e-10, 0.3, 1.0, 2.5, 40.0, 200.0, 700.0, 1400.0, 1480.0]:
            chi2_sf.append({"df": df, "x": x, "sf": f(stats.chi2.sf(x, df))})

    normal = []
    for zv in [0.0, 1e-8, 0.1, 0.5, 0.7, 1.0, 1.5, 1.96, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 8.5, 10.0, 15.0, 20.0, 30.0, 37.0, 38.5]:
        normal.append({"z": zv, "two_sided": f(2.0 * stats.norm.sf(zv)), "erfc": f(sc.erfc(zv)), "cdf": f(stats.norm.cdf(zv)), "cdf_neg": f(stats.norm.cdf(-zv))})

    write("categorical.json", {"chi_square": chi, "z_test": z, "l_infinity": linf, "chi2_sf": chi2_sf, "normal": normal})


# --------------------------------------------------------------------------------------
# Benjamini-Hochberg
# --------------------------------------------------------------------------------------
def multiple_fixtures() -> None:
    cases = []
    vectors = [
        [0.01, 0.04, 0.03, 0.2, 0.5],
        [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.222, 0.251, 0.269, 0.275, 0.34, 0.341, 0.384, 0.569, 0.594, 0.696, 0.762, 0.94, 0.942, 0.975, 0.986],
        [0.05, 0.05, 0.05, 0.05],
        [0.0, 1.0, 0.5, 0.0, 0.02],
        [0.9],
        [0.04, 0.04, 0.01, 0.3, 0.3, 0.049],
        [1e-300, 1e-20, 0.5, 0.9999],
    ]
    for i, p in enumerate(vectors):
        for alpha in [0.05, 0.1]:
            reject, corrected, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
            cases.append({"name": f"v{i}_a{alpha}", "p_values": p, "alpha": alpha, "adjusted": [f(v) for v in corrected], "reject": [bool(v) for v in reject]})
    write("multiple.json", {"cases": cases})


# --------------------------------------------------------------------------------------
# Default method selection and full verdicts (Evidently's registry)
# --------------------------------------------------------------------------------------
def select_fixtures() -> None:
    cases = []

    def run(name, kind, ref_repr, cur_repr, rs, cs, method=None, threshold=None):
        ctype = {"numeric": ColumnType.Numerical, "categorical": ColumnType.Categorical}[kind]
        if method is None:
            st = _get_default_stattest(rs, cs, ctype)
        else:
            st = get_stattest(rs, cs, ctype, method)
        res = st(rs, cs, ctype, threshold)
        cases.append(
            {
                "name": name,
                "kind": kind,
                "reference": ref_repr,
                "current": cur_repr,
                "method_override": method,
                "threshold_override": threshold,
                "method": st.name,
                "score": f(res.drift_score),
                "threshold": f(res.actual_threshold),
                "drifted": bool(res.drifted),
            }
        )

    def num(name, ref, cur, **kw):
        ref_repr, rv = sample(ref)
        cur_repr, cv = sample(cur)
        run(name, "numeric", ref_repr, cur_repr, pd.Series(rv), pd.Series(cv), **kw)

    def cat(name, ref_counts, cur_counts, **kw):
        run(name, "categorical", {"counts": ref_counts}, {"counts": cur_counts}, pd.Series(expand_counts(ref_counts)), pd.Series(expand_counts(cur_counts)), **kw)

    # reference rows <= 1000
    num("small_num_ks", g("normalish", 201, 1000), g("normalish", 202, 900, loc=0.1))
    num("small_num_ks_same", g("normalish", 203, 500), g("normalish", 204, 400))
    num("small_num_6_unique_ks", g("int", 205, 800, k=6), g("int", 206, 700, k=6))
    num("small_num_5_unique_chi", g("int", 207, 800, k=5), g("int", 208, 700, k=5, scale=1.0))
    num("small_num_3_unique_chi", g("int", 209, 300, k=3), g("int", 210, 300, k=3))
    num("small_num_2_unique_z", g("int", 211, 300, k=2), g("int", 212, 200, k=2))
    num("small_num_1_unique_z", [1.0] * 20, [1.0] * 30)
    num("small_num_union_6_unique", g("int", 213, 300, k=3), g("int", 214, 300, k=3, loc=3.0))
    cat("small_cat_chi", {"a": 300, "b": 300, "c": 400}, {"a": 330, "b": 270, "c": 400})
    cat("small_cat_z", {"a": 300, "b": 700}, {"a": 380, "b": 620})
    cat("small_cat_z_one_sided_new", {"a": 300}, {"a": 380, "b": 20})
    # reference rows > 1000
    num("large_num_wasserstein", g("normalish", 221, 1001), g("normalish", 222, 1200, loc=0.15))
    num("large_num_wasserstein_same", g("normalish", 223, 5000), g("normalish", 224, 4000))
    num("large_num_5_unique_js", g("int", 225, 2000, k=5), g("int", 226, 1500, k=4, loc=1.0))
    num("large_num_6_unique_wasserstein", g("int", 229, 2000, k=5), g("int", 230, 1500, k=5, loc=1.0))
    num("large_num_2_unique_js", g("int", 227, 2000, k=2), g("int", 228, 1500, k=2))
    cat("large_cat_js", {"a": 600, "b": 300, "c": 200}, {"a": 300, "b": 300, "c": 500})
    cat("large_cat_js_same", {"a": 6000, "b": 3000}, {"a": 600, "b": 300})
    # overrides
    num("override_psi", g("normalish", 231, 800), g("normalish", 232, 700, loc=0.3), method="psi")
    num("override_ks_threshold", g("normalish", 233, 2000), g("normalish", 234, 1500, loc=0.05), method="ks", threshold=0.2)
    num("override_wasserstein_small", g("normalish", 235, 300), g("normalish", 236, 300, loc=0.2), method="wasserstein")
    num("override_wasserstein_threshold", g("normalish", 237, 3000), g("normalish", 238, 3000, loc=0.1), threshold=0.05)
    cat("override_cat_psi", {"a": 600, "b": 300, "c": 100}, {"a": 500, "b": 300, "c": 200}, method="psi")
    cat("override_cat_chi_large", {"a": 600, "b": 300, "c": 200}, {"a": 560, "b": 330, "c": 210}, method="chisquare")
    cat("override_cat_z_threshold", {"a": 300, "b": 700}, {"a": 330, "b": 670}, threshold=0.5)
    write("select.json", {"cases": cases})


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    ks_fixtures()
    wasserstein_fixtures()
    binning_fixtures()
    categorical_fixtures()
    multiple_fixtures()
    select_fixtures()


if __name__ == "__main__":
    main()
