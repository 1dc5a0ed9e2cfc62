#!/usr/bin/env python3
"""Build the real-sensor anomaly-detection benchmark cases (see README.md in this folder).

    python3 scripts/bench-real/prepare.py --out out/bench-real/data [--wheels DIR]

Every dataset is read straight out of a published PyPI wheel with `zipfile` (nothing is
pip-installed): aeon 1.6.0, sktime 1.2.0, seglearn 1.2.5. The wheels are taken from --wheels
(or OUT/wheels) when present there, otherwise fetched with
`python -m pip download --no-deps aeon==1.6.0 sktime==1.2.0 seglearn==1.2.5 -d OUT/wheels`.
Their SHA-256 digests are checked against the PyPI files these cases were built from.

For every case it writes OUT/<case>/train.csv and OUT/<case>/test.csv in the long CSV format
of `host-trainer` (one line per time step; value columns, then `label`, then `series`, the
group id, always text such as `s12`), and OUT/cases.json describing all cases, with the
trainer's data specs (`csv:PATH?window=..&hop=..&label=label&normal=..&group=series&rate=..
&columns=..`). Windows are cut within each run of equal `series` values, start at the run's
first row and every `hop` rows, complete windows only; a window is normal iff every one of its
rows has a label in `normal`. Everything is deterministic (fixed seeds, no clock, no network
except the optional pip download). Needs only numpy.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np

WHEELS = {
    # name: (version, file name, sha256 of the PyPI file)
    "aeon": ("1.6.0", "aeon-1.6.0-py3-none-any.whl",
             "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409"),
    "sktime": ("1.2.0", "sktime-1.2.0-py3-none-any.whl",
               "dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae"),
    "seglearn": ("1.2.5", "seglearn-1.2.5-py3-none-any.whl",
                 "ec6b952c85c9627050102854b372d85951563d3b990df677d7c55547e87413dd"),
}

DAPHNET_FAULT_SEED = 20250101  # the only random numbers in this script


# ----------------------------------------------------------------------------------------------
# wheels


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def obtain_wheels(out, wheels_dir, verify):
    """Path of each wheel; downloads the missing ones into OUT/wheels with pip."""
    search = [d for d in (wheels_dir, os.path.join(out, "wheels")) if d]
    found, missing = {}, []
    for name, (ver, fname, _) in WHEELS.items():
        for d in search:
            p = os.path.join(d, fname)
            if os.path.isfile(p):
                found[name] = p
                break
        else:
            missing.append(name)
    if missing:
        dl = os.path.join(out, "wheels")
        os.makedirs(dl, exist_ok=True)
        reqs = [f"{n}=={WHEELS[n][0]}" for n in missing]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               *reqs, "-d", dl]
        print("downloading:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        for n in missing:
            p = os.path.join(dl, WHEELS[n][1])
            if not os.path.isfile(p):
                sys.exit(f"pip download did not produce {p}")
            found[n] = p
    for name, p in found.items():
        digest = sha256(p)
        if digest != WHEELS[name][2]:
            msg = f"{p}: sha256 {digest} differs from the expected {WHEELS[name][2]}"
            if verify:
                sys.exit(msg + " (use --no-verify to accept it)")
            print("warning:", msg)
    return found


class Wheels:
    def __init__(self, paths):
        self.paths = paths
        self.zips = {n: zipfile.ZipFile(p) for n, p in paths.items()}

    def read(self, pkg, member):
        return self.zips[pkg].read(member)

    def text(self, pkg, member):
        return self.read(pkg, member).decode("utf-8")


# ----------------------------------------------------------------------------------------------
# readers


def parse_ts(text):
    """A .ts file (sktime/aeon format, equal or unequal length, no timestamps) as a list of
    (array [length, channels], class label as text)."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().lower() == "@data") + 1
    out = []
    for l in lines[start:]:
        l = l.strip()
        if not l or l.startswith("#"):
            continue
        parts = l.split(":")
        dims = [np.array([float(v) for v in p.split(",")]) for p in parts[:-1]]
        if len({len(d) for d in dims}) != 1:
            raise ValueError("dimensions of unequal length in one series")
        out.append((np.stack(dims, axis=1), parts[-1].strip()))
    return out


