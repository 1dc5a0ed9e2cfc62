//! Loading and splitting the data a command names, and the data a checkpoint was trained on.

use anyhow::{Context, Result, bail};

use host_trainer::data::csv::load_csv;
use host_trainer::data::idx::load_mnist_dir;
use host_trainer::data::mat::load_frey;
use host_trainer::data::spec::{DataSpec, parse_data_spec};
use host_trainer::data::split::{split_by_groups, split_rows};
use host_trainer::data::synthetic::{SyntheticOptions, synthetic_splits};
use host_trainer::data::{Dataset, Splits};
use host_trainer::model::{Checkpoint, LikelihoodName};
use host_trainer::train::Binarize;

use crate::SplitArg;

/// What kind of rows a dataset has, for defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Images in [0, 1] (MNIST, Frey).
    Image,
    /// Sensor windows.
    Window,
    /// Other tables.
    Table,
}

/// What kind of rows `ds` has, for defaults.
pub(crate) fn kind_of(ds: &Dataset) -> Kind {
    if ds.image.is_some() {
        Kind::Image
    } else if ds.window.is_some() {
        Kind::Window
    } else {
        Kind::Table
    }
}

/// The default split of a CSV file: train, validation and test fractions.
pub(crate) const CSV_SPLIT: [f64; 3] = [0.7, 0.15, 0.15];
/// The default split of a CSV training file when `--valid-data` names the validation data.
const CSV_SPLIT_WITH_VALID: [f64; 3] = [1.0, 0.0, 0.0];

/// Splits a CSV dataset by its options (`split=`, `shuffle=`; see the module docs of
/// `data::csv`): contiguous blocks in file order by default, whole groups in a seeded order
/// when the file has a `group=` column (or `shuffle=true`), single windows in a seeded order
/// with `shuffle=true` and no groups.
pub(crate) fn split_csv(
    ds: &Dataset,
    fractions: [f64; 3],
    shuffle: Option<bool>,
    seed: u64,
) -> Splits {
    let [_, valid, test] = fractions;
    let s = 'split: {
        if let (Some(g), None | Some(true)) = (&ds.groups, shuffle) {
            let s = split_by_groups(ds, g, valid, test, seed);
            if !((valid > 0.0 && s.valid.is_empty()) || (test > 0.0 && s.test.is_empty())) {
                break 'split s;
            }
            // Too few groups to give every part one: split in file order instead.
            eprintln!(
                "note: {}: too few groups ({}) to split by whole groups; splitting the windows in file order",
                ds.source,
                g.iter().collect::<std::collections::BTreeSet<_>>().len()
            );
        }
        let shuffle_rows = shuffle.unwrap_or(false) && ds.groups.is_none();
        split_rows(ds, valid, test, seed, shuffle_rows)
    };
    let kept = s.train.len() + s.valid.len() + s.test.len();
    if kept < ds.len() {
        let (len, hop) = ds.window.map_or((0, 0), |w| (w.len, w.hop));
        eprintln!(
            "note: {}: {} of {} windows left out at the borders between train, validation and test \
             (they overlap the next part: window={len} with hop={hop}), so no time step is in two parts",
            ds.source,
            ds.len() - kept,
            ds.len(),
        );
    }
    s
}

/// The whole of the data a specification names, as one set to score or evaluate: every window
/// of a CSV file; the test split of the built-in and image data, which have fixed splits.
pub fn load_whole(spec: &str, seed: u64) -> Result<Dataset> {
    let parsed = parse_data_spec(spec).with_context(|| format!("--data {spec}"))?;
    match parsed {
        DataSpec::Csv { path, options } => Ok(load_csv(&path, &options)?),
        _ => Ok(load_splits(spec, seed, false)?.test),
    }
}

/// Loads the train/valid/test splits a data specification names, reproducibly from `seed`.
/// `separate_valid`: validation data comes from elsewhere (`--valid-data`), so a CSV file is
/// all training data unless its `split=` says otherwise.
pub fn load_splits(spec: &str, seed: u64, separate_valid: bool) -> Result<Splits> {
    // `mnist:DIR?valid=N`: how many training images validate (the rest of the spec grammar
    // is the data module's).
    let (spec_core, mnist_valid) = match spec
        .strip_prefix("mnist:")
        .and_then(|r| r.rsplit_once("?valid="))
    {
        Some((dir, n)) => (
            format!("mnist:{dir}"),
            n.parse::<usize>()
                .with_context(|| format!("--data {spec}: valid must be a whole number"))?,
        ),
        None => (spec.to_string(), 10_000),
    };
    let parsed = parse_data_spec(&spec_core).with_context(|| format!("--data {spec}"))?;
    Ok(match parsed {
        DataSpec::Synthetic { options } => {
            let mut pairs = options;
            if !pairs.iter().any(|(k, _)| k == "seed") {
                pairs.push(("seed".into(), seed.to_string()));
            }
            let opts = SyntheticOptions::from_pairs(&pairs)
                .map_err(|e| anyhow::anyhow!("--data {spec}: {e}"))?;
            synthetic_splits(&opts)
        }
        DataSpec::Mnist { dir } => {
            let (train, test) = load_mnist_dir(&dir)?;
            // The usual split: the last 10,000 training images validate; with valid=0 all
            // 60,000 train and the test set stands in for validation (learning curves only).
            let n = train.len();
            if mnist_valid == 0 {
                Splits {
                    train,
                    valid: test.clone(),
                    test,
                }
            } else {
                let cut = n.saturating_sub(mnist_valid);
                let idx: Vec<usize> = (0..n).collect();
                Splits {
                    train: train.subset(&idx[..cut]),
                    valid: train.subset(&idx[cut..]),
                    test,
                }
            }
        }
        DataSpec::Frey { path } => split_rows(&load_frey(&path)?, 0.1, 0.1, seed, true),
        DataSpec::Csv { path, options } => split_csv(
            &load_csv(&path, &options)?,
            options.split.unwrap_or(if separate_valid {
                CSV_SPLIT_WITH_VALID
            } else {
                CSV_SPLIT
            }),
            options.shuffle,
            seed,
        ),
    })
}

