//! The trainer's default data: windows of the simulated 3-axis accelerometer of
//! [`vae_sim`] (a 25 Hz machine sampled at 400 Hz, milli-g, gravity on z).
//!
//! Three independent streams, one per split, seeded from the one `seed`
//! ([`vae_sim::split_seed`] with streams 1, 2, 3): the same machine, different noise,
//! speed paths and episodes. Each stream is cut into windows of `window_len` samples × 3 axes,
//! one row each, interleaved `[t][axis]` (D = 3 × `window_len` = 192 by default), in mg before
//! any normalization.
//!
//! * **train**: `windows` rows taken every `hop` samples (overlapping when `hop < window_len`),
//!   with `train_contamination` of its samples in random anomaly episodes (0: normal only).
//! * **valid**, **test**: `valid_windows` and `test_windows` non-overlapping rows (hop =
//!   `window_len`), `anomaly_rate` of their samples in random anomaly episodes.
//!
//! Random episodes are blocks of `episode_windows × window_len` samples aligned with the
//! stream's start (see [`vae_sim`]), so with hop a divisor of `window_len` every
//! non-overlapping window is wholly normal or wholly one kind. A window's label
//! ([`vae_nostd::window_label`], the rule of every loader) is the anomaly kind (1 bearing,
//! 2 imbalance, 3 looseness) of its first anomalous sample, else 0 (normal); the label names are [`vae_sim::LABEL_NAMES`].
//!
//! Options come from `key=value` pairs ([`SyntheticOptions::from_pairs`]); every key is
//! optional, see [`SyntheticOptions::KEYS`].

use vae_sim::{self as sim, SimConfig, Simulator};

use super::{Dataset, Splits, Window};

/// What to simulate and how to cut it. Every field has a `key=value` of the same name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyntheticOptions {
    /// Training windows (4000).
    pub windows: usize,
    /// Validation windows (1000).
    pub valid_windows: usize,
    /// Test windows (1000).
    pub test_windows: usize,
    /// Samples per window (64; D = 3 × window_len).
    pub window_len: usize,
    /// Samples between training-window starts (64); validation and test windows never overlap.
    pub hop: usize,
    /// Fraction of validation and test samples inside anomaly episodes (0.1).
    pub anomaly_rate: f32,
    /// Fraction of training samples inside anomaly episodes (0.0: train on normal data only).
    pub train_contamination: f32,
    /// Length of a random anomaly episode, in windows (4).
    pub episode_windows: usize,
    /// Sensor output data rate, Hz (400).
    pub sample_rate_hz: f32,
    /// Nominal shaft rate, Hz (25).
    pub shaft_hz: f32,
    /// White sensor noise, mg standard deviation (8).
    pub noise_mg: f32,
    /// The normal 1x radial vibration amplitude, mg (30): the machine's load.
    pub vibration_mg: f32,
    /// Per-axis sensitivity of the mounted sensor, keys `gain_x`, `gain_y`, `gain_z` (1).
    pub mounting_gain: [f32; 3],
    /// Per-axis offset after the gain, mg, keys `offset_x_mg`, `offset_y_mg`, `offset_z_mg`
    /// (0): zero-g offset or a tilted mounting.
    pub mounting_offset_mg: [f32; 3],
    /// Anomaly amplitude scale (1.0).
    pub severity: f32,
    /// Seed of all three streams (0).
    pub seed: u64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        let sim = SimConfig::default();
        SyntheticOptions {
            windows: 4000,
            valid_windows: 1000,
            test_windows: 1000,
            window_len: 64,
            hop: 64,
            anomaly_rate: 0.1,
            train_contamination: 0.0,
            episode_windows: 4,
            sample_rate_hz: sim.sample_rate_hz,
            shaft_hz: sim.shaft_hz,
            noise_mg: sim.noise_mg,
            vibration_mg: sim.vibration_mg,
            mounting_gain: sim.mounting_gain,
            mounting_offset_mg: sim.mounting_offset_mg,
            severity: sim.severity,
            seed: 0,
        }
    }
}

