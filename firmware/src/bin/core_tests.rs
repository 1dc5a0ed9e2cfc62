//! On-target test suite of the core: `vae-nostd`'s math, estimators, scores and error paths,
//! compiled for the Cortex-M4F and run in QEMU (`mps2-an386`).
//!
//! Two kinds of checks:
//! * **hand values**: the closed-form KL, the Bernoulli and Gaussian log-likelihoods (exact
//!   values, finite at logits ±100), the fastmath routines against constants worked out on the
//!   host in f64 (within their documented ulp bounds), and the error paths (NaN input, wrong
//!   lengths, too-small buffers, a NaN gradient leaves the parameters untouched);
//! * **golden bits**: every case of `tests/golden/cases.rs` (latents, scores, estimators A/B/IW
//!   with a given ε, a five-step Adagrad run) must equal, bit for bit, the host's results in
//!   the embedded `tests/golden/latents.txt`. Each case is also printed as `case: <line>` so
//!   the host test (`tests/tests/on_target.rs`) compares the device with the host build
//!   directly;
//! * **the assembly kernel**: the firmware's `CortexM4` kernel (`firmware/src/kernel_m4.rs`)
//!   equals `Portable` bit for bit on many matrix shapes (inner dimension not a multiple of 4
//!   or 8, below 4, zero; outputs not a multiple of the block of four; batches; α, β), and the
//!   whole golden case list run again with `CortexM4` in place of `Portable` must equal the
//!   host's golden file too (not printed as `case:` lines, so the host compares one run).
//!
//! It prints `core_tests: N passed, M failed` and exits QEMU with failure if M > 0.
//! Run: `cargo run -p firmware --release --target thumbv7em-none-eabihf --no-default-features
//! --features qemu --bin core_tests`
//! (or `cargo test -p vae-tests --test on_target`, which also compares the printed bits).
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host there is nothing to run: say how to build and run the real program.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "core_tests is a Cortex-M program: run it with `cargo run -p firmware --release \
         --target thumbv7em-none-eabihf --no-default-features --features qemu --bin core_tests`"
    );
    std::process::exit(2);
}

/// The bit-exactness cases, shared with the host test.
#[cfg(target_os = "none")]
#[path = "../../../tests/golden/cases.rs"]
#[allow(dead_code)]
mod cases;

#[cfg(target_os = "none")]
mod app {
    use core::fmt::Write as _;

    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use panic_semihosting as _;
    use vae_nostd::kernel::{MatMut, MatRef, gemm};
    use vae_nostd::likelihood::{bernoulli_log_likelihood, gaussian_log_likelihood};
    use vae_nostd::{
        Activation, Adagrad, Error, Likelihood, Optimizer, Portable, Vae, VaeConfig, Workspace,
        fastmath, kl_standard_normal,
    };

    use crate::cases::{self, Line, Sink, Value};
    use firmware::kernel_m4::CortexM4;

    /// The host's results, one `name[index] = 0x<bits>` per line.
    const GOLDEN: &str = include_str!("../../../tests/golden/latents.txt");

    /// Pass and fail counts.
    struct Tally {
        passed: u32,
        failed: u32,
    }

    impl Tally {
        fn check(&mut self, name: &str, ok: bool) {
            if ok {
                self.passed += 1;
            } else {
                self.failed += 1;
                hprintln!("FAIL {}", name);
            }
        }
        /// `|got − want| ≤ tol · max(1, |want|)`.
        fn close(&mut self, name: &str, got: f32, want: f32, tol: f32) {
            let ok = (got - want).abs() <= tol * want.abs().max(1.0);
            if !ok {
                hprintln!("  {}: got {} want {}", name, got, want);
            }
            self.check(name, ok);
        }
        /// Within `ulps` units in the last place of `want`.
        fn ulps(&mut self, name: &str, got: f32, want: f32, ulps: u32) {
            let d = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs();
            if d > ulps as u64 {
                hprintln!(
                    "  {}: got {:#010x} want {:#010x}",
                    name,
                    got.to_bits(),
                    want.to_bits()
                );
            }
            self.check(name, d <= ulps as u64);
        }
    }

    /// A line formatted into a fixed buffer (no allocator).
    struct LineBuf {
        b: [u8; 128],
        n: usize,
    }