def parse_csv_numeric(text):
    """A small CSV with a header: dict column -> list of text fields."""
    lines = [l for l in text.splitlines() if l.strip()]
    head = [h.strip() for h in lines[0].split(",")]
    cols = {h: [] for h in head}
    for l in lines[1:]:
        for h, v in zip(head, l.split(",")):
            cols[h].append(v.strip())
    return head, cols


# ----------------------------------------------------------------------------------------------
# writing


class Table:
    """Rows of one long CSV: values [n, C], labels [n] (text), groups [n] (text)."""

    def __init__(self, channels):
        self.channels = list(channels)
        self.values, self.labels, self.groups = [], [], []

    def add(self, values, labels, group):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        assert values.shape[1] == len(self.channels)
        if not np.all(np.isfinite(values)):
            raise ValueError("non-finite value")
        n = values.shape[0]
        if isinstance(labels, (str, int)):
            labels = [labels] * n
        assert len(labels) == n
        self.values.append(values)
        self.labels.extend(str(l) for l in labels)
        self.groups.extend([group] * n)

    def write(self, path):
        v = np.concatenate(self.values)
        with open(path, "w", newline="\n") as f:
            f.write(",".join(self.channels + ["label", "series"]) + "\n")
            for row, lab, g in zip(v, self.labels, self.groups):
                f.write(",".join("%.9g" % x for x in row) + f",{lab},{g}\n")
        return v.shape[0]

    def windows(self, window, hop, normal):
        """(n_windows, n_anomalous) under the window rule."""
        labels = np.array(self.labels)
        groups = np.array(self.groups)
        isnormal = np.isin(labels, list(normal))
        n = len(labels)
        bounds = np.flatnonzero(groups[1:] != groups[:-1]) + 1
        starts = np.r_[0, bounds]
        ends = np.r_[bounds, n]
        nw = na = 0
        for a, b in zip(starts, ends):
            for s in range(a, b - window + 1, hop):
                nw += 1
                na += not isnormal[s:s + window].all()
        return nw, na


def spec(path, window, hop, normal, rate, channels):
    return (f"csv:{path}?window={window}&hop={hop}&label=label&normal={','.join(normal)}"
            f"&group=series&rate={rate:g}&columns={','.join(channels)}")


# ----------------------------------------------------------------------------------------------
# cases: each returns (train Table, test Table, metadata dict)

AEON = "aeon/datasets/data/"
SKTIME = "sktime/datasets/data/"
UEA_LICENSE = ("Data of the UCR/UEA time-series archive, redistributed in aeon (BSD-3-Clause "
               "package); the archive asks users to cite it and states no other license.")


def case_basicmotions(w):
    ch = [f"dim{i}" for i in range(6)]
    normal = ["Standing", "Walking"]
    tr, te = Table(ch), Table(ch)
    train = parse_ts(w.text("aeon", AEON + "BasicMotions/BasicMotions_TRAIN.ts"))
    test = parse_ts(w.text("aeon", AEON + "BasicMotions/BasicMotions_TEST.ts"))
    for i, (x, y) in enumerate(train):
        if y in normal:
            tr.add(x, y, f"s{i}")
    for i, (x, y) in enumerate(test):
        te.add(x, y, f"s{i}")
    return tr, te, dict(
        kind="multichannel", window=100, hop=100, rate=10, normal=normal,
        description=(
            "UEA BasicMotions: a smartwatch worn by 4 students, 3-axis accelerometer (dim0-2) "
            "and 3-axis gyroscope (dim3-5, the usual description of the archive's order; the "
            "file itself does not name the dimensions), 10 s at 10 Hz = 100 steps per series, "
            "classes Standing/Walking/Running/Badminton. One-class: train on the 20 TRAIN "
            "series of Standing+Walking; test on all 40 TEST series, Running and Badminton "
            "are the anomalies. One window per series."),
        origin=dict(package="aeon==1.6.0", wheel=WHEELS["aeon"][1],
                    paths=[AEON + "BasicMotions/BasicMotions_TRAIN.ts",
                           AEON + "BasicMotions/BasicMotions_TEST.ts"],
                    citation=("BasicMotions (a UEA student project), UEA multivariate time "
                              "series classification archive: Bagnall A. et al. (2018) "
                              "arXiv:1811.00075")),
        license=UEA_LICENSE)


