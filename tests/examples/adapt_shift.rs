//! The domain-shift scenario of `firmware::scenario::shift` on the host, with the firmware's own
//! application code (the QEMU program `qemu_adapt` runs the same): the default model deployed
//! on a second simulated machine, without adaptation, with it, and (given a model file trained
//! on the second machine) that model. Prints ROC AUC and the false-alarm rate over the
//! evaluation windows, and the adaptation's events. Flags change the adaptation's settings
//! for tuning: `--windows N --steps S --lr A`; `--severity X` and `--machine k=v,...` change the
//! second machine.
//!
//! `cargo run --release -p vae-tests --example adapt_shift [-- --retrained FILE.vaem]`
use firmware::adapt::Event;
use firmware::app::{Buffers, Settings, Verdict};
use firmware::scenario::{self, shift};

struct Outcome {
    auc: f64,
    false_alarms: u32,
    normal: u32,
    detected: u32,
    anomalies: u32,
    events: Vec<(u32, Event)>,
}

fn run(bytes: &[u8], settings: Settings, sim: vae_sim::SimConfig) -> Outcome {
    let mut buffers = Box::new(Buffers::new());
    let (mut events, mut scores, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fa, mut normal, mut det, mut anom) = (0, 0, 0, 0);
    scenario::replay(
        bytes,
        settings,
        sim,
        shift::WINDOWS,
        &mut buffers,
        |r, t| {
            if r.window.index < shift::EVAL_FROM {
                return;
            }
            scores.push(r.score);
            truth.push(t != 0);
            match (r.verdict, t) {
                (Verdict::Anomaly, 0) => (fa, normal) = (fa + 1, normal + 1),
                (Verdict::Normal, 0) => normal += 1,
                (Verdict::Anomaly, _) => (det, anom) = (det + 1, anom + 1),
                (Verdict::Normal, _) => anom += 1,
                _ => {}
            }
        },
        |w, e| events.push((w, *e)),
    )
    .expect("the scenario starts");
    Outcome {
        auc: host_trainer::metrics::roc_auc(&scores, &truth).unwrap_or(f64::NAN),
        false_alarms: fa,
        normal,
        detected: det,
        anomalies: anom,
        events,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut adaptation = shift::ADAPTED.adaptation;
    if let Some(v) = flag("--windows") {
        adaptation.windows = v.parse().expect("--windows");
    }
    if let Some(v) = flag("--steps") {
        adaptation.steps_per_window = v.parse().expect("--steps");
    }
    if let Some(v) = flag("--lr") {
        adaptation.learning_rate = v.parse().expect("--lr");
    }
    let mut sim = shift::SIM;
    if let Some(v) = flag("--severity") {
        sim.severity = v.parse().expect("--severity");
    }
    // Another second machine: `--machine noise=12,vibration=39,gain=1.1,offset_x=35,offset_z=-1`
    // (unnamed fields keep the default machine's values).
    if let Some(v) = flag("--machine") {
        let d = vae_sim::SimConfig::default();
        (sim.noise_mg, sim.vibration_mg) = (d.noise_mg, d.vibration_mg);
        (sim.mounting_gain, sim.mounting_offset_mg) = (d.mounting_gain, d.mounting_offset_mg);
        for kv in v.split(',') {
            let (k, x) = kv.split_once('=').expect("--machine key=value,...");
            let x: f32 = x.parse().expect("--machine value");
            match k {
                "noise" => sim.noise_mg = x,
                "vibration" => sim.vibration_mg = x,
                "gain" => sim.mounting_gain = [x; 3],
                "offset_x" => sim.mounting_offset_mg[0] = x,
                "offset_z" => sim.mounting_offset_mg[2] = x,
                _ => panic!("--machine: unknown key {k}"),
            }
        }
    }
    let factory = &firmware::DEFAULT_MODEL.0;
    let mut runs = vec![
        ("factory, no adaptation", run(factory, shift::FIXED, sim)),
        (
            "factory, adapted",
            run(
                factory,
                Settings {
                    adaptation,
                    ..shift::ADAPTED
                },
                sim,
            ),
        ),
    ];
    if let Some(path) = flag("--retrained") {
        let bytes = std::fs::read(&path).expect("read --retrained");
        // The same architecture as the default model, so the same length; 4-byte aligned.
        let mut aligned = Box::new(firmware::Aligned([0u8; firmware::model::MODEL_LEN]));
        assert_eq!(
            bytes.len(),
            aligned.0.len(),
            "--retrained: not a default-architecture model"
        );
        aligned.0.copy_from_slice(&bytes);
        runs.push(("retrained on machine B", run(&aligned.0, shift::FIXED, sim)));
    }
    println!("adaptation: {adaptation:?}");
    for (name, o) in &runs {
        println!(
            "{name:24} AUC {:.4}  false alarms {}/{} ({:.2} %)  detected {}/{}",
            o.auc,
            o.false_alarms,
            o.normal,
            100.0 * o.false_alarms as f64 / o.normal as f64,
            o.detected,
            o.anomalies
        );
        for (w, e) in &o.events {
            println!("    window {w}: {e:?}");
        }
    }
}
