//! QEMU smoke test: the whole vae-nostd inference path on an emulated Cortex-M4F, no allocator.
//!
//! On QEMU's `mps2-an386` board it initializes a small sensor VAE (D = 192, one hidden layer of
//! 32, Z = 4, Gaussian decoder) with the paper's N(0, 0.01²) from a fixed seed, encodes one
//! synthetic sine window into μ and log σ², scores it with −ELBO at z = μ, prints the results
//! over semihosting (each f32 as hex bits, which must match across machines, and as a decimal)
//! and exits QEMU with success. An error, a panic or a HardFault exits QEMU with failure.
//!
//! On QEMU's `microbit` board (nRF51822, Cortex-M0 without FPU: `thumbv6m-none-eabi`, built with
//! `--cfg qemu_microbit` by build.rs) the 77 KB of parameters do not fit in its 16 KiB of RAM:
//! there they are the same initialization computed on the host by build.rs and embedded in
//! flash (read in place, as the application reads its model), and everything after the
//! initialization runs on the device as on the M4F. The printed lines are the same bits on both
//! machines (`.ci/run` compares them).
//!
//! Run it with `cargo qemu-smoke` (`cargo qemu-smoke-m0` on the `microbit` board; see
//! `.cargo/config.toml`). On the host this file builds as a
//! program that only says so, so that workspace-wide host builds keep working.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host there is nothing to run: say how to build and run the real program.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "qemu_smoke is a Cortex-M program: build it for thumbv7em-none-eabihf and run it in QEMU \
         with `cargo qemu-smoke`"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use core::f32::consts::PI;

    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use panic_semihosting as _; // A panic prints its message and exits QEMU with failure.
    use rand_core::SeedableRng;
    use rand_pcg::Pcg32;
    use static_cell::ConstStaticCell;
    use vae_nostd::{Buffer, Error, Portable, ScoreKind, Vae, Workspace};

    /// The model and the seed, shared with build.rs.
    mod smoke_model {
        include!("../smoke_model.rs");
    }
    use smoke_model::{CFG, NUM_PARAMS, SEED};

    /// D: samples per window.
    const D: usize = CFG.input;
    /// Z: latent dimension.
    const Z: usize = CFG.latent;

    /// Flat parameters, in .bss: the linker checks that they fit in RAM.
    #[cfg(not(qemu_microbit))]
    static PARAMS: ConstStaticCell<Buffer<f32, NUM_PARAMS>> = ConstStaticCell::new(Buffer::new());

    /// The parameters initialized by build.rs (`init_params`, `SEED`), in flash: the array is
    /// built at compile time from the little-endian bytes, so it needs no alignment trick.
    #[cfg(qemu_microbit)]
    static PARAMS: [f32; NUM_PARAMS] = {
        let b = include_bytes!(concat!(env!("OUT_DIR"), "/smoke_params.bin"));
        assert!(
            b.len() == 4 * NUM_PARAMS,
            "smoke_params.bin has NUM_PARAMS f32"
        );
        let mut p = [0f32; NUM_PARAMS];
        let mut i = 0;
        while i < NUM_PARAMS {
            p[i] = f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
            i += 1;
        }
        p
    };
    /// Encode-only workspace for one window (hidden layer and the μ, log σ² head).
    static ENCODE_WS: ConstStaticCell<Buffer<f32, { CFG.encode_workspace_len(1) }>> =
        ConstStaticCell::new(Buffer::new());
    /// Full workspace for scoring one window with one draw.
    static SCORE_WS: ConstStaticCell<Buffer<f32, { CFG.workspace_len(1, 1) }>> =
        ConstStaticCell::new(Buffer::new());

    #[entry]
    fn main() -> ! {
        match run() {
            Ok(()) => {
                hprintln!("qemu_smoke: ok");
                exit(debug::EXIT_SUCCESS)
            }
            Err(e) => {
                hprintln!("qemu_smoke: error: {}", e);
                exit(debug::EXIT_FAILURE)
            }
        }
    }

    /// Initialize, encode, score, print.
    fn run() -> Result<(), Error> {
        hprintln!(
            "qemu_smoke: vae-nostd D={} hidden={:?} Z={} params={} seed={:#x}",
            D,
            CFG.encoder_hidden.widths(),
            Z,
            CFG.num_params(),
            SEED
        );
        let mut rng = Pcg32::seed_from_u64(SEED);
        #[cfg(not(qemu_microbit))]
        let params = {
            let params = PARAMS.take();
            vae_nostd::init_params(&CFG, params, vae_nostd::Init::PAPER, &mut rng)?;
            params
        };
        #[cfg(qemu_microbit)]
        let params = &PARAMS;

        // One deterministic window: a sine of 8 periods, amplitude 0.5.
        let mut x = [0f32; D];
        for (i, v) in x.iter_mut().enumerate() {
            *v = 0.5 * libm::sinf(2.0 * PI * 8.0 * i as f32 / D as f32);
        }

        let vae = Vae::new(CFG, &params[..])?;

        let mut ws = Workspace::for_encoding(&CFG, 1, &mut ENCODE_WS.take()[..])?;
        vae.encode(&Portable, &x, 1, &mut ws)?;
        let (mu, log_var) = ws.head(1).split_at(Z);
        for (j, v) in mu.iter().enumerate() {
            print_f32("mu", j, *v);
        }
        for (j, v) in log_var.iter().enumerate() {
            print_f32("log_var", j, *v);
        }

        let mut ws = Workspace::new(&CFG, 1, 1, &mut SCORE_WS.take()[..])?;
        let mut score = [0f32; 1];
        vae.score(
            &Portable,
            &x,
            1,
            ScoreKind::NegElboAtMean,
            &mut rng,
            &mut ws,
            &mut score,
        )?;
        print_f32("neg_elbo_at_mean", 0, score[0]);
        Ok(())
    }

    /// One value per line: `name[index] = 0x<f32 bits> <decimal>`.
    fn print_f32(name: &str, index: usize, v: f32) {
        hprintln!("{}[{}] = {:#010x} {}", name, index, v.to_bits(), v);
    }

    firmware::qemu_fault_handlers!("qemu_smoke");
    use firmware::qemu::exit;
}