/// Which stream of the seed each split uses.
const TRAIN_STREAM: u64 = 1;
const VALID_STREAM: u64 = 2;
const TEST_STREAM: u64 = 3;

impl SyntheticOptions {
    /// The accepted keys, in the order of the fields.
    pub const KEYS: [&'static str; 20] = [
        "windows",
        "valid_windows",
        "test_windows",
        "window_len",
        "hop",
        "anomaly_rate",
        "train_contamination",
        "episode_windows",
        "sample_rate_hz",
        "shaft_hz",
        "noise_mg",
        "vibration_mg",
        "gain_x",
        "gain_y",
        "gain_z",
        "offset_x_mg",
        "offset_y_mg",
        "offset_z_mg",
        "severity",
        "seed",
    ];

    /// The defaults with `key=value` pairs applied in order (a later key wins), then
    /// [`validate`](Self::validate)d. Errors name the key: an unknown key, a value that does not
    /// parse, a value out of range.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut o = SyntheticOptions::default();
        for (key, value) in pairs {
            let value = value.trim();
            match key.trim() {
                "windows" => o.windows = count(key, value)?,
                "valid_windows" => o.valid_windows = count(key, value)?,
                "test_windows" => o.test_windows = count(key, value)?,
                "window_len" => o.window_len = count(key, value)?,
                "hop" => o.hop = count(key, value)?,
                "anomaly_rate" => o.anomaly_rate = real(key, value)?,
                "train_contamination" => o.train_contamination = real(key, value)?,
                "episode_windows" => o.episode_windows = count(key, value)?,
                "sample_rate_hz" => o.sample_rate_hz = real(key, value)?,
                "shaft_hz" => o.shaft_hz = real(key, value)?,
                "noise_mg" => o.noise_mg = real(key, value)?,
                "vibration_mg" => o.vibration_mg = real(key, value)?,
                "gain_x" => o.mounting_gain[0] = real(key, value)?,
                "gain_y" => o.mounting_gain[1] = real(key, value)?,
                "gain_z" => o.mounting_gain[2] = real(key, value)?,
                "offset_x_mg" => o.mounting_offset_mg[0] = real(key, value)?,
                "offset_y_mg" => o.mounting_offset_mg[1] = real(key, value)?,
                "offset_z_mg" => o.mounting_offset_mg[2] = real(key, value)?,
                "severity" => o.severity = real(key, value)?,
                "seed" => {
                    o.seed = value.parse().map_err(|_| {
                        format!(
                            "synthetic: `seed` must be an unsigned 64-bit integer, got `{value}`"
                        )
                    })?
                }
                other => {
                    return Err(format!(
                        "synthetic: unknown key `{other}` (known: {})",
                        Self::KEYS.join(", ")
                    ));
                }
            }
        }
        o.validate()?;
        Ok(o)
    }

    /// Checks the options, naming the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("windows", self.windows),
            ("valid_windows", self.valid_windows),
            ("test_windows", self.test_windows),
            ("window_len", self.window_len),
            ("hop", self.hop),
            ("episode_windows", self.episode_windows),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("synthetic: `{key}` must be at least 1"));
            }
        }
        for (key, v) in [
            ("anomaly_rate", self.anomaly_rate),
            ("train_contamination", self.train_contamination),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("synthetic: `{key}` must be in [0, 1], got {v}"));
            }
        }
        if self.episode_len().is_none() {
            return Err(format!(
                "synthetic: `episode_windows` × `window_len` = {} × {} exceeds {} samples",
                self.episode_windows,
                self.window_len,
                u32::MAX
            ));
        }
        // Every split's stream must fit in memory arithmetic: 3 f32 per sample.
        let train = (self.windows - 1)
            .checked_mul(self.hop)
            .and_then(|s| s.checked_add(self.window_len));
        for (key, samples) in [
            ("windows", train),
            (
                "valid_windows",
                self.valid_windows.checked_mul(self.window_len),
            ),
            (
                "test_windows",
                self.test_windows.checked_mul(self.window_len),
            ),
        ] {
            if samples
                .and_then(|s| s.checked_mul(3 * size_of::<f32>()))
                .is_none()
            {
                return Err(format!(
                    "synthetic: `{key}` too large for this `window_len`/`hop`"
                ));
            }
        }
        self.sim_config(self.anomaly_rate, 0)
            .validate()
            .map_err(|e| {
                let keys: Vec<String> = [
                    "sample_rate_hz",
                    "shaft_hz",
                    "noise_mg",
                    "vibration_mg",
                    "mounting_gain",
                    "mounting_offset_mg",
                    "severity",
                ]
                .into_iter()
                .filter(|k| e.to_string().contains(k))
                .map(|k| format!("`{k}`"))
                .collect();
                format!("synthetic: {}: {e}", keys.join(" and "))
            })
    }

    /// Samples per random episode, `None` if it overflows u32.
    fn episode_len(&self) -> Option<u32> {
        self.episode_windows
            .checked_mul(self.window_len)
            .and_then(|n| u32::try_from(n).ok())
    }

    /// The simulator settings of one split: the [`SimConfig`] defaults with these options, the
    /// bearing resonance at 150 Hz or 0.375 fs, whichever is lower, and the seed of `stream`.
    pub fn sim_config(&self, anomaly_rate: f32, stream: u64) -> SimConfig {
        SimConfig {
            sample_rate_hz: self.sample_rate_hz,
            shaft_hz: self.shaft_hz,
            noise_mg: self.noise_mg,
            vibration_mg: self.vibration_mg,
            mounting_gain: self.mounting_gain,
            mounting_offset_mg: self.mounting_offset_mg,
            anomaly_rate,
            episode_len_samples: self.episode_len().unwrap_or(u32::MAX),
            // The bearing resonance must stay below 0.45 fs.
            resonance_hz: SimConfig::default()
                .resonance_hz
                .min(0.375 * self.sample_rate_hz),
            severity: self.severity,
            seed: sim::split_seed(self.seed, stream),
            ..SimConfig::default()
        }
    }

    /// `synthetic(seed=..., ...)`: every option, for summaries and checkpoint metadata.
    pub fn source(&self) -> String {
        format!(
            "synthetic(seed={}, windows={}, valid_windows={}, test_windows={}, window_len={}, \
             hop={}, anomaly_rate={}, train_contamination={}, episode_windows={}, \
             sample_rate_hz={}, shaft_hz={}, noise_mg={}, vibration_mg={}, gain={:?}, offset_mg={:?}, severity={})",
            self.seed,
            self.windows,
            self.valid_windows,
            self.test_windows,
            self.window_len,
            self.hop,
            self.anomaly_rate,
            self.train_contamination,
            self.episode_windows,
            self.sample_rate_hz,
            self.shaft_hz,
            self.noise_mg,
            self.vibration_mg,
            self.mounting_gain,
            self.mounting_offset_mg,
            self.severity
        )
    }
}

