//! The label of a window from the labels of its samples: the one rule the trainer's CSV
//! loader, the synthetic data and the firmware's simulated sensor share.

/// A window is normal (0) when every sample is; otherwise it takes the kind of its first
/// anomalous sample. "Any anomalous sample" is what a detector is judged by: a window that
/// holds part of a fault should be flagged, and a model trained on normal windows must never
/// see one that holds any.
pub fn window_label<L: Copy + PartialEq + Default>(labels: &[L]) -> L {
    labels
        .iter()
        .copied()
        .find(|l| *l != L::default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_anomalous_sample_makes_the_window_its_kind() {
        assert_eq!(window_label::<u8>(&[]), 0);
        assert_eq!(window_label(&[0u8, 0, 0]), 0);
        assert_eq!(window_label(&[0u8, 0, 0, 3]), 3);
        assert_eq!(window_label(&[0u32, 2, 1, 1, 1]), 2);
    }
}