def case_watch(w):
    raw = np.load(io.BytesIO(w.read("seglearn", "seglearn/data/watch_dataset.npy")),
                  allow_pickle=True).item()
    ch = list(raw["X_labels"])  # ax ay az wx wy wz
    names = list(raw["y_labels"])  # PEN ABD FEL IR ER TRAP ROW
    normal = ["ABD", "FEL", "IR", "ER"]
    subjects = sorted(set(int(s) for s in raw["subject"]))
    n_train_subj = int(round(0.6 * len(subjects)))
    train_subj = set(subjects[:n_train_subj])
    tr, te = Table(ch), Table(ch)
    for i, (x, y, s) in enumerate(zip(raw["X"], raw["y"], raw["subject"])):
        lab = names[int(y)]
        g = f"s{int(s):02d}r{i:03d}"
        if int(s) in train_subj:
            if lab in normal:
                tr.add(x, lab, g)
        else:
            te.add(x, lab, g)
    return tr, te, dict(
        kind="multichannel", window=100, hop=50, rate=50, normal=normal,
        description=(
            "seglearn watch dataset: 6-axis wrist IMU (accelerometer ax,ay,az; gyroscope "
            "wx,wy,wz) at 50 Hz, 10 subjects each doing sets of 7 shoulder-physiotherapy "
            "exercises with each arm (140 recordings). Normal = the 4 arm-raising/rotation "
            "exercises ABD (abduction), FEL (forward elevation), IR, ER (internal/external "
            f"rotation); anomalies = PEN (pendulum), TRAP, ROW. Train: subjects "
            f"{min(train_subj)}-{max(train_subj)}, normal exercises only; test: subjects "
            f"{n_train_subj + 1}-{len(subjects)}, all exercises (people unseen in training). "
            "Windows of 2 s, hop 1 s, within each recording."),
        origin=dict(package="seglearn==1.2.5", wheel=WHEELS["seglearn"][1],
                    paths=["seglearn/data/watch_dataset.npy"],
                    citation=("Burns D., Leung N., Hardisty M., Whyne C., Henry P., McLachlin "
                              "S. (2018) Shoulder physiotherapy exercise recognition: machine "
                              "learning the inertial signals from a smartwatch. Physiological "
                              "Measurement 39(7). arXiv:1802.01489")),
        license=("Shipped inside seglearn (BSD-3-Clause); no separate data license is "
                 "stated."))


