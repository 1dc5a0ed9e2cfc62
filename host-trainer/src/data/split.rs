//! Train/validation/test splits and the normalization fitted on the training part.

use rand_core::{RngCore, SeedableRng};

use super::{Dataset, Splits};

/// Split the rows of `ds` into train, validation and test parts, reproducibly.
///
/// Sizes: `round(n · test_frac)` test rows, then `round(n · valid_frac)` validation rows (cut
/// to what is left), the rest training rows. Fractions are clamped to [0, 1]; NaN counts as 0.
///
/// * `shuffle = true`: rows are permuted by a Fisher–Yates shuffle driven by
///   `Pcg64Mcg::seed_from_u64(seed)` (uniform draws by rejection, so the permutation is
///   unbiased and the same on every machine), then cut into train, valid, test.
/// * `shuffle = false`: contiguous blocks in the original order, train first, then valid, then
///   test — right for a time series, where a later part must not leak into an earlier one.
///   When the rows are overlapping windows (`hop < len`), the last `⌈len / hop⌉ − 1` windows
///   of a block are dropped where another block follows, so no sample lies in two parts (the
///   earlier part is the one that shrinks, so the test part keeps its size).
///
/// Each part keeps `ds`'s metadata (source, image or window geometry, label names).
pub fn split_rows(
    ds: &Dataset,
    valid_frac: f64,
    test_frac: f64,
    seed: u64,
    shuffle: bool,
) -> Splits {
    let n = ds.len();
    let (n_train, n_valid, _) = part_sizes(n, valid_frac, test_frac);
    let mut idx: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        for i in (1..n).rev() {
            let j = below(&mut rng, i as u64 + 1) as usize;
            idx.swap(i, j);
        }
    }
    let mut blocks = [
        &idx[..n_train],
        &idx[n_train..n_train + n_valid],
        &idx[n_train + n_valid..],
    ];
    if !shuffle && let Some(w) = ds.window.filter(|w| w.hop > 0 && w.hop < w.len) {
        let gap = w.len.div_ceil(w.hop) - 1;
        for b in 0..2 {
            if blocks[b + 1..].iter().any(|later| !later.is_empty()) {
                let keep = blocks[b].len().saturating_sub(gap);
                blocks[b] = &blocks[b][..keep];
            }
        }
    }
    Splits {
        train: ds.subset(blocks[0]),
        valid: ds.subset(blocks[1]),
        test: ds.subset(blocks[2]),
    }
}

