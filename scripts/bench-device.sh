#!/usr/bin/env bash
# Instruction counts of the core on an emulated Cortex-M4F (issue 4, part 6): builds
# firmware/src/bin/bench_encode.rs and runs it in QEMU mps2-an386 with `-icount shift=0`, where
# SysTick on the core clock ticks once per 40 executed instructions, exactly and repeatably.
# Prints instructions per first dense layer (and per MAC), per encode and per score for the
# 192-128-8 sensor model and the 784-500-20 MNIST model, then the ELF's text/data/bss.
# Reported, not tested (the on-target test only checks that the program runs).
#
#   bash scripts/bench-device.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=thumbv7em-none-eabihf
cargo build --release -p firmware --target "$target" --no-default-features --features qemu \
    --bin bench_encode
elf=target/$target/release/bench_encode
timeout 300 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf" </dev/null
echo
echo "size of $elf (bss: both models' parameters and workspaces, filled at start-up):"
size "$elf"