def case_daphnet(w):
    head, cols = parse_csv_numeric(w.text("aeon", AEON + "Daphnet_S06R02E0/S06R02E0.csv"))
    ch = [h for h in head if h not in ("timestamp", "is_anomaly")]
    x = np.stack([np.array(cols[c], dtype=np.float64) for c in ch], axis=1)
    assert x.shape == (7040, 9) and all(v == "0" for v in cols["is_anomaly"])
    half = x.shape[0] // 2
    train, test = x[:half], x[half:].copy()
    mu, sd = train.mean(0), train.std(0)
    labels = np.array(["normal"] * test.shape[0], dtype=object)

    rng = np.random.default_rng(DAPHNET_FAULT_SEED)
    faults = ["stuck", "gain3", "spikes", "dropout", "noise"]
    order = rng.permutation(len(faults))
    slot = test.shape[0] // len(faults)
    injected = []
    for k, fi in enumerate(order):
        name = faults[fi]
        length = int(rng.integers(48, 97))
        s = k * slot + int(rng.integers(64, slot - length - 64))
        e = s + length
        c = int(rng.integers(0, len(ch)))
        seg = test[s:e, c]
        if name == "stuck":  # the channel holds its last good reading
            seg[:] = test[s - 1, c]
        elif name == "gain3":  # gain error x3 around the channel's train mean
            seg[:] = mu[c] + 3.0 * (seg - mu[c])
        elif name == "spikes":  # every 6th sample jumps by 6 train std, random sign
            idx = np.arange(int(rng.integers(0, 6)), length, 6)
            seg[idx] += 6.0 * sd[c] * rng.choice([-1.0, 1.0], size=len(idx))
        elif name == "dropout":  # reading drops to 0 mg
            seg[:] = 0.0
        elif name == "noise":  # added white noise, 1 train std
            seg[:] += rng.normal(0.0, sd[c], size=length)
        test[s:e, c] = np.round(seg)  # the sensor reports whole milli-g
        labels[s:e] = name
        injected.append(dict(fault=name, channel=ch[c], start_row=int(s), end_row=int(e)))
    tr, te = Table(ch), Table(ch)
    tr.add(train, "normal", "s0")
    te.add(test, list(labels), "s0")
    desc = ("Daphnet Freezing-of-Gait excerpt (subject 6, run 2; no freezing episodes): 9 "
            "accelerometer channels (ankle, thigh, trunk x forward/vertical/lateral) in milli-g "
            "at 64 Hz, 7040 rows of normal gait. Train = first 3520 rows. Test = last 3520 rows "
            "with SENSOR FAULTS INJECTED deterministically (seed "
            f"{DAPHNET_FAULT_SEED}) into 5 contiguous stretches of 48-96 rows, one per fault, "
            "each on one channel and labelled with its name: stuck (hold last value), gain3 "
            "(x3 about the train mean), spikes (every 6th sample +-6 train std), dropout (0 "
            "mg), noise (white, 1 train std); all other rows `normal`. The anomalies are "
            "synthetic faults on a real recording. Injected (test-file rows): "
            + "; ".join(f"{f['fault']} on {f['channel']} rows {f['start_row']}-{f['end_row']}"
                        for f in injected) + ".")
    return tr, te, dict(
        kind="multichannel", window=64, hop=32, rate=64, normal=["normal"],
        description=desc, injected_faults=injected,
        origin=dict(package="aeon==1.6.0", wheel=WHEELS["aeon"][1],
                    paths=[AEON + "Daphnet_S06R02E0/S06R02E0.csv"],
                    citation=("Bachlin M., Plotnik M., Roggen D. et al. (2010) Wearable "
                              "assistant for Parkinson's disease patients with the freezing of "
                              "gait symptom. IEEE TITB 14(2); UCI 'Daphnet Freezing of Gait' "
                              "(Roggen, Plotnik, Hausdorff 2013)")),
        license="UCI Machine Learning Repository, CC BY 4.0; via aeon (BSD-3-Clause).")


def case_internalbleeding(w):
    base = AEON + "KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_"
    _, a = parse_csv_numeric(w.text("aeon", base + "TRAIN.csv"))
    _, b = parse_csv_numeric(w.text("aeon", base + "TEST.csv"))
    xa = np.array(a["value"], dtype=np.float64)
    xb = np.array(b["value"], dtype=np.float64)
    yb = np.array([int(float(v)) for v in b["is_anomaly"]])
    n = len(xa)
    assert np.array_equal(xa, xb[:n]) and not any(int(float(v)) for v in a["is_anomaly"])
    tr, te = Table(["value"]), Table(["value"])
    tr.add(xa, [0] * n, "s0")
    te.add(xb[n:], list(yb[n:]), "s0")
    r = np.flatnonzero(yb)
    return tr, te, dict(
        kind="univariate", window=180, hop=9, rate=1, normal=["0"],
        description=(
            "UCR anomaly archive (KDD Cup 2021) series 135 'InternalBleeding16': a univariate "
            "physiological recording (aeon describes it as the heart rate of a patient with "
            "internal bleeding), quasi-periodic with a period of ~183 samples. The TEST file repeats "
            f"the {n} TRAIN rows; train = those {n} anomaly-free rows, test = the remaining "
            f"{len(xb) - n} rows, which hold the single labelled anomaly (TEST rows "
            f"{r[0]}-{r[-1] + 1}, {len(r)} samples). Window ~1 period (180), hop 9. Sampling "
            "rate not documented: rate=1 is a placeholder."),
        origin=dict(package="aeon==1.6.0", wheel=WHEELS["aeon"][1],
                    paths=[base + "TRAIN.csv", base + "TEST.csv"],
                    citation=("Wu R., Keogh E. (2021) Current time series anomaly detection "
                              "benchmarks are flawed and are creating the illusion of progress "
                              "(UCR Time Series Anomaly Archive), IEEE TKDE; KDD Cup 2021")),
        license=("UCR anomaly archive data redistributed in aeon (BSD-3-Clause package); no "
                 "data license stated."))