fn count(key: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("synthetic: `{key}` must be a non-negative integer, got `{value}`"))
}

fn real(key: &str, value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "synthetic: `{key}` must be a finite number, got `{value}`"
        )),
    }
}

/// Simulates and windows the three splits (see the [module documentation](self)).
///
/// # Panics
/// If `opts` fails [`SyntheticOptions::validate`], with its message. The defaults and
/// everything [`SyntheticOptions::from_pairs`] returns pass.
pub fn synthetic_splits(opts: &SyntheticOptions) -> Splits {
    if let Err(e) = opts.validate() {
        panic!("{e}");
    }
    let source = opts.source();
    let split = |windows: usize, hop: usize, rate: f32, stream: u64| -> Dataset {
        let cfg = opts.sim_config(rate, stream);
        let mut simulator = Simulator::new(cfg).expect("validated above");
        let len = opts.window_len;
        let samples = (windows - 1) * hop + len;
        let mut stream = vec![0f32; 3 * samples];
        let mut labels = vec![0u8; samples];
        simulator
            .fill_window(&mut stream, &mut labels)
            .expect("3 values per label");
        let mut x = Vec::with_capacity(windows * 3 * len);
        let mut window_labels = Vec::with_capacity(windows);
        for w in 0..windows {
            let start = w * hop;
            x.extend_from_slice(&stream[3 * start..3 * (start + len)]);
            window_labels.push(u32::from(vae_nostd::window_label(
                &labels[start..start + len],
            )));
        }
        Dataset {
            source: source.clone(),
            dim: 3 * len,
            x,
            labels: Some(window_labels),
            label_names: sim::LABEL_NAMES.iter().map(|s| s.to_string()).collect(),
            image: None,
            window: Some(Window {
                len,
                hop,
                channels: 3,
                sample_rate_hz: opts.sample_rate_hz,
            }),
            channel_names: ["x", "y", "z"].map(String::from).to_vec(),
            groups: None,
            warnings: Vec::new(),
        }
    };
    let held_out_hop = opts.window_len;
    Splits {
        train: split(
            opts.windows,
            opts.hop,
            opts.train_contamination,
            TRAIN_STREAM,
        ),
        valid: split(
            opts.valid_windows,
            held_out_hop,
            opts.anomaly_rate,
            VALID_STREAM,
        ),
        test: split(
            opts.test_windows,
            held_out_hop,
            opts.anomaly_rate,
            TEST_STREAM,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn small() -> SyntheticOptions {
        SyntheticOptions {
            windows: 300,
            valid_windows: 200,
            test_windows: 100,
            seed: 9,
            ..SyntheticOptions::default()
        }
    }

    fn fraction(labels: &[u32]) -> f64 {
        labels.iter().filter(|&&l| l != 0).count() as f64 / labels.len() as f64
    }

    #[test]
    fn counts_shapes_and_metadata() {
        let s = synthetic_splits(&small());
        for (d, n, hop) in [(&s.train, 300, 64), (&s.valid, 200, 64), (&s.test, 100, 64)] {
            assert_eq!(d.dim, 192);
            assert_eq!(d.len(), n);
            assert_eq!(d.labels.as_ref().unwrap().len(), n);
            assert_eq!(
                d.label_names,
                ["normal", "bearing", "imbalance", "looseness"]
            );
            assert_eq!(d.channel_names, ["x", "y", "z"]);
            assert_eq!(
                d.window,
                Some(Window {
                    len: 64,
                    hop,
                    channels: 3,
                    sample_rate_hz: 400.0
                })
            );
            assert!(
                d.source.starts_with("synthetic(seed=9, windows=300,"),
                "{}",
                d.source
            );
            assert!(d.x.iter().all(|v| v.is_finite()));
            // z carries gravity: the axial mean is near +1000 mg, the radial ones near 0.
            let mean = |c: usize| {
                d.x.iter()
                    .skip(c)
                    .step_by(3)
                    .map(|&v| v as f64)
                    .sum::<f64>()
                    / (64 * n) as f64
            };
            assert!(mean(0).abs() < 30.0 && mean(1).abs() < 30.0);
            assert!((mean(2) - 1000.0).abs() < 30.0);
        }
        assert!(s.train.labels.as_ref().unwrap().iter().all(|&l| l == 0));
    }

    #[test]
    fn overlapping_training_windows_share_samples() {
        let o = SyntheticOptions { hop: 16, ..small() };
        let s = synthetic_splits(&o);
        assert_eq!(s.train.len(), 300);
        assert_eq!(s.train.window.unwrap().hop, 16);
        // Row i+1 starts 16 samples (48 values) into row i.
        assert_eq!(&s.train.row(0)[48..], &s.train.row(1)[..192 - 48]);
        assert_eq!(s.valid.window.unwrap().hop, 64);
    }

    #[test]
    fn same_seed_same_data_and_independent_splits() {
        let a = synthetic_splits(&small());
        let b = synthetic_splits(&small());
        assert_eq!(a.train.hash(), b.train.hash());
        assert_eq!(a, b);
        let c = synthetic_splits(&SyntheticOptions {
            seed: 10,
            ..small()
        });
        assert_ne!(a.train.hash(), c.train.hash());
        assert_ne!(a.test.hash(), c.test.hash());
        // The splits are different streams, not copies.
        assert_ne!(a.valid.row(0), a.test.row(0));
        assert_ne!(a.train.row(0), a.valid.row(0));
    }

    #[test]
    fn label_fractions_follow_the_rates() {
        let o = SyntheticOptions {
            windows: 20_000,
            valid_windows: 20_000,
            test_windows: 20_000,
            train_contamination: 0.2,
            anomaly_rate: 0.1,
            ..small()
        };
        let s = synthetic_splits(&o);
        // 5000 blocks of 4 windows per split: standard error of a fraction ≤ 0.006.
        let f_train = fraction(s.train.labels.as_ref().unwrap());
        assert!((f_train - 0.2).abs() < 0.03, "{f_train}");
        for d in [&s.valid, &s.test] {
            let l = d.labels.as_ref().unwrap();
            let f = fraction(l);
            assert!((f - 0.1).abs() < 0.025, "{f}");
            for k in 1..=3 {
                let share = l.iter().filter(|&&v| v == k).count() as f64 / l.len() as f64;
                assert!((share - 0.1 / 3.0).abs() < 0.015, "kind {k}: {share}");
            }
            // Episodes are four aligned windows: anomalous windows come in runs of 4k.
            let mut run = 0;
            for (i, &v) in l.iter().enumerate() {
                if v != 0 {
                    run += 1;
                }
                if v == 0 || i + 1 == l.len() {
                    assert!(
                        run % 4 == 0 || i + 1 == l.len(),
                        "run of {run} ending at {i}"
                    );
                    run = 0;
                }
            }
        }
        let clean = synthetic_splits(&SyntheticOptions {
            anomaly_rate: 0.0,
            ..small()
        });
        assert_eq!(fraction(clean.test.labels.as_ref().unwrap()), 0.0);
    }

    #[test]
    fn pairs_parse_and_errors_name_the_key() {
        let o = SyntheticOptions::from_pairs(&pairs(&[
            ("windows", "10"),
            ("hop", "32"),
            ("anomaly_rate", "0.25"),
            ("seed", "18446744073709551615"),
            ("severity", " 2 "),
            ("gain_z", "1.1"),
            ("offset_x_mg", "-35"),
            ("vibration_mg", "39"),
        ]))
        .unwrap();
        assert_eq!(o.mounting_gain, [1.0, 1.0, 1.1]);
        assert_eq!(o.mounting_offset_mg, [-35.0, 0.0, 0.0]);
        assert_eq!(o.vibration_mg, 39.0);
        assert_eq!(o.windows, 10);
        assert_eq!(o.hop, 32);
        assert_eq!(o.anomaly_rate, 0.25);
        assert_eq!(o.seed, u64::MAX);
        assert_eq!(o.severity, 2.0);
        assert_eq!(o.window_len, 64);
        assert_eq!(
            SyntheticOptions::from_pairs(&[]).unwrap(),
            SyntheticOptions::default()
        );

        let err = |kv: &[(&str, &str)]| SyntheticOptions::from_pairs(&pairs(kv)).unwrap_err();
        for (kv, key) in [
            (("windows", "many"), "`windows`"),
            (("windows", "0"), "`windows`"),
            (("window_len", "-3"), "`window_len`"),
            (("anomaly_rate", "1.5"), "`anomaly_rate`"),
            (("train_contamination", "nan"), "`train_contamination`"),
            (("seed", "-1"), "`seed`"),
            (("sample_rate_hz", "100"), "`sample_rate_hz`"),
            (("shaft_hz", "0"), "`shaft_hz`"),
            (("noise_mg", "inf"), "`noise_mg`"),
            (("vibration_mg", "-1"), "`vibration_mg`"),
            (("gain_y", "0"), "`mounting_gain`"),
            (("severity", "0"), "`severity`"),
            (("colour", "red"), "`colour`"),
        ] {
            let e = err(&[kv]);
            assert!(e.contains(key), "{kv:?}: {e}");
        }
    }

    #[test]
    #[should_panic(expected = "synthetic: `hop` must be at least 1")]
    fn invalid_options_panic_with_the_message() {
        synthetic_splits(&SyntheticOptions { hop: 0, ..small() });
    }
}
