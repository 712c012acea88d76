#!/usr/bin/env python3
"""Evidently baseline for `steward-bench monitoring`.

Times Evidently's data drift report (``Report([DataDriftPreset()])``, all
defaults) on the columns the Rust bench wrote to DIR and prints Evidently's
per-column results, so the bench can compare them with Steward's report.

Usage:
    python3 evidently_drift.py DIR [--repeat N]

DIR holds:
    meta.json   {"numeric": [...], "categorical": [...],
                 "reference_rows": R, "current_rows": C}
    ref_NAME.f64 / cur_NAME.f64   numeric columns, little-endian float64
    ref_NAME.u8  / cur_NAME.u8    categorical columns, one code per row;
                                  code k is the category string "k<k>"

Environment (see requirements-evidently.txt):
    python3 -m venv V && V/bin/pip install -r bench/scripts/requirements-evidently.txt

Output: exactly one JSON object on stdout, everything else on stderr:
    {
      "seconds": median of the timed runs,
      "runs": [seconds of each run],
      "dataset_seconds": median time of Dataset.from_pandas (ref + cur), not in "seconds",
      "evidently_version": "...", "pandas_version": "...", "numpy_version": "...",
      "reference_rows": R, "current_rows": C,
      "dataset_drift": bool,            # share of drifted columns >= drift_share_threshold
      "drift_share": float,             # share of drifted columns (Evidently's DriftedColumnsCount.share)
      "drift_share_threshold": 0.5,     # DataDriftPreset(drift_share=...)
      "drifted_columns": int,
      "features": {NAME: {"method": "...", "score": float, "threshold": float, "drifted": bool}},
      "max_rss_bytes": peak RSS of the whole process,
      "rss_before_report_bytes": peak RSS after loading the data, before the first report
    }

Threshold semantics (Evidently 0.7.23, legacy stattests): distance methods
("Wasserstein distance (normed)", "Jensen-Shannon distance", "PSI", ...) flag
drift when score >= threshold; p-value tests ("K-S p_value",
"chi-square p_value", "Z-test p_value", ...) flag drift when score < threshold.
The per-column "drifted" flag is read from Evidently's own result, not
recomputed here, unless that result is unavailable.

Timed: ``report.run(current, reference)`` plus ``snapshot.dict()`` (the
results we read). Not timed: reading the files, building the DataFrames, and
wrapping them in evidently Datasets (reported separately as dataset_seconds).
"""

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

EXPECTED_EVIDENTLY = "0.7.23"

