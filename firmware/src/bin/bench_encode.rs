//! Benchmark: executed instructions per encode, per score and per multiply-accumulate, on an
//! emulated Cortex-M4F.
//!
//! Under `qemu-system-arm -icount shift=0` every instruction advances virtual time by 1 ns and
//! SysTick, clocked from the 25 MHz core clock of `mps2-an386`, counts one tick per 40
//! executed instructions — exactly, and the same on every run. The program first checks that
//! rate against a loop of known length, then counts, for two models:
//!
//! * the sensor model, 192-128-8 (64-sample 3-axis windows, tanh, Gaussian decoder with the
//!   variance floor: the default model's shape), and
//! * the paper's MNIST model, 784-500-20 (tanh, Bernoulli decoder),
//!
//! the first dense layer alone (`y = W·x + b`, 128x192 and 500x784, as the encoder calls it),
//! one full encode (μ and log σ²), and one anomaly score (−ELBO at z = μ: encoder, decoder and
//! likelihood), each with two kernels: the core's `Portable` and the firmware's `CortexM4`
//! (`firmware/src/kernel_m4.rs`, assembly inner loop), whose results must be bit-identical
//! (checked here on every measured output, and in `core_tests`). Weights are a cheap deterministic pattern
//! of the magnitude of trained weights; the counts do not depend on their values.
//!
//! Run: `bash scripts/bench-device.sh` (builds, runs under QEMU with `-icount shift=0` and
//! prints the ELF's `size`). Without `-icount` the numbers are meaningless. Reported, not
//! tested: nothing here fails on a slow result.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host there is nothing to run: say how to build and run the real program.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "bench_encode is a Cortex-M program: run it with `bash scripts/bench-device.sh` \
         (QEMU mps2-an386, -icount shift=0)"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use cortex_m::peripheral::SYST;
    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use panic_semihosting as _;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg32;
    use static_cell::ConstStaticCell;
    use vae_nostd::kernel::{MatMut, MatRef, gemm};
    use vae_nostd::quant::{self, IntGemv, QuantLayout, QuantVae};
    use vae_nostd::{
        Activation, Adam, Buffer, Error, Estimator, Gemm, Likelihood, Objective, Optimizer,
        Portable, ScoreKind, Vae, VaeConfig, Workspace,
    };

    use firmware::Aligned;
    use firmware::kernel_m4::CortexM4;

    /// Instructions per SysTick tick on mps2-an386 under `-icount shift=0` (25 MHz clock,
    /// 1 ns per instruction).
    const INSN_PER_TICK: u32 = 40;
    /// SysTick is 24 bits wide.
    const SYST_MASK: u32 = 0x00ff_ffff;

    /// The default sensor model's shape: D = 192 (64 samples × 3 axes), one hidden layer of
    /// 128, Z = 8, Gaussian decoder with the variance floor.
    const SENSOR: VaeConfig = VaeConfig::new(
        192,
        &[128],
        8,
        Activation::Tanh,
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: true,
        },
    );
    /// The paper's MNIST model: 784-500-20, Bernoulli decoder.
    const MNIST: VaeConfig =
        VaeConfig::new(784, &[500], 20, Activation::Tanh, Likelihood::Bernoulli);

    static SENSOR_PARAMS: ConstStaticCell<Buffer<f32, { SENSOR.num_params() }>> =
        ConstStaticCell::new(Buffer::new());
    static SENSOR_WS: ConstStaticCell<Buffer<f32, { SENSOR.workspace_len(1, 1) }>> =
        ConstStaticCell::new(Buffer::new());
    /// The sensor model's int8 weights, per-output scales and biases (`vae_nostd::quant`).
    /// (4-byte aligned, as the model image is: the `SMLAD` kernel's `LDM`s need it.)
    static Q_WEIGHTS: ConstStaticCell<Aligned<[i8; QuantLayout::new(&SENSOR).weights]>> =
        ConstStaticCell::new(Aligned([0; QuantLayout::new(&SENSOR).weights]));
    /// Weights of the int8 kernel's bare layer benchmarks, up to 500×784 (the MNIST encoder's
    /// first layer), pseudo-random.
    static Q_LAYER: ConstStaticCell<Aligned<[i8; 500 * 784]>> =
        ConstStaticCell::new(Aligned([0; 500 * 784]));
    static Q_OUT: ConstStaticCell<Buffer<f32, { 2 * QuantLayout::new(&SENSOR).outputs }>> =
        ConstStaticCell::new(Buffer::new());

    /// The sensor model's decoder output bias, its gradient and Adam's two moments.
    static ADAPT: ConstStaticCell<Buffer<f32, { 4 * SENSOR.decoder_out() }>> =
        ConstStaticCell::new(Buffer::new());
    static MNIST_PARAMS: ConstStaticCell<Buffer<f32, { MNIST.num_params() }>> =
        ConstStaticCell::new(Buffer::new());
    static MNIST_WS: ConstStaticCell<Buffer<f32, { MNIST.workspace_len(1, 1) }>> =
        ConstStaticCell::new(Buffer::new());

    #[entry]
    fn main() -> ! {
        let mut cp = cortex_m::Peripherals::take().expect("core peripherals");
        let syst = &mut cp.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(SYST_MASK);
        syst.clear_current();
        syst.enable_counter();
        match run(syst) {
            Ok(()) => {
                hprintln!("bench_encode: ok");
                exit(debug::EXIT_SUCCESS)
            }
            Err(e) => {
                hprintln!("bench_encode: error: {}", e);
                exit(debug::EXIT_FAILURE)
            }
        }
    }

    /// Executed instructions of `f` (to the 40-instruction tick; at most 2²⁴ ticks).
    #[inline(never)]
    fn count<R>(mut f: impl FnMut() -> R) -> (u32, R) {
        let start = SYST::get_current();
        let r = f();
        let end = SYST::get_current();
        (start.wrapping_sub(end) & SYST_MASK, r)
    }

    /// `n` iterations of a two-instruction loop (`subs`, `bne`).
    #[inline(never)]
    fn known_loop(n: u32) {
        // SAFETY: register-only arithmetic and a local branch; no memory is touched.
        unsafe {
            core::arch::asm!(
                "2:",
                "subs {0}, {0}, #1",
                "bne 2b",
                inout(reg) n => _,
                options(nomem, nostack),
            );
        }
    }

    fn run(_syst: &mut SYST) -> Result<(), Error> {
        // 1. The instruction clock: 2·10⁶ loop instructions must be 50 000 ticks (± 1 for the
        // few instructions around the loop).
        let (t, ()) = count(|| known_loop(1_000_000));
        let (t0, ()) = count(|| known_loop(1));
        hprintln!(
            "calibration: 1e6 x (subs, bne) = {} ticks, empty = {} ticks -> {} instructions/tick",
            t,
            t0,
            2_000_000.0 / (t - t0) as f32
        );
        if (t - t0).abs_diff(2_000_000 / INSN_PER_TICK) > 1 {
            hprintln!(
                "calibration: SysTick is not counting instructions: run QEMU with -icount shift=0"
            );
            exit(debug::EXIT_FAILURE);
        }

        let (params, ws) = (SENSOR_PARAMS.take(), SENSOR_WS.take());
        let p = bench_model(
            "sensor 192-128-8",
            "Portable",
            &Portable,
            &SENSOR,
            &mut params[..],
            &mut ws[..],
        )?;
        let m = bench_model(
            "sensor 192-128-8",
            "CortexM4",
            &CortexM4,
            &SENSOR,
            &mut params[..],
            &mut ws[..],
        )?;
        same_bits("sensor 192-128-8", &p, &m)?;
        bench_adaptation_step(&SENSOR, &params[..], &mut ws[..])?;
        bench_int8(&SENSOR, &params[..])?;
        let (params, ws) = (MNIST_PARAMS.take(), MNIST_WS.take());
        let p = bench_model(
            "mnist 784-500-20",
            "Portable",
            &Portable,
            &MNIST,
            &mut params[..],
            &mut ws[..],
        )?;
        let m = bench_model(
            "mnist 784-500-20",
            "CortexM4",
            &CortexM4,
            &MNIST,
            &mut params[..],
            &mut ws[..],
        )?;
        same_bits("mnist 784-500-20", &p, &m)?;
        Ok(())
    }

    /// What a run computed, to compare the two kernels bit for bit: the first layer's outputs
    /// (bits, FNV-1a), μ and log σ² (FNV-1a) and the score.
    #[derive(PartialEq)]
    struct Outputs {
        layer: u32,
        head: u32,
        score: u32,
    }

    /// FNV-1a over the bits of a slice of `f32`.
    fn fnv(x: &[f32]) -> u32 {
        let mut h = 0x811c_9dc5u32;
        for v in x {
            for b in v.to_bits().to_le_bytes() {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
        }
        h
    }

    fn same_bits(name: &str, p: &Outputs, m: &Outputs) -> Result<(), Error> {
        if p == m {
            hprintln!("{}: CortexM4 outputs equal Portable's bit for bit", name);
            Ok(())
        } else {
            hprintln!("{}: CortexM4 outputs DIFFER from Portable's", name);
            Err(Error::InvalidArgument("kernels disagree"))
        }
    }

    fn bench_model<K: Gemm<f32>>(
        name: &str,
        kname: &str,
        kernel: &K,
        cfg: &VaeConfig,
        params: &mut [f32],
        ws_buf: &mut [f32],
    ) -> Result<Outputs, Error> {
        // Weights ~ U(−0.05, 0.05) from a xorshift: the scale of trained weights, cheap to make.
        let mut s = 0x9E37_79B9u32;
        for p in params.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *p = (s >> 8) as f32 * (0.1 / 16_777_216.0) - 0.05;
        }
        let d = cfg.input;
        let h = cfg.encoder_hidden.width(0);
        // An input in [0, 1] (valid for both likelihoods): a ramp with a twist.
        let mut x = [0f32; 784];
        for (i, v) in x[..d].iter_mut().enumerate() {
            *v = ((i * 37) % 101) as f32 / 100.0;
        }
        let x = &x[..d];
        let vae = Vae::new(*cfg, &params[..])?;
        let l0 = cfg.layer(vae_nostd::Net::Encoder, 0);
        let (w, b) = (&params[l0.weight..l0.bias], &params[l0.bias..l0.end()]);

        // First dense layer alone: y = W·x + b, W [h][d], as `layers::linear_forward` does it.
        let mut y = [0f32; 500];
        let y = &mut y[..h];
        let mut layer = || {
            y.copy_from_slice(b);
            gemm(
                kernel,
                1.0,
                MatRef::row_major(x, 1, d),
                MatRef::transposed(w, d, h),
                1.0,
                MatMut::row_major(y, 1, h),
            )
        };
        let (t_layer, r) = count(&mut layer);
        r?;
        let (t_layer2, r) = count(&mut layer);
        r?;
        let macs = (d * h) as u32;
        let layer_bits = fnv(y);

        let mut ws = Workspace::new(cfg, 1, 1, ws_buf)?;
        let (t_enc, r) = count(|| vae.encode(kernel, x, 1, &mut ws));
        r?;
        let head_bits = fnv(ws.head(1));
        let enc_macs = cfg.encoder_params() as u32; // one MAC per weight (+ bias adds)
        let mut rng = Pcg32::seed_from_u64(1);
        let mut score = [0f32; 1];
        let (t_score, r) = count(|| {
            vae.score(
                kernel,
                x,
                1,
                ScoreKind::NegElboAtMean,
                &mut rng,
                &mut ws,
                &mut score,
            )
        });
        r?;
        let all_macs = cfg.num_params() as u32;
        let k = INSN_PER_TICK;
        hprintln!("{} [{}]: params {}", name, kname, cfg.num_params());
        hprintln!(
            "{} [{}]: layer {}x{} W.x+b: {} instructions ({} on a second run), {} MACs, {} instructions/MAC",
            name,
            kname,
            h,
            d,
            t_layer * k,
            t_layer2 * k,
            macs,
            (t_layer * k) as f32 / macs as f32
        );
        hprintln!(
            "{} [{}]: encode (mu, log var): {} instructions, {} instructions/weight",
            name,
            kname,
            t_enc * k,
            (t_enc * k) as f32 / enc_macs as f32
        );
        hprintln!(
            "{} [{}]: score NegElboAtMean: {} instructions, {} instructions/weight, score {}",
            name,
            kname,
            t_score * k,
            (t_score * k) as f32 / all_macs as f32,
            score[0]
        );
        Ok(Outputs {
            layer: layer_bits,
            head: head_bits,
            score: score[0].to_bits(),
        })
    }

    /// One step of the on-device adaptation (`firmware::adapt`) with the `CortexM4` kernel:
    /// forward with one draw of z (estimator B), the gradient of −ELBO with respect to the
    /// decoder output bias, Adam on it; each part counted, then a whole step.
    fn bench_adaptation_step(
        cfg: &VaeConfig,
        params: &[f32],
        ws_buf: &mut [f32],
    ) -> Result<(), Error> {
        let dout = cfg.decoder_out();
        let buf = ADAPT.take();
        let (bias, rest) = buf.split_at_mut(dout);
        let (grad, moments) = rest.split_at_mut(dout);
        bias.copy_from_slice(&params[params.len() - dout..]);
        let mut x = [0f32; 192];
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((i * 37) % 101) as f32 / 100.0;
        }
        let obj = Objective {
            estimator: Estimator::Analytic,
            samples: 1,
            beta: 1.0,
        };
        let mut rng = Pcg32::seed_from_u64(2);
        let mut adam = Adam::new(1e-2f32);
        let mut ws = Workspace::new(cfg, 1, 1, ws_buf)?;
        let k = INSN_PER_TICK;
        let (t_fwd, t_bwd) = {
            let vae = Vae::with_decoder_output_bias(*cfg, params, bias)?;
            let (t_fwd, r) = count(|| vae.forward(&CortexM4, &x, 1, obj, &mut rng, &mut ws));
            r?;
            let (t_bwd, r) = count(|| vae.backward_decoder_output_bias(&x, grad, &mut ws));
            r?;
            (t_fwd, t_bwd)
        };
        let (t_opt, r) = count(|| adam.step(bias, grad, moments));
        r?;
        let (t_step, r) = count(|| -> Result<(), Error> {
            let vae = Vae::with_decoder_output_bias(*cfg, params, bias)?;
            vae.forward(&CortexM4, &x, 1, obj, &mut rng, &mut ws)?;
            vae.backward_decoder_output_bias(&x, grad, &mut ws)?;
            adam.step(bias, grad, moments)
        });
        r?;
        hprintln!(
            "sensor 192-128-8 [CortexM4]: adaptation step ({} output biases, Adam): forward (one draw of z) {} + bias gradient {} + Adam {} instructions; whole step {} instructions",
            dout,
            t_fwd * k,
            t_bwd * k,
            t_opt * k,
            t_step * k
        );
        Ok(())
    }

    /// The int8 path (issue 11): the integer products of bare layers (64×192, the sensor's
    /// 128×192, MNIST's 500×784) with each kernel, then a whole quantized score of the sensor
    /// model (−ELBO at z = μ), checking that `CortexM4` gives `Portable`'s values.
    fn bench_int8(cfg: &VaeConfig, params: &[f32]) -> Result<(), Error> {
        const L: QuantLayout = QuantLayout::new(&SENSOR);
        const S: (usize, usize) = quant::scratch_len(&SENSOR);
        let n = INSN_PER_TICK;
        let kernels = [
            ("Portable", &Portable as &dyn IntGemv),
            ("CortexM4", &CortexM4 as &dyn IntGemv),
        ];
        let big = &mut Q_LAYER.take().0;
        let mut s = 0x2545_F491u32;
        for v in big.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *v = s as i8;
        }
        let mut xs = [0u32; 392];
        // sums[j]: the halfwords of the first j pairs.
        let mut sums = [0i32; 393];
        for (j, v) in xs.iter_mut().enumerate() {
            let (a, b) = ((j as i16 * 7) % 255 - 127, (j as i16 * 13) % 255 - 127);
            *v = u32::from(a as u16) | (u32::from(b as u16) << 16);
            sums[j + 1] = sums[j] + i32::from(a) + i32::from(b);
        }
        for (rows, k) in [(64usize, 192usize), (128, 192), (500, 784)] {
            let mut first: Option<(u32, i64)> = None;
            for (kname, kernel) in kernels {
                // The kernel calls alone are counted (ROWS_PER_CALL rows each, as a layer
                // makes them); the check sum of the outputs is taken afterwards.
                let mut acc = [0i32; 500];
                let (t, ()) = count(|| {
                    for c in 0..rows.div_ceil(quant::ROWS_PER_CALL) {
                        let r0 = c * quant::ROWS_PER_CALL;
                        let m = quant::ROWS_PER_CALL.min(rows - r0);
                        let w = &big[r0 * k..(r0 + m) * k];
                        kernel.gemv_i8(w, &xs[..k / 2], sums[k / 2], &mut acc[r0..r0 + m]);
                    }
                });
                let check: i64 = acc[..rows].iter().map(|a| i64::from(*a)).sum();
                hprintln!(
                    "int8 layer {}x{} [{}]: {} instructions, {} instructions/MAC",
                    rows,
                    k,
                    kname,
                    t * n,
                    (t * n) as f32 / (rows * k) as f32
                );
                match first {
                    None => first = Some((t, check)),
                    Some((_, c)) if c == check => {}
                    Some(_) => {
                        hprintln!("int8 layer {}x{}: CortexM4 DIFFERS from Portable", rows, k);
                        return Err(Error::InvalidArgument("int8 kernels disagree"));
                    }
                }
            }
        }
        let (w, out) = (&mut Q_WEIGHTS.take().0, Q_OUT.take());
        let (scales, biases) = out.split_at_mut(L.outputs);
        let mut input_scales = [0f32; L.layers];
        let mut f32s = [0f32; S.0];
        let mut x = [0f32; 192];
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((i * 37) % 101) as f32 / 100.0;
        }
        let mut absmax = [0f32; L.layers];
        quant::observe_layer_inputs(cfg, params, &x, &mut f32s, &mut absmax)?;
        quant::quantize(
            cfg,
            params,
            &absmax,
            &mut w[..],
            scales,
            biases,
            &mut input_scales,
        )?;
        let q = QuantVae::new(*cfg, &w[..], scales, biases, &input_scales)?;
        let mut first = None;
        for (kname, kernel) in kernels {
            let mut head = [0f32; 16];
            let mut xq = [0u32; S.1];
            let (t_score, r) = count(|| {
                q.score_neg_elbo_at_mean(
                    kernel,
                    &x,
                    &mut f32s,
                    &mut xq,
                    &mut head[..2 * cfg.latent],
                )
            });
            let score = r?;
            hprintln!(
                "sensor 192-128-8 [int8, {}]: score NegElboAtMean: {} instructions, score {} ({} B of quantized parameters)",
                kname,
                t_score * n,
                score,
                L.bytes()
            );
            match first {
                None => first = Some(score.to_bits()),
                Some(f) if f == score.to_bits() => {
                    hprintln!("sensor 192-128-8 [int8]: CortexM4 equals Portable bit for bit")
                }
                Some(_) => {
                    hprintln!("sensor 192-128-8 [int8]: CortexM4 DIFFERS from Portable");
                    return Err(Error::InvalidArgument("int8 kernels disagree"));
                }
            }
        }
        Ok(())
    }

    firmware::qemu_fault_handlers!("bench_encode");
    use firmware::qemu::exit;
}
