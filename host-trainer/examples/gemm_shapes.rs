//! GFLOP/s of the host GEMM kernel on the layer shapes of the paper's MNIST model:
//! `cargo run --release -p host-trainer --example gemm_shapes`.

use host_trainer::kernel::Blocked;
use vae_nostd::kernel::gemm;
use vae_nostd::{MatMut, MatRef};
fn bench(name: &str, m: usize, k: usize, n: usize, ta: bool, tb: bool) {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let av = if ta {
        MatRef::transposed(&a, m, k)
    } else {
        MatRef::row_major(&a, m, k)
    };
    let bv = if tb {
        MatRef::transposed(&b, k, n)
    } else {
        MatRef::row_major(&b, k, n)
    };
    let iters = (2e10 / (2.0 * (m * k * n) as f64)) as usize + 1;
    let t = std::time::Instant::now();
    for _ in 0..iters {
        gemm(&Blocked, 1.0, av, bv, 1.0, MatMut::row_major(&mut c, m, n)).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:28} m={m:4} k={k:4} n={n:4}: {:6.1} GFLOP/s",
        2.0 * (m * k * n * iters) as f64 / s / 1e9
    );
}
fn main() {
    for rows in [50, 100] {
        bench("fwd x·Wᵀ (784→500)", rows, 784, 500, false, true);
        bench("dW = doutᵀ·x (500×784)", 500, rows, 784, true, false);
        bench("dinp = dout·W (784→500)", rows, 784, 500, false, false);
        bench("dec out h·Wᵀ (500→784)", rows, 500, 784, false, true);
    }
    bench("square 512", 512, 512, 512, false, false);
}