# Display names of Evidently stattests whose score is a p-value (drift when
# score < threshold). Only used when Evidently's own per-column flag cannot be
# read from the snapshot.
_PVALUE_METHODS = {
    "K-S p_value",
    "chi-square p_value",
    "Z-test p_value",
    "Anderson-Darling",
    "Cramer-von Mises",
    "Epps-Singleton",
    "Fisher's Exact test",
    "g_test",
    "Mann-Whitney U-rank test",
    "t_test",
    "Total-Variation-Distance",
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def die(msg, code=2):
    log(f"evidently_drift.py: error: {msg}")
    sys.exit(code)


def finite_or_none(x):
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def peak_rss_bytes():
    """Peak resident set size of this process so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def load_frames(directory, np, pd):
    meta_path = os.path.join(directory, "meta.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read {meta_path}: {e}")
    numeric = list(meta.get("numeric", []))
    categorical = list(meta.get("categorical", []))
    rows = {"ref": int(meta["reference_rows"]), "cur": int(meta["current_rows"])}
    if not numeric and not categorical:
        die("meta.json lists no columns")
    # code k -> "k<k>"; object dtype, like a string column read by pandas < 3
    labels = np.array([f"k{i}" for i in range(256)], dtype=object)

    frames = {}
    for side in ("ref", "cur"):
        cols = {}
        for name in numeric:
            path = os.path.join(directory, f"{side}_{name}.f64")
            arr = np.fromfile(path, dtype="<f8")
            if arr.size != rows[side]:
                die(f"{path}: {arr.size} values, meta.json says {rows[side]}")
            cols[name] = arr
        for name in categorical:
            path = os.path.join(directory, f"{side}_{name}.u8")
            arr = np.fromfile(path, dtype=np.uint8)
            if arr.size != rows[side]:
                die(f"{path}: {arr.size} values, meta.json says {rows[side]}")
            cols[name] = labels[arr]
        frames[side] = pd.DataFrame(cols, columns=numeric + categorical)
    return meta, numeric, categorical, frames["ref"], frames["cur"]


def _metric_type(metric):
    cfg = metric.get("config") or {}
    t = str(cfg.get("type") or "")
    if t:
        return t.rsplit(":", 1)[-1]
    return str(metric.get("metric_name") or "").split("(", 1)[0]


def _scalar(value, key=None):
    if isinstance(value, dict):
        if key is not None and key in value:
            return value[key]
        if "value" in value:
            return value["value"]
        return None
    return value


def extract(snapshot, columns, drift_share_threshold):
    """Per-column and dataset drift from an Evidently 0.7.x snapshot."""
    d = snapshot.dict()
    features = {}
    count = share = None
    for metric in d.get("metrics", []):
        kind = _metric_type(metric)
        cfg = metric.get("config") or {}
        if kind == "ValueDrift":
            col = cfg.get("column")
            features[col] = {
                "method": cfg.get("method"),
                "score": finite_or_none(_scalar(metric.get("value"))),
                "threshold": finite_or_none(cfg.get("threshold")),
                "drifted": None,
            }
        elif kind == "DriftedColumnsCount":
            count = _scalar(metric.get("value"), "count")
            share = _scalar(metric.get("value"), "share")
            if cfg.get("drift_share") is not None:
                drift_share_threshold = float(cfg["drift_share"])

    # Evidently's own per-column verdicts live in the legacy DataDriftTable the
    # preset computes while rendering (same stattest, same threshold), and the
    # dataset verdict in the legacy DatasetDriftMetric behind DriftedColumnsCount.
    legacy_table = None
    legacy_dataset_drift = None
    legacy = getattr(getattr(snapshot, "context", None), "_legacy_metrics", None) or {}
    for entry in legacy.values():
        result = entry[0] if isinstance(entry, tuple) else entry
        if hasattr(result, "drift_by_columns") and legacy_table is None:
            legacy_table = result.drift_by_columns
        if hasattr(result, "dataset_drift") and not hasattr(result, "drift_by_columns"):
            legacy_dataset_drift = bool(result.dataset_drift)

    for col in columns:
        f = features.get(col)
        lc = legacy_table.get(col) if legacy_table else None
        if f is None:
            if lc is None:
                log(f"warning: no drift result for column {col!r} in the snapshot")
                continue
            f = features[col] = {
                "method": lc.stattest_name,
                "score": finite_or_none(lc.drift_score),
                "threshold": finite_or_none(lc.stattest_threshold),
                "drifted": None,
            }
        if lc is not None:
            f["drifted"] = bool(lc.drift_detected)
            if lc.stattest_name != f["method"] or (
                f["score"] is not None
                and finite_or_none(lc.drift_score) is not None
                and abs(lc.drift_score - f["score"]) > 1e-9 * max(1.0, abs(f["score"]))
            ):
                log(
                    f"warning: {col}: ValueDrift ({f['method']}, {f['score']}) differs from "
                    f"DataDriftTable ({lc.stattest_name}, {lc.drift_score})"
                )
        elif f["score"] is not None and f["threshold"] is not None:
            if f["method"] in _PVALUE_METHODS or "p_value" in str(f["method"]):
                f["drifted"] = f["score"] < f["threshold"]
            else:
                f["drifted"] = f["score"] >= f["threshold"]

    ordered = {c: features[c] for c in columns if c in features}
    ordered.update({c: v for c, v in features.items() if c not in ordered})

    flags = [v["drifted"] for v in ordered.values() if v["drifted"] is not None]
    if count is None:
        count = sum(flags)
    if share is None:
        share = count / len(flags) if flags else 0.0
    if sum(flags) != int(count):
        log(f"warning: {sum(flags)} columns flagged drifted, DriftedColumnsCount says {count}")
    dataset_drift = (
        legacy_dataset_drift
        if legacy_dataset_drift is not None
        else bool(float(share) >= drift_share_threshold)
    )
    return {
        "dataset_drift": bool(dataset_drift),
        "drift_share": float(share),
        "drift_share_threshold": float(drift_share_threshold),
        "drifted_columns": int(count),
        "features": ordered,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="directory with meta.json and the column files")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (median reported), default 1")
    args = ap.parse_args()
    if args.repeat < 1:
        die("--repeat must be >= 1")

    real_stdout = sys.stdout
    # Anything libraries print goes to stderr; stdout carries only the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            import numpy as np
            import pandas as pd
        except ImportError as e:
            die(f"numpy/pandas not importable ({e}); install bench/scripts/requirements-evidently.txt")
        try:
            import evidently
            from evidently import DataDefinition, Dataset, Report
            from evidently.presets import DataDriftPreset
        except ImportError as e:
            die(
                f"evidently is not importable ({e}).\n"
                "Create the environment with:\n"
                "  python3 -m venv V && V/bin/pip install -r bench/scripts/requirements-evidently.txt\n"
                "and run this script with V/bin/python."
            )
        ev_version = getattr(evidently, "__version__", "unknown")
        if ev_version != EXPECTED_EVIDENTLY:
            log(f"warning: evidently {ev_version} installed, this script targets {EXPECTED_EVIDENTLY}")

        meta, numeric, categorical, ref_df, cur_df = load_frames(args.dir, np, pd)
        columns = numeric + categorical
        log(
            f"loaded {len(numeric)} numeric + {len(categorical)} categorical columns, "
            f"{len(ref_df)} reference / {len(cur_df)} current rows"
        )
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        rss_before = peak_rss_bytes()

        runs, dataset_runs, summary = [], [], None
        for i in range(args.repeat):
            t0 = time.perf_counter()
            reference = Dataset.from_pandas(ref_df, data_definition=definition)
            current = Dataset.from_pandas(cur_df, data_definition=definition)
            dataset_runs.append(time.perf_counter() - t0)

            preset = DataDriftPreset()  # drift_share=0.5, per-column methods auto-selected
            report = Report([preset])
            t0 = time.perf_counter()
            snapshot = report.run(current, reference)
            snapshot_dict = snapshot.dict()
            elapsed = time.perf_counter() - t0
            runs.append(elapsed)
            log(f"run {i + 1}/{args.repeat}: {elapsed:.3f} s (datasets {dataset_runs[-1]:.3f} s)")
            del snapshot_dict
            if summary is None:
                summary = extract(snapshot, columns, preset.drift_share)
            del snapshot, report, reference, current

        out = {
            "seconds": statistics.median(runs),
            "runs": runs,
            "dataset_seconds": statistics.median(dataset_runs),
            "evidently_version": ev_version,
            "pandas_version": pd.__version__,
            "numpy_version": np.__version__,
            "reference_rows": int(meta["reference_rows"]),
            "current_rows": int(meta["current_rows"]),
        }
        out.update(summary)
        out["max_rss_bytes"] = peak_rss_bytes()
        out["rss_before_report_bytes"] = rss_before

    real_stdout.write(json.dumps(out, allow_nan=False) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
