#!/usr/bin/env python3
"""Classical baselines for the real-sensor cases written by prepare.py.

    python3 scripts/bench-real/baselines.py --cases DATA/cases.json --out results.json \
        [--seeds 1,2,3] [--scores DIR]

EXACT DEFINITIONS (the Rust side implements (b) and (c) the same way; cross-check on them)
==========================================================================================

Windows. Read the long CSV (first line = column names). Value columns = `columns=` of the
case's spec, in that order; labels = the `label` column as text; groups = the `series`
column as text. A segment is a maximal run of consecutive rows with equal `series`. Within
each segment of rows [a, b) windows start at rows a, a+hop, a+2*hop, ... while
start + window <= b (complete windows only). A window is the row-major vector
x[t*C + c] = value of channel c at row start+t (t < window, c < C), D = window*C. It is
normal iff the labels of all its rows are in `normal=`, otherwise anomalous (the positive
class for ROC AUC). Train windows come from train.csv (all normal), test windows from
test.csv. All arithmetic in float64. n = number of train windows.

(a) Isolation forest: sklearn.ensemble.IsolationForest() with default parameters and
    random_state=seed, fitted on the train windows; score = -score_samples(window) (higher =
    more anomalous). Reported: mean, min and max of the ROC AUC over the seeds.

(b) PCA reconstruction error.
    mu_j  = mean over train windows of feature j (j < D)
    sd_j  = population std (ddof=0) over train windows of feature j
    sd_j <- max(sd_j, 1e-6 * max_k sd_k)        (if max_k sd_k == 0 every sd_j <- 1)
    z     = (x - mu) / sd                        for train and test windows
    PCA of the train z (centred at their mean m, which is 0 up to rounding): eigenvalues
    lambda_1 >= lambda_2 >= ... of their covariance, unit eigenvectors v_i (sklearn
    PCA(svd_solver="full")); k = the smallest k with
    (lambda_1 + ... + lambda_k) / sum(lambda) >= 0.90, then k <- min(k, n - 1, D), k >= 1.
    score = || (z - m) - V_k^T V_k (z - m) ||^2   (sum of squares over the D features)

(c) Window energy (two-sided).
    m_c   = mean of channel c over all values of channel c in all train windows
            (i.e. over windows i and steps t of x_i[t*C + c]; overlapping rows count once
            per window they are in)
    E     = (1/D) * sum_{t,c} (x[t*C + c] - m_c)^2        for each window
    L     = ln(max(E, 1e-300))
    muL   = mean of L over the train windows; sdL = population std (ddof=0) of L over the
            train windows, sdL <- 1 if sdL < 1e-12
    score = |L - muL| / sdL      (an anomaly may be too quiet as well as too loud)

ROC AUC: sklearn.metrics.roc_auc_score(y, score) with y = 1 for anomalous test windows.
"""

import argparse
import json
import os
import sys
import time
import urllib.parse

import numpy as np
import pandas as pd
import sklearn
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

PCA_VARIANCE = 0.90
STD_FLOOR_REL = 1e-6
LOG_FLOOR = 1e-300


def parse_spec(s):
    """`csv:PATH?k=v&...` -> (PATH, dict)."""
    assert s.startswith("csv:"), s
    path, _, q = s[4:].rpartition("?")
    opts = dict(item.split("=", 1) for item in q.split("&") if item)
    return path, opts


def load_windows(csv_path, opts):
    window, hop = int(opts["window"]), int(opts.get("hop", opts["window"]))
    columns = opts["columns"].split(",")
    normal = set(opts["normal"].split(","))
    df = pd.read_csv(csv_path, dtype={opts.get("label", "label"): str,
                                      opts.get("group", "series"): str})
    values = df[columns].to_numpy(dtype=np.float64)
    labels = df[opts.get("label", "label")].str.strip().to_numpy()
    groups = df[opts.get("group", "series")].to_numpy()
    isnormal = np.isin(labels, list(normal))
    n = len(df)
    bounds = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    xs, ys, kinds = [], [], []
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, n]):
        for s in range(a, b - window + 1, hop):
            xs.append(values[s:s + window].reshape(-1))  # row-major [t][c]
            ys.append(0 if isnormal[s:s + window].all() else 1)
            kinds.append(frozenset(labels[s:s + window][~isnormal[s:s + window]]))
    return np.stack(xs), np.array(ys), window, len(columns), kinds


def per_label_auc(y, kinds, score):
    """For each anomalous label L: AUC of the windows holding a row labelled L against the
    normal windows (a diagnostic only; the headline number is the AUC over all windows)."""
    out = {}
    for lab in sorted(set().union(*kinds), key=str):
        m = (y == 0) | np.array([lab in k for k in kinds])
        out[str(lab)] = float(roc_auc_score(y[m], score[m]))
    return out


def pca_scores(xtr, xte):
    mu = xtr.mean(0)
    sd = xtr.std(0)
    top = sd.max()
    sd = np.ones_like(sd) if top == 0 else np.maximum(sd, STD_FLOOR_REL * top)
    ztr, zte = (xtr - mu) / sd, (xte - mu) / sd
    n, d = ztr.shape
    pca = PCA(svd_solver="full").fit(ztr)
    cum = np.cumsum(pca.explained_variance_ratio_)
    k = int(np.searchsorted(cum, PCA_VARIANCE) + 1)  # first index with cum >= 0.9
    k = max(1, min(k, n - 1, d))
    v = pca.components_[:k]
    c = zte - pca.mean_
    r = c - (c @ v.T) @ v
    # the explained fraction at k-1 and k: how far the 0.90 cut is from a tie
    margin = (float(cum[k - 2]) if k >= 2 else 0.0, float(cum[k - 1]))
    return (r * r).sum(1), k, margin


