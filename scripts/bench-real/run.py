#!/usr/bin/env python3
"""Our side of the real-recordings benchmark: train with default flags on each case's train
file, score every window of its test file, for several seeds and all four score kinds; then
the table beside the baselines of baselines.py.

    python3 scripts/bench-real/run.py --cases DATA/cases.json --baselines results.json \
        [--seeds 1,2,3] [--bin target/release/host-trainer] [--out out/bench-real/runs] \
        [--train-args "--hidden 32"] [--only case,case] [--json ours.json]

Protocol (one-class): the train file holds normal windows only; it is split 80 % training /
20 % validation (`split=0.8,0.2,0`: whole series in a seeded order, as the trainer does for a
file with a group column) and nothing else is passed to `train`. `score --data TEST` scores
every window of the test file; the score the firmware runs is the calibrated default
(`neg-elbo-mean` unless a later default says otherwise), the others are reported beside it.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

SCORES = ["neg-elbo-mean", "neg-elbo", "nll", "rec-prob"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--baselines", help="results.json of baselines.py")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--bin", default="target/release/host-trainer")
    ap.add_argument("--out", default="out/bench-real/runs")
    ap.add_argument("--train-args", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--scores", default=",".join(SCORES))
    ap.add_argument("--json", help="write our results here")
    ap.add_argument("--score-args", default="", help="extra flags for every `score` run, e.g. \"--samples 10\"")
    ap.add_argument("--reuse", action="store_true", help="score the checkpoints already under --out instead of training")
    a = ap.parse_args()
    cases = json.load(open(a.cases))
    only = [c for c in a.only.split(",") if c]
    seeds = [int(s) for s in a.seeds.split(",")]
    kinds = [k for k in a.scores.split(",") if k]
    base = {}
    if a.baselines:
        for r in json.load(open(a.baselines))["cases"]:
            base[r["name"]] = r
    ours = {}
    t_all = time.time()
    for case in cases:
        name = case["name"]
        if only and name not in only:
            continue
        train_spec = case["train_spec"] + "&split=0.8,0.2,0"
        res = {k: [] for k in kinds}
        fa = {}
        t0 = time.time()
        for seed in seeds:
            out = f"{a.out}/{name}/s{seed}"
            cmd = [a.bin, "train", "--data", train_spec, "--seed", str(seed), "--out", out, "--quiet"]
            cmd += a.train_args.split()
            p = subprocess.run(cmd, capture_output=True, text=True) if not a.reuse else None
            if p is not None and p.returncode != 0:
                print(f"{name} seed {seed}: train failed:\n{p.stderr}", file=sys.stderr)
                sys.exit(1)
            for k in kinds:
                cmd = [a.bin, "score", "--checkpoint", f"{out}/checkpoint.safetensors",
                       "--data", case["test_spec"], "--score", k, "--csv", f"{out}/scores-{k}.csv",
                       "--json", "--seed", str(seed)] + a.score_args.split()
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"{name} seed {seed}: score failed:\n{p.stderr}", file=sys.stderr)
                    sys.exit(1)
                r = json.loads(p.stdout.strip().splitlines()[-1])
                res[k].append(r["auc"])
                # With --score-args=--calibrate: the false alarms on the test's normal windows
                # at the threshold calibrated on the training file's validation split.
                c = r.get("confusion")
                if c:
                    fa.setdefault(k, []).append((c["fp"], c["fp"] + c["tn"]))
                if k == kinds[0] and seed == seeds[0]:
                    ours.setdefault(name, {})["rust_baselines"] = r["baselines"]
        ours.setdefault(name, {})["auc"] = res
        if fa:
            ours[name]["false_alarms"] = fa
        ours[name]["seconds"] = time.time() - t0
        line = " ".join(f"{k}={statistics.mean(v):.3f}" for k, v in res.items())
        for k, v in fa.items():
            line += f" false alarms {k}: " + ", ".join(f"{f}/{n}" for f, n in v)
        print(f"{name}: {line} ({ours[name]['seconds']:.1f} s)", file=sys.stderr, flush=True)
    if a.json:
        json.dump(ours, open(a.json, "w"), indent=1)
    # Table.
    head = "| case | ours (" + kinds[0] + ") mean ± sd | " + " | ".join(kinds[1:]) + \
        " | IsolationForest | PCA | energy | best baseline | margin |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, r in ours.items():
        auc = r["auc"]
        m0 = statistics.mean(auc[kinds[0]])
        sd0 = statistics.pstdev(auc[kinds[0]])
        others = " | ".join(f"{statistics.mean(auc[k]):.3f}" for k in kinds[1:])
        b = base.get(name)
        if b:
            iso, pca, en = b["iforest"]["auc_mean"], b["pca"]["auc"], b["energy"]["auc"]
            best = max(iso, pca, en)
            btxt = f"{iso:.3f} | {pca:.3f} | {en:.3f} | {best:.3f} | {m0 - best:+.3f}"
        else:
            btxt = "- | - | - | - | -"
        print(f"| {name} | {m0:.3f} ± {sd0:.3f} | {others} | {btxt} |")
    print(f"total {time.time() - t_all:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