/// The rows labelled normal when the labels are anomaly labels (`label_names[0] == "normal"`);
/// all rows otherwise.
pub(crate) fn normal_rows(ds: &Dataset) -> Dataset {
    match (&ds.labels, ds.label_names.first().map(String::as_str)) {
        (Some(l), Some("normal")) => {
            let idx: Vec<usize> = (0..ds.len()).filter(|&i| l[i] == 0).collect();
            ds.subset(&idx)
        }
        _ => ds.clone(),
    }
}

/// The data a checkpoint was trained on, split as in training, or with `--data` other data;
/// normalized by the checkpoint.
///
/// With `--data` naming a CSV file and no `--split`, the test split is **every window of that
/// file** and train/validation are the checkpoint's own (for calibration and the baselines;
/// empty, with a note, if its training files cannot be read any more). With `--split`, the
/// file is split as training data would be and that split is used.
pub(crate) fn data_for(
    ck: &Checkpoint,
    data: &Option<String>,
    split_given: bool,
    seed_default: u64,
) -> Result<(Splits, Binarize)> {
    let own = ck
        .info
        .get("data")
        .and_then(|v| v.as_str())
        .map(String::from);
    let own_valid = ck
        .info
        .get("valid_data")
        .and_then(|v| v.as_str())
        .map(String::from);
    let seed = ck
        .info
        .get("train")
        .and_then(|t| t.get("seed"))
        .and_then(|s| s.as_u64())
        .unwrap_or(seed_default);
    let load_own = |spec: &str| -> Result<Splits> {
        let mut splits = load_splits(spec, seed, own_valid.is_some())?;
        if let Some(v) = &own_valid {
            splits.valid = load_whole(v, seed)?;
        }
        Ok(splits)
    };
    let whole_file =
        |d: &str| !split_given && matches!(parse_data_spec(d), Ok(DataSpec::Csv { .. }));
    let (mut splits, spec) = match (data, &own) {
        (Some(d), _) if whole_file(d) => {
            let test = load_whole(d, seed)?;
            for w in &test.warnings {
                eprintln!("warning: --data {d}: {w}");
            }
            let mut splits = match own.as_deref().map(load_own) {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    eprintln!(
                        "note: the checkpoint's training data cannot be loaded ({e:#}); no calibration or baselines from it"
                    );
                    Splits::default()
                }
                None => Splits::default(),
            };
            splits.test = test;
            (splits, d.clone())
        }
        (Some(d), _) => (load_splits(d, seed, false)?, d.clone()),
        (None, Some(o)) => (load_own(o)?, o.clone()),
        (None, None) => {
            bail!("the checkpoint does not say which data it was trained on; pass --data")
        }
    };
    for ds in [&splits.train, &splits.valid, &splits.test] {
        if !ds.is_empty() && ds.dim != ck.spec.input {
            bail!(
                "--data {spec}: rows have {} values but the model expects {}",
                ds.dim,
                ck.spec.input
            );
        }
    }
    // The model was trained on normal windows only (CSV labels): so are the baselines.
    if own
        .as_deref()
        .is_some_and(|o| matches!(parse_data_spec(o), Ok(DataSpec::Csv { .. })))
    {
        splits.train = normal_rows(&splits.train);
    }
    for ds in [&mut splits.train, &mut splits.valid, &mut splits.test] {
        ck.norm.apply(&mut ds.x);
    }
    let binarize = ck
        .info
        .get("train")
        .and_then(|t| t.get("binarize"))
        .and_then(|b| serde_json::from_value::<Binarize>(b.clone()).ok())
        .map(|b| {
            if b == Binarize::Dynamic {
                Binarize::Threshold(0.5)
            } else {
                b
            }
        })
        .unwrap_or(if ck.spec.likelihood == LikelihoodName::Bernoulli {
            Binarize::Threshold(0.5)
        } else {
            Binarize::None
        });
    Ok((splits, binarize))
}

/// The split `s` of `splits`.
pub(crate) fn pick(splits: &Splits, s: SplitArg) -> &Dataset {
    match s {
        SplitArg::Train => &splits.train,
        SplitArg::Valid => &splits.valid,
        SplitArg::Test => &splits.test,
    }
}