def energy_scores(xtr, xte, channels):
    def log_energy(x, m):
        dev = x.reshape(len(x), -1, channels) - m  # [n][t][c]
        e = (dev * dev).mean(axis=(1, 2))
        return np.log(np.maximum(e, LOG_FLOOR))

    m = xtr.reshape(len(xtr), -1, channels).mean(axis=(0, 1))
    ltr, lte = log_energy(xtr, m), log_energy(xte, m)
    mu, sd = ltr.mean(), ltr.std()
    if sd < 1e-12:
        sd = 1.0
    return np.abs(lte - mu) / sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", required=True, help="cases.json written by prepare.py")
    ap.add_argument("--out", required=True, help="results JSON to write")
    ap.add_argument("--seeds", default="1,2,3", help="isolation-forest seeds")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--scores", help="directory for per-window scores (<case>.csv)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with open(args.cases) as f:
        cases = json.load(f)
    base = os.path.dirname(os.path.abspath(args.cases))
    only = set(args.only.split(",")) if args.only else None
    t0 = time.perf_counter()
    results = []
    for case in cases:
        if only and case["name"] not in only:
            continue
        t1 = time.perf_counter()
        data = {}
        for part in ("train", "test"):
            path, opts = parse_spec(case[f"{part}_spec"])
            local = os.path.join(base, case[f"{part}_csv"])  # robust to the cwd
            data[part] = load_windows(local if os.path.exists(local) else path, opts)
        xtr, ytr, window, channels, _ = data["train"]
        xte, yte, _, _, kinds = data["test"]
        assert ytr.sum() == 0, "anomalous train windows"
        assert len(xtr) == case["n_train_windows"] and len(xte) == case["n_test_windows"]
        assert yte.sum() == case["n_test_anomalous"]

        if_auc, if_scores, if_label = [], None, []
        for seed in seeds:
            s = -IsolationForest(random_state=seed).fit(xtr).score_samples(xte)
            if_auc.append(float(roc_auc_score(yte, s)))
            if_label.append(per_label_auc(yte, kinds, s))
            if if_scores is None:
                if_scores = s
        pca_s, k, margin = pca_scores(xtr, xte)
        en_s = energy_scores(xtr, xte, channels)
        r = dict(
            name=case["name"], kind=case["kind"], window=window, hop=case["hop"],
            channels=channels, dim=xtr.shape[1], n_train=len(xtr), n_test=len(xte),
            n_test_anomalous=int(yte.sum()),
            label_windows={str(lab): sum(lab in k for k in kinds)
                           for lab in sorted(set().union(*kinds), key=str)},
            iforest=dict(auc_mean=float(np.mean(if_auc)), auc_min=min(if_auc),
                         auc_max=max(if_auc), auc_per_seed=dict(zip(map(str, seeds), if_auc)),
                         per_label_mean={lab: float(np.mean([d[lab] for d in if_label]))
                                         for lab in if_label[0]}),
            pca=dict(auc=float(roc_auc_score(yte, pca_s)), n_components=k,
                     explained_at_k_minus_1=margin[0], explained_at_k=margin[1],
                     per_label=per_label_auc(yte, kinds, pca_s)),
            energy=dict(auc=float(roc_auc_score(yte, en_s)),
                        per_label=per_label_auc(yte, kinds, en_s)),
            seconds=round(time.perf_counter() - t1, 3))
        results.append(r)
        if args.scores:
            os.makedirs(args.scores, exist_ok=True)
            pd.DataFrame(dict(anomalous=yte, iforest_seed=if_scores, pca=pca_s,
                              energy=en_s)).to_csv(
                os.path.join(args.scores, f"{case['name']}.csv"), index_label="window",
                float_format="%.10g")
        print(f"{case['name']}: done in {r['seconds']:.2f} s", file=sys.stderr, flush=True)

    out = dict(seeds=seeds, numpy=np.__version__, sklearn=sklearn.__version__,
               pca_variance=PCA_VARIANCE, cases=results,
               seconds=round(time.perf_counter() - t0, 2))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    print()
    print(f"| case | kind | C | W/H | D | train | test (anom) | IForest AUC mean [min, max] "
          f"| PCA AUC (k) | energy AUC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        i = r["iforest"]
        print(f"| {r['name']} | {r['kind']} | {r['channels']} | {r['window']}/{r['hop']} | "
              f"{r['dim']} | {r['n_train']} | {r['n_test']} ({r['n_test_anomalous']}) | "
              f"{i['auc_mean']:.3f} [{i['auc_min']:.3f}, {i['auc_max']:.3f}] | "
              f"{r['pca']['auc']:.3f} ({r['pca']['n_components']}) | {r['energy']['auc']:.3f} |")
    print("\nPer anomalous label (windows holding that label vs normal windows; diagnostic):\n")
    print("| case | label | windows | IForest (mean) | PCA | energy |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for lab, v in r["pca"]["per_label"].items():
            print(f"| {r['name']} | {lab} | {r['label_windows'][lab]} | "
                  f"{r['iforest']['per_label_mean'][lab]:.3f} | {v:.3f} | "
                  f"{r['energy']['per_label'][lab]:.3f} |")
    print(f"\nseeds {seeds}; wrote {args.out} in {out['seconds']:.1f} s")


if __name__ == "__main__":
    main()