    impl core::fmt::Write for LineBuf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.n + s.len();
            if end > self.b.len() {
                return Err(core::fmt::Error);
            }
            self.b[self.n..end].copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }

    /// Prints each case (when `print`) and compares it with the next golden line.
    struct Golden<'t> {
        lines: core::str::Lines<'static>,
        tally: &'t mut Tally,
        mismatches: u32,
        print: bool,
        what: &'static str,
    }

    impl Sink for Golden<'_> {
        fn emit(&mut self, name: &str, index: usize, v: Value) {
            let mut buf = LineBuf { b: [0; 128], n: 0 };
            let _ = write!(buf, "{}", Line(name, index, v));
            let got = core::str::from_utf8(&buf.b[..buf.n]).unwrap_or("");
            if self.print {
                hprintln!("case: {}", got);
            }
            let want = self.lines.next().unwrap_or("<end of golden file>");
            if got != want {
                self.mismatches += 1;
                if self.mismatches <= 10 {
                    hprintln!("  {}: {} golden: {}", self.what, got, want);
                }
            }
            self.tally.check(self.what, got == want);
        }
    }

    #[entry]
    fn main() -> ! {
        let mut t = Tally {
            passed: 0,
            failed: 0,
        };
        hand_values(&mut t);
        error_paths(&mut t);
        kernel_shapes(&mut t);
        int8_kernel_shapes(&mut t);
        let mut g = Golden {
            lines: GOLDEN.lines(),
            tally: &mut t,
            mismatches: 0,
            print: true,
            what: "golden case",
        };
        let r = cases::run(&mut g);
        let rest = g.lines.next().is_none();
        t.check("cases ran", r.is_ok());
        if let Err(e) = r {
            hprintln!("  cases: error: {}", e);
        }
        t.check("golden file fully compared", rest);
        // Every case again with the assembly kernel: the same golden bits.
        let mut g = Golden {
            lines: GOLDEN.lines(),
            tally: &mut t,
            mismatches: 0,
            print: false,
            what: "golden case (CortexM4 kernel)",
        };
        let r = cases::run_with(&CortexM4, &mut g);
        let (rest, mismatches) = (g.lines.next().is_none(), g.mismatches);
        t.check("cases ran (CortexM4 kernel)", r.is_ok());
        if let Err(e) = r {
            hprintln!("  cases (CortexM4 kernel): error: {}", e);
        }
        t.check("golden file fully compared (CortexM4 kernel)", rest);
        hprintln!(
            "CortexM4 kernel: golden cases rerun, {} mismatches",
            mismatches
        );
        hprintln!("core_tests: {} passed, {} failed", t.passed, t.failed);
        exit(if t.failed == 0 {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        })
    }

    fn hand_values(t: &mut Tally) {
        // KL(N(μ, e^lv) ‖ N(0, 1)) = −½ Σ (1 + lv − μ² − e^lv) (App. B).
        t.close(
            "kl zero",
            kl_standard_normal(&[0.0f32; 3], &[0.0; 3]),
            0.0,
            1e-7,
        );
        // μ = (0, 1), lv = (0, ln 2): −½ (0 + ln 2 − 2) = 1 − ln 2 / 2.
        let ln2 = core::f32::consts::LN_2;
        t.close(
            "kl hand",
            kl_standard_normal(&[0.0f32, 1.0], &[0.0, ln2]),
            0.653_426_4,
            1e-6,
        );
        // μ = 2, lv = −1: −½ (1 − 1 − 4 − e^−1) = 2 + e^−1 / 2.
        t.close(
            "kl hand 2",
            kl_standard_normal(&[2.0f32], &[-1.0]),
            2.183_939_7,
            1e-6,
        );
        // Bernoulli: x·a − softplus(a). Right at ±100: ≈ 0; wrong: −100 each.
        let right = bernoulli_log_likelihood(&[1.0f32, 0.0], &[100.0, -100.0]);
        t.check("bernoulli right at ±100 finite", right.is_finite());
        t.close("bernoulli right at ±100", right, 0.0, 1e-6);
        let wrong = bernoulli_log_likelihood(&[0.0f32, 1.0], &[100.0, -100.0]);
        t.close("bernoulli wrong at ±100", wrong, -200.0, 1e-6);
        // logit 0: −ln 2 per pixel.
        t.close(
            "bernoulli at 0",
            bernoulli_log_likelihood(&[1.0f32, 0.0], &[0.0, 0.0]),
            -2.0 * ln2,
            1e-6,
        );
        // Gaussian: −½ (ln 2π + lv + (x − m)² e^−lv).
        let g = gaussian_log_likelihood(&[1.0f32], &[0.0, 0.0], false, false);
        t.close("gaussian unit", g, -1.418_938_5, 1e-6);
        let g = gaussian_log_likelihood(&[0.5f32, -1.0], &[0.5, 1.0, ln2, 0.0], false, false);
        // −½(ln 2π + ln 2) − ½(ln 2π + 4).
        t.close("gaussian hand", g, -4.184_450_7, 1e-6);
        // Sigmoid mean: m = sigmoid(0) = 0.5, x = 0.5, lv = 0: −½ ln 2π.
        let g = gaussian_log_likelihood(&[0.5f32], &[0.0, 0.0], true, false);
        t.close("gaussian sigmoid mean", g, -0.918_938_5, 1e-6);
        // fastmath against f64 references rounded to f32 (computed on the host with libm).
        for (x, want) in [
            (0.0f32, 1.0f32),
            (1.0, 2.718_281_7),
            (-1.0, 0.367_879_45),
            (10.0, 22_026.465),
            (-20.0, 2.061_153_7e-9),
            (88.0, 1.651_636_3e38),
        ] {
            t.ulps("fastmath exp", fastmath::exp(x), want, 2);
        }
        t.check(
            "fastmath exp(89) = inf",
            fastmath::exp(89.0) == f32::INFINITY,
        );
        t.check("fastmath exp(-110) = 0", fastmath::exp(-110.0) == 0.0);
        t.check("fastmath exp(NaN) = NaN", fastmath::exp(f32::NAN).is_nan());
        for (x, want) in [
            (0.1f32, 0.099_667_996f32),
            (0.5, 0.462_117_16),
            (-0.7, -0.604_367_8),
            (2.0, 0.964_027_6),
            (-5.0, -0.999_909_2),
        ] {
            t.ulps("fastmath tanh", fastmath::tanh(x), want, 3);
        }
        t.check(
            "fastmath tanh(±100)",
            fastmath::tanh(100.0) == 1.0 && fastmath::tanh(-100.0) == -1.0,
        );
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.25, 0.223_143_55),
            (0.5, 0.405_465_1),
            (1.0, ln2),
        ] {
            t.ulps("fastmath ln_1p_unit", fastmath::ln_1p_unit(x), want, 2);
        }
    }

    const TINY: VaeConfig = VaeConfig::new(4, &[3], 2, Activation::Tanh, Likelihood::Bernoulli);

    fn error_paths(t: &mut Tally) {
        let mut params = [0.01f32; TINY.num_params()];
        t.check(
            "params of the wrong length refused",
            matches!(
                Vae::new(TINY, &params[1..]),
                Err(Error::LengthMismatch { .. })
            ),
        );
        let vae = Vae::new(TINY, &params).unwrap_or_else(|_| panic!("tiny model"));
        let mut small = [0f32; 3];
        t.check(
            "too-small workspace refused",
            matches!(
                Workspace::new(&TINY, 1, 1, &mut small),
                Err(Error::BufferTooSmall { .. })
            ),
        );
        let mut buf = [0f32; TINY.workspace_len(2, 1)];
        let Ok(mut ws) = Workspace::new(&TINY, 2, 1, &mut buf) else {
            t.check("workspace", false);
            return;
        };
        t.check(
            "NaN input refused",
            vae.encode(&Portable, &[0.0, f32::NAN, 0.0, 0.0], 1, &mut ws)
                == Err(Error::NonFiniteInput),
        );
        t.check(
            "infinite input refused",
            vae.encode(&Portable, &[0.0, 0.0, f32::INFINITY, 0.0], 1, &mut ws)
                == Err(Error::NonFiniteInput),
        );
        t.check(
            "wrong input length refused",
            matches!(
                vae.encode(&Portable, &[0.0; 5], 1, &mut ws),
                Err(Error::LengthMismatch { .. })
            ),
        );
        t.check(
            "batch beyond the workspace refused",
            matches!(
                vae.encode(&Portable, &[0.0; 12], 3, &mut ws),
                Err(Error::InvalidArgument(_))
            ),
        );
        t.check(
            "wrong ε length refused",
            vae.forward_with_eps(
                &Portable,
                &[0.0; 4],
                1,
                vae_nostd::Objective::paper(),
                &[0.0; 3],
                &mut ws,
            )
            .is_err(),
        );
        t.check(
            "backward without forward refused",
            vae.backward(
                &Portable,
                &[0.0; 4],
                &mut [0f32; TINY.num_params()],
                &mut ws,
            )
            .is_err(),
        );
        t.check(
            "encode of a good input works",
            vae.encode(&Portable, &[0.0, 1.0, 0.0, 1.0], 1, &mut ws)
                .is_ok(),
        );
        // A NaN gradient: Adagrad refuses and changes nothing.
        let before = params;
        let mut grads = [0.5f32; TINY.num_params()];
        grads[3] = f32::NAN;
        let mut state = [0f32; TINY.num_params()];
        let mut opt = Adagrad {
            lr: 0.1,
            eps: 1e-10,
            weight_decay: 0.0,
        };
        let r = opt.step(&mut params, &grads, &mut state);
        t.check("NaN gradient refused", r == Err(Error::NonFiniteGradient));
        t.check(
            "parameters untouched after a refused step",
            params
                .iter()
                .zip(&before)
                .all(|(a, b)| a.to_bits() == b.to_bits())
                && state.iter().all(|s| *s == 0.0),
        );
    }

    /// The int8 layers' kernel (`IntGemv`): `CortexM4`'s `SMLAD` assembly against `Portable`
    /// on every block count 0–4 (0–16 rows) and input count 4–200 (multiples of 4), on inputs
    /// around one and two passes of the loop (508–1028: the odd rows' recovery), and on a
    /// weight slice that is not 4-byte aligned (the fallback), extreme values included.
    fn int8_kernel_shapes(t: &mut Tally) {
        use vae_nostd::quant::IntGemv;
        const MAX_K: usize = 1028;
        const MAX_N: usize = 16;
        #[repr(C, align(4))]
        struct Weights([i8; MAX_N * MAX_K + 4]);
        let mut w = Weights([0i8; MAX_N * MAX_K + 4]);
        let mut x = [0u32; MAX_K / 2];
        let mut s = 0x9E37_79B9u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for v in w.0.iter_mut() {
            let r = next();
            *v = match r % 13 {
                0 => -128,
                1 => 127,
                _ => r as i8,
            };
        }
        let mut sums = [0i32; MAX_K / 2 + 1];
        for (j, v) in x.iter_mut().enumerate() {
            let q = |r: u32| {
                if r.is_multiple_of(11) {
                    -127
                } else {
                    (r % 255) as i16 - 127
                }
            };
            let (a, b) = (q(next()), q(next()));
            *v = u32::from(a as u16) | (u32::from(b as u16) << 16);
            sums[j + 1] = sums[j] + i32::from(a) + i32::from(b);
        }
        let (mut cases, mut bad) = (0u32, 0u32);
        let ks = (4..=200)
            .step_by(4)
            .chain([508, 512, 516, 1020, 1024, 1028]);
        for k in ks {
            for n in (0..=MAX_N).step_by(4) {
                for skew in [0usize, 1] {
                    if skew == 1 && (n != 8 || k > 200) {
                        continue;
                    }
                    let wk = &w.0[skew..skew + n * k];
                    let (mut a, mut b) = ([0i32; MAX_N], [0i32; MAX_N]);
                    Portable.gemv_i8(wk, &x[..k / 2], sums[k / 2], &mut a[..n]);
                    CortexM4.gemv_i8(wk, &x[..k / 2], sums[k / 2], &mut b[..n]);
                    cases += 1;
                    if a != b {
                        bad += 1;
                        if bad <= 3 {
                            hprintln!("  int8 CortexM4 differs: k {} rows {} skew {}", k, n, skew);
                        }
                    }
                }
            }
        }
        hprintln!(
            "int8 kernel: {} shapes compared with Portable, {} differ",
            cases,
            bad
        );
        t.check("int8 CortexM4 kernel equals Portable", bad == 0);
    }

    /// `CortexM4` against `Portable`, bit for bit, on every shape of a grid: `y = α·x·Wᵀ + β·y`
    /// with `x [m][k]` row-major and `W [n][k]` given transposed (the dense layers' call), plus
    /// the strided patterns that `CortexM4` hands to `Portable`.
    fn kernel_shapes(t: &mut Tally) {
        const MAX_K: usize = 70;
        const MAX_N: usize = 13;
        const MAX_M: usize = 3;
        let mut x = [0f32; MAX_M * MAX_K];
        let mut w = [0f32; MAX_N * MAX_K];
        // Mixed signs and magnitudes (xorshift), so rounding differs with the summation order;
        // a few exact zeros and negative zeros too.
        let mut s = 0x1234_5678u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for v in x.iter_mut().chain(w.iter_mut()) {
            let r = next();
            *v = match r % 41 {
                0 => 0.0,
                1 => -0.0,
                _ => ((r >> 8) as f32 / 16_777_216.0 - 0.5) * (1 << (r % 7)) as f32,
            };
        }
        let (mut cases, mut bad) = (0u32, 0u32);
        let ks = [
            0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17, 23, 24, 31, 64, 67, 70,
        ];
        for &k in &ks {
            for n in 0..=MAX_N {
                for m in [1, 2, 3] {
                    for (alpha, beta) in [(1.0f32, 1.0f32), (1.0, 0.0), (-0.75, 1.5)] {
                        let x = &x[..m * k];
                        let w = &w[..n * k];
                        let mut yp = [0f32; MAX_M * MAX_N];
                        for (i, v) in yp.iter_mut().enumerate() {
                            *v = i as f32 * 0.125 - 1.0;
                        }
                        let mut ym = yp;
                        let rp = gemm(
                            &Portable,
                            alpha,
                            MatRef::row_major(x, m, k),
                            MatRef::transposed(w, k, n),
                            beta,
                            MatMut::row_major(&mut yp[..m * n], m, n),
                        );
                        let rm = gemm(
                            &CortexM4,
                            alpha,
                            MatRef::row_major(x, m, k),
                            MatRef::transposed(w, k, n),
                            beta,
                            MatMut::row_major(&mut ym[..m * n], m, n),
                        );
                        cases += 1;
                        let same = rp.is_ok()
                            && rm.is_ok()
                            && yp.iter().zip(&ym).all(|(a, b)| a.to_bits() == b.to_bits());
                        if !same {
                            bad += 1;
                            if bad <= 5 {
                                hprintln!(
                                    "  CortexM4 differs: m {} k {} n {} alpha {} beta {}",
                                    m,
                                    k,
                                    n,
                                    alpha,
                                    beta
                                );
                            }
                        }
                    }
                }
            }
        }
        // Strided patterns (delegated to Portable): x given transposed, W row-major.
        for &k in &ks {
            let (m, n) = (2, 5);
            let mut yp = [0.5f32; 10];
            let mut ym = yp;
            let rp = gemm(
                &Portable,
                1.0,
                MatRef::transposed(&x[..m * k], m, k),
                MatRef::row_major(&w[..k * n], k, n),
                1.0,
                MatMut::row_major(&mut yp, m, n),
            );
            let rm = gemm(
                &CortexM4,
                1.0,
                MatRef::transposed(&x[..m * k], m, k),
                MatRef::row_major(&w[..k * n], k, n),
                1.0,
                MatMut::row_major(&mut ym, m, n),
            );
            cases += 1;
            if !(rp.is_ok()
                && rm.is_ok()
                && yp.iter().zip(&ym).all(|(a, b)| a.to_bits() == b.to_bits()))
            {
                bad += 1;
                hprintln!("  CortexM4 differs on strided operands: k {}", k);
            }
        }
        hprintln!(
            "CortexM4 kernel: {} shapes compared with Portable, {} differ",
            cases,
            bad
        );
        t.check("CortexM4 kernel equals Portable bit for bit", bad == 0);
    }

    firmware::qemu_fault_handlers!("core_tests");
    use firmware::qemu::exit;
}
