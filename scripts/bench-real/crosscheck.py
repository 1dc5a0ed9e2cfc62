#!/usr/bin/env python3
"""Cross-check of host-trainer's own baselines (host-trainer/src/baselines.rs) against
baselines.py: train a 1-step model on 100 % of each case's train windows (split=1,0,0; the
model does not matter, the baselines are fitted on the checkpoint's training windows), score
the test file, and print both sides' PCA (with k) and window-energy ROC AUC.

    python3 scripts/bench-real/crosscheck.py --cases DATA/cases.json --baselines baselines.json \
        [--bin target/release/host-trainer] [--out out/bench-real/crosscheck]
"""

import argparse
import json
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--baselines", required=True)
    ap.add_argument("--bin", default="target/release/host-trainer")
    ap.add_argument("--out", default="out/bench-real/crosscheck")
    a = ap.parse_args()
    base = {r["name"]: r for r in json.load(open(a.baselines))["cases"]}
    print("| case | PCA ours (k) | PCA sklearn (k) | energy ours | energy numpy |")
    print("|---|---|---|---|---|")
    for c in json.load(open(a.cases)):
        n, out = c["name"], f"{a.out}/{c['name']}"
        subprocess.run([a.bin, "train", "--data", c["train_spec"] + "&split=1,0,0", "--out", out,
                        "--quiet", "--steps", "1"], capture_output=True, check=True)
        p = subprocess.run([a.bin, "score", "--checkpoint", f"{out}/checkpoint.safetensors",
                            "--data", c["test_spec"], "--json", "--csv", f"{out}/scores.csv"],
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        ours = {b["name"]: b for b in r["baselines"]}
        k = ours["pca"]["label"].split("(")[1].split(" of")[0]
        b = base[n]
        print(f"| {n} | {ours['pca']['auc']:.4f} ({k}) | {b['pca']['auc']:.4f} "
              f"({b['pca']['n_components']}) | {ours['energy']['auc']:.4f} | {b['energy']['auc']:.4f} |")


if __name__ == "__main__":
    main()