/// Split the rows of `ds` into train, validation and test parts by whole groups (`groups[i]`
/// is row i's group: a recording, a subject, a series), reproducibly: the distinct groups are
/// permuted by the same seeded Fisher–Yates shuffle as [`split_rows`], then cut like a
/// contiguous split of that group order — a group whose first row would fall in the first
/// `round(n · (1 − valid − test))` rows goes to train, then validation up to its share, the
/// rest to test. No group is in two parts, so overlapping windows of one recording never leak
/// from training into held-out data. Within a part rows keep their file order.
///
/// # Panics
/// If `groups.len()` is not the number of rows.
pub fn split_by_groups(
    ds: &Dataset,
    groups: &[u32],
    valid_frac: f64,
    test_frac: f64,
    seed: u64,
) -> Splits {
    let n = ds.len();
    assert_eq!(groups.len(), n, "one group per row");
    let (n_train, n_valid, _) = part_sizes(n, valid_frac, test_frac);
    let mut ids: Vec<u32> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    for i in (1..ids.len()).rev() {
        let j = below(&mut rng, i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    let mut size = std::collections::HashMap::new();
    for &g in groups {
        *size.entry(g).or_insert(0usize) += 1;
    }
    let mut part = std::collections::HashMap::new();
    let mut before = 0usize;
    for g in ids {
        let p = if before < n_train {
            0u8
        } else if before < n_train + n_valid {
            1
        } else {
            2
        };
        part.insert(g, p);
        before += size[&g];
    }
    let pick = |want: u8| -> Vec<usize> { (0..n).filter(|&i| part[&groups[i]] == want).collect() };
    Splits {
        train: ds.subset(&pick(0)),
        valid: ds.subset(&pick(1)),
        test: ds.subset(&pick(2)),
    }
}

/// Rows of the train, validation and test parts of `n` rows: `round(n · test)` test rows, then
/// `round(n · valid)` validation rows (cut to what is left), the rest training rows.
/// Fractions are clamped to [0, 1]; NaN counts as 0.
fn part_sizes(n: usize, valid_frac: f64, test_frac: f64) -> (usize, usize, usize) {
    let count = |f: f64| {
        let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        ((n as f64) * f).round() as usize
    };
    let n_test = count(test_frac).min(n);
    let n_valid = count(valid_frac).min(n - n_test);
    (n - n_test - n_valid, n_valid, n_test)
}

/// A uniform draw from `0..bound` (`bound ≥ 1`) by Lemire's multiply-and-reject method.
fn below<R: RngCore>(rng: &mut R, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = (rng.next_u64() as u128) * (bound as u128);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// The normalization `x' = (x − offset) · scale` fitted on `train`: `offset` the mean and
/// `scale` = 1 / standard deviation (population, divided by n), both computed in f64 (two
/// passes) and returned as `D` values each.
///
/// With `per_channel` and window rows (`train.window` with `len · channels = D`), each
/// channel's mean and deviation are pooled over all time steps, so every step of a channel
/// gets the same offset and scale; otherwise each of the D features has its own.
///
/// Degenerate features: a standard deviation below `max(1e-6 · |mean|, 1e-8)` counts as zero
/// (a constant feature, e.g. the border pixels of MNIST), and such a feature gets scale 1
/// (centred, not scaled), not 1/floor: a scale of 10⁸ would turn any test-time deviation in
/// a feature that was constant in training into an enormous input. With no rows, offset 0 and
/// scale 1. Non-finite values (which the loaders refuse) give non-finite results.
pub fn fit_normalization(train: &Dataset, per_channel: bool) -> (Vec<f32>, Vec<f32>) {
    let d = train.dim;
    let n = train.len();
    let groups = match train.window {
        Some(w) if per_channel && w.channels > 0 && w.len * w.channels == d => w.channels,
        _ => d,
    };
    if n == 0 || groups == 0 {
        return (vec![0.0; d], vec![1.0; d]);
    }
    let per_group = (n * (d / groups)) as f64;
    let mut mean = vec![0.0f64; groups];
    for row in train.x.chunks_exact(d) {
        for (i, &v) in row.iter().enumerate() {
            mean[i % groups] += v as f64;
        }
    }
    for m in &mut mean {
        *m /= per_group;
    }
    let mut var = vec![0.0f64; groups];
    for row in train.x.chunks_exact(d) {
        for (i, &v) in row.iter().enumerate() {
            let e = v as f64 - mean[i % groups];
            var[i % groups] += e * e;
        }
    }
    let scale_g: Vec<f64> = var
        .iter()
        .zip(&mean)
        .map(|(&v, &m)| {
            let std = (v / per_group).sqrt();
            if std < (1e-6 * m.abs()).max(1e-8) {
                1.0
            } else {
                1.0 / std
            }
        })
        .collect();
    (
        (0..d).map(|i| mean[i % groups] as f32).collect(),
        (0..d).map(|i| scale_g[i % groups] as f32).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Window;

    fn rows(n: usize, dim: usize) -> Dataset {
        Dataset {
            source: "test".into(),
            dim,
            x: (0..n * dim).map(|v| v as f32).collect(),
            labels: Some((0..n as u32).collect()),
            ..Dataset::default()
        }
    }

    fn ids(d: &Dataset) -> Vec<u32> {
        d.labels.clone().unwrap()
    }

    #[test]
    fn contiguous_blocks_in_order() {
        let s = split_rows(&rows(10, 2), 0.2, 0.3, 1, false);
        assert_eq!(ids(&s.train), [0, 1, 2, 3, 4]);
        assert_eq!(ids(&s.valid), [5, 6]);
        assert_eq!(ids(&s.test), [7, 8, 9]);
        assert_eq!(s.valid.row(0), [10.0, 11.0]);
        assert_eq!(s.test.source, "test");
    }

    #[test]
    fn shuffled_is_a_seeded_permutation() {
        let ds = rows(100, 1);
        let a = split_rows(&ds, 0.1, 0.2, 42, true);
        let b = split_rows(&ds, 0.1, 0.2, 42, true);
        let c = split_rows(&ds, 0.1, 0.2, 43, true);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.train.len(), a.valid.len(), a.test.len()), (70, 10, 20));
        let mut all: Vec<u32> = [ids(&a.train), ids(&a.valid), ids(&a.test)].concat();
        assert_ne!(all, (0..100).collect::<Vec<_>>());
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // Rows travel with their labels.
        assert_eq!(a.test.row(0)[0], ids(&a.test)[0] as f32);
    }

    #[test]
    fn odd_fractions_do_not_panic() {
        let ds = rows(10, 1);
        let s = split_rows(&ds, 0.7, 0.7, 0, true);
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (0, 3, 7));
        let s = split_rows(&ds, f64::NAN, -1.0, 0, false);
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (10, 0, 0));
        let s = split_rows(&rows(0, 3), 0.5, 0.5, 0, true);
        assert!(s.train.is_empty() && s.test.is_empty());
    }

    #[test]
    fn overlapping_windows_do_not_leak() {
        let mut ds = rows(20, 4);
        ds.window = Some(Window {
            len: 4,
            hop: 1,
            channels: 1,
            sample_rate_hz: 1.0,
        });
        let s = split_rows(&ds, 0.25, 0.25, 0, false);
        // Blocks 0..10, 10..15, 15..20; 3 windows dropped at the end of train and of valid.
        assert_eq!(ids(&s.train), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(ids(&s.valid), [10, 11]);
        assert_eq!(ids(&s.test), [15, 16, 17, 18, 19]);
        ds.window.as_mut().unwrap().hop = 4;
        let s = split_rows(&ds, 0.25, 0.25, 0, false);
        assert_eq!(s.train.len() + s.valid.len() + s.test.len(), 20);
    }

    #[test]
    fn normalization_per_feature_and_per_channel() {
        // Two rows of 2 steps x 2 channels: channel 0 constant 5, channel 1 values 1, 3, 5, 7.
        let ds = Dataset {
            dim: 4,
            x: vec![5.0, 1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 7.0],
            window: Some(Window {
                len: 2,
                hop: 2,
                channels: 2,
                sample_rate_hz: 1.0,
            }),
            ..Dataset::default()
        };
        let (o, s) = fit_normalization(&ds, true);
        assert_eq!(o, [5.0, 4.0, 5.0, 4.0]);
        let inv = 1.0 / 5.0f64.sqrt();
        assert_eq!(s, [1.0, inv as f32, 1.0, inv as f32]);
        let (o, s) = fit_normalization(&ds, false);
        assert_eq!(o, [5.0, 3.0, 5.0, 5.0]);
        assert_eq!(s, [1.0, 0.5, 1.0, 0.5]);
        let (o, s) = fit_normalization(&rows(0, 3), true);
        assert_eq!((o, s), (vec![0.0; 3], vec![1.0; 3]));
    }

    #[test]
    fn normalized_training_data_is_standard() {
        let ds = Dataset {
            dim: 3,
            x: (0..3000)
                .map(|i| ((i * 7919) % 1000) as f32 * 0.37 + 1e4)
                .collect(),
            ..Dataset::default()
        };
        let (o, s) = fit_normalization(&ds, false);
        for f in 0..3 {
            let z: Vec<f64> =
                ds.x.chunks_exact(3)
                    .map(|r| ((r[f] - o[f]) as f64) * s[f] as f64)
                    .collect();
            let m = z.iter().sum::<f64>() / z.len() as f64;
            let v = z.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / z.len() as f64;
            assert!(m.abs() < 1e-3 && (v - 1.0).abs() < 1e-3, "{m} {v}");
        }
    }

    #[test]
    fn group_splits_keep_groups_whole_and_are_seeded() {
        let ds = rows(60, 2);
        // 12 groups of 5 consecutive rows.
        let groups: Vec<u32> = (0..60).map(|i| i / 5).collect();
        let s = split_by_groups(&ds, &groups, 0.2, 0.2, 7);
        let ids = |part: &Dataset| -> Vec<u32> {
            let mut v: Vec<u32> = (0..part.len())
                .map(|i| groups[(part.row(i)[0] as usize) / 2])
                .collect();
            v.dedup();
            v
        };
        let (a, b, c) = (ids(&s.train), ids(&s.valid), ids(&s.test));
        assert_eq!(s.train.len() + s.valid.len() + s.test.len(), 60);
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (40, 10, 10));
        for g in &a {
            assert!(!b.contains(g) && !c.contains(g));
        }
        for g in &b {
            assert!(!c.contains(g));
        }
        assert_eq!(split_by_groups(&ds, &groups, 0.2, 0.2, 7), s);
        assert_ne!(split_by_groups(&ds, &groups, 0.2, 0.2, 8), s);
    }
}