def case_gunpoint(w):
    normal = ["1"]
    tr, te = Table(["x"]), Table(["x"])
    for i, (x, y) in enumerate(parse_ts(w.text("aeon", AEON + "GunPoint/GunPoint_TRAIN.ts"))):
        if y in normal:
            tr.add(x, y, f"s{i}")
    for i, (x, y) in enumerate(parse_ts(w.text("aeon", AEON + "GunPoint/GunPoint_TEST.ts"))):
        te.add(x, y, f"s{i}")
    return tr, te, dict(
        kind="univariate", window=150, hop=150, rate=1, normal=normal,
        description=(
            "UCR GunPoint: x-coordinate of an actor's right hand tracked on video, 150 steps "
            "per series, class 1 = Gun-Draw, class 2 = Point. One-class: train on TRAIN's "
            "class-1 series, test on all 150 TEST series (class 2 anomalous). One window per "
            "series. Frame rate not stated in the package: rate=1 is a placeholder."),
        origin=dict(package="aeon==1.6.0", wheel=WHEELS["aeon"][1],
                    paths=[AEON + "GunPoint/GunPoint_TRAIN.ts",
                           AEON + "GunPoint/GunPoint_TEST.ts"],
                    citation=("Ratanamahatana C.A., Keogh E. (2005) Three myths about dynamic "
                              "time warping data mining. SDM; UCR time series archive (Dau et "
                              "al. 2019)")),
        license=UEA_LICENSE)


def case_mitdb(w):
    _, c = parse_csv_numeric(w.text("sktime", SKTIME + "mitdb/mitdb.csv"))
    x = np.array(c["data"], dtype=np.float64)
    y = np.array([int(float(v)) for v in c["label"]])
    half = len(x) // 2
    assert not y[:half].any() and y[half:].any()
    tr, te = Table(["ecg"]), Table(["ecg"])
    tr.add(x[:half], list(y[:half]), "s0")
    te.add(x[half:], list(y[half:]), "s0")
    r = np.flatnonzero(y[half:])
    return tr, te, dict(
        kind="univariate", window=256, hop=16, rate=360, normal=["0"],
        description=(
            "MIT-BIH Arrhythmia Database ECG excerpt shipped with sktime (7500 samples, "
            "values in mV on the database's 0.005 mV grid, 360 Hz as in MIT-BIH; the package "
            "does not say which record/lead), ~25 beats with one labelled anomalous beat (a "
            "premature beat with an irregular RR interval). Train = first 3750 samples (all "
            f"normal), test = last 3750 (anomaly at test rows {r[0]}-{r[-1] + 1}). "
            "Window 256 (~0.7 s), hop 16."),
        origin=dict(package="sktime==1.2.0", wheel=WHEELS["sktime"][1],
                    paths=[SKTIME + "mitdb/mitdb.csv"],
                    citation=("Moody G.B., Mark R.G. (2001) The impact of the MIT-BIH "
                              "Arrhythmia Database. IEEE EMB Magazine 20(3):45-50; PhysioNet "
                              "(Goldberger et al. 2000)")),
        license=("PhysioNet MIT-BIH Arrhythmia Database, ODC-By 1.0; via sktime "
                 "(BSD-3-Clause)."))


