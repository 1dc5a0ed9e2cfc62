#!/usr/bin/env bash
# Training throughput of host-trainer against the PyTorch anchor (../shared/bench/torch_vae.py),
# same shapes, batch, optimizer and threads, measured back to back in one run.
#
#   scripts/bench-vs-pytorch.sh [MNIST_DIR] [PYTHON]
#
# MNIST_DIR holds the IDX files (plain or .gz; default ../shared/data/mnist); PYTHON has torch
# (default ~/.venvs/torch/bin/python; set-up: ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mnist=${1:-../shared/data/mnist}
py=${2:-$HOME/.venvs/torch/bin/python}
anchor=../shared/bench/torch_vae.py
[ -f "$anchor" ] || { echo "missing $anchor" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || { echo "no torch in $py: see ../shared/bench/README.md" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in train-images-idx3-ubyte t10k-images-idx3-ubyte; do
    if [ -f "$mnist/$f" ]; then cp "$mnist/$f" "$tmp/$f"; else gunzip -c "$mnist/$f.gz" > "$tmp/$f"; fi
done
cargo build -q --release -p host-trainer
bin=target/release/host-trainer
threads_all=$(nproc)
printf '%-16s %-18s %5s %7s %14s %14s %7s\n' case model batch threads "torch samp/s" "ours samp/s" ratio
run() { # name torch-args
    local name=$1; shift
    for t in 1 "$threads_all"; do
        torch=$("$py" "$anchor" --train-images "$tmp/train-images-idx3-ubyte" --test-images "$tmp/t10k-images-idx3-ubyte" \
            "$@" --epochs 2 --threads "$t" | tail -n 1)
        ours=$("$bin" bench --cases "$name" --threads "$t" --seconds 5 --json | tail -n 1)
        python3 - "$name" "$t" "$torch" "$ours" <<'PY'
import json, sys
name, t, torch, ours = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
a, b = torch["train_samples_per_s"], ours["samples_per_s"]
print(f"{name:<16} {ours['arch']:<18} {ours['batch']:>5} {t:>7} {a:>14.0f} {b:>14.0f} {b / a:>6.2f}x")
PY
    done
}
run paper-mnist --hidden 500 --latent 20 --act tanh --batch 100 --optim adagrad --lr 0.02
run pytorch-example --hidden 400 --latent 20 --act relu --batch 128 --optim adam --lr 1e-3
run small-mnist --hidden 64 --latent 8 --act relu --batch 32 --optim adam --lr 1e-3
"$py" -c 'import torch; print("torch", torch.__version__, "| threads", torch.get_num_threads())'