def case_japanesevowels(w):
    normal = ["1", "2", "3", "4", "5"]
    ch = [f"lpc{i}" for i in range(1, 13)]
    tr, te = Table(ch), Table(ch)
    p = AEON + "JapaneseVowels/JapaneseVowels_eq_"
    for i, (x, y) in enumerate(parse_ts(w.text("aeon", p + "TRAIN.ts"))):
        if y in normal:
            tr.add(x, y, f"s{i}")
    for i, (x, y) in enumerate(parse_ts(w.text("aeon", p + "TEST.ts"))):
        te.add(x, y, f"s{i}")
    return tr, te, dict(
        kind="multichannel", window=25, hop=25, rate=1, normal=normal,
        description=(
            "UCI Japanese Vowels (extra, not motion): 9 male speakers saying /ae/, 12 LPC "
            "cepstrum coefficients per frame; aeon's equal-length variant (every utterance "
            "resampled to 25 frames). One-class: normal = speakers 1-5; train on their TRAIN "
            "utterances, test on all TEST utterances (speakers 6-9 anomalous). One window per "
            "utterance. Frames are resampled, so rate=1 is a placeholder."),
        origin=dict(package="aeon==1.6.0", wheel=WHEELS["aeon"][1],
                    paths=[p + "TRAIN.ts", p + "TEST.ts"],
                    citation=("Kudo M., Toyama J., Shimbo M. (1999) Multidimensional curve "
                              "classification using passing-through regions. Pattern "
                              "Recognition Letters 20(11-13):1103-1111; UCI repository")),
        license="UCI Machine Learning Repository, CC BY 4.0; via aeon (BSD-3-Clause).")


CASES = [
    ("basicmotions", case_basicmotions),
    ("watch", case_watch),
    ("daphnet", case_daphnet),
    ("internalbleeding", case_internalbleeding),
    ("gunpoint", case_gunpoint),
    ("mitdb", case_mitdb),
    ("japanesevowels", case_japanesevowels),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (outside the repository)")
    ap.add_argument("--wheels", help="directory already holding the wheels")
    ap.add_argument("--only", help="comma-separated case names (default: all)")
    ap.add_argument("--no-verify", action="store_true", help="accept other wheel digests")
    args = ap.parse_args()
    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    w = Wheels(obtain_wheels(args.out, args.wheels, not args.no_verify))
    only = set(args.only.split(",")) if args.only else None
    cases = []
    for name, fn in CASES:
        if only and name not in only:
            continue
        t1 = time.perf_counter()
        tr, te, m = fn(w)
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        ptr, pte = os.path.join(d, "train.csv"), os.path.join(d, "test.csv")
        rows_tr, rows_te = tr.write(ptr), te.write(pte)
        win, hop, normal = m["window"], m["hop"], [str(v) for v in m["normal"]]
        ntr, ntr_anom = tr.windows(win, hop, normal)
        nte, nte_anom = te.windows(win, hop, normal)
        assert ntr_anom == 0, f"{name}: anomalous train windows"
        assert 0 < nte_anom < nte, f"{name}: test has one class only"
        case = dict(
            name=name, kind=m["kind"], description=m["description"], origin=m["origin"],
            license=m["license"],
            train_spec=spec(ptr, win, hop, normal, m["rate"], tr.channels),
            test_spec=spec(pte, win, hop, normal, m["rate"], te.channels),
            train_csv=f"{name}/train.csv", test_csv=f"{name}/test.csv",
            window=win, hop=hop, rate=m["rate"], channels=tr.channels,
            n_channels=len(tr.channels), dim=win * len(tr.channels),
            label_column="label", group_column="series", normal_labels=normal,
            train_labels=sorted(set(tr.labels)), test_labels=sorted(set(te.labels)),
            n_train_rows=rows_tr, n_test_rows=rows_te,
            n_train_windows=ntr, n_test_windows=nte, n_test_anomalous=nte_anom)
        if "injected_faults" in m:
            case["injected_faults"] = m["injected_faults"]
        cases.append(case)
        print(f"{name:17s} {m['kind']:12s} C={len(tr.channels):2d} W={win:3d} H={hop:3d} "
              f"D={win * len(tr.channels):4d}  train {rows_tr:6d} rows {ntr:5d} win   "
              f"test {rows_te:6d} rows {nte:5d} win ({nte_anom} anomalous)  -> {d}  "
              f"[{time.perf_counter() - t1:.2f} s]", flush=True)
    path = os.path.join(args.out, "cases.json")
    with open(path, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"wrote {path} ({len(cases)} cases) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
